/**
 * `--ui`: a live page for one job, served by the client process. Loss curves (uPlot, served from
 * node_modules, no CDN), epoch, ETA, worker, storage backend, transfer method, the last log lines
 * and a Stop button. Updates are server-sent events from the job's LiveJob.
 *
 * Access: the server binds loopback unless `--ui-host` says otherwise. Every request needs the
 * page's token (in the URL, `?token=`, or the `X-Sleap-Rtc-Token` header) except, on loopback,
 * reading the page itself; the Stop action always needs it in the header, which a page of another
 * origin cannot send without a CORS preflight this server never answers. The Host header must name
 * this server, against DNS rebinding.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { SleapRtcError } from '../../errors.js';
import type { LiveJob, StopAnswer } from '../live-job.js';

/** The page's own files: `assets/ui/` at the package root (three levels up from src/client/ui and dist/client/ui). */
const PAGE_DIR = fileURLToPath(new URL('../../../assets/ui/', import.meta.url));
const require = createRequire(import.meta.url);

const ASSETS: Record<string, { file: () => string; type: string }> = {
  '/assets/page.js': { file: () => `${PAGE_DIR}page.js`, type: 'text/javascript; charset=utf-8' },
  '/assets/page.css': { file: () => `${PAGE_DIR}page.css`, type: 'text/css; charset=utf-8' },
  '/assets/uPlot.iife.min.js': { file: () => require.resolve('uplot/dist/uPlot.iife.min.js'), type: 'text/javascript; charset=utf-8' },
  '/assets/uPlot.min.css': { file: () => require.resolve('uplot/dist/uPlot.min.css'), type: 'text/css; charset=utf-8' },
};

export interface LivePageOptions {
  live: LiveJob;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0 (a free port). */
  port?: number;
}

export interface LivePage {
  /** The address to open, with the token when the page is not on loopback. */
  url: string;
  close(): Promise<void>;
}

export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

export async function startLivePage(opts: LivePageOptions): Promise<LivePage> {
  const host = opts.host ?? '127.0.0.1';
  const loopback = isLoopbackHost(host);
  const token = randomBytes(18).toString('base64url');
  const hub = new EventHub(opts.live);
  const server = createServer((req, res) => {
    handle(req, res, { live: opts.live, hub, token, loopback, port: () => (server.address() as AddressInfo).port }).catch(() => {
      if (!res.headersSent) res.writeHead(500).end();
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        err.code === 'EADDRINUSE'
          ? new SleapRtcError('ADDRESS_IN_USE', `The live page cannot listen on ${host}:${opts.port}: the port is taken; pick another with --ui-port.`)
          : new SleapRtcError('INTERNAL', `The live page cannot listen on ${host}:${opts.port ?? 0}: ${err.message}`),
      ),
    );
    server.listen(opts.port ?? 0, host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const shownHost = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  const url = `http://${shownHost}:${port}/${loopback ? '' : `?token=${token}`}`;
  let closing: Promise<void> | null = null;
  return {
    url,
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        hub.close();
        server.close(() => resolve());
        server.closeAllConnections();
      })),
  };
}

interface Ctx {
  live: LiveJob;
  hub: EventHub;
  token: string;
  loopback: boolean;
  port: () => number;
}

async function handle(req: IncomingMessage, res: ServerResponse, ctx: Ctx): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://x');
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Referrer-Policy', 'no-referrer');
  if (!hostAllowed(req.headers.host, ctx)) return text(res, 421, 'This page is served under another host name.');
  const given = (req.headers['x-sleap-rtc-token'] as string | undefined) ?? url.searchParams.get('token') ?? '';
  const authorised = sameToken(given, ctx.token);
  const isPage = req.method === 'GET' && url.pathname === '/';
  if (!authorised && !(ctx.loopback && (isPage || (req.method === 'GET' && url.pathname in ASSETS)))) {
    return text(res, 403, 'This page needs its token: open the address sleap-rtc printed, with ?token=.');
  }
  if (req.method === 'GET' && url.pathname === '/') return page(res, ctx.token);
  if (req.method === 'GET' && url.pathname in ASSETS) return asset(res, ASSETS[url.pathname] as (typeof ASSETS)[string]);
  if (req.method === 'GET' && url.pathname === '/api/state') return json(res, 200, initial(ctx.live));
  if (req.method === 'GET' && url.pathname === '/api/events') return ctx.hub.add(res, initial(ctx.live));
  if (url.pathname === '/api/stop') {
    if (req.method !== 'POST') return text(res, 405, 'Use POST.');
    // The header, not the URL: a cross-origin form cannot set it.
    if (!sameToken((req.headers['x-sleap-rtc-token'] as string | undefined) ?? '', ctx.token)) return text(res, 403, 'Stop needs the X-Sleap-Rtc-Token header.');
    const answer: StopAnswer = ctx.live.requestStop('page');
    return json(res, answer === 'stopping' ? 202 : 409, { answer, status: ctx.live.status });
  }
  return text(res, 404, 'Not found.');
}

function hostAllowed(hostHeader: string | undefined, ctx: Ctx): boolean {
  if (!ctx.loopback) return true; // the token guards it
  if (!hostHeader) return false;
  const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(hostHeader);
  return !!m && isLoopbackHost((m[1] as string).toLowerCase()) && Number(m[2]) === ctx.port();
}

function sameToken(given: string, token: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

async function page(res: ServerResponse, token: string): Promise<void> {
  const html = (await readFile(`${PAGE_DIR}index.html`, 'utf8')).replace('__SLEAP_RTC_TOKEN__', token);
  res.writeHead(200, {
    'Content-Type': 'text/html; charset=utf-8',
    'Cache-Control': 'no-store',
    'Content-Security-Policy': "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'",
  });
  res.end(html);
}

async function asset(res: ServerResponse, a: (typeof ASSETS)[string]): Promise<void> {
  const body = await readFile(a.file());
  res.writeHead(200, { 'Content-Type': a.type, 'Cache-Control': 'no-cache' });
  res.end(body);
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store' });
  res.end(JSON.stringify(body));
}

function text(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8' });
  res.end(`${body}\n`);
}

/** Everything a page needs on (re)connect; later changes come as events. */
function initial(live: LiveJob): Record<string, unknown> {
  return { state: live.snapshot(), batches: live.training.batches, logs: live.logTail };
}

/**
 * The server-sent event streams of every open page. `state` (the snapshot without history) is
 * coalesced to once per tick; `epoch` (a finished epoch), `batch` and `log` are sent as they come.
 */
class EventHub {
  readonly #clients = new Set<ServerResponse>();
  readonly #live: LiveJob;
  #statePending = false;
  #epochsSent: number;
  readonly #unlisten: () => void;

  constructor(live: LiveJob) {
    this.#live = live;
    this.#epochsSent = live.training.history.length;
    const onChange = (): void => this.#scheduleState();
    const onEvent = (e: { event: string }): void => {
      if (e.event === 'batch_end') this.#broadcast('batch', live.training.batches.at(-1));
    };
    const onLog = (line: string): void => this.#broadcast('log', line);
    live.on('change', onChange);
    live.on('train_event', onEvent);
    live.on('log', onLog);
    this.#unlisten = () => {
      live.off('change', onChange);
      live.off('train_event', onEvent);
      live.off('log', onLog);
    };
  }

  add(res: ServerResponse, init: unknown): void {
    res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-store', Connection: 'keep-alive' });
    res.write(`retry: 1000\nevent: init\ndata: ${JSON.stringify(init)}\n\n`);
    this.#clients.add(res);
    res.on('close', () => this.#clients.delete(res));
  }

  /** The last state (the job's end) still goes out before the streams end. */
  close(): void {
    this.#unlisten();
    if (this.#statePending) this.#sendState();
    for (const c of this.#clients) c.end();
    this.#clients.clear();
  }

  /** Finished epochs not sent yet, then the state: once per tick however many changes came. */
  #scheduleState(): void {
    if (this.#statePending) return;
    this.#statePending = true;
    setImmediate(() => this.#sendState());
  }

  #sendState(): void {
    if (!this.#statePending) return;
    this.#statePending = false;
    const { history, ...state } = this.#live.snapshot();
    for (const record of history.slice(this.#epochsSent)) this.#broadcast('epoch', record);
    this.#epochsSent = history.length;
    this.#broadcast('state', state);
  }

  #broadcast(event: string, data: unknown): void {
    if (data === undefined) return;
    const frame = `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
    for (const c of this.#clients) c.write(frame);
  }
}
