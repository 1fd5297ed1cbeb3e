/**
 * Real processes for the job end-to-end tests: `sleap-rtc server --port 0`, rooms from
 * `sleap-rtc room create --json`, `sleap-rtc worker` children with their own config files, and
 * clients run with `runCli`. Everything started here is stopped by the test's after hooks.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { after, before } from 'node:test';
import { mkdir, mkdtemp, readdir, readFile, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { FAKE_SLEAP_NN, tempDir } from '../../fixtures/fake-sleap-nn.js';
import { runCli, spawnCli, type CliResult } from '../../helpers/cli.js';
import { copySleapFile, copyTrainingConfig, sleapDataPath } from '../../helpers/sleap-data.js';
import { labelsNaming } from '../../helpers/slp-files.js';

type Hooks = { after: (fn: () => unknown) => void };

export interface CliChild {
  child: ChildProcess;
  stderr(): string;
  stdout(): string;
  /** Resolves once stderr matches `pattern` (rejects after `timeoutMs`, 2 min by default: a loaded machine starts a CLI slowly, or when the process exits first). */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Spawns `sleap-rtc ...args`, collecting output; killed after the test if still running. */
export function spawnTracked(t: Hooks, args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): CliChild {
  const child = spawnCli(args, { env: opts.env ?? {}, ...(opts.cwd ? { cwd: opts.cwd } : {}) });
  let out = '';
  let err = '';
  const watchers = new Set<() => void>();
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    err += d;
    for (const w of [...watchers]) w();
  });
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGINT');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exit;
      clearTimeout(timer);
    }
    // For chasing a failure: SLEAP_RTC_E2E_DEBUG=1 shows what every process said.
    if (process.env.SLEAP_RTC_E2E_DEBUG) process.stderr.write(`---- sleap-rtc ${args.slice(0, 3).join(' ')}\n${err}\n`);
  });
  return {
    child,
    stderr: () => err,
    stdout: () => out,
    exit,
    waitFor(pattern, timeoutMs = 120_000) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          const m = pattern.exec(err);
          if (!m) return;
          done();
          resolve(m);
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`no ${pattern} on stderr within ${timeoutMs} ms; stderr:\n${err}`));
        }, timeoutMs);
        const done = (): void => {
          clearTimeout(timer);
          watchers.delete(check);
        };
        void exit.then(({ code }) => {
          if (!watchers.has(check)) return;
          done();
          reject(new Error(`process exited (${code}) before ${pattern}; stderr:\n${err}`));
        });
        watchers.add(check);
        check();
      });
    },
  };
}

export interface Room {
  serverUrl: string;
  roomId: string;
  token: string;
  /** `--server URL --room ID --token T`. */
  flags: string[];
}

/** A signaling server child on a free port; shared by the tests of one file. */
export async function startServer(t: Hooks): Promise<{ url: string; newRoom(): Promise<Room> }> {
  const server = spawnTracked(t, ['server', '--port', '0']);
  const m = await server.waitFor(/listening on (http:\/\/\S+) \(WebSocket/);
  const url = m[1] as string;
  return {
    url,
    async newRoom() {
      const r = await runCli(['room', 'create', '--server', url, '--json']);
      if (r.code !== 0) throw new Error(`room create failed: ${r.stderr}`);
      const room = JSON.parse(r.stdout) as { room_id: string; token: string };
      return { serverUrl: url, roomId: room.room_id, token: room.token, flags: ['--server', url, '--room', room.room_id, '--token', room.token] };
    },
  };
}

export type Server = Awaited<ReturnType<typeof startServer>>;

/**
 * The signaling server of one test file, at its top level: started before the file's first test
 * (then `setUp`, for more of the file's shared parts), stopped after its last, with whatever
 * `setUp` registered on the hooks it gets, last registered first. `url` and `newRoom` are for use
 * inside tests.
 */
export function serverForFile(setUp?: (suite: Hooks) => Promise<void>): Server {
  let server: Server | undefined;
  const cleanups: (() => unknown)[] = [];
  const suite: Hooks = { after: (fn) => cleanups.push(fn) };
  before(async () => {
    server = await startServer(suite);
    await setUp?.(suite);
  });
  after(async () => {
    for (const fn of cleanups.reverse()) await fn();
  });
  const started = (): Server => {
    if (server === undefined) throw new Error("the file's signaling server is not up (use it inside a test)");
    return server;
  };
  return {
    get url() {
      return started().url;
    },
    newRoom: () => started().newRoom(),
  };
}

export interface Worker extends CliChild {
  name: string;
}

/** A worker child with the given TOML (sleap_nn defaults to the stand-in); resolves once it is in the room. */
export async function startWorker(
  t: Hooks,
  room: Room,
  dir: string,
  opts: { name: string; toml?: string; env?: NodeJS.ProcessEnv; noConfig?: boolean; workerToml?: string },
): Promise<Worker> {
  const args = ['worker', ...room.flags, '--name', opts.name];
  if (!opts.noConfig) {
    const file = path.join(dir, `worker-${opts.name}.toml`);
    const extra = opts.workerToml ? `${opts.workerToml}\n` : '';
    await writeFile(file, `${opts.toml ?? ''}\n[worker]\nsleap_nn = ${JSON.stringify(FAKE_SLEAP_NN)}\nwork_dir = ${JSON.stringify(path.join(dir, `work-${opts.name}`))}\n${extra}`);
    args.push('--config', file);
  }
  const child = spawnTracked(t, args, { env: { HOME: dir, ...opts.env } });
  await child.waitFor(new RegExp(`worker ${opts.name} ready in room`));
  return { ...child, name: opts.name };
}

/** `startWorker` whose sleap-nn stand-in records every run it is given in `<dir>/record.jsonl` (read it with readRecords). */
export async function recordingWorker(t: Hooks, room: Room, dir: string, opts: Parameters<typeof startWorker>[3]): Promise<{ worker: Worker; record: string }> {
  const record = path.join(dir, 'record.jsonl');
  const worker = await startWorker(t, room, dir, { ...opts, env: { FAKE_SLEAP_NN_RECORD: record, ...opts.env } });
  return { worker, record };
}

/** Runs a client command in the room (`train`/`track` args), with HOME isolated. */
export function runClient(room: Room, dir: string, args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; config?: string } = {}): Promise<CliResult> {
  const config = opts.config ? ['--config', opts.config] : [];
  return runCli([...args, ...room.flags, ...config], { env: { HOME: dir, ...opts.env }, cwd: opts.cwd ?? dir, timeoutMs: 240_000 });
}

/** `runClient`, asserting the job completed (exit 0, `--json` status `completed`); with that `--json` result. */
export async function runCompleted(room: Room, dir: string, args: string[], opts: Parameters<typeof runClient>[3] = {}): Promise<{ r: CliResult; result: Record<string, unknown> }> {
  const r = await runClient(room, dir, args, opts);
  assert.equal(r.code, 0, r.stderr);
  const result = lastJson(r);
  assert.equal(result.status, 'completed');
  return { r, result };
}

/** The last stdout line of a finished command or a tracked child as JSON (what --json promises). */
export function lastJson<T = Record<string, unknown>>(r: CliResult | CliChild): T {
  const stdout = typeof r.stdout === 'function' ? r.stdout() : r.stdout;
  return JSON.parse(stdout.trimEnd().split('\n').at(-1) ?? '') as T;
}

/** Waits for a client child to end and asserts it ended as a cancelled job: exit 1, `--json` status `cancelled`, JOB_CANCELLED. */
export async function assertJobCancelled(client: CliChild): Promise<void> {
  const { code } = await client.exit;
  assert.equal(code, 1, client.stderr());
  const result = lastJson<{ status: string; error: { code: string } }>(client);
  assert.equal(result.status, 'cancelled');
  assert.equal(result.error.code, 'JOB_CANCELLED');
}

/**
 * One lab share seen by two machines: `share/` is the worker's base path, `mnt-client` a symlink
 * to it is the client's, so the worker really resolves a different path than the client sent.
 * Holds alice/proj/{labels.slp, labels.pkg.slp (package files), config.yaml, video.mp4} and alice/models/m1/{best.ckpt, training_config.yaml}.
 */
export async function labShare(t: Hooks): Promise<{ dir: string; share: string; mount: string; clientToml: string; workerToml: string }> {
  const dir = await realpath(await mkdtemp(path.join(os.tmpdir(), 'sleap-rtc-e2e-')));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const share = path.join(dir, 'share');
  const mount = path.join(dir, 'mnt-client');
  await mkdir(path.join(share, 'alice', 'proj'), { recursive: true });
  await mkdir(path.join(share, 'alice', 'models', 'm1'), { recursive: true });
  // Real SLEAP files: labels (their video, small_robot.mp4, beside them), a video to run inference
  // on, sleap-nn's sample config (200 epochs: tests pass --max-epochs), and a model folder.
  // Package files (frames embedded): sleap-nn gets the labels pinned in its job folder, where a
  // video named relative to them would not be found (remapping external videos is issue 10's part 4).
  await copySleapFile('pkg', path.join(share, 'alice', 'proj', 'labels.slp'));
  await copySleapFile('pkg', path.join(share, 'alice', 'proj', 'labels.pkg.slp'));
  await copyTrainingConfig(path.join(share, 'alice', 'proj', 'config.yaml'));
  await copySleapFile('video', path.join(share, 'alice', 'proj', 'video.mp4'));
  await copyTrainingConfig(path.join(share, 'alice', 'models', 'm1', 'training_config.yaml'));
  await writeFile(path.join(share, 'alice', 'models', 'm1', 'best.ckpt'), 'ckpt');
  await symlink(share, mount);
  const clientToml = path.join(dir, 'client.toml');
  await writeFile(clientToml, `[storage.vast]\nbase_path = ${JSON.stringify(mount)}\ntype = "nfs"\n`);
  return { dir, share, mount, clientToml, workerToml: `[storage.vast]\nbase_path = ${JSON.stringify(share)}\ntype = "nfs"\n` };
}

export type Lab = Awaited<ReturnType<typeof labShare>>;

/**
 * `sleap-rtc train` of the lab share's config and labels (`labels`, a client path: by default the
 * share's labels.slp), seen from the client's mount, with `--json` (add `room.flags`).
 */
export function trainArgs(lab: Lab, run: string, epochs: number, labels = path.join(lab.mount, 'alice/proj/labels.slp')): string[] {
  return [
    'train',
    ...['--labels', labels],
    ...['--config-file', path.join(lab.mount, 'alice/proj/config.yaml')],
    ...['--run-name', run],
    ...['--max-epochs', String(epochs)],
    '--json',
    ...['--config', lab.clientToml],
  ];
}

/** `training` in a train job's `--json` result. */
export interface TrainingJson {
  source: string;
  epochs_done: number;
  total_epochs: number;
  best: { epoch: number; val_loss: number } | null;
  loss_history: { epoch: number; train_loss: number | null; val_loss: number | null; lr: number | null }[];
}

/** The `[old, new]` pairs of the `--video-path-map` options in a sleap-nn command line, in order. */
export function videoPathMaps(argv: readonly string[]): [string, string][] {
  return argv.flatMap((a, i): [string, string][] => (a === '--video-path-map' ? [[String(argv[i + 1]), String(argv[i + 2])]] : []));
}

/** The lab share plus alice/videos/{cam0,cam1}.mp4 and a labels file naming `names` (client paths). */
export async function labWithVideos(t: Parameters<typeof labShare>[0], names: (mount: string, dir: string) => string[]) {
  const lab = await labShare(t);
  await copySleapFile('video', path.join(lab.share, 'alice/videos/cam0.mp4'));
  await copySleapFile('video', path.join(lab.share, 'alice/videos/cam1.mp4'));
  const labels = await labelsNaming(path.join(lab.share, 'alice/proj/cams.slp'), names(lab.mount, lab.dir));
  return { ...lab, labels, clientLabels: path.join(lab.mount, 'alice/proj/cams.slp') };
}

// ---- transfer jobs through a worker's cache -----------------------------------------------------

/** The SHA-256 of `bytes` in hex: the name of their entry in a worker's cache. */
export const sha256Hex = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

export interface CacheLab {
  dir: string;
  /** The worker's cache folder (not made: the worker makes it). */
  cache: string;
  /** The client's folder, outside every backend, holding `config.yaml`. */
  laptop: string;
  /** The bytes of `laptop/config.yaml`. */
  config: Buffer;
}

/**
 * A laptop folder outside every backend (so jobs go by transfer) with sleap-nn's sample config as
 * `config.yaml`, and a worker cache folder at `cacheIn` under the test's temp folder.
 */
export async function cacheLab(t: Hooks, cacheIn = 'cache'): Promise<CacheLab> {
  const dir = await tempDir(t);
  const laptop = path.join(dir, 'laptop');
  await mkdir(laptop);
  const config = await readFile(sleapDataPath('centroidConfig'));
  await writeFile(path.join(laptop, 'config.yaml'), config);
  return { dir, cache: path.join(dir, cacheIn), laptop, config };
}

/** A worker whose cache is the lab's; `extra`: more `[worker]` TOML lines. */
export function cachedWorker(t: Hooks, room: Room, l: CacheLab, name: string, extra = ''): Promise<Worker> {
  return startWorker(t, room, l.dir, { name, workerToml: `cache_dir = ${JSON.stringify(l.cache)}\n${extra}` });
}

/** `sleap-rtc train --json` of `labels` with the sample config, one epoch, run in the laptop folder. */
export function trainFromLaptop(room: Room, l: CacheLab, labels: string, run: string): Promise<CliResult> {
  return runClient(room, l.dir, ['train', '--labels', labels, '--config-file', 'config.yaml', '--run-name', run, '--max-epochs', '1', '--json'], { cwd: l.laptop });
}

/** The entries of a worker's cache folder (each named by its content's SHA-256), sorted. */
export async function cacheEntries(cache: string): Promise<string[]> {
  const root = path.join(cache, 'entries');
  const out: string[] = [];
  for (const shard of await readdir(root).catch(() => [])) out.push(...(await readdir(path.join(root, shard))));
  return out.sort();
}
