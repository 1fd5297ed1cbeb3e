/**
 * Signaling wire messages: the single source of truth for server, worker and client.
 * Every frame is JSON with a `type`. Peer -> server messages are validated by the server;
 * server -> peer messages are validated by the signaling client.
 */
import { z } from 'zod';
import { BackendNameSchema, ErrorMessageSchema, IdSchema } from './common.js';

export const RoleSchema = z.enum(['worker', 'client']);
export type Role = z.infer<typeof RoleSchema>;

export const WorkerStatusSchema = z.enum(['available', 'busy', 'reserved']);
export type WorkerStatus = z.infer<typeof WorkerStatusSchema>;

export const JobTypeSchema = z.enum(['train', 'track']);
export type JobType = z.infer<typeof JobTypeSchema>;

export const GpuInfoSchema = z.looseObject({
  name: z.string().max(256),
  memory_mb: z.number().int().nonnegative().optional(),
  count: z.number().int().positive().optional(),
  driver: z.string().max(64).optional(),
});
export type GpuInfo = z.infer<typeof GpuInfoSchema>;

export const CapabilitiesSchema = z.strictObject({
  storage_backends: z.array(BackendNameSchema).max(256),
  job_types: z.array(JobTypeSchema).max(16),
  max_concurrent_jobs: z.number().int().positive().max(1024),
  gpu: GpuInfoSchema.optional(),
});
export type Capabilities = z.infer<typeof CapabilitiesSchema>;

/**
 * Peer metadata is open (clients may attach what they like) but the keys the server acts on
 * are typed: `capabilities` and `status` for workers, `name` for anyone.
 */
export const MetadataSchema = z.looseObject({
  name: z.string().max(128).optional(),
  status: WorkerStatusSchema.optional(),
  capabilities: CapabilitiesSchema.optional(),
});
export type Metadata = z.infer<typeof MetadataSchema>;

export const PeerInfoSchema = z.strictObject({
  peer_id: IdSchema,
  role: RoleSchema,
  metadata: MetadataSchema,
});
export type PeerInfo = z.infer<typeof PeerInfoSchema>;

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

const RequestId = z.string().max(128).optional();

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
  request_id: RequestId,
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
  request_id: RequestId,
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
]);
export type ServerToPeer = z.infer<typeof ServerToPeerSchema>;

// ---- HTTP API -------------------------------------------------------------------------------

/** Response of POST /rooms. */
export const RoomCreatedSchema = z.strictObject({
  room_id: IdSchema,
  token: z.string(),
  /** Seconds a room may sit with no peer before it is removed. */
  idle_ttl_s: z.number().int().positive(),
});
export type RoomCreated = z.infer<typeof RoomCreatedSchema>;
