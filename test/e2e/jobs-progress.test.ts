/**
 * Training progress end to end, with real processes and real ZMQ: the sleap-nn stand-in publishes
 * its events over ZMQ to the worker's relay, and the client shows them in order. Inference keeps
 * Ctrl-C = cancel. (Stopping: jobs-stop.test.ts; LossViewer: jobs-lossviewer.test.ts.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { labShare, lastJson, runClient, serverForFile, spawnTracked, startWorker, trainArgs, type TrainingJson } from './helpers/jobs-env.js';

const server = serverForFile();

test('events go from the stand-in over ZMQ to the client in order: one plain line and one history entry per epoch, even under a batch_end flood', async (t) => {
  const lab = await labShare(t);
  const room = await server.newRoom();
  await startWorker(t, room, lab.dir, { name: 'gpu-p', toml: lab.workerToml, env: { FAKE_SLEAP_NN_BATCHES_PER_EPOCH: '3000', FAKE_SLEAP_NN_BAD_EVENT: '1' } });
  const r = await runClient(room, lab.dir, trainArgs(lab, 'watched', 4));
  assert.equal(r.code, 0, r.stderr);
  const result = lastJson(r);
  assert.equal(result.status, 'completed');
  const training = result.training as TrainingJson;
  assert.equal(training.source, 'zmq');
  // sleap-nn closes its PUB with LINGER 0 when it exits, as the stand-in does: under this flood a
  // lagging relay can lose the last events, and then the client must be told. Whatever arrived is
  // complete and in order.
  const done = training.epochs_done;
  const tailTold = /\[sleap-rtc: sleap-nn's last progress events did not arrive \(no train_end; the last epoch_end that arrived was epoch \d\)/.test(r.stderr);
  assert.ok(done === 4 || (done >= 1 && tailTold), `epochs_done ${done}, tail loss told: ${tailTold}\n${r.stderr.slice(-3000)}`);
  assert.equal(training.total_epochs, 4);
  const arrived = Array.from({ length: done }, (_, i) => i + 1);
  // The stand-in's losses: train 1/(e+1), val 1.1x that.
  assert.deepEqual(
    training.loss_history.map((h) => [h.epoch, h.train_loss, Number(((h.val_loss ?? 0) / (h.train_loss ?? 1)).toFixed(6)), h.lr]),
    arrived.map((e) => [e, Number((1 / (e + 1)).toFixed(4)), 1.1, 0.0001]),
  );
  assert.deepEqual(training.best, { epoch: done, val_loss: training.loss_history[done - 1]?.val_loss });
  const lines = [...r.stderr.matchAll(/\] epoch (\d+)\/4 \| train (\S+) \| val (\S+) \| best val (\S+) \(epoch (\d+)\) \|/g)].map((m) => Number(m[1]));
  assert.deepEqual(lines, arrived, 'one plain line per finished epoch that arrived, in order');
  assert.match(r.stderr, /\[sleap-rtc: dropped 1 malformed progress event\(s\) from sleap-nn: Invalid sleap-nn progress event: logs\.loss: .*expected number.*\]/, `a malformed event is dropped with a log line: ${r.stderr.split('\n').filter((l) => l.includes('sleap-rtc:')).join('\n')}`);
});

test('inference keeps Ctrl-C = cancel', async (t) => {
  const lab = await labShare(t);
  const room = await server.newRoom();
  await startWorker(t, room, lab.dir, { name: 'gpu-i', toml: lab.workerToml, env: { FAKE_SLEAP_NN_EPOCH_DELAY_MS: '20000' } });
  const client = spawnTracked(t, ['track', '--data', path.join(lab.mount, 'alice/proj/video.mp4'), '--model', path.join(lab.mount, 'alice/models/m1'), '--json', '--config', lab.clientToml, ...room.flags], { env: { HOME: lab.dir } });
  await client.waitFor(/sleap-nn started on worker gpu-i/);
  client.child.kill('SIGINT');
  const { code } = await client.exit;
  assert.equal(code, 1, client.stderr());
  assert.equal(lastJson<{ status: string }>(client).status, 'cancelled');
  assert.match(client.stderr(), /Ctrl-C: cancelling the job on the worker/);
});
