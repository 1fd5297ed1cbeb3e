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
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { runJob } from '../src/client/run-job.js';
import { silentReporter } from '../src/client/reporter.js';
import { parseConfig } from '../src/config/index.js';
import { copyTrainingConfig } from '../test/helpers/sleap-data.js';
import { benchShare, median, SleapRtcProcesses, writeSized, writeWorkerToml } from './lib/sleap-rtc-env.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 11);
const BIG_RUNS = Number(process.env.BENCH_BIG_RUNS ?? 3);
const KIB = 1024;
const GIB = 1024 ** 3;

interface Sample {
  /** Submit -> JOB_STARTED. */
  dispatch: number;
  /** Submit -> WebRTC connection to the worker up (planning, signaling, routing, set-up). */
  connect: number;
  /** Submit -> results here. */
  total: number;
}

const root = await mkdtemp(path.join(os.tmpdir(), 'sleap-rtc-bench-dispatch-'));
const procs = new SleapRtcProcesses();
// The client's hash index under this run's folder, not the user's ~/.cache.
process.env.XDG_CACHE_HOME = path.join(root, 'xdg-cache');
try {
  const { share, mount, data } = await benchShare(root);
  await copyTrainingConfig(path.join(data, 'config.yaml'));
  await writeSized(path.join(data, 'labels-1k.slp'), KIB);
  process.stderr.write('writing the 1 GiB labels file...\n');
  await writeSized(path.join(data, 'labels-1g.slp'), GIB);

  const url = await procs.server();
  const room = await procs.room(url);
  await procs.worker(url, room, await writeWorkerToml(path.join(root, 'worker.toml'), { share, workDir: path.join(root, 'work'), cacheMaxBytes: 0 }), 'bench-gpu');

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
      serverUrl: url,
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
  await procs.stop();
  await rm(root, { recursive: true, force: true });
}
