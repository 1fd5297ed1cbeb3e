/** Shared set-up of the scale-out tests: a real redis-server and real `sleap-rtc server` processes on it. */
import type { TestContext } from 'node:test';
import { registerPeer, type TestPeer } from '../helpers/ws-peer.js';
import { startCliServer, type RunningServer } from './cli-server.js';
import { startRedisServer, type RedisServer } from './redis-server.js';

export async function redisFor(t: TestContext, appendonly = false): Promise<RedisServer> {
  const redis = await startRedisServer({ appendonly });
  t.after(() => redis.stop());
  return redis;
}

export function servers(t: TestContext, redis: RedisServer, n: number): Promise<RunningServer[]> {
  return Promise.all(Array.from({ length: n }, () => startCliServer(t, ['--port', '0', '--store', redis.url])));
}

export async function join(t: TestContext, server: RunningServer, room: { room_id: string; token: string }, opts: { role: 'worker' | 'client'; peer_id: string; metadata?: Record<string, unknown> }): Promise<TestPeer> {
  const peer = await registerPeer(server.wsUrl, { ...room, ...opts });
  t.after(() => peer.close());
  return peer;
}

export async function json(url: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

