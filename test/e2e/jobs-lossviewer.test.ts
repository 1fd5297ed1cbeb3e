/**
 * SLEAP's LossViewer watching and stopping a remote run, end to end: real ZMQ sockets bound as
 * LossViewer binds them, a real client with --zmq-publish / --zmq-control, a real worker and the
 * sleap-nn stand-in.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { decodeSleapNnEvent } from '../../src/protocol/progress.js';
import { lossViewerSide } from '../helpers/zmq-peers.js';
import { labShare, spawnTracked, startServer, startWorker } from './helpers/jobs-env.js';

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
