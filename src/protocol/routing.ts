/**
 * Routing messages on the signaling socket: a client asks the server for a worker that can serve
 * its job, the server answers with a reservation on one (or a queue position), and the worker
 * claims the reservation when it takes the job. docs/routing.md describes the conversation.
 *
 * This file imports only common.ts: signaling.ts adds these schemas to its unions, so importing
 * signaling.ts from here would be a cycle.
 */
import { z } from 'zod';
import { LIMITS } from '../limits.js';
import { BackendNameSchema, EchoedRequestIdSchema, IdSchema, JobTypeSchema, MetadataSchema, PeerInfoSchema } from './common.js';

/** Chosen by the client; unique among its live requests (queued or holding a reservation). */
export const RouteRequestIdSchema = IdSchema;
/** Drawn by the server; unguessable, so holding one is the proof of being party to it. */
export const ReservationIdSchema = IdSchema;

/** What a job needs from a worker. Every given condition must hold. */
const requirementFields = {
  job_type: JobTypeSchema,
  /**
   * The backend the job reads in place. Absent or null: a transfer job (files travel over the
   * data channel), which any worker offering the job type can serve.
   */
  required_storage: BackendNameSchema.nullable().optional(),
  /** The worker's `capabilities.gpu.memory_mb` must be at least this; a worker without GPU facts fails it. */
  min_gpu_memory_mb: z.number().int().nonnegative().max(16 * 1024 * 1024).optional(),
  /** Pins the job: a peer id, or a worker's `metadata.name`. */
  worker: z.string().min(1).max(128).optional(),
};

// ---- peer -> server -------------------------------------------------------------------------

export const RequestWorkerSchema = z.strictObject({
  type: z.literal('request_worker'),
  request_id: RouteRequestIdSchema,
  ...requirementFields,
  /** Longest wait in the queue; 0 fails at once when no matching worker is free. Absent: wait until cancelled. */
  queue_timeout_s: z.number().nonnegative().max(LIMITS.routingMaxQueueTimeoutS).optional(),
  /**
   * Queue even when no worker in the room can serve the job now, waiting for one to join
   * (instead of NO_MATCHING_WORKER). A client re-sending its request after a reconnect sets
   * this: the workers may not have reconnected yet.
   */
  wait_for_match: z.boolean().optional(),
});
export type RequestWorker = z.infer<typeof RequestWorkerSchema>;

/** Leaves the queue, or gives back a reservation the worker has not claimed yet. Always answered with `request_cancelled`. */
export const CancelRequestSchema = z.strictObject({
  type: z.literal('cancel_request'),
  request_id: RouteRequestIdSchema,
});

/** The reserved worker takes the job (sent when it accepts the JOB_REQUEST carrying this id). */
export const ClaimReservationSchema = z.strictObject({
  type: z.literal('claim_reservation'),
  reservation_id: ReservationIdSchema,
});

/** The worker (job over) or the client (done or abandoning) gives the reservation back. */
export const ReleaseReservationSchema = z.strictObject({
  type: z.literal('release_reservation'),
  reservation_id: ReservationIdSchema,
});

/** The room's workers with their slots and queue facts (`sleap-rtc workers`). */
export const GetRoomStatusSchema = z.strictObject({
  type: z.literal('get_room_status'),
  request_id: EchoedRequestIdSchema,
});

// ---- server -> peer -------------------------------------------------------------------------

export const ReassignReasonSchema = z.enum(['claim_timeout', 'worker_left']);
export type ReassignReason = z.infer<typeof ReassignReasonSchema>;

/**
 * To the client: connect to `worker.peer_id` and put `reservation_id` in the JOB_REQUEST. A
 * later `worker_assigned` for the same request_id replaces this one (the worker did not take
 * the job in time, or left): drop the first worker and go to the new one.
 */
export const WorkerAssignedSchema = z.strictObject({
  type: z.literal('worker_assigned'),
  request_id: RouteRequestIdSchema,
  reservation_id: ReservationIdSchema,
  worker: PeerInfoSchema,
  /** The worker must claim within this, or the job is offered to the next match. */
  claim_timeout_ms: z.number().int().positive(),
  /** Set when an earlier assignment of this request fell through. */
  reassigned_from: z
    .strictObject({
      peer_id: IdSchema,
      reason: ReassignReasonSchema,
    })
    .optional(),
});
export type WorkerAssigned = z.infer<typeof WorkerAssignedSchema>;

/** To a queued client, when it enters the queue and whenever these figures change. */
export const QueuePositionSchema = z.strictObject({
  type: z.literal('queue_position'),
  request_id: RouteRequestIdSchema,
  /** 1 + the requests ahead of this one that want one of the same workers; 1 means next. */
  position: z.number().int().positive(),
  /** Requests queued in the room, for any worker. */
  queue_length: z.number().int().positive(),
  /** Workers in the room that could serve this request, busy or not; 0 means it waits for one to join. */
  matching_workers: z.number().int().nonnegative(),
});
export type QueuePosition = z.infer<typeof QueuePositionSchema>;

export const RequestCancelledSchema = z.strictObject({
  type: z.literal('request_cancelled'),
  request_id: RouteRequestIdSchema,
});

/** To the worker: the slot is its own until it sends `release_reservation` (or leaves). */
export const ReservationClaimedSchema = z.strictObject({
  type: z.literal('reservation_claimed'),
  reservation_id: ReservationIdSchema,
  request_id: RouteRequestIdSchema,
  client_peer_id: IdSchema,
});

export const ReservationReleasedSchema = z.strictObject({
  type: z.literal('reservation_released'),
  reservation_id: ReservationIdSchema,
});

/**
 * To one side of a claimed reservation (a job that is running or being set up): the other side
 * left the room. `reason`: `disconnected` (its signaling connection closed or stopped answering
 * pings) or `server_lost` (the server process holding its connection died). The job's own peer
 * connection may outlive a signaling blip, so treat this as "check the peer connection now":
 * when that is also failing, give up at once instead of waiting for it to time out.
 */
export const JobPeerLeftSchema = z.strictObject({
  type: z.literal('job_peer_left'),
  reservation_id: ReservationIdSchema,
  request_id: RouteRequestIdSchema,
  /** The peer that left: the worker (told to the client) or the client (told to the worker). */
  peer_id: IdSchema,
  role: z.enum(['worker', 'client']),
  reason: z.enum(['disconnected', 'server_lost']),
});
export type JobPeerLeft = z.infer<typeof JobPeerLeftSchema>;

export const WorkerSlotsSchema = z.strictObject({
  /** `capabilities.max_concurrent_jobs`, or 0 for a worker that advertises no capabilities. */
  total: z.number().int().nonnegative(),
  /** Reserved for a client, not yet claimed by the worker. */
  pending: z.number().int().nonnegative(),
  /** Claimed: a job runs (or is being set up) there. */
  claimed: z.number().int().nonnegative(),
  /** Slots a new request could get now: 0 unless the worker's status is `available`. */
  free: z.number().int().nonnegative(),
});
export type WorkerSlots = z.infer<typeof WorkerSlotsSchema>;

export const WorkerStatusEntrySchema = z.strictObject({
  peer_id: IdSchema,
  metadata: MetadataSchema,
  slots: WorkerSlotsSchema,
  /** Queued requests in the room this worker could serve. */
  queued: z.number().int().nonnegative(),
});
export type WorkerStatusEntry = z.infer<typeof WorkerStatusEntrySchema>;

export const RoomStatusSchema = z.strictObject({
  type: z.literal('room_status'),
  request_id: EchoedRequestIdSchema,
  /** In join order. */
  workers: z.array(WorkerStatusEntrySchema),
  queue_length: z.number().int().nonnegative(),
});
export type RoomStatus = z.infer<typeof RoomStatusSchema>;

/** `details.reason` of NO_MATCHING_WORKER: which requirement no worker in the room meets. */
export const NoMatchReasonSchema = z.enum([
  /** The room has no worker at all. */
  'no_workers',
  /** No worker has the required storage backend (the client may fall back to a transfer job). */
  'no_backend',
  /** Workers with the backend exist, but none runs this job type. */
  'no_job_type',
  /** Workers with backend and job type exist, but none has enough GPU memory. */
  'gpu_too_small',
  /** The pinned worker is not in the room. */
  'worker_not_found',
  /** The pinned worker is there but lacks what the job needs (see `details.missing`). */
  'worker_cannot_serve',
]);
export type NoMatchReason = z.infer<typeof NoMatchReasonSchema>;
