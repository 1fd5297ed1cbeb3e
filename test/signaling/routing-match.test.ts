/** The pure routing rules: who can serve what, free slots, queue positions and room status rows. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Metadata } from '../../src/protocol/signaling.js';
import { canServe, explainNoMatch, freeSlots, unmetRequirement, type RoutablePeer } from '../../src/signaling/routing-match.js';
import { queuePositionOf, queuePositions, workerStatusEntries } from '../../src/signaling/routing-positions.js';
import type { RouteRequest, WorkerRequirements } from '../../src/signaling/routing-store.js';

function worker(peer_id: string, backends: string[], extra: Partial<NonNullable<Metadata['capabilities']>> = {}, meta: Partial<Metadata> = {}): RoutablePeer {
  return {
    peer_id,
    role: 'worker',
    metadata: { status: 'available', capabilities: { storage_backends: backends, job_types: ['train', 'track'], max_concurrent_jobs: 1, ...extra }, ...meta },
  };
}

const req = (r: Partial<WorkerRequirements> = {}): WorkerRequirements => ({ job_type: 'train', required_storage: null, ...r });

test('unmetRequirement: each requirement, checked in order', () => {
  const gpu = worker('g', ['vast'], { gpu: { name: 'A40', memory_mb: 46068 }, job_types: ['track'] }, { name: 'box' });
  const cases: [RoutablePeer, WorkerRequirements, string | undefined][] = [
    [{ peer_id: 'c', role: 'client', metadata: {} }, req(), 'not_a_worker'],
    [{ peer_id: 'w', role: 'worker', metadata: { status: 'available' } }, req(), 'no_capabilities'],
    [gpu, req({ required_storage: 'scratch' }), 'storage'],
    [gpu, req({ required_storage: 'vast' }), 'job_type'],
    [gpu, req({ job_type: 'track', min_gpu_memory_mb: 46069 }), 'gpu'],
    [gpu, req({ job_type: 'track', min_gpu_memory_mb: 46068 }), undefined],
    [gpu, req({ job_type: 'track', min_gpu_memory_mb: 0 }), undefined],
    [worker('nogpu', ['vast']), req({ min_gpu_memory_mb: 0 }), 'gpu'],
    [gpu, req({ job_type: 'track', worker: 'box' }), undefined],
    [gpu, req({ job_type: 'track', worker: 'g' }), undefined],
    [gpu, req({ job_type: 'track', worker: 'other' }), 'not_pinned'],
    // Backend names are compared exactly: no prefix, case or substring match.
    [worker('w', ['vast-2']), req({ required_storage: 'vast' }), 'storage'],
    [worker('w', ['VAST']), req({ required_storage: 'vast' }), 'storage'],
    [worker('w', ['vast']), req({ required_storage: 'vas' }), 'storage'],
    [worker('w', []), req({ required_storage: null }), undefined],
  ];
  for (const [peer, r, expected] of cases) assert.equal(unmetRequirement(peer, r), expected, `${peer.peer_id} ${JSON.stringify(r)}`);
  assert.equal(canServe(worker('w', ['vast']), req(), ['w']), false, 'excluded');
});

test('freeSlots: status and capacity both count', () => {
  assert.equal(freeSlots(worker('w', [], { max_concurrent_jobs: 3 }), 1), 2);
  assert.equal(freeSlots(worker('w', [], { max_concurrent_jobs: 3 }), 5), 0);
  assert.equal(freeSlots(worker('w', [], { max_concurrent_jobs: 3 }, { status: 'busy' }), 0), 0);
  assert.equal(freeSlots(worker('w', [], {}, { status: 'reserved' }), 0), 0);
  assert.equal(freeSlots({ peer_id: 'w', role: 'worker', metadata: { capabilities: { storage_backends: [], job_types: ['train'], max_concurrent_jobs: 1 } } }, 0), 0, 'no status is not available');
  assert.equal(freeSlots({ peer_id: 'c', role: 'client', metadata: { status: 'available' } }, 0), 0);
});

test('explainNoMatch: the furthest any worker got decides the reason', () => {
  const peers = [worker('a', ['scratch']), worker('b', ['vast'], { job_types: ['track'] }), { peer_id: 'c', role: 'client' as const, metadata: { capabilities: { storage_backends: ['client-only'], job_types: ['train' as const], max_concurrent_jobs: 1 } } }];
  assert.deepEqual(explainNoMatch(peers, req({ required_storage: 'vast' })), { reason: 'no_job_type', available_backends: ['scratch', 'vast'] }, 'clients do not count');
  assert.equal(explainNoMatch(peers, req({ required_storage: 'nfs' })).reason, 'no_backend');
  assert.equal(explainNoMatch([], req()).reason, 'no_workers');
});

let seq = 0;
function queued(client: string, r: Partial<WorkerRequirements>, excluded: string[] = []): RouteRequest {
  seq += 1;
  return { room_id: 'r', client_peer_id: client, request_id: `q${seq}`, requirements: req(r), requested_at_ms: 0, deadline_ms: null, seq, excluded };
}

test('queuePositions: only requests competing for the same workers count as ahead', () => {
  const peers = [worker('v', ['vast']), worker('vs', ['vast', 'scratch']), worker('n', ['nfs'])];
  const queue = [
    queued('a', { required_storage: 'scratch' }), // vs
    queued('b', { required_storage: 'vast' }), // v, vs: a competes through vs
    queued('c', { required_storage: 'nfs' }), // n: nobody ahead competes
    queued('d', { required_storage: 'vast' }), // a and b ahead
    queued('e', { required_storage: 'gdrive' }), // nobody can serve it
    queued('f', { required_storage: 'vast', worker: 'v' }), // v only: b and d compete, a does not
    queued('g', { required_storage: 'vast' }, ['vs']), // excluded vs: b, d, f compete through v
  ];
  assert.deepEqual(
    queuePositions(queue, peers).map((f) => [f.position, f.matching_workers, f.queue_length]),
    [
      [1, 1, 7],
      [2, 2, 7],
      [1, 1, 7],
      [3, 2, 7],
      [1, 0, 7],
      [3, 1, 7],
      [4, 1, 7],
    ],
  );
  assert.deepEqual(queuePositions([], peers), []);
  // The one-request form agrees with the whole-queue form.
  const all = queuePositions(queue, peers);
  queue.forEach((_, i) => assert.deepEqual(queuePositionOf(queue, i, peers), all[i], `request ${i}`));
});

test('workerStatusEntries: slots from reservations, queue share from requirements', () => {
  const peers: RoutablePeer[] = [
    worker('v', ['vast'], { max_concurrent_jobs: 2 }),
    worker('vs', ['vast', 'scratch'], {}, { status: 'busy' }),
    { peer_id: 'client', role: 'client', metadata: {} },
  ];
  const queue = [queued('a', { required_storage: 'scratch' }), queued('b', { required_storage: 'vast' })];
  const reservation = (worker_peer_id: string, state: 'pending' | 'claimed') => ({
    reservation_id: `rsv-${worker_peer_id}-${state}`,
    room_id: 'r',
    worker_peer_id,
    client_peer_id: 'x',
    request: queue[0] as RouteRequest,
    state,
    expires_at_ms: null,
  });
  const rows = workerStatusEntries(peers, { queue, reservations: [reservation('v', 'claimed'), reservation('vs', 'pending')] });
  assert.deepEqual(
    rows.map((r) => [r.peer_id, r.slots, r.queued]),
    [
      ['v', { total: 2, pending: 0, claimed: 1, free: 1 }, 1],
      ['vs', { total: 1, pending: 1, claimed: 0, free: 0 }, 2],
    ],
  );
});
