/**
 * Routing when things go wrong (routing-failover-suite.ts) on one memory-store server, and
 * routing across two server instances on one memory store and one in-process bus.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startHarness, startTwoInstances } from './harness.js';
import { runFailoverSuite } from './routing-failover-suite.js';
import { registerPeer, workerMetadata, type TestPeer } from '../helpers/ws-peer.js';
import { askAssigned, askQueued, assertAllValid, assigned } from './routing-helpers.js';

runFailoverSuite('failover (memory store)', startHarness);

test('failover: routing works across two server instances on one store and one bus', async (t) => {
  const { a, b, peers } = await startTwoInstances(t);
  const room = await a.createRoom();
  const join = async (url: string, opts: Record<string, unknown>): Promise<TestPeer> => {
    const p = await registerPeer(url, { room_id: room.room_id, token: room.token, ...opts });
    peers.push(p);
    return p;
  };
  const worker = await join(b.wsUrl, { role: 'worker', peer_id: 'gpu', metadata: workerMetadata(['vast']) });
  const c1 = await join(a.wsUrl, { role: 'client', peer_id: 'c1' });
  const c2 = await join(a.wsUrl, { role: 'client', peer_id: 'c2' });
  const got = await askAssigned(c1, 'r', { required_storage: 'vast' });
  assert.equal(got.worker.peer_id, 'gpu');
  await askQueued(c2, 'r', { required_storage: 'vast' });
  // The worker on B claims and releases; c2 on A hears of its assignment through the bus.
  worker.send({ type: 'claim_reservation', reservation_id: got.reservation_id });
  await worker.next('reservation_claimed');
  worker.send({ type: 'release_reservation', reservation_id: got.reservation_id });
  assert.equal((await assigned(c2, 'r')).worker.peer_id, 'gpu');
  assertAllValid(worker, c1, c2);
});
