/**
 * A raw signaling peer for tests: a real `ws` client that records every frame it gets and lets
 * a test await "the next message of type X". Deliberately not the project's signaling client, so
 * server tests can send anything, including garbage.
 */
import { WebSocket } from 'ws';

export type Msg = { type: string; [key: string]: unknown };

export interface TestPeer {
  readonly ws: WebSocket;
  /** Every parsed frame received, in order (non-JSON frames are recorded as { type: "(raw)" }). */
  readonly received: Msg[];
  /** Set by `registerPeer`. */
  peerId: string;
  /** The `registered` reply, set by `registerPeer`. */
  registered: Msg | undefined;
  send(message: unknown): void;
  sendRaw(data: string | Buffer, opts?: { binary?: boolean }): void;
  /** Resolves with the first not-yet-taken message of this type (or one of these types) matching `where`, waiting if needed. */
  next<T extends Msg = Msg>(type: string | readonly string[], where?: (m: T) => boolean, timeoutMs?: number): Promise<T>;
  /** A round trip through the server: once it returns, everything the server sent earlier has arrived. */
  barrier(): Promise<void>;
  /** Resolves when the socket has closed, with the close code and reason. */
  readonly closed: Promise<{ code: number; reason: string }>;
  close(): Promise<void>;
}

export interface RegisterOptions {
  room_id: string;
  token: string;
  role?: 'worker' | 'client';
  peer_id?: string;
  metadata?: Record<string, unknown>;
}

let barrierCounter = 0;

export async function openPeer(wsUrl: string): Promise<TestPeer> {
  const ws = new WebSocket(wsUrl);
  const received: Msg[] = [];
  const taken = new Set<Msg>();
  const waiters = new Set<() => void>();
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    ws.on('close', (code, reason) => {
      resolve({ code, reason: reason.toString() });
      for (const w of waiters) w();
    });
  });
  ws.on('message', (data, isBinary) => {
    let msg: Msg;
    try {
      msg = isBinary ? { type: '(binary)' } : (JSON.parse(String(data)) as Msg);
    } catch {
      msg = { type: '(raw)', data: String(data) };
    }
    received.push(msg);
    for (const w of [...waiters]) w();
  });
  ws.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: HTTP ${res.statusCode}`)));
  });

  const peer: TestPeer = {
    ws,
    received,
    peerId: '',
    registered: undefined,
    send(message) {
      ws.send(JSON.stringify(message));
    },
    sendRaw(data, opts = {}) {
      ws.send(data, { binary: opts.binary ?? false });
    },
    next<T extends Msg>(type: string | readonly string[], where?: (m: T) => boolean, timeoutMs = 5000): Promise<T> {
      const types = typeof type === 'string' ? [type] : type;
      return new Promise<T>((resolve, reject) => {
        const check = (): void => {
          const hit = received.find((m) => !taken.has(m) && types.includes(m.type) && (where === undefined || where(m as T)));
          if (hit !== undefined) {
            taken.add(hit);
            done();
            resolve(hit as T);
          } else if (ws.readyState === WebSocket.CLOSED) {
            done();
            reject(new Error(`socket closed while waiting for "${type}"; got ${JSON.stringify(received.map((m) => m.type))}`));
          }
        };
        const timer = setTimeout(() => {
          done();
          const last = received.slice(-6).map((m) => JSON.stringify(m).slice(0, 300));
          reject(new Error(`no "${String(type)}" within ${timeoutMs} ms; ${received.length} received, the last: ${last.join(' ')}`));
        }, timeoutMs);
        const done = (): void => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
    async barrier() {
      const request_id = `barrier-${++barrierCounter}`;
      peer.send({ type: 'discover_peers', filters: {}, request_id });
      await peer.next('peer_list', (m) => m.request_id === request_id);
    },
    closed,
    async close() {
      if (ws.readyState === WebSocket.CLOSED) return;
      ws.close();
      const timer = setTimeout(() => ws.terminate(), 2000);
      await closed;
      clearTimeout(timer);
    },
  };
  return peer;
}

/** Opens a peer and registers it; rejects when the server answers with an error. */
export async function registerPeer(wsUrl: string, opts: RegisterOptions): Promise<TestPeer> {
  const peer = await openPeer(wsUrl);
  peer.send({ type: 'register', role: 'client', metadata: {}, ...opts });
  const reply = await peer.next(['registered', 'error']);
  if (reply.type === 'error') {
    await peer.close();
    throw new Error(`register refused: ${JSON.stringify(reply)}`);
  }
  peer.peerId = String(reply.peer_id);
  peer.registered = reply;
  return peer;
}

/** Worker metadata the way a worker advertises itself. */
export function workerMetadata(backends: string[], extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: 'test-worker',
    status: 'available',
    capabilities: { storage_backends: backends, job_types: ['train', 'track'], max_concurrent_jobs: 1 },
    ...extra,
  };
}

/** Polls a condition (state reached through another socket or a timer) until it holds. */
export async function waitFor(condition: () => boolean | Promise<boolean>, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
