/**
 * Which workers can serve a job: pure functions over advertised metadata, shared by every store
 * implementation (a networked store runs the same rule inside its atomic step) and by the router
 * for queue positions and room status.
 *
 * "Can serve" is static: role worker, capabilities advertised, the required backend among
 * `storage_backends`, the job type among `job_types`, enough GPU memory, and the pinned name.
 * "Free slots" adds the dynamic part: status `available` and fewer live reservations than
 * `max_concurrent_jobs`.
 */
import type { NoMatchReason } from '../protocol/routing.js';
import type { Metadata, Role } from '../protocol/signaling.js';
import type { WorkerRequirements } from './routing-store.js';

export interface RoutablePeer {
  readonly peer_id: string;
  readonly role: Role;
  readonly metadata: Readonly<Metadata>;
}

/** The first requirement a worker does not meet, in the order they are checked. */
export type Unmet = 'not_a_worker' | 'no_capabilities' | 'storage' | 'job_type' | 'gpu' | 'not_pinned';

export function isPinnedTo(peer: RoutablePeer, name: string): boolean {
  return peer.peer_id === name || peer.metadata.name === name;
}

export function unmetRequirement(peer: RoutablePeer, req: WorkerRequirements): Unmet | undefined {
  if (peer.role !== 'worker') return 'not_a_worker';
  if (req.worker !== undefined && !isPinnedTo(peer, req.worker)) return 'not_pinned';
  const caps = peer.metadata.capabilities;
  if (caps === undefined) return 'no_capabilities';
  if (req.required_storage !== null && !caps.storage_backends.includes(req.required_storage)) return 'storage';
  if (!caps.job_types.includes(req.job_type)) return 'job_type';
  if (req.min_gpu_memory_mb !== undefined && !((caps.gpu?.memory_mb ?? -1) >= req.min_gpu_memory_mb)) return 'gpu';
  return undefined;
}

export function canServe(peer: RoutablePeer, req: WorkerRequirements, excluded: readonly string[] = []): boolean {
  return unmetRequirement(peer, req) === undefined && !excluded.includes(peer.peer_id);
}

/** Slots a new reservation may take now, given the worker's live (pending + claimed) reservations. */
export function freeSlots(peer: RoutablePeer, live: number): number {
  const caps = peer.metadata.capabilities;
  if (peer.role !== 'worker' || caps === undefined || peer.metadata.status !== 'available') return 0;
  return Math.max(0, caps.max_concurrent_jobs - live);
}

export function totalSlots(peer: RoutablePeer): number {
  return peer.role === 'worker' ? (peer.metadata.capabilities?.max_concurrent_jobs ?? 0) : 0;
}

/** Every backend some worker of the room advertises, sorted. */
export function availableBackends(peers: readonly RoutablePeer[]): string[] {
  const names = new Set<string>();
  for (const p of peers) {
    if (p.role !== 'worker') continue;
    for (const b of p.metadata.capabilities?.storage_backends ?? []) names.add(b);
  }
  return [...names].sort();
}

export interface NoMatch {
  reason: NoMatchReason;
  available_backends: string[];
  /** For a pinned worker that cannot serve: what it lacks. */
  missing?: Unmet;
}

/** Why no peer of the room can serve `req` (call only when none can). */
export function explainNoMatch(peers: readonly RoutablePeer[], req: WorkerRequirements): NoMatch {
  const workers = peers.filter((p) => p.role === 'worker');
  const available_backends = availableBackends(workers);
  if (req.worker !== undefined) {
    const name = req.worker;
    const pinned = workers.filter((p) => isPinnedTo(p, name));
    if (pinned.length === 0) return { reason: 'worker_not_found', available_backends };
    const missing = unmetRequirement(pinned[0] as RoutablePeer, req);
    return { reason: 'worker_cannot_serve', available_backends, ...(missing !== undefined ? { missing } : {}) };
  }
  if (workers.length === 0) return { reason: 'no_workers', available_backends };
  const unmet = new Set(workers.map((w) => unmetRequirement(w, req)));
  // The furthest any worker got decides the reason: a worker that has the backend but not the
  // job type means the backend itself is there.
  if (unmet.has('gpu')) return { reason: 'gpu_too_small', available_backends };
  if (unmet.has('job_type')) return { reason: 'no_job_type', available_backends };
  if (req.required_storage !== null && unmet.has('storage')) return { reason: 'no_backend', available_backends };
  return { reason: 'no_workers', available_backends };
}

const keys = new WeakMap<WorkerRequirements, string>();

/** Requests with equal keys have the same candidate workers (before per-request exclusions). */
export function requirementKey(req: WorkerRequirements): string {
  // Requirements objects are frozen and shared by a request's copies, so the key is cached.
  let key = keys.get(req);
  if (key === undefined) {
    key = JSON.stringify([req.job_type, req.required_storage, req.min_gpu_memory_mb ?? null, req.worker ?? null]);
    keys.set(req, key);
  }
  return key;
}
