/**
 * server SIGKILL mid-training, restarted without the room: the job completes; the worker keeps waiting for the room instead of cancelling and exiting.
 * Real processes killed for real; each case looks at the disk on both sides afterwards
 * (docs/jobs.md, "what happens when"). Shared set-up: helpers/faults-env.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { ownServer, realLab, train } from './helpers/faults-env.js';
import { lastJson, spawnTracked, startWorker } from './helpers/jobs-env.js';

test('server SIGKILL mid-training, restarted without the room: the job completes; the worker keeps waiting for the room instead of cancelling and exiting', async (t) => {
  const lab = await realLab(t);
  const srv = await ownServer(t, ['--rooms-file', '']);
  const worker = await startWorker(t, srv.room, lab.dir, { name: 'gpu-s', toml: lab.workerToml, env: { FAKE_SLEAP_NN_EPOCH_DELAY_MS: '1500' } });
  const client = spawnTracked(t, train(lab, srv.room, 'survives', 6), { env: { HOME: lab.dir } });
  await client.waitFor(/Epoch 1\/6/);
  srv.process.child.kill('SIGKILL');
  await srv.process.exit;
  await worker.waitFor(/1 running job\(s\) go on over their direct connections while the signaling server is away/);
  await srv.restart(); // a fresh server: it does not know the room
  await worker.waitFor(/waiting for the signaling server at \S+ to know room \S+ again/);

  const { code } = await client.exit;
  assert.equal(code, 0, client.stderr());
  const result = lastJson<{ status: string }>(client);
  assert.equal(result.status, 'completed');
  assert.match(client.stderr(), /A job already running goes on over the direct connection/);
  assert.match(await readFile(path.join(lab.share, 'alice/proj/models/survives/best.ckpt'), 'utf8'), /run=survives epochs=6/);
  await worker.waitFor(/job \S+ completed/);
  assert.doesNotMatch(worker.stderr(), /cancelling job/);
  assert.equal(worker.child.exitCode, null, 'the worker is still running');
  assert.deepEqual((await readdir(lab.work('gpu-s'))).filter((n) => n !== '.workers'), [], 'the job folder is removed');
});
