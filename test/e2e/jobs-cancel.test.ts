/**
 * Stopping jobs end to end with real processes: Ctrl-C on the client cancels the remote job (here
 * sleap-nn sends no ZMQ progress, so the first Ctrl-C cancels; stopping early is in
 * jobs-progress.test.ts), a
 * client that dies mid-job has its job cancelled by the worker, and in both cases the worker takes
 * the next job. Also: a second client queues behind a busy worker and gets it when it frees up.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { assertJobCancelled, labShare, lastJson, runClient, serverForFile, spawnTracked, startWorker, trainArgs } from './helpers/jobs-env.js';

const server = serverForFile();

test('Ctrl-C on the client cancels the job on the worker (SIGINT to sleap-nn); the worker then takes the next job', async (t) => {
  const lab = await labShare(t);
  const room = await server.newRoom();
  const worker = await startWorker(t, room, lab.dir, { name: 'gpu-c', toml: lab.workerToml, env: { FAKE_SLEAP_NN_EPOCH_DELAY_MS: '200', FAKE_SLEAP_NN_NO_ZMQ: '1' } });
  const client = spawnTracked(t, [...trainArgs(lab, 'long', 10_000), ...room.flags], { env: { HOME: lab.dir } });
  await client.waitFor(/Epoch 1\/10000/);
  client.child.kill('SIGINT');
  await assertJobCancelled(client);
  assert.match(client.stderr(), /KeyboardInterrupt/, 'sleap-nn was interrupted, as Ctrl-C would');
  await worker.waitFor(/cancelling job job-\S+ \(client request\)/);
  await worker.waitFor(/status: available/);
  await assert.rejects(readFile(path.join(lab.share, 'alice/proj/models/long/labels_pr.val.0.slp')), 'the interrupted run never reached its evaluation');

  const next = await runClient(room, lab.dir, [...trainArgs(lab, 'after', 1)]);
  assert.equal(next.code, 0, next.stderr);
  assert.equal(lastJson(next).status, 'completed');
});

test('a client that dies mid-job has its job cancelled; the worker is available again', async (t) => {
  const lab = await labShare(t);
  const room = await server.newRoom();
  const worker = await startWorker(t, room, lab.dir, { name: 'gpu-d', toml: lab.workerToml, env: { FAKE_SLEAP_NN_EPOCH_DELAY_MS: '200', FAKE_SLEAP_NN_NO_ZMQ: '1' } });
  const client = spawnTracked(t, [...trainArgs(lab, 'orphan', 10_000), ...room.flags], { env: { HOME: lab.dir } });
  await client.waitFor(/Epoch 1\/10000/);
  client.child.kill('SIGKILL');
  await client.exit;
  await worker.waitFor(/cancelling job job-\S+ \(client disconnected\)/);
  await worker.waitFor(/job job-\S+ cancelled/);
  const next = await runClient(room, lab.dir, [...trainArgs(lab, 'after', 1)]);
  assert.equal(next.code, 0, next.stderr);
});

test('a second client waits in the queue for the busy worker and runs once it is free; --queue-timeout gives up', async (t) => {
  const lab = await labShare(t);
  const room = await server.newRoom();
  await startWorker(t, room, lab.dir, { name: 'gpu-q', toml: lab.workerToml, env: { FAKE_SLEAP_NN_EPOCH_DELAY_MS: '100', FAKE_SLEAP_NN_NO_ZMQ: '1' } });
  const first = spawnTracked(t, [...trainArgs(lab, 'first', 10_000), ...room.flags], { env: { HOME: lab.dir } });
  await first.waitFor(/Epoch 1\/10000/);
  const impatient = await runClient(room, lab.dir, [...trainArgs(lab, 'never', 1), '--queue-timeout', '0']);
  assert.equal(impatient.code, 1, impatient.stderr);
  assert.equal((lastJson(impatient).error as { code: string }).code, 'QUEUE_TIMEOUT');
  const second = spawnTracked(t, [...trainArgs(lab, 'second', 1), ...room.flags], { env: { HOME: lab.dir } });
  await second.waitFor(/Waiting for a worker with backend 'vast': position 1 in the queue \(1 worker can serve it, all busy\)/);
  first.child.kill('SIGINT');
  assert.equal((await first.exit).code, 1);
  assert.equal((await second.exit).code, 0, second.stderr());
  assert.match(await readFile(path.join(lab.share, 'alice/proj/models/second/best.ckpt'), 'utf8'), /run=second/);
});
