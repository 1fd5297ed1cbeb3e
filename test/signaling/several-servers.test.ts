/**
 * A peer given several servers (`--server http://a,http://b`, processes sharing one store): an
 * unreachable one is skipped at start, and after its server goes away the peer registers on the
 * next one under the same id; and the CLI passes such a list through (`sleap-rtc workers`). A
 * SIGKILLed process with a queued request is in scale-out-failover.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { startSignalingServer } from '../../src/signaling/server.js';
import { SignalingClient } from '../../src/transport/signaling-client.js';
import { registerPeer } from '../helpers/ws-peer.js';
import { runCli } from '../helpers/cli.js';
import { startTwoInstances } from './harness.js';
import { createRoomOn, type RunningServer } from './cli-server.js';
import { freePort } from './redis-server.js';
import { join, redisFor, servers } from './scale-out-helpers.js';

test('several servers: an unreachable one is skipped; when the connected one goes, the peer re-registers on the next under the same id', async (t) => {
  const { a, b, peers } = await startTwoInstances(t);
  const gone = await startSignalingServer({ port: 0 });
  const deadUrl = gone.url;
  await gone.close();
  const room = await b.createRoom();
  const watcher = await registerPeer(b.wsUrl, { room_id: room.room_id, token: room.token, peer_id: 'watcher' });
  peers.push(watcher);
  const client = await SignalingClient.connect({
    serverUrl: `${deadUrl},${a.url},${b.url}`,
    roomId: room.room_id,
    token: room.token,
    role: 'worker',
    peerId: 'gpu',
    reconnectInitialDelayMs: 50,
    reconnectMaxDelayMs: 200,
  });
  t.after(() => client.close());
  assert.equal(client.peerId, 'gpu');
  assert.equal(a.metrics().peers.worker, 1, 'registered on the second URL, the first being down');
  const reconnected = once(client, 'reconnected');
  await a.close();
  await reconnected;
  assert.equal(client.peerId, 'gpu', 'the same id');
  assert.equal(b.metrics().peers.worker, 1, 'now on the third URL');
  client.send({ type: 'peer_message', to_peer_id: 'watcher', payload: { hello: 1 } });
  assert.deepEqual(await watcher.next('peer_message'), { type: 'peer_message', from_peer_id: 'gpu', payload: { hello: 1 } });
});

test('the CLI takes several servers in --server: `sleap-rtc workers --server DEAD,B` skips the dead one and lists a worker registered on process A of the same Redis', async (t) => {
  const redis = await redisFor(t);
  const [a, b] = (await servers(t, redis, 2)) as [RunningServer, RunningServer];
  const room = await createRoomOn(a.url);
  await join(t, a, room, { role: 'worker', peer_id: 'gpu', metadata: { name: 'box', status: 'available', capabilities: { storage_backends: ['vast'], job_types: ['train'], max_concurrent_jobs: 1 } } });
  const dead = `http://127.0.0.1:${await freePort()}`;
  const r = await runCli(['workers', '--server', `${dead},${b.url}`, '--room', room.room_id, '--token', room.token, '--json'], { timeoutMs: 120_000 });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual((JSON.parse(r.stdout) as { peer_id: string }[]).map((w) => w.peer_id), ['gpu']);
});
