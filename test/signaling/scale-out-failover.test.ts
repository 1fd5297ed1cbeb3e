/**
 * Issue 12's fault promises, end to end with the real client code and a real redis-server:
 *   - a peer given several servers (`--server a,b`) whose process is SIGKILLed re-registers on the
 *     next process under the same id, its routing client sends its waiting request again, and the
 *     request is served exactly once (real `sleap-rtc server` processes);
 *   - claim and queue deadlines live in the store: a deadline set by a process that is gone is
 *     expired by another process's sweep, which never made that decision (two server instances,
 *     each with its own Redis connections, so the claim window can be short).
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { startSignalingServer, type SignalingServer } from '../../src/signaling/server.js';
import { SignalingClient } from '../../src/transport/signaling-client.js';
import { getRoomStatus, requestWorker, type RoutingUpdate } from '../../src/transport/routing-client.js';
import { registerPeer, workerMetadata, type Msg, type TestPeer } from '../helpers/ws-peer.js';
import { createRoomOn, type RunningServer } from './cli-server.js';
import { assigned, type Assigned } from './routing-helpers.js';
import { join, redisFor, servers } from './scale-out-helpers.js';

test('SIGKILL of the process a client is on: the client (--server a,b) re-registers on the other under its id, re-sends its waiting request, and it is served once', async (t) => {
  const redis = await redisFor(t);
  const [a, b] = (await servers(t, redis, 2)) as [RunningServer, RunningServer];
  const room = await createRoomOn(b.url);
  // The only vast worker, on B, runs another client's job, so the request below has to wait.
  const worker = await join(t, b, room, { role: 'worker', peer_id: 'gpu', metadata: workerMetadata(['vast']) });
  const holder = await join(t, b, room, { role: 'client', peer_id: 'holder' });
  holder.send({ type: 'request_worker', request_id: 'h', job_type: 'train', required_storage: 'vast' });
  const held = await assigned(holder, 'h');
  worker.send({ type: 'claim_reservation', reservation_id: held.reservation_id });
  await worker.next('reservation_claimed');

  const client = await SignalingClient.connect({
    serverUrl: `${a.url},${b.url}`,
    roomId: room.room_id,
    token: room.token,
    role: 'client',
    peerId: 'laptop',
    reconnectInitialDelayMs: 50,
    reconnectMaxDelayMs: 500,
  });
  t.after(() => client.close());
  assert.equal(client.peerId, 'laptop');
  // Registered on A, the first URL (the worker on B hears it through Redis).
  await worker.next('peer_joined', (m) => (m.peer as { peer_id: string }).peer_id === 'laptop');
  assert.equal(((await (await fetch(`${a.url}/metrics`)).json()) as { peers: { client: number } }).peers.client, 1);
  const updates: RoutingUpdate[] = [];
  const request = requestWorker(client, { jobType: 'train', requiredStorage: 'vast' });
  request.on('update', (u: RoutingUpdate) => updates.push(u));
  await once(request, 'update');
  assert.equal(updates[0]?.type, 'queued', JSON.stringify(updates));

  const reconnected = once(client, 'reconnected');
  a.child.kill('SIGKILL');
  await a.exit;
  await reconnected;
  assert.equal(client.peerId, 'laptop', 'the same id on B, not laptop-2 (A does not answer the probe)');
  // The re-sent request waits in the queue again: one entry, not two (the old one went with A's record).
  await waitForQueued(client, 1);
  assert.equal(request.state, 'queued');

  // The running job ends: the slot goes to the re-sent request, once.
  worker.send({ type: 'release_reservation', reservation_id: held.reservation_id });
  const assignment = await request.assigned();
  assert.equal(assignment.worker.peer_id, 'gpu');
  worker.send({ type: 'claim_reservation', reservation_id: assignment.reservationId });
  const claimed = await worker.next<Msg & { client_peer_id: string; request_id: string }>('reservation_claimed', (m) => m.reservation_id === assignment.reservationId);
  assert.deepEqual([claimed.client_peer_id, claimed.request_id], ['laptop', request.requestId]);
  const status = await getRoomStatus(client);
  assert.equal(status.queue_length, 0, 'nothing left waiting');
  const gpu = status.workers.find((w) => w.peer_id === 'gpu');
  assert.deepEqual(gpu?.slots, { total: 1, pending: 0, claimed: 1, free: 0 }, 'one job on the worker, not two');
  await holder.barrier();
  assert.equal(updates.filter((u) => u.type === 'assigned').length, 1, `served once: ${JSON.stringify(updates)}`);
  assert.equal(holder.received.filter((m) => m.type === 'error').length, 0);
});

/** Polls get_room_status until the room's queue holds `n` requests. */
async function waitForQueued(client: SignalingClient, n: number): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const status = await getRoomStatus(client);
    if (status.queue_length === n) return;
    if (Date.now() > deadline) assert.fail(`queue length ${status.queue_length}, expected ${n}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

interface TwoInstances {
  a: SignalingServer;
  b: SignalingServer;
  room: { room_id: string; token: string };
  join(server: SignalingServer, opts: { role: 'worker' | 'client'; peer_id: string; metadata?: Record<string, unknown> }): Promise<TestPeer>;
}

async function twoInstances(t: TestContext, reservationTimeoutMs: number): Promise<TwoInstances> {
  const redis = await redisFor(t);
  const [a, b] = (await Promise.all(
    ['node-a', 'node-b'].map((nodeId) => startSignalingServer({ host: '127.0.0.1', port: 0, nodeId, reservationTimeoutMs, storeSetting: { kind: 'redis', url: redis.url } })),
  )) as [SignalingServer, SignalingServer];
  const peers: TestPeer[] = [];
  t.after(async () => {
    await Promise.all(peers.map((p) => p.close()));
    await a.close();
    await b.close();
  });
  const room = await b.createRoom();
  return {
    a,
    b,
    room,
    async join(server, opts) {
      const peer = await registerPeer(server.wsUrl, { room_id: room.room_id, token: room.token, ...opts });
      peers.push(peer);
      return peer;
    },
  };
}

test('a claim deadline set by a process that is gone is expired by another process (deadlines live in Redis)', async (t) => {
  const { a, b, join } = await twoInstances(t, 1_500);
  const onA = await join(a, { role: 'worker', peer_id: 'w-a', metadata: workerMetadata(['vast']) });
  const onB = await join(b, { role: 'worker', peer_id: 'w-b', metadata: workerMetadata(['vast'], { status: 'busy' }) });
  const client = await join(b, { role: 'client', peer_id: 'laptop' });
  client.send({ type: 'request_worker', request_id: 'r', job_type: 'train', required_storage: 'vast' });
  assert.equal((await assigned(client, 'r')).worker.peer_id, 'w-a');
  onB.send({ type: 'update_metadata', metadata: workerMetadata(['vast']) });
  await onB.barrier();
  await onA.barrier();

  // A shuts down: its worker leaves, and A itself re-offers the job to w-b (A made this decision
  // and held its only local timer), then A is gone.
  await a.close();
  const second = await assigned(client, 'r', 30_000);
  assert.equal(second.worker.peer_id, 'w-b');
  assert.deepEqual(second.reassigned_from, { peer_id: 'w-a', reason: 'worker_left' });
  assert.equal(second.claim_timeout_ms, 1_500);

  // w-b never claims. Only B is left, and it did not decide this reservation: its sweep of the
  // store's due rooms must expire it. No other worker can serve: RESERVATION_EXPIRED.
  const expired = await client.next<Msg & { code: string }>('error', (m) => m.request_id === 'r', 60_000);
  assert.equal(expired.code, 'RESERVATION_EXPIRED', JSON.stringify(expired));
  onB.send({ type: 'claim_reservation', reservation_id: second.reservation_id });
  assert.equal((await onB.next<Msg & { code: string }>('error')).code, 'RESERVATION_NOT_FOUND', 'the late claim is refused');
  assert.equal(client.received.filter((m): m is Assigned => m.type === 'worker_assigned').length, 2);
});

test('a queue deadline of a request re-queued by a process that is gone is expired by another process (QUEUE_TIMEOUT)', async (t) => {
  // A claim window far longer than the test, so no claim timer on B wakes its router meanwhile.
  const { a, b, join } = await twoInstances(t, 600_000);
  await join(a, { role: 'worker', peer_id: 'w-a', metadata: workerMetadata(['vast']) });
  // w-b can serve the job but is busy, so the request waits instead of failing when w-a goes.
  await join(b, { role: 'worker', peer_id: 'w-b', metadata: workerMetadata(['vast'], { status: 'busy' }) });
  const client = await join(b, { role: 'client', peer_id: 'laptop' });
  client.send({ type: 'request_worker', request_id: 'r', job_type: 'train', required_storage: 'vast', queue_timeout_s: 3 });
  assert.equal((await assigned(client, 'r')).worker.peer_id, 'w-a');

  // A shuts down; its worker's pending job goes back to the queue (decided by A, which is gone).
  await a.close();
  // B never queued this request itself (it was assigned at once), so it armed no queue timer:
  // only its sweep of the store's due rooms can time it out.
  const timedOut = await client.next<Msg & { code: string; details: { waited_ms: number; queue_timeout_ms: number } }>('error', (m) => m.request_id === 'r', 60_000);
  assert.equal(timedOut.code, 'QUEUE_TIMEOUT', JSON.stringify(timedOut));
  assert.equal(timedOut.details.queue_timeout_ms, 3_000);
  assert.ok(timedOut.details.waited_ms >= 3_000, JSON.stringify(timedOut.details));
  assert.equal(client.received.filter((m) => m.type === 'worker_assigned').length, 1, 'never assigned again');
});
