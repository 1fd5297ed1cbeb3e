/**
 * server SIGKILL mid-training, restarted with its rooms file: the job completes and the worker is back in the room.
 * Real processes killed for real; each case looks at the disk on both sides afterwards
 * (docs/jobs.md, "what happens when"). Shared set-up: helpers/faults-env.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { runCli } from '../helpers/cli.js';
import { ownServer, realLab, train } from './helpers/faults-env.js';
import { lastJson, spawnTracked, startWorker } from './helpers/jobs-env.js';

test('server SIGKILL mid-training, restarted with its rooms file: the job completes and the worker is back in the room', async (t) => {
  const lab = await realLab(t);
  const srv = await ownServer(t, ['--rooms-file', path.join(lab.dir, 'rooms.json')]);
  const worker = await startWorker(t, srv.room, lab.dir, { name: 'gpu-r', toml: lab.workerToml, env: { FAKE_SLEAP_NN_EPOCH_DELAY_MS: '1500' } });
  const client = spawnTracked(t, train(lab, srv.room, 'durable', 6), { env: { HOME: lab.dir } });
  await client.waitFor(/Epoch 1\/6/);
  srv.process.child.kill('SIGKILL');
  await srv.process.exit;
  await worker.waitFor(/1 running job\(s\) go on over their direct connections/);
  await srv.restart();
  await worker.waitFor(new RegExp(`back in room ${srv.room.roomId}`));

  const { code } = await client.exit;
  assert.equal(code, 0, client.stderr());
  assert.equal(lastJson<{ status: string }>(client).status, 'completed');
  assert.match(await readFile(path.join(lab.share, 'alice/proj/models/durable/best.ckpt'), 'utf8'), /run=durable epochs=6/);
  await worker.waitFor(/status: available/);
  const listed = await runCli(['workers', '--json', ...srv.room.flags]);
  assert.equal(listed.code, 0, listed.stderr);
  const workers = JSON.parse(listed.stdout) as { name: string; status: string }[];
  assert.deepEqual(workers.map((w) => [w.name, w.status]), [['gpu-r', 'available']], 'the worker is in the room, free for the next job');
  assert.doesNotMatch(worker.stderr(), /cancelling job|waiting for the signaling server at \S+ to know room/);
  assert.deepEqual((await readdir(lab.work('gpu-r'))).filter((n) => n !== '.workers'), []);
});
