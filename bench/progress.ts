/**
 * Training progress, sleap-nn -> client screen: how many of sleap-nn's ZMQ events per second the
 * whole path carries, and the latency from sleap-nn sending `epoch_end` to the client drawing the
 * epoch's line. Real processes: the signaling server and the worker run as `sleap-rtc` children,
 * the sleap-nn stand-in publishes over ZMQ as the worker's child (stamping each event with its send
 * time), and the client runs in this process through the library the CLI uses, drawing its
 * terminal line into a counting stream (the "screen").
 *
 * Baseline, in the same run: the same stand-in publishing to a bare ZMQ SUB socket in this process.
 * Two workloads: a flood (batches at full speed, for events/s) and a paced run (about 1,000 batch
 * events a second, a fast GPU's rate, for the latency target: p99 under 50 ms).
 *
 *   npm run bench:progress        (BENCH_FLOOD_BATCHES, BENCH_FLOOD_EPOCHS, BENCH_PACED_EPOCHS to change the sizes)
 *
 * The last line of output is one JSON object.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { Subscriber } from 'zeromq';
import { createReporter } from '../src/client/reporter.js';
import { runJob } from '../src/client/run-job.js';
import { watchJob } from '../src/client/watch.js';
import { parseConfig } from '../src/config/index.js';
import { parsePythonJson } from '../src/protocol/progress.js';
import { buildTrainArgs } from '../src/worker/sleap-nn-args.js';
import { copySleapFile, copyTrainingConfig } from '../test/helpers/sleap-data.js';
import { benchShare, FAKE_SLEAP_NN, SleapRtcProcesses, writeWorkerToml } from './lib/sleap-rtc-env.js';
import { quantile } from './lib/ws-bench.js';

const FLOOD_EPOCHS = Number(process.env.BENCH_FLOOD_EPOCHS ?? 10);
const FLOOD_BATCHES = Number(process.env.BENCH_FLOOD_BATCHES ?? 5000);
const PACED_EPOCHS = Number(process.env.BENCH_PACED_EPOCHS ?? 30);
const PACED_BATCHES = 100;
const PACED_EPOCH_MS = 100;
const STAMP = 'stand_in/sent_ms';
const wallMs = (): number => performance.timeOrigin + performance.now();
const percentile = (xs: number[], p: number): number => (xs.length ? quantile([...xs].sort((a, b) => a - b), p / 100) : NaN);

const procs = new SleapRtcProcesses();

interface Workload {
  epochs: number;
  batches: number;
  epochDelayMs: number;
}

/** Every event the stand-in publishes for a workload: train_begin/end, and per epoch begin, end and two per batch. */
const eventsOf = (w: Workload): number => 2 + w.epochs * (2 + 2 * w.batches);

interface Figures {
  events: number;
  seconds: number;
  eventsPerSecond: number;
  latencies: number[];
}

const summary = (f: Figures): Record<string, number> => ({
  events: f.events,
  seconds: Number(f.seconds.toFixed(3)),
  events_per_s: Math.round(f.eventsPerSecond),
  epoch_latency_p50_ms: Number(percentile(f.latencies, 50).toFixed(2)),
  epoch_latency_p99_ms: Number(percentile(f.latencies, 99).toFixed(2)),
  epoch_latency_max_ms: Number(Math.max(...f.latencies).toFixed(2)),
});

/** The stand-in publishing straight to a bare SUB socket here. */
async function bare(root: string, w: Workload, config: string, labels: string): Promise<Figures> {
  const sub = new Subscriber({ linger: 0, receiveHighWaterMark: 0 });
  sub.subscribe();
  await sub.bind('tcp://127.0.0.1:0');
  const port = Number(/:(\d+)$/.exec(sub.lastEndpoint ?? '')?.[1]);
  const args = buildTrainArgs({ configFile: config, labels, outputDir: path.join(root, 'bare-out'), runName: `bare-${Date.now()}`, maxEpochs: w.epochs, zmq: { publishPort: port } });
  const child = procs.adopt(
    spawn(FAKE_SLEAP_NN, args, {
      env: { ...process.env, FAKE_SLEAP_NN_BATCHES_PER_EPOCH: String(w.batches), FAKE_SLEAP_NN_EPOCH_DELAY_MS: String(w.epochDelayMs), FAKE_SLEAP_NN_STAMP_EVENTS: '1' },
      stdio: ['ignore', 'ignore', 'inherit'],
    }),
  );
  const expected = eventsOf(w);
  let n = 0;
  let first = 0;
  let last = 0;
  const latencies: number[] = [];
  for await (const [frame] of sub) {
    const now = wallMs();
    n += 1;
    if (n === 1) first = performance.now();
    last = performance.now();
    const text = frame?.toString('utf8') ?? '';
    if (text.includes('"epoch_end"')) {
      const m = parsePythonJson(text) as { logs: Record<string, number> };
      latencies.push(now - (m.logs[STAMP] as number));
    }
    if (n >= expected) break;
  }
  sub.close();
  await new Promise((r) => (child.exitCode === null ? child.on('exit', r) : r(null)));
  return { events: n, seconds: (last - first) / 1000, eventsPerSecond: n / ((last - first) / 1000), latencies };
}

/** The same stand-in under a real worker; the client here draws its terminal line into `screen`. */
async function relayed(opts: { url: string; room: { room_id: string; token: string }; root: string; mount: string; w: Workload; worker: string }): Promise<Figures> {
  const { w } = opts;
  const sentAt = new Map<number, number>();
  const latencies: number[] = [];
  let events = 0;
  let first = 0;
  let last = 0;
  let drawn = 0;
  // The "screen": a terminal stream; an epoch counts as shown when its line is written.
  const screen = Object.assign(
    new Writable({
      write(chunk: Buffer, _enc, done) {
        const now = wallMs();
        for (const m of chunk.toString('utf8').matchAll(/epoch (\d+)\/\d+ \| train/g)) {
          const epoch = Number(m[1]);
          if (epoch > drawn) {
            for (let e = drawn + 1; e <= epoch; e++) {
              const sent = sentAt.get(e);
              if (sent !== undefined) latencies.push(now - sent);
            }
            drawn = epoch;
          }
        }
        done();
      },
    }),
    { isTTY: true, columns: 200 },
  );
  const reporter = createReporter({ stream: screen, tty: true });
  const config = parseConfig(`[storage.vast]\nbase_path = ${JSON.stringify(opts.mount)}\n`, 'client.toml', {});
  let closeWatchers: (() => Promise<void>) | null = null;
  const result = await runJob({
    args: { jobType: 'train', labels: path.join(opts.mount, 'alice/data/labels.slp'), configFile: path.join(opts.mount, 'alice/data/config.yaml'), runName: `r-${Date.now()}`, maxEpochs: w.epochs, cwd: opts.root },
    config,
    serverUrl: opts.url,
    roomId: opts.room.room_id,
    token: opts.room.token,
    worker: opts.worker,
    reporter,
    onLive: (live) => {
      // Registered before the watchers, so an epoch's send time is known when its line is drawn.
      live.on('train_event', (e) => {
        const now = performance.now();
        events += 1 + (e.skipped ?? 0) + (e.event === 'batch_end' ? 1 + (e.skipped ?? 0) : 0); // + the batch_start of each batch, consumed by the relay
        if (first === 0) first = now;
        last = now;
        if (e.event === 'epoch_end') sentAt.set((e.epoch ?? 0) + 1, e.logs?.[STAMP] as number);
        if (process.env.BENCH_DEBUG && e.event === 'epoch_end') process.stderr.write(`epoch_end ${e.epoch} at client +${(wallMs() - (e.logs?.[STAMP] as number)).toFixed(1)} ms\n`);
      });
      const watchers = watchJob(live, { reporter });
      closeWatchers = () => watchers.close();
    },
  });
  await (closeWatchers as (() => Promise<void>) | null)?.();
  reporter.close();
  if (result.status !== 'completed') throw new Error(`relayed run: ${JSON.stringify(result)}`);
  return { events, seconds: (last - first) / 1000, eventsPerSecond: events / ((last - first) / 1000), latencies };
}

const root = await mkdtemp(path.join(os.tmpdir(), 'sleap-rtc-bench-progress-'));
// The client's hash index under this run's folder, not the user's ~/.cache.
process.env.XDG_CACHE_HOME = path.join(root, 'xdg-cache');
try {
  const { share, mount, data } = await benchShare(root);
  // Real inputs (../shared/sleap-data): the stand-in reads them as sleap-nn does.
  await copyTrainingConfig(path.join(data, 'config.yaml'));
  await copySleapFile('pkg', path.join(data, 'labels.slp'));

  const url = await procs.server();
  const room = await procs.room(url);
  const workloads = {
    flood: { epochs: FLOOD_EPOCHS, batches: FLOOD_BATCHES, epochDelayMs: 0 },
    paced: { epochs: PACED_EPOCHS, batches: PACED_BATCHES, epochDelayMs: PACED_EPOCH_MS },
  };
  const figures: Record<string, { bare: Figures; relayed: Figures }> = {};
  for (const [name, w] of Object.entries(workloads)) {
    // Each worker its own work and cache folders (two workers may not share them); no cache needed here.
    const toml = await writeWorkerToml(path.join(root, `worker-${name}.toml`), { share, workDir: path.join(root, `work-${name}`), cacheDir: path.join(root, `cache-${name}`), cacheMaxBytes: 0 });
    const env = { FAKE_SLEAP_NN_BATCHES_PER_EPOCH: String(w.batches), FAKE_SLEAP_NN_EPOCH_DELAY_MS: String(w.epochDelayMs), FAKE_SLEAP_NN_STAMP_EVENTS: '1' };
    await procs.worker(url, room, toml, `bench-${name}`, env);
    process.stderr.write(`${name}: ${w.epochs} epochs x ${w.batches} batches (${eventsOf(w)} events), bare ZMQ...\n`);
    const b = await bare(root, w, path.join(data, 'config.yaml'), path.join(data, 'labels.slp'));
    process.stderr.write(`${name}: through the worker and the data channel...\n`);
    const r = await relayed({ url, room, root, mount, w, worker: `bench-${name}` });
    figures[name] = { bare: b, relayed: r };
  }

  const f = figures as Record<'flood' | 'paced', { bare: Figures; relayed: Figures }>;
  const ratio = f.flood.relayed.eventsPerSecond / f.flood.bare.eventsPerSecond;
  const p99 = percentile(f.paced.relayed.latencies, 99);
  console.log('\nTraining progress: sleap-nn stand-in -> worker relay -> data channel -> client screen');
  console.log('| workload | path | events | events/s | epoch_end -> screen p50 | p99 | max |');
  console.log('|---|---|---|---|---|---|---|');
  for (const [name, pair] of Object.entries(f)) {
    for (const [pathName, x] of [['bare ZMQ PUB -> SUB (baseline)', pair.bare], ['relayed to the client', pair.relayed]] as const) {
      const s = summary(x);
      console.log(`| ${name} | ${pathName} | ${s.events} | ${s.events_per_s} | ${s.epoch_latency_p50_ms} ms | ${s.epoch_latency_p99_ms} ms | ${s.epoch_latency_max_ms} ms |`);
    }
  }
  console.log(`\nflood: relayed ${Math.round(f.flood.relayed.eventsPerSecond)} events/s = ${ratio.toFixed(2)}x the bare ZMQ baseline`);
  console.log(`paced: epoch_end -> screen p99 ${p99.toFixed(1)} ms (target < 50 ms): ${p99 < 50 ? 'met' : 'NOT met'}; added over bare ZMQ: ${(p99 - percentile(f.paced.bare.latencies, 99)).toFixed(1)} ms`);
  console.log(
    JSON.stringify({
      bench: 'progress',
      flood: { bare: summary(f.flood.bare), relayed: summary(f.flood.relayed), events_per_s_ratio: Number(ratio.toFixed(3)) },
      paced: { bare: summary(f.paced.bare), relayed: summary(f.paced.relayed), target_p99_ms: 50, target_met: p99 < 50 },
    }),
  );
} finally {
  await procs.stop();
  await rm(root, { recursive: true, force: true });
}
