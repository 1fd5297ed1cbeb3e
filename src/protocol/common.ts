/** Building blocks shared by every wire schema. */
import { z } from 'zod';
import { ERROR_CODES, type ErrorCode } from '../errors.js';

/** Room ids, peer ids, backend names: short, printable, safe in logs and file names. */
export const IdSchema = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'must start with a letter or digit and hold only letters, digits, ".", "_" or "-"');

export const BackendNameSchema = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9_-]+$/, 'must hold only letters, digits, "_" or "-"');

export const ErrorCodeSchema = z.custom<ErrorCode>(
  (v) => typeof v === 'string' && Object.hasOwn(ERROR_CODES, v),
  'unknown error code',
);

/** Optional on a request, chosen by the asker; its answer (or `error`) carries it back, so the two can be matched. */
export const EchoedRequestIdSchema = z.string().max(128).optional();

/** The `error` message, used on the signaling socket and on data channels alike. */
export const ErrorMessageSchema = z.strictObject({
  type: z.literal('error'),
  code: ErrorCodeSchema,
  message: z.string(),
  details: z.record(z.string(), z.unknown()).optional(),
  /** Echoed from the request that failed, when it carried one. */
  request_id: EchoedRequestIdSchema,
});
export type ErrorMessage = z.infer<typeof ErrorMessageSchema>;

// ---- peers: who a peer is and what a worker can do (signaling.ts and routing.ts) -----------

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
