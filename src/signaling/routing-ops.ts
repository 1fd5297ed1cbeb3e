/**
 * The RoutingStore operations, written once over any store's atomic per-room update: each one is
 * "run this policy step (routing-policy.ts) on the room's state and peers, write the result". A
 * store that re-runs the step after a conflict gets the same decision from fresh data; the
 * reservation ids a discarded run drew are never seen by anyone.
 *
 * Group commit: operations on one room that arrive while an update of that room is under way are
 * collected and run, in arrival order, as the steps of the next single update (one read and one
 * write of a networked store for the whole batch instead of per operation). The decisions are
 * the ones running them one by one would give, since each step sees the state its predecessors
 * left; a burst of requests costs a few store round trips instead of two per request.
 */
import { randomBytes } from 'node:crypto';
import {
  cancelStep,
  claimStep,
  drainStep,
  expireDueStep,
  expireQueuedStep,
  expireReservationStep,
  releaseStep,
  removePeerStep,
  routeStep,
  RoutingDraft,
  type StepContext,
} from './routing-policy.js';
import type {
  CancelStatus,
  NewRouteRequest,
  ReleaseStatus,
  RequestLimits,
  ReservationRecord,
  RouteRequest,
  RouteRequestResult,
  RoutingOutcome,
  RoutingParams,
  RoutingSnapshot,
  RoutingStore,
} from './routing-store.js';
import { queuePositionOf, type QueueFacts } from './routing-positions.js';
import type { PeerRecord, SignalingStore } from './store.js';

/** Operations run in one store update at most (bounds the work a conflict re-runs). */
const MAX_BATCH = 256;

/** routeRequest's answer, plus the place of a request that was queued (its first queue_position). */
export interface RoutedRequest extends RouteRequestResult {
  readonly queued?: { readonly request: RouteRequest; readonly facts: QueueFacts };
}

/** A room's routing state and peers read at one point in the room's order of operations. */
export interface RoomView {
  readonly snapshot: RoutingSnapshot;
  readonly peers: readonly PeerRecord[];
}

type Step<T> = (d: RoutingDraft, peers: readonly PeerRecord[]) => { result: T; changed: boolean };

interface Pending {
  step: Step<unknown>;
  resolve(value: unknown): void;
  reject(err: unknown): void;
}

export function newReservationId(): string {
  return `rsv-${randomBytes(16).toString('base64url')}`;
}

function context<P extends RoutingParams>(params: P): P & StepContext {
  return { ...params, newReservationId };
}

export class RoutingOps implements RoutingStore {
  /** Per room: operations waiting for the update under way to finish. */
  private readonly waiting = new Map<string, Pending[]>();

  constructor(private readonly store: Pick<SignalingStore, 'updateRouting' | 'readRouting'>) {}

  /**
   * Runs `step` on a working copy; the store writes the copy back when `changed` says so. Steps
   * that arrive while the room has an update under way join the room's next update (group commit).
   */
  private run<T>(roomId: string, step: Step<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const entry: Pending = { step, resolve: resolve as (v: unknown) => void, reject };
      const queue = this.waiting.get(roomId);
      if (queue !== undefined) {
        queue.push(entry);
        return;
      }
      this.waiting.set(roomId, [entry]);
      void this.flush(roomId);
    });
  }

  /** Runs the room's waiting steps in batches, one store update each, until none are left. */
  private async flush(roomId: string): Promise<void> {
    for (;;) {
      const queue = this.waiting.get(roomId) as Pending[];
      if (queue.length === 0) {
        this.waiting.delete(roomId);
        return;
      }
      const batch = queue.splice(0, MAX_BATCH);
      try {
        const results = await this.store.updateRouting(roomId, (state, peers) => {
          const d = new RoutingDraft(state);
          let changed = false;
          const out = batch.map((p) => {
            const r = p.step(d, peers);
            changed ||= r.changed;
            return r.result;
          });
          return { result: out, state: changed ? d.toState() : undefined };
        });
        batch.forEach((p, i) => p.resolve(results[i]));
      } catch (err) {
        for (const p of batch) p.reject(err);
      }
    }
  }

  routeRequest(input: NewRouteRequest, params: RoutingParams & RequestLimits): Promise<RoutedRequest> {
    return this.run(input.room_id, (d, peers) => {
      const before = d.seq;
      const out = routeStep(d, peers, input, context(params));
      let result: RoutedRequest = out.rejected !== undefined ? { events: out.events, rejected: out.rejected } : { events: out.events };
      if (out.rejected === undefined && d.seq !== before) {
        // Queued (the last entry, or earlier if requeued requests sit behind it): its place now.
        const index = d.queue.findLastIndex((r) => r.seq === d.seq);
        if (index >= 0) result = { ...result, queued: { request: d.queue[index] as RouteRequest, facts: queuePositionOf(d.queue, index, peers) } };
      }
      return { result, changed: out.events.length > 0 || d.seq !== before };
    });
  }

  /** The room's routing snapshot and peers, read in the room's order of operations. */
  roomView(roomId: string): Promise<RoomView> {
    return this.run(roomId, (d, peers) => ({ result: { snapshot: snapshotOf(d.toState()), peers }, changed: false }));
  }

  drainRoutingQueue(roomId: string, params: RoutingParams): Promise<RoutingOutcome> {
    return this.run(roomId, (d, peers) => {
      const events = drainStep(d, peers, context(params));
      return { result: { events }, changed: events.length > 0 };
    });
  }

  claimReservation(roomId: string, reservationId: string, workerPeerId: string): Promise<ReservationRecord | undefined> {
    return this.run(roomId, (d) => {
      const was = d.reservations.get(reservationId)?.state;
      const rec = claimStep(d, reservationId, workerPeerId);
      return { result: rec, changed: rec !== undefined && was !== 'claimed' };
    });
  }

  releaseReservation(roomId: string, reservationId: string, peerId: string, params: RoutingParams): Promise<RoutingOutcome & { status: ReleaseStatus }> {
    return this.run(roomId, (d, peers) => {
      const out = releaseStep(d, peers, reservationId, peerId, context(params));
      return { result: out, changed: out.status === 'released' };
    });
  }

  cancelRouteRequest(roomId: string, clientPeerId: string, requestId: string, params: RoutingParams): Promise<RoutingOutcome & { status: CancelStatus }> {
    return this.run(roomId, (d, peers) => {
      const out = cancelStep(d, peers, clientPeerId, requestId, context(params));
      return { result: out, changed: out.status !== 'unknown' };
    });
  }

  expireReservation(roomId: string, reservationId: string, params: RoutingParams): Promise<RoutingOutcome> {
    return this.run(roomId, (d, peers) => {
      const had = d.reservations.has(reservationId);
      const events = expireReservationStep(d, peers, reservationId, context(params));
      return { result: { events }, changed: had && !d.reservations.has(reservationId) };
    });
  }

  expireQueuedRequest(roomId: string, clientPeerId: string, requestId: string, params: RoutingParams): Promise<RoutingOutcome> {
    return this.run(roomId, (d) => {
      const events = expireQueuedStep(d, clientPeerId, requestId, context(params));
      return { result: { events }, changed: events.length > 0 };
    });
  }

  expireDue(roomId: string, params: RoutingParams): Promise<RoutingOutcome> {
    return this.run(roomId, (d, peers) => {
      const before = d.reservations.size + d.queue.length;
      const events = expireDueStep(d, peers, context(params));
      return { result: { events }, changed: events.length > 0 || d.reservations.size + d.queue.length !== before };
    });
  }

  removeRoutingPeer(peerId: string, roomId: string, params: RoutingParams): Promise<RoutingOutcome> {
    return this.run(roomId, (d, peers) => {
      const touched =
        d.lastAssigned.has(peerId) ||
        d.queue.some((r) => r.client_peer_id === peerId) ||
        [...d.reservations.values()].some((r) => r.worker_peer_id === peerId || r.client_peer_id === peerId);
      const events = removePeerStep(d, peers, peerId, context(params));
      return { result: { events }, changed: touched || events.length > 0 };
    });
  }

  async routingSnapshot(roomId: string): Promise<RoutingSnapshot> {
    return snapshotOf(await this.store.readRouting(roomId));
  }
}

/** Fresh arrays (the caller may change them); frozen records (shared with the store's copy). */
function snapshotOf(state: { queue: readonly RouteRequest[]; reservations: readonly ReservationRecord[] }): RoutingSnapshot {
  return { queue: state.queue.map(deepFreeze), reservations: state.reservations.map(deepFreeze) };
}

export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
