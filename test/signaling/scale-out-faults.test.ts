/**
 * Faults with several real server processes on one real redis-server: a process SIGKILLed
 * mid-queue, and Redis restarted (with AOF).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { waitFor, workerMetadata, type Msg } from '../helpers/ws-peer.js';
import { createRoomOn, type RunningServer } from './cli-server.js';
import { join, redisFor, servers } from './scale-out-helpers.js';

test('a process killed with SIGKILL: its peers leave their rooms within the presence bound, come back elsewhere under the same ids, and no queued request is lost or served twice', async (t) => {
  const redis = await redisFor(t);
  const [a, b] = (await servers(t, redis, 2)) as [RunningServer, RunningServer];
  const room = await createRoomOn(b.url);
  const worker = await join(t, b, room, { role: 'worker', peer_id: 'w', metadata: workerMetadata(['vast']) });
  const holder = await join(t, b, room, { role: 'client', peer_id: 'holder' });
  const doomed = await join(t, a, room, { role: 'client', peer_id: 'doomed' });
  const watcher = await join(t, b, room, { role: 'client', peer_id: 'watcher' });
  await join(t, a, room, { role: 'worker', peer_id: 'gone-worker', metadata: workerMetadata(['scratch']) });
  // The only vast worker is held; the doomed client and the watcher queue behind it.
  holder.send({ type: 'request_worker', request_id: 'h', job_type: 'train', required_storage: 'vast' });
  const held = await holder.next<Msg & { reservation_id: string }>('worker_assigned');
  doomed.send({ type: 'request_worker', request_id: 'r1', job_type: 'train', required_storage: 'vast' });
  await doomed.next('queue_position');
  watcher.send({ type: 'request_worker', request_id: 'q1', job_type: 'train', required_storage: 'vast' });
  await watcher.next('queue_position');

  const killedAt = Date.now();
  a.child.kill('SIGKILL');
  await a.exit;
  // The client reconnects to B at once under its old id (A's presence has not run out yet: B asks
  // A, which does not answer, so the stale record is removed and the id handed back).
  const back = await join(t, b, room, { role: 'client', peer_id: 'doomed' });
  assert.equal(back.peerId, 'doomed', 'the same peer id, not doomed-2');
  // Presence: the worker on B hears the killed process's worker leave (nothing closed its socket politely).
  await worker.next('peer_left', (m) => m.peer_id === 'gone-worker', 60_000);
  t.diagnostic(`peers of the killed process were removed after ${Date.now() - killedAt} ms`);
  // ... and asks again (what the routing client does after a reconnect).
  back.send({ type: 'request_worker', request_id: 'r1', job_type: 'train', required_storage: 'vast', wait_for_match: true });
  const first = await back.next(['queue_position', 'error', 'worker_assigned']);
  assert.equal(first.type, 'queue_position', JSON.stringify(first));

  // The held job ends: the watcher (queued before the client came back) goes first, then the client.
  worker.send({ type: 'release_reservation', reservation_id: held.reservation_id });
  const toWatcher = await watcher.next<Msg & { reservation_id: string }>('worker_assigned');
  worker.send({ type: 'release_reservation', reservation_id: toWatcher.reservation_id });
  const toBack = await back.next<Msg & { request_id: string }>('worker_assigned');
  assert.equal(toBack.request_id, 'r1');
  await back.barrier();
  await watcher.barrier();
  assert.equal(back.received.filter((m) => m.type === 'worker_assigned').length, 1, 'served once');
  assert.equal(watcher.received.filter((m) => m.type === 'worker_assigned').length, 1, 'served once');
  assert.equal(back.received.filter((m) => m.type === 'error').length, 0);
});

test('Redis restarted: requests fail with STORE_UNAVAILABLE while it is down, the processes stay up, and resume with their rooms (AOF)', async (t) => {
  const redis = await redisFor(t, true);
  const [a, b] = (await servers(t, redis, 2)) as [RunningServer, RunningServer];
  const room = await createRoomOn(a.url);
  const worker = await join(t, a, room, { role: 'worker', peer_id: 'gpu', metadata: workerMetadata(['vast']) });
  const client = await join(t, b, room, { role: 'client', peer_id: 'laptop' });

  await redis.kill();
  // Down: a request that needs the store fails with a stable code; the process answers.
  await waitFor(async () => (await fetch(`${b.url}/health`)).status === 503, 30_000, '/health to report the store down');
  client.send({ type: 'discover_peers', request_id: 'while-down', filters: {} });
  const err = await client.next<Msg & { code: string }>('error', (m) => m.request_id === 'while-down', 30_000);
  assert.equal(err.code, 'STORE_UNAVAILABLE');
  assert.equal(b.child.exitCode, null, 'still running');

  await redis.start();
  await waitFor(async () => (await fetch(`${a.url}/health`)).status === 200 && (await fetch(`${b.url}/health`)).status === 200, 60_000, 'both processes to reach Redis again');
  // The room survived (AOF), the peers kept their connections, and relay crosses processes again.
  const late = await join(t, a, room, { role: 'client', peer_id: 'late' });
  assert.deepEqual((late.registered?.peers as { peer_id: string }[]).map((p) => p.peer_id).sort(), ['gpu', 'laptop']);
  await waitFor(
    async () => {
      client.send({ type: 'peer_message', to_peer_id: 'gpu', payload: 'after restart' });
      await client.barrier();
      return worker.received.some((m) => m.type === 'peer_message' && m.payload === 'after restart');
    },
    30_000,
    'relay B -> A after the restart',
  );
  assert.equal(a.child.exitCode, null);
  assert.equal(b.child.exitCode, null);
});
