/**
 * The routing vocabulary (requests, reservations, events) and `RoutingStore`, the operations the
 * router calls. The rules are in routing-policy.ts, a pure module over one room's state; the
 * operations are implemented once (routing-ops.ts) over a store's atomic per-room update
 * (`SignalingStore.updateRouting`), so a store implements no routing rule itself.
 *
 * Operations that can free a slot or change what a worker offers end by draining the room's queue:
 * queued requests are served in arrival order, each by the least recently assigned free worker
 * that can serve it. A request that no free worker can serve does not hold up a later one that
 * some free worker can: the FIFO is strict among the requests a given worker can serve.
 */
import type { NoMatchReason, ReassignReason } from '../protocol/routing.js';
import type { JobType } from '../protocol/signaling.js';
import type { PeerRecord } from './store.js';
import type { Unmet } from './routing-match.js';

export interface WorkerRequirements {
  readonly job_type: JobType;
  /** null: a transfer job, any backend. */
  readonly required_storage: string | null;
  readonly min_gpu_memory_mb?: number;
  /** Pinned worker: peer id or metadata.name. */
  readonly worker?: string;
}

export interface NewRouteRequest {
  readonly room_id: string;
  readonly client_peer_id: string;
  readonly request_id: string;
  readonly requirements: WorkerRequirements;
  readonly requested_at_ms: number;
  /** After this it may no longer wait in the queue; null: no bound. */
  readonly deadline_ms: number | null;
  /** Queue rather than fail when no peer of the room can serve it now. */
  readonly wait_for_match?: boolean;
}

export interface RouteRequest extends NewRouteRequest {
  /** Arrival order in the room; a request that comes back to the queue keeps its place. */
  readonly seq: number;
  /** Workers that let this request down by not claiming it; it is never offered to them again. */
  readonly excluded: readonly string[];
  /** The last assignment that fell through, reported with the next one. */
  readonly reassigned_from?: { readonly peer_id: string; readonly reason: ReassignReason };
}

export type ReservationState = 'pending' | 'claimed';

export interface ReservationRecord {
  readonly reservation_id: string;
  readonly room_id: string;
  readonly worker_peer_id: string;
  /** null once the client let go of a claimed reservation (the slot stays the worker's). */
  readonly client_peer_id: string | null;
  readonly request: RouteRequest;
  readonly state: ReservationState;
  /** When a pending reservation's claim window ends; null once claimed. */
  readonly expires_at_ms: number | null;
}

export type RouteFailure =
  | { readonly code: 'NO_MATCHING_WORKER'; readonly reason: NoMatchReason; readonly available_backends: readonly string[]; readonly missing?: Unmet }
  | { readonly code: 'QUEUE_TIMEOUT' }
  | { readonly code: 'RESERVATION_EXPIRED'; readonly worker_peer_id: string };

export type RoutingEvent =
  /** A reservation was made for the request (a first assignment or a re-assignment). */
  | { readonly kind: 'assigned'; readonly reservation: ReservationRecord; readonly worker: PeerRecord }
  /** The request is over without a worker. */
  | { readonly kind: 'failed'; readonly request: RouteRequest; readonly failure: RouteFailure }
  /** One side of a claimed reservation (a running job) left the room; the other side is told. */
  | { readonly kind: 'partner_left'; readonly reservation: ReservationRecord; readonly left_peer_id: string; readonly notify_peer_id: string };

export interface RoutingOutcome {
  readonly events: readonly RoutingEvent[];
}

/** Why a new request was refused outright (it changed nothing). */
export type RouteRejection =
  | { readonly kind: 'duplicate' }
  | { readonly kind: 'client_limit'; readonly limit: number }
  | { readonly kind: 'room_limit'; readonly limit: number };

export interface RouteRequestResult extends RoutingOutcome {
  readonly rejected?: RouteRejection;
}

export interface RoutingParams {
  readonly now_ms: number;
  /** Claim window of new reservations. */
  readonly reservation_ttl_ms: number;
}

export interface RequestLimits {
  readonly max_requests_per_client: number;
  readonly max_queue_per_room: number;
}

export type ReleaseStatus = 'released' | 'unknown' | 'not_yours';
export type CancelStatus = 'queued' | 'pending' | 'claimed' | 'unknown';

export interface RoutingSnapshot {
  /** Queued requests in queue order. */
  readonly queue: readonly RouteRequest[];
  readonly reservations: readonly ReservationRecord[];
}

export interface RoutingStore {
  /**
   * Drains the room's queue, then serves the new request from a free matching worker, or queues
   * it at the tail. Fails it at once when no peer of the room can serve it (NO_MATCHING_WORKER),
   * or when it may not wait (deadline reached) and no worker is free (QUEUE_TIMEOUT).
   */
  routeRequest(request: NewRouteRequest, params: RoutingParams & RequestLimits): Promise<RouteRequestResult>;
  /** Serves queued requests from free slots (after a worker joined or changed its metadata). */
  drainRoutingQueue(roomId: string, params: RoutingParams): Promise<RoutingOutcome>;
  /** The reserved worker takes a pending reservation; undefined when there is none for it. Idempotent. */
  claimReservation(roomId: string, reservationId: string, workerPeerId: string): Promise<ReservationRecord | undefined>;
  /**
   * By the worker: the slot is free again. By the client: a pending reservation goes (freeing
   * the slot); from a claimed one the client only detaches. Then drains.
   */
  releaseReservation(roomId: string, reservationId: string, peerId: string, params: RoutingParams): Promise<RoutingOutcome & { status: ReleaseStatus }>;
  /** The client's request leaves the queue, gives back its pending reservation, or detaches from a claimed one. */
  cancelRouteRequest(roomId: string, clientPeerId: string, requestId: string, params: RoutingParams): Promise<RoutingOutcome & { status: CancelStatus }>;
  /**
   * A pending reservation whose claim window has ended goes; its worker is excluded for the
   * request, which returns to its place in the queue (and is drained), or fails with
   * RESERVATION_EXPIRED when no other worker in the room could serve it. No-op otherwise.
   */
  expireReservation(roomId: string, reservationId: string, params: RoutingParams): Promise<RoutingOutcome>;
  /** A queued request past its deadline fails with QUEUE_TIMEOUT. No-op otherwise. */
  expireQueuedRequest(roomId: string, clientPeerId: string, requestId: string, params: RoutingParams): Promise<RoutingOutcome>;
  /** Every deadline of the room that has passed (what the deadline sweep calls). */
  expireDue(roomId: string, params: RoutingParams): Promise<RoutingOutcome>;
  /**
   * Call after `removePeer`. As a client: its queued requests and pending reservations go. As a
   * worker: its reservations go; pending ones return their requests to the queue. Then drains.
   */
  removeRoutingPeer(peerId: string, roomId: string, params: RoutingParams): Promise<RoutingOutcome>;
  routingSnapshot(roomId: string): Promise<RoutingSnapshot>;
}
