/**
 * Watching and steering training end to end, with real processes and real ZMQ: the sleap-nn
 * stand-in publishes its events over ZMQ to the worker's relay, the client shows them, and a stop
 * (Ctrl-C, LossViewer) ends the run with its model kept. Cancel still cancels.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { decodeSleapNnEvent } from '../../src/protocol/progress.js';
import { lossViewerSide } from '../helpers/zmq-peers.js';
import { labShare, lastJson, runClient, spawnTracked, startServer, startWorker } from './helpers/jobs-env.js';

let server: Awaited<ReturnType<typeof startServer>>;
const suite: { fns: (() => unknown)[]; after: (fn: () => unknown) => void } = { fns: [], after: (fn) => suite.fns.push(fn) };
before(async () => {
  server = await startServer(suite);
});
after(async () => {
  for (const fn of suite.fns.reverse()) await fn();
});

type Lab = Awaited<ReturnType<typeof labShare>>;
const trainArgs = (lab: Lab, run: string, epochs: number): string[] => [
  'train',
  '--labels', path.join(lab.mount, 'alice/proj/labels.slp'),
  '--config-file', path.join(lab.mount, 'alice/proj/config.yaml'),
  '--run-name', run,
  '--max-epochs', String(epochs),
  '--json',
  '--config', lab.clientToml,
];

interface Training {
  source: string;
  epochs_done: number;
  total_epochs: number;
  best: { epoch: number; val_loss: number } | null;
  loss_history: { epoch: number; train_loss: number | null; val_loss: number | null; lr: number | null }[];
}

test('events go from the stand-in over ZMQ to the client in order: one plain line and one history entry per epoch, even under a batch_end flood', async (t) => {
  const lab = await labShare(t);
  const room = await server.newRoom();
  await startWorker(t, room, lab.dir, { name: 'gpu-p', toml: lab.workerToml, env: { FAKE_SLEAP_NN_BATCHES_PER_EPOCH: '3000' } });
  const r = await runClient(room, lab.dir, trainArgs(lab, 'watched', 4));
  assert.equal(r.code, 0, r.stderr);
  const result = lastJson(r);
  assert.equal(result.status, 'completed');
  const training = result.training as Training;
  assert.equal(training.source, 'zmq');
  assert.equal(training.epochs_done, 4, r.stderr.slice(-3000));
  assert.equal(training.total_epochs, 4);
  // The stand-in's losses: train 1/(e+1), val 1.1x that.
  assert.deepEqual(
    training.loss_history.map((h) => [h.epoch, h.train_loss, Number(((h.val_loss ?? 0) / (h.train_loss ?? 1)).toFixed(6)), h.lr]),
    [1, 2, 3, 4].map((e) => [e, Number((1 / (e + 1)).toFixed(4)), 1.1, 0.0001]),
  );
  assert.deepEqual(training.best, { epoch: 4, val_loss: training.loss_history[3]?.val_loss });
  const lines = [...r.stderr.matchAll(/\] epoch (\d+)\/4 \| train (\S+) \| val (\S+) \| best val (\S+) \(epoch (\d+)\) \|/g)].map((m) => Number(m[1]));
  assert.deepEqual(lines, [1, 2, 3, 4], 'one plain line per finished epoch, in order');
});

test('one Ctrl-C during training stops it: sleap-nn ends the epoch and saves, the model comes back, status stopped_early, exit 0', async (t) => {
  const lab = await labShare(t);
  const room = await server.newRoom();
  const worker = await startWorker(t, room, lab.dir, { name: 'gpu-s', toml: lab.workerToml, env: { FAKE_SLEAP_NN_EPOCH_DELAY_MS: '200' } });
  const client = spawnTracked(t, [...trainArgs(lab, 'stopped', 10_000), ...room.flags], { env: { HOME: lab.dir } });
  await client.waitFor(/\] epoch 2\/10000 \|/);
  client.child.kill('SIGINT');
  const { code } = await client.exit;
  assert.equal(code, 0, client.stderr());
  const result = JSON.parse(client.stdout().trimEnd().split('\n').at(-1) ?? '') as { status: string; outputs: string[]; training: Training };
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
  await client.waitFor(/\] epoch 1\/10000 \|/);
  client.child.kill('SIGINT');
  await client.waitFor(/Finished training loop/);
  client.child.kill('SIGINT');
  const { code } = await client.exit;
  assert.equal(code, 1, client.stderr());
  const result = JSON.parse(client.stdout().trimEnd().split('\n').at(-1) ?? '') as { status: string; error: { code: string } };
  assert.equal(result.status, 'cancelled');
  assert.equal(result.error.code, 'JOB_CANCELLED');
  assert.match(client.stderr(), /Ctrl-C: cancelling the job on the worker/);
  assert.match(client.stderr(), /KeyboardInterrupt/);
});

test("SLEAP's LossViewer (real ZMQ SUB/PUB, bound as it binds them) sees sleap-nn's events and its stop button stops the run", async (t) => {
  const lab = await labShare(t);
  const room = await server.newRoom();
  await startWorker(t, room, lab.dir, { name: 'gpu-l', toml: lab.workerToml, env: { FAKE_SLEAP_NN_EPOCH_DELAY_MS: '200' } });
  const lv = await lossViewerSide(t);
  const client = spawnTracked(t, [...trainArgs(lab, 'viewed', 10_000), ...room.flags, '--zmq-publish', lv.publishAddress, '--zmq-control', lv.controlAddress], { env: { HOME: lab.dir } });
  const events: string[] = [];
  let epochEnds = 0;
  while (epochEnds < 2) {
    const e = decodeSleapNnEvent(await lv.next());
    events.push(e.event);
    if (e.event === 'epoch_end') {
      epochEnds += 1;
      assert.equal(typeof e.logs?.['train/loss'], 'number');
      assert.equal(e.epoch, epochEnds - 1);
    }
  }
  assert.equal(events[0], 'train_begin');
  assert.ok(events.includes('epoch_begin') && events.includes('batch_end'));
  await lv.controlReady();
  await lv.send('{"command": "stop"}');
  const { code } = await client.exit;
  assert.equal(code, 0, client.stderr());
  assert.equal((JSON.parse(client.stdout().trimEnd().split('\n').at(-1) ?? '') as { status: string }).status, 'stopped_early');
  assert.match(client.stderr(), /LossViewer: stop requested/);
  let last = '';
  while (last !== 'train_end') last = decodeSleapNnEvent(await lv.next()).event;
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
  assert.equal((JSON.parse(client.stdout().trimEnd().split('\n').at(-1) ?? '') as { status: string }).status, 'cancelled');
  assert.match(client.stderr(), /Ctrl-C: cancelling the job on the worker/);
});

