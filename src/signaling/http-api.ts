/**
 * The signaling server's HTTP routes (node:http, no framework):
 *   POST /rooms   -> 201 { room_id, token, idle_ttl_s } (idle_ttl_s null: kept until deleted)
 *   DELETE /rooms/<id> with `Authorization: Bearer <token>` -> 200 { room_id, deleted: true }
 *   GET  /health  -> 200 { status: "ok", uptime_s, store } (503 status "store_unavailable" when the store does not answer)
 *   GET  /metrics -> 200 ServerMetrics
 *   /ws without a WebSocket upgrade -> 426
 * Anything else: 404 (no such path) or 405 (path exists, method does not), always as
 * `{ "error": { "code", "message" } }` with a stable code from src/errors.ts.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { STATUS_CODES } from 'node:http';
import { SleapRtcError, type ErrorCode } from '../errors.js';
import type { Logger } from '../log.js';
import type { RoomCreated } from '../protocol/signaling.js';
import type { ServerMetrics } from './metrics.js';
import { StoreUnavailableError, type StoreHealth } from './store.js';

export const WS_PATH = '/ws';

export interface StoreHealthReport {
  ok: boolean;
  store: StoreHealth;
}

export interface HttpApi {
  /** `client` is the address the per-address limit counts against. */
  createRoom(client: string): Promise<RoomCreated>;
  clientAddress(req: IncomingMessage): string;
  health(): Promise<StoreHealthReport>;
  /** Deletes the room when `token` is its token (throws ROOM_NOT_FOUND, ROOM_DELETED or INVALID_TOKEN). */
  deleteRoom(roomId: string, token: string): Promise<void>;
  metrics(): Promise<ServerMetrics>;
  uptimeSeconds(): number;
  countError(code: ErrorCode): void;
  logger: Logger;
}

interface Route {
  methods: readonly string[];
  status: number;
  /** The body, or a status and body when it is not `status`. */
  run(api: HttpApi, req: IncomingMessage): Promise<unknown> | unknown;
}

class WithStatus {
  constructor(
    readonly status: number,
    readonly body: unknown,
  ) {}
}

const ROUTES: Readonly<Record<string, Route>> = {
  '/rooms': { methods: ['POST'], status: 201, run: (api, req) => api.createRoom(api.clientAddress(req)) },
  '/health': {
    methods: ['GET', 'HEAD'],
    status: 200,
    run: async (api) => {
      const report = await api.health();
      const body = { status: report.ok ? 'ok' : 'store_unavailable', uptime_s: api.uptimeSeconds(), store: report.store };
      return report.ok ? body : new WithStatus(503, body);
    },
  },
  '/metrics': { methods: ['GET', 'HEAD'], status: 200, run: (api) => api.metrics() },
};

/** HTTP status for a coded error thrown by a route. */
const ERROR_STATUS: Partial<Record<ErrorCode, number>> = { RATE_LIMITED: 429, STORE_UNAVAILABLE: 503, SIGNALING_CLOSED: 503 };

/** The path part of a request target ("/rooms?x=1" -> "/rooms"); never throws. */
export function pathOf(url: string | undefined): string {
  const raw = url ?? '/';
  const q = raw.indexOf('?');
  return q === -1 ? raw : raw.slice(0, q);
}

export function createRequestHandler(api: HttpApi): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    // The API reads no request bodies; discard whatever was sent.
    req.resume();
    void respond(api, req, res);
  };
}

async function respond(api: HttpApi, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = pathOf(req.url);
  const method = req.method ?? 'GET';
  if (path === WS_PATH) {
    sendError(api, res, 426, 'UPGRADE_REQUIRED', `${WS_PATH} is the WebSocket endpoint; connect to it with a WebSocket client (ws://HOST:PORT${WS_PATH}).`, {
      Upgrade: 'websocket',
    });
    return;
  }
  if (path.startsWith('/rooms/')) {
    await deleteRoomRoute(api, req, res, path.slice('/rooms/'.length), method);
    return;
  }
  const route = ROUTES[path];
  if (route === undefined || !Object.hasOwn(ROUTES, path)) {
    sendError(api, res, 404, 'ROUTE_NOT_FOUND', `No route ${path.slice(0, 200)}; the API has POST /rooms, GET /health, GET /metrics and WebSocket ${WS_PATH}.`);
    return;
  }
  if (!route.methods.includes(method)) {
    sendError(api, res, 405, 'METHOD_NOT_ALLOWED', `${path} accepts ${route.methods.join(' or ')}, not ${method.slice(0, 20)}.`, {
      Allow: route.methods.join(', '),
    });
    return;
  }
  try {
    const body = await route.run(api, req);
    if (body instanceof WithStatus) sendJson(res, body.status, body.body, method === 'HEAD');
    else sendJson(res, route.status, body, method === 'HEAD');
  } catch (err) {
    if (err instanceof SleapRtcError && err.code === 'RATE_LIMITED') {
      const retry = String((err.details as { retry_after_s?: number }).retry_after_s ?? 60);
      sendError(api, res, 429, err.code, err.message, { 'Retry-After': retry });
      return;
    }
    if (err instanceof StoreUnavailableError) {
      api.logger.warn({ err, path }, `HTTP ${method} ${path}: the store is unreachable`);
      sendError(api, res, 503, 'STORE_UNAVAILABLE', 'The signaling server cannot reach its store; try again in a moment.', { 'Retry-After': '5' });
      return;
    }
    api.logger.error({ err, path }, `HTTP ${method} ${path} failed`);
    if (err instanceof SleapRtcError) sendError(api, res, ERROR_STATUS[err.code] ?? 500, err.code, err.message);
    else sendError(api, res, 500, 'INTERNAL', 'The server could not answer this request; it has been logged.');
  }
}

const ROOM_ERROR_STATUS: Partial<Record<ErrorCode, number>> = { ROOM_NOT_FOUND: 404, ROOM_DELETED: 410, INVALID_TOKEN: 403 };

async function deleteRoomRoute(api: HttpApi, req: IncomingMessage, res: ServerResponse, roomId: string, method: string): Promise<void> {
  if (method !== 'DELETE') {
    sendError(api, res, 405, 'METHOD_NOT_ALLOWED', `/rooms/<id> accepts DELETE, not ${method.slice(0, 20)}.`, { Allow: 'DELETE' });
    return;
  }
  const auth = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '');
  if (auth === null) {
    sendError(api, res, 401, 'INVALID_TOKEN', 'Deleting a room needs its token: send `Authorization: Bearer <token>`.', { 'WWW-Authenticate': 'Bearer' });
    return;
  }
  try {
    await api.deleteRoom(decodeURIComponent(roomId), auth[1] as string);
    sendJson(res, 200, { room_id: roomId, deleted: true });
  } catch (err) {
    if (err instanceof SleapRtcError && ROOM_ERROR_STATUS[err.code] !== undefined) {
      sendError(api, res, ROOM_ERROR_STATUS[err.code] as number, err.code, err.message);
      return;
    }
    if (err instanceof StoreUnavailableError) {
      sendError(api, res, 503, 'STORE_UNAVAILABLE', 'The signaling server cannot reach its store; try again in a moment.', { 'Retry-After': '5' });
      return;
    }
    api.logger.error({ err }, `HTTP DELETE /rooms/${roomId.slice(0, 200)} failed`);
    sendError(api, res, 500, 'INTERNAL', 'The server could not answer this request; it has been logged.');
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown, headOnly = false, headers: Record<string, string> = {}): void {
  if (res.headersSent) return;
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    // POST /rooms answers with a secret; nothing here should sit in a cache.
    'Cache-Control': 'no-store',
    ...headers,
  });
  res.end(headOnly ? undefined : text);
}

function sendError(api: HttpApi, res: ServerResponse, status: number, code: ErrorCode, message: string, headers: Record<string, string> = {}): void {
  api.countError(code);
  api.logger.debug({ status, code }, message);
  sendJson(res, status, { error: { code, message } }, false, headers);
}

/** Answers an upgrade request we will not accept with a plain HTTP error, then closes the socket. */
export function refuseUpgrade(socket: Duplex, status: number, code: ErrorCode, message: string): void {
  const body = JSON.stringify({ error: { code, message } });
  socket.on('error', () => {});
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\n` +
      'Connection: close\r\n' +
      'Content-Type: application/json; charset=utf-8\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      '\r\n' +
      body,
  );
}
