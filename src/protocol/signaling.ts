/**
 * Signaling wire messages: the single source of truth for server, worker and client.
 * Every frame is JSON with a `type`. Peer -> server messages are validated by the server;
 * server -> peer messages are validated by the signaling client.
 */
import { z } from 'zod';
import {
  CapabilitiesSchema,
  EchoedRequestIdSchema,
  ErrorMessageSchema,
  GpuInfoSchema,
  IdSchema,
  JobTypeSchema,
  MetadataSchema,
  PeerInfoSchema,
  RoleSchema,
  WorkerStatusSchema,
} from './common.js';
import {
  CancelRequestSchema,
  ClaimReservationSchema,
  GetRoomStatusSchema,
  JobPeerLeftSchema,
  QueuePositionSchema,
  ReleaseReservationSchema,
  RequestCancelledSchema,
  RequestWorkerSchema,
  ReservationClaimedSchema,
  ReservationReleasedSchema,
  RoomStatusSchema,
  WorkerAssignedSchema,
} from './routing.js';

// The peer-describing building blocks live in common.ts (routing.ts needs them too, and must not
// import this file, which imports it); they are re-exported here under their usual names.
export { CapabilitiesSchema, GpuInfoSchema, JobTypeSchema, MetadataSchema, PeerInfoSchema, RoleSchema, WorkerStatusSchema };
export type { Capabilities, GpuInfo, JobType, Metadata, PeerInfo, Role, WorkerStatus } from './common.js';

/** A property filter value: equality, or one operator. */
export const PropertyFilterSchema = z.union([
  z.strictObject({ $gte: z.number() }),
  z.strictObject({ $lte: z.number() }),
  z.strictObject({ $in: z.array(z.unknown()).max(256) }),
  z.strictObject({ $contains: z.unknown() }),
  z.union([z.string(), z.number(), z.boolean(), z.null()]),
]);
export type PropertyFilter = z.infer<typeof PropertyFilterSchema>;

export const DiscoverFiltersSchema = z.strictObject({
  role: RoleSchema.optional(),
  status: WorkerStatusSchema.optional(),
  /** Keys are dotted paths into metadata, e.g. "capabilities.storage_backends". */
  properties: z.record(z.string().min(1).max(256), PropertyFilterSchema).optional(),
});
export type DiscoverFilters = z.infer<typeof DiscoverFiltersSchema>;

// ---- peer -> server -------------------------------------------------------------------------

export const RegisterSchema = z.strictObject({
  type: z.literal('register'),
  room_id: IdSchema,
  token: z.string().min(1).max(512),
  role: RoleSchema,
  peer_id: IdSchema.optional(),
  metadata: MetadataSchema.default({}),
});

export const UpdateMetadataSchema = z.strictObject({
  type: z.literal('update_metadata'),
  metadata: MetadataSchema,
});

export const DiscoverPeersSchema = z.strictObject({
  type: z.literal('discover_peers'),
  filters: DiscoverFiltersSchema.default({}),
  request_id: EchoedRequestIdSchema,
});

export const PeerMessageOutSchema = z.strictObject({
  type: z.literal('peer_message'),
  to_peer_id: IdSchema,
  payload: z.unknown(),
});

export const OfferOutSchema = z.strictObject({ type: z.literal('offer'), target: IdSchema, sdp: z.string().max(65536) });
export const AnswerOutSchema = z.strictObject({ type: z.literal('answer'), target: IdSchema, sdp: z.string().max(65536) });
export const CandidateOutSchema = z.strictObject({
  type: z.literal('candidate'),
  target: IdSchema,
  candidate: z.string().max(4096),
  mid: z.string().max(256),
});

export const PeerToServerSchema = z.discriminatedUnion('type', [
  RegisterSchema,
  UpdateMetadataSchema,
  DiscoverPeersSchema,
  PeerMessageOutSchema,
  OfferOutSchema,
  AnswerOutSchema,
  CandidateOutSchema,
  // routing (routing.ts, docs/routing.md)
  RequestWorkerSchema,
  CancelRequestSchema,
  ClaimReservationSchema,
  ReleaseReservationSchema,
  GetRoomStatusSchema,
]);
export type PeerToServer = z.infer<typeof PeerToServerSchema>;

// ---- server -> peer -------------------------------------------------------------------------

export const RegisteredSchema = z.strictObject({
  type: z.literal('registered'),
  peer_id: IdSchema,
  room_id: IdSchema,
  peers: z.array(PeerInfoSchema),
});
export const PeerJoinedSchema = z.strictObject({ type: z.literal('peer_joined'), peer: PeerInfoSchema });
export const PeerLeftSchema = z.strictObject({ type: z.literal('peer_left'), peer_id: IdSchema });
export const PeerUpdatedSchema = z.strictObject({ type: z.literal('peer_updated'), peer: PeerInfoSchema });
export const PeerListSchema = z.strictObject({
  type: z.literal('peer_list'),
  peers: z.array(PeerInfoSchema),
  request_id: EchoedRequestIdSchema,
});
export const PeerMessageInSchema = z.strictObject({
  type: z.literal('peer_message'),
  from_peer_id: IdSchema,
  payload: z.unknown(),
});
export const OfferInSchema = z.strictObject({ type: z.literal('offer'), sender: IdSchema, sdp: z.string() });
export const AnswerInSchema = z.strictObject({ type: z.literal('answer'), sender: IdSchema, sdp: z.string() });
export const CandidateInSchema = z.strictObject({
  type: z.literal('candidate'),
  sender: IdSchema,
  candidate: z.string(),
  mid: z.string(),
});

export const ServerToPeerSchema = z.discriminatedUnion('type', [
  RegisteredSchema,
  PeerJoinedSchema,
  PeerLeftSchema,
  PeerUpdatedSchema,
  PeerListSchema,
  PeerMessageInSchema,
  OfferInSchema,
  AnswerInSchema,
  CandidateInSchema,
  ErrorMessageSchema,
  // routing (routing.ts, docs/routing.md)
  WorkerAssignedSchema,
  QueuePositionSchema,
  RequestCancelledSchema,
  ReservationClaimedSchema,
  ReservationReleasedSchema,
  RoomStatusSchema,
  JobPeerLeftSchema,
]);
export type ServerToPeer = z.infer<typeof ServerToPeerSchema>;

// ---- HTTP API -------------------------------------------------------------------------------

/** Response of POST /rooms. */
export const RoomCreatedSchema = z.strictObject({
  room_id: IdSchema,
  token: z.string(),
  /**
   * Seconds a room may sit with no peer before it is removed; null when the server keeps rooms until
   * they are deleted (DELETE /rooms/<id>), as the Redis store does. A client built before null
   * was allowed here refuses the whole answer (it reports the server as unreachable) and must be
   * upgraded; joining rooms is not affected.
   */
  idle_ttl_s: z.number().int().positive().nullable(),
});
export type RoomCreated = z.infer<typeof RoomCreatedSchema>;
