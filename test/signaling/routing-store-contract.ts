/**
 * The routing half of the store contract (runStoreContract calls it): queues, reservations and
 * last-assigned order, driven through the RoutingStore methods alone with an explicit clock, so a
 * networked store runs the same suite.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Metadata } from '../../src/protocol/signaling.js';
import type { NewRouteRequest, RoutingEvent, RoutingOutcome, RoutingParams, WorkerRequirements } from '../../src/signaling/routing-store.js';
import { RoutingOps } from '../../src/signaling/routing-ops.js';
import type { SignalingStore } from '../../src/signaling/store.js';

type Factory = () => SignalingStore | Promise<SignalingStore>;

const LIMITS = { max_requests_per_client: 8, max_queue_per_room: 50 };
const TTL = 1000;

let roomCounter = 0;

function workerMeta(backends: string[], extra: Partial<NonNullable<Metadata['capabilities']>> = {}, status: Metadata['status'] = 'available'): Metadata {
  return { status, capabilities: { storage_backends: backends, job_types: ['train', 'track'], max_concurrent_jobs: 1, ...extra } };
}

interface Room {
  store: SignalingStore;
  /** The routing operations (the policy) over this store. */
  routing: RoutingOps;
  roomId: string;
  /** Adds a worker under this exact id. */
  worker(id: string, metadata: Metadata): Promise<void>;
  client(id: string): Promise<void>;
  /** A request from `client` at the current clock. */
  ask(client: string, requestId: string, req: Partial<WorkerRequirements>, deadline?: number | null): ReturnType<RoutingOps['routeRequest']>;
  params(): RoutingParams;
  now: number;
}

async function openRoom(factory: Factory, t: { after: (fn: () => Promise<void>) => void }): Promise<Room> {
  const store = await factory();
  t.after(() => store.close());
  roomCounter += 1;
  const roomId = `routing-room-${roomCounter}`;
  await store.createRoom({ room_id: roomId, token_sha256: 'ab'.repeat(32), created_at_ms: Date.now(), idle_ttl_ms: 60_000 });
  const room: Room = {
    store,
    routing: new RoutingOps(store),
    roomId,
    now: 1_000_000,
    async worker(id, metadata) {
      const rec = await store.addPeer({ room_id: roomId, role: 'worker', metadata, node_id: 'n', preferred_id: id });
      assert.equal(rec?.peer_id, id);
    },
    async client(id) {
      const rec = await store.addPeer({ room_id: roomId, role: 'client', metadata: {}, node_id: 'n', preferred_id: id });
      assert.equal(rec?.peer_id, id);
    },
    ask(client, requestId, req, deadline = null) {
      const request: NewRouteRequest = {
        room_id: roomId,
        client_peer_id: client,
        request_id: requestId,
        requirements: { job_type: 'train', required_storage: null, ...req },
        requested_at_ms: room.now,
        deadline_ms: deadline,
      };
      return room.routing.routeRequest(request, { ...room.params(), ...LIMITS });
    },
    params() {
      return { now_ms: room.now, reservation_ttl_ms: TTL };
    },
  };
  return room;
}

function assigned(outcome: RoutingOutcome): { request: string; worker: string; reservation: string }[] {
  return outcome.events
    .filter((e): e is Extract<RoutingEvent, { kind: 'assigned' }> => e.kind === 'assigned')
    .map((e) => ({ request: e.reservation.request.request_id, worker: e.reservation.worker_peer_id, reservation: e.reservation.reservation_id }));
}

function failed(outcome: RoutingOutcome): { request: string; code: string }[] {
  return outcome.events
    .filter((e): e is Extract<RoutingEvent, { kind: 'failed' }> => e.kind === 'failed')
    .map((e) => ({ request: e.request.request_id, code: e.failure.code }));
}

async function queueIds(room: Room): Promise<string[]> {
  return (await room.routing.routingSnapshot(room.roomId)).queue.map((r) => r.request_id);
}

export function runRoutingContract(name: string, factory: Factory): void {
  test(`${name} routing: a job lands only on a worker with its backend; a transfer job on any worker`, async (t) => {
    const room = await openRoom(factory, t);
    await room.worker('w-none', workerMeta([]));
    await room.worker('w-scratch', workerMeta(['scratch']));
    await room.worker('w-vast', workerMeta(['vast', 'scratch']));
    await room.client('c');
    assert.deepEqual(assigned(await room.ask('c', 'r1', { required_storage: 'vast' })).map((a) => a.worker), ['w-vast']);
    // Least recently assigned first, join order among the never assigned.
    assert.deepEqual(assigned(await room.ask('c', 'r2', { required_storage: null })).map((a) => a.worker), ['w-none']);
    assert.deepEqual(assigned(await room.ask('c', 'r3', {})).map((a) => a.worker), ['w-scratch']);
  });

  test(`${name} routing: least recently assigned spreads the work`, async (t) => {
    const room = await openRoom(factory, t);
    for (const id of ['a', 'b', 'c']) await room.worker(id, workerMeta(['vast']));
    await room.client('cl');
    const order: string[] = [];
    for (let i = 0; i < 6; i++) {
      const [hit] = assigned(await room.ask('cl', `r${i}`, { required_storage: 'vast' }));
      assert.ok(hit, `request ${i} was served`);
      order.push(hit.worker);
      const released = await room.routing.releaseReservation(room.roomId, hit.reservation, hit.worker, room.params());
      assert.equal(released.status, 'released');
    }
    assert.deepEqual(order, ['a', 'b', 'c', 'a', 'b', 'c']);
  });

  test(`${name} routing: NO_MATCHING_WORKER names the reason and the room's backends`, async (t) => {
    const cases: { workers: [string, Metadata][]; req: Partial<WorkerRequirements>; reason: string; missing?: string }[] = [
      { workers: [], req: { required_storage: 'vast' }, reason: 'no_workers' },
      { workers: [['w', workerMeta(['scratch', 'home'])]], req: { required_storage: 'vast' }, reason: 'no_backend' },
      { workers: [['w', workerMeta(['vast'], { job_types: ['track'] })]], req: { required_storage: 'vast', job_type: 'train' }, reason: 'no_job_type' },
      { workers: [['w', workerMeta(['vast'], { job_types: ['track'] })]], req: { job_type: 'train' }, reason: 'no_job_type' },
      { workers: [['w', workerMeta(['vast'], { gpu: { name: 'T4', memory_mb: 16000 } })]], req: { min_gpu_memory_mb: 40000 }, reason: 'gpu_too_small' },
      { workers: [['w', workerMeta(['vast'])]], req: { min_gpu_memory_mb: 1 }, reason: 'gpu_too_small' },
      { workers: [['w', workerMeta(['vast'])]], req: { worker: 'ghost' }, reason: 'worker_not_found' },
      { workers: [['w', workerMeta(['scratch'])]], req: { worker: 'w', required_storage: 'vast' }, reason: 'worker_cannot_serve', missing: 'storage' },
      { workers: [['w', { name: 'gpu-box', status: 'available' }]], req: { worker: 'gpu-box' }, reason: 'worker_cannot_serve', missing: 'no_capabilities' },
    ];
    for (const [i, c] of cases.entries()) {
      const room = await openRoom(factory, t);
      for (const [id, meta] of c.workers) await room.worker(id, meta);
      await room.client('c');
      const outcome = await room.ask('c', `r${i}`, c.req);
      const [ev] = outcome.events;
      assert.equal(ev?.kind, 'failed', `case ${i}`);
      assert.ok(ev?.kind === 'failed' && ev.failure.code === 'NO_MATCHING_WORKER', `case ${i}`);
      assert.equal(ev.failure.reason, c.reason, `case ${i}`);
      assert.equal(ev.failure.missing, c.missing, `case ${i}`);
      const backends = [...new Set(c.workers.flatMap(([, m]) => m.capabilities?.storage_backends ?? []))].sort();
      assert.deepEqual(ev.failure.available_backends, backends, `case ${i}`);
      assert.deepEqual(await queueIds(room), [], `case ${i}: nothing queued`);
    }
  });

  test(`${name} routing: wait_for_match queues a request nobody can serve yet, until a worker joins`, async (t) => {
    const room = await openRoom(factory, t);
    await room.client('c');
    const request: NewRouteRequest = {
      room_id: room.roomId,
      client_peer_id: 'c',
      request_id: 'patient',
      requirements: { job_type: 'train', required_storage: 'vast' },
      requested_at_ms: room.now,
      deadline_ms: null,
      wait_for_match: true,
    };
    assert.deepEqual((await room.routing.routeRequest(request, { ...room.params(), ...LIMITS })).events, []);
    assert.deepEqual(await queueIds(room), ['patient']);
    await room.worker('w', workerMeta(['vast']));
    assert.deepEqual(assigned(await room.routing.drainRoutingQueue(room.roomId, room.params())).map((a) => [a.request, a.worker]), [['patient', 'w']]);
  });

  test(`${name} routing: slots follow max_concurrent_jobs and status; the rest queue in order`, async (t) => {
    const room = await openRoom(factory, t);
    await room.worker('two', workerMeta(['vast'], { max_concurrent_jobs: 2 }));
    await room.worker('busy', workerMeta(['vast'], {}, 'busy'));
    await room.client('c');
    const first = assigned(await room.ask('c', 'r1', { required_storage: 'vast' }));
    const second = assigned(await room.ask('c', 'r2', { required_storage: 'vast' }));
    assert.deepEqual([...first, ...second].map((a) => a.worker), ['two', 'two']);
    assert.deepEqual((await room.ask('c', 'r3', { required_storage: 'vast' })).events, []);
    assert.deepEqual((await room.ask('c', 'r4', { required_storage: 'vast' })).events, []);
    assert.deepEqual(await queueIds(room), ['r3', 'r4']);
    // The busy worker turning available takes the head of the queue.
    await room.store.setMetadata('busy', workerMeta(['vast']));
    assert.deepEqual(assigned(await room.routing.drainRoutingQueue(room.roomId, room.params())).map((a) => [a.request, a.worker]), [['r3', 'busy']]);
    assert.deepEqual(await queueIds(room), ['r4']);
  });

  test(`${name} routing: strict FIFO among the requests a worker can serve; others do not block`, async (t) => {
    const room = await openRoom(factory, t);
    await room.worker('vast-1', workerMeta(['vast']));
    await room.worker('scratch-1', workerMeta(['scratch']));
    await room.client('c');
    const held = assigned(await room.ask('c', 'hold-vast', { required_storage: 'vast' }));
    const heldScratch = assigned(await room.ask('c', 'hold-scratch', { required_storage: 'scratch' }));
    assert.equal(held.length + heldScratch.length, 2);
    await room.ask('c', 's1', { required_storage: 'scratch' });
    await room.ask('c', 'v1', { required_storage: 'vast' });
    await room.ask('c', 'v2', { required_storage: 'vast' });
    assert.deepEqual(await queueIds(room), ['s1', 'v1', 'v2']);
    const freed = await room.routing.releaseReservation(room.roomId, (held[0] as { reservation: string }).reservation, 'vast-1', room.params());
    assert.deepEqual(assigned(freed).map((a) => [a.request, a.worker]), [['v1', 'vast-1']], 's1 does not hold up v1');
    assert.deepEqual(await queueIds(room), ['s1', 'v2']);
  });

  test(`${name} routing: concurrent requests never double-book a slot`, async (t) => {
    const room = await openRoom(factory, t);
    for (let i = 0; i < 5; i++) await room.worker(`w${i}`, workerMeta(['vast']));
    for (let i = 0; i < 4; i++) await room.client(`c${i}`);
    const outcomes = await Promise.all(Array.from({ length: 20 }, (_, i) => room.ask(`c${i % 4}`, `r${i}`, { required_storage: 'vast' })));
    const workers = outcomes.flatMap((o) => assigned(o)).map((a) => a.worker);
    assert.equal(workers.length, 5);
    assert.equal(new Set(workers).size, 5, 'five distinct workers');
    assert.equal((await queueIds(room)).length, 15);
    const snap = await room.routing.routingSnapshot(room.roomId);
    assert.equal(snap.reservations.length, 5);
  });

  test(`${name} routing: refusals (duplicate id, per-client and per-room limits) change nothing`, async (t) => {
    const room = await openRoom(factory, t);
    await room.worker('w', workerMeta(['vast'], {}, 'busy'));
    await room.client('c');
    await room.ask('c', 'r1', {});
    assert.deepEqual((await room.ask('c', 'r1', {})).rejected, { kind: 'duplicate' });
    for (let i = 2; i <= LIMITS.max_requests_per_client; i++) await room.ask('c', `r${i}`, {});
    assert.deepEqual((await room.ask('c', 'one-too-many', {})).rejected, { kind: 'client_limit', limit: LIMITS.max_requests_per_client });
    assert.equal((await queueIds(room)).length, LIMITS.max_requests_per_client);
    for (let i = 0; (await queueIds(room)).length < LIMITS.max_queue_per_room; i++) {
      const id = `filler-${i}`;
      await room.client(id);
      await room.ask(id, 'r', {});
    }
    await room.client('late');
    assert.deepEqual((await room.ask('late', 'r', {})).rejected, { kind: 'room_limit', limit: LIMITS.max_queue_per_room });
    // A request id may be used again once its request is over.
    await room.routing.cancelRouteRequest(room.roomId, 'c', 'r1', room.params());
    assert.equal((await room.ask('c', 'r1', {})).rejected, undefined);
  });

  test(`${name} routing: claim belongs to the reserved worker; release frees the slot for the next in line`, async (t) => {
    const room = await openRoom(factory, t);
    await room.worker('w', workerMeta(['vast']));
    await room.worker('other', workerMeta(['scratch']));
    await room.client('c');
    const [a] = assigned(await room.ask('c', 'r1', { required_storage: 'vast' }));
    assert.ok(a);
    await room.ask('c', 'r2', { required_storage: 'vast' });
    assert.equal(await room.routing.claimReservation(room.roomId, a.reservation, 'other'), undefined, 'another worker cannot claim');
    assert.equal(await room.routing.claimReservation(room.roomId, 'rsv-unknown', 'w'), undefined);
    const claimed = await room.routing.claimReservation(room.roomId, a.reservation, 'w');
    assert.equal(claimed?.state, 'claimed');
    assert.equal(claimed?.expires_at_ms, null);
    assert.equal((await room.routing.claimReservation(room.roomId, a.reservation, 'w'))?.state, 'claimed', 'claiming twice is fine');
    // A claimed reservation does not expire.
    room.now += TTL * 10;
    assert.deepEqual((await room.routing.expireReservation(room.roomId, a.reservation, room.params())).events, []);
    assert.equal((await room.routing.releaseReservation(room.roomId, a.reservation, 'other', room.params())).status, 'not_yours');
    const released = await room.routing.releaseReservation(room.roomId, a.reservation, 'w', room.params());
    assert.equal(released.status, 'released');
    assert.deepEqual(assigned(released).map((x) => [x.request, x.worker]), [['r2', 'w']]);
    assert.equal((await room.routing.releaseReservation(room.roomId, a.reservation, 'w', room.params())).status, 'unknown');
  });

  test(`${name} routing: a client's release or cancel frees a pending slot, but only detaches from a claimed one`, async (t) => {
    const room = await openRoom(factory, t);
    await room.worker('w', workerMeta(['vast']));
    await room.client('c');
    await room.client('d');
    const [a] = assigned(await room.ask('c', 'r1', { required_storage: 'vast' }));
    assert.ok(a);
    await room.ask('d', 'q1', { required_storage: 'vast' });
    const cancelled = await room.routing.cancelRouteRequest(room.roomId, 'c', 'r1', room.params());
    assert.equal(cancelled.status, 'pending');
    const [b] = assigned(cancelled);
    assert.deepEqual([b?.request, b?.worker], ['q1', 'w'], 'the freed slot went to the next in line');
    assert.ok(b);
    await room.routing.claimReservation(room.roomId, b.reservation, 'w');
    await room.ask('c', 'r2', { required_storage: 'vast' });
    const detached = await room.routing.releaseReservation(room.roomId, b.reservation, 'd', room.params());
    assert.equal(detached.status, 'released');
    assert.deepEqual(detached.events, [], 'the claimed slot stays with the worker');
    assert.deepEqual(await queueIds(room), ['r2']);
    assert.equal((await room.routing.cancelRouteRequest(room.roomId, 'd', 'q1', room.params())).status, 'unknown', 'the client is no longer party to it');
    assert.equal((await room.routing.cancelRouteRequest(room.roomId, 'c', 'r2', room.params())).status, 'queued');
    assert.deepEqual(await queueIds(room), []);
    assert.equal((await room.routing.cancelRouteRequest(room.roomId, 'c', 'never', room.params())).status, 'unknown');
  });

  test(`${name} routing: an unclaimed reservation expires; the request keeps its place and goes to the next match`, async (t) => {
    const room = await openRoom(factory, t);
    await room.worker('slow', workerMeta(['vast']));
    await room.worker('fast', workerMeta(['vast']));
    await room.client('c');
    const [a] = assigned(await room.ask('c', 'first', { required_storage: 'vast' }));
    const [b] = assigned(await room.ask('c', 'second', { required_storage: 'vast' }));
    assert.deepEqual([a?.worker, b?.worker], ['slow', 'fast']);
    assert.ok(a && b);
    await room.ask('c', 'third', { required_storage: 'vast' });
    room.now += TTL - 1;
    assert.deepEqual((await room.routing.expireReservation(room.roomId, a.reservation, room.params())).events, [], 'not before its time');
    room.now += 1;
    const expired = await room.routing.expireReservation(room.roomId, a.reservation, room.params());
    // "slow" is free again but excluded for "first": it serves "third"; "first" waits ahead of everyone.
    assert.deepEqual(assigned(expired).map((x) => [x.request, x.worker]), [['third', 'slow']]);
    assert.deepEqual(await queueIds(room), ['first']);
    const head = (await room.routing.routingSnapshot(room.roomId)).queue[0];
    assert.deepEqual(head?.excluded, ['slow']);
    assert.deepEqual(head?.reassigned_from, { peer_id: 'slow', reason: 'claim_timeout' });
    const freed = await room.routing.releaseReservation(room.roomId, b.reservation, 'fast', room.params());
    const [again] = freed.events;
    assert.ok(again?.kind === 'assigned');
    assert.equal(again.reservation.request.request_id, 'first');
    assert.equal(again.reservation.worker_peer_id, 'fast');
    assert.deepEqual(again.reservation.request.reassigned_from, { peer_id: 'slow', reason: 'claim_timeout' });
  });

  test(`${name} routing: an expired reservation with no other possible worker fails RESERVATION_EXPIRED`, async (t) => {
    const room = await openRoom(factory, t);
    await room.worker('only', workerMeta(['vast']));
    await room.client('c');
    const [a] = assigned(await room.ask('c', 'r', { required_storage: 'vast' }));
    assert.ok(a);
    room.now += TTL;
    assert.deepEqual(failed(await room.routing.expireReservation(room.roomId, a.reservation, room.params())), [{ request: 'r', code: 'RESERVATION_EXPIRED' }]);
    const snap = await room.routing.routingSnapshot(room.roomId);
    assert.deepEqual([snap.queue.length, snap.reservations.length], [0, 0]);
    // Pinned to a worker that let it down: same.
    await room.worker('other', workerMeta(['vast']));
    const [p] = assigned(await room.ask('c', 'pinned', { required_storage: 'vast', worker: 'only' }));
    assert.equal(p?.worker, 'only');
    room.now += TTL;
    assert.deepEqual(failed(await room.routing.expireReservation(room.roomId, (p as { reservation: string }).reservation, room.params())), [
      { request: 'pinned', code: 'RESERVATION_EXPIRED' },
    ]);
  });

  test(`${name} routing: queue deadlines`, async (t) => {
    const room = await openRoom(factory, t);
    await room.worker('w', workerMeta(['vast'], {}, 'busy'));
    await room.client('c');
    assert.deepEqual(failed(await room.ask('c', 'no-wait', {}, room.now)), [{ request: 'no-wait', code: 'QUEUE_TIMEOUT' }], 'a zero timeout fails at once');
    await room.ask('c', 'short', {}, room.now + 100);
    await room.ask('c', 'long', {}, room.now + 10_000);
    assert.deepEqual((await room.routing.expireQueuedRequest(room.roomId, 'c', 'short', room.params())).events, [], 'not before its deadline');
    room.now += 100;
    assert.deepEqual(failed(await room.routing.expireQueuedRequest(room.roomId, 'c', 'short', room.params())), [{ request: 'short', code: 'QUEUE_TIMEOUT' }]);
    assert.deepEqual(await queueIds(room), ['long']);
    // A drain after the deadline fails the request rather than serving it late.
    room.now += 10_000;
    await room.store.setMetadata('w', workerMeta(['vast']));
    assert.deepEqual(failed(await room.routing.drainRoutingQueue(room.roomId, room.params())), [{ request: 'long', code: 'QUEUE_TIMEOUT' }]);
  });

  test(`${name} routing: a departing worker's pending jobs are re-offered; a departing client's requests go`, async (t) => {
    const room = await openRoom(factory, t);
    await room.worker('leaving', workerMeta(['vast']));
    await room.worker('staying', workerMeta(['vast']));
    await room.client('c');
    await room.client('gone');
    const [a] = assigned(await room.ask('c', 'r1', { required_storage: 'vast' }));
    const [b] = assigned(await room.ask('gone', 'g1', { required_storage: 'vast' }));
    assert.deepEqual([a?.worker, b?.worker], ['leaving', 'staying']);
    await room.ask('gone', 'g2', { required_storage: 'vast' });
    await room.ask('c', 'r2', { required_storage: 'vast' });
    await room.store.removePeer('gone');
    const afterClient = await room.routing.removeRoutingPeer('gone', room.roomId, room.params());
    assert.deepEqual(assigned(afterClient).map((x) => [x.request, x.worker]), [['r2', 'staying']], 'its pending slot went to the next in line');
    assert.deepEqual(await queueIds(room), []);
    await room.ask('c', 'r3', { required_storage: 'vast' });
    await room.store.removePeer('leaving');
    const afterWorker = await room.routing.removeRoutingPeer('leaving', room.roomId, room.params());
    assert.deepEqual(afterWorker.events, [], 'no free worker yet');
    assert.deepEqual(await queueIds(room), ['r1', 'r3'], 'the returning request keeps its place ahead of later arrivals');
    const [back] = (await room.routing.routingSnapshot(room.roomId)).queue;
    assert.equal(back?.request_id, 'r1');
    assert.deepEqual(back?.reassigned_from, { peer_id: 'leaving', reason: 'worker_left' });
    await room.worker('newcomer', workerMeta(['vast']));
    assert.deepEqual(assigned(await room.routing.drainRoutingQueue(room.roomId, room.params())).map((x) => [x.request, x.worker]), [['r1', 'newcomer']]);
  });

  test(`${name} routing: snapshots are copies and records cannot be changed from outside`, async (t) => {
    const room = await openRoom(factory, t);
    await room.worker('w', workerMeta(['vast'], {}, 'busy'));
    await room.client('c');
    await room.ask('c', 'r1', {});
    const snap = await room.routing.routingSnapshot(room.roomId);
    const head = snap.queue[0];
    assert.ok(head);
    (snap.queue as unknown[]).length = 0;
    assert.deepEqual(await queueIds(room), ['r1']);
    assert.throws(() => {
      (head as { request_id: string }).request_id = 'changed';
    }, TypeError);
    assert.deepEqual(await queueIds(room), ['r1']);
  });

  test(`${name} routing: operations issued together are decided as if one by one, in call order (group commit)`, async (t) => {
    const room = await openRoom(factory, t);
    await room.worker('a', workerMeta(['vast']));
    await room.worker('b', workerMeta(['vast']));
    await room.client('c');
    await room.client('d');
    // Seven requests at once: the first two are served in order, the rest queue in call order,
    // each told its place; a duplicate id is refused without changing anything.
    const asks = await Promise.all([
      room.ask('c', 'r1', { required_storage: 'vast' }),
      room.ask('d', 'r2', { required_storage: 'vast' }),
      room.ask('c', 'r3', { required_storage: 'vast' }),
      room.ask('c', 'r3', { required_storage: 'vast' }),
      room.ask('d', 'r4', { required_storage: 'vast' }),
      room.ask('c', 'r5', { required_storage: 'scratch', worker: 'a' }),
      room.ask('d', 'r6', { required_storage: 'vast' }),
    ]);
    assert.deepEqual(
      asks.slice(0, 2).map((o) => assigned(o).map((x) => [x.request, x.worker])),
      [[['r1', 'a']], [['r2', 'b']]],
    );
    assert.equal(asks[3]?.rejected?.kind, 'duplicate');
    assert.deepEqual(failed(asks[5] as RoutingOutcome).map((f) => f.code), ['NO_MATCHING_WORKER'], 'a request no peer can serve fails at once');
    assert.deepEqual(await queueIds(room), ['r3', 'r4', 'r6']);
    const places = [asks[2], asks[4], asks[6]].map((o) => (o as { queued?: { facts: { position: number } } }).queued?.facts.position);
    assert.deepEqual(places, [1, 2, 3], 'each queued request learns its place from the update that queued it');
    // A release and a new request together: the release's drain serves the head of the queue first.
    const r1 = assigned(asks[0] as RoutingOutcome)[0] as { reservation: string };
    const [released, late] = await Promise.all([room.routing.releaseReservation(room.roomId, r1.reservation, 'a', room.params()), room.ask('c', 'r7', { required_storage: 'vast' })]);
    assert.deepEqual(assigned(released).map((x) => [x.request, x.worker]), [['r3', 'a']]);
    assert.deepEqual(assigned(late), []);
    assert.deepEqual(await queueIds(room), ['r4', 'r6', 'r7']);
  });
}
