/**
 * Job routing through real signaling servers and raw ws peers: who gets which job, the queue,
 * positions, pinning and room status. One suite every store runs (cf. unstorage's driver tests):
 * routing.test.ts runs it on one server with the memory store, routing-redis.test.ts on two
 * server instances on one real redis-server with the peers spread over both. Failover
 * (disconnects, timeouts) is in routing-failover.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { workerMetadata, waitFor } from '../helpers/ws-peer.js';
import {
  answer,
  ask,
  askAssigned,
  askQueued,
  assertAllValid,
  assigned,
  errorFor,
  position,
  threeWorkers,
  type Assigned,
  type Position,
} from './routing-helpers.js';
import type { HarnessStart } from './harness.js';

export function runRoutingSuite(name: string, start: HarnessStart): void {
  test(`${name}: a job lands only on a worker with its backend; a transfer job on any worker`, async (t) => {
    const { vast, both, none, client } = await threeWorkers(t, {}, start);
    const c = await client('laptop');
    const a = await askAssigned(c, 'r1', { required_storage: 'vast' });
    const b = await askAssigned(c, 'r2', { required_storage: 'vast' });
    assert.deepEqual([a.worker.peer_id, b.worker.peer_id], ['w-vast', 'w-both'], 'least recently assigned first, join order for ties');
    assert.equal(a.worker.metadata.name, 'vast-box', 'the assignment carries the worker as the room sees it');
    assert.match(a.reservation_id, /^rsv-/);
    assert.notEqual(a.reservation_id, b.reservation_id);
    assert.equal(a.claim_timeout_ms, 30_000);
    assert.equal(a.reassigned_from, undefined);
    // Both vast workers are reserved: the third vast job waits, though a worker without vast is free.
    const q = await askQueued(c, 'r3', { required_storage: 'vast' });
    assert.deepEqual([q.position, q.queue_length, q.matching_workers], [1, 1, 2]);
    // A transfer job needs no backend: the free worker takes it.
    const transfer = await askAssigned(c, 'r4', { required_storage: null });
    assert.equal(transfer.worker.peer_id, 'w-none');
    assertAllValid(c, vast, both, none);
  });

  test(`${name}: no worker with the backend -> NO_MATCHING_WORKER naming the backends in the room`, async (t) => {
    const { client } = await threeWorkers(t, {}, start);
    const c = await client();
    ask(c, 'r1', { required_storage: 'nfs', job_type: 'track' });
    const err = await errorFor(c, 'r1');
    assert.equal(err.code, 'NO_MATCHING_WORKER');
    assert.match(err.message, /storage backend "nfs"/);
    assert.match(err.message, /"scratch", "vast"/);
    assert.deepEqual(err.details, { reason: 'no_backend', job_type: 'track', required_storage: 'nfs', available_backends: ['scratch', 'vast'] });
    // Not queued: a later room_status shows an empty queue.
    c.send({ type: 'get_room_status', request_id: 's' });
    const status = await c.next<{ queue_length: number } & { type: string }>('room_status');
    assert.equal(status.queue_length, 0);
    assertAllValid(c);
  });

  test(`${name}: job type and GPU minimums are requirements too`, async (t) => {
    const { h, client } = await threeWorkers(t, {}, start);
    await h.join({
      role: 'worker',
      peer_id: 'w-gpu',
      metadata: workerMetadata(['vast'], { capabilities: { storage_backends: ['vast'], job_types: ['track'], max_concurrent_jobs: 1, gpu: { name: 'A100', memory_mb: 81920 } } }),
    });
    const c = await client();
    const big = await askAssigned(c, 'big', { job_type: 'track', min_gpu_memory_mb: 40000 });
    assert.equal(big.worker.peer_id, 'w-gpu');
    ask(c, 'huge', { job_type: 'track', min_gpu_memory_mb: 100000 });
    const err = await errorFor(c, 'huge');
    assert.equal(err.code, 'NO_MATCHING_WORKER');
    assert.equal(err.details?.reason, 'gpu_too_small');
  });

  test(`${name}: concurrent requests never double-book; the rest queue with distinct positions`, async (t) => {
    const { h } = await threeWorkers(t, {}, start);
    for (let i = 0; i < 5; i++) await h.join({ role: 'worker', peer_id: `extra-${i}`, metadata: workerMetadata(['vast']) });
    const clients = await Promise.all([0, 1, 2, 3].map((i) => h.join({ role: 'client', peer_id: `c${i}` })));
    // 20 requests written at once, 5 per client; 7 workers have vast.
    const asks = clients.flatMap((c, i) => [0, 1, 2, 3, 4].map((j) => ({ c, id: `r${i}-${j}` })));
    for (const { c, id } of asks) ask(c, id, { required_storage: 'vast' });
    const replies = await Promise.all(asks.map(({ c, id }) => answer(c, id)));
    const got = replies.filter((r): r is Assigned => r.type === 'worker_assigned');
    assert.equal(got.length, 7);
    assert.equal(new Set(got.map((a) => a.worker.peer_id)).size, 7, 'seven distinct workers');
    assert.ok(got.every((a) => a.worker.peer_id !== 'w-none'));
    assert.equal(replies.filter((r) => r.type === 'queue_position').length, 13);
    // Once the dust settles, the 13 queued requests hold positions 1..13 (same requirements: one FIFO).
    const latest = async (): Promise<number[]> => {
      const out: number[] = [];
      for (const { c, id } of asks) {
        const mine = c.received.filter((m): m is Position => m.type === 'queue_position' && m.request_id === id);
        if (mine.length > 0 && !c.received.some((m) => m.type === 'worker_assigned' && m.request_id === id)) out.push((mine.at(-1) as Position).position);
      }
      return out.sort((a, b) => a - b);
    };
    await waitFor(async () => (await latest()).join() === Array.from({ length: 13 }, (_, i) => i + 1).join(), 5000, 'positions 1..13');
    assertAllValid(...clients);
  });

  test(`${name}: the queue is FIFO; positions are reported and move up as workers free`, async (t) => {
    const { h, vast, both } = await threeWorkers(t, {}, start);
    const holder = await h.join({ role: 'client', peer_id: 'holder' });
    const held = [await askAssigned(holder, 'h1', { required_storage: 'vast' }), await askAssigned(holder, 'h2', { required_storage: 'vast' })];
    const cs = [];
    for (const id of ['c1', 'c2', 'c3']) cs.push(await h.join({ role: 'client', peer_id: id }));
    const [c1, c2, c3] = cs as [(typeof cs)[0], (typeof cs)[0], (typeof cs)[0]];
    assert.equal((await askQueued(c1, 'q', { required_storage: 'vast' })).position, 1);
    assert.equal((await askQueued(c2, 'q', { required_storage: 'vast' })).position, 2);
    const third = await askQueued(c3, 'q', { required_storage: 'vast' });
    assert.deepEqual([third.position, third.queue_length, third.matching_workers], [3, 3, 2]);

    // The worker takes its job, then finishes and releases: the head of the queue gets it.
    const first = held[0] as Assigned;
    const worker = first.worker.peer_id === 'w-vast' ? vast : both;
    worker.send({ type: 'claim_reservation', reservation_id: first.reservation_id });
    const claimed = await worker.next('reservation_claimed');
    assert.deepEqual(claimed, { type: 'reservation_claimed', reservation_id: first.reservation_id, request_id: 'h1', client_peer_id: 'holder' });
    worker.send({ type: 'release_reservation', reservation_id: first.reservation_id });
    assert.deepEqual(await worker.next('reservation_released'), { type: 'reservation_released', reservation_id: first.reservation_id });
    const next = await assigned(c1, 'q');
    assert.equal(next.worker.peer_id, first.worker.peer_id);
    assert.equal((await position(c2, 'q', (m) => m.position === 1)).queue_length, 2);
    assert.equal((await position(c3, 'q', (m) => m.position === 2)).queue_length, 2);

    // The holder gives its other (unclaimed) reservation back: c2 is next.
    holder.send({ type: 'release_reservation', reservation_id: (held[1] as Assigned).reservation_id });
    assert.equal((await assigned(c2, 'q')).worker.peer_id, (held[1] as Assigned).worker.peer_id);
    await position(c3, 'q', (m) => m.position === 1);
    assertAllValid(holder, c1, c2, c3, vast, both);
  });

  test(`${name}: a request no free worker can serve does not block a later one that one can`, async (t) => {
    const { both, client } = await threeWorkers(t, {}, start);
    const c = await client();
    // Occupy w-both (the only scratch worker) and w-vast.
    const scratchHeld = await askAssigned(c, 'hold-scratch', { required_storage: 'scratch' });
    assert.equal(scratchHeld.worker.peer_id, 'w-both');
    const vastHeld = await askAssigned(c, 'hold-vast', { required_storage: 'vast' });
    assert.equal(vastHeld.worker.peer_id, 'w-vast');
    const s = await askQueued(c, 'wants-scratch', { required_storage: 'scratch' });
    const v = await askQueued(c, 'wants-vast', { required_storage: 'vast' });
    // Both compete for w-both, so the vast request counts the scratch one ahead of it.
    assert.deepEqual([s.position, v.position], [1, 2]);
    c.send({ type: 'cancel_request', request_id: 'hold-vast' });
    await c.next('request_cancelled', (m) => m.request_id === 'hold-vast');
    assert.equal((await assigned(c, 'wants-vast')).worker.peer_id, 'w-vast', 'strict FIFO only among requests w-vast can serve');
    both.send({ type: 'release_reservation', reservation_id: scratchHeld.reservation_id });
    assert.equal((await assigned(c, 'wants-scratch')).worker.peer_id, 'w-both');
  });

  test(`${name}: cancel leaves the queue and the positions behind move up`, async (t) => {
    const { h, vast, both } = await threeWorkers(t, {}, start);
    const holder = await h.join({ role: 'client' });
    await askAssigned(holder, 'h1', { required_storage: 'vast' });
    await askAssigned(holder, 'h2', { required_storage: 'vast' });
    const cs = [];
    for (const id of ['c1', 'c2', 'c3']) {
      const c = await h.join({ role: 'client', peer_id: id });
      await askQueued(c, 'q', { required_storage: 'vast' });
      cs.push(c);
    }
    const [c1, c2, c3] = cs as [(typeof cs)[0], (typeof cs)[0], (typeof cs)[0]];
    c2.send({ type: 'cancel_request', request_id: 'q' });
    assert.deepEqual(await c2.next('request_cancelled'), { type: 'request_cancelled', request_id: 'q' });
    const moved = await position(c3, 'q', (m) => m.position === 2);
    assert.equal(moved.queue_length, 2);
    // Cancelling again, or something unknown, is still answered (Ctrl-C may race an assignment).
    c2.send({ type: 'cancel_request', request_id: 'q' });
    await c2.next('request_cancelled');
    // c1 was not behind c2: it heard nothing new.
    await c1.barrier();
    assert.equal(c1.received.filter((m) => m.type === 'queue_position').length, 1);
    // A client that disconnects leaves the queue too.
    await c1.close();
    await position(c3, 'q', (m) => m.position === 1);
    assertAllValid(c2, c3, vast, both);
  });

  test(`${name}: a pinned job goes to that worker (by name or peer id) or waits for it`, async (t) => {
    const { vast, client } = await threeWorkers(t, {}, start);
    const c = await client();
    const byName = await askAssigned(c, 'p1', { required_storage: 'vast', worker: 'both-box' });
    assert.equal(byName.worker.peer_id, 'w-both', 'pinned beats least recently assigned');
    // w-both is reserved: a second job pinned to it waits, although w-vast is free.
    const waiting = await askQueued(c, 'p2', { required_storage: 'vast', worker: 'w-both' });
    assert.deepEqual([waiting.position, waiting.matching_workers], [1, 1]);
    const free = await askAssigned(c, 'free', { required_storage: 'vast' });
    assert.equal(free.worker.peer_id, 'w-vast');
    c.send({ type: 'cancel_request', request_id: 'p1' });
    assert.equal((await assigned(c, 'p2')).worker.peer_id, 'w-both');
    // A pinned worker that cannot serve, and one that does not exist.
    ask(c, 'p3', { required_storage: 'scratch', worker: 'vast-box' });
    const cannot = await errorFor(c, 'p3');
    assert.equal(cannot.code, 'NO_MATCHING_WORKER');
    assert.deepEqual([cannot.details?.reason, cannot.details?.missing], ['worker_cannot_serve', 'storage']);
    assert.match(cannot.message, /Worker "vast-box" cannot serve this job: it has no storage backend "scratch"/);
    ask(c, 'p4', { worker: 'gpu-42' });
    const ghost = await errorFor(c, 'p4');
    assert.equal(ghost.details?.reason, 'worker_not_found');
    assert.match(ghost.message, /sleap-rtc workers/);
    assertAllValid(c, vast);
  });

  test(`${name}: a worker that joins, or turns available, serves the queue`, async (t) => {
    const { h, both, client } = await threeWorkers(t, {}, start);
    const c = await client();
    // Make w-both busy by its own account: a scratch job now waits.
    both.send({ type: 'update_metadata', metadata: workerMetadata(['vast', 'scratch'], { name: 'both-box', status: 'busy' }) });
    await both.barrier();
    const waiting = await askQueued(c, 's', { required_storage: 'scratch' });
    assert.equal(waiting.matching_workers, 1);
    const newcomer = await h.join({ role: 'worker', peer_id: 'w-new', metadata: workerMetadata(['scratch']) });
    assert.equal((await assigned(c, 's')).worker.peer_id, 'w-new');
    const again = await askQueued(c, 's2', { required_storage: 'scratch' });
    assert.equal(again.matching_workers, 2);
    both.send({ type: 'update_metadata', metadata: workerMetadata(['vast', 'scratch'], { name: 'both-box' }) });
    assert.equal((await assigned(c, 's2')).worker.peer_id, 'w-both');
    assertAllValid(c, both, newcomer);
  });

  test(`${name}: room_status lists every worker with its slots and the queue it could serve`, async (t) => {
    const { both, client } = await threeWorkers(t, {}, start);
    const c = await client();
    const held = await askAssigned(c, 'a', { required_storage: 'scratch' });
    both.send({ type: 'claim_reservation', reservation_id: held.reservation_id });
    await both.next('reservation_claimed');
    await askAssigned(c, 'b', { required_storage: 'vast' });
    await askQueued(c, 'c', { required_storage: 'vast' });
    await askQueued(c, 'd', { required_storage: 'scratch' });
    // Any peer may ask, workers included.
    both.send({ type: 'get_room_status', request_id: 'st' });
    const status = await both.next<{ type: string; request_id: string; queue_length: number; workers: { peer_id: string; slots: unknown; queued: number; metadata: { name?: string } }[] }>('room_status');
    assert.equal(status.request_id, 'st');
    assert.equal(status.queue_length, 2);
    assert.deepEqual(
      status.workers.map((w) => [w.peer_id, w.metadata.name, w.slots, w.queued]),
      [
        ['w-vast', 'vast-box', { total: 1, pending: 1, claimed: 0, free: 0 }, 1],
        ['w-both', 'both-box', { total: 1, pending: 0, claimed: 1, free: 0 }, 2],
        ['w-none', 'plain-box', { total: 1, pending: 0, claimed: 0, free: 1 }, 0],
      ],
    );
    assertAllValid(both, c);
  });
}
