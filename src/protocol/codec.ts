/**
 * Turning frames into validated messages. Every inbound frame, on the signaling socket or on a
 * data channel, goes through `decodeMessage`: a frame that is not JSON, has no known `type`, or
 * fails its schema becomes a ProtocolError with a stable code and a sentence naming the field.
 */
import type { z } from 'zod';
import { SleapRtcError } from '../errors.js';

export class ProtocolError extends SleapRtcError {}

/** One readable line per zod issue: "metadata.capabilities.storage_backends.0: must hold only ...". */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((i) => `${i.path.length ? i.path.join('.') : '(message)'}: ${i.message}`)
    .join('; ');
}

export function encodeMessage(message: { type: string }): string {
  return JSON.stringify(message);
}

export function decodeMessage<S extends z.ZodType>(
  frame: string,
  schema: S,
  knownTypes: ReadonlySet<string>,
  maxBytes?: number,
): z.output<S> {
  if (maxBytes !== undefined && Buffer.byteLength(frame) > maxBytes) {
    throw new ProtocolError('FRAME_TOO_LARGE', `Frame of ${Buffer.byteLength(frame)} bytes exceeds the ${maxBytes}-byte limit.`, {
      limit: maxBytes,
    });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(frame);
  } catch (err) {
    throw new ProtocolError('INVALID_JSON', `Frame is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new ProtocolError('INVALID_MESSAGE', 'A message must be a JSON object with a "type" field.');
  }
  const type = (raw as { type?: unknown }).type;
  if (typeof type !== 'string') {
    throw new ProtocolError('INVALID_MESSAGE', 'A message must have a string "type" field.');
  }
  if (!knownTypes.has(type)) {
    throw new ProtocolError('UNKNOWN_TYPE', `Unknown message type "${type.slice(0, 64)}".`, { type: type.slice(0, 64) });
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    throw new ProtocolError('INVALID_MESSAGE', `Invalid "${type}" message: ${describeIssues(parsed.error)}`, { type });
  }
  return parsed.data;
}

/** The `type` literals of a discriminated union, for `decodeMessage`'s unknown-type check. */
export function typesOf(schema: { options: readonly { shape: { type: { value: unknown } } }[] }): ReadonlySet<string> {
  return new Set(schema.options.map((o) => String(o.shape.type.value)));
}
