/**
 * The worker's ZMQ relay against real sockets playing sleap-nn's callbacks: order, decoding, the
 * batch_end throttle, malformed events, and the stop command through the XPUB subscription.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BatchThrottle, ProgressRelay, type TrainEventBody } from '../../src/worker/progress-relay.js';
import { sleapNnSide } from '../helpers/zmq-peers.js';

async function relayWithSink(t: { after: (fn: () => unknown) => void }, intervalMs = 100) {
  const events: TrainEventBody[] = [];
  const notes: string[] = [];
  const waiters: (() => void)[] = [];
  const relay = await ProgressRelay.open({
    send: (e) => {
      events.push(e);
      for (const w of waiters.splice(0)) w();
    },
    note: (l) => notes.push(l),
    totalEpochs: 5,
    batchIntervalMs: intervalMs,
  });
  t.after(() => relay.close());
  const until = async (pred: () => boolean, timeoutMs = 60_000): Promise<void> => {
    const deadline = Date.now() + timeoutMs;
    while (!pred()) {
      if (Date.now() > deadline) throw new Error(`not there within ${timeoutMs} ms; relayed: ${events.map((e) => e.event).slice(-20).join(', ')}`);
      await new Promise<void>((r) => {
        waiters.push(r);
        setTimeout(r, 1000).unref();
      });
    }
  };
  return { relay, events, notes, until };
}

const ev = (event: string, extra: string): string => `{"what": "", "event": "${event}", ${extra}}`;

test('events from a real ZMQ PUB are relayed decoded and in order; batch_start is not relayed', async (t) => {
  const { relay, events, until } = await relayWithSink(t);
  const nn = await sleapNnSide(t, relay.publishPort, relay.controllerPort, () => relay.received > 0);
  const probes = relay.received;
  await nn.send(ev('train_begin', '"logs": null, "wandb_url": "https://wandb.ai/x"'));
  for (let e = 0; e < 3; e++) {
    await nn.send(ev('epoch_begin', `"logs": null, "epoch": ${e}`));
    await nn.send(ev('batch_start', `"logs": null, "batch": 0`));
    await nn.send(ev('epoch_end', `"logs": {"train/loss": ${1 / (e + 1)}, "val/loss": NaN}, "epoch": ${e}`));
  }
  await nn.send(ev('train_end', '"logs": null'));
  await until(() => events.at(-1)?.event === 'train_end');
  assert.deepEqual(
    events.map((e) => `${e.event}${e.epoch ?? ''}`),
    ['train_begin', 'epoch_begin0', 'epoch_end0', 'epoch_begin1', 'epoch_end1', 'epoch_begin2', 'epoch_end2', 'train_end'],
  );
  assert.equal(events[0]?.wandb_url, 'https://wandb.ai/x');
  assert.deepEqual(events[2]?.logs, { 'train/loss': 1, 'val/loss': null });
  assert.equal(events[2]?.total_epochs, 5);
  assert.equal(relay.received - probes, 11);
});

test('a flood of batch_end is thinned to the interval without losing or reordering any epoch_end', async (t) => {
  const { relay, events, until } = await relayWithSink(t, 50);
  const nn = await sleapNnSide(t, relay.publishPort, relay.controllerPort, () => relay.received > 0);
  const probes = relay.received;
  const epochs = 4;
  const batches = 5000;
  for (let e = 0; e < epochs; e++) {
    for (let b = 0; b < batches; b++) {
      await nn.send(ev('batch_end', `"logs": {"loss": 0.5}, "epoch": ${e}, "batch": ${b}`));
      // Still a flood (far beyond a GPU's batch rate), but ZMQ's own threads get a turn: a PUB
      // drops what exceeds its send queue (1,000 by default, in sleap-nn too) before any relay sees it.
      if (b % 500 === 499) await new Promise((r) => setImmediate(r));
    }
    await nn.send(ev('epoch_end', `"logs": {"train/loss": 0.5}, "epoch": ${e}`));
  }
  await until(() => events.filter((x) => x.event === 'epoch_end').length === epochs);
  assert.equal(relay.received - probes, epochs * (batches + 1));
  const batchEvents = events.filter((x) => x.event === 'batch_end');
  assert.ok(batchEvents.length < (epochs * batches) / 10, `${batchEvents.length} batch events relayed of ${epochs * batches}`);
  // Every batch event is either relayed or counted in a later one's `skipped`.
  assert.equal(batchEvents.reduce((n, x) => n + 1 + (x.skipped ?? 0), 0), epochs * batches);
  // Order: within the stream, epochs never go backwards and each epoch_end follows its epoch's batches.
  let epoch = 0;
  for (const x of events) {
    assert.ok((x.epoch ?? 0) >= epoch, `event for epoch ${x.epoch} after epoch ${epoch}`);
    if (x.event === 'epoch_end') epoch = (x.epoch ?? 0) + 1;
  }
  // The last batch of each epoch is flushed before its epoch_end.
  for (let e = 0; e < epochs; e++) {
    const i = events.findIndex((x) => x.event === 'epoch_end' && x.epoch === e);
    assert.equal(events[i - 1]?.event, 'batch_end');
    assert.equal(events[i - 1]?.batch, batches - 1);
  }
});

test('a malformed event is dropped with a log line and the next good one still arrives', async (t) => {
  const { relay, events, notes, until } = await relayWithSink(t);
  const nn = await sleapNnSide(t, relay.publishPort, relay.controllerPort, () => relay.received > 0);
  await nn.send('not json at all');
  await nn.send(ev('epoch_end', '"logs": {"loss": "low"}, "epoch": 0'));
  await nn.send(ev('epoch_end', '"logs": {"loss": 0.1}, "epoch": 0'));
  await until(() => events.length === 1);
  assert.equal(events[0]?.event, 'epoch_end');
  assert.equal(notes.length, 1, 'the second drop within the interval is counted, not logged again');
  assert.match(notes[0] ?? '', /dropped 1 malformed progress event\(s\) from sleap-nn: .*not JSON/);
});

test("stop: pending until sleap-nn's controller subscribes, then {\"command\": \"stop\"} arrives once", async (t) => {
  const { relay } = await relayWithSink(t);
  assert.equal(relay.requestStop(), 'pending');
  const nn = await sleapNnSide(t, relay.publishPort, relay.controllerPort);
  assert.equal(await nn.nextCommand(), '{"command": "stop"}');
  assert.equal(relay.controllerListening, true);
  assert.equal(relay.requestStop(), 'stopping');
  await relay.close();
  await relay.close();
});

test('BatchThrottle: first at once, newest after the interval with the count it replaced, flush on demand', async () => {
  const out: TrainEventBody[] = [];
  const th = new BatchThrottle(30, (e) => out.push(e));
  const b = (batch: number): TrainEventBody => ({ event: 'batch_end', what: '', epoch: 0, batch });
  th.batch(b(0));
  th.batch(b(1));
  th.batch(b(2));
  assert.deepEqual(out.map((e) => e.batch), [0]);
  await new Promise((r) => setTimeout(r, 80));
  assert.deepEqual(out.map((e) => [e.batch, e.skipped]), [[0, undefined], [2, 1]]);
  th.batch(b(3));
  th.batch(b(4));
  th.flush();
  assert.deepEqual(out.at(-1)?.batch, 4);
  th.dispose();
});
