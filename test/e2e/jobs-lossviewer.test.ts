/**
 * SLEAP's LossViewer watching and stopping a remote run, end to end: real ZMQ sockets bound as
 * LossViewer binds them, a real client with --zmq-publish / --zmq-control, a real worker and the
 * sleap-nn stand-in.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeSleapNnEvent } from '../../src/protocol/progress.js';
import { lossViewerSide } from '../helpers/zmq-peers.js';
import { labShare, lastJson, serverForFile, spawnTracked, startWorker, trainArgs } from './helpers/jobs-env.js';

const server = serverForFile();

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
  assert.equal(lastJson<{ status: string }>(client).status, 'stopped_early');
  assert.match(client.stderr(), /LossViewer: stop requested/);
  let last = '';
  while (last !== 'train_end') last = decodeSleapNnEvent(await lv.next()).event;
});
