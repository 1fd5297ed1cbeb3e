/**
 * SLEAP's LossViewer played by real ZMQ sockets bound as its setup_zmq binds them (a SUB for
 * progress, a PUB for commands): the client re-publishes relayed events in sleap-nn's format, in
 * order, and LossViewer's stop button ({"command": "stop"}) becomes a stop request for the job.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LiveJob } from '../../src/client/live-job.js';
import { LossViewerBridge } from '../../src/client/lossviewer.js';
import { checkZmqAddress } from '../../src/client/zmq-address.js';
import { decodeSleapNnEvent, parsePythonJson, type TrainEvent } from '../../src/protocol/progress.js';
import { lossViewerSide } from '../helpers/zmq-peers.js';

const trainJob = (): LiveJob => new LiveJob({ jobId: 'job-1', jobType: 'train', transfer: 'shared', storageBackend: 'vast', totalEpochs: 3 });
let seq = 0;
const ev = (event: TrainEvent['event'], extra: Partial<TrainEvent> = {}): TrainEvent => ({ type: 'TRAIN_EVENT', job_id: 'job-1', seq: seq++, event, what: '', ...extra });

test('relayed events reach a LossViewer-style SUB in order, in the format sleap-nn publishes', async (t) => {
  const lv = await lossViewerSide(t);
  const live = trainJob();
  const bridge = LossViewerBridge.open({ publish: lv.publishAddress, live, note: () => {} });
  t.after(() => bridge.close());
  await lv.publisherReady();
  const sent = [
    ev('train_begin', { wandb_url: null, logs: null }),
    ev('epoch_begin', { epoch: 0, logs: null }),
    ev('batch_end', { epoch: 0, batch: 7, logs: { loss: 0.25 } }),
    ev('epoch_end', { epoch: 0, logs: { 'train/loss': 0.2, 'val/loss': null } }),
    ev('train_end', { logs: null }),
  ];
  for (const e of sent) live.trainEvent(e);
  const frames: string[] = [];
  for (let i = 0; i < sent.length; i++) frames.push(await lv.next());
  assert.deepEqual(frames.map((f) => decodeSleapNnEvent(f).event), ['train_begin', 'epoch_begin', 'batch_end', 'epoch_end', 'train_end']);
  assert.equal(frames[0], '{"what": "", "event": "train_begin", "logs": null, "wandb_url": null}');
  assert.equal(frames[3], '{"what": "", "event": "epoch_end", "logs": {"train/loss": 0.2, "val/loss": NaN}, "epoch": 0}');
  // What LossViewer itself reads: msg["event"], msg["epoch"], msg["batch"], msg["logs"][...].
  const batch = parsePythonJson(frames[2] as string) as { epoch: number; batch: number; logs: Record<string, number> };
  assert.deepEqual([batch.epoch, batch.batch, batch.logs.loss], [0, 7, 0.25]);
});

test("LossViewer's stop command stops a running training job; other controller messages are ignored with a note", async (t) => {
  const lv = await lossViewerSide(t);
  const live = trainJob();
  let stops = 0;
  live.setStatus('running');
  live.setStopper(() => (stops += 1));
  live.trainEvent(ev('train_begin'));
  const notes: string[] = [];
  const noted = new Promise<void>((resolve) => {
    const bridge = LossViewerBridge.open({
      control: lv.controlAddress,
      live,
      note: (m) => {
        notes.push(m);
        if (notes.length === 2) resolve();
      },
    });
    t.after(() => bridge.close());
  });
  await lv.controlReady();
  await lv.send('{"command": "set_lr", "lr": 0.1}');
  await lv.send('{"command": "stop"}');
  await noted;
  assert.equal(stops, 1);
  assert.equal(live.status, 'stopping');
  assert.match(notes[0] ?? '', /ignored a controller message \(command "set_lr"\)/);
  assert.match(notes[1] ?? '', /stop requested/);
});

test('ZMQ addresses on the command line are checked', () => {
  for (const ok of ['tcp://127.0.0.1:9001', 'tcp://localhost:9000', 'tcp://[::1]:9001']) assert.equal(checkZmqAddress('--zmq-publish', ok), ok);
  for (const bad of ['127.0.0.1:9001', 'tcp://127.0.0.1', 'tcp://127.0.0.1:0', 'tcp://127.0.0.1:70000', 'ipc:///tmp/x', 'tcp://a b:1']) {
    assert.throws(() => checkZmqAddress('--zmq-publish', bad), /must be a ZMQ address like tcp:\/\/127\.0\.0\.1:9001/, bad);
  }
});
