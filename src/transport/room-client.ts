/**
 * The caller's side of the server's HTTP API: asking a signaling server for a new room
 * (`sleap-rtc room create`). Server URLs may be given as http(s) or as the ws(s) endpoint; both
 * name the same server.
 */
import { SleapRtcError, isErrorCode } from '../errors.js';
import { LIMITS } from '../limits.js';
import { RoomCreatedSchema, type RoomCreated } from '../protocol/signaling.js';
import { httpBaseUrl } from './server-url.js';

export interface RequestRoomOptions {
  timeoutMs?: number;
}

/** POST /rooms on the server. SIGNALING_UNREACHABLE when nothing (or no signaling server) answers. */
export async function requestRoom(serverUrl: string, opts: RequestRoomOptions = {}): Promise<RoomCreated> {
  const base = httpBaseUrl(serverUrl);
  const timeoutMs = opts.timeoutMs ?? LIMITS.signalingHttpTimeoutMs;
  let res: Response;
  try {
    res = await fetch(`${base}/rooms`, { method: 'POST', signal: AbortSignal.timeout(timeoutMs) });
  } catch (err) {
    throw unreachable(base, reasonOf(err, timeoutMs), err);
  }
  const text = await res.text().catch(() => '');
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  if (res.status !== 201) {
    const error = (body as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
    if (error !== undefined && isErrorCode(error.code) && typeof error.message === 'string') {
      throw new SleapRtcError(error.code, `The signaling server at ${base} refused to create a room: ${error.message}`, { server_url: base, status: res.status });
    }
    throw unreachable(base, `it answered HTTP ${res.status}, which is not how a sleap-rtc signaling server answers`);
  }
  const room = RoomCreatedSchema.safeParse(body);
  if (!room.success) {
    const b = body as { room_id?: unknown; token?: unknown } | undefined;
    const looksLikeRoom = typeof b === 'object' && b !== null && typeof b.room_id === 'string' && typeof b.token === 'string';
    // A room in a shape this version does not know: most likely a newer server, not a foreign one.
    throw unreachable(base, looksLikeRoom ? 'it answered with a room in a form this sleap-rtc does not understand; is the server newer? Upgrade sleap-rtc' : 'its answer is not a room; is it a sleap-rtc signaling server?');
  }
  return room.data;
}

function unreachable(base: string, reason: string, cause?: unknown): SleapRtcError {
  return new SleapRtcError(
    'SIGNALING_UNREACHABLE',
    `Could not reach the signaling server at ${base} (${reason}). Start one with \`sleap-rtc server\`, or point --server or SLEAP_RTC_SERVER at a running one.`,
    { server_url: base },
    { cause },
  );
}

function reasonOf(err: unknown, timeoutMs: number): string {
  const e = err as { name?: string; cause?: { code?: string; message?: string }; message?: string };
  if (e.name === 'TimeoutError') return `no answer within ${timeoutMs} ms`;
  if (e.cause?.code === 'ECONNREFUSED') return 'connection refused: nothing listens there';
  if (e.cause?.code === 'ENOTFOUND') return 'host name not found';
  return e.cause?.code ?? e.cause?.message ?? e.message ?? String(err);
}
