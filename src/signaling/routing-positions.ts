/**
 * Facts derived from a room's routing snapshot: each queued request's position, and each
 * worker's slots and queue share for `room_status`.
 *
 * Position: 1 + the requests ahead in the room's queue that compete with this one, i.e. that
 * some worker able to serve this request could also serve. Requests for other workers do not
 * count, because they never hold this one up (the FIFO is strict only among requests a given
 * worker can serve). Requests are grouped by requirements, so the work is queue length x groups.
 */
import type { WorkerStatusEntry } from '../protocol/routing.js';
import { canServe, freeSlots, requirementKey, totalSlots, type RoutablePeer } from './routing-match.js';
import type { RouteRequest, RoutingSnapshot } from './routing-store.js';

export interface QueueFacts {
  readonly position: number;
  readonly queue_length: number;
  readonly matching_workers: number;
}

interface Group {
  /** Index of each worker (into the room's worker list) that can serve the group's requests. */
  readonly workers: ReadonlySet<number>;
  /** Groups (by index) sharing at least one worker with this one, itself included when it has any. */
  readonly rivals: number[];
  /** Queued requests of this group. */
  count: number;
}

const groupKeys = new WeakMap<RouteRequest, string>();

function groupKey(r: RouteRequest): string {
  if (r.excluded.length === 0) return requirementKey(r.requirements);
  let key = groupKeys.get(r);
  if (key === undefined) {
    key = `${requirementKey(r.requirements)}|${[...r.excluded].sort().join(',')}`;
    groupKeys.set(r, key);
  }
  return key;
}

function candidates(r: RouteRequest, workers: readonly RoutablePeer[]): Set<number> {
  const out = new Set<number>();
  workers.forEach((w, i) => {
    if (canServe(w, r.requirements, r.excluded)) out.add(i);
  });
  return out;
}

function buildGroups(queue: readonly RouteRequest[], workers: readonly RoutablePeer[]): { groups: Group[]; groupOf: number[] } {
  const index = new Map<string, number>();
  const groups: Group[] = [];
  const groupOf: number[] = [];
  for (const r of queue) {
    const key = groupKey(r);
    let g = index.get(key);
    if (g === undefined) {
      g = groups.length;
      groups.push({ workers: candidates(r, workers), rivals: [], count: 0 });
      index.set(key, g);
    }
    (groups[g] as Group).count += 1;
    groupOf.push(g);
  }
  for (const a of groups) {
    groups.forEach((b, j) => {
      for (const w of a.workers) {
        if (b.workers.has(w)) {
          a.rivals.push(j);
          break;
        }
      }
    });
  }
  return { groups, groupOf };
}

/** Position facts for each queued request, in queue order. */
export function queuePositions(queue: readonly RouteRequest[], peers: readonly RoutablePeer[]): QueueFacts[] {
  const workers = peers.filter((p) => p.role === 'worker');
  const { groups, groupOf } = buildGroups(queue, workers);
  /** Requests passed so far, per group. */
  const passed = new Array<number>(groups.length).fill(0);
  const out: QueueFacts[] = [];
  queue.forEach((_, i) => {
    const g = groupOf[i] as number;
    const group = groups[g] as Group;
    let ahead = 0;
    for (const j of group.rivals) ahead += passed[j] as number;
    out.push({ position: ahead + 1, queue_length: queue.length, matching_workers: group.workers.size });
    passed[g] = (passed[g] as number) + 1;
  });
  return out;
}

/**
 * The facts for one queued request (a newcomer's first answer): one pass over the requests ahead
 * of it, deciding "competes" once per distinct requirement.
 */
export function queuePositionOf(queue: readonly RouteRequest[], index: number, peers: readonly RoutablePeer[]): QueueFacts {
  const workers = peers.filter((p) => p.role === 'worker');
  const target = queue[index] as RouteRequest;
  const mine = candidates(target, workers);
  const competes = new Map<string, boolean>();
  let ahead = 0;
  for (let i = 0; i < index; i++) {
    const r = queue[i] as RouteRequest;
    const key = groupKey(r);
    let c = competes.get(key);
    if (c === undefined) {
      c = false;
      for (const w of candidates(r, workers)) {
        if (mine.has(w)) {
          c = true;
          break;
        }
      }
      competes.set(key, c);
    }
    if (c) ahead += 1;
  }
  return { position: ahead + 1, queue_length: queue.length, matching_workers: mine.size };
}

/** The `room_status` rows: every worker in join order with its slots and the queued requests it could serve. */
export function workerStatusEntries(peers: readonly RoutablePeer[], snapshot: RoutingSnapshot): WorkerStatusEntry[] {
  const workers = peers.filter((p) => p.role === 'worker');
  const { groups } = buildGroups(snapshot.queue, workers);
  const pending = new Map<string, number>();
  const claimed = new Map<string, number>();
  for (const r of snapshot.reservations) {
    const tally = r.state === 'pending' ? pending : claimed;
    tally.set(r.worker_peer_id, (tally.get(r.worker_peer_id) ?? 0) + 1);
  }
  return workers.map((w, i) => {
    const p = pending.get(w.peer_id) ?? 0;
    const c = claimed.get(w.peer_id) ?? 0;
    let queued = 0;
    for (const g of groups) if (g.workers.has(i)) queued += g.count;
    return {
      peer_id: w.peer_id,
      metadata: w.metadata,
      slots: { total: totalSlots(w), pending: p, claimed: c, free: freeSlots(w, p + c) },
      queued,
    };
  });
}
