/**
 * How the Redis store keeps a room's routing state compactly and reads it incrementally. No rule
 * lives here: the state is whatever routing-policy.ts made it; this file only turns one state into
 * the next as a *change* (what entries were added, replaced or removed), so that
 *   - a write sends only the changed queue entries, reservations and last-assigned marks
 *     (APPLY_ROUTING stores them in a sorted set by arrival, and two hashes), never the whole queue;
 *   - each write appends the same change, as JSON, to the room's change log (the last
 *     LOG_LENGTH versions), so another process whose cached copy is a few versions behind reads
 *     just those changes (READ_ROUTING) and applies them here, instead of the whole state.
 * A process further behind than the log, or one with no copy, reads the whole state once.
 */
import { EMPTY_ROUTING_STATE, type RoomRoutingState } from '../routing-policy.js';
import type { ReservationRecord, RouteRequest } from '../routing-store.js';

/** Changes kept per room for readers that are behind (older ones are dropped from the log). */
export const LOG_LENGTH = 1024;

/** One version's change. Entries are keyed: queue entries by seq, reservations by id, marks by worker. */
export interface RoutingChange {
  /** The version this change produced. */
  readonly v: number;
  readonly seq: number;
  readonly assignments: number;
  /** Queue entries removed (seq). */
  readonly qd: readonly number[];
  /** Queue entries added or replaced. */
  readonly qa: readonly RouteRequest[];
  /** Reservations removed (id). */
  readonly rd: readonly string[];
  /** Reservations added or replaced, in the order of the new state. */
  readonly ra: readonly ReservationRecord[];
  /** Last-assigned marks removed (worker id). */
  readonly ld: readonly string[];
  /** Last-assigned marks set. */
  readonly la: readonly (readonly [string, number])[];
}

/**
 * The change from `before` to `after`. Entries are compared by identity first (a policy step keeps
 * the objects it did not change), so an unchanged entry costs nothing.
 */
export function routingChange(before: RoomRoutingState, after: RoomRoutingState, v: number): RoutingChange {
  const oldQueue = new Map<number, RouteRequest>();
  for (const r of before.queue) oldQueue.set(r.seq, r);
  const qa: RouteRequest[] = [];
  for (const r of after.queue) {
    if (oldQueue.get(r.seq) !== r) qa.push(r);
    oldQueue.delete(r.seq);
  }
  const oldRes = new Map<string, ReservationRecord>();
  for (const r of before.reservations) oldRes.set(r.reservation_id, r);
  const ra: ReservationRecord[] = [];
  for (const r of after.reservations) {
    if (oldRes.get(r.reservation_id) !== r) ra.push(r);
    oldRes.delete(r.reservation_id);
  }
  const la: [string, number][] = [];
  const ld: string[] = [];
  for (const [peer, n] of Object.entries(after.last_assigned)) if (before.last_assigned[peer] !== n) la.push([peer, n]);
  for (const peer of Object.keys(before.last_assigned)) if (!Object.hasOwn(after.last_assigned, peer)) ld.push(peer);
  return { v, seq: after.seq, assignments: after.assignments, qd: [...oldQueue.keys()], qa, rd: [...oldRes.keys()], ra, ld, la };
}

export function isNoChange(c: RoutingChange, before: RoomRoutingState): boolean {
  return c.seq === before.seq && c.assignments === before.assignments && c.qd.length + c.qa.length + c.rd.length + c.ra.length + c.ld.length + c.la.length === 0;
}

/** `state` with one change applied (what a reader does with the log). */
export function applyChange(state: RoomRoutingState, c: RoutingChange): RoomRoutingState {
  let queue: RouteRequest[] = [...state.queue];
  if (c.qd.length + c.qa.length > 0) {
    const gone = new Set<number>([...c.qd, ...c.qa.map((r) => r.seq)]);
    queue = queue.filter((r) => !gone.has(r.seq));
    if (c.qa.length > 0) queue = queue.concat(c.qa).sort((a, b) => a.seq - b.seq);
  }
  const reservations = new Map(state.reservations.map((r) => [r.reservation_id, r]));
  for (const id of c.rd) reservations.delete(id);
  for (const r of c.ra) reservations.set(r.reservation_id, r);
  const last: Record<string, number> = { ...state.last_assigned };
  for (const peer of c.ld) delete last[peer];
  for (const [peer, n] of c.la) last[peer] = n;
  return { seq: c.seq, assignments: c.assignments, queue, reservations: [...reservations.values()], last_assigned: last };
}

/** APPLY_ROUTING's arguments after its fixed ones: counts, then the entries (see redis-scripts.ts). */
export function changeArgs(c: RoutingChange): (string | number)[] {
  const out: (string | number)[] = [c.seq, c.assignments, c.qd.length, c.qa.length, c.rd.length, c.ra.length, c.ld.length, c.la.length];
  for (const seq of c.qd) out.push(seq);
  for (const r of c.qa) out.push(r.seq, JSON.stringify(r));
  for (const id of c.rd) out.push(id);
  for (const r of c.ra) out.push(r.reservation_id, JSON.stringify(r));
  for (const peer of c.ld) out.push(peer);
  for (const [peer, n] of c.la) out.push(peer, n);
  return out;
}

/** The whole state from READ_ROUTING's full answer: seq, assignments, queue members, reservations hash, marks hash. */
export function stateFromFull(seq: string, assignments: string, queue: readonly string[], res: readonly string[], last: readonly string[]): RoomRoutingState {
  if (queue.length === 0 && res.length === 0 && last.length === 0 && Number(seq) === 0 && Number(assignments) === 0) return EMPTY_ROUTING_STATE;
  const rows: { ord: number; rec: ReservationRecord }[] = [];
  for (let i = 0; i < res.length; i += 2) {
    const value = res[i + 1] as string;
    const tab = value.indexOf('\t');
    rows.push({ ord: Number(value.slice(0, tab)), rec: JSON.parse(value.slice(tab + 1)) as ReservationRecord });
  }
  rows.sort((a, b) => a.ord - b.ord);
  const lastAssigned: Record<string, number> = {};
  for (let i = 0; i < last.length; i += 2) lastAssigned[last[i] as string] = Number(last[i + 1]);
  return {
    seq: Number(seq),
    assignments: Number(assignments),
    queue: queue.map((m) => JSON.parse(m) as RouteRequest),
    reservations: rows.map((r) => r.rec),
    last_assigned: lastAssigned,
  };
}
