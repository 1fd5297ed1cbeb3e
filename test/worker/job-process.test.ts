import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { SleapRtcError } from '../../src/errors.js';
import { startJobProcess, SleapNnNotFoundError, type JobProcess, type JobProcessOptions } from '../../src/worker/job-process.js';
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

/** Resolves when `pred` has been true for some line; the fake then has its signal handlers set. */
function waitForLine(lines: string[], pred: (l: string) => boolean): { push: (l: string) => void; seen: Promise<void> } {
  let resolve!: () => void;
  const seen = new Promise<void>((r) => (resolve = r));
  return {
    push: (l) => {
      lines.push(l);
      if (pred(l)) resolve();
    },
    seen,
  };
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
  const { args } = await trainArgs(t, 1000);
  const lines: string[] = [];
  const w = waitForLine(lines, (l) => l.startsWith('Epoch 1/'));
  const job = await start(t, {
    executable: FAKE_SLEAP_NN,
    args,
    env: { ...process.env, FAKE_SLEAP_NN_EPOCH_DELAY_MS: '50' },
    onLine: (_s, l) => w.push(l),
  });
  await w.seen;
  const r = await job.cancel();
  assert.equal(r.cancelled, true);
  assert.equal(r.exitCode, 130);
  assert.ok(r.lastLines.includes('KeyboardInterrupt'));
  // Cancelling again is harmless and gives the same result.
  assert.deepEqual(await job.cancel(), r);
});

test('a process that ignores SIGINT gets SIGTERM after the grace period', async (t) => {
  const { args } = await trainArgs(t, 1000);
  const lines: string[] = [];
  const w = waitForLine(lines, (l) => l.includes('Started training'));
  const job = await start(t, {
    executable: FAKE_SLEAP_NN,
    args,
    env: { ...process.env, FAKE_SLEAP_NN_EPOCH_DELAY_MS: '50', FAKE_SLEAP_NN_IGNORE_SIGINT: '1' },
    onLine: (_s, l) => w.push(l),
    cancelGraceMs: 200,
    killGraceMs: 60_000,
  });
  await w.seen;
  const r = await job.cancel();
  assert.deepEqual({ exitCode: r.exitCode, signal: r.signal, cancelled: r.cancelled }, { exitCode: null, signal: 'SIGTERM', cancelled: true });
  assert.ok(r.lastLines.some((l) => l.includes('ignoring SIGINT')));
});

test('a process that ignores SIGINT and SIGTERM is killed', async (t) => {
  const { args } = await trainArgs(t, 1000);
  const lines: string[] = [];
  const w = waitForLine(lines, (l) => l.includes('Started training'));
  const job = await start(t, {
    executable: FAKE_SLEAP_NN,
    args,
    env: { ...process.env, FAKE_SLEAP_NN_EPOCH_DELAY_MS: '50', FAKE_SLEAP_NN_IGNORE_SIGINT: '1', FAKE_SLEAP_NN_IGNORE_SIGTERM: '1' },
    onLine: (_s, l) => w.push(l),
    cancelGraceMs: 100,
    killGraceMs: 100,
  });
  await w.seen;
  const r = await job.cancel();
  assert.equal(r.signal, 'SIGKILL');
  assert.ok(r.lastLines.some((l) => l.includes('ignoring SIGTERM')));
});

test('cancel reaches the whole process group (sleap-nn data-loader workers too)', async (t) => {
  const script = `
    const { spawn } = require('node:child_process');
    const kid = spawn(process.execPath, ['-e', "process.on('SIGINT', () => { console.log('grandchild got SIGINT'); process.exit(130); }); console.log('grandchild ready'); setInterval(() => {}, 1000);"], { stdio: 'inherit' });
    process.on('SIGINT', () => kid.on('exit', () => process.exit(130)));
    setInterval(() => {}, 1000);`;
  const lines: string[] = [];
  const w = waitForLine(lines, (l) => l === 'grandchild ready');
  const job = await start(t, { ...node(script), onLine: (_s, l) => w.push(l) });
  await w.seen;
  const r = await job.cancel();
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
