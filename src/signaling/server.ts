/**
 * The signaling server: one port serves the HTTP API (node:http) and the WebSocket endpoint at
 * /ws (ws in noServer mode; upgrades on any other path get a 404). Room and peer logic is in
 * hub.ts, state behind SignalingStore, cross-instance delivery behind MessageBus.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { randomUUID } from 'node:crypto';
import { WebSocketServer } from 'ws';
import { SleapRtcError, UsageError } from '../errors.js';
import { LIMITS } from '../limits.js';
import { silentLogger, type Logger } from '../log.js';
import type { RoomCreated } from '../protocol/signaling.js';
import type { MessageBus } from './bus.js';
import { createMemoryBus } from './buses/memory.js';
import type { BusCounters } from './buses/redis.js';
import { SignalingHub } from './hub.js';
import { createRequestHandler, pathOf, refuseUpgrade, WS_PATH } from './http-api.js';
import { hashToken, newRoomId, newRoomToken, tokenMatches } from './ids.js';
import { MetricsCounters, type ServerMetrics } from './metrics.js';
import { AddressLimiter } from './address-limit.js';
import type { RateLimitOptions } from './rate-limit.js';
import type { SignalingStore } from './store.js';
import { openStoreBackend, type StoreSetting } from './stores/open.js';

export type { ServerMetrics } from './metrics.js';
export type { RoomCreated } from '../protocol/signaling.js';

export interface SignalingServerOptions {
  /** Interface to listen on; default 127.0.0.1. */
  host?: string;
  /** Default 8080; 0 picks a free port (see `port` on the result). */
  port?: number;
  pingIntervalMs?: number;
  maxPayloadBytes?: number;
  roomIdleTtlMs?: number;
  /** Shared state; default: opened from `storeSetting` and closed with the server. A store passed in is left open. */
  store?: SignalingStore;
  /** What store to open when none is passed: memory (default) or Redis (`--store redis://...`). */
  storeSetting?: StoreSetting;
  /** The memory store keeps its rooms in this file (unset: rooms live only as long as the process). */
  roomsFile?: string;
  /** A register past this many peers in one room is refused ROOM_FULL; default LIMITS.maxPeersPerRoom. */
  maxPeersPerRoom?: number;
  /** POST /rooms per client address (token bucket); absent or false: no limit (`sleap-rtc server` sets [server] rooms_per_hour). */
  roomCreateLimit?: { burst: number; perHour: number } | false;
  /** Take the client address of POST /rooms from the last X-Forwarded-For entry (behind a reverse proxy). */
  trustProxy?: boolean;
  /** Cross-instance delivery; default a fresh in-process bus. A bus passed in is left open. */
  bus?: MessageBus;
  /** This instance's id on the bus and in the store; default a random UUID. */
  nodeId?: string;
  /** Per-connection frame limit, or false to turn it off (benchmarks). */
  rateLimit?: RateLimitOptions | false;
  registerTimeoutMs?: number;
  /** A peer with more unsent data than this is disconnected as a slow consumer. */
  maxBufferedBytes?: number;
  /** A reserved worker must claim within this (routing); default LIMITS.routingReservationTimeoutMs. */
  reservationTimeoutMs?: number;
  logger?: Logger;
}

export interface SignalingServer {
  /** http://host:port */
  readonly url: string;
  /** ws://host:port/ws */
  readonly wsUrl: string;
  readonly port: number;
  readonly host: string;
  /** The store in use (kind, where, connected). */
  readonly store: ReturnType<SignalingStore['describe']>;
  createRoom(): Promise<RoomCreated>;
  metrics(): ServerMetrics;
  /** Closes every socket (1001) and the HTTP server; safe to call twice. */
  close(): Promise<void>;
}

type ServerState = 'listening' | 'closing' | 'closed';

/** Attempts at drawing an unused room id before giving up (each has 2^50 possibilities). */
const ROOM_ID_TRIES = 5;

export async function startSignalingServer(opts: SignalingServerOptions = {}): Promise<SignalingServer> {
  const host = opts.host ?? '127.0.0.1';
  const requestedPort = opts.port ?? 8080;
  const pingIntervalMs = positive('pingIntervalMs', opts.pingIntervalMs ?? LIMITS.signalingPingIntervalMs);
  const maxPayloadBytes = positive('maxPayloadBytes', opts.maxPayloadBytes ?? LIMITS.signalingMaxPayloadBytes);
  const roomIdleTtlMs = positive('roomIdleTtlMs', opts.roomIdleTtlMs ?? LIMITS.roomIdleTtlMs);
  const registerTimeoutMs = positive('registerTimeoutMs', opts.registerTimeoutMs ?? LIMITS.signalingRegisterTimeoutMs);
  if (!Number.isInteger(requestedPort) || requestedPort < 0 || requestedPort > 65535) {
    throw new UsageError(`Port must be an integer from 0 to 65535 (0 picks a free port), not ${requestedPort}.`);
  }
  const logger = opts.logger ?? silentLogger();
  const nodeId = opts.nodeId ?? randomUUID();
  const backend = opts.store !== undefined ? undefined : await openStoreBackend(opts.storeSetting ?? { kind: 'memory' }, { nodeId, logger, roomsFile: opts.roomsFile });
  const store = opts.store ?? (backend as NonNullable<typeof backend>).store;
  const bus = opts.bus ?? backend?.bus ?? createMemoryBus({ logger });
  const busCounters: BusCounters | undefined = backend?.counters;
  const counters = new MetricsCounters();
  // The library imposes no per-address limit unless asked (tests and embedders create rooms freely); `sleap-rtc server` asks.
  const roomLimiter = opts.roomCreateLimit === undefined || opts.roomCreateLimit === false ? undefined : new AddressLimiter(opts.roomCreateLimit);
  let state: ServerState = 'listening';

  const refreshStats = async (): Promise<void> => {
    if (state === 'closed') return;
    try {
      counters.rooms = (await store.stats()).rooms;
    } catch (err) {
      logger.warn({ err }, 'could not read store statistics');
    }
  };

  const hub = new SignalingHub({
    store,
    bus,
    nodeId,
    logger,
    metrics: counters,
    maxPayloadBytes,
    rateLimit: opts.rateLimit ?? { burst: LIMITS.signalingRateLimitBurst, perSecond: LIMITS.signalingRateLimitPerSecond },
    registerTimeoutMs,
    maxMetadataBytes: LIMITS.signalingMaxMetadataBytes,
    maxBufferedBytes: positive('maxBufferedBytes', opts.maxBufferedBytes ?? LIMITS.signalingMaxBufferedBytes),
    maxJsonDepth: LIMITS.signalingMaxJsonDepth,
    closeGraceMs: LIMITS.signalingCloseGraceMs,
    onStateChange: () => void refreshStats(),
    routing: {
      reservationTimeoutMs: positive('reservationTimeoutMs', opts.reservationTimeoutMs ?? LIMITS.routingReservationTimeoutMs),
      maxRequestsPerClient: LIMITS.routingMaxRequestsPerClient,
      maxQueuePerRoom: LIMITS.routingMaxQueuePerRoom,
      positionIntervalMs: LIMITS.routingPositionIntervalMs,
    },
    maxPeersPerRoom: positive('maxPeersPerRoom', opts.maxPeersPerRoom ?? LIMITS.maxPeersPerRoom),
    maxHeldFrames: LIMITS.signalingMaxHeldFrames,
    presence: store.describe().kind !== 'memory',
  });
  try {
    await hub.start();
  } catch (err) {
    await backend?.close();
    throw err;
  }

  async function createRoom(client?: string): Promise<RoomCreated> {
    if (state !== 'listening') throw new SleapRtcError('SIGNALING_CLOSED', 'The signaling server is shutting down.');
    if (client !== undefined && roomLimiter !== undefined) {
      const retry = roomLimiter.take(client);
      if (retry > 0) {
        const s = Math.ceil(retry / 1000);
        throw new SleapRtcError('RATE_LIMITED', `Too many rooms created from ${client}; try again in ${s} s (the server allows [server] rooms_per_hour per address).`, { retry_after_s: s });
      }
    }
    for (let i = 0; i < ROOM_ID_TRIES; i++) {
      const room_id = newRoomId();
      const token = newRoomToken();
      const created = await store.createRoom({ room_id, token_sha256: hashToken(token), created_at_ms: Date.now(), idle_ttl_ms: roomIdleTtlMs });
      if (created) {
        counters.roomsCreated += 1;
        await refreshStats();
        logger.info({ room_id }, `room ${room_id} created`);
        // The truth for this store: a store that keeps rooms until deleted ignores the idle TTL.
        const idle_ttl_s = store.keepsRoomsUntilDeleted ? null : Math.max(1, Math.ceil(roomIdleTtlMs / 1000));
        return { room_id, token, idle_ttl_s };
      }
    }
    throw new SleapRtcError('INTERNAL', `Could not draw an unused room id in ${ROOM_ID_TRIES} tries.`);
  }

  // ws's own limit is the hard stop (it closes with 1009 without buffering the rest); frames
  // between maxPayloadBytes and it get a FRAME_TOO_LARGE reply and the connection stays up.
  const wss = new WebSocketServer({ noServer: true, maxPayload: maxPayloadBytes * LIMITS.signalingHardPayloadFactor });
  const http: Server = createServer(
    createRequestHandler({
      createRoom,
      clientAddress: (req) => clientAddress(req, opts.trustProxy === true),
      deleteRoom: async (roomId, token) => {
        const room = await store.getRoom(roomId);
        if (room === undefined) {
          if (await store.wasDeleted(roomId)) throw new SleapRtcError('ROOM_DELETED', `Room "${roomId}" was already deleted.`);
          throw new SleapRtcError('ROOM_NOT_FOUND', `No room "${roomId.slice(0, 128)}" on this server.`);
        }
        if (!tokenMatches(token, room.token_sha256)) throw new SleapRtcError('INVALID_TOKEN', `The token is wrong for room "${roomId}".`);
        const peers = await store.deleteRoom(roomId);
        if (peers === undefined) return;
        counters.roomsDeleted += 1;
        logger.info({ room_id: roomId, peers: peers.length }, `room ${roomId} deleted (${peers.length} peer(s) told)`);
        await hub.roomDeleted(roomId);
      },
      health: async () => {
        const described = store.describe();
        try {
          await store.ping();
          return { ok: true, store: { ...described, connected: true } };
        } catch {
          return { ok: false, store: { ...described, connected: false } };
        }
      },
      metrics: async () => {
        await refreshStats();
        return { ...counters.snapshot(), store: store.describe().kind, cross_process: { sent: busCounters?.published ?? 0, received: busCounters?.received_remote ?? 0 } };
      },
      uptimeSeconds: () => Math.floor((Date.now() - counters.startedAt) / 1000),
      countError: (code) => counters.countError(code),
      logger,
    }),
  );
  http.on('upgrade', (req, socket, head) => {
    if (state !== 'listening') {
      counters.countError('SIGNALING_CLOSED');
      refuseUpgrade(socket, 503, 'SIGNALING_CLOSED', 'The signaling server is shutting down.');
      return;
    }
    if (pathOf(req.url) !== WS_PATH) {
      counters.countError('ROUTE_NOT_FOUND');
      refuseUpgrade(socket, 404, 'ROUTE_NOT_FOUND', `WebSocket connections go to ${WS_PATH}.`);
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => hub.attach(ws));
  });

  await listen(http, host, requestedPort);
  const address = http.address();
  const port = typeof address === 'object' && address !== null ? address.port : requestedPort;
  const hostInUrl = host.includes(':') ? `[${host}]` : host;
  const url = `http://${hostInUrl}:${port}`;
  const wsUrl = `ws://${hostInUrl}:${port}${WS_PATH}`;

  const pingTimer = setInterval(() => hub.heartbeat(), pingIntervalMs);
  // Sweep at least twice per TTL so a room outlives its TTL by at most half of it.
  const sweepTimer = setInterval(
    () => {
      void store
        .sweepIdleRooms()
        .then(async (gone) => {
          if (gone.length === 0) return;
          counters.roomsExpired += gone.length;
          logger.info({ rooms: gone }, `${gone.length} idle room(s) expired`);
          await refreshStats();
        })
        .catch((err: unknown) => logger.warn({ err }, 'idle room sweep failed'));
    },
    Math.max(5, Math.min(roomIdleTtlMs / 2, LIMITS.roomSweepMaxIntervalMs)),
  );
  // Claim and queue deadlines live in the store: every process expires whatever is due, so a
  // decision made by a process that died still times out.
  let sweepingDeadlines = false;
  const deadlineTimer = setInterval(() => {
    if (sweepingDeadlines) return;
    sweepingDeadlines = true;
    hub
      .sweepDeadlines()
      .catch((err: unknown) => logger.warn({ err }, 'routing deadline sweep failed'))
      .finally(() => {
        sweepingDeadlines = false;
      });
  }, LIMITS.routingDeadlineSweepMs);
  pingTimer.unref();
  sweepTimer.unref();
  deadlineTimer.unref();

  let closing: Promise<void> | undefined;
  function close(): Promise<void> {
    closing ??= (async () => {
      state = 'closing';
      clearInterval(pingTimer);
      clearInterval(sweepTimer);
      clearInterval(deadlineTimer);
      const httpClosed = new Promise<void>((resolve) => http.close(() => resolve()));
      http.closeIdleConnections();
      await hub.closeAll();
      wss.close();
      http.closeAllConnections();
      await httpClosed;
      if (backend !== undefined) await backend.close();
      else if (opts.bus === undefined) await bus.close();
      state = 'closed';
      logger.info('signaling server closed');
    })();
    return closing;
  }

  return {
    url,
    wsUrl,
    port,
    host,
    get store() {
      return store.describe();
    },
    createRoom: () => createRoom(),
    metrics: () => ({ ...counters.snapshot(), store: store.describe().kind, cross_process: { sent: busCounters?.published ?? 0, received: busCounters?.received_remote ?? 0 } }),
    close,
  };
}

/** The address a POST /rooms counts against: the socket's peer, or the proxy's last X-Forwarded-For entry when trusted. */
function clientAddress(req: IncomingMessage, trustProxy: boolean): string {
  if (trustProxy) {
    const header = req.headers['x-forwarded-for'];
    const text = Array.isArray(header) ? header.join(',') : header;
    const last = text?.split(',').at(-1)?.trim();
    if (last !== undefined && last !== '') return last;
  }
  return req.socket.remoteAddress ?? 'unknown';
}

function positive(name: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0) throw new UsageError(`${name} must be a positive number, not ${value}.`);
  return value;
}

function listen(http: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      reject(listenError(err, host, port));
    };
    http.once('error', onError);
    http.listen(port, host, () => {
      http.off('error', onError);
      resolve();
    });
  });
}

function listenError(err: NodeJS.ErrnoException, host: string, port: number): SleapRtcError {
  const where = `${host}:${port}`;
  switch (err.code) {
    case 'EADDRINUSE':
      return new SleapRtcError(
        'ADDRESS_IN_USE',
        `Cannot listen on ${where}: another process is using that port. Stop it, or pick another port with --port (0 picks a free one).`,
        { host, port },
        { cause: err },
      );
    case 'EACCES':
      return new UsageError(`Cannot listen on ${where}: permission denied (ports below 1024 need privileges); pick a port above 1023 with --port.`, {
        host,
        port,
      });
    case 'EADDRNOTAVAIL':
    case 'ENOTFOUND':
      return new UsageError(`Cannot listen on ${where}: this machine has no such address; use --host 127.0.0.1, 0.0.0.0 or one of its own addresses.`, {
        host,
        port,
      });
    default:
      return new SleapRtcError('INTERNAL', `Cannot listen on ${where}: ${err.message}`, { host, port }, { cause: err });
  }
}
