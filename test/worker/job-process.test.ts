import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { SleapRtcError } from '../../src/errors.js';
import { startJobProcess, SleapNnNotFoundError, type JobProcess, type JobProcessOptions, type JobProcessResult } from '../../src/worker/job-process.js';
import type { EpochProgress } from '../../src/worker/log-lines.js';
import { buildTrainArgs } from '../../src/worker/sleap-nn-args.js';
import { copyLabelsWithVideo, copyTrainingConfig } from '../helpers/sleap-data.js';
import { FAKE_SLEAP_NN, readRecords, tempDir } from '../fixtures/fake-sleap-nn.js';

type T = Parameters<typeof tempDir>[0];

/** Starts a process and makes sure it is gone when the test ends, whatever the test did. */
async function start(t: T, opts: JobProcessOptions): Promise<JobProcess> {
  const job = await startJobProcess(opts);
  t.after(async () => {
    if (job.running) {
      try {
        process.kill(-job.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await job.done;
  });
  return job;
}

async function trainArgs(t: T, maxEpochs: number): Promise<{ root: string; args: string[] }> {
  const root = await tempDir(t);
  const configFile = await copyTrainingConfig(path.join(root, 'c.yaml'));
  const { labels } = await copyLabelsWithVideo(root);
  const args = buildTrainArgs({
    configFile,
    labels,
    outputDir: path.join(root, 'models'),
    runName: 'r',
    maxEpochs,
  });
  return { root, args };
}

/**
 * Starts the process and cancels it once it printed a line that passes `ready` (the process then
 * has its signal handlers set); the result is the first cancel's.
 */
async function cancelOnceReady(t: T, opts: JobProcessOptions, ready: (line: string) => boolean): Promise<{ job: JobProcess; r: JobProcessResult }> {
  let seen!: () => void;
  const isReady = new Promise<void>((resolve) => (seen = resolve));
  const job = await start(t, {
    ...opts,
    onLine: (_s, l) => {
      if (ready(l)) seen();
    },
  });
  await isReady;
  return { job, r: await job.cancel() };
}

/** The stand-in training for 1000 epochs, 50 ms each; `env`: more of its switches. */
async function longTraining(t: T, env: NodeJS.ProcessEnv = {}): Promise<JobProcessOptions> {
  const { args } = await trainArgs(t, 1000);
  return { executable: FAKE_SLEAP_NN, args, env: { ...process.env, FAKE_SLEAP_NN_EPOCH_DELAY_MS: '50', ...env } };
}

const node = (script: string): Pick<JobProcessOptions, 'executable' | 'args'> => ({
  executable: process.execPath,
  args: ['-e', script],
});

test('a training run streams lines and epoch progress, and exits 0', async (t) => {
  const { args } = await trainArgs(t, 4);
  const lines: { stream: string; line: string }[] = [];
  const progress: EpochProgress[] = [];
  const job = await start(t, {
    executable: FAKE_SLEAP_NN,
    args,
    onLine: (stream, line) => lines.push({ stream, line }),
    onProgress: (p) => progress.push(p),
    tailLines: 3,
  });
  const r = await job.done;
  assert.deepEqual({ exitCode: r.exitCode, signal: r.signal, cancelled: r.cancelled }, { exitCode: 0, signal: null, cancelled: false });
  assert.deepEqual(progress, [1, 2, 3, 4].map((epoch) => ({ epoch, totalEpochs: 4 })));
  assert.ok(lines.some((l) => l.stream === 'stdout' && l.line.startsWith('Epoch 4/4')));
  assert.equal(r.lastLines.length, 3);
  assert.match(r.lastLines.at(-1) ?? '', /Finished training/);
  assert.equal(job.running, false);
});

test('arguments reach the executable verbatim (no shell), in the given cwd', async (t) => {
  const { root, args } = await trainArgs(t, 1);
  const record = path.join(root, 'rec.jsonl');
  const hostile = args.map((a) => (a.startsWith('++trainer_config.run_name=') ? "++trainer_config.run_name='$(touch pwned); `id`'" : a));
  const job = await start(t, { executable: FAKE_SLEAP_NN, args: hostile, cwd: root, env: { ...process.env, FAKE_SLEAP_NN_RECORD: record } });
  assert.equal((await job.done).exitCode, 0);
  const [rec] = await readRecords(record);
  assert.deepEqual({ argv: rec?.argv, cwd: rec?.cwd }, { argv: hostile, cwd: root });
  await assert.rejects(stat(path.join(root, 'pwned')), /ENOENT/);
});

test('a failing sleap-nn: exit code and the last lines of output', async (t) => {
  const { args } = await trainArgs(t, 5);
  const job = await start(t, { executable: FAKE_SLEAP_NN, args, env: { ...process.env, FAKE_SLEAP_NN_FAIL: '1' } });
  const r = await job.done;
  assert.equal(r.exitCode, 3);
  assert.equal(r.cancelled, false);
  assert.ok(r.lastLines.some((l) => l.includes('CUDA out of memory')));
  assert.ok(r.lastLines.some((l) => l.includes('Started training')));
});

test('cancel sends SIGINT: sleap-nn prints KeyboardInterrupt and exits 130', async (t) => {
  const { job, r } = await cancelOnceReady(t, await longTraining(t), (l) => l.startsWith('Epoch 1/'));
  assert.equal(r.cancelled, true);
  assert.equal(r.exitCode, 130);
  assert.ok(r.lastLines.includes('KeyboardInterrupt'));
  // Cancelling again is harmless and gives the same result.
  assert.deepEqual(await job.cancel(), r);
});

test('a process that ignores SIGINT gets SIGTERM after the grace period', async (t) => {
  const opts = await longTraining(t, { FAKE_SLEAP_NN_IGNORE_SIGINT: '1' });
  const { r } = await cancelOnceReady(t, { ...opts, cancelGraceMs: 200, killGraceMs: 60_000 }, (l) => l.includes('Started training'));
  assert.deepEqual({ exitCode: r.exitCode, signal: r.signal, cancelled: r.cancelled }, { exitCode: null, signal: 'SIGTERM', cancelled: true });
  assert.ok(r.lastLines.some((l) => l.includes('ignoring SIGINT')));
});

test('a process that ignores SIGINT and SIGTERM is killed', async (t) => {
  const opts = await longTraining(t, { FAKE_SLEAP_NN_IGNORE_SIGINT: '1', FAKE_SLEAP_NN_IGNORE_SIGTERM: '1' });
  const { r } = await cancelOnceReady(t, { ...opts, cancelGraceMs: 100, killGraceMs: 100 }, (l) => l.includes('Started training'));
  assert.equal(r.signal, 'SIGKILL');
  assert.ok(r.lastLines.some((l) => l.includes('ignoring SIGTERM')));
});

test('cancel reaches the whole process group (sleap-nn data-loader workers too)', async (t) => {
  const script = `
    const { spawn } = require('node:child_process');
    const kid = spawn(process.execPath, ['-e', "process.on('SIGINT', () => { console.log('grandchild got SIGINT'); process.exit(130); }); console.log('grandchild ready'); setInterval(() => {}, 1000);"], { stdio: 'inherit' });
    process.on('SIGINT', () => kid.on('exit', () => process.exit(130)));
    setInterval(() => {}, 1000);`;
  const { r } = await cancelOnceReady(t, node(script), (l) => l === 'grandchild ready');
  assert.equal(r.exitCode, 130);
  assert.ok(r.lastLines.includes('grandchild got SIGINT'));
});

test('cancel after exit changes nothing', async (t) => {
  const job = await start(t, node('console.log("bye")'));
  const r = await job.done;
  assert.deepEqual(await job.cancel(), r);
  assert.equal(r.cancelled, false);
  assert.deepEqual(r.lastLines, ['bye']);
});

test('output lines are bounded; \\r redraws become lines; PYTHONUNBUFFERED is set', async (t) => {
  const lines: string[] = [];
  const job = await start(t, {
    ...node(
      'process.stdout.write("x".repeat(200000) + "\\nA\\rB\\r\\n"); process.stderr.write("unbuffered=" + process.env.PYTHONUNBUFFERED)',
    ),
    maxLineChars: 64,
    onLine: (_s, l) => lines.push(l),
  });
  await job.done;
  assert.equal(lines.length, 4);
  assert.ok(lines.every((l) => l.length <= 64));
  assert.match(lines[0] ?? '', /truncated/);
  assert.deepEqual(lines.slice(1).sort(), ['A', 'B', 'unbuffered=1']);
});

test('done settles even when a grandchild keeps the output pipes open', async (t) => {
  const job = await start(
    t,
    node(
      "require('node:child_process').spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'inherit' }).unref(); console.log('parent leaving')",
    ),
  );
  const r = await job.done;
  assert.equal(r.exitCode, 0);
  assert.deepEqual(r.lastLines, ['parent leaving']);
  process.kill(-job.pid, 'SIGKILL'); // the grandchild, still in the job's process group
});

test('a missing or unusable executable is a SLEAP_NN_NOT_FOUND error naming the config key', async (t) => {
  const root = await tempDir(t);
  const notExecutable = path.join(root, 'sleap-nn');
  await writeFile(notExecutable, '#!/bin/sh\n');
  await chmod(notExecutable, 0o644);
  const cases: [string, RegExp][] = [
    [path.join(root, 'no', 'such', 'sleap-nn'), /was not found/],
    ['sleap-nn-not-on-this-path-anywhere', /was not found/],
    [notExecutable, /not executable/],
    [root, /not executable|could not be started/],
  ];
  for (const [executable, reason] of cases) {
    await assert.rejects(startJobProcess({ executable, args: ['train'] }), (e: unknown) => {
      assert.ok(e instanceof SleapNnNotFoundError, String(e));
      assert.equal(e.code, 'SLEAP_NN_NOT_FOUND');
      assert.equal(e.exitCode, 2);
      assert.match(e.message, reason);
      assert.match(e.message, /\[worker\] sleap_nn/);
      return true;
    });
  }
});

test('a missing working directory is not mistaken for a missing sleap-nn', async (t) => {
  const root = await tempDir(t);
  await assert.rejects(
    startJobProcess({ executable: FAKE_SLEAP_NN, args: ['train'], cwd: path.join(root, 'gone') }),
    (e: unknown) => e instanceof SleapRtcError && e.code === 'INTERNAL' && /working directory/.test(e.message),
  );
});
