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

const epochs = 4;
const batches = 5000;

/** sleap-nn's events for `epochs` epochs of `batches` batches, as fast as the PUB takes them. */
async function flood(nn: { send(frame: string): Promise<void> }): Promise<void> {
  for (let e = 0; e < epochs; e++) {
    for (let b = 0; b < batches; b++) {
      await nn.send(ev('batch_end', `"logs": {"loss": 0.5}, "epoch": ${e}, "batch": ${b}`));
      // Let the relay's reads interleave with the sends, as with a separate sleap-nn process.
      if (b % 500 === 499) await new Promise((r) => setImmediate(r));
    }
    await nn.send(ev('epoch_end', `"logs": {"train/loss": 0.5}, "epoch": ${e}`));
  }
}

/** What the relay guarantees for whatever reaches it: order kept, epoch events never held back, every batch_end relayed or counted. */
function assertRelayedAsReceived(relay: ProgressRelay, events: TrainEventBody[]): void {
  const batchEvents = events.filter((x) => x.event === 'batch_end');
  const epochEnds = events.filter((x) => x.event === 'epoch_end');
  assert.equal(epochEnds.length, relay.counts.epoch_end, 'every epoch_end that arrived is relayed');
  assert.equal(batchEvents.reduce((n, x) => n + 1 + (x.skipped ?? 0), 0), relay.counts.batch_end, 'every batch_end that arrived is relayed or counted in a later skipped');
  assert.ok(batchEvents.length < relay.counts.batch_end / 10, `${batchEvents.length} batch events relayed of ${relay.counts.batch_end}`);
  // Order: epochs never go backwards, batches never go backwards within an epoch.
  let epoch = 0;
  let batch = -1;
  for (const x of events) {
    if (x.epoch === undefined) continue;
    assert.ok(x.epoch >= epoch, `event for epoch ${x.epoch} after epoch ${epoch}`);
    if (x.event === 'batch_end') {
      assert.ok(x.epoch > epoch || (x.batch ?? 0) > batch, `batch ${x.batch} after batch ${batch} of epoch ${epoch}`);
      batch = x.batch ?? 0;
      epoch = x.epoch;
    }
    if (x.event === 'epoch_end') {
      epoch = x.epoch + 1;
      batch = -1;
    }
  }
}

test('a flood of batch_end is thinned to the interval without losing or reordering any epoch_end (lossless PUB)', async (t) => {
  const { relay, events, notes, until } = await relayWithSink(t, 50);
  // No send limit on this PUB, so ZMQ drops nothing whatever the load: every loss would be the relay's.
  const nn = await sleapNnSide(t, relay.publishPort, relay.controllerPort, () => relay.received > 0, { sendHighWaterMark: 0 });
  await flood(nn);
  await until(() => events.filter((x) => x.event === 'epoch_end').length === epochs);
  assert.equal(relay.counts.batch_end, epochs * batches);
  assert.equal(relay.counts.epoch_end, epochs);
  assert.deepEqual(relay.lost, { train_begin: 0, train_end: 0, epoch_begin: 0, epoch_end: 0, batch_start: 0, batch_end: 0 });
  assert.deepEqual(notes, []);
  assertRelayedAsReceived(relay, events);
  // The last batch of each epoch is flushed before its epoch_end.
  for (let e = 0; e < epochs; e++) {
    const i = events.findIndex((x) => x.event === 'epoch_end' && x.epoch === e);
    assert.equal(events[i - 1]?.event, 'batch_end');
    assert.equal(events[i - 1]?.batch, batches - 1);
  }
});

test("a flood through a PUB with sleap-nn's own send limit: what ZMQ drops is seen as a gap and told; all that arrives is relayed in order", async (t) => {
  const { relay, events, notes, until } = await relayWithSink(t, 50);
  // libzmq's default send high-water mark, as in sleap-nn: a PUB drops what it cannot queue.
  // Whether it drops here depends on the load; what the relay does with what arrives does not.
  const nn = await sleapNnSide(t, relay.publishPort, relay.controllerPort, () => relay.received > 0);
  await flood(nn);
  // The end marker, sent again every half second until it arrives (a PUB may drop any one message).
  const marker = ev('train_end', '"logs": null');
  for (let i = 0; relay.counts.train_end === 0; i++) {
    if (i > 2400) throw new Error('train_end never arrived');
    if (i % 10 === 0) await nn.send(marker);
    await new Promise((r) => setTimeout(r, 50));
  }
  await until(() => events.at(-1)?.event === 'train_end');
  assertRelayedAsReceived(relay, events);
  assert.ok(relay.counts.epoch_end + relay.lost.epoch_end <= epochs);
  assert.ok(relay.counts.batch_end + relay.lost.batch_end <= epochs * batches);
  const seenLost = relay.lost.epoch_end + relay.lost.batch_end;
  assert.equal(notes.length > 0, seenLost > 0, `lost ${seenLost}; notes: ${notes.join(' / ')}`);
  if (seenLost > 0) assert.match(notes[0] ?? '', /progress event\(s\) from sleap-nn were lost on the way .*the training is not affected/);
  t.diagnostic(`arrived ${relay.counts.batch_end} of ${epochs * batches} batch_end and ${relay.counts.epoch_end} of ${epochs} epoch_end; ${seenLost} seen lost`);
});

test('events missing from sleap-nn\'s counters (a batch, an epoch_end) are counted as lost and told once; the rest is relayed', async (t) => {
  const { relay, events, notes, until } = await relayWithSink(t, 50);
  const nn = await sleapNnSide(t, relay.publishPort, relay.controllerPort, () => relay.received > 0, { sendHighWaterMark: 0 });
  const batch = (e: number, b: number): string => ev('batch_end', `"logs": {"loss": 0.5}, "epoch": ${e}, "batch": ${b}`);
  // Epoch 0: batches 2 and 3 missing. Epoch 1: batches 0 and 1 missing. The epoch_end of epochs 1 and 2 missing.
  for (const frame of [batch(0, 0), batch(0, 1), batch(0, 4), ev('epoch_end', '"logs": {}, "epoch": 0'), batch(1, 2), ev('epoch_end', '"logs": {}, "epoch": 3')]) {
    await nn.send(frame);
  }
  await until(() => events.filter((x) => x.event === 'epoch_end').length === 2);
  assert.equal(relay.lost.batch_end, 4);
  assert.equal(relay.lost.epoch_end, 2);
  assert.deepEqual(events.filter((x) => x.event === 'epoch_end').map((x) => x.epoch), [0, 3]);
  assert.equal(notes.length, 1, `told once within the interval: ${notes.join(' / ')}`);
  assert.match(notes[0] ?? '', /^\[sleap-rtc: 2 progress event\(s\) from sleap-nn were lost on the way \(0 epoch_end so far;/);
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

test("a run that ended well but whose train_end never arrived (sleap-nn's LINGER 0 dropped its tail) is told; a whole run or a cancelled one is not", async (t) => {
  const cases = [
    { frames: ['epoch_end 0', 'epoch_end 1'], finished: true, told: /no train_end; the last epoch_end that arrived was epoch 2\): .*the curves miss the last points, the training is not affected\]$/ },
    { frames: ['epoch_end 0', 'epoch_end 1', 'train_end'], finished: true, told: null },
    { frames: ['epoch_end 0'], finished: false, told: null },
  ];
  for (const c of cases) {
    const { relay, events, notes, until } = await relayWithSink(t, 50);
    const nn = await sleapNnSide(t, relay.publishPort, relay.controllerPort, () => relay.received > 0, { sendHighWaterMark: 0 });
    for (const f of c.frames) {
      const [event, epoch] = f.split(' ');
      await nn.send(epoch === undefined ? ev(event as string, '"logs": null') : ev(event as string, `"logs": {}, "epoch": ${epoch}`));
    }
    await until(() => events.length === c.frames.length);
    await relay.drain(c.finished);
    const tail = notes.filter((n) => n.includes('last progress events did not arrive'));
    if (c.told === null) assert.deepEqual(tail, [], c.frames.join(', '));
    else {
      assert.equal(tail.length, 1, notes.join(' / '));
      assert.match(tail[0] ?? '', c.told);
    }
  }
});
