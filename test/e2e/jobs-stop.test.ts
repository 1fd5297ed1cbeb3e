/**
 * Stop versus cancel end to end, with real processes and real ZMQ: one Ctrl-C during training sends
 * sleap-nn the stop command and the job comes back with its model (stopped_early); a second Ctrl-C
 * cancels as before.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { assertJobCancelled, labShare, lastJson, serverForFile, spawnTracked, startWorker, trainArgs, type TrainingJson } from './helpers/jobs-env.js';

const server = serverForFile();

test('one Ctrl-C during training stops it: sleap-nn ends the epoch and saves, the model comes back, status stopped_early, exit 0', async (t) => {
  const lab = await labShare(t);
  const room = await server.newRoom();
  const worker = await startWorker(t, room, lab.dir, { name: 'gpu-s', toml: lab.workerToml, env: { FAKE_SLEAP_NN_EPOCH_DELAY_MS: '200' } });
  const client = spawnTracked(t, [...trainArgs(lab, 'stopped', 10_000), ...room.flags], { env: { HOME: lab.dir } });
  await client.waitFor(/\] epoch 2\/10000 \|/, 120_000);
  client.child.kill('SIGINT');
  const { code } = await client.exit;
  assert.equal(code, 0, client.stderr());
  const result = lastJson<{ status: string; outputs: string[]; training: TrainingJson }>(client);
  assert.equal(result.status, 'stopped_early');
  assert.deepEqual(result.outputs, [path.join(lab.mount, 'alice/proj/models/stopped')]);
  assert.match(await readFile(path.join(lab.share, 'alice/proj/models/stopped/best.ckpt'), 'utf8'), /run=stopped/);
  assert.ok(result.training.epochs_done >= 2 && result.training.epochs_done < 10_000, String(result.training.epochs_done));
  assert.match(client.stderr(), /Ctrl-C: stopping training early/);
  assert.match(client.stderr(), /worker gpu-s: stopping training early/);
  assert.match(client.stderr(), /Received control message: \{"command":"stop"\}/, 'sleap-nn got the stop command');
  assert.doesNotMatch(client.stderr(), /KeyboardInterrupt/, 'no signal reached sleap-nn');
  await worker.waitFor(/job job-\S+ completed/);
});

test('a second Ctrl-C cancels: the stopping run is interrupted and the job is cancelled, as before', async (t) => {
  const lab = await labShare(t);
  const room = await server.newRoom();
  // A run that takes its time after the loop (sleap-nn evaluates the model there), so the cancel lands while it finishes.
  await startWorker(t, room, lab.dir, { name: 'gpu-x', toml: lab.workerToml, env: { FAKE_SLEAP_NN_EPOCH_DELAY_MS: '200', FAKE_SLEAP_NN_FINISH_DELAY_MS: '60000' } });
  const client = spawnTracked(t, [...trainArgs(lab, 'cancelled', 10_000), ...room.flags], { env: { HOME: lab.dir } });
  await client.waitFor(/\] epoch 1\/10000 \|/, 120_000);
  client.child.kill('SIGINT');
  await client.waitFor(/Finished training loop/, 120_000);
  client.child.kill('SIGINT');
  await assertJobCancelled(client);
  assert.match(client.stderr(), /Ctrl-C: cancelling the job on the worker/);
  assert.match(client.stderr(), /KeyboardInterrupt/);
});
