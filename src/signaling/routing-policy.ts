/**
 * The routing policy, once for every store (cf. socket.io's ClusterAdapter: the policy sits above
 * the drivers, a driver only stores and publishes). Each step is a pure function over one room's
 * routing state (a plain JSON value) and the room's peers: it changes a working copy and returns
 * the events that follow. A store runs a step inside its atomic per-room update
 * (`SignalingStore.updateRouting`): the memory store calls it synchronously, the Redis store reads
 * the state, runs the step and writes the result back only if nothing changed meanwhile (a
 * compare-and-set in one Lua script), running the step again when something did. So a step must
 * not touch anything outside its arguments.
 *
 * Rules (docs/routing.md): least recently assigned free worker that can serve; strict FIFO among
 * the requests a given worker can serve; a request that comes back to the queue keeps its place;
 * claim and queue deadlines are part of the state, so whichever process looks at the room after a
 * deadline expires it.
 */
import { canServe, explainNoMatch, freeSlots, requirementKey } from './routing-match.js';
import type {
  NewRouteRequest,
  RequestLimits,
  ReservationRecord,
  RouteRejection,
  RouteRequest,
  RoutingEvent,
  RoutingParams,
} from './routing-store.js';
import type { PeerRecord } from './store.js';

/** One room's routing state as a store keeps it (JSON-safe). */
export interface RoomRoutingState {
  /** Last arrival number handed out. */
  readonly seq: number;
  /** Incremented per assignment; a worker's last value orders "least recently assigned". */
  readonly assignments: number;
  /** Queued requests, sorted by seq. */
  readonly queue: readonly RouteRequest[];
  /** Live reservations in the order they were made. */
  readonly reservations: readonly ReservationRecord[];
  readonly last_assigned: Readonly<Record<string, number>>;
}

export const EMPTY_ROUTING_STATE: RoomRoutingState = Object.freeze({ seq: 0, assignments: 0, queue: [], reservations: [], last_assigned: {} });

/** What a step may use besides the state: the clock, the claim window and a fresh id. */
export interface StepContext extends RoutingParams {
  newReservationId(): string;
}

/** The mutable working copy a step changes. */
export class RoutingDraft {
  seq: number;
  assignments: number;
  queue: RouteRequest[];
  readonly reservations: Map<string, ReservationRecord>;
  readonly lastAssigned: Map<string, number>;

  constructor(state: RoomRoutingState) {
    this.seq = state.seq;
    this.assignments = state.assignments;
    this.queue = [...state.queue];
    this.reservations = new Map(state.reservations.map((r) => [r.reservation_id, r]));
    this.lastAssigned = new Map(Object.entries(state.last_assigned));
  }

  toState(): RoomRoutingState {
    return {
      seq: this.seq,
      assignments: this.assignments,
      queue: this.queue,
      reservations: [...this.reservations.values()],
      last_assigned: Object.fromEntries(this.lastAssigned),
    };
  }
}

/** True when the room has nothing left to remember (a store may then drop its key). */
export function isEmptyRouting(state: RoomRoutingState): boolean {
  return state.queue.length === 0 && state.reservations.length === 0 && Object.keys(state.last_assigned).length === 0;
}

/** The earliest claim or queue deadline in the state, or null: stores index rooms by it so any process can expire them. */
export function nextDeadline(state: RoomRoutingState): number | null {
  let next: number | null = null;
  const consider = (at: number | null): void => {
    if (at !== null && (next === null || at < next)) next = at;
  };
  for (const r of state.reservations) if (r.state === 'pending') consider(r.expires_at_ms);
  for (const q of state.queue) consider(q.deadline_ms);
  return next;
}

// ---- steps -------------------------------------------------------------------------------------

export interface RouteStepResult {
  events: RoutingEvent[];
  rejected?: RouteRejection;
}

/** Drains, then serves the new request, queues it, or fails it (see RoutingStore.routeRequest). */
export function routeStep(d: RoutingDraft, peers: readonly PeerRecord[], input: NewRouteRequest, ctx: StepContext & RequestLimits): RouteStepResult {
  const events: RoutingEvent[] = [];
  drain(d, peers, ctx, events);
  if (findRequest(d, input.client_peer_id, input.request_id) !== undefined) return { events, rejected: { kind: 'duplicate' } };
  if (liveRequestsOf(d, input.client_peer_id) >= ctx.max_requests_per_client) {
    return { events, rejected: { kind: 'client_limit', limit: ctx.max_requests_per_client } };
  }
  // Every request draws its place on arrival, served at once or not: one that comes back to the
  // queue later (its worker left or never claimed) slots in ahead of later arrivals.
  d.seq += 1;
  const request: RouteRequest = { ...input, requirements: { ...input.requirements }, seq: d.seq, excluded: [] };
  if (request.wait_for_match !== true && !peers.some((p) => canServe(p, request.requirements))) {
    events.push({ kind: 'failed', request, failure: { code: 'NO_MATCHING_WORKER', ...explainNoMatch(peers, request.requirements) } });
    return { events };
  }
  const worker = pickWorker(d, peers, request, liveCounts(d, peers));
  if (worker !== undefined) {
    events.push(reserve(d, request, worker, ctx));
    return { events };
  }
  if (request.deadline_ms !== null && request.deadline_ms <= ctx.now_ms) {
    events.push({ kind: 'failed', request, failure: { code: 'QUEUE_TIMEOUT' } });
    return { events };
  }
  if (d.queue.length >= ctx.max_queue_per_room) return { events, rejected: { kind: 'room_limit', limit: ctx.max_queue_per_room } };
  d.queue.push(request);
  return { events };
}

/** Serves queued requests from free slots, and fails those past their deadline. */
export function drainStep(d: RoutingDraft, peers: readonly PeerRecord[], ctx: StepContext): RoutingEvent[] {
  const events: RoutingEvent[] = [];
  drain(d, peers, ctx, events);
  return events;
}

/** The reserved worker takes its pending reservation; idempotent; undefined when it holds none of that id. */
export function claimStep(d: RoutingDraft, reservationId: string, workerPeerId: string): ReservationRecord | undefined {
  const rec = d.reservations.get(reservationId);
  if (rec === undefined || rec.worker_peer_id !== workerPeerId) return undefined;
  if (rec.state === 'claimed') return rec;
  const claimed: ReservationRecord = { ...rec, state: 'claimed', expires_at_ms: null };
  d.reservations.set(reservationId, claimed);
  return claimed;
}

export type ReleaseResult = { status: 'released' | 'unknown' | 'not_yours'; events: RoutingEvent[] };

export function releaseStep(d: RoutingDraft, peers: readonly PeerRecord[], reservationId: string, peerId: string, ctx: StepContext): ReleaseResult {
  const rec = d.reservations.get(reservationId);
  if (rec === undefined) return { events: [], status: 'unknown' };
  if (peerId === rec.worker_peer_id || (peerId === rec.client_peer_id && rec.state === 'pending')) {
    d.reservations.delete(reservationId);
  } else if (peerId === rec.client_peer_id) {
    detachClient(d, rec);
    return { events: [], status: 'released' };
  } else {
    return { events: [], status: 'not_yours' };
  }
  return { events: drainStep(d, peers, ctx), status: 'released' };
}

export type CancelResult = { status: 'queued' | 'pending' | 'claimed' | 'unknown'; events: RoutingEvent[] };

export function cancelStep(d: RoutingDraft, peers: readonly PeerRecord[], clientPeerId: string, requestId: string, ctx: StepContext): CancelResult {
  const found = findRequest(d, clientPeerId, requestId);
  if (found === undefined) return { events: [], status: 'unknown' };
  if (found.kind === 'queued') {
    d.queue.splice(d.queue.indexOf(found.request), 1);
    return { events: [], status: 'queued' };
  }
  if (found.reservation.state === 'claimed') {
    detachClient(d, found.reservation);
    return { events: [], status: 'claimed' };
  }
  d.reservations.delete(found.reservation.reservation_id);
  return { events: drainStep(d, peers, ctx), status: 'pending' };
}

/**
 * A pending reservation past its claim window goes; its worker is excluded for the request, which
 * returns to its place in the queue, or fails RESERVATION_EXPIRED when no other worker could serve
 * it. Then drains. No-op for a reservation that is claimed, gone or not yet due.
 */
export function expireReservationStep(d: RoutingDraft, peers: readonly PeerRecord[], reservationId: string, ctx: StepContext): RoutingEvent[] {
  const events: RoutingEvent[] = [];
  if (!expireOne(d, peers, reservationId, ctx, events)) return [];
  drain(d, peers, ctx, events);
  return events;
}

/** A queued request past its deadline fails QUEUE_TIMEOUT; no-op otherwise. */
export function expireQueuedStep(d: RoutingDraft, clientPeerId: string, requestId: string, ctx: StepContext): RoutingEvent[] {
  const found = findRequest(d, clientPeerId, requestId);
  if (found?.kind !== 'queued') return [];
  const request = found.request;
  if (request.deadline_ms === null || request.deadline_ms > ctx.now_ms) return [];
  d.queue.splice(d.queue.indexOf(request), 1);
  return [{ kind: 'failed', request, failure: { code: 'QUEUE_TIMEOUT' } }];
}

/** Every deadline of the room that has passed: expired reservations and overdue queued requests. Then drains. */
export function expireDueStep(d: RoutingDraft, peers: readonly PeerRecord[], ctx: StepContext): RoutingEvent[] {
  const events: RoutingEvent[] = [];
  let changed = false;
  for (const rec of [...d.reservations.values()]) {
    if (rec.state === 'pending' && rec.expires_at_ms !== null && rec.expires_at_ms <= ctx.now_ms) {
      changed = expireOne(d, peers, rec.reservation_id, ctx, events) || changed;
    }
  }
  for (const request of [...d.queue]) {
    if (request.deadline_ms !== null && request.deadline_ms <= ctx.now_ms) {
      d.queue.splice(d.queue.indexOf(request), 1);
      events.push({ kind: 'failed', request, failure: { code: 'QUEUE_TIMEOUT' } });
      changed = true;
    }
  }
  if (changed) drain(d, peers, ctx, events);
  return events;
}

/**
 * Call once the peer is gone from the room's peers. As a client: its queued requests and pending
 * reservations go, and the workers of its claimed reservations hear it left. As a worker: its
 * reservations go; pending ones return their requests to the queue, and the clients of claimed
 * ones hear it left. Then drains.
 */
export function removePeerStep(d: RoutingDraft, peers: readonly PeerRecord[], peerId: string, ctx: StepContext): RoutingEvent[] {
  const events: RoutingEvent[] = [];
  d.queue = d.queue.filter((r) => r.client_peer_id !== peerId);
  for (const rec of [...d.reservations.values()]) {
    if (rec.client_peer_id === peerId) {
      if (rec.state === 'pending') {
        d.reservations.delete(rec.reservation_id);
      } else {
        detachClient(d, rec);
        events.push({ kind: 'partner_left', reservation: rec, left_peer_id: peerId, notify_peer_id: rec.worker_peer_id });
      }
    } else if (rec.worker_peer_id === peerId) {
      d.reservations.delete(rec.reservation_id);
      if (rec.client_peer_id === null) continue;
      if (rec.state === 'pending') {
        requeue(d, { ...rec.request, reassigned_from: { peer_id: peerId, reason: 'worker_left' } });
      } else {
        events.push({ kind: 'partner_left', reservation: rec, left_peer_id: peerId, notify_peer_id: rec.client_peer_id });
      }
    }
  }
  d.lastAssigned.delete(peerId);
  drain(d, peers, ctx, events);
  return events;
}

// ---- internals ---------------------------------------------------------------------------------

type Found = { kind: 'queued'; request: RouteRequest } | { kind: 'reservation'; reservation: ReservationRecord };

function findRequest(d: RoutingDraft, clientPeerId: string, requestId: string): Found | undefined {
  for (const r of d.queue) if (r.client_peer_id === clientPeerId && r.request_id === requestId) return { kind: 'queued', request: r };
  for (const rec of d.reservations.values()) {
    if (rec.client_peer_id === clientPeerId && rec.request.request_id === requestId) return { kind: 'reservation', reservation: rec };
  }
  return undefined;
}

function liveRequestsOf(d: RoutingDraft, clientPeerId: string): number {
  let n = 0;
  for (const r of d.queue) if (r.client_peer_id === clientPeerId) n += 1;
  for (const rec of d.reservations.values()) if (rec.client_peer_id === clientPeerId) n += 1;
  return n;
}

function liveCounts(d: RoutingDraft, peers: readonly PeerRecord[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const p of peers) if (p.role === 'worker') counts.set(p.peer_id, 0);
  for (const rec of d.reservations.values()) {
    const n = counts.get(rec.worker_peer_id);
    if (n !== undefined) counts.set(rec.worker_peer_id, n + 1);
  }
  return counts;
}

/** The least recently assigned worker with a free slot that can serve the request (join order breaks ties). */
function pickWorker(d: RoutingDraft, peers: readonly PeerRecord[], request: RouteRequest, live: Map<string, number>): PeerRecord | undefined {
  let best: PeerRecord | undefined;
  let bestAt = Infinity;
  for (const p of peers) {
    if (p.role !== 'worker' || freeSlots(p, live.get(p.peer_id) ?? 0) === 0) continue;
    if (!canServe(p, request.requirements, request.excluded)) continue;
    const at = d.lastAssigned.get(p.peer_id) ?? 0;
    if (at < bestAt) {
      best = p;
      bestAt = at;
    }
  }
  return best;
}

function drain(d: RoutingDraft, peers: readonly PeerRecord[], ctx: StepContext, events: RoutingEvent[]): void {
  if (d.queue.length === 0) return;
  const live = liveCounts(d, peers);
  let free = 0;
  for (const p of peers) free += freeSlots(p, live.get(p.peer_id) ?? 0);
  // Nobody can be served: nothing to do (overdue requests are failed by the deadline sweep, or
  // by the next drain that could otherwise serve them late).
  if (free === 0) return;
  // Requirement keys known to have no free worker in this pass: later requests with the same key
  // are skipped without scanning the workers again.
  const stuck = new Set<string>();
  const kept: RouteRequest[] = [];
  let i = 0;
  for (; i < d.queue.length && free > 0; i++) {
    const request = d.queue[i] as RouteRequest;
    if (request.deadline_ms !== null && request.deadline_ms <= ctx.now_ms) {
      events.push({ kind: 'failed', request, failure: { code: 'QUEUE_TIMEOUT' } });
      continue;
    }
    const key = request.excluded.length === 0 ? requirementKey(request.requirements) : undefined;
    const worker = key !== undefined && stuck.has(key) ? undefined : pickWorker(d, peers, request, live);
    if (worker === undefined) {
      if (key !== undefined) stuck.add(key);
      kept.push(request);
      continue;
    }
    events.push(reserve(d, request, worker, ctx));
    live.set(worker.peer_id, (live.get(worker.peer_id) ?? 0) + 1);
    free -= 1;
  }
  // The slots ran out: the rest keep their places unread.
  d.queue = i === d.queue.length ? kept : kept.concat(d.queue.slice(i));
}

function reserve(d: RoutingDraft, request: RouteRequest, worker: PeerRecord, ctx: StepContext): RoutingEvent {
  const reservation: ReservationRecord = {
    reservation_id: ctx.newReservationId(),
    room_id: request.room_id,
    worker_peer_id: worker.peer_id,
    client_peer_id: request.client_peer_id,
    request,
    state: 'pending',
    expires_at_ms: ctx.now_ms + ctx.reservation_ttl_ms,
  };
  d.reservations.set(reservation.reservation_id, reservation);
  d.assignments += 1;
  d.lastAssigned.set(worker.peer_id, d.assignments);
  return { kind: 'assigned', reservation, worker };
}

/** Back into the queue at its original place (the queue is sorted by seq). */
function requeue(d: RoutingDraft, request: RouteRequest): void {
  let i = d.queue.length;
  while (i > 0 && (d.queue[i - 1] as RouteRequest).seq > request.seq) i -= 1;
  d.queue.splice(i, 0, request);
}

function detachClient(d: RoutingDraft, rec: ReservationRecord): void {
  if (rec.client_peer_id === null) return;
  d.reservations.set(rec.reservation_id, { ...rec, client_peer_id: null });
}

function expireOne(d: RoutingDraft, peers: readonly PeerRecord[], reservationId: string, ctx: StepContext, events: RoutingEvent[]): boolean {
  const rec = d.reservations.get(reservationId);
  if (rec === undefined || rec.state !== 'pending' || rec.expires_at_ms === null || rec.expires_at_ms > ctx.now_ms) return false;
  d.reservations.delete(reservationId);
  if (rec.client_peer_id === null) return true;
  const request: RouteRequest = {
    ...rec.request,
    excluded: [...rec.request.excluded, rec.worker_peer_id],
    reassigned_from: { peer_id: rec.worker_peer_id, reason: 'claim_timeout' },
  };
  if (peers.some((p) => canServe(p, request.requirements, request.excluded))) requeue(d, request);
  else events.push({ kind: 'failed', request, failure: { code: 'RESERVATION_EXPIRED', worker_peer_id: rec.worker_peer_id } });
  return true;
}
