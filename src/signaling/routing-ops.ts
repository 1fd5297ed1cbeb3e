/**
 * The RoutingStore operations, written once over any store's atomic per-room update: each one is
 * "run this policy step (routing-policy.ts) on the room's state and peers, write the result". A
 * store that re-runs the step after a conflict gets the same decision from fresh data; the
 * reservation ids a discarded run drew are never seen by anyone.
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
  RouteRequestResult,
  RoutingOutcome,
  RoutingParams,
  RoutingSnapshot,
  RoutingStore,
} from './routing-store.js';
import type { PeerRecord, SignalingStore } from './store.js';

export function newReservationId(): string {
  return `rsv-${randomBytes(16).toString('base64url')}`;
}

function context<P extends RoutingParams>(params: P): P & StepContext {
  return { ...params, newReservationId };
}

export class RoutingOps implements RoutingStore {
  constructor(private readonly store: Pick<SignalingStore, 'updateRouting' | 'readRouting'>) {}

  /** Runs `step` on a working copy; the store writes the copy back when `changed` says so. */
  private run<T>(roomId: string, step: (d: RoutingDraft, peers: readonly PeerRecord[]) => { result: T; changed: boolean }): Promise<T> {
    return this.store.updateRouting(roomId, (state, peers) => {
      const d = new RoutingDraft(state);
      const { result, changed } = step(d, peers);
      return { result, state: changed ? d.toState() : undefined };
    });
  }

  routeRequest(input: NewRouteRequest, params: RoutingParams & RequestLimits): Promise<RouteRequestResult> {
    return this.run(input.room_id, (d, peers) => {
      const before = d.seq;
      const out = routeStep(d, peers, input, context(params));
      const result: RouteRequestResult = out.rejected !== undefined ? { events: out.events, rejected: out.rejected } : { events: out.events };
      return { result, changed: out.events.length > 0 || d.seq !== before };
    });
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
    const state = await this.store.readRouting(roomId);
    // Fresh arrays (the caller may change them); frozen records (shared with the memory store).
    return { queue: state.queue.map(deepFreeze), reservations: state.reservations.map(deepFreeze) };
  }
}

export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
