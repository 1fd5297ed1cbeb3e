/**
 * The worker's cache and resumed transfers, in one run, with real server and worker processes
 * (the client runs in this process through the library the CLI uses):
 *
 *  (1) a second transfer job with the same 1 GiB labels file: payload bytes sent (target 0) and
 *      time from submit to sleap-nn starting, against a shared-storage job of the same size
 *      (target: within 1.2x);
 *  (2) a 1 GiB transfer cut at about half (the client cancels, as on Ctrl-C) and resumed by the
 *      next job: total payload bytes sent over both attempts (target: at most 1.05x the file);
 *  (3) the client's check of an unchanged 1 GiB file through its hash index (target: under
 *      50 ms), against a full SHA-256 pass over it.
 *
 *   npm run bench:cache        (BENCH_RUNS=5 to change the repetitions)
 *
 * The last line of output is one JSON object.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { mkdir, mkdtemp, open, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { copySleapFile, copyTrainingConfig } from '../test/helpers/sleap-data.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const GIB = 1024 ** 3;
const CLI = fileURLToPath(new URL('../src/cli/entry.ts', import.meta.url));
const TSX = import.meta.resolve('tsx');
const FAKE_SLEAP_NN = fileURLToPath(new URL('../test/fixtures/sleap-nn', import.meta.url));

const root = await mkdtemp(path.join(os.tmpdir(), 'sleap-rtc-bench-cache-'));
// The client's hash index goes under this run's folder, not the user's ~/.cache.
process.env.XDG_CACHE_HOME = path.join(root, 'xdg-cache');
process.env.XDG_STATE_HOME = path.join(root, 'xdg-state');
const { runJob } = await import('../src/client/run-job.js');
const { silentReporter } = await import('../src/client/reporter.js');
const { parseConfig } = await import('../src/config/index.js');
const { HashIndex } = await import('../src/content/hash-index.js');
const { sha256File } = await import('../src/content/file-hash.js');

const children: ChildProcess[] = [];

function startCli(args: string[], ready: RegExp): Promise<RegExpMatchArray> {
  const child = spawn(process.execPath, ['--import', TSX, CLI, ...args], { env: { ...process.env, SLEAP_RTC_CONFIG: '' }, stdio: ['ignore', 'ignore', 'pipe'] });
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
 * A real labels file (the package file of ../shared/sleap-data) grown to `bytes` with random bytes
 * after its HDF5 data, which HDF5 readers ignore: valid for sleap-nn's stand-in, distinct content.
 */
async function writeSized(file: string, bytes: number): Promise<void> {
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

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
};

try {
  const share = path.join(root, 'share');
  const mount = path.join(root, 'mnt');
  const data = path.join(share, 'alice', 'data');
  await mkdir(data, { recursive: true });
  await symlink(share, mount);
  await copyTrainingConfig(path.join(data, 'config.yaml'));
  process.stderr.write('writing two 1 GiB labels files...\n');
  await writeSized(path.join(data, 'labels-a.slp'), GIB);
  await writeSized(path.join(data, 'labels-b.slp'), GIB);
  // Older than the index's racy window, so the first hash is remembered.
  await new Promise((r) => setTimeout(r, 2_100));

  const [, url] = (await startCli(['server', '--port', '0'], /listening on (http:\/\/\S+) \(WebSocket/)) as RegExpMatchArray;
  const room = await new Promise<{ room_id: string; token: string }>((resolve, reject) => {
    const c = spawn(process.execPath, ['--import', TSX, CLI, 'room', 'create', '--server', url as string, '--json'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    c.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    c.on('close', (code) => (code === 0 ? resolve(JSON.parse(out) as { room_id: string; token: string }) : reject(new Error('room create failed'))));
  });
  const workerToml = path.join(root, 'worker.toml');
  await writeFile(
    workerToml,
    `[storage.vast]\nbase_path = ${JSON.stringify(share)}\n[worker]\nsleap_nn = ${JSON.stringify(FAKE_SLEAP_NN)}\nwork_dir = ${JSON.stringify(path.join(root, 'work'))}\ncache_dir = ${JSON.stringify(path.join(root, 'cache'))}\n`,
  );
  await startCli(['worker', '--server', url as string, '--room', room.room_id, '--token', room.token, '--config', workerToml, '--name', 'bench-gpu'], /ready in room/);

  const sharedConfig = parseConfig(`[storage.vast]\nbase_path = ${JSON.stringify(mount)}\n`, 'client.toml', {});
  const transferConfig = parseConfig('', 'client.toml', {});
  let runNo = 0;
  const once = async (mode: 'shared' | 'transfer', labels: string, cutAt?: number): Promise<{ dispatch: number; sent: number; skipped: number; status: string }> => {
    runNo += 1;
    let started = 0;
    const cancel = new AbortController();
    const reporter = silentReporter();
    if (cutAt !== undefined) {
      reporter.transfer = (_dir, p) => {
        if (p.bytes >= cutAt) cancel.abort();
      };
    }
    const t0 = performance.now();
    const result = await runJob({
      args: { jobType: 'train', labels: path.join(mount, 'alice/data', labels), configFile: path.join(mount, 'alice/data/config.yaml'), runName: `b${runNo}`, maxEpochs: 1, cwd: root },
      config: mode === 'shared' ? sharedConfig : transferConfig,
      serverUrl: url as string,
      roomId: room.room_id,
      token: room.token,
      reporter,
      signal: cancel.signal,
      onStarted: () => (started = performance.now()),
    });
    if (cutAt === undefined && (result.status !== 'completed' || result.transfer !== (mode === 'shared' ? 'shared' : 'webrtc'))) {
      throw new Error(`run ${runNo} (${mode}, ${labels}): ${JSON.stringify(result)}`);
    }
    await rm(path.join(mode === 'shared' ? path.join(data, 'models') : root, `b${runNo}`), { recursive: true, force: true });
    return { dispatch: started - t0, sent: result.bytes_sent, skipped: result.bytes_skipped, status: result.status };
  };

  // (1) Warm up, send labels-a once (cold), then shared and cached transfer jobs interleaved.
  await once('shared', 'labels-a.slp');
  process.stderr.write('first transfer job (cold: the 1 GiB file is hashed and sent)\n');
  const cold = await once('transfer', 'labels-a.slp');
  const shared: number[] = [];
  const cached: { dispatch: number; sent: number }[] = [];
  for (let i = 0; i < RUNS; i++) {
    process.stderr.write(`round ${i + 1}: shared, cached transfer\n`);
    shared.push((await once('shared', 'labels-a.slp')).dispatch);
    cached.push(await once('transfer', 'labels-a.slp'));
  }
  const sharedMs = median(shared);
  const cachedMs = median(cached.map((c) => c.dispatch));
  const cachedSent = Math.max(...cached.map((c) => c.sent));

  // (2) labels-b cut at about half, then the next job resumes it.
  process.stderr.write('cut at about half, then resume\n');
  const cut = await once('transfer', 'labels-b.slp', GIB / 2);
  const resumed = await once('transfer', 'labels-b.slp');
  const resumeTotal = cut.sent + resumed.sent;

  // (3) The hash index against a full SHA-256 pass, on the unchanged labels-a.
  const labelsA = path.join(data, 'labels-a.slp');
  const indexFile = path.join(process.env.XDG_CACHE_HOME as string, 'sleap-rtc', 'hash-index.json');
  const checks: number[] = [];
  for (let i = 0; i < 11; i++) {
    const t = performance.now();
    const d = await new HashIndex(indexFile).digest(labelsA);
    checks.push(performance.now() - t);
    if (!d.fromIndex) throw new Error('the unchanged file was hashed again');
  }
  const passes: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t = performance.now();
    await sha256File(labelsA);
    passes.push(performance.now() - t);
  }
  const checkMs = median(checks);
  const passMs = median(passes);

  const ratio = cachedMs / sharedMs;
  console.log(`\ncache and resume, 1 GiB, ${os.cpus().length} cores, loopback, real server and worker processes, load average ${os.loadavg()[0]?.toFixed(1)}`);
  console.log(`(1) second job, same 1 GiB input: ${cachedSent} payload bytes sent (target 0) -> ${cachedSent === 0 ? 'met' : 'NOT met'}`);
  console.log(`    dispatch (submit -> sleap-nn starts), median of ${RUNS}: cached transfer ${cachedMs.toFixed(0)} ms vs shared storage ${sharedMs.toFixed(0)} ms = ${ratio.toFixed(2)}x (target <= 1.20x) -> ${ratio <= 1.2 ? 'met' : 'NOT met'}`);
  console.log(`    (the first, cold transfer job: ${cold.dispatch.toFixed(0)} ms, ${cold.sent} bytes sent)`);
  console.log(`    samples: shared ${shared.map((x) => x.toFixed(0)).join(', ')}; cached ${cached.map((x) => x.dispatch.toFixed(0)).join(', ')}`);
  console.log(`(2) cut at ${(cut.sent / GIB).toFixed(2)} GiB sent (${cut.status}), resumed: ${resumed.skipped - 14} bytes not sent again; total sent ${resumeTotal} = ${(resumeTotal / GIB).toFixed(3)}x the file (target <= 1.05x) -> ${resumeTotal <= 1.05 * GIB ? 'met' : 'NOT met'}`);
  console.log(`(3) unchanged 1 GiB file: hash index ${checkMs.toFixed(2)} ms (median of 11, index loaded each time) vs full SHA-256 pass ${passMs.toFixed(0)} ms = ${(checkMs / passMs).toFixed(4)}x (target < 50 ms) -> ${checkMs < 50 ? 'met' : 'NOT met'}`);
  console.log(
    JSON.stringify({
      bench: 'cache',
      runs: RUNS,
      load_average: Number(os.loadavg()[0]?.toFixed(2)),
      cached_payload_bytes: cachedSent,
      cached_dispatch_ms: Number(cachedMs.toFixed(1)),
      shared_1gib_dispatch_ms: Number(sharedMs.toFixed(1)),
      cached_vs_shared: Number(ratio.toFixed(3)),
      cold_transfer_dispatch_ms: Number(cold.dispatch.toFixed(1)),
      cut_bytes_sent: cut.sent,
      resumed_bytes_sent: resumed.sent,
      resume_total_vs_file: Number((resumeTotal / GIB).toFixed(4)),
      index_check_ms: Number(checkMs.toFixed(2)),
      sha256_pass_ms: Number(passMs.toFixed(1)),
      index_vs_sha256: Number((checkMs / passMs).toFixed(5)),
      targets_met: { zero_bytes: cachedSent === 0, dispatch_1_2x: ratio <= 1.2, resume_1_05x: resumeTotal <= 1.05 * GIB, check_50ms: checkMs < 50 },
    }),
  );
} finally {
  for (const c of children) c.kill('SIGINT');
  await Promise.all(children.map((c) => (c.exitCode === null && c.signalCode === null ? new Promise((r) => c.on('exit', r)) : null)));
  await rm(root, { recursive: true, force: true });
}
