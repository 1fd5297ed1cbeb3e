import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LiveJob } from '../../src/client/live-job.js';
import { formatDuration, formatLoss, trainingLine, TrainingProgress } from '../../src/client/training.js';
import type { TrainEvent } from '../../src/protocol/progress.js';

let seq = 0;
const ev = (event: TrainEvent['event'], extra: Partial<TrainEvent> = {}): TrainEvent => ({ type: 'TRAIN_EVENT', job_id: 'j', seq: seq++, event, what: '', ...extra });

function clock(): { now: () => number; advance(ms: number): void } {
  let t = 0;
  return { now: () => t, advance: (ms) => (t += ms) };
}

test('epochs from sleap-nn events: losses by their Lightning names, best val loss, epoch time and ETA', () => {
  const c = clock();
  const p = new TrainingProgress({ now: c.now });
  p.onEvent(ev('train_begin', { total_epochs: 10 }));
  const vals = [0.5, 0.3, 0.4];
  vals.forEach((val, e) => {
    p.onEvent(ev('epoch_begin', { epoch: e }));
    c.advance(10_000 + e * 1000);
    p.onEvent(ev('batch_end', { epoch: e, batch: 9, logs: { loss: 0.9 } }));
    assert.equal(p.onEvent(ev('epoch_end', { epoch: e, logs: { 'train/loss': val * 2, 'val/loss': val, 'train/lr': 1e-4 } })), true);
  });
  const s = p.snapshot();
  assert.equal(s.source, 'zmq');
  assert.equal(s.epochs_done, 3);
  assert.equal(s.total_epochs, 10);
  assert.deepEqual(s.best, { epoch: 2, val_loss: 0.3 });
  assert.equal(s.val_loss, 0.4);
  assert.equal(s.epoch_seconds, 12);
  assert.equal(s.eta_seconds, 11 * 7);
  assert.deepEqual(p.history[0], { epoch: 1, train_loss: 1, val_loss: 0.5, lr: 1e-4, seconds: 10 });
  assert.equal(trainingLine(s), 'epoch 3/10 | train 0.8000 | val 0.4000 | best val 0.3000 (epoch 2) | 12 s/epoch | ETA 1 min 17 s');
  assert.equal(p.batches.length, 3);
});

test('a diverging loss (NaN -> null) does not become the best; a missing val loss keeps the line readable', () => {
  const p = new TrainingProgress({ totalEpochs: 2 });
  p.onEvent(ev('epoch_end', { epoch: 0, logs: { loss: 0.2, 'val/loss': null } }));
  const s = p.snapshot();
  assert.equal(s.best, null);
  assert.equal(s.train_loss, 0.2, 'the step loss stands in when train/loss is not logged yet');
  assert.match(trainingLine(s), /^epoch 1\/2 \| train 0\.2000 \| val - \| best val - \|/);
});

test('an epoch_end lost by ZMQ on the way leaves a gap in the curve, not in the epoch count or the ETA', () => {
  const c = clock();
  const p = new TrainingProgress({ now: c.now, totalEpochs: 10 });
  for (const e of [0, 1, 3]) {
    p.onEvent(ev('epoch_begin', { epoch: e }));
    c.advance(10_000);
    p.onEvent(ev('epoch_end', { epoch: e, logs: { 'train/loss': 1 / (e + 1), 'val/loss': 1 / (e + 1) } }));
  }
  const s = p.snapshot();
  assert.deepEqual(p.history.map((r) => r.epoch), [1, 2, 4]);
  assert.equal(s.epochs_done, 4);
  assert.deepEqual(s.best, { epoch: 4, val_loss: 0.25 });
  assert.equal(s.eta_seconds, 6 * 10);
  assert.match(trainingLine(s), /^epoch 4\/10 \|/);
});

test('log-line progress only until the first event; the ETA uses the log epochs', () => {
  const c = clock();
  const p = new TrainingProgress({ now: c.now });
  p.onLogProgress(1, 4);
  c.advance(5000);
  p.onLogProgress(2, 4);
  assert.equal(p.snapshot().source, 'log');
  assert.equal(p.snapshot().eta_seconds, 10);
  assert.equal(trainingLine(p.snapshot()), 'epoch 2/4 | 5.0 s/epoch | ETA 10 s');
  p.onEvent(ev('epoch_end', { epoch: 2, logs: { 'train/loss': 0.1 } }));
  assert.equal(p.onLogProgress(4, 4), false);
  assert.equal(p.snapshot().epochs_done, 3);
});

test('stop rules on the client: only a running training job can stop, once; the job end fixes the status', () => {
  const train = new LiveJob({ jobId: 'j', jobType: 'train', transfer: 'shared', storageBackend: 'vast' });
  assert.equal(train.requestStop('ctrl-c'), 'not_training', 'not started yet');
  let stops = 0;
  train.setStatus('running');
  train.setStopper(() => (stops += 1));
  assert.equal(train.canStop, false, 'no progress event yet: sleap-nn may have no ZMQ controller');
  assert.equal(train.requestStop('ctrl-c'), 'not_training');
  train.trainEvent(ev('train_begin'));
  assert.equal(train.canStop, true);
  assert.equal(train.requestStop('page'), 'stopping');
  assert.equal(train.requestStop('lossviewer'), 'already_ending');
  assert.equal(train.canStop, false, 'the second Ctrl-C cancels');
  assert.equal(stops, 1);
  train.setStatus('stopped_early');
  train.setStatus('running');
  assert.equal(train.status, 'stopped_early');

  const track = new LiveJob({ jobId: 'k', jobType: 'track', transfer: 'webrtc', storageBackend: null });
  track.setStatus('running');
  track.setStopper(() => (stops += 1));
  assert.equal(track.canStop, false, 'inference keeps Ctrl-C = cancel');
  assert.equal(track.requestStop('ctrl-c'), 'not_training');
});

test('numbers read naturally', () => {
  assert.deepEqual([null, 0, 0.012345, 1.5, 0.00012, 12345.6].map(formatLoss), ['-', '0.000', '0.01235', '1.500', '1.200e-4', '1.235e+4']);
  assert.deepEqual([null, 3.21, 42.4, 65, 3599, 7322].map(formatDuration), ['-', '3.2 s', '42 s', '1 min 05 s', '59 min 59 s', '2 h 02 min']);
});
