/**
 * The Redis store keeps routing state as changes (a sorted-set queue, hashes, a change log that
 * other processes catch up from: redis-routing.ts). These tests hold it to the memory store, which
 * keeps the policy's state as one value: random sequences of routing operations, sent in turn
 * through two Redis store instances on one real redis-server (so every second operation reads the
 * other's change from the log), must give the same decisions and the same state as the memory
 * store, and a third instance that reads the whole state at the end must see it too. Then two
 * instances routing one room at the same time (compare-and-set conflicts) must never book a slot
 * twice or lose a request.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { Metadata } from '../../../src/protocol/signaling.js';
import { RoutingOps } from '../../../src/signaling/routing-ops.js';
import type { RoutingOutcome, RoutingParams } from '../../../src/signaling/routing-store.js';
import type { SignalingStore } from '../../../src/signaling/store.js';
import { createMemoryStore } from '../../../src/signaling/stores/memory.js';
import { openRedisStore } from '../../../src/signaling/stores/redis.js';
import { startRedisServer, type RedisServer } from '../redis-server.js';

let redis: RedisServer;
before(async () => {
  redis = await startRedisServer();
});
after(async () => {
  await redis.stop();
});

const BACKENDS = ['vast', 'scratch'] as const;
const LIMITS = { max_requests_per_client: 6, max_queue_per_room: 12 };
const TTL = 1_000;

function workerMeta(backends: readonly string[], slots: number): Metadata {
  return { status: 'available', capabilities: { storage_backends: [...backends], job_types: ['train', 'track'], max_concurrent_jobs: slots } };
}

type Op =
  | { kind: 'ask'; client: number; backend: number; deadline: boolean }
  | { kind: 'claim'; pick: number }
  | { kind: 'release'; pick: number; byClient: boolean }
  | { kind: 'cancel'; client: number; pick: number }
  | { kind: 'tick'; ms: number }
  | { kind: 'join'; backend: number; slots: number }
  | { kind: 'leave'; pick: number }
  | { kind: 'retag'; pick: number; backend: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('ask' as const), client: fc.nat(2), backend: fc.nat(2), deadline: fc.boolean() }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('claim' as const), pick: fc.nat(20) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('release' as const), pick: fc.nat(20), byClient: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('cancel' as const), client: fc.nat(2), pick: fc.nat(20) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('tick' as const), ms: fc.integer({ min: 100, max: 1_500 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('join' as const), backend: fc.nat(2), slots: fc.integer({ min: 1, max: 2 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('leave' as const), pick: fc.nat(20) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('retag' as const), pick: fc.nat(20), backend: fc.nat(2) }) },
);

function backendsOf(i: number): string[] {
  return i === 2 ? [...BACKENDS] : [BACKENDS[i] as string];
}

/** One side of the comparison: the stores it writes through (in turn) and its own view of names. */
class Side {
  now = 1_000_000;
  private turn = 0;
  private readonly routers: RoutingOps[];
  /** reservation id -> stable name (reservation ids are random per store). */
  private readonly names = new Map<string, string>();
  private workers = 0;
  private asked = 0;

  /** `tag` prefixes peer ids (ids are unique across a store's rooms, and the Redis database outlives a run). */
  constructor(
    private readonly stores: SignalingStore[],
    readonly roomId: string,
    private readonly tag: string,
  ) {
    this.routers = stores.map((s) => new RoutingOps(s));
  }

  /** The store and router for the next operation (in turn). */
  private next(): { store: SignalingStore; ops: RoutingOps } {
    const i = this.turn++ % this.stores.length;
    return { store: this.stores[i] as SignalingStore, ops: this.routers[i] as RoutingOps };
  }

  private params(): RoutingParams {
    return { now_ms: this.now, reservation_ttl_ms: TTL };
  }

  private name(id: string): string {
    let n = this.names.get(id);
    if (n === undefined) {
      n = `rsv${this.names.size + 1}`;
      this.names.set(id, n);
    }
    return n;
  }

  /** Events with stable names, in order. */
  private summary(o: RoutingOutcome): unknown[] {
    return o.events.map((e) => {
      if (e.kind === 'assigned') return ['assigned', e.reservation.request.request_id, e.worker.peer_id, this.name(e.reservation.reservation_id), e.reservation.request.reassigned_from?.reason ?? null];
      if (e.kind === 'failed') return ['failed', e.request.request_id, e.failure.code];
      return ['partner_left', this.name(e.reservation.reservation_id), e.left_peer_id, e.notify_peer_id];
    });
  }

  async setUp(): Promise<void> {
    const store = this.stores[0] as SignalingStore;
    for (const c of [0, 1, 2]) await store.addPeer({ room_id: this.roomId, role: 'client', metadata: {}, node_id: 'n', preferred_id: `${this.tag}c${c}` });
    for (const b of [0, 1, 2]) await this.join(store, b, 1);
  }

  private async join(store: SignalingStore, backend: number, slots: number): Promise<void> {
    this.workers += 1;
    await store.addPeer({ room_id: this.roomId, role: 'worker', metadata: workerMeta(backendsOf(backend), slots), node_id: 'n', preferred_id: `${this.tag}w${this.workers}` });
  }

  /** Runs one operation; returns what a caller would see. */
  async run(op: Op): Promise<unknown> {
    const { store, ops } = this.next();
    const snap = await ops.routingSnapshot(this.roomId);
    const res = snap.reservations;
    const pickRes = (pick: number) => (res.length === 0 ? undefined : res[pick % res.length]);
    const workers = (await store.listPeers(this.roomId)).filter((p) => p.role === 'worker');
    const pickWorker = (pick: number) => (workers.length === 0 ? undefined : workers[pick % workers.length]);
    switch (op.kind) {
      case 'ask': {
        this.asked += 1;
        const out = await ops.routeRequest(
          {
            room_id: this.roomId,
            client_peer_id: `${this.tag}c${op.client}`,
            request_id: `q${this.asked}`,
            requirements: { job_type: 'train', required_storage: op.backend === 2 ? null : (BACKENDS[op.backend] as string) },
            requested_at_ms: this.now,
            deadline_ms: op.deadline ? this.now + 2_000 : null,
            wait_for_match: true,
          },
          { ...this.params(), ...LIMITS },
        );
        return ['ask', out.rejected?.kind ?? null, this.summary(out), out.queued?.facts ?? null];
      }
      case 'claim': {
        const r = pickRes(op.pick);
        if (r === undefined) return ['claim', null];
        const rec = await ops.claimReservation(this.roomId, r.reservation_id, r.worker_peer_id);
        return ['claim', rec === undefined ? null : [this.name(rec.reservation_id), rec.state]];
      }
      case 'release': {
        const r = pickRes(op.pick);
        if (r === undefined) return ['release', null];
        const by = op.byClient && r.client_peer_id !== null ? r.client_peer_id : r.worker_peer_id;
        const out = await ops.releaseReservation(this.roomId, r.reservation_id, by, this.params());
        return ['release', out.status, this.summary(out)];
      }
      case 'cancel': {
        const client = `${this.tag}c${op.client}`;
        const mine = [...snap.queue.filter((q) => q.client_peer_id === client).map((q) => q.request_id), ...res.filter((q) => q.client_peer_id === client).map((q) => q.request.request_id)];
        const id = mine.length === 0 ? 'none' : (mine[op.pick % mine.length] as string);
        const out = await ops.cancelRouteRequest(this.roomId, client, id, this.params());
        return ['cancel', out.status, this.summary(out)];
      }
      case 'tick': {
        this.now += op.ms;
        return ['tick', this.summary(await ops.expireDue(this.roomId, this.params()))];
      }
      case 'join': {
        await this.join(store, op.backend, op.slots);
        return ['join', this.summary(await ops.drainRoutingQueue(this.roomId, this.params()))];
      }
      case 'leave': {
        const w = pickWorker(op.pick);
        if (w === undefined) return ['leave', null];
        await store.removePeer(w.peer_id);
        return ['leave', w.peer_id, this.summary(await ops.removeRoutingPeer(w.peer_id, this.roomId, this.params()))];
      }
      case 'retag': {
        const w = pickWorker(op.pick);
        if (w === undefined) return ['retag', null];
        await store.setMetadata(w.peer_id, workerMeta(backendsOf(op.backend), 1));
        return ['retag', w.peer_id, this.summary(await ops.drainRoutingQueue(this.roomId, this.params()))];
      }
    }
  }

  /** The room's routing state with stable names, as `store` reads it. */
  async state(store: SignalingStore = this.stores[0] as SignalingStore): Promise<unknown> {
    const s = await store.readRouting(this.roomId);
    return {
      seq: s.seq,
      assignments: s.assignments,
      queue: s.queue,
      reservations: s.reservations.map((r) => ({ ...r, reservation_id: this.name(r.reservation_id) })),
      last_assigned: Object.fromEntries(Object.entries(s.last_assigned).sort(([a], [b]) => a.localeCompare(b))),
    };
  }
}

let rooms = 0;

/** A new room id, created in each store (records name their room, so both sides use one id). */
async function room(...stores: SignalingStore[]): Promise<string> {
  rooms += 1;
  const id = `prop-room-${rooms}`;
  for (const store of stores) await store.createRoom({ room_id: id, token_sha256: 'ab'.repeat(32), created_at_ms: Date.now(), idle_ttl_ms: 60_000 });
  return id;
}

test('redis store routing: random operation sequences through two instances decide and store exactly what the memory store does', async (t) => {
  const a = await openRedisStore({ url: redis.url });
  const b = await openRedisStore({ url: redis.url });
  t.after(async () => {
    await a.close();
    await b.close();
  });
  await fc.assert(
    fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 60 }), async (ops) => {
      const memory = createMemoryStore();
      try {
        const roomId = await room(memory, a);
        const tag = `p${rooms}-`;
        const expected = new Side([memory], roomId, tag);
        const actual = new Side([a, b], roomId, tag);
        await expected.setUp();
        await actual.setUp();
        for (const [i, op] of ops.entries()) {
          assert.deepEqual(await actual.run(op), await expected.run(op), `operation ${i} (${op.kind})`);
          assert.deepEqual(await actual.state(a), await expected.state(), `state after operation ${i}, instance a`);
          assert.deepEqual(await actual.state(b), await expected.state(), `state after operation ${i}, instance b`);
        }
        // A new instance has no copy: it reads the whole state (sorted set, hashes) at once.
        const fresh = await openRedisStore({ url: redis.url });
        try {
          assert.deepEqual(await actual.state(fresh), await expected.state(), 'state read whole by a new instance');
        } finally {
          await fresh.close();
        }
      } finally {
        await memory.close();
      }
    }),
    { numRuns: 40 },
  );
});

test('redis store routing: two instances routing one room at once never book a slot twice nor lose a request', async (t) => {
  const a = await openRedisStore({ url: redis.url });
  const b = await openRedisStore({ url: redis.url });
  t.after(async () => {
    await a.close();
    await b.close();
  });
  const roomId = await room(a);
  const workers = 6;
  for (let i = 0; i < workers; i++) await a.addPeer({ room_id: roomId, role: 'worker', metadata: workerMeta(['vast'], 1), node_id: 'n', preferred_id: `w${i}` });
  for (let i = 0; i < 4; i++) await b.addPeer({ room_id: roomId, role: 'client', metadata: {}, node_id: 'n', preferred_id: `c${i}` });
  const ops = [new RoutingOps(a), new RoutingOps(b)];
  const params = { now_ms: Date.now(), reservation_ttl_ms: 60_000 };
  const limits = { max_requests_per_client: 100, max_queue_per_room: 1_000 };
  const total = 120;
  // Every request at once, alternately through both instances: their updates of the room conflict.
  const outcomes = await Promise.all(
    Array.from({ length: total }, (_, i) =>
      (ops[i % 2] as RoutingOps).routeRequest(
        { room_id: roomId, client_peer_id: `c${i % 4}`, request_id: `q${i}`, requirements: { job_type: 'train', required_storage: 'vast' }, requested_at_ms: params.now_ms, deadline_ms: null },
        { ...params, ...limits },
      ),
    ),
  );
  const served = new Set<string>();
  let freed = 0;
  // Each served job is released at once, from both instances at the same time, until all are served.
  let wave = outcomes.flatMap((o) => o.events);
  while (wave.length > 0) {
    const next: Promise<RoutingOutcome>[] = [];
    for (const [i, e] of wave.entries()) {
      assert.equal(e.kind, 'assigned');
      if (e.kind !== 'assigned') continue;
      assert.ok(!served.has(e.reservation.request.request_id), `request ${e.reservation.request.request_id} served twice`);
      served.add(e.reservation.request.request_id);
      const snap = await (ops[0] as RoutingOps).routingSnapshot(roomId);
      const perWorker = new Map<string, number>();
      for (const r of snap.reservations) perWorker.set(r.worker_peer_id, (perWorker.get(r.worker_peer_id) ?? 0) + 1);
      for (const [w, n] of perWorker) assert.ok(n <= 1, `worker ${w} holds ${n} reservations with one slot`);
      next.push((ops[i % 2] as RoutingOps).releaseReservation(roomId, e.reservation.reservation_id, e.worker.peer_id, { ...params }));
    }
    const released = await Promise.all(next);
    freed += released.length;
    wave = released.flatMap((o) => o.events);
  }
  assert.equal(served.size, total, 'every request was served exactly once');
  assert.equal(freed, total);
  const end = await b.readRouting(roomId);
  assert.deepEqual([end.queue.length, end.reservations.length], [0, 0]);
});
