/** The routing client on real SignalingClients against a real server on loopback. */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { Metadata } from '../../src/protocol/signaling.js';
import { startSignalingServer, type SignalingServer, type SignalingServerOptions } from '../../src/signaling/server.js';
import { createMemoryStore } from '../../src/signaling/stores/memory.js';
import { getRoomStatus, requestWorker, RoutingError, type RoutingUpdate, type WorkerRequest } from '../../src/transport/routing-client.js';
import { SignalingClient, type SignalingClientOptions } from '../../src/transport/signaling-client.js';
import type { SleapRtcError } from '../../src/errors.js';

interface Room {
  server: SignalingServer;
  base: Pick<SignalingClientOptions, 'serverUrl' | 'roomId' | 'token'>;
  join(opts: Partial<SignalingClientOptions>): Promise<SignalingClient>;
}

async function room(t: TestContext, opts: SignalingServerOptions = {}): Promise<Room> {
  const server = await startSignalingServer({ host: '127.0.0.1', port: 0, ...opts });
  t.after(() => server.close());
  const r = await server.createRoom();
  const base = { serverUrl: server.url, roomId: r.room_id, token: r.token };
  return {
    server,
    base,
    async join(o) {
      const c = await SignalingClient.connect({ ...base, role: 'client', reconnectInitialDelayMs: 20, reconnectMaxDelayMs: 200, ...o });
      t.after(() => c.close());
      return c;
    },
  };
}

function meta(name: string, backends: string[], status: Metadata['status'] = 'available'): Metadata {
  return { name, status, capabilities: { storage_backends: backends, job_types: ['train', 'track'], max_concurrent_jobs: 1 } };
}

/** Three workers: `vast`; `vast` and `scratch`; none. */
async function threeWorkers(r: Room): Promise<{ vast: SignalingClient; both: SignalingClient; none: SignalingClient }> {
  const vast = await r.join({ role: 'worker', peerId: 'w-vast', metadata: meta('vast-box', ['vast']) });
  const both = await r.join({ role: 'worker', peerId: 'w-both', metadata: meta('both-box', ['vast', 'scratch']) });
  const none = await r.join({ role: 'worker', peerId: 'w-none', metadata: meta('plain-box', []) });
  return { vast, both, none };
}

/** Collects every update of a request. */
function record(req: WorkerRequest): RoutingUpdate[] {
  const seen: RoutingUpdate[] = [];
  req.on('update', (u) => seen.push(u));
  return seen;
}

function nextUpdate(req: WorkerRequest, where: (u: RoutingUpdate) => boolean = () => true): Promise<RoutingUpdate> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no matching update within 5 s')), 5000);
    const on = (u: RoutingUpdate): void => {
      if (!where(u)) return;
      clearTimeout(timer);
      req.off('update', on);
      resolve(u);
    };
    req.on('update', on);
  });
}

async function until(condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met within 5 s');
    await new Promise((res) => setTimeout(res, 5));
  }
}

test('routing client: a storage job is assigned to a worker with the backend; a transfer job to any', async (t) => {
  const r = await room(t);
  await threeWorkers(r);
  const client = await r.join({});
  const first = await requestWorker(client, { jobType: 'train', requiredStorage: 'scratch' }).assigned();
  assert.equal(first.worker.peer_id, 'w-both');
  assert.equal(first.worker.metadata.name, 'both-box');
  assert.match(first.reservationId, /^rsv-/);
  assert.equal(first.claimTimeoutMs, 30_000);
  const transfer = await requestWorker(client, { jobType: 'track' }).assigned();
  assert.equal(transfer.worker.peer_id, 'w-vast', 'a transfer job takes the least recently assigned worker of all');
  const nullStorage = await requestWorker(client, { jobType: 'track', requiredStorage: null }).assigned();
  assert.equal(nullStorage.worker.peer_id, 'w-none');
});

test('routing client: queued, with positions, then assigned when the worker releases', async (t) => {
  const r = await room(t);
  const { vast, both } = await threeWorkers(r);
  const holder = await r.join({});
  const h1 = requestWorker(holder, { jobType: 'train', requiredStorage: 'vast' });
  const h2 = requestWorker(holder, { jobType: 'train', requiredStorage: 'vast' });
  const [a1, a2] = await Promise.all([h1.assigned(), h2.assigned()]);
  assert.deepEqual([a1.worker.peer_id, a2.worker.peer_id].sort(), ['w-both', 'w-vast']);

  const client = await r.join({});
  const req = requestWorker(client, { jobType: 'train', requiredStorage: 'vast' });
  const seen: RoutingUpdate[] = [];
  const iterating = (async () => {
    for await (const u of req) {
      seen.push(u);
      if (u.type === 'assigned') return u;
    }
    return undefined;
  })();
  await nextUpdate(req, (u) => u.type === 'queued');
  await until(() => seen.length > 0);
  assert.deepEqual(seen[0], { type: 'queued', position: 1, queueLength: 1, matchingWorkers: 2 });
  assert.equal(req.state, 'queued');

  // The worker holding a1 claims it, finishes, releases: the queued request gets that worker.
  const worker = a1.worker.peer_id === 'w-vast' ? vast : both;
  worker.send({ type: 'claim_reservation', reservation_id: a1.reservationId });
  worker.send({ type: 'release_reservation', reservation_id: a1.reservationId });
  const got = await iterating;
  assert.equal(got?.type, 'assigned');
  assert.equal(got?.worker.peer_id, a1.worker.peer_id);
  assert.equal(req.assignment?.reservationId, got?.reservationId);
  await req.release();
  assert.equal(req.state, 'ended');
  await h2.release();
  // Both slots are free again.
  const status = await getRoomStatus(client);
  assert.deepEqual(
    status.workers.map((w) => [w.peer_id, w.slots.free]),
    [
      ['w-vast', 1],
      ['w-both', 1],
      ['w-none', 1],
    ],
  );
});

test('routing client: NO_MATCHING_WORKER arrives as a RoutingError with the available backends', async (t) => {
  const r = await room(t);
  await threeWorkers(r);
  const client = await r.join({});
  const req = requestWorker(client, { jobType: 'train', requiredStorage: 'nfs' });
  const err = (await req.assigned().catch((e: unknown) => e)) as RoutingError;
  assert.ok(err instanceof RoutingError);
  assert.equal(err.code, 'NO_MATCHING_WORKER');
  assert.equal(err.reason, 'no_backend');
  assert.deepEqual(err.availableBackends, ['scratch', 'vast']);
  assert.equal(req.state, 'failed');
  // The iterator ends with the same error.
  await assert.rejects(
    (async () => {
      for await (const _ of req) void _;
    })(),
    (e: SleapRtcError) => e.code === 'NO_MATCHING_WORKER',
  );
  // The fallback the job layer does: the same job as a transfer job.
  const fallback = await requestWorker(client, { jobType: 'train' }).assigned();
  assert.equal(fallback.worker.peer_id, 'w-vast');
});

test('routing client: cancel leaves the queue and those behind move up; abort cancels too', async (t) => {
  const r = await room(t);
  await threeWorkers(r);
  const holder = await r.join({});
  await requestWorker(holder, { jobType: 'train', requiredStorage: 'scratch' }).assigned();
  const c1 = await r.join({});
  const c2 = await r.join({});
  const c3 = await r.join({});
  const q1 = requestWorker(c1, { jobType: 'train', requiredStorage: 'scratch' });
  await nextUpdate(q1);
  const q2 = requestWorker(c2, { jobType: 'train', requiredStorage: 'scratch' });
  await nextUpdate(q2);
  const abort = new AbortController();
  const q3 = requestWorker(c3, { jobType: 'train', requiredStorage: 'scratch' }, { signal: abort.signal });
  const third = await nextUpdate(q3);
  assert.equal(third.type === 'queued' && third.position, 3);
  const seen2 = record(q2);
  const seen3 = record(q3);
  await q1.cancel();
  assert.equal(q1.state, 'ended');
  await assert.rejects(q1.assigned(), (e: SleapRtcError) => e.code === 'REQUEST_CANCELLED');
  await nextUpdate(q3, (u) => u.type === 'queued' && u.position === 2);
  assert.ok(seen2.some((u) => u.type === 'queued' && u.position === 1));
  const endedEvent = once(q3, 'ended');
  abort.abort();
  await endedEvent;
  const status = await getRoomStatus(c2);
  assert.equal(status.queue_length, 1, 'only q2 is left');
  assert.ok(seen3.every((u) => u.type === 'queued'));
  await q1.cancel(); // twice is fine
});

test('routing client: a reserved worker that leaves or never claims -> a new assignment for the same request', async (t) => {
  const r = await room(t, { reservationTimeoutMs: 200 });
  const { vast } = await threeWorkers(r);
  const client = await r.join({});
  const req = requestWorker(client, { jobType: 'train', requiredStorage: 'vast' });
  const first = await req.assigned();
  assert.equal(first.worker.peer_id, 'w-vast');
  const second = nextUpdate(req, (u) => u.type === 'assigned');
  await vast.close();
  const moved = await second;
  assert.equal(moved.type === 'assigned' && moved.worker.peer_id, 'w-both');
  assert.deepEqual(moved.type === 'assigned' && moved.reassignedFrom, { peerId: 'w-vast', reason: 'worker_left' });
  // w-both never claims: no other vast worker is left, so the request fails.
  const err = (await new Promise((resolve) => req.once('failed', resolve))) as SleapRtcError;
  assert.equal(err.code, 'RESERVATION_EXPIRED');
  assert.equal(req.assignment?.worker.peer_id, 'w-both', 'the last assignment stays readable');
});

test('routing client: queue timeout and a pinned worker', async (t) => {
  const r = await room(t);
  await threeWorkers(r);
  const client = await r.join({});
  const pinned = await requestWorker(client, { jobType: 'train', worker: 'plain-box' }).assigned();
  assert.equal(pinned.worker.peer_id, 'w-none');
  const waiting = requestWorker(client, { jobType: 'train', worker: 'w-none', queueTimeoutS: 0.2 });
  const err = (await waiting.assigned().catch((e: unknown) => e)) as SleapRtcError;
  assert.equal(err.code, 'QUEUE_TIMEOUT');
  const cannot = (await requestWorker(client, { jobType: 'train', requiredStorage: 'scratch', worker: 'vast-box' }).assigned().catch((e: unknown) => e)) as RoutingError;
  assert.equal(cannot.reason, 'worker_cannot_serve');
});

test('routing client: a waiting request is sent again after the signaling connection comes back', async (t) => {
  const store = createMemoryStore();
  t.after(() => store.close());
  const first = await startSignalingServer({ host: '127.0.0.1', port: 0, store });
  const port = first.port;
  const created = await first.createRoom();
  const base = { serverUrl: first.url, roomId: created.room_id, token: created.token, reconnectInitialDelayMs: 20, reconnectMaxDelayMs: 200 };
  const worker = await SignalingClient.connect({ ...base, role: 'worker', peerId: 'w', metadata: meta('w', ['vast'], 'busy') });
  const client = await SignalingClient.connect({ ...base, role: 'client' });
  t.after(async () => {
    await client.close();
    await worker.close();
  });
  const req = requestWorker(client, { jobType: 'train', requiredStorage: 'vast' });
  await nextUpdate(req, (u) => u.type === 'queued');
  const back = once(client, 'reconnected');
  await first.close();
  const second = await startSignalingServer({ host: '127.0.0.1', port, store });
  t.after(() => second.close());
  await back;
  // The new server never saw the request until the client sent it again: it is queued there.
  await nextUpdate(req, (u) => u.type === 'queued');
  await until(() => worker.state === 'open');
  worker.updateMetadata(meta('w', ['vast']));
  const got = await req.assigned();
  assert.equal(got.worker.peer_id, 'w');
});
