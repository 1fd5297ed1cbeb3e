/**
 * A real redis-server for tests and benchmarks: a free loopback port (never a fixed one), a fresh
 * temporary folder, no persistence unless asked for, and killed by `stop()` (which the caller
 * registers with t.after). `restart()` kills it and starts it again on the same port and folder,
 * which with `appendonly` keeps the data.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface RedisServer {
  readonly port: number;
  /** redis://127.0.0.1:PORT/0 */
  readonly url: string;
  readonly dir: string;
  /** SIGKILL (when `hard`) or SIGTERM, then start again on the same port with the same folder. */
  restart(opts?: { hard?: boolean; downMs?: number }): Promise<void>;
  /** Kills it without starting again (for "Redis unreachable" tests); `start()` brings it back. */
  kill(): Promise<void>;
  start(): Promise<void>;
  /** Kills it and removes its folder. Safe twice. */
  stop(): Promise<void>;
}

export interface RedisServerOptions {
  /** Keep data across restarts with the append-only file (fsync every write). */
  appendonly?: boolean;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export async function startRedisServer(opts: RedisServerOptions = {}): Promise<RedisServer> {
  const dir = await mkdtemp(join(tmpdir(), 'sleap-rtc-redis-'));
  let port = 0;
  let child: ChildProcess | undefined;
  let stopped = false;

  const launch = async (): Promise<void> => {
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--daemonize', 'no', '--protected-mode', 'yes'];
    args.push('--appendonly', opts.appendonly === true ? 'yes' : 'no');
    if (opts.appendonly === true) args.push('--appendfsync', 'always');
    const proc = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child = proc;
    let output = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`redis-server did not start within 10 s:\n${output}`)), 10_000);
      const onData = (chunk: Buffer): void => {
        output += chunk.toString();
        if (output.includes('Ready to accept connections')) {
          clearTimeout(timer);
          resolve();
        }
      };
      proc.stdout?.on('data', onData);
      proc.stderr?.on('data', onData);
      proc.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`redis-server exited (${code}) before it was ready:\n${output}`));
      });
    });
    proc.stdout?.resume();
    proc.stderr?.resume();
  };

  const kill = async (signal: NodeJS.Signals = 'SIGKILL'): Promise<void> => {
    const proc = child;
    child = undefined;
    if (proc === undefined || proc.exitCode !== null || proc.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      proc.once('exit', () => resolve());
      proc.kill(signal);
    });
  };

  // A free port can be taken between our check and redis binding it: try a few.
  for (let attempt = 0; ; attempt++) {
    port = await freePort();
    try {
      await launch();
      break;
    } catch (err) {
      await kill();
      if (attempt >= 4) {
        await rm(dir, { recursive: true, force: true });
        throw err;
      }
    }
  }

  return {
    port,
    url: `redis://127.0.0.1:${port}/0`,
    dir,
    async restart(o = {}) {
      await kill(o.hard === false ? 'SIGTERM' : 'SIGKILL');
      if (o.downMs !== undefined) await new Promise((r) => setTimeout(r, o.downMs));
      await launch();
    },
    kill: () => kill(),
    start: launch,
    async stop() {
      if (stopped) return;
      stopped = true;
      await kill();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
