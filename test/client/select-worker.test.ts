/** Worker choice through the real server's routing: assignment, queue messages, reassignment, the fallback case. */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { isNoBackend, WorkerSelection } from '../../src/client/select-worker.js';
import type { Metadata } from '../../src/protocol/common.js';
import { startSignalingServer, type SignalingServerOptions } from '../../src/signaling/server.js';
import { SignalingClient, type SignalingClientOptions } from '../../src/transport/signaling-client.js';

async function room(t: TestContext, opts: SignalingServerOptions = {}): Promise<(o: Partial<SignalingClientOptions>) => Promise<SignalingClient>> {
  const server = await startSignalingServer({ host: '127.0.0.1', port: 0, ...opts });
  t.after(() => server.close());
  const r = await server.createRoom();
  return async (o) => {
    const c = await SignalingClient.connect({ serverUrl: server.url, roomId: r.room_id, token: r.token, role: 'client', ...o });
    t.after(() => c.close());
    return c;
  };
}

const meta = (name: string, backends: string[], status: Metadata['status'] = 'available'): Metadata => ({
  name,
  status,
  capabilities: { storage_backends: backends, job_types: ['train', 'track'], max_concurrent_jobs: 1 },
});

test('a shared job goes to a worker with its backend; the choice carries the reservation', async (t) => {
  const join = await room(t);
  await join({ role: 'worker', peerId: 'w-scratch', metadata: meta('scratch-box', ['scratch']) });
  await join({ role: 'worker', peerId: 'w-vast', metadata: meta('vast-box', ['vast']) });
  const client = await join({});
  const sel = new WorkerSelection(client, { jobType: 'train', requiredStorage: 'vast' });
  const choice = await sel.assigned();
  assert.equal(choice.peerId, 'w-vast');
  assert.equal(choice.name, 'vast-box');
  assert.match(choice.reservationId, /\S/);
  await sel.release();
  await sel.release();
});

test('while every matching worker is busy the client hears its queue position, and gets the worker when it frees', async (t) => {
  const join = await room(t);
  const worker = await join({ role: 'worker', peerId: 'w1', metadata: meta('gpu-1', ['vast'], 'busy') });
  const client = await join({});
  const heard: string[] = [];
  const sel = new WorkerSelection(client, { jobType: 'track', requiredStorage: 'vast', report: (m) => heard.push(m) });
  const assigned = sel.assigned();
  while (heard.length === 0) await new Promise((r) => setTimeout(r, 5));
  assert.deepEqual(heard, ["Waiting for a worker with backend 'vast': position 1 in the queue (1 worker can serve it, all busy)"]);
  worker.updateMetadata(meta('gpu-1', ['vast'], 'available'));
  assert.equal((await assigned).peerId, 'w1');
  await sel.release();
});

test('a worker that never claims its reservation is replaced: the client is told and follows', async (t) => {
  const join = await room(t, { reservationTimeoutMs: 150 });
  await join({ role: 'worker', peerId: 'slow', metadata: meta('slow', ['vast']) });
  // Busy for now, so the request has somewhere to wait once the slow worker's time is up.
  const fast = await join({ role: 'worker', peerId: 'fast', metadata: meta('fast', ['vast'], 'busy') });
  const client = await join({});
  const heard: string[] = [];
  const sel = new WorkerSelection(client, { jobType: 'train', requiredStorage: 'vast', report: (m) => heard.push(m) });
  const first = await sel.assigned();
  assert.equal(first.peerId, 'slow');
  const next = sel.nextReassignment(10_000);
  while (!heard.some((m) => m.startsWith('Waiting'))) await new Promise((r) => setTimeout(r, 5));
  fast.updateMetadata(meta('fast', ['vast']));
  const moved = await next;
  assert.equal(moved?.peerId, 'fast');
  assert.ok(heard.includes('Worker slow did not take the job in time; trying fast'), heard.join('\n'));
  await sel.release();
});

test('the fallback case is a missing backend, in the room or on the pinned worker; nothing else', async (t) => {
  const join = await room(t);
  await join({ role: 'worker', peerId: 'w-scratch', metadata: meta('scratch-box', ['scratch']) });
  const client = await join({});
  const reasons: [object, boolean][] = [
    [{ jobType: 'train', requiredStorage: 'vast' }, true],
    [{ jobType: 'train', requiredStorage: 'vast', worker: 'scratch-box' }, true],
    [{ jobType: 'train', requiredStorage: 'scratch', worker: 'nobody' }, false],
  ];
  for (const [opts, fallback] of reasons) {
    const err = await new WorkerSelection(client, opts as ConstructorParameters<typeof WorkerSelection>[1]).assigned().then(
      () => assert.fail('expected NO_MATCHING_WORKER'),
      (e: unknown) => e,
    );
    assert.equal(isNoBackend(err), fallback, JSON.stringify(opts));
  }
});

test('aborting while queued cancels the request with JOB_CANCELLED', async (t) => {
  const join = await room(t);
  await join({ role: 'worker', peerId: 'w1', metadata: meta('gpu-1', ['vast'], 'busy') });
  const client = await join({});
  const ac = new AbortController();
  const sel = new WorkerSelection(client, { jobType: 'train', signal: ac.signal, report: () => ac.abort() });
  await assert.rejects(sel.assigned(), (e: { code?: string }) => e.code === 'JOB_CANCELLED');
});
