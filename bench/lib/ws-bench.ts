/**
 * Shared pieces of the WebSocket benchmarks (bench:signaling, bench:routing): a raw `ws` peer
 * that awaits replies by type, a forked server child, and the percentile helper. Raw peers, not
 * the project's SignalingClient, so the figures measure the server and not client-side checks.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { WebSocket } from 'ws';
import { TS_LOADER } from '../../test/helpers/cli.js';

export type Msg = { type: string; [k: string]: unknown };

export interface Room {
  room_id: string;
  token: string;
}

export class BenchPeer {
  private waiters: ((m: Msg) => boolean)[] = [];
  onMessage: ((m: Msg) => void) | undefined;
  peerId = '';

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      const m = JSON.parse(String(data)) as Msg;
      this.onMessage?.(m);
      if (this.waiters.length > 0) this.waiters = this.waiters.filter((w) => !w(m));
    });
  }

  static async open(wsUrl: string): Promise<BenchPeer> {
    const ws = new WebSocket(wsUrl);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return new BenchPeer(ws);
  }

  /** Opens a socket and registers in `room`. */
  static async join(wsUrl: string, room: Room, role: 'worker' | 'client', metadata: unknown, peerId?: string): Promise<BenchPeer> {
    const peer = await BenchPeer.open(wsUrl);
    const reg = await peer.request(
      { type: 'register', room_id: room.room_id, token: room.token, role, metadata, ...(peerId ? { peer_id: peerId } : {}) },
      'registered',
    );
    peer.peerId = String(reg.peer_id);
    return peer;
  }

  send(message: unknown): void {
    this.ws.send(JSON.stringify(message));
  }

  /** Sends and resolves with the first reply of `type` matching `match`; an error reply rejects. */
  request(message: unknown, type: string, match: (m: Msg) => boolean = () => true): Promise<Msg> {
    return new Promise((resolve, reject) => {
      this.waiters.push((m) => {
        if (m.type === 'error') {
          reject(new Error(JSON.stringify(m)));
          return true;
        }
        if (m.type !== type || !match(m)) return false;
        resolve(m);
        return true;
      });
      this.send(message);
    });
  }

  close(): void {
    this.ws.terminate();
  }
}

/** Runs `script --serve ...args` as a child; it must process.send({url, wsUrl}) once listening. */
export async function forkServer(script: string, args: string[] = []): Promise<{ child: ChildProcess; url: string; wsUrl: string }> {
  const child = fork(script, ['--serve', ...args], { execArgv: ['--import', TS_LOADER], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const info = await new Promise<{ url: string; wsUrl: string }>((resolve, reject) => {
    child.once('message', (m) => resolve(m as { url: string; wsUrl: string }));
    child.once('exit', (code) => reject(new Error(`server child (${args.join(' ') || script}) exited with ${code}`)));
  });
  return { child, ...info };
}

export async function createRoom(url: string): Promise<Room> {
  const res = await fetch(`${url}/rooms`, { method: 'POST' });
  return (await res.json()) as Room;
}

export function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
}
