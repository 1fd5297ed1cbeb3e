/**
 * A peer's connection to the signaling server: register in a room, stay registered across drops,
 * and carry discovery, peer messages and WebRTC signals. Workers, clients and the `workers`
 * command all sit on top of this one class.
 *
 * Reconnects after an unexpected drop with exponential backoff and jitter, re-registering under
 * the same peer id and the latest metadata. A refusal of the first registration (wrong token,
 * unknown room) is final: it is a wrong flag, and retrying only hammers the server. Once
 * registered, the client waits out everything but a room the server says was deleted: jobs run
 * peer to peer, so a server restart must not end them (docs/jobs.md, "what happens when").
 */
import { EventEmitter } from 'node:events';
import { WebSocket, type RawData } from 'ws';
import { SleapRtcError, isErrorCode, type ErrorCode } from '../errors.js';
import { LIMITS } from '../limits.js';
import { silentLogger, type Logger } from '../log.js';
import type { ProtocolError} from '../protocol/codec.js';
import { decodeMessage, typesOf } from '../protocol/codec.js';
import {
  ServerToPeerSchema,
  type DiscoverFilters,
  type Metadata,
  type PeerInfo,
  type PeerToServer,
  type Role,
  type ServerToPeer,
} from '../protocol/signaling.js';
import { wsEndpointUrl } from './server-url.js';
import type { SignalMessage, Signaler } from './signaler.js';

const SERVER_TYPES = typesOf(ServerToPeerSchema);

/** Registration refusals: the server is up but will not take us (as opposed to being unreachable). */
const REFUSAL_CODES: ReadonlySet<ErrorCode> = new Set(['INVALID_TOKEN', 'ROOM_NOT_FOUND', 'INVALID_MESSAGE', 'ROOM_DELETED', 'ROOM_FULL']);
/**
 * While reconnecting, only these end the client: the room was really deleted. A refusal of the
 * first registration is always final (it is a wrong flag, not an outage), see connect().
 */
const FINAL_WHILE_RECONNECTING: ReadonlySet<ErrorCode> = new Set(['ROOM_DELETED']);

export interface SignalingClientOptions {
  serverUrl: string;
  roomId: string;
  token: string;
  role: Role;
  /** Asked-for peer id; the server picks another when it is taken. */
  peerId?: string;
  metadata?: Metadata;
  logger?: Logger;
  /** Reconnect after an unexpected drop (default true). */
  reconnect?: boolean;
  connectTimeoutMs?: number;
  requestTimeoutMs?: number;
  /** With no frame or ping from the server for this long, the link is presumed dead. */
  deadAfterMs?: number;
  reconnectInitialDelayMs?: number;
  reconnectMaxDelayMs?: number;
}

export type SignalingClientState = 'connecting' | 'open' | 'reconnecting' | 'closed';

export interface SignalingClientEvents {
  /** Every validated server message, for layers (routing) that speak their own requests. */
  message: [message: ServerToPeer];
  peer_message: [fromPeerId: string, payload: unknown];
  /** A remote peer sent an offer: the answering side should call acceptPeer for it. */
  offer: [fromPeerId: string];
  peer_joined: [peer: PeerInfo];
  peer_left: [peerId: string];
  peer_updated: [peer: PeerInfo];
  /** An `error` from the server that answers no pending request (e.g. a relay to a gone peer). */
  server_error: [error: SleapRtcError];
  disconnected: [reason: SleapRtcError];
  reconnected: [];
  /** A reconnect attempt failed (server down, or it refused us for a reason that may pass); the next is scheduled. */
  waiting: [reason: SleapRtcError];
  /** Closed for good: by close(), or because the server says the room was deleted. */
  closed: [reason: SleapRtcError | null];
}

interface PendingRequest {
  responseType: ServerToPeer['type'];
  resolve: (message: ServerToPeer) => void;
  reject: (err: SleapRtcError) => void;
  timer: NodeJS.Timeout;
}

export class SignalingClient extends EventEmitter<SignalingClientEvents> implements Signaler {
  readonly roomId: string;
  readonly role: Role;
  readonly serverUrl: string;
  /** Other peers in the room, kept current from registered / peer_joined / peer_left / peer_updated. */
  readonly peers = new Map<string, PeerInfo>();

  #opts: SignalingClientOptions;
  #log: Logger;
  #ws: WebSocket | null = null;
  #state: SignalingClientState = 'connecting';
  #peerId: string | undefined;
  #metadata: Metadata;
  #pending = new Map<string, PendingRequest>();
  #requestSeq = 0;
  #signalListeners = new Map<string, (signal: SignalMessage) => void>();
  #bufferedSignals = new Map<string, SignalMessage[]>();
  #deadTimer: NodeJS.Timeout | null = null;
  #reconnectTimer: NodeJS.Timeout | null = null;
  /** Connection attempts so far: picks the server of the next one. */
  #attempts = 0;
  #attempt = 0;
  #closing: Promise<void> | null = null;
  #lastWaitReason: string | null = null;

  private constructor(opts: SignalingClientOptions) {
    super();
    this.#opts = opts;
    this.roomId = opts.roomId;
    this.role = opts.role;
    this.serverUrl = opts.serverUrl;
    this.#peerId = opts.peerId;
    this.#metadata = opts.metadata ?? {};
    this.#log = opts.logger ?? silentLogger();
  }

  /**
   * Connects and registers; resolves once the server has answered `registered`. With several
   * servers (`serverUrl` "http://a:8080,http://b:8080", processes sharing one store), each one
   * that cannot be reached is skipped for the next; reconnects go round them in turn.
   */
  static async connect(opts: SignalingClientOptions): Promise<SignalingClient> {
    const client = new SignalingClient(opts);
    for (let tried = 1; ; tried++) {
      try {
        await client.#open();
        return client;
      } catch (err) {
        if (tried >= client.#urls.length || !(err instanceof SleapRtcError) || err.code !== 'SIGNALING_UNREACHABLE') throw err;
      }
    }
  }

  /** The servers to try, in turn (one unless `serverUrl` lists several, comma-separated). */
  get #urls(): string[] {
    const urls = this.serverUrl.split(',').map((u) => u.trim()).filter((u) => u !== '');
    return urls.length > 0 ? urls : [this.serverUrl];
  }

  get state(): SignalingClientState {
    return this.#state;
  }

  get peerId(): string {
    if (this.#peerId === undefined) throw new SleapRtcError('SIGNALING_CLOSED', 'Not registered with the signaling server yet.');
    return this.#peerId;
  }

  get metadata(): Metadata {
    return this.#metadata;
  }

  /** Sends a message to the server. Throws SIGNALING_CLOSED while disconnected. */
  send(message: PeerToServer): void {
    const ws = this.#ws;
    if (this.#state !== 'open' || ws === null || ws.readyState !== WebSocket.OPEN) {
      throw new SleapRtcError('SIGNALING_CLOSED', `Not connected to the signaling server at ${this.serverUrl} (state: ${this.#state}).`, {
        state: this.#state,
      });
    }
    ws.send(JSON.stringify(message));
  }

  /** A fresh id for a request whose answer echoes it. */
  nextRequestId(): string {
    this.#requestSeq += 1;
    return `r${this.#requestSeq}`;
  }

  /**
   * Sends `message` (which carries `request_id`) and resolves with the first server message of
   * `responseType` echoing that id; an `error` echoing it rejects with the server's code.
   */
  request<T extends ServerToPeer['type']>(
    message: PeerToServer & { request_id: string },
    responseType: T,
    timeoutMs = this.#opts.requestTimeoutMs ?? LIMITS.signalingRequestTimeoutMs,
  ): Promise<Extract<ServerToPeer, { type: T }>> {
    return new Promise((resolve, reject) => {
      const id = message.request_id;
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new SleapRtcError('SIGNALING_TIMEOUT', `The signaling server did not answer "${message.type}" within ${timeoutMs} ms.`));
      }, timeoutMs);
      this.#pending.set(id, {
        responseType,
        resolve: resolve as (m: ServerToPeer) => void,
        reject,
        timer,
      });
      try {
        this.send(message);
      } catch (err) {
        clearTimeout(timer);
        this.#pending.delete(id);
        reject(err as SleapRtcError);
      }
    });
  }

  /** Peers of this room matching `filters` (the server never lists the asker). */
  async discover(filters: DiscoverFilters = {}): Promise<PeerInfo[]> {
    const reply = await this.request({ type: 'discover_peers', filters, request_id: this.nextRequestId() }, 'peer_list');
    return reply.peers;
  }

  /** Replaces this peer's metadata; remembered so a reconnect registers with the latest. */
  updateMetadata(metadata: Metadata): void {
    this.#metadata = metadata;
    if (this.#state === 'open') this.send({ type: 'update_metadata', metadata });
  }

  sendToPeer(peerId: string, payload: unknown): void {
    this.send({ type: 'peer_message', to_peer_id: peerId, payload });
  }

  // ---- Signaler ------------------------------------------------------------------------------

  sendSignal(target: string, signal: SignalMessage): void {
    this.send({ ...signal, target });
  }

  onSignal(from: string, listener: (signal: SignalMessage) => void): () => void {
    this.#signalListeners.set(from, listener);
    const buffered = this.#bufferedSignals.get(from);
    this.#bufferedSignals.delete(from);
    for (const s of buffered ?? []) listener(s);
    return () => {
      if (this.#signalListeners.get(from) === listener) this.#signalListeners.delete(from);
    };
  }

  /** Closes for good. Safe to call more than once, and while a reconnect is under way. */
  close(): Promise<void> {
    this.#closing ??= this.#closeNow();
    return this.#closing;
  }

  async #closeNow(): Promise<void> {
    const ws = this.#ws;
    this.#ws = null;
    this.#finish(null);
    if (ws && ws.readyState !== WebSocket.CLOSED) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          ws.terminate();
          resolve();
        }, LIMITS.signalingCloseGraceMs);
        ws.once('close', () => {
          clearTimeout(t);
          resolve();
        });
        ws.close(1000, 'client closing');
      });
    }
  }

  // ---- connection lifecycle ------------------------------------------------------------------
  //
  // One attempt is: open a socket -> send `register` -> wait for `registered` (or a refusal, a
  // close, an error, the timeout). Every way an attempt can fail goes through its one cleanup
  // (`fail`: stop the timer, forget and terminate the socket, reject). A socket stops speaking for
  // this client as soon as it is no longer `#ws`, so a reply that arrives after close() or after a
  // newer attempt changes nothing.

  /** One connect + register attempt. Rejects with the reason it failed; the socket is gone then. */
  #open(): Promise<void> {
    const servers = this.#urls;
    const url = wsEndpointUrl(servers[this.#attempts++ % servers.length] as string);
    const timeoutMs = this.#opts.connectTimeoutMs ?? LIMITS.signalingConnectTimeoutMs;
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { handshakeTimeout: timeoutMs, maxPayload: LIMITS.signalingMaxPayloadBytes * 4 });
      this.#ws = ws;
      let phase: 'registering' | 'registered' | 'failed' = 'registering';
      const fail = (err: SleapRtcError): void => {
        if (phase !== 'registering') return;
        phase = 'failed';
        clearTimeout(timer);
        if (this.#ws === ws) this.#ws = null;
        ws.removeAllListeners();
        ws.on('error', () => undefined);
        ws.terminate();
        reject(err);
      };
      const timer = setTimeout(
        () => fail(new SleapRtcError('SIGNALING_UNREACHABLE', `The signaling server at ${this.serverUrl} did not register us within ${timeoutMs} ms.`)),
        timeoutMs,
      );
      ws.on('open', () => ws.send(JSON.stringify(this.#registerMessage())));
      ws.on('error', (err) => {
        fail(
          new SleapRtcError(
            'SIGNALING_UNREACHABLE',
            `Cannot reach the signaling server at ${this.serverUrl} (${(err as NodeJS.ErrnoException).code ?? err.message}). Is \`sleap-rtc server\` running there?`,
            { server_url: this.serverUrl },
            { cause: err },
          ),
        );
      });
      ws.on('ping', () => this.#ws === ws && phase === 'registered' && this.#alive());
      ws.on('message', (data: RawData, isBinary: boolean) => {
        if (this.#ws !== ws) {
          // close() (or a newer attempt) took over: this socket no longer speaks for us.
          fail(new SleapRtcError('SIGNALING_CLOSED', 'The signaling client was closed.'));
          return;
        }
        const message = this.#decode(data, isBinary);
        if (message === null) return;
        if (phase === 'registered') {
          this.#alive();
          this.#dispatch(message);
        } else if (message.type === 'registered') {
          phase = 'registered';
          clearTimeout(timer);
          this.#onRegistered(message);
          resolve();
        } else if (message.type === 'error') {
          fail(refusal(message.code, message.message, this.serverUrl, this.roomId));
        }
      });
      ws.on('close', (code, reason) => {
        if (phase === 'registering') {
          fail(new SleapRtcError('SIGNALING_CLOSED', `The signaling server closed the connection (${code} ${reason.toString()}).`));
        } else if (phase === 'registered' && this.#ws === ws) {
          this.#onDrop(code, reason.toString());
        }
      });
    });
  }

  #registerMessage(): PeerToServer {
    return {
      type: 'register',
      room_id: this.roomId,
      token: this.#opts.token,
      role: this.role,
      metadata: this.#metadata,
      ...(this.#peerId !== undefined ? { peer_id: this.#peerId } : {}),
    };
  }

  #onRegistered(message: Extract<ServerToPeer, { type: 'registered' }>): void {
    const reconnecting = this.#state === 'reconnecting';
    this.#peerId = message.peer_id;
    this.#state = 'open';
    this.#attempt = 0;
    this.#lastWaitReason = null;
    this.peers.clear();
    for (const p of message.peers) this.peers.set(p.peer_id, p);
    this.#alive();
    if (reconnecting) {
      this.#log.info({ peer_id: message.peer_id }, `reconnected to the signaling server as ${message.peer_id}`);
      this.emit('reconnected');
    }
  }

  #decode(data: RawData, isBinary: boolean): ServerToPeer | null {
    if (isBinary) {
      this.#log.warn('ignored a binary frame from the signaling server');
      return null;
    }
    try {
      return decodeMessage(rawToString(data), ServerToPeerSchema, SERVER_TYPES);
    } catch (err) {
      // A newer server may speak messages we do not know; say so and carry on.
      this.#log.warn({ err }, `ignored a message from the signaling server: ${(err as ProtocolError).message}`);
      return null;
    }
  }

  #dispatch(message: ServerToPeer): void {
    const requestId = 'request_id' in message ? message.request_id : undefined;
    if (requestId !== undefined) {
      const pending = this.#pending.get(requestId);
      if (pending && (message.type === pending.responseType || message.type === 'error')) {
        this.#pending.delete(requestId);
        clearTimeout(pending.timer);
        if (message.type === 'error') pending.reject(new SleapRtcError(message.code, message.message, message.details ?? {}));
        else pending.resolve(message);
      }
    }
    switch (message.type) {
      case 'peer_joined':
        this.peers.set(message.peer.peer_id, message.peer);
        this.emit('peer_joined', message.peer);
        break;
      case 'peer_updated':
        this.peers.set(message.peer.peer_id, message.peer);
        this.emit('peer_updated', message.peer);
        break;
      case 'peer_left':
        this.peers.delete(message.peer_id);
        this.#bufferedSignals.delete(message.peer_id);
        this.emit('peer_left', message.peer_id);
        break;
      case 'peer_message':
        this.emit('peer_message', message.from_peer_id, message.payload);
        break;
      case 'offer':
      case 'answer':
        this.#deliverSignal(message.sender, { type: message.type, sdp: message.sdp });
        if (message.type === 'offer') this.emit('offer', message.sender);
        break;
      case 'candidate':
        this.#deliverSignal(message.sender, { type: 'candidate', candidate: message.candidate, mid: message.mid });
        break;
      case 'error':
        if (requestId !== undefined) break;
        if (FINAL_WHILE_RECONNECTING.has(message.code)) {
          // The room was deleted under us: say so now, not after a reconnect that cannot succeed.
          const err = refusal(message.code, message.message, this.serverUrl, this.roomId);
          this.#log.error(`the signaling server ended our registration for good: ${err.message}`);
          this.emit('message', message);
          this.#finish(err);
          return;
        }
        this.emit('server_error', new SleapRtcError(message.code, message.message, message.details ?? {}));
        break;
      default:
        break;
    }
    this.emit('message', message);
  }

  #deliverSignal(from: string, signal: SignalMessage): void {
    const listener = this.#signalListeners.get(from);
    if (listener) {
      listener(signal);
      return;
    }
    const queue = this.#bufferedSignals.get(from) ?? [];
    // A new offer starts a new negotiation: what came before it is stale.
    if (signal.type === 'offer') queue.length = 0;
    if (queue.length < LIMITS.signalingPendingSignalsPerPeer) queue.push(signal);
    this.#bufferedSignals.set(from, queue);
  }

  /** Any frame or ping proves the link alive; silence past deadAfterMs means it is not. */
  #alive(): void {
    if (this.#deadTimer) clearTimeout(this.#deadTimer);
    const deadAfter = this.#opts.deadAfterMs ?? LIMITS.signalingPingIntervalMs * 3;
    this.#deadTimer = setTimeout(() => {
      this.#log.warn(`no word from the signaling server for ${deadAfter} ms; reconnecting`);
      this.#ws?.terminate();
    }, deadAfter);
    this.#deadTimer.unref();
  }

  #onDrop(code: number, reason: string): void {
    if (this.#state === 'closed') return;
    const why = new SleapRtcError('SIGNALING_CLOSED', `Lost the signaling server at ${this.serverUrl} (${code}${reason ? ` ${reason}` : ''}).`, {
      close_code: code,
    });
    this.#rejectPending(why);
    if (this.#deadTimer) clearTimeout(this.#deadTimer);
    if (this.#opts.reconnect === false) {
      this.#finish(why);
      return;
    }
    this.#state = 'reconnecting';
    this.#log.warn(`${why.message} Reconnecting...`);
    this.emit('disconnected', why);
    this.#scheduleReconnect();
  }

  #scheduleReconnect(): void {
    const initial = this.#opts.reconnectInitialDelayMs ?? LIMITS.reconnectInitialDelayMs;
    const max = this.#opts.reconnectMaxDelayMs ?? LIMITS.reconnectMaxDelayMs;
    const ceiling = Math.min(max, initial * 2 ** Math.min(this.#attempt, 30));
    // "Equal jitter": at least half the ceiling, so retries spread out but never hammer.
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    this.#attempt += 1;
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = null;
      if (this.#state !== 'reconnecting') return;
      this.#open().catch((err: SleapRtcError) => this.#onReconnectFailed(err));
    }, delay);
  }

  /**
   * A failed re-registration. Only a room the server says was deleted ends the client: anything
   * else (server down, a restarted server that does not know the room yet, a refused token from a
   * server with a different store) is waited out with backoff, because jobs run peer to peer and
   * do not need the server until they end. Each new reason is said once, plainly.
   */
  #onReconnectFailed(err: SleapRtcError): void {
    if (this.#state !== 'reconnecting') return;
    if (FINAL_WHILE_RECONNECTING.has(err.code)) {
      this.#log.error(`the signaling server refused us for good: ${err.message}`);
      this.#finish(err);
      return;
    }
    const what = `${err.code}:${REFUSAL_CODES.has(err.code) ? 'refused' : 'down'}`;
    if (what !== this.#lastWaitReason) {
      this.#lastWaitReason = what;
      this.#log.warn(
        REFUSAL_CODES.has(err.code)
          ? `waiting for the signaling server at ${this.serverUrl} to know room ${this.roomId} again: ${err.message} Retrying with backoff.`
          : `waiting for the signaling server at ${this.serverUrl} to come back: ${err.message} Retrying with backoff.`,
      );
    } else {
      this.#log.debug({ err }, 'reconnect attempt failed');
    }
    this.emit('waiting', err);
    this.#scheduleReconnect();
  }

  #rejectPending(reason: SleapRtcError): void {
    for (const [id, p] of this.#pending) {
      clearTimeout(p.timer);
      p.reject(reason);
      this.#pending.delete(id);
    }
  }

  #finish(reason: SleapRtcError | null): void {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    if (this.#deadTimer) clearTimeout(this.#deadTimer);
    if (this.#reconnectTimer) clearTimeout(this.#reconnectTimer);
    this.#rejectPending(reason ?? new SleapRtcError('SIGNALING_CLOSED', 'The signaling client was closed.'));
    this.#bufferedSignals.clear();
    this.#signalListeners.clear();
    if (reason !== null) {
      this.#ws?.terminate();
      this.#ws = null;
    }
    this.emit('closed', reason);
  }
}

function rawToString(data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.from(data as ArrayBuffer).toString('utf8');
}

/** A registration refusal, in words that say what to do about it. */
function refusal(code: ErrorCode, serverMessage: string, serverUrl: string, roomId: string): SleapRtcError {
  if (code === 'INVALID_TOKEN') {
    return new SleapRtcError(
      code,
      `The signaling server at ${serverUrl} refused the token for room ${roomId}. Check --token (or SLEAP_RTC_TOKEN); \`sleap-rtc room create\` prints a room with its token.`,
      { room_id: roomId },
    );
  }
  if (code === 'ROOM_DELETED') {
    return new SleapRtcError(
      code,
      `Room ${roomId} was deleted on ${serverUrl} (or expired after sitting idle); it will not come back. Create a new one with \`sleap-rtc room create\`.`,
      { room_id: roomId },
    );
  }
  if (code === 'ROOM_NOT_FOUND') {
    return new SleapRtcError(
      code,
      `Room ${roomId} does not exist on ${serverUrl} (rooms expire when idle). Create one with \`sleap-rtc room create\`.`,
      { room_id: roomId },
    );
  }
  return new SleapRtcError(isErrorCode(code) ? code : 'INTERNAL', `The signaling server refused registration: ${serverMessage}`);
}
