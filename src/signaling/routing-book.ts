/**
 * The in-memory RoutingStore: plain maps and arrays, each method running start to end without
 * yielding, which is what makes it atomic on the single-threaded server. The memory store owns
 * one and hands it a synchronous view of the room's peers.
 */
import { randomBytes } from 'node:crypto';
import { canServe, explainNoMatch, freeSlots, requirementKey } from './routing-match.js';
import type {
  CancelStatus,
  NewRouteRequest,
  ReleaseStatus,
  RequestLimits,
  ReservationRecord,
  RouteRequest,
  RouteRequestResult,
  RoutingEvent,
  RoutingOutcome,
  RoutingParams,
  RoutingSnapshot,
  RoutingStore,
} from './routing-store.js';
import type { PeerRecord } from './store.js';

export interface PeerView {
  /** The room's peers in join order. */
  listPeers(roomId: string): readonly PeerRecord[];
}

interface RoomRouting {
  /** Queued requests, sorted by seq. */
  queue: RouteRequest[];
  /** Last seq handed out. */
  seq: number;
  /** Incremented per assignment; a worker's last value orders "least recently assigned". */
  assignments: number;
  lastAssigned: Map<string, number>;
  reservations: Set<string>;
}

type LiveRequest = { kind: 'queued'; room_id: string } | { kind: 'reservation'; reservation_id: string };

export class RoutingBook implements RoutingStore {
  private readonly rooms = new Map<string, RoomRouting>();
  private readonly reservations = new Map<string, ReservationRecord>();
  /** worker peer id -> its live reservation ids */
  private readonly byWorker = new Map<string, Set<string>>();
  /** client peer id -> request id -> where the request is */
  private readonly byClient = new Map<string, Map<string, LiveRequest>>();

  constructor(private readonly peers: PeerView) {}

  async routeRequest(input: NewRouteRequest, params: RoutingParams & RequestLimits): Promise<RouteRequestResult> {
    const events: RoutingEvent[] = [];
    const room = this.room(input.room_id);
    this.drain(input.room_id, room, params, events);
    const live = this.byClient.get(input.client_peer_id);
    if (live?.has(input.request_id) === true) return this.settle<RouteRequestResult>(input.room_id, { events, rejected: { kind: 'duplicate' } });
    if ((live?.size ?? 0) >= params.max_requests_per_client) {
      return this.settle<RouteRequestResult>(input.room_id, { events, rejected: { kind: 'client_limit', limit: params.max_requests_per_client } });
    }
    // Every request draws its place on arrival, served at once or not: one that comes back
    // to the queue later (its worker left or never claimed) slots in ahead of later arrivals.
    room.seq += 1;
    const request: RouteRequest = Object.freeze({ ...input, requirements: Object.freeze({ ...input.requirements }), seq: room.seq, excluded: [] });
    const peers = this.peers.listPeers(input.room_id);
    if (request.wait_for_match !== true && !peers.some((p) => canServe(p, request.requirements))) {
      const noMatch = explainNoMatch(peers, request.requirements);
      events.push({ kind: 'failed', request, failure: { code: 'NO_MATCHING_WORKER', ...noMatch } });
      return this.settle<RouteRequestResult>(input.room_id, { events });
    }
    const worker = this.pickWorker(room, peers, request, this.liveCounts(peers));
    if (worker !== undefined) {
      events.push(this.reserve(room, request, worker, params));
      return this.settle<RouteRequestResult>(input.room_id, { events });
    }
    if (request.deadline_ms !== null && request.deadline_ms <= params.now_ms) {
      events.push({ kind: 'failed', request, failure: { code: 'QUEUE_TIMEOUT' } });
      return this.settle<RouteRequestResult>(input.room_id, { events });
    }
    if (room.queue.length >= params.max_queue_per_room) {
      return this.settle<RouteRequestResult>(input.room_id, { events, rejected: { kind: 'room_limit', limit: params.max_queue_per_room } });
    }
    room.queue.push(request);
    this.track(request, { kind: 'queued', room_id: request.room_id });
    return { events };
  }

  async drainRoutingQueue(roomId: string, params: RoutingParams): Promise<RoutingOutcome> {
    const room = this.rooms.get(roomId);
    const events: RoutingEvent[] = [];
    if (room !== undefined) this.drain(roomId, room, params, events);
    return this.settle(roomId, { events });
  }

  async claimReservation(reservationId: string, workerPeerId: string): Promise<ReservationRecord | undefined> {
    const rec = this.reservations.get(reservationId);
    if (rec === undefined || rec.worker_peer_id !== workerPeerId) return undefined;
    if (rec.state === 'claimed') return rec;
    const claimed: ReservationRecord = Object.freeze({ ...rec, state: 'claimed', expires_at_ms: null });
    this.reservations.set(reservationId, claimed);
    return claimed;
  }

  async releaseReservation(reservationId: string, peerId: string, params: RoutingParams): Promise<RoutingOutcome & { status: ReleaseStatus }> {
    const rec = this.reservations.get(reservationId);
    if (rec === undefined) return { events: [], status: 'unknown' };
    if (peerId === rec.worker_peer_id || (peerId === rec.client_peer_id && rec.state === 'pending')) {
      this.dropReservation(rec);
    } else if (peerId === rec.client_peer_id) {
      this.detachClient(rec);
      return { events: [], status: 'released' };
    } else {
      return { events: [], status: 'not_yours' };
    }
    const outcome = await this.drainRoutingQueue(rec.room_id, params);
    return { ...outcome, status: 'released' };
  }

  async cancelRouteRequest(clientPeerId: string, requestId: string, params: RoutingParams): Promise<RoutingOutcome & { status: CancelStatus }> {
    const live = this.byClient.get(clientPeerId)?.get(requestId);
    if (live === undefined) return { events: [], status: 'unknown' };
    if (live.kind === 'queued') {
      const request = this.unqueue(clientPeerId, requestId);
      if (request !== undefined) this.settle(request.room_id, { events: [] });
      return { events: [], status: 'queued' };
    }
    const rec = this.reservations.get(live.reservation_id) as ReservationRecord;
    if (rec.state === 'claimed') {
      this.detachClient(rec);
      return { events: [], status: 'claimed' };
    }
    this.dropReservation(rec);
    const outcome = await this.drainRoutingQueue(rec.room_id, params);
    return { ...outcome, status: 'pending' };
  }

  async expireReservation(reservationId: string, params: RoutingParams): Promise<RoutingOutcome> {
    const rec = this.reservations.get(reservationId);
    if (rec === undefined || rec.state !== 'pending' || rec.expires_at_ms === null || rec.expires_at_ms > params.now_ms) return { events: [] };
    this.dropReservation(rec);
    const events: RoutingEvent[] = [];
    const request: RouteRequest = Object.freeze({
      ...rec.request,
      excluded: [...rec.request.excluded, rec.worker_peer_id],
      reassigned_from: { peer_id: rec.worker_peer_id, reason: 'claim_timeout' as const },
    });
    if (rec.client_peer_id !== null) {
      const peers = this.peers.listPeers(rec.room_id);
      if (peers.some((p) => canServe(p, request.requirements, request.excluded))) {
        this.requeue(request);
      } else {
        events.push({ kind: 'failed', request, failure: { code: 'RESERVATION_EXPIRED', worker_peer_id: rec.worker_peer_id } });
      }
    }
    const room = this.rooms.get(rec.room_id);
    if (room !== undefined) this.drain(rec.room_id, room, params, events);
    return this.settle(rec.room_id, { events });
  }

  async expireQueuedRequest(clientPeerId: string, requestId: string, params: RoutingParams): Promise<RoutingOutcome> {
    const live = this.byClient.get(clientPeerId)?.get(requestId);
    if (live?.kind !== 'queued') return { events: [] };
    const request = this.findQueued(clientPeerId, requestId);
    if (request === undefined || request.deadline_ms === null || request.deadline_ms > params.now_ms) return { events: [] };
    this.unqueue(clientPeerId, requestId);
    return this.settle(request.room_id, { events: [{ kind: 'failed', request, failure: { code: 'QUEUE_TIMEOUT' } }] });
  }

  async removeRoutingPeer(peerId: string, roomId: string, params: RoutingParams): Promise<RoutingOutcome> {
    const live = this.byClient.get(peerId);
    for (const [requestId, where] of live ?? []) {
      if (where.kind === 'queued') {
        this.unqueue(peerId, requestId);
        continue;
      }
      const rec = this.reservations.get(where.reservation_id) as ReservationRecord;
      if (rec.state === 'pending') this.dropReservation(rec);
      else this.detachClient(rec);
    }
    for (const id of [...(this.byWorker.get(peerId) ?? [])]) {
      const rec = this.reservations.get(id) as ReservationRecord;
      this.dropReservation(rec);
      if (rec.state === 'pending' && rec.client_peer_id !== null) {
        this.requeue(Object.freeze({ ...rec.request, reassigned_from: { peer_id: peerId, reason: 'worker_left' as const } }));
      }
    }
    const events: RoutingEvent[] = [];
    const room = this.rooms.get(roomId);
    if (room !== undefined) {
      room.lastAssigned.delete(peerId);
      this.drain(roomId, room, params, events);
    }
    return this.settle(roomId, { events });
  }

  async routingSnapshot(roomId: string): Promise<RoutingSnapshot> {
    const room = this.rooms.get(roomId);
    if (room === undefined) return { queue: [], reservations: [] };
    return {
      queue: [...room.queue],
      reservations: [...room.reservations].map((id) => this.reservations.get(id) as ReservationRecord),
    };
  }

  /** Forgets everything (store close). */
  clear(): void {
    this.rooms.clear();
    this.reservations.clear();
    this.byWorker.clear();
    this.byClient.clear();
  }

  // ---- internals -----------------------------------------------------------------------------

  private room(roomId: string): RoomRouting {
    let room = this.rooms.get(roomId);
    if (room === undefined) {
      room = { queue: [], seq: 0, assignments: 0, lastAssigned: new Map(), reservations: new Set() };
      this.rooms.set(roomId, room);
    }
    return room;
  }

  /** Forgets a room's routing state once nothing in it is left to remember. */
  private settle<T extends RoutingOutcome>(roomId: string, outcome: T): T {
    const room = this.rooms.get(roomId);
    if (room !== undefined && room.queue.length === 0 && room.reservations.size === 0 && room.lastAssigned.size === 0) {
      this.rooms.delete(roomId);
    }
    return outcome;
  }

  private liveCounts(peers: readonly PeerRecord[]): Map<string, number> {
    const counts = new Map<string, number>();
    for (const p of peers) {
      const live = this.byWorker.get(p.peer_id)?.size ?? 0;
      if (p.role === 'worker') counts.set(p.peer_id, live);
    }
    return counts;
  }

  /** The least recently assigned worker with a free slot that can serve the request (join order breaks ties). */
  private pickWorker(room: RoomRouting, peers: readonly PeerRecord[], request: RouteRequest, live: Map<string, number>): PeerRecord | undefined {
    let best: PeerRecord | undefined;
    let bestAt = Infinity;
    for (const p of peers) {
      if (p.role !== 'worker' || freeSlots(p, live.get(p.peer_id) ?? 0) === 0) continue;
      if (!canServe(p, request.requirements, request.excluded)) continue;
      const at = room.lastAssigned.get(p.peer_id) ?? 0;
      if (at < bestAt) {
        best = p;
        bestAt = at;
      }
    }
    return best;
  }

  private drain(roomId: string, room: RoomRouting, params: RoutingParams, events: RoutingEvent[]): void {
    if (room.queue.length === 0) return;
    const peers = this.peers.listPeers(roomId);
    const live = this.liveCounts(peers);
    let free = 0;
    for (const p of peers) free += freeSlots(p, live.get(p.peer_id) ?? 0);
    // Nobody can be served: nothing to do (overdue requests are failed by their timers, or by
    // the next drain that could otherwise serve them late).
    if (free === 0) return;
    // Requirement keys known to have no free worker in this pass: later requests with the same
    // key are skipped without scanning the workers again.
    const stuck = new Set<string>();
    const kept: RouteRequest[] = [];
    let i = 0;
    for (; i < room.queue.length && free > 0; i++) {
      const request = room.queue[i] as RouteRequest;
      if (request.deadline_ms !== null && request.deadline_ms <= params.now_ms) {
        this.forget(request);
        events.push({ kind: 'failed', request, failure: { code: 'QUEUE_TIMEOUT' } });
        continue;
      }
      const key = request.excluded.length === 0 ? requirementKey(request.requirements) : undefined;
      const worker = key !== undefined && stuck.has(key) ? undefined : this.pickWorker(room, peers, request, live);
      if (worker === undefined) {
        if (key !== undefined) stuck.add(key);
        kept.push(request);
        continue;
      }
      this.forget(request);
      events.push(this.reserve(room, request, worker, params));
      live.set(worker.peer_id, (live.get(worker.peer_id) ?? 0) + 1);
      free -= 1;
    }
    // The slots ran out: the rest keep their places unread.
    room.queue = i === room.queue.length ? kept : kept.concat(room.queue.slice(i));
  }

  private reserve(room: RoomRouting, request: RouteRequest, worker: PeerRecord, params: RoutingParams): RoutingEvent {
    const reservation: ReservationRecord = Object.freeze({
      reservation_id: `rsv-${randomBytes(16).toString('base64url')}`,
      room_id: request.room_id,
      worker_peer_id: worker.peer_id,
      client_peer_id: request.client_peer_id,
      request,
      state: 'pending',
      expires_at_ms: params.now_ms + params.reservation_ttl_ms,
    });
    this.reservations.set(reservation.reservation_id, reservation);
    room.reservations.add(reservation.reservation_id);
    let mine = this.byWorker.get(worker.peer_id);
    if (mine === undefined) {
      mine = new Set();
      this.byWorker.set(worker.peer_id, mine);
    }
    mine.add(reservation.reservation_id);
    room.assignments += 1;
    room.lastAssigned.set(worker.peer_id, room.assignments);
    this.track(request, { kind: 'reservation', reservation_id: reservation.reservation_id });
    return { kind: 'assigned', reservation, worker };
  }

  private track(request: RouteRequest, where: LiveRequest): void {
    let live = this.byClient.get(request.client_peer_id);
    if (live === undefined) {
      live = new Map();
      this.byClient.set(request.client_peer_id, live);
    }
    live.set(request.request_id, where);
  }

  private forget(request: { client_peer_id: string; request_id: string }): void {
    const live = this.byClient.get(request.client_peer_id);
    if (live === undefined) return;
    live.delete(request.request_id);
    if (live.size === 0) this.byClient.delete(request.client_peer_id);
  }

  /** Back into the queue at its original place (the queue is sorted by seq). */
  private requeue(request: RouteRequest): void {
    const room = this.room(request.room_id);
    let i = room.queue.length;
    while (i > 0 && (room.queue[i - 1] as RouteRequest).seq > request.seq) i -= 1;
    room.queue.splice(i, 0, request);
    this.track(request, { kind: 'queued', room_id: request.room_id });
  }

  private findQueued(clientPeerId: string, requestId: string): RouteRequest | undefined {
    const where = this.byClient.get(clientPeerId)?.get(requestId);
    if (where?.kind !== 'queued') return undefined;
    return this.rooms.get(where.room_id)?.queue.find((r) => r.client_peer_id === clientPeerId && r.request_id === requestId);
  }

  private unqueue(clientPeerId: string, requestId: string): RouteRequest | undefined {
    const request = this.findQueued(clientPeerId, requestId);
    if (request === undefined) return undefined;
    const room = this.rooms.get(request.room_id) as RoomRouting;
    room.queue.splice(room.queue.indexOf(request), 1);
    this.forget(request);
    return request;
  }

  /** Removes a reservation everywhere; its request is no longer live unless the caller requeues it. */
  private dropReservation(rec: ReservationRecord): void {
    this.reservations.delete(rec.reservation_id);
    this.rooms.get(rec.room_id)?.reservations.delete(rec.reservation_id);
    const mine = this.byWorker.get(rec.worker_peer_id);
    mine?.delete(rec.reservation_id);
    if (mine?.size === 0) this.byWorker.delete(rec.worker_peer_id);
    if (rec.client_peer_id !== null) {
      const where = this.byClient.get(rec.client_peer_id)?.get(rec.request.request_id);
      if (where?.kind === 'reservation' && where.reservation_id === rec.reservation_id) this.forget({ client_peer_id: rec.client_peer_id, request_id: rec.request.request_id });
    }
  }

  private detachClient(rec: ReservationRecord): void {
    if (rec.client_peer_id === null) return;
    this.forget({ client_peer_id: rec.client_peer_id, request_id: rec.request.request_id });
    this.reservations.set(rec.reservation_id, Object.freeze({ ...rec, client_peer_id: null }));
  }
}

/** The book's methods as a plain RoutingStore object, each first calling `guard` (the store's "still open" check). */
export function routingMethods(book: RoutingBook, guard: () => void): RoutingStore {
  const guarded =
    <A extends unknown[], R>(fn: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      guard();
      return fn.apply(book, args);
    };
  return {
    routeRequest: guarded(book.routeRequest),
    drainRoutingQueue: guarded(book.drainRoutingQueue),
    claimReservation: guarded(book.claimReservation),
    releaseReservation: guarded(book.releaseReservation),
    cancelRouteRequest: guarded(book.cancelRouteRequest),
    expireReservation: guarded(book.expireReservation),
    expireQueuedRequest: guarded(book.expireQueuedRequest),
    removeRoutingPeer: guarded(book.removeRoutingPeer),
    routingSnapshot: guarded(book.routingSnapshot),
  };
}
