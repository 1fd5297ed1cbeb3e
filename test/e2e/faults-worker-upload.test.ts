/**
 * worker SIGKILL mid-upload: the client fails naming the worker; the restarted worker sweeps the job folder and its work folder is empty.
 * Real processes killed for real; each case looks at the disk on both sides afterwards
 * (docs/jobs.md, "what happens when"). Shared set-up: helpers/faults-env.ts.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { copyTrainingConfig } from '../helpers/sleap-data.js';
import { folderBytes, realLab } from './helpers/faults-env.js';
import { spawnTracked, startServer, startWorker } from './helpers/jobs-env.js';

let server: Awaited<ReturnType<typeof startServer>>;
const suite: { fns: (() => unknown)[]; after: (fn: () => unknown) => void } = { fns: [], after: (fn) => suite.fns.push(fn) };
before(async () => {
  server = await startServer(suite);
});
after(async () => {
  for (const fn of suite.fns.reverse()) await fn();
});

test('worker SIGKILL mid-upload: the client fails naming the worker; the restarted worker sweeps the job folder and its work folder is empty', async (t) => {
  const lab = await realLab(t);
  const room = await server.newRoom();
  // A model folder to send: a checkpoint of realistic size (no real one exists in shared/; its
  // bytes do not matter to the stand-in, only that they take a while to send).
  const models = path.join(lab.dir, 'client', 'models', 'centroid');
  await mkdir(models, { recursive: true });
  await writeFile(path.join(models, 'best.ckpt'), Buffer.alloc(192 * 1024 * 1024, 7));
  await copyTrainingConfig(path.join(models, 'training_config.yaml'));
  const work = lab.work('gpu-u');
  // No storage on the worker: everything is sent to it.
  const worker = await startWorker(t, room, lab.dir, { name: 'gpu-u' });
  const client = spawnTracked(t, ['track', '--data', lab.video, '--model', models, '--json', ...room.flags], { env: { HOME: lab.dir }, cwd: path.join(lab.dir, 'client') });

  // Mid-upload: the worker's job folder already holds part of the model, not all of it.
  let staged = 0;
  for (let i = 0; i < 2000 && staged < 16 * 1024 * 1024; i++) {
    staged = await folderBytes(work, (n) => n.startsWith('job-'));
    if (staged < 16 * 1024 * 1024) await new Promise((r) => setTimeout(r, 20));
  }
  assert.ok(staged >= 16 * 1024 * 1024, `the upload started (${staged} bytes staged)`);
  worker.child.kill('SIGKILL');
  await worker.exit;
  const leftBehind = await folderBytes(work, (n) => n.startsWith('job-'));
  assert.ok(leftBehind > 0 && leftBehind < 192 * 1024 * 1024 + 4096, `a partial upload is left in ${work}: ${leftBehind} bytes`);

  const { code } = await client.exit;
  assert.equal(code, 1, client.stderr());
  const result = JSON.parse(client.stdout().trimEnd().split('\n').at(-1) ?? '') as { status: string; error: { code: string; message: string } };
  assert.equal(result.status, 'failed');
  assert.match(result.error.message, /gpu-u/, 'the failure names the worker');
  // Client side: no predictions file, nothing half-written in its folder.
  assert.deepEqual((await readdir(path.join(lab.dir, 'client'))).sort(), ['models']);

  // Restart with the same work folder: the sweep removes the killed run's job folder and says so.
  const again = await startWorker(t, room, lab.dir, { name: 'gpu-u' });
  const swept = await again.waitFor(/start-up sweep: removed 1 job folder\(s\) an earlier run left in \S+, [^(]+\((\d+) bytes\)/);
  assert.equal(Number(swept[1]), leftBehind);
  assert.deepEqual((await readdir(work)).filter((n) => n !== '.workers'), [], 'the work folder is empty but for the running worker\'s mark');
});
