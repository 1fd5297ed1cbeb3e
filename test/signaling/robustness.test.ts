/**
 * The server's error paths found in review (issue 13) and its limits: each ends in a clear error
 * for that one peer and the server stays up. Every test here failed before its fix.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Logger } from '../../src/log.js';
import type { BusMessage, MessageBus } from '../../src/signaling/bus.js';
import { createMemoryBus } from '../../src/signaling/buses/memory.js';
import { startSignalingServer } from '../../src/signaling/server.js';
import { StoreUnavailableError, type SignalingStore } from '../../src/signaling/store.js';
import { createMemoryStore } from '../../src/signaling/stores/memory.js';
import { openPeer, registerPeer, waitFor, workerMetadata, type Msg, type TestPeer } from '../helpers/ws-peer.js';
import { startHarness } from './harness.js';

/** A memory store with some methods replaced. */
function storeWith(overrides: Partial<SignalingStore>, base: SignalingStore = createMemoryStore()): SignalingStore {
  return new Proxy(base, {
    get(target, key: string) {
      const own = (overrides as Record<string, unknown>)[key];
      if (own !== undefined) return own;
      const v = (target as unknown as Record<string, unknown>)[key];
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

test('a store failure while a peer registers undoes the registration: STORE_UNAVAILABLE, socket closed 1013, the id free again', async (t) => {
  const base = createMemoryStore();
  let failListing = false;
  const store = storeWith(
    {
      listPeers: async (roomId: string) => {
        if (failListing) {
          failListing = false;
          throw new StoreUnavailableError('redis went away');
        }
        return base.listPeers(roomId);
      },
    },
    base,
  );
  const h = await startHarness(t, { store });
  t.after(() => base.close());
  const watcher = await h.join({ peer_id: 'watcher' });
  failListing = true;
  const peer = await h.open();
  peer.send({ type: 'register', room_id: h.room.room_id, token: h.room.token, role: 'worker', peer_id: 'p', metadata: {} });
  const err = await peer.next<Msg & { code: string }>('error');
  assert.equal(err.code, 'STORE_UNAVAILABLE');
  assert.equal((await peer.closed).code, 1013, 'closed: nothing is held for it any more');
  assert.equal(await base.getPeer('p'), undefined, 'not left in the store');
  const again = await h.join({ peer_id: 'p' });
  assert.equal(again.peerId, 'p', 'the id is free again');
  await watcher.barrier();
  const peers = h.server.metrics().peers;
  assert.equal(peers.worker + peers.client, 2, 'the watcher and the new p, nobody else');
});

test('a failed publish does not keep later outcomes from their messages, and every reservation still expires', async (t) => {
  const store = createMemoryStore();
  const inner = createMemoryBus();
  const failing: MessageBus = {
    publish: (channel: string, m: BusMessage) => (channel === 'peer:c1' && m.frame.includes('worker_assigned') ? Promise.reject(new Error('publish failed')) : inner.publish(channel, m)),
    subscribe: (c, h) => inner.subscribe(c, h),
    settled: () => inner.settled(),
    close: () => inner.close(),
  };
  const a = await startSignalingServer({ port: 0, store, bus: failing, nodeId: 'a', reservationTimeoutMs: 300 });
  const b = await startSignalingServer({ port: 0, store, bus: failing, nodeId: 'b', reservationTimeoutMs: 300 });
  const peers: TestPeer[] = [];
  t.after(async () => {
    await Promise.all(peers.map((p) => p.close()));
    await a.close();
    await b.close();
    await store.close();
  });
  const { room_id, token } = await a.createRoom();
  const room = { room_id, token };
  const w = await registerPeer(a.wsUrl, { ...room, role: 'worker', peer_id: 'w', metadata: workerMetadata(['vast'], { status: 'busy', capabilities: { storage_backends: ['vast'], job_types: ['train'], max_concurrent_jobs: 2 } }) });
  const c1 = await registerPeer(b.wsUrl, { ...room, role: 'client', peer_id: 'c1' });
  const c2 = await registerPeer(b.wsUrl, { ...room, role: 'client', peer_id: 'c2' });
  peers.push(w, c1, c2);
  c1.send({ type: 'request_worker', request_id: 'r1', job_type: 'train', required_storage: 'vast' });
  await c1.next('queue_position');
  c2.send({ type: 'request_worker', request_id: 'r2', job_type: 'train', required_storage: 'vast' });
  await c2.next('queue_position');
  // The worker turns available on A: A's router assigns both; telling c1 fails.
  w.send({ type: 'update_metadata', metadata: workerMetadata(['vast'], { capabilities: { storage_backends: ['vast'], job_types: ['train'], max_concurrent_jobs: 2 } }) });
  const toC2 = await c2.next<Msg & { reservation_id: string }>('worker_assigned');
  assert.match(toC2.reservation_id, /^rsv-/);
  // Nobody claims: both reservations run out, so the worker's slots come back.
  await waitFor(
    async () => {
      w.send({ type: 'get_room_status', request_id: 's' });
      const status = await w.next<Msg & { workers: { slots: { pending: number } }[] }>('room_status');
      return status.workers[0]?.slots.pending === 0;
    },
    20_000,
    'both unclaimed reservations to expire',
  );
});

test('a throw where no handler expects it (here: the error log itself) closes only that peer; the process stays up', async (t) => {
  const rejections: unknown[] = [];
  const onRejection = (err: unknown): void => {
    rejections.push(err);
  };
  process.on('unhandledRejection', onRejection);
  t.after(() => process.off('unhandledRejection', onRejection));
  const broken = {
    level: 'info',
    info() {},
    warn() {},
    debug() {},
    trace() {},
    fatal() {},
    error() {
      throw new Error('log destination failed (disk full)');
    },
    child() {
      return broken;
    },
  } as unknown as Logger;
  const store = storeWith({
    getRoom: async () => {
      throw new Error('unexpected store bug');
    },
  });
  const h = await startSignalingServer({ port: 0, store, logger: broken });
  t.after(() => h.close());
  const peer = await openPeer(h.wsUrl);
  t.after(() => peer.close());
  peer.send({ type: 'register', room_id: 'room', token: 'x', role: 'worker', metadata: {} });
  const closed = await peer.closed;
  assert.equal(closed.code, 1011);
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(rejections, [], 'nothing escaped as an unhandled rejection (which ends a Node process)');
  assert.equal((await fetch(`${h.url}/health`)).status, 200, 'the server still answers');
  const other = await openPeer(h.wsUrl);
  t.after(() => other.close());
  other.send({ type: 'discover_peers', filters: {} });
  assert.equal((await other.next<Msg & { code: string }>('error')).code, 'NOT_REGISTERED', 'and still handles other peers');
});

test('POST /rooms is limited per client address: 429 RATE_LIMITED with Retry-After; other addresses (behind a trusted proxy) are not held up', async (t) => {
  const h = await startHarness(t, { roomCreateLimit: { burst: 2, perHour: 1 }, trustProxy: true });
  const post = (from: string): Promise<Response> => fetch(`${h.server.url}/rooms`, { method: 'POST', headers: { 'X-Forwarded-For': `203.0.113.9, ${from}` } });
  assert.equal((await post('198.51.100.1')).status, 201);
  assert.equal((await post('198.51.100.1')).status, 201);
  const refused = await post('198.51.100.1');
  assert.equal(refused.status, 429);
  const retry = Number(refused.headers.get('retry-after'));
  assert.ok(retry > 0 && retry <= 3600, `Retry-After ${retry}`);
  const body = (await refused.json()) as { error: { code: string; message: string } };
  assert.equal(body.error.code, 'RATE_LIMITED');
  assert.match(body.error.message, /198\.51\.100\.1/);
  assert.equal((await post('198.51.100.2')).status, 201, 'another address still may');
  assert.equal(h.server.metrics().errors.RATE_LIMITED, 1);
});

test('peers per room are limited: ROOM_FULL and close 4029; a place freed is taken again', async (t) => {
  const h = await startHarness(t, { maxPeersPerRoom: 2 });
  const first = await h.join({ peer_id: 'one' });
  await h.join({ peer_id: 'two' });
  const third = await h.open();
  third.send({ type: 'register', room_id: h.room.room_id, token: h.room.token, role: 'client', peer_id: 'three', metadata: {} });
  const err = await third.next<Msg & { code: string; details: { limit: number } }>('error');
  assert.equal(err.code, 'ROOM_FULL');
  assert.equal(err.details.limit, 2);
  assert.equal((await third.closed).code, 4029);
  await first.close();
  await waitFor(() => h.server.metrics().peers.client === 1, 5000, 'the first peer to be gone');
  assert.equal((await h.join({ peer_id: 'three' })).peerId, 'three');
});

test('job_peer_left: each side of a claimed reservation hears when the other leaves', async (t) => {
  const h = await startHarness(t);
  const worker = await h.join({ role: 'worker', peer_id: 'w', metadata: workerMetadata(['vast'], { capabilities: { storage_backends: ['vast'], job_types: ['train'], max_concurrent_jobs: 2 } }) });
  const client = await h.join({ role: 'client', peer_id: 'c' });
  const other = await h.join({ role: 'client', peer_id: 'd' });
  const claim = async (c: TestPeer, id: string): Promise<string> => {
    c.send({ type: 'request_worker', request_id: id, job_type: 'train', required_storage: 'vast' });
    const a = await c.next<Msg & { reservation_id: string }>('worker_assigned', (m) => m.request_id === id);
    worker.send({ type: 'claim_reservation', reservation_id: a.reservation_id });
    await worker.next('reservation_claimed', (m) => m.reservation_id === a.reservation_id);
    return a.reservation_id;
  };
  const rsvC = await claim(client, 'job-c');
  const rsvD = await claim(other, 'job-d');
  // A pending (unclaimed) request of the same client is not a running job: nobody is told about it.
  await client.close();
  assert.deepEqual(await worker.next('job_peer_left'), { type: 'job_peer_left', reservation_id: rsvC, request_id: 'job-c', peer_id: 'c', role: 'client', reason: 'disconnected' });
  await worker.close();
  assert.deepEqual(await other.next('job_peer_left'), { type: 'job_peer_left', reservation_id: rsvD, request_id: 'job-d', peer_id: 'w', role: 'worker', reason: 'disconnected' });
});

test('DELETE /rooms/<id> with the token: the room is gone for good (ROOM_DELETED, not ROOM_NOT_FOUND), its peers are told and closed', async (t) => {
  const h = await startHarness(t);
  const url = `${h.server.url}/rooms/${h.room.room_id}`;
  const member = await h.join({ peer_id: 'member' });
  assert.equal((await fetch(url, { method: 'DELETE' })).status, 401, 'no token');
  const wrong = await fetch(url, { method: 'DELETE', headers: { Authorization: 'Bearer nope' } });
  assert.equal(wrong.status, 403);
  assert.equal(((await wrong.json()) as { error: { code: string } }).error.code, 'INVALID_TOKEN');
  assert.equal((await fetch(`${h.server.url}/rooms/unknown`, { method: 'DELETE', headers: { Authorization: 'Bearer x' } })).status, 404);
  const ok = await fetch(url, { method: 'DELETE', headers: { Authorization: `Bearer ${h.room.token}` } });
  assert.equal(ok.status, 200);
  assert.deepEqual(await ok.json(), { room_id: h.room.room_id, deleted: true });
  assert.equal((await member.next<Msg & { code: string }>('error')).code, 'ROOM_DELETED');
  assert.deepEqual(await member.closed, { code: 4004, reason: 'ROOM_DELETED' });
  // Coming back: told the room was deleted (final), which differs from a room never known here.
  const back = await h.open();
  back.send({ type: 'register', room_id: h.room.room_id, token: h.room.token, role: 'worker', metadata: {} });
  assert.equal((await back.next<Msg & { code: string }>('error')).code, 'ROOM_DELETED');
  const stranger = await h.open();
  stranger.send({ type: 'register', room_id: 'neverexisted', token: h.room.token, role: 'worker', metadata: {} });
  assert.equal((await stranger.next<Msg & { code: string }>('error')).code, 'ROOM_NOT_FOUND');
  assert.equal((await fetch(url, { method: 'DELETE', headers: { Authorization: `Bearer ${h.room.token}` } })).status, 410, 'deleting again: gone');
});
