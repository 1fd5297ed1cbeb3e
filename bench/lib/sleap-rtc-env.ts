/**
 * What the end-to-end benchmarks (bench:dispatch, bench:cache, bench:progress) set up alike: a lab
 * share seen through a second path, real labels files grown to a size, and real `sleap-rtc`
 * children (a signaling server, a room, workers running the sleap-nn stand-in) stopped at the end.
 * The clients run in the benchmark's own process through the library the CLI uses.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { mkdir, open, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { copySleapFile } from '../../test/helpers/sleap-data.js';
import { TS_LOADER } from '../../test/helpers/cli.js';

const CLI = fileURLToPath(new URL('../../src/cli/entry.ts', import.meta.url));
export const FAKE_SLEAP_NN = fileURLToPath(new URL('../../test/fixtures/sleap-nn', import.meta.url));

export interface BenchRoom {
  room_id: string;
  token: string;
}

/** The child processes of one benchmark run (`sleap-rtc` ones, and any adopted). */
export class SleapRtcProcesses {
  readonly #children: ChildProcess[] = [];

  /** Starts `sleap-rtc ...args` (no user config) and resolves with the first stderr match of `ready`. */
  start(args: string[], ready: RegExp, env: NodeJS.ProcessEnv = {}): Promise<RegExpMatchArray> {
    const child = spawn(process.execPath, ['--import', TS_LOADER, CLI, ...args], { env: { ...process.env, SLEAP_RTC_CONFIG: '', ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    this.#children.push(child);
    let err = '';
    return new Promise((resolve, reject) => {
      child.stderr?.setEncoding('utf8').on('data', (d: string) => {
        err += d;
        const m = ready.exec(err);
        if (m) resolve(m);
      });
      child.on('exit', (code) => reject(new Error(`sleap-rtc ${args[0]} exited (${code}): ${err}`)));
    });
  }

  /** `sleap-rtc server --port 0`; resolves with its URL. */
  async server(): Promise<string> {
    const [, url] = await this.start(['server', '--port', '0'], /listening on (http:\/\/\S+) \(WebSocket/);
    return url as string;
  }

  /** A new room on the server (`sleap-rtc room create --json`). */
  room(url: string): Promise<BenchRoom> {
    return new Promise((resolve, reject) => {
      const c = spawn(process.execPath, ['--import', TS_LOADER, CLI, 'room', 'create', '--server', url, '--json'], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      c.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
      c.on('close', (code) => (code === 0 ? resolve(JSON.parse(out) as BenchRoom) : reject(new Error(`room create failed (${code})`))));
    });
  }

  /** A worker with the config file `toml` in the room; resolves once it is ready. */
  async worker(url: string, room: BenchRoom, toml: string, name: string, env: NodeJS.ProcessEnv = {}): Promise<void> {
    await this.start(['worker', '--server', url, '--room', room.room_id, '--token', room.token, '--config', toml, '--name', name], /ready in room/, env);
  }

  /** Another child (the stand-in run on its own) to stop with the rest. */
  adopt(child: ChildProcess): ChildProcess {
    this.#children.push(child);
    return child;
  }

  /** SIGINT to every child (a worker leaves its room), SIGKILL to what has not exited 10 s later. */
  async stop(): Promise<void> {
    const running = this.#children.filter((c) => c.exitCode === null && c.signalCode === null);
    const exited = running.map((c) => new Promise((r) => c.on('exit', r)));
    for (const c of running) c.kill('SIGINT');
    const timer = setTimeout(() => running.forEach((c) => c.kill('SIGKILL')), 10_000);
    await Promise.all(exited);
    clearTimeout(timer);
  }
}

/** `<root>/share` is the worker's base path, `<root>/mnt` (a link to it) the client's; files go in `share/alice/data`. */
export async function benchShare(root: string): Promise<{ share: string; mount: string; data: string }> {
  const share = path.join(root, 'share');
  const mount = path.join(root, 'mnt');
  const data = path.join(share, 'alice', 'data');
  await mkdir(data, { recursive: true });
  await symlink(share, mount);
  return { share, mount, data };
}

/** A worker config: backend `vast` on `share`, the stand-in as sleap-nn, its own work folder (and cache settings when given). */
export async function writeWorkerToml(file: string, o: { share: string; workDir: string; cacheDir?: string; cacheMaxBytes?: number }): Promise<string> {
  const lines = [`[storage.vast]`, `base_path = ${JSON.stringify(o.share)}`, `[worker]`, `sleap_nn = ${JSON.stringify(FAKE_SLEAP_NN)}`, `work_dir = ${JSON.stringify(o.workDir)}`];
  if (o.cacheDir !== undefined) lines.push(`cache_dir = ${JSON.stringify(o.cacheDir)}`);
  if (o.cacheMaxBytes !== undefined) lines.push(`cache_max_bytes = ${o.cacheMaxBytes}`);
  await writeFile(file, `${lines.join('\n')}\n`);
  return file;
}

/**
 * A real labels file (the package file of ../shared/sleap-data, frames embedded) grown to at least
 * `bytes` with random bytes after its HDF5 data: HDF5 readers (h5py, h5wasm) ignore what lies past
 * the file's end-of-data address, so sleap-nn's stand-in reads it like the original, and two files
 * grown so differ in content.
 */
export async function writeSized(file: string, bytes: number): Promise<void> {
  const chunk = Buffer.alloc(16 * 1024 * 1024);
  await copySleapFile('pkg', file);
  const fh = await open(file, 'a');
  try {
    for (let written = (await fh.stat()).size; written < bytes; written += chunk.length) {
      randomFillSync(chunk);
      await fh.write(chunk, 0, Math.min(chunk.length, bytes - written));
    }
  } finally {
    await fh.close();
  }
}

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
};
