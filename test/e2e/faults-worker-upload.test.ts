/**
 * worker SIGKILL mid-upload: the client fails naming the worker; the restarted worker sweeps the job folder and its work folder is empty; the half-received checkpoint stays a part file in the cache.
 * Real processes killed for real; each case looks at the disk on both sides afterwards
 * (docs/jobs.md, "what happens when"). Shared set-up: helpers/faults-env.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { copyTrainingConfig } from '../helpers/sleap-data.js';
import { folderBytes, realLab } from './helpers/faults-env.js';
import { lastJson, serverForFile, spawnTracked, startWorker } from './helpers/jobs-env.js';

const server = serverForFile();

test('worker SIGKILL mid-upload: the client fails naming the worker; the restarted worker sweeps the job folder and its work folder is empty', async (t) => {
  const lab = await realLab(t);
  const room = await server.newRoom();
  // A model folder to send: a checkpoint of realistic size (no real one exists in shared/; its
  // bytes do not matter to the stand-in, only that they take a while to send).
  const models = path.join(lab.dir, 'client', 'models', 'centroid');
  await mkdir(models, { recursive: true });
  const ckpt = Buffer.alloc(192 * 1024 * 1024, 7);
  await writeFile(path.join(models, 'best.ckpt'), ckpt);
  await copyTrainingConfig(path.join(models, 'training_config.yaml'));
  const work = lab.work('gpu-u');
  const cache = path.join(lab.dir, 'cache');
  // No storage on the worker: everything is sent to it. The model folder is offered file by file,
  // so the checkpoint is received into the worker's cache (a resumable part file there).
  const worker = await startWorker(t, room, lab.dir, { name: 'gpu-u', workerToml: `cache_dir = ${JSON.stringify(cache)}` });
  const client = spawnTracked(t, ['track', '--data', lab.video, '--model', models, '--json', ...room.flags], { env: { HOME: lab.dir }, cwd: path.join(lab.dir, 'client') });

  // Mid-upload: the cache's part file holds part of the checkpoint, not all of it.
  let staged = 0;
  for (let i = 0; i < 6000 && staged < 16 * 1024 * 1024; i++) {
    staged = await folderBytes(path.join(cache, 'partial'), (n) => n.endsWith('.part'));
    if (staged < 16 * 1024 * 1024) await new Promise((r) => setTimeout(r, 20));
  }
  assert.ok(staged >= 16 * 1024 * 1024, `the upload started (${staged} bytes received)`);
  assert.ok((await folderBytes(work, (n) => n.startsWith('job-'))) < 1024 * 1024, 'the job folder holds the folder being assembled, not the checkpoint');
  worker.child.kill('SIGKILL');
  await worker.exit;
  const leftBehind = await folderBytes(work, (n) => n.startsWith('job-'));
  const partBytes = await folderBytes(path.join(cache, 'partial'), (n) => n.endsWith('.part'));
  assert.ok(partBytes > 0 && partBytes < 192 * 1024 * 1024, `a partial checkpoint is left in the cache: ${partBytes} bytes`);

  const { code } = await client.exit;
  assert.equal(code, 1, client.stderr());
  const result = lastJson<{ status: string; error: { code: string; message: string } }>(client);
  assert.equal(result.status, 'failed');
  assert.match(result.error.message, /gpu-u/, 'the failure names the worker');
  // Client side: no predictions file, nothing half-written in its folder.
  assert.deepEqual((await readdir(path.join(lab.dir, 'client'))).sort(), ['models']);

  // Restart with the same work folder: the sweep removes the killed run's job folder and says so.
  const again = await startWorker(t, room, lab.dir, { name: 'gpu-u', workerToml: `cache_dir = ${JSON.stringify(cache)}` });
  const swept = await again.waitFor(/start-up sweep: removed 1 job folder\(s\) an earlier run left in \S+, [^(]+\((\d+) bytes\)/);
  assert.equal(Number(swept[1]), leftBehind);
  assert.deepEqual((await readdir(work)).filter((n) => n !== '.workers'), [], 'the work folder is empty but for the running worker\'s mark');
  // The checkpoint's part file stays in the cache, never an entry: the next job resumes from it.
  const ckptSha = createHash('sha256').update(ckpt).digest('hex');
  assert.deepEqual(await readdir(path.join(cache, 'entries', ckptSha.slice(0, 2))).catch(() => []), [], 'the checkpoint is no entry');
  assert.ok((await readdir(path.join(cache, 'partial'))).includes(`${ckptSha}.part`));
  assert.ok((await readdir(path.join(cache, 'partial'))).some((n) => n.endsWith('.part')));
});
