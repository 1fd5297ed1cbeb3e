/**
 * The router: what the server does with routing messages and with the peer events that change
 * who can be served (a worker joins, changes its metadata, leaves). Decisions are made by the
 * store in one atomic step each (routing-store.ts); this file turns their outcomes into
 * messages, keeps the claim and queue-timeout timers, and reports queue positions.
 *
 * Routing work for one room runs one operation at a time on this instance (a "lane"), so the
 * messages a client gets follow the order of the decisions. A newly queued request hears its
 * position at once; after that, positions are recomputed at most once per `positionIntervalMs`
 * per room (every assignment moves everyone behind it up by one, so reporting each move would
 * cost a message per queued client per assignment), and a client hears only when its position
 * or its count of matching workers changed.
 */
import type { ErrorCode } from '../errors.js';
import type { Logger } from '../log.js';
import type { PeerToServer, ServerToPeer } from '../protocol/signaling.js';
import type { LocalPeer } from './connection.js';
import { describeFailure } from './routing-messages.js';
import { queuePositions, workerStatusEntries, type QueueFacts } from './routing-positions.js';
import { RoutingOps, type RoomView, type RoutedRequest } from './routing-ops.js';
import type { NewRouteRequest, ReservationRecord, RouteRejection, RouteRequest, RoutingEvent, RoutingOutcome, RoutingParams } from './routing-store.js';
import type { PeerRecord, SignalingStore } from './store.js';

export type RoutingMessage = Extract<
  PeerToServer,
  { type: 'request_worker' | 'cancel_request' | 'claim_reservation' | 'release_reservation' | 'get_room_status' }
>;

export interface Responder {
  send(message: ServerToPeer): void;
  fail(code: ErrorCode, message: string, extra?: { details?: Record<string, unknown>; request_id?: string }): void;
}

export interface RouterOptions {
  store: SignalingStore;
  logger: Logger;
  /** Sends a message to a peer on any instance (a peer that is gone simply does not get it). */
  deliver(peerId: string, message: ServerToPeer): void | Promise<void>;
  countError(code: ErrorCode): void;
  reservationTimeoutMs: number;
  maxRequestsPerClient: number;
  maxQueuePerRoom: number;
  /** Queue positions are reported at most this often per room (besides the first, immediate one). */
  positionIntervalMs: number;
  /**
   * Whether the client's socket is on this instance. Each instance reports queue positions to its
   * own clients only (so a client hears each change once, whichever instance made it), and looks
   * at the room again every positionIntervalMs while one of them is queued there, since another
   * instance may have moved the queue. Absent: every client is local (one instance).
   */
  isLocal?: (peerId: string) => boolean;
  now?: () => number;
}

interface Lane {
  tail: Promise<void>;
  pending: number;
}

interface RoomPositions {
  /** request key -> the position facts last sent */
  sent: Map<string, string>;
  lastAt: number;
  timer: NodeJS.Timeout | undefined;
}

export class Router {
  private readonly now: () => number;
  private readonly lanes = new Map<string, Lane>();
  private readonly positions = new Map<string, RoomPositions>();
  private readonly claimTimers = new Map<string, NodeJS.Timeout>();
  private readonly queueTimers = new Map<string, NodeJS.Timeout>();
  private readonly ops: RoutingOps;
  private closed = false;

  constructor(private readonly opts: RouterOptions) {
    this.now = opts.now ?? Date.now;
    this.ops = new RoutingOps(opts.store);
  }

  handle(peer: LocalPeer, m: RoutingMessage, reply: Responder): Promise<void> {
    switch (m.type) {
      case 'request_worker':
        if (!this.roleIs(peer, 'client', m.type, reply, m.request_id)) return Promise.resolve();
        return this.requestWorker(peer, m, reply);
      case 'cancel_request':
        if (!this.roleIs(peer, 'client', m.type, reply, m.request_id)) return Promise.resolve();
        return this.inLane(peer.room_id, true, () => this.ops.cancelRouteRequest(peer.room_id, peer.peer_id, m.request_id, this.params()), async (outcome) => {
          this.requestOver(peer.room_id, requestKey(peer.peer_id, m.request_id));
          await this.apply(outcome);
          reply.send({ type: 'request_cancelled', request_id: m.request_id });
          if (outcome.status !== 'unknown') this.opts.logger.info({ peer_id: peer.peer_id, request_id: m.request_id }, `client ${peer.peer_id} cancelled request ${m.request_id} (${outcome.status})`);
        });
      case 'claim_reservation':
        if (!this.roleIs(peer, 'worker', m.type, reply)) return Promise.resolve();
        return this.inLane(peer.room_id, false, () => this.ops.claimReservation(peer.room_id, m.reservation_id, peer.peer_id), (rec) => {
          if (rec === undefined) {
            reply.fail('RESERVATION_NOT_FOUND', `You hold no reservation "${m.reservation_id}": it expired (not claimed within ${this.opts.reservationTimeoutMs} ms), was cancelled, or is another worker's. Refuse the job.`, {
              details: { reservation_id: m.reservation_id },
            });
            return;
          }
          this.clearClaimTimer(rec.reservation_id);
          reply.send({ type: 'reservation_claimed', reservation_id: rec.reservation_id, request_id: rec.request.request_id, client_peer_id: rec.request.client_peer_id });
        });
      case 'release_reservation':
        return this.inLane(peer.room_id, true, () => this.ops.releaseReservation(peer.room_id, m.reservation_id, peer.peer_id, this.params()), async (outcome) => {
          if (outcome.status === 'not_yours') {
            reply.fail('RESERVATION_NOT_FOUND', `Reservation "${m.reservation_id}" is not yours to release; only its worker or its client may.`, {
              details: { reservation_id: m.reservation_id },
            });
            return;
          }
          this.clearClaimTimer(m.reservation_id);
          await this.apply(outcome);
          reply.send({ type: 'reservation_released', reservation_id: m.reservation_id });
        });
      case 'get_room_status':
        return this.inLane(peer.room_id, false, () => this.ops.roomView(peer.room_id), ({ snapshot, peers }) => {
          reply.send({
            type: 'room_status',
            ...(m.request_id !== undefined ? { request_id: m.request_id } : {}),
            workers: workerStatusEntries(peers, snapshot),
            queue_length: snapshot.queue.length,
          });
        });
    }
  }

  /** A worker joined or changed its metadata: it may now serve queued requests. */
  workerChanged(roomId: string): Promise<void> {
    return this.inLane(roomId, true, () => this.ops.drainRoutingQueue(roomId, this.params()), (outcome) => this.apply(outcome));
  }

  /** Call after the peer was removed from the store; `reason` is what the other side of its running jobs hears. */
  peerLeft(peer: LocalPeer, reason: 'disconnected' | 'server_lost' = 'disconnected'): Promise<void> {
    return this.inLane(peer.room_id, true, () => this.ops.removeRoutingPeer(peer.peer_id, peer.room_id, this.params()), async (outcome) => {
      await this.apply(outcome, reason);
      const prefix = requestKey(peer.peer_id, '');
      const sent = this.positions.get(peer.room_id)?.sent;
      for (const key of sent?.keys() ?? []) {
        if (key.startsWith(prefix)) this.requestOver(peer.room_id, key);
      }
    });
  }

  /**
   * Expires the claim and queue deadlines that have passed in any room of the store, whichever
   * process made the decision (that process may have died). The server calls this on a timer;
   * the local timers below only make expiry prompt on the deciding process.
   */
  async sweepDeadlines(): Promise<void> {
    if (this.closed) return;
    const due = await this.opts.store.dueRoutingRooms(this.now());
    await Promise.all(
      due.map((roomId) =>
        this.inLane(roomId, true, () => this.ops.expireDue(roomId, this.params()), (outcome) => this.apply(outcome)),
      ),
    );
  }

  /** Stops every timer; routing messages after this are ignored. Safe twice. */
  close(): void {
    this.closed = true;
    for (const t of this.claimTimers.values()) clearTimeout(t);
    for (const t of this.queueTimers.values()) clearTimeout(t);
    this.claimTimers.clear();
    this.queueTimers.clear();
    for (const p of this.positions.values()) clearTimeout(p.timer);
    this.positions.clear();
  }

  // ---- request_worker -------------------------------------------------------------------------

  private requestWorker(peer: LocalPeer, m: Extract<RoutingMessage, { type: 'request_worker' }>, reply: Responder): Promise<void> {
    const now = this.now();
      const request: NewRouteRequest = {
        room_id: peer.room_id,
        client_peer_id: peer.peer_id,
        request_id: m.request_id,
        requirements: {
          job_type: m.job_type,
          required_storage: m.required_storage ?? null,
          ...(m.min_gpu_memory_mb !== undefined ? { min_gpu_memory_mb: m.min_gpu_memory_mb } : {}),
          ...(m.worker !== undefined ? { worker: m.worker } : {}),
        },
        requested_at_ms: now,
        deadline_ms: m.queue_timeout_s === undefined ? null : now + Math.round(m.queue_timeout_s * 1000),
        ...(m.wait_for_match === true ? { wait_for_match: true } : {}),
      };
    const decide = (): Promise<RoutedRequest> =>
      this.ops.routeRequest(request, { ...this.params(now), max_requests_per_client: this.opts.maxRequestsPerClient, max_queue_per_room: this.opts.maxQueuePerRoom });
    return this.inLane(peer.room_id, true, decide, async (result) => {
      if (result.rejected !== undefined) this.reject(m.request_id, result.rejected, reply);
      await this.apply(result);
      const settled = result.rejected !== undefined || result.events.some((e) => sameRequest(e, peer.peer_id, m.request_id));
      // Queued: the client hears its position now, not at the next periodic report (its place
      // was worked out in the same store update that queued it).
      // Always: what this instance last sent under the same id may be a request of the client's
      // that ended on another instance (its timeout fired there), and would hide this answer.
      if (!settled && result.queued !== undefined) {
        this.armQueueTimer(result.queued.request);
        const positions = this.roomPositions(peer.room_id);
        positions.sent.delete(requestKey(peer.peer_id, m.request_id));
        await this.sendPosition(positions, result.queued.request, result.queued.facts);
      }
    });
  }

  private reject(requestId: string, rejection: RouteRejection, reply: Responder): void {
    const extra = { request_id: requestId };
    switch (rejection.kind) {
      case 'duplicate':
        reply.fail('INVALID_MESSAGE', `Request id "${requestId}" is already in use by one of your requests; use a new id for each request.`, extra);
        return;
      case 'client_limit':
        reply.fail('QUEUE_FULL', `You already have ${rejection.limit} requests queued or holding a worker; cancel one before asking for another.`, {
          ...extra,
          details: { limit: rejection.limit, scope: 'client' },
        });
        return;
      case 'room_limit':
        reply.fail('QUEUE_FULL', `The room's queue already holds ${rejection.limit} requests; try again later.`, {
          ...extra,
          details: { limit: rejection.limit, scope: 'room' },
        });
        return;
    }
  }

  // ---- outcomes ------------------------------------------------------------------------------

  /**
   * Turns each event into its message. The decisions are already stored, so one event whose
   * message cannot be sent (the bus failed) must not keep the others from theirs; and the
   * deadlines are in the store, so a reservation whose local timer was never armed still expires.
   */
  private async apply(outcome: RoutingOutcome, leftReason: 'disconnected' | 'server_lost' = 'disconnected'): Promise<void> {
    for (const ev of outcome.events) {
      try {
        await this.applyEvent(ev, leftReason);
      } catch (err) {
        const request = ev.kind === 'failed' ? ev.request : ev.reservation.request;
        this.opts.logger.error({ err, request_id: request.request_id, event: ev.kind }, `could not send the "${ev.kind}" outcome of request ${request.request_id}`);
      }
    }
  }

  private async applyEvent(ev: RoutingEvent, leftReason: 'disconnected' | 'server_lost'): Promise<void> {
    if (ev.kind === 'partner_left') {
      const rec = ev.reservation;
      const role = ev.left_peer_id === rec.worker_peer_id ? 'worker' : 'client';
      this.opts.logger.info({ reservation_id: rec.reservation_id, left: ev.left_peer_id, notify: ev.notify_peer_id }, `${role} ${ev.left_peer_id} of running job ${rec.request.request_id} left; telling ${ev.notify_peer_id}`);
      await this.opts.deliver(ev.notify_peer_id, {
        type: 'job_peer_left',
        reservation_id: rec.reservation_id,
        request_id: rec.request.request_id,
        peer_id: ev.left_peer_id,
        role,
        reason: leftReason,
      });
      return;
    }
    if (ev.kind === 'assigned') {
      const rec = ev.reservation;
      const request = rec.request;
      this.requestOver(request.room_id, requestKey(request.client_peer_id, request.request_id));
      this.armClaimTimer(rec);
      this.opts.logger.info(
        { request_id: request.request_id, client: request.client_peer_id, worker: rec.worker_peer_id, reservation_id: rec.reservation_id },
        `request ${request.request_id} of ${request.client_peer_id} -> worker ${rec.worker_peer_id}${request.reassigned_from !== undefined ? ` (reassigned from ${request.reassigned_from.peer_id}: ${request.reassigned_from.reason})` : ''}`,
      );
      await this.opts.deliver(request.client_peer_id, {
        type: 'worker_assigned',
        request_id: request.request_id,
        reservation_id: rec.reservation_id,
        worker: toPeerInfo(ev.worker),
        claim_timeout_ms: this.opts.reservationTimeoutMs,
        ...(request.reassigned_from !== undefined ? { reassigned_from: { ...request.reassigned_from } } : {}),
      });
      return;
    }
    const { request, failure } = ev;
    this.requestOver(request.room_id, requestKey(request.client_peer_id, request.request_id));
    const { message, details } = describeFailure(request, failure, this.opts.reservationTimeoutMs, this.now());
    this.opts.countError(failure.code);
    this.opts.logger.info({ request_id: request.request_id, client: request.client_peer_id, code: failure.code }, `request ${request.request_id} of ${request.client_peer_id} failed: ${failure.code}`);
    await this.opts.deliver(request.client_peer_id, { type: 'error', code: failure.code, message, details, request_id: request.request_id });
  }

  // ---- lanes and positions -------------------------------------------------------------------

  /**
   * `decide` (a store operation) starts at once: the store makes the room's decisions in the order
   * they are asked for, batching those that arrive together (routing-ops.ts). `after` (the
   * messages) runs after the room's earlier routing work is done, so messages follow the order
   * of the decisions. `changes` means queue positions may have moved.
   */
  private inLane<T>(roomId: string, changes: boolean, decide: () => Promise<T>, after: (decided: T) => void | Promise<void>): Promise<void> {
    if (this.closed) return Promise.resolve();
    const decided = decide();
    // Its failure is reported through the lane below; this keeps it from counting as unhandled meanwhile.
    decided.catch(() => {});
    const op = async (): Promise<void> => {
      await after(await decided);
    };
    let lane = this.lanes.get(roomId);
    if (lane === undefined) {
      lane = { tail: Promise.resolve(), pending: 0 };
      this.lanes.set(roomId, lane);
    }
    const l = lane;
    l.pending += 1;
    const run = l.tail.then(async () => {
      try {
        if (!this.closed) await op();
      } finally {
        l.pending -= 1;
        if (l.pending === 0 && this.lanes.get(roomId) === l) this.lanes.delete(roomId);
        if (changes && !this.closed) this.positionsMoved(roomId);
      }
    });
    l.tail = run.catch(() => {});
    return run;
  }

  /** Schedules a position report for the room, no sooner than positionIntervalMs after the last. */
  private positionsMoved(roomId: string): void {
    if (this.closed) return;
    const st = this.roomPositions(roomId);
    if (st.timer !== undefined) return;
    const wait = Math.max(0, st.lastAt + this.opts.positionIntervalMs - this.now());
    st.timer = unref(
      setTimeout(() => {
        st.timer = undefined;
        void this.inLane(roomId, false, () => this.ops.roomView(roomId), (view) => this.reposition(roomId, view)).catch((err: unknown) =>
          this.opts.logger.error({ err, room_id: roomId }, 'could not report queue positions'),
        );
      }, wait),
    );
  }

  private roomPositions(roomId: string): RoomPositions {
    let st = this.positions.get(roomId);
    if (st === undefined) {
      st = { sent: new Map(), lastAt: 0, timer: undefined };
      this.positions.set(roomId, st);
    }
    return st;
  }

  private sendPosition(st: RoomPositions, request: RouteRequest, f: QueueFacts): void | Promise<void> {
    const key = requestKey(request.client_peer_id, request.request_id);
    const signature = `${f.position}/${f.matching_workers}`;
    if (st.sent.get(key) === signature) return;
    st.sent.set(key, signature);
    return this.opts.deliver(request.client_peer_id, {
      type: 'queue_position',
      request_id: request.request_id,
      position: f.position,
      queue_length: f.queue_length,
      matching_workers: f.matching_workers,
    });
  }

  /** Sends changed positions to every queued request of the room. */
  private async reposition(roomId: string, { snapshot, peers }: RoomView): Promise<void> {
    const st = this.roomPositions(roomId);
    st.lastAt = this.now();
    if (snapshot.queue.length === 0) {
      if (st.timer === undefined) this.positions.delete(roomId);
      else st.sent.clear();
      return;
    }
    const facts = queuePositions(snapshot.queue, peers);
    const live = new Set<string>();
    const sends: (void | Promise<void>)[] = [];
    const isLocal = this.opts.isLocal ?? (() => true);
    snapshot.queue.forEach((request, i) => {
      this.armQueueTimer(request);
      if (!isLocal(request.client_peer_id)) return;
      live.add(requestKey(request.client_peer_id, request.request_id));
      sends.push(this.sendPosition(st, request, facts[i] as QueueFacts));
    });
    for (const key of st.sent.keys()) if (!live.has(key)) st.sent.delete(key);
    await Promise.all(sends);
    // Another instance may move the queue without this one hearing of it: look again while a
    // client of this instance waits here (one small read while nothing changed).
    if (live.size > 0 && this.opts.isLocal !== undefined) this.positionsMoved(roomId);
  }

  // ---- timers --------------------------------------------------------------------------------

  private params(now = this.now()): RoutingParams {
    return { now_ms: now, reservation_ttl_ms: this.opts.reservationTimeoutMs };
  }

  private armClaimTimer(rec: ReservationRecord): void {
    const expiresAt = rec.expires_at_ms;
    if (expiresAt === null || this.closed) return;
    this.clearClaimTimer(rec.reservation_id);
    const fire = (): void => {
      // Timers may fire a little early by the wall clock; the store compares with it.
      const left = expiresAt - this.now();
      if (left > 0) {
        this.claimTimers.set(rec.reservation_id, unref(setTimeout(fire, left)));
        return;
      }
      this.claimTimers.delete(rec.reservation_id);
      void this.inLane(rec.room_id, true, () => this.ops.expireReservation(rec.room_id, rec.reservation_id, this.params()), (outcome) => this.apply(outcome)).catch((err: unknown) => this.opts.logger.error({ err }, 'reservation expiry failed'));
    };
    this.claimTimers.set(rec.reservation_id, unref(setTimeout(fire, Math.max(0, expiresAt - this.now()))));
  }

  private clearClaimTimer(reservationId: string): void {
    const t = this.claimTimers.get(reservationId);
    if (t === undefined) return;
    clearTimeout(t);
    this.claimTimers.delete(reservationId);
  }

  private armQueueTimer(request: RouteRequest): void {
    const deadline = request.deadline_ms;
    const key = requestKey(request.client_peer_id, request.request_id);
    if (deadline === null || this.queueTimers.has(key) || this.closed) return;
    const fire = (): void => {
      const left = deadline - this.now();
      if (left > 0) {
        this.queueTimers.set(key, unref(setTimeout(fire, left)));
        return;
      }
      this.queueTimers.delete(key);
      void this.inLane(request.room_id, true, () => this.ops.expireQueuedRequest(request.room_id, request.client_peer_id, request.request_id, this.params()), (outcome) => this.apply(outcome)).catch((err: unknown) => this.opts.logger.error({ err }, 'queue timeout failed'));
    };
    this.queueTimers.set(key, unref(setTimeout(fire, Math.max(0, deadline - this.now()))));
  }

  /** The request left the queue (served, failed, cancelled): no timer, and its next position is news. */
  private requestOver(roomId: string, key: string): void {
    this.clearQueueTimer(key);
    this.positions.get(roomId)?.sent.delete(key);
  }

  private clearQueueTimer(key: string): void {
    const t = this.queueTimers.get(key);
    if (t === undefined) return;
    clearTimeout(t);
    this.queueTimers.delete(key);
  }

  private roleIs(peer: LocalPeer, role: 'worker' | 'client', type: string, reply: Responder, requestId?: string): boolean {
    if (peer.role === role) return true;
    reply.fail('WRONG_ROLE', `"${type}" is only accepted from a ${role}; you registered as a ${peer.role}.`, requestId !== undefined ? { request_id: requestId } : {});
    return false;
  }
}

function sameRequest(ev: RoutingEvent, clientPeerId: string, requestId: string): boolean {
  if (ev.kind === 'partner_left') return false;
  const r = ev.kind === 'assigned' ? ev.reservation.request : ev.request;
  return r.client_peer_id === clientPeerId && r.request_id === requestId;
}

function requestKey(clientPeerId: string, requestId: string): string {
  return `${clientPeerId}\u0000${requestId}`;
}

function unref(t: NodeJS.Timeout): NodeJS.Timeout {
  t.unref();
  return t;
}

function toPeerInfo(p: PeerRecord): { peer_id: string; role: PeerRecord['role']; metadata: PeerRecord['metadata'] } {
  return { peer_id: p.peer_id, role: p.role, metadata: p.metadata };
}
