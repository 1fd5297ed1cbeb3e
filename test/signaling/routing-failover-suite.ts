/**
 * Routing when things go wrong, through real signaling servers: a reserved worker that vanishes or
 * never claims, queue timeouts, departing clients, bad routing input. One suite every store runs:
 * routing-failover.test.ts on one memory-store server, routing-redis.test.ts on two server
 * instances on one real redis-server.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { workerMetadata } from '../helpers/ws-peer.js';
import type { HarnessStart } from './harness.js';
import { ask, askAssigned, askQueued, assertAllValid, assigned, errorFor, position, threeWorkers, type ErrorMsg } from './routing-helpers.js';

export function runFailoverSuite(name: string, start: HarnessStart): void {
  test(`${name}: a reserved worker that disconnects does not lose the job`, async (t) => {
    const { vast, both, client } = await threeWorkers(t, {}, start);
    const c = await client();
    const first = await askAssigned(c, 'r', { required_storage: 'vast' });
    assert.equal(first.worker.peer_id, 'w-vast');
    await vast.close();
    const second = await assigned(c, 'r');
    assert.equal(second.worker.peer_id, 'w-both');
    assert.notEqual(second.reservation_id, first.reservation_id);
    assert.deepEqual(second.reassigned_from, { peer_id: 'w-vast', reason: 'worker_left' });
    both.send({ type: 'claim_reservation', reservation_id: second.reservation_id });
    await both.next('reservation_claimed');
    assertAllValid(c, both);
  });

  test(`${name}: a disconnect with no other free match puts the job back in the queue, ahead`, async (t) => {
    const { h, vast, both, client } = await threeWorkers(t, {}, start);
    const c = await client();
    await askAssigned(c, 'hold', { required_storage: 'vast' }); // w-vast
    const r = await askAssigned(c, 'r', { required_storage: 'vast' });
    assert.equal(r.worker.peer_id, 'w-both');
    assert.equal((await askQueued(c, 'later', { required_storage: 'vast' })).position, 1);
    // w-both leaves: "r" returns ahead of "later", and both wait for a vast worker.
    await both.close();
    await position(c, 'r', (m) => m.position === 1 && m.matching_workers === 1);
    await position(c, 'later', (m) => m.position === 2);
    const joiner = await h.join({ role: 'worker', peer_id: 'w-late', metadata: workerMetadata(['vast']) });
    const back = await assigned(c, 'r');
    assert.equal(back.worker.peer_id, 'w-late');
    assert.deepEqual(back.reassigned_from, { peer_id: 'w-both', reason: 'worker_left' });
    assertAllValid(c, vast, joiner);
  });

  test(`${name}: a reserved worker that never claims loses the job to the next match`, async (t) => {
    const { vast, both, client } = await threeWorkers(t, { reservationTimeoutMs: 150 }, start);
    const c = await client();
    const first = await askAssigned(c, 'r', { required_storage: 'vast' });
    assert.equal(first.claim_timeout_ms, 150);
    const second = await assigned(c, 'r', 5000);
    assert.deepEqual([first.worker.peer_id, second.worker.peer_id], ['w-vast', 'w-both']);
    assert.deepEqual(second.reassigned_from, { peer_id: 'w-vast', reason: 'claim_timeout' });
    // The late claim is refused, so the slow worker knows to refuse the job.
    vast.send({ type: 'claim_reservation', reservation_id: first.reservation_id });
    const late = await vast.next<ErrorMsg>('error');
    assert.equal(late.code, 'RESERVATION_NOT_FOUND');
    assert.deepEqual(late.details, { reservation_id: first.reservation_id });
    both.send({ type: 'claim_reservation', reservation_id: second.reservation_id });
    await both.next('reservation_claimed');
    // w-vast is back in the pool for other requests.
    assert.equal((await askAssigned(c, 'other', { required_storage: 'vast' })).worker.peer_id, 'w-vast');
    assertAllValid(c, vast, both);
  });

  test(`${name}: RESERVATION_EXPIRED when the only matching worker never claims`, async (t) => {
    const { client } = await threeWorkers(t, { reservationTimeoutMs: 100 }, start);
    const c = await client();
    const first = await askAssigned(c, 'r', { required_storage: 'scratch' });
    assert.equal(first.worker.peer_id, 'w-both');
    const err = await errorFor(c, 'r');
    assert.equal(err.code, 'RESERVATION_EXPIRED');
    assert.deepEqual(err.details, { worker_peer_id: 'w-both' });
    assert.match(err.message, /did not take the job within 0\.1 s/);
    assertAllValid(c);
  });

  test(`${name}: queue timeout`, async (t) => {
    const { h, client } = await threeWorkers(t, {}, start);
    const c = await client();
    const holder = await h.join({ role: 'client' });
    await askAssigned(holder, 'h', { required_storage: 'scratch' });
    await askQueued(c, 'r', { required_storage: 'scratch', queue_timeout_s: 0.2 });
    const err = await errorFor(c, 'r');
    assert.equal(err.code, 'QUEUE_TIMEOUT');
    assert.match(err.message, /within 0\.2 s/);
    assert.equal(err.details?.queue_timeout_ms, 200);
    // Zero means "only if one is free now".
    ask(c, 'now', { required_storage: 'scratch', queue_timeout_s: 0 });
    assert.equal((await errorFor(c, 'now')).code, 'QUEUE_TIMEOUT');
    // The timed-out request is gone: its id may be used again.
    await askQueued(c, 'r', { required_storage: 'scratch' });
    assertAllValid(c);
  });

  test(`${name}: a client that disconnects while holding a reservation releases it to the next in line`, async (t) => {
    const { h, client } = await threeWorkers(t, {}, start);
    const holder = await h.join({ role: 'client' });
    await askAssigned(holder, 'h', { required_storage: 'scratch' });
    const c = await client();
    await askQueued(c, 'r', { required_storage: 'scratch' });
    await holder.close();
    assert.equal((await assigned(c, 'r')).worker.peer_id, 'w-both');
  });

  test(`${name}: a claimed slot stays the worker's when its client goes, until the worker releases it`, async (t) => {
    const { h, both, client } = await threeWorkers(t, {}, start);
    const holder = await h.join({ role: 'client' });
    const held = await askAssigned(holder, 'h', { required_storage: 'scratch' });
    both.send({ type: 'claim_reservation', reservation_id: held.reservation_id });
    await both.next('reservation_claimed');
    const c = await client();
    await askQueued(c, 'r', { required_storage: 'scratch' });
    await holder.close();
    c.send({ type: 'get_room_status' });
    const status = await c.next<{ type: string; workers: { peer_id: string; slots: { claimed: number } }[] }>('room_status');
    assert.equal(status.workers.find((w) => w.peer_id === 'w-both')?.slots.claimed, 1);
    assert.equal(c.received.some((m) => m.type === 'worker_assigned'), false);
    both.send({ type: 'release_reservation', reservation_id: held.reservation_id });
    assert.equal((await assigned(c, 'r')).worker.peer_id, 'w-both');
  });

  const BAD_INPUT: { name: string; frame: Record<string, unknown>; role: 'client' | 'worker'; code: string }[] = [
    { name: 'missing request_id', frame: { type: 'request_worker', job_type: 'train' }, role: 'client', code: 'INVALID_MESSAGE' },
    { name: 'unknown job type', frame: { type: 'request_worker', request_id: 'x', job_type: 'mine' }, role: 'client', code: 'INVALID_MESSAGE' },
    { name: 'backend with a slash', frame: { type: 'request_worker', request_id: 'x', job_type: 'train', required_storage: '../vast' }, role: 'client', code: 'INVALID_MESSAGE' },
    { name: 'negative queue timeout', frame: { type: 'request_worker', request_id: 'x', job_type: 'train', queue_timeout_s: -1 }, role: 'client', code: 'INVALID_MESSAGE' },
    { name: 'huge queue timeout', frame: { type: 'request_worker', request_id: 'x', job_type: 'train', queue_timeout_s: 1e12 }, role: 'client', code: 'INVALID_MESSAGE' },
    { name: 'fractional GPU memory', frame: { type: 'request_worker', request_id: 'x', job_type: 'train', min_gpu_memory_mb: 1.5 }, role: 'client', code: 'INVALID_MESSAGE' },
    { name: 'unknown field', frame: { type: 'request_worker', request_id: 'x', job_type: 'train', priority: 9 }, role: 'client', code: 'INVALID_MESSAGE' },
    { name: 'request id with a space', frame: { type: 'request_worker', request_id: 'a b', job_type: 'train' }, role: 'client', code: 'INVALID_MESSAGE' },
    { name: 'forged client in a claim', frame: { type: 'claim_reservation', reservation_id: 'rsv-x', client_peer_id: 'c' }, role: 'worker', code: 'INVALID_MESSAGE' },
    { name: 'a worker asking for a worker', frame: { type: 'request_worker', request_id: 'x', job_type: 'train' }, role: 'worker', code: 'WRONG_ROLE' },
    { name: 'a worker cancelling', frame: { type: 'cancel_request', request_id: 'x' }, role: 'worker', code: 'WRONG_ROLE' },
    { name: 'a client claiming', frame: { type: 'claim_reservation', reservation_id: 'rsv-x' }, role: 'client', code: 'WRONG_ROLE' },
    { name: 'claiming an unknown reservation', frame: { type: 'claim_reservation', reservation_id: 'rsv-nothing' }, role: 'worker', code: 'RESERVATION_NOT_FOUND' },
    { name: 'server-only message', frame: { type: 'worker_assigned', request_id: 'x' }, role: 'client', code: 'UNKNOWN_TYPE' },
  ];

  test(`${name}: bad routing input gets a coded error and the socket stays up`, async (t) => {
    const { h } = await threeWorkers(t, {}, start);
    const client = await h.join({ role: 'client' });
    const worker = await h.join({ role: 'worker', metadata: workerMetadata(['vast']) });
    for (const c of BAD_INPUT) {
      const peer = c.role === 'client' ? client : worker;
      peer.send(c.frame);
      const err = await peer.next<ErrorMsg>('error');
      assert.equal(err.code, c.code, `${c.name}: ${err.message}`);
      assert.ok(err.message.length > 10, c.name);
      await peer.barrier();
    }
    // A duplicate live request id is refused without disturbing the first request.
    const first = await askAssigned(client, 'dup', {});
    ask(client, 'dup', {});
    const dup = await errorFor(client, 'dup');
    assert.equal(dup.code, 'INVALID_MESSAGE');
    assert.match(dup.message, /already in use/);
    // A stranger may not release someone else's reservation.
    worker.send({ type: 'release_reservation', reservation_id: first.reservation_id });
    assert.equal((await worker.next<ErrorMsg>('error')).code, 'RESERVATION_NOT_FOUND');
    client.send({ type: 'get_room_status' });
    const status = await client.next<{ type: string; workers: { peer_id: string; slots: { pending: number } }[] }>('room_status');
    assert.equal(status.workers.find((w) => w.peer_id === first.worker.peer_id)?.slots.pending, 1, 'still reserved');
    assertAllValid(client, worker);
  });
}
