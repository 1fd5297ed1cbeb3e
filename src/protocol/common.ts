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

/** The `error` message, used on the signaling socket and on data channels alike. */
export const ErrorMessageSchema = z.strictObject({
  type: z.literal('error'),
  code: ErrorCodeSchema,
  message: z.string(),
  details: z.record(z.string(), z.unknown()).optional(),
  /** Echoed from the request that failed, when it carried one. */
  request_id: z.string().max(128).optional(),
});
export type ErrorMessage = z.infer<typeof ErrorMessageSchema>;
