/**
 * a room deleted while a job runs: the worker says so, finishes the job, then exits 1; the job completes.
 * Real processes killed for real; each case looks at the disk on both sides afterwards
 * (docs/jobs.md, "what happens when"). Shared set-up: helpers/faults-env.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { ownServer, realLab, train } from './helpers/faults-env.js';
import { spawnTracked, startWorker } from './helpers/jobs-env.js';

test('a room deleted while a job runs: the worker says so, finishes the job, then exits 1; the job completes', async (t) => {
  const lab = await realLab(t);
  const srv = await ownServer(t, ['--rooms-file', '']);
  const worker = await startWorker(t, srv.room, lab.dir, { name: 'gpu-d', toml: lab.workerToml, env: { FAKE_SLEAP_NN_EPOCH_DELAY_MS: '1000' } });
  const client = spawnTracked(t, train(lab, srv.room, 'last', 4), { env: { HOME: lab.dir } });
  await client.waitFor(/Epoch 1\/4/);
  const res = await fetch(`${srv.room.serverUrl}/rooms/${srv.room.roomId}`, { method: 'DELETE', headers: { authorization: `Bearer ${srv.room.token}` } });
  assert.equal(res.status, 200);
  await worker.waitFor(/Room \S+ was deleted on \S+ .*will not come back.*This worker takes no new jobs; it finishes its 1 running job\(s\) first, then exits/);
  const { code } = await client.exit;
  assert.equal(code, 0, client.stderr());
  assert.match(await readFile(path.join(lab.share, 'alice/proj/models/last/best.ckpt'), 'utf8'), /run=last epochs=4/);
  const exit = await worker.exit;
  assert.equal(exit.code, 1, worker.stderr());
  assert.doesNotMatch(worker.stderr(), /cancelling job/);
  assert.deepEqual((await readdir(lab.work('gpu-d'))).filter((n) => n !== '.workers'), []);
});
