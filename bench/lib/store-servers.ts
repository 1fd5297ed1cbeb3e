/**
 * Server set-ups for `--store redis` in the signaling and routing benchmarks: a real redis-server
 * on a free loopback port (the tests' helper), two server children on it, and one memory-store
 * child as the baseline in the same run. Each child is `script --serve <mode> [--store-url URL]`.
 */
import type { ChildProcess } from 'node:child_process';
import { startRedisServer, type RedisServer } from '../../test/signaling/redis-server.js';
import { forkServer } from './ws-bench.js';

export interface BenchServer {
  child: ChildProcess;
  url: string;
  wsUrl: string;
}

export interface StoreServers {
  /** One memory-store process: the baseline. */
  memory: BenchServer;
  /** Two processes on one Redis. */
  redis: [BenchServer, BenchServer];
  stop(): Promise<void>;
}

export async function startStoreServers(script: string, mode: string): Promise<StoreServers> {
  const redisServer: RedisServer = await startRedisServer();
  const children: BenchServer[] = [];
  try {
    const memory = await forkServer(script, [mode]);
    children.push(memory);
    const a = await forkServer(script, [mode, '--store-url', redisServer.url]);
    children.push(a);
    const b = await forkServer(script, [mode, '--store-url', redisServer.url]);
    children.push(b);
    return {
      memory,
      redis: [a, b],
      async stop() {
        for (const c of children) c.child.disconnect();
        await redisServer.stop();
      },
    };
  } catch (err) {
    for (const c of children) c.child.disconnect();
    await redisServer.stop();
    throw err;
  }
}
