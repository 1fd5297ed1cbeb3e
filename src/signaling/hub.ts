/**
 * The signaling hub: what happens to each frame a peer sends. Registration against the store,
 * discovery, metadata updates, relay to other peers (directly when the recipient is on this
 * instance, through the MessageBus otherwise), room events, liveness and disconnect cleanup.
 * Knows nothing about HTTP; the server hands it upgraded sockets.
 */
import type { WebSocket } from 'ws';
import { SleapRtcError, type ErrorCode } from '../errors.js';
import type { Logger } from '../log.js';
import { ProtocolError } from '../protocol/codec.js';
import type { Metadata, PeerInfo, PeerToServer, ServerToPeer } from '../protocol/signaling.js';
import { peerChannel, roomChannel, type MessageBus } from './bus.js';
import { PeerConnection } from './connection.js';
import { compileFilters } from './filters.js';
import { decodePeerFrame } from './frames.js';
import { newPeerId, tokenMatches } from './ids.js';
import { LocalPeers } from './local-peers.js';
import type { MetricsCounters } from './metrics.js';
import { TokenBucket, type RateLimitOptions } from './rate-limit.js';
import { Presence } from './presence.js';
import { Router, type Responder, type RoutingMessage } from './routing.js';
import { RoomFullError, StoreUnavailableError, type PeerRecord, type SignalingStore } from './store.js';

/** WebSocket close codes the server uses (4000-4999 is the application range). */
export const CLOSE_CODES = {
  INVALID_TOKEN: 4001,
  ROOM_NOT_FOUND: 4004,
  REGISTER_TIMEOUT: 4008,
  ROOM_FULL: 4029,
  ROOM_DELETED: 4004,
  GOING_AWAY: 1001,
  /** Registration failed inside the server (not the peer's fault). */
  INTERNAL_ERROR: 1011,
  /** The store is unreachable, or this process lost the peer's record: reconnect and register again. */
  TRY_AGAIN_LATER: 1013,
} as const;

export interface HubOptions {
  store: SignalingStore;
  bus: MessageBus;
  /** This instance's id in PeerRecord.node_id. */
  nodeId: string;
  logger: Logger;
  metrics: MetricsCounters;
  maxPayloadBytes: number;
  rateLimit: RateLimitOptions | false;
  registerTimeoutMs: number;
  maxMetadataBytes: number;
  maxBufferedBytes: number;
  maxJsonDepth: number;
  closeGraceMs: number;
  /** Called after changes to rooms or peers, so the server can refresh its store figures. */
  onStateChange: () => void;
  /** Job routing (routing.ts): the claim window of a reservation and the queue bounds. */
  routing: { reservationTimeoutMs: number; maxRequestsPerClient: number; maxQueuePerRoom: number; positionIntervalMs: number };
  /** A register past this many peers in the room is refused ROOM_FULL; undefined: no limit. */
  maxPeersPerRoom?: number;
  /** Frames held for a peer while its registration is answered. */
  maxHeldFrames: number;
  /** Run cross-process presence (a store shared by several processes). */
  presence: boolean;
}

type Relayed = Extract<ServerToPeer, { type: 'peer_message' | 'offer' | 'answer' | 'candidate' }>;

export class SignalingHub {
  private readonly connections = new Set<PeerConnection>();
  private readonly local: LocalPeers;
  private readonly cleanups = new Set<Promise<void>>();

  private readonly router: Router;
  private readonly presence: Presence | undefined;

  constructor(private readonly opts: HubOptions) {
    this.local = new LocalPeers(opts.bus);
    if (opts.presence) {
      this.presence = new Presence({
        store: opts.store,
        bus: opts.bus,
        nodeId: opts.nodeId,
        logger: opts.logger,
        host: {
          holdsLocally: (id) => this.local.get(id)?.state === 'registered',
          localPeerIds: () => this.local.ids(),
          evict: (id, reason) => this.evict(id, reason),
          registering: () => [...this.connections].some((c) => c.state === 'registering'),
          dropOrphan: (id) => {
            const conn = this.local.get(id);
            if (conn === undefined || conn.state !== 'registered') return;
            opts.logger.warn({ peer_id: id }, `peer ${id} is no longer in the store (it was restarted or swept); closing its connection so it registers again`);
            conn.ws.close(CLOSE_CODES.TRY_AGAIN_LATER, 'STORE_UNAVAILABLE');
          },
        },
      });
    }
    this.router = new Router({
      store: opts.store,
      logger: opts.logger,
      deliver: (peerId, message) => this.deliverTo(peerId, message),
      countError: (code) => opts.metrics.countError(code),
      isLocal: (id) => this.local.get(id)?.state === 'registered',
      ...opts.routing,
    });
  }

  /** Starts cross-process presence (when enabled); call once before accepting connections. */
  async start(): Promise<void> {
    await this.presence?.start();
  }

  /**
   * The room was deleted from the store (DELETE /rooms/<id>): every peer of it hears ROOM_DELETED.
   * Those on this process are closed at once; those on others are closed by their process's
   * presence sweep (their records are gone), and hear ROOM_DELETED again if they register.
   */
  async roomDeleted(roomId: string): Promise<void> {
    const frame = JSON.stringify({ type: 'error', code: 'ROOM_DELETED', message: `Room "${roomId}" was deleted; it will not come back.` });
    for (const conn of this.connections) {
      if (conn.peer?.room_id !== roomId || conn.state !== 'registered') continue;
      conn.send(frame);
      conn.ws.close(CLOSE_CODES.ROOM_DELETED, 'ROOM_DELETED');
    }
    // Local members are closing now, so only other processes' members still get this one.
    await this.opts.bus.publish(roomChannel(roomId), { frame }).catch((err: unknown) => this.opts.logger.warn({ err, room_id: roomId }, 'could not tell the room it was deleted'));
    this.opts.onStateChange();
  }

  /** One pass over the store's claim and queue deadlines (the server runs it on a timer). */
  sweepDeadlines(): Promise<void> {
    return this.router.sweepDeadlines();
  }

  attach(ws: WebSocket): void {
    const o = this.opts;
    const bucket = o.rateLimit === false ? undefined : new TokenBucket(o.rateLimit);
    const conn = new PeerConnection(ws, bucket, o.maxBufferedBytes, (c) => this.dropSlowConsumer(c), o.maxHeldFrames);
    this.connections.add(conn);
    o.metrics.connections += 1;
    conn.registerTimer = setTimeout(() => {
      if (conn.state !== 'open' && conn.state !== 'registering') return;
      this.fail(conn, 'NOT_REGISTERED', `No "register" within ${o.registerTimeoutMs} ms; closing the connection.`);
      conn.state = 'closing';
      ws.close(CLOSE_CODES.REGISTER_TIMEOUT, 'register timeout');
    }, o.registerTimeoutMs);
    conn.registerTimer.unref();

    ws.on('pong', () => {
      conn.missedPongs = 0;
    });
    ws.on('message', (data, isBinary) => {
      // Nothing a peer sends may take the process down: whatever escapes is this peer's failure.
      try {
        this.onFrame(conn, data as Buffer, isBinary);
      } catch (err) {
        this.lastResort(conn, err);
      }
    });
    ws.on('error', (err) => o.logger.debug({ err }, 'peer socket error'));
    ws.on('close', () => {
      const done = this.onClose(conn).finally(() => this.cleanups.delete(done));
      this.cleanups.add(done);
    });
  }

  /** One liveness round: drops peers that missed two pongs, pings the rest. */
  heartbeat(): void {
    for (const conn of this.connections) {
      if (conn.state === 'closed') continue;
      if (conn.missedPongs >= 2) {
        this.opts.logger.info({ peer_id: conn.peer?.peer_id }, `peer ${conn.peer?.peer_id ?? '(unregistered)'} missed two pongs; dropping it`);
        conn.ws.terminate();
        continue;
      }
      conn.missedPongs += 1;
      try {
        conn.ws.ping();
      } catch {
        // Socket already closing; its close event does the cleanup.
      }
    }
  }

  /** Closes every socket (1001), forcibly after the grace period, and waits for their cleanup. */
  async closeAll(): Promise<void> {
    const grace = setTimeout(() => {
      for (const conn of this.connections) conn.ws.terminate();
    }, this.opts.closeGraceMs);
    for (const conn of this.connections) conn.ws.close(CLOSE_CODES.GOING_AWAY, 'server shutting down');
    while (this.connections.size > 0 || this.cleanups.size > 0) {
      await Promise.race([...this.cleanups, new Promise((r) => setTimeout(r, 10))]);
    }
    clearTimeout(grace);
    this.router.close();
    await this.presence?.stop();
  }

  // ---- inbound frames ------------------------------------------------------------------------

  private onFrame(conn: PeerConnection, data: Buffer, isBinary: boolean): void {
    this.opts.metrics.messagesReceived += 1;
    if (conn.state === 'closing' || conn.state === 'closed') return;
    if (conn.bucket !== undefined && !conn.bucket.take()) {
      // One reply per flood, not one per refused frame: replying to each would double the traffic.
      if (!conn.rateLimited) {
        conn.rateLimited = true;
        const retry = conn.bucket.retryAfterMs();
        this.fail(conn, 'RATE_LIMITED', `Too many messages; frames are being dropped. Slow down and retry after ${retry} ms.`, {
          details: { retry_after_ms: retry },
        });
      }
      return;
    }
    conn.rateLimited = false;
    let message: PeerToServer;
    try {
      message = decodePeerFrame(data, isBinary, this.opts);
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err;
      this.fail(conn, err.code, err.message, Object.keys(err.details).length ? { details: { ...err.details } } : {});
      return;
    }
    conn.queue.push(message);
    if (!conn.busy) {
      const running = this.drain(conn).catch((err: unknown) => this.lastResort(conn, err));
      // Only a drain that is still waiting on the store needs to be remembered.
      if (conn.busy) conn.draining = running;
    }
  }

  /** Runs queued messages one at a time; synchronous handlers run without yielding. */
  private async drain(conn: PeerConnection): Promise<void> {
    conn.busy = true;
    try {
      while (conn.queue.length > 0 && conn.state !== 'closed') {
        const message = conn.queue.shift() as PeerToServer;
        try {
          const pending = this.handle(conn, message);
          if (pending !== undefined) await pending;
        } catch (err) {
          this.internalError(conn, err, message);
        }
      }
    } finally {
      conn.busy = false;
      conn.draining = undefined;
    }
  }

  private handle(conn: PeerConnection, m: PeerToServer): void | Promise<void> {
    if (m.type === 'register') {
      if (conn.state !== 'open') {
        this.fail(conn, 'ALREADY_REGISTERED', `This connection is already registered as "${conn.peer?.peer_id ?? '?'}"; open a new connection to register again.`);
        return;
      }
      return this.register(conn, m);
    }
    const self = conn.peer;
    if (conn.state !== 'registered' || self === undefined) {
      this.fail(conn, 'NOT_REGISTERED', `Send "register" first: "${m.type}" is only accepted from a registered peer.`, requestIdOf(m));
      return;
    }
    switch (m.type) {
      case 'update_metadata':
        return this.updateMetadata(conn, m.metadata);
      case 'discover_peers':
        return this.discover(conn, m);
      case 'peer_message':
        return this.relay(conn, m.to_peer_id, { type: 'peer_message', from_peer_id: self.peer_id, payload: m.payload });
      case 'offer':
      case 'answer':
        return this.relay(conn, m.target, { type: m.type, sender: self.peer_id, sdp: m.sdp });
      case 'candidate':
        return this.relay(conn, m.target, { type: 'candidate', sender: self.peer_id, candidate: m.candidate, mid: m.mid });
      case 'request_worker':
      case 'cancel_request':
      case 'claim_reservation':
      case 'release_reservation':
      case 'get_room_status':
        return this.router.handle(self, m satisfies RoutingMessage, this.responder(conn));
    }
  }

  private responder(conn: PeerConnection): Responder {
    return {
      send: (message) => conn.send(encode(message)),
      fail: (code, message, extra) => this.fail(conn, code, message, extra),
    };
  }

  /** To a peer on this instance directly, else through the bus. */
  private deliverTo(peerId: string, message: ServerToPeer): void | Promise<void> {
    const local = this.local.get(peerId);
    if (local !== undefined) {
      local.deliver(encode(message));
      return;
    }
    return this.opts.bus.publish(peerChannel(peerId), { frame: encode(message) });
  }

  // ---- register ------------------------------------------------------------------------------

  private async register(conn: PeerConnection, m: Extract<PeerToServer, { type: 'register' }>): Promise<void> {
    const { store } = this.opts;
    if (!this.metadataFits(conn, m.metadata)) return;
    conn.state = 'registering';
    const room = await store.getRoom(m.room_id);
    if (room === undefined && (await store.wasDeleted(m.room_id))) {
      this.refuse(conn, 'ROOM_DELETED', `Room "${m.room_id}" was deleted (or expired after sitting idle); it will not come back. Create a new one with \`sleap-rtc room create\`.`);
      return;
    }
    if (room === undefined) {
      this.refuse(conn, 'ROOM_NOT_FOUND', `Room "${m.room_id}" does not exist (it was deleted, expired, or never created); create one with \`sleap-rtc room create\`.`);
      return;
    }
    if (!tokenMatches(m.token, room.token_sha256)) {
      this.refuse(conn, 'INVALID_TOKEN', `The token is wrong for room "${m.room_id}"; use the token printed by \`sleap-rtc room create\`.`);
      return;
    }
    // Coming back under its old id after its connection or its server process died: take it back.
    if (m.peer_id !== undefined) await this.reclaimId(m.peer_id);
    let record: PeerRecord | undefined;
    try {
      record = await store.addPeer({
        room_id: m.room_id,
        role: m.role,
        metadata: m.metadata,
        node_id: this.opts.nodeId,
        preferred_id: m.peer_id ?? newPeerId(m.role),
        ...(this.opts.maxPeersPerRoom !== undefined ? { max_room_peers: this.opts.maxPeersPerRoom } : {}),
      });
    } catch (err) {
      if (!(err instanceof RoomFullError)) throw err;
      this.refuse(conn, 'ROOM_FULL', `Room "${m.room_id}" already has ${err.limit} peers, the most this server allows ([server] max_peers_per_room); try again when one has left.`, { limit: err.limit });
      return;
    }
    if (record === undefined) {
      this.refuse(conn, 'ROOM_NOT_FOUND', `Room "${m.room_id}" expired while registering; create a new one with \`sleap-rtc room create\`.`);
      return;
    }
    if (conn.state !== 'registering') {
      // The socket closed while we were talking to the store; nobody has heard of this peer yet.
      await store.removePeer(record.peer_id);
      return;
    }
    const peer = { peer_id: record.peer_id, room_id: record.room_id, role: record.role };
    conn.peer = peer;
    conn.state = 'registered';
    clearTimeout(conn.registerTimer);
    this.opts.metrics.peers[peer.role] += 1;
    // Subscribe before listing the room, holding what arrives meanwhile: a peer joining or
    // leaving during the listing is then either in the list or announced after `registered`.
    conn.hold();
    this.local.add(conn);
    let others: PeerInfo[];
    try {
      await this.opts.bus.settled();
      const listed = await store.listPeers(peer.room_id);
      this.local.setRoster(peer.room_id, listed.map((p) => p.peer_id));
      others = listed.filter((p) => p.peer_id !== peer.peer_id).map(toPeerInfo);
    } catch (err) {
      await this.undoRegistration(conn, peer, err);
      return;
    }
    conn.release(encode({ type: 'registered', peer_id: peer.peer_id, room_id: peer.room_id, peers: others }));
    this.opts.logger.info({ peer_id: peer.peer_id, room_id: peer.room_id, role: peer.role }, `${peer.role} ${peer.peer_id} joined room ${peer.room_id}`);
    await this.broadcast(peer.room_id, { type: 'peer_joined', peer: toPeerInfo(record) }, peer.peer_id);
    if (peer.role === 'worker') await this.router.workerChanged(peer.room_id);
    this.opts.onStateChange();
  }

  /**
   * The peer asks for an id a record in the store still holds. When no live connection holds it
   * (its socket is gone on this process, or its process died or no longer has it), that record is
   * stale: it is removed as if the peer had left, so the id is free again.
   */
  private async reclaimId(peerId: string): Promise<void> {
    const holder = await this.opts.store.getPeer(peerId);
    if (holder === undefined) return;
    const alive = this.presence !== undefined ? await this.presence.holds(holder.node_id, peerId) : holder.node_id !== this.opts.nodeId || this.local.get(peerId)?.state === 'registered';
    if (alive) return;
    await this.evict(peerId, holder.node_id === this.opts.nodeId ? 'disconnected' : 'server_lost');
  }

  /** Removes a peer that has no live connection from the store, tells its room, and fixes routing. */
  private async evict(peerId: string, reason: 'disconnected' | 'server_lost'): Promise<PeerRecord | undefined> {
    const record = await this.opts.store.removePeer(peerId);
    if (record === undefined) return undefined;
    this.opts.logger.info({ peer_id: peerId, room_id: record.room_id, node: record.node_id }, `${record.role} ${peerId} removed from room ${record.room_id} (${reason === 'server_lost' ? 'its server process is gone' : 'stale record'})`);
    await this.broadcast(record.room_id, { type: 'peer_left', peer_id: peerId }, peerId);
    await this.router.peerLeft({ peer_id: peerId, room_id: record.room_id, role: record.role }, reason);
    this.opts.onStateChange();
    return record;
  }

  /**
   * Registration failed after the peer joined the room (the store went away while listing it):
   * take it out again, forget what was held for it, and tell it so it can retry; the socket is
   * closed, so nothing waits on it.
   */
  private async undoRegistration(conn: PeerConnection, peer: NonNullable<PeerConnection['peer']>, err: unknown): Promise<void> {
    conn.dropHeld();
    this.local.remove(conn, peer);
    conn.peer = undefined;
    this.opts.metrics.peers[peer.role] -= 1;
    conn.state = 'closing';
    const transient = err instanceof StoreUnavailableError;
    if (!transient) this.opts.logger.error({ err, peer_id: peer.peer_id }, `registering ${peer.peer_id} failed`);
    else this.opts.logger.warn({ err, peer_id: peer.peer_id }, `registering ${peer.peer_id} failed: the store is unreachable`);
    this.fail(
      conn,
      transient ? 'STORE_UNAVAILABLE' : 'INTERNAL',
      transient ? 'The signaling server cannot reach its store; registration was undone. Reconnect and register again in a moment.' : 'Registration failed inside the server; it has been logged. Reconnect and register again.',
    );
    conn.ws.close(transient ? CLOSE_CODES.TRY_AGAIN_LATER : CLOSE_CODES.INTERNAL_ERROR, transient ? 'STORE_UNAVAILABLE' : 'INTERNAL');
    await this.opts.store.removePeer(peer.peer_id).catch((e: unknown) => this.opts.logger.warn({ err: e, peer_id: peer.peer_id }, 'could not take the half-registered peer out of the store; the presence sweep will'));
  }

  /** Answers a failed `register` and closes the socket with the code's close code. */
  private refuse(conn: PeerConnection, code: 'ROOM_NOT_FOUND' | 'ROOM_DELETED' | 'INVALID_TOKEN' | 'ROOM_FULL', message: string, details?: Record<string, unknown>): void {
    this.fail(conn, code, message, details !== undefined ? { details } : {});
    if (conn.state === 'closed') return;
    conn.state = 'closing';
    conn.ws.close(CLOSE_CODES[code], code);
  }

  // ---- registered peers ----------------------------------------------------------------------

  private async updateMetadata(conn: PeerConnection, metadata: Metadata): Promise<void> {
    const self = conn.peer as NonNullable<PeerConnection['peer']>;
    if (!this.metadataFits(conn, metadata)) return;
    const record = await this.opts.store.setMetadata(self.peer_id, metadata);
    if (record === undefined) return;
    await this.broadcast(self.room_id, { type: 'peer_updated', peer: toPeerInfo(record) }, self.peer_id);
    if (self.role === 'worker') await this.router.workerChanged(self.room_id);
  }

  private async discover(conn: PeerConnection, m: Extract<PeerToServer, { type: 'discover_peers' }>): Promise<void> {
    const self = conn.peer as NonNullable<PeerConnection['peer']>;
    const matches = compileFilters(m.filters);
    const peers: PeerInfo[] = [];
    for (const p of await this.opts.store.listPeers(self.room_id)) {
      if (p.peer_id !== self.peer_id && matches(p)) peers.push(toPeerInfo(p));
    }
    conn.send(encode({ type: 'peer_list', peers, ...(m.request_id !== undefined ? { request_id: m.request_id } : {}) }));
  }

  /**
   * Forwards to a peer of the sender's own room. The recipient is looked up here first (no store
   * round trip on the common single-instance path), then in the store.
   */
  private relay(conn: PeerConnection, targetId: string, message: Relayed): void | Promise<void> {
    const self = conn.peer as NonNullable<PeerConnection['peer']>;
    const local = this.local.get(targetId);
    if (local?.peer !== undefined) {
      if (local.peer.room_id !== self.room_id) return this.notInRoom(conn, targetId);
      local.deliver(encode(message));
      this.opts.metrics.messagesRelayed += 1;
      return;
    }
    if (this.local.inRoster(self.room_id, targetId)) {
      // A member of the sender's room on another instance: no store lookup, and no waiting for
      // the publish either (messages from one peer still leave in order on the bus connection).
      this.opts.metrics.messagesRelayed += 1;
      this.opts.bus.publish(peerChannel(targetId), { frame: encode(message) }).catch((err: unknown) => {
        this.opts.logger.warn({ err, to: targetId }, 'relay through the bus failed');
        this.fail(conn, 'STORE_UNAVAILABLE', `Could not relay to "${targetId}": the signaling server cannot reach its store. Try again in a moment.`, { details: { peer_id: targetId } });
      });
      return;
    }
    return this.relayRemote(conn, self.room_id, targetId, message);
  }

  private async relayRemote(conn: PeerConnection, roomId: string, targetId: string, message: Relayed): Promise<void> {
    const target = await this.opts.store.getPeer(targetId);
    if (target === undefined) {
      this.fail(conn, 'PEER_NOT_FOUND', `No peer "${targetId}" is connected; list the room's peers with "discover_peers".`, {
        details: { peer_id: targetId },
      });
      return;
    }
    if (target.room_id !== roomId) return this.notInRoom(conn, targetId);
    await this.opts.bus.publish(peerChannel(targetId), { frame: encode(message) });
    this.opts.metrics.messagesRelayed += 1;
  }

  private notInRoom(conn: PeerConnection, targetId: string): void {
    this.fail(conn, 'NOT_IN_ROOM', `Peer "${targetId}" is not in your room; messages go only to peers of the same room.`, {
      details: { peer_id: targetId },
    });
  }

  private broadcast(roomId: string, message: ServerToPeer, except: string): Promise<void> {
    return this.opts.bus.publish(roomChannel(roomId), { frame: encode(message), except });
  }

  // ---- leaving -------------------------------------------------------------------------------

  private async onClose(conn: PeerConnection): Promise<void> {
    if (conn.state === 'closed') return;
    conn.state = 'closed';
    clearTimeout(conn.registerTimer);
    conn.queue.length = 0;
    // Let an in-flight message (e.g. a register talking to the store) finish first.
    if (conn.draining !== undefined) await conn.draining;
    this.connections.delete(conn);
    this.opts.metrics.connections -= 1;
    const peer = conn.peer;
    if (peer === undefined) return;
    conn.peer = undefined;
    this.local.remove(conn, peer);
    this.opts.metrics.peers[peer.role] -= 1;
    try {
      await this.opts.store.removePeer(peer.peer_id);
      await this.broadcast(peer.room_id, { type: 'peer_left', peer_id: peer.peer_id }, peer.peer_id);
      await this.router.peerLeft(peer);
    } catch (err) {
      this.opts.logger.error({ err, peer_id: peer.peer_id }, 'could not remove a departed peer from the store');
    }
    this.opts.logger.info({ peer_id: peer.peer_id, room_id: peer.room_id }, `${peer.role} ${peer.peer_id} left room ${peer.room_id}`);
    this.opts.onStateChange();
  }

  private dropSlowConsumer(conn: PeerConnection): void {
    if (conn.state === 'closed') return;
    this.opts.logger.warn({ peer_id: conn.peer?.peer_id }, `peer ${conn.peer?.peer_id ?? '(unregistered)'} is not reading its messages; disconnecting it`);
    conn.ws.terminate();
  }

  // ---- errors --------------------------------------------------------------------------------

  /**
   * Something threw where no handler expected it (even the error path itself, e.g. a log
   * destination that fails). The process stays up; this peer's connection is closed (1011) so it
   * starts afresh, and nothing here may throw again.
   */
  private lastResort(conn: PeerConnection, err: unknown): void {
    try {
      this.opts.logger.error({ err, peer_id: conn.peer?.peer_id }, 'a message handler failed unexpectedly; closing that peer\'s connection');
    } catch {
      // The logger itself is what fails; there is nowhere left to report to.
    }
    try {
      this.opts.metrics.countError('INTERNAL');
      conn.sendError('INTERNAL', 'The server failed while handling your message; the connection is closed. Reconnect and try again.');
      conn.ws.close(CLOSE_CODES.INTERNAL_ERROR, 'INTERNAL');
    } catch {
      conn.ws.terminate();
    }
  }

  private metadataFits(conn: PeerConnection, metadata: Metadata): boolean {
    const bytes = Buffer.byteLength(JSON.stringify(metadata));
    if (bytes <= this.opts.maxMetadataBytes) return true;
    this.fail(conn, 'INVALID_MESSAGE', `Metadata of ${bytes} bytes exceeds the ${this.opts.maxMetadataBytes}-byte limit; advertise less.`, {
      details: { limit: this.opts.maxMetadataBytes },
    });
    return false;
  }

  private fail(conn: PeerConnection, code: ErrorCode, message: string, extra: { details?: Record<string, unknown>; request_id?: string } = {}): void {
    this.opts.metrics.countError(code);
    conn.sendError(code, message, extra);
  }

  private internalError(conn: PeerConnection, err: unknown, message: PeerToServer): void {
    if (err instanceof SleapRtcError) {
      this.fail(conn, err.code, err.message, requestIdOf(message));
      return;
    }
    if (err instanceof StoreUnavailableError) {
      this.opts.logger.warn({ err, type: message.type, peer_id: conn.peer?.peer_id }, `handling "${message.type}" failed: the store is unreachable`);
      this.fail(conn, 'STORE_UNAVAILABLE', `The signaling server cannot reach its store, so "${message.type}" was not handled; try again in a moment.`, requestIdOf(message));
      if (conn.state === 'registering') conn.state = 'open';
      return;
    }
    this.opts.logger.error({ err, type: message.type, peer_id: conn.peer?.peer_id }, `handling "${message.type}" failed`);
    this.fail(conn, 'INTERNAL', `The server could not handle "${message.type}"; it has been logged. Try again.`, requestIdOf(message));
    // A register that failed midway must not leave the connection stuck in "registering".
    if (conn.state === 'registering') conn.state = 'open';
  }
}

/** Typed so every frame the server writes is checked against ServerToPeer at compile time. */
function encode(message: ServerToPeer): string {
  return JSON.stringify(message);
}

function toPeerInfo(p: PeerRecord): PeerInfo {
  return { peer_id: p.peer_id, role: p.role, metadata: p.metadata };
}

function requestIdOf(m: PeerToServer): { request_id?: string } {
  switch (m.type) {
    case 'discover_peers':
    case 'get_room_status':
      return m.request_id !== undefined ? { request_id: m.request_id } : {};
    case 'request_worker':
    case 'cancel_request':
      return { request_id: m.request_id };
    default:
      return {};
  }
}
