/**
 * Time from submitting a job to the worker starting sleap-nn, for a small labels file (the real
 * 42 KiB package file; the "1k" names are from when it was 1 KiB of random bytes) and a 1 GiB one
 * (the same file grown with bytes HDF5 ignores), via shared storage (only a reference crosses the wire; the worker reads the file in place)
 * and via transfer (the file crosses the data channel first). Real processes: the signaling server
 * and the worker run as `sleap-rtc` children, the sleap-nn stand-in as the worker's child; the
 * client runs in this process through the same library the CLI uses.
 *
 *   npm run bench:dispatch            (BENCH_RUNS=11 BENCH_BIG_RUNS=3 to change the repetitions)
 *
 * The baseline is shared storage with the small file, measured in the same run; the target is
 * shared storage with 1 GiB within 1.2x of it. The worker's cache is off here, so every transfer
 * job sends its file (bench:cache measures the cache). The last line of output is one JSON object.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { open, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runJob } from '../src/client/run-job.js';
import { silentReporter } from '../src/client/reporter.js';
import { parseConfig } from '../src/config/index.js';
import { copySleapFile, copyTrainingConfig } from '../test/helpers/sleap-data.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 11);
const BIG_RUNS = Number(process.env.BENCH_BIG_RUNS ?? 3);
const KIB = 1024;
const GIB = 1024 ** 3;
const CLI = fileURLToPath(new URL('../src/cli/entry.ts', import.meta.url));
const TSX = import.meta.resolve('tsx');
const FAKE_SLEAP_NN = fileURLToPath(new URL('../test/fixtures/sleap-nn', import.meta.url));

const children: ChildProcess[] = [];

/** Starts `sleap-rtc ...args` and resolves with the first stderr match of `ready`. */
function startCli(args: string[], ready: RegExp, env: NodeJS.ProcessEnv = {}): Promise<RegExpMatchArray> {
  const child = spawn(process.execPath, ['--import', TSX, CLI, ...args], { env: { ...process.env, SLEAP_RTC_CONFIG: '', ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  children.push(child);
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

/**
 * A real labels file (the package file of ../shared/sleap-data, frames embedded) grown to at least
 * `bytes` with random bytes after its HDF5 data: HDF5 readers (h5py, h5wasm) ignore what lies
 * past the file's end-of-data address, so sleap-nn's stand-in reads it like the original.
 */
async function writeSized(file: string, bytes: number): Promise<void> {
  await copySleapFile('pkg', file);
  const fh = await open(file, 'a');
  try {
    const start = (await fh.stat()).size;
    const chunk = randomFillSync(Buffer.alloc(Math.max(1, Math.min(bytes - start, 16 * 1024 * 1024))));
    for (let written = start; written < bytes; written += chunk.length) await fh.write(chunk, 0, Math.min(chunk.length, bytes - written));
  } finally {
    await fh.close();
  }
}

interface Sample {
  /** Submit -> JOB_STARTED. */
  dispatch: number;
  /** Submit -> WebRTC connection to the worker up (planning, signaling, routing, set-up). */
  connect: number;
  /** Submit -> results here. */
  total: number;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
};

const root = await mkdtemp(path.join(os.tmpdir(), 'sleap-rtc-bench-dispatch-'));
// The client's hash index under this run's folder, not the user's ~/.cache.
process.env.XDG_CACHE_HOME = path.join(root, 'xdg-cache');
try {
  const share = path.join(root, 'share');
  const mount = path.join(root, 'mnt');
  const data = path.join(share, 'alice', 'data');
  await mkdir(data, { recursive: true });
  await symlink(share, mount);
  await copyTrainingConfig(path.join(data, 'config.yaml'));
  await writeSized(path.join(data, 'labels-1k.slp'), KIB);
  process.stderr.write('writing the 1 GiB labels file...\n');
  await writeSized(path.join(data, 'labels-1g.slp'), GIB);

  const [, url] = (await startCli(['server', '--port', '0'], /listening on (http:\/\/\S+) \(WebSocket/)) as RegExpMatchArray;
  const room = await new Promise<{ room_id: string; token: string }>((resolve, reject) => {
    const c = spawn(process.execPath, ['--import', TSX, CLI, 'room', 'create', '--server', url as string, '--json'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    c.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    c.on('close', (code) => (code === 0 ? resolve(JSON.parse(out) as { room_id: string; token: string }) : reject(new Error('room create failed'))));
  });
  const workerToml = path.join(root, 'worker.toml');
  await writeFile(workerToml, `[storage.vast]\nbase_path = ${JSON.stringify(share)}\n[worker]\nsleap_nn = ${JSON.stringify(FAKE_SLEAP_NN)}\nwork_dir = ${JSON.stringify(path.join(root, 'work'))}\ncache_max_bytes = 0\n`);
  await startCli(['worker', '--server', url as string, '--room', room.room_id, '--token', room.token, '--config', workerToml, '--name', 'bench-gpu'], /ready in room/);

  const sharedConfig = parseConfig(`[storage.vast]\nbase_path = ${JSON.stringify(mount)}\n`, 'client.toml', {});
  const transferConfig = parseConfig('', 'client.toml', {});
  let runNo = 0;
  let connectFailures = 0;
  /** One job; ms from submit to JOB_STARTED, of which WebRTC set-up, and to completion. */
  const once = async (mode: 'shared' | 'transfer', labels: string): Promise<Sample> => {
    runNo += 1;
    let started = 0;
    let connected = 0;
    const t0 = performance.now();
    const result = await runJob({
      args: { jobType: 'train', labels: path.join(mount, 'alice/data', labels), configFile: path.join(mount, 'alice/data/config.yaml'), runName: `b${runNo}`, maxEpochs: 1, cwd: path.join(root) },
      config: mode === 'shared' ? sharedConfig : transferConfig,
      serverUrl: url as string,
      roomId: room.room_id,
      token: room.token,
      reporter: silentReporter(),
      onConnected: () => (connected = performance.now()),
      onStarted: () => (started = performance.now()),
    });
    const total = performance.now() - t0;
    if (result.error?.code === 'PEER_CONNECT_FAILED' && connectFailures < 5) {
      // The transport's known set-up race on loopback (see the report): counted, and run again.
      connectFailures += 1;
      process.stderr.write(`run ${runNo}: ${result.error.message}; running it again\n`);
      return once(mode, labels);
    }
    if (result.status !== 'completed' || result.transfer !== (mode === 'shared' ? 'shared' : 'webrtc')) throw new Error(`run ${runNo} (${mode}, ${labels}): ${JSON.stringify(result)}`);
    await rm(path.join(mode === 'shared' ? path.join(data, 'models') : root, `b${runNo}`), { recursive: true, force: true });
    return { dispatch: started - t0, connect: connected - t0, total };
  };

  const cases = [
    { key: 'shared_1kib', mode: 'shared' as const, labels: 'labels-1k.slp', runs: RUNS },
    { key: 'shared_1gib', mode: 'shared' as const, labels: 'labels-1g.slp', runs: RUNS },
    { key: 'transfer_1kib', mode: 'transfer' as const, labels: 'labels-1k.slp', runs: RUNS },
    { key: 'transfer_1gib', mode: 'transfer' as const, labels: 'labels-1g.slp', runs: BIG_RUNS },
  ];
  // Warm-up (module loading, first WebRTC set-up). Then the small cases interleaved round by
  // round, so drift on the machine spreads over them alike; the 1 GiB transfers come last, as
  // their disk traffic (1 GiB staged, then removed) would otherwise slow whatever runs next.
  await once('shared', 'labels-1k.slp');
  await once('transfer', 'labels-1k.slp');
  const samples = new Map(cases.map((c) => [c.key, [] as Sample[]]));
  const phases = [cases.filter((c) => c.key !== 'transfer_1gib'), cases.filter((c) => c.key === 'transfer_1gib')];
  for (const phase of phases) {
    for (let round = 0; round < Math.max(...phase.map((c) => c.runs)); round++) {
      for (const c of phase) {
        if (round >= c.runs) continue;
        process.stderr.write(`round ${round + 1}: ${c.key}\n`);
        samples.get(c.key)?.push(await once(c.mode, c.labels));
      }
    }
  }

  const fig = (key: string): { median: number; min: number; after: number; total: number } => {
    const s = samples.get(key) ?? [];
    return {
      median: median(s.map((x) => x.dispatch)),
      min: Math.min(...s.map((x) => x.dispatch)),
      after: median(s.map((x) => x.dispatch - x.connect)),
      total: median(s.map((x) => x.total)),
    };
  };
  const base = fig('shared_1kib');
  console.log(`\njob dispatch: submit -> worker starts sleap-nn; ${os.cpus().length} cores, loopback, real server and worker processes`);
  console.log(`${'case'.padEnd(26)} ${'runs'.padStart(4)} ${'median ms'.padStart(10)} ${'min ms'.padStart(8)} ${'vs baseline'.padStart(12)} ${'after connect'.padStart(14)} ${'job total ms'.padStart(13)}`);
  const figures: Record<string, number> = {};
  for (const c of cases) {
    const f = fig(c.key);
    const ratio = f.median / base.median;
    console.log(
      `${`${c.key}${c.key === 'shared_1kib' ? ' (baseline)' : ''}`.padEnd(26)} ${String(c.runs).padStart(4)} ${f.median.toFixed(1).padStart(10)} ${f.min.toFixed(1).padStart(8)} ${`${ratio.toFixed(2)}x`.padStart(12)} ${f.after.toFixed(1).padStart(14)} ${f.total.toFixed(0).padStart(13)}`,
    );
    figures[`${c.key}_dispatch_ms`] = Number(f.median.toFixed(1));
    figures[`${c.key}_dispatch_min_ms`] = Number(f.min.toFixed(1));
    figures[`${c.key}_after_connect_ms`] = Number(f.after.toFixed(1));
    figures[`${c.key}_total_ms`] = Number(f.total.toFixed(0));
    figures[`${c.key}_vs_baseline`] = Number(ratio.toFixed(3));
  }
  console.log('("after connect": from the WebRTC connection being up to sleap-nn starting: request, path checks, claim, upload, spawn)');
  console.log('\nsamples, dispatch ms (of which WebRTC set-up and what came before it), in run order:');
  for (const c of cases) console.log(`  ${c.key.padEnd(14)} ${(samples.get(c.key) ?? []).map((x) => `${x.dispatch.toFixed(0)} (${x.connect.toFixed(0)})`).join(', ')}`);
  const sharedRatio = fig('shared_1gib').median / base.median;
  const sharedMinRatio = fig('shared_1gib').min / base.min;
  const sharedAfterRatio = fig('shared_1gib').after / base.after;
  const uploadMs = fig('transfer_1gib').median - fig('transfer_1kib').median;
  const mibPerS = GIB / (1024 * 1024) / (uploadMs / 1000);
  console.log(`\nshared storage, 1 GiB vs 1 KiB: ${sharedRatio.toFixed(2)}x by median, ${sharedMinRatio.toFixed(2)}x by best run, ${sharedAfterRatio.toFixed(2)}x after connect (target: within 1.20x) -> ${sharedRatio <= 1.2 ? 'met' : 'NOT met'}`);
  console.log(`transfer of 1 GiB before sleap-nn can start: ${(uploadMs / 1000).toFixed(1)} s (${mibPerS.toFixed(0)} MiB/s over the data channel, hashed and written on both sides)`);
  if (connectFailures) console.log(`WebRTC set-up failed ${connectFailures} time(s) and the run was repeated (the transport's set-up race on loopback)`);
  console.log(
    JSON.stringify({
      bench: 'dispatch',
      runs: RUNS,
      big_transfer_runs: BIG_RUNS,
      ...figures,
      shared_1gib_vs_1kib: Number(sharedRatio.toFixed(3)),
      shared_1gib_vs_1kib_min: Number(sharedMinRatio.toFixed(3)),
      shared_1gib_vs_1kib_after_connect: Number(sharedAfterRatio.toFixed(3)),
      shared_target_met: sharedRatio <= 1.2,
      transfer_1gib_upload_ms: Number(uploadMs.toFixed(0)),
      peer_connect_failures_retried: connectFailures,
      transfer_mib_per_s: Number(mibPerS.toFixed(1)),
    }),
  );
} finally {
  for (const c of children) c.kill('SIGINT');
  await Promise.all(children.map((c) => (c.exitCode === null && c.signalCode === null ? new Promise((r) => c.on('exit', r)) : null)));
  await rm(root, { recursive: true, force: true });
}
