/** Claiming and releasing routed jobs against the real server's router. */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type { Metadata } from '../../src/protocol/common.js';
import { startSignalingServer } from '../../src/signaling/server.js';
import { requestWorker } from '../../src/transport/routing-client.js';
import { SignalingClient } from '../../src/transport/signaling-client.js';
import { claimReservation, releaseReservation } from '../../src/worker/reservations.js';

const meta: Metadata = { name: 'w', status: 'available', capabilities: { storage_backends: ['vast'], job_types: ['train', 'track'], max_concurrent_jobs: 1 } };

async function setup(t: TestContext) {
  const server = await startSignalingServer({ host: '127.0.0.1', port: 0 });
  t.after(() => server.close());
  const room = await server.createRoom();
  const join = async (role: 'worker' | 'client', peerId: string): Promise<SignalingClient> => {
    const c = await SignalingClient.connect({ serverUrl: server.url, roomId: room.room_id, token: room.token, role, peerId, ...(role === 'worker' ? { metadata: meta } : {}) });
    t.after(() => c.close());
    return c;
  };
  return { join };
}

test('a reservation made for this client is claimed; the slot returns on release', async (t) => {
  const { join } = await setup(t);
  const worker = await join('worker', 'w');
  const client = await join('client', 'c1');
  const first = await requestWorker(client, { jobType: 'train', requiredStorage: 'vast' }).assigned();
  await claimReservation(worker, first.reservationId, 'c1');
  // Claimed: the worker's only slot is taken, so the next request waits...
  const next = requestWorker(client, { jobType: 'train', queueTimeoutS: 0 });
  await assert.rejects(next.assigned(), (e: { code?: string }) => e.code === 'QUEUE_TIMEOUT');
  // ...until the worker gives it back.
  releaseReservation(worker, first.reservationId);
  const again = await requestWorker(client, { jobType: 'train' }).assigned();
  assert.equal(again.worker.peer_id, 'w');
});

test('a forged id, or a reservation of another client, is refused with RESERVATION_NOT_FOUND', async (t) => {
  const { join } = await setup(t);
  const worker = await join('worker', 'w');
  const owner = await join('client', 'owner');
  await assert.rejects(claimReservation(worker, 'made-up', 'owner'), (e: { code?: string; message?: string }) => e.code === 'RESERVATION_NOT_FOUND' && /made-up/.test(e.message ?? ''));
  const { reservationId } = await requestWorker(owner, { jobType: 'track' }).assigned();
  await assert.rejects(claimReservation(worker, reservationId, 'someone-else'), (e: { code?: string; message?: string }) => e.code === 'RESERVATION_NOT_FOUND' && /another client/.test(e.message ?? ''));
});

test('a claim with no signaling connection fails at once with a coded error', async (t) => {
  const { join } = await setup(t);
  const worker = await join('worker', 'w');
  await worker.close();
  await assert.rejects(claimReservation(worker, 'r1', 'c'), (e: { code?: string }) => e.code === 'SIGNALING_CLOSED');
  releaseReservation(worker, 'r1');
});
