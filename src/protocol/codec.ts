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

/**
 * The path of the first own key named `__proto__` in a parsed JSON value, or null. JSON.parse
 * makes such a key an ordinary own property, but nothing downstream can carry it: zod drops it
 * from records and objects without an issue (an assignment would replace the prototype), and so
 * would `Object.assign` or `obj[key] = v`. No sleap-rtc message and no sleap-nn event has one
 * (sleap-nn's metric names are Lightning's: `loss`, `epoch`, `train/...`, `val/...`), so such a
 * frame is refused by name instead of being read with a key silently gone. Other names that
 * Object.prototype also has (`constructor`, `toString`, ...) are ordinary own keys and are carried.
 * Iterative, so a deeply nested frame cannot overflow the stack.
 */
export function protoKeyPath(value: unknown): string | null {
  const stack: [unknown, string][] = [[value, '']];
  while (stack.length > 0) {
    const [v, at] = stack.pop() as [unknown, string];
    if (typeof v !== 'object' || v === null) continue;
    if (!Array.isArray(v) && Object.hasOwn(v, '__proto__')) return at ? `${at}.__proto__` : '__proto__';
    for (const [k, child] of Object.entries(v)) if (typeof child === 'object' && child !== null) stack.push([child, at ? `${at}.${k}` : k]);
  }
  return null;
}

/**
 * Throws INVALID_MESSAGE when `raw` (parsed from `text`) holds a key named `__proto__`. The text
 * is looked at first: without `__proto__` or a `\u` escape in it, no key can be named so.
 */
export function refuseProtoKeys(text: string, raw: unknown, what: string): void {
  if (!text.includes('__proto__') && !text.includes('\\u')) return;
  const at = protoKeyPath(raw);
  if (at !== null) {
    throw new ProtocolError('INVALID_MESSAGE', `${what} has a key named "__proto__" (at ${at}), which no message has and JavaScript objects cannot hold as data; refused.`);
  }
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
  refuseProtoKeys(frame, raw, 'A message');
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

/** A member of a union keyed on `type`: a message schema, or a union of them (e.g. keyed on `job_type`). */
type TypedOption = { shape: { type: { value: unknown } } } | { options: readonly TypedOption[] };

/**
 * The `type` literals of a discriminated union, for `decodeMessage`'s unknown-type check. A member
 * that is itself a union (JOB_REQUEST's train and track variants) gives the types of its members.
 */
export function typesOf(schema: { options: readonly TypedOption[] }): ReadonlySet<string> {
  const types = new Set<string>();
  const add = (o: TypedOption): void => {
    if ('options' in o) for (const member of o.options) add(member);
    else types.add(String(o.shape.type.value));
  };
  for (const o of schema.options) add(o);
  return types;
}
