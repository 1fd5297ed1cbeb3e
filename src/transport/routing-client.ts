/**
 * The client's side of job routing (docs/routing.md) on top of a SignalingClient: ask the server
 * for a worker that can serve a job, follow the request through the queue and any reassignment,
 * and give it back (cancel or release) when done.
 *
 *   const req = requestWorker(signaling, { jobType: 'train', requiredStorage: 'vast' });
 *   req.on('update', (u) => ...);            // 'queued' (position) and 'assigned' (worker, reservation)
 *   const first = await req.assigned();      // or: for await (const u of req) { ... }
 *   ...connect to first.worker.peer_id, send JOB_REQUEST with first.reservationId...
 *   await req.release();                     // job over; or req.cancel() on Ctrl-C
 *
 * A later 'assigned' update for the same request replaces the earlier one (the first worker did
 * not take the job in time, or left): the caller drops that worker and goes to the new one.
 */
import { EventEmitter } from 'node:events';
import { SleapRtcError, type ErrorCode } from '../errors.js';
import { LIMITS } from '../limits.js';
import type { NoMatchReason, ReassignReason, RoomStatus } from '../protocol/routing.js';
import type { JobType, PeerInfo, PeerToServer, ServerToPeer } from '../protocol/signaling.js';
import type { SignalingClient } from './signaling-client.js';

export interface WorkerRequirementsInput {
  jobType: JobType;
  /** The backend a shared-storage job reads in place; absent or null for a transfer job. */
  requiredStorage?: string | null;
  minGpuMemoryMb?: number;
  /** Pin the job to one worker: its peer id or its name (`--worker`). */
  worker?: string;
  /** Give up after this long in the queue (`--queue-timeout`); 0: only if a worker is free now. Absent: wait. */
  queueTimeoutS?: number;
  /** Queue even when no worker in the room can serve the job yet (instead of NO_MATCHING_WORKER). */
  waitForMatch?: boolean;
}

export interface Assignment {
  reservationId: string;
  worker: PeerInfo;
  claimTimeoutMs: number;
  /** Set when an earlier assignment of this request fell through. */
  reassignedFrom?: { peerId: string; reason: ReassignReason };
}

export type RoutingUpdate =
  | { type: 'queued'; position: number; queueLength: number; matchingWorkers: number }
  | ({ type: 'assigned' } & Assignment);

/** A request the server ended without a worker (NO_MATCHING_WORKER, QUEUE_TIMEOUT, RESERVATION_EXPIRED, QUEUE_FULL ...). */
export class RoutingError extends SleapRtcError {
  /** For NO_MATCHING_WORKER: which requirement nobody meets. */
  get reason(): NoMatchReason | undefined {
    return this.details.reason as NoMatchReason | undefined;
  }

  /** For NO_MATCHING_WORKER: every backend some worker of the room has. */
  get availableBackends(): string[] {
    const b = this.details.available_backends;
    return Array.isArray(b) ? (b as string[]) : [];
  }
}

type RequestState = 'sent' | 'queued' | 'assigned' | 'ended' | 'failed';

export interface WorkerRequestEvents {
  update: [update: RoutingUpdate];
  failed: [error: SleapRtcError];
  /** Cancelled, released or closed: no more updates. */
  ended: [];
}

export interface RequestWorkerOptions {
  /** Default: a fresh id from the signaling client. */
  requestId?: string;
  /** Aborting cancels the request. */
  signal?: AbortSignal;
  /** How long cancel() and release() wait for the server's answer. */
  answerTimeoutMs?: number;
}

export class WorkerRequest extends EventEmitter<WorkerRequestEvents> implements AsyncIterable<RoutingUpdate> {
  readonly requestId: string;
  #client: SignalingClient;
  #message: Extract<PeerToServer, { type: 'request_worker' }>;
  #state: RequestState = 'sent';
  #assignment: Assignment | undefined;
  #error: SleapRtcError | undefined;
  /** Updates not yet taken by an async iterator. */
  #backlog: RoutingUpdate[] = [];
  #wake: (() => void) | undefined;
  #answerTimeoutMs: number;
  #unsubscribe: () => void;

  /** Use requestWorker(). */
  constructor(client: SignalingClient, requirements: WorkerRequirementsInput, opts: RequestWorkerOptions = {}) {
    super();
    this.#client = client;
    this.requestId = opts.requestId ?? client.nextRequestId();
    this.#answerTimeoutMs = opts.answerTimeoutMs ?? LIMITS.signalingRequestTimeoutMs;
    this.#message = {
      type: 'request_worker',
      request_id: this.requestId,
      job_type: requirements.jobType,
      ...(requirements.requiredStorage !== undefined && requirements.requiredStorage !== null ? { required_storage: requirements.requiredStorage } : {}),
      ...(requirements.minGpuMemoryMb !== undefined ? { min_gpu_memory_mb: requirements.minGpuMemoryMb } : {}),
      ...(requirements.worker !== undefined ? { worker: requirements.worker } : {}),
      ...(requirements.queueTimeoutS !== undefined ? { queue_timeout_s: requirements.queueTimeoutS } : {}),
      ...(requirements.waitForMatch === true ? { wait_for_match: true } : {}),
    };
    const onMessage = (m: ServerToPeer): void => this.#onMessage(m);
    const onReconnected = (): void => this.#onReconnected();
    const onClosed = (reason: SleapRtcError | null): void =>
      this.#fail(reason ?? new SleapRtcError('SIGNALING_CLOSED', 'The signaling connection was closed while waiting for a worker.'));
    client.on('message', onMessage);
    client.on('reconnected', onReconnected);
    client.on('closed', onClosed);
    const onAbort = (): void => void this.cancel().catch(() => {});
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    this.#unsubscribe = () => {
      client.off('message', onMessage);
      client.off('reconnected', onReconnected);
      client.off('closed', onClosed);
      opts.signal?.removeEventListener('abort', onAbort);
    };
    queueMicrotask(() => this.#send());
  }

  /** The current assignment (the latest, after a reassignment). */
  get assignment(): Assignment | undefined {
    return this.#assignment;
  }

  get state(): RequestState {
    return this.#state;
  }

  /** Resolves with the current assignment, or the first one to come; rejects when the request fails or ends first. */
  assigned(): Promise<Assignment> {
    if (this.#assignment !== undefined && this.#state === 'assigned') return Promise.resolve(this.#assignment);
    if (this.#error !== undefined) return Promise.reject(this.#error);
    if (this.#state === 'ended') return Promise.reject(ended(this.requestId));
    return new Promise((resolve, reject) => {
      const onUpdate = (u: RoutingUpdate): void => {
        if (u.type !== 'assigned') return;
        off();
        resolve(this.#assignment as Assignment);
      };
      const onFailed = (err: SleapRtcError): void => {
        off();
        reject(err);
      };
      const onEnded = (): void => {
        off();
        reject(ended(this.requestId));
      };
      const off = (): void => {
        this.off('update', onUpdate);
        this.off('failed', onFailed);
        this.off('ended', onEnded);
      };
      this.on('update', onUpdate);
      this.on('failed', onFailed);
      this.on('ended', onEnded);
    });
  }

  /**
   * Leaves the queue, or gives back a reservation the worker has not claimed (Ctrl-C). Resolves
   * once the server confirms, or at once when the request is already over or the link is down
   * (the server drops a departed client's requests itself).
   */
  async cancel(): Promise<void> {
    if (this.#state === 'ended' || this.#state === 'failed') return;
    this.#end();
    try {
      await this.#client.request({ type: 'cancel_request', request_id: this.requestId }, 'request_cancelled', this.#answerTimeoutMs);
    } catch (err) {
      // Down, slow, or the request ended on its own meanwhile (e.g. its queue timeout): it is
      // over either way. Only a misuse (a worker cancelling) is worth reporting.
      if (!(err instanceof SleapRtcError) || err.code === 'WRONG_ROLE') throw err;
    }
  }

  /** The job is over (or abandoned): gives the reservation back. Harmless when the worker released it first. */
  async release(): Promise<void> {
    const assignment = this.#assignment;
    if (this.#state === 'ended' || this.#state === 'failed') return;
    if (assignment === undefined) return this.cancel();
    this.#end();
    const reservationId = assignment.reservationId;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => finish(), this.#answerTimeoutMs);
      const onMessage = (m: ServerToPeer): void => {
        if (m.type === 'reservation_released' && m.reservation_id === reservationId) finish();
        else if (m.type === 'error' && m.details?.reservation_id === reservationId) finish(new SleapRtcError(m.code, m.message, m.details ?? {}));
      };
      const finish = (err?: SleapRtcError): void => {
        clearTimeout(timer);
        this.#client.off('message', onMessage);
        if (err !== undefined) reject(err);
        else resolve();
      };
      this.#client.on('message', onMessage);
      try {
        this.#client.send({ type: 'release_reservation', reservation_id: reservationId });
      } catch {
        // Disconnected: the server released it when our socket went.
        finish();
      }
    });
  }

  /** Stops following the request without telling the server (it stays queued or reserved). */
  close(): void {
    if (this.#state !== 'ended' && this.#state !== 'failed') this.#end();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<RoutingUpdate> {
    for (;;) {
      const next = this.#backlog.shift();
      if (next !== undefined) {
        yield next;
        continue;
      }
      if (this.#error !== undefined) throw this.#error;
      if (this.#state === 'ended') return;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
    }
  }

  // ---- internals -----------------------------------------------------------------------------

  #send(): void {
    if (this.#state === 'ended' || this.#state === 'failed') return;
    try {
      this.#client.send(this.#message);
    } catch (err) {
      // Not connected right now: the request goes out when the client reconnects; a closed
      // client has already failed us through 'closed'.
      if (!(err instanceof SleapRtcError) || err.code !== 'SIGNALING_CLOSED') this.#fail(err as SleapRtcError);
    }
  }

  #onMessage(m: ServerToPeer): void {
    if (this.#state === 'ended' || this.#state === 'failed') return;
    if (!('request_id' in m) || m.request_id !== this.requestId) return;
    switch (m.type) {
      case 'queue_position':
        this.#state = 'queued';
        this.#push({ type: 'queued', position: m.position, queueLength: m.queue_length, matchingWorkers: m.matching_workers });
        return;
      case 'worker_assigned':
        this.#state = 'assigned';
        this.#assignment = {
          reservationId: m.reservation_id,
          worker: m.worker,
          claimTimeoutMs: m.claim_timeout_ms,
          ...(m.reassigned_from !== undefined ? { reassignedFrom: { peerId: m.reassigned_from.peer_id, reason: m.reassigned_from.reason } } : {}),
        };
        this.#push({ type: 'assigned', ...this.#assignment });
        return;
      case 'error':
        this.#fail(new RoutingError(m.code as ErrorCode, m.message, m.details ?? {}));
        return;
      default:
        return;
    }
  }

  /**
   * The server forgot our request when the old socket went. A request still waiting is sent
   * again (it joins the queue anew, with wait_for_match: the workers may not be back yet); an
   * assigned one is left to the job layer, which hears from the worker whether its claim held.
   */
  #onReconnected(): void {
    if (this.#state !== 'sent' && this.#state !== 'queued') return;
    this.#message = { ...this.#message, wait_for_match: true };
    this.#send();
  }

  #push(update: RoutingUpdate): void {
    // A newer position supersedes an older one nobody has read yet, so a long wait with no
    // iterator does not pile up updates.
    if (update.type === 'queued') this.#backlog = this.#backlog.filter((u) => u.type !== 'queued');
    this.#backlog.push(update);
    this.emit('update', update);
    this.#poke();
  }

  #fail(err: SleapRtcError): void {
    if (this.#state === 'ended' || this.#state === 'failed') return;
    this.#state = 'failed';
    this.#error = err;
    this.#unsubscribe();
    this.emit('failed', err);
    this.#poke();
  }

  #end(): void {
    this.#state = 'ended';
    this.#unsubscribe();
    this.emit('ended');
    this.#poke();
  }

  #poke(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}

/** Asks the server for a worker; the request is sent right away (on the next microtask). */
export function requestWorker(client: SignalingClient, requirements: WorkerRequirementsInput, opts: RequestWorkerOptions = {}): WorkerRequest {
  return new WorkerRequest(client, requirements, opts);
}

/** The room's workers with their slots and queue share, and the room's queue length. */
export async function getRoomStatus(client: SignalingClient): Promise<RoomStatus> {
  return client.request({ type: 'get_room_status', request_id: client.nextRequestId() }, 'room_status');
}

function ended(requestId: string): SleapRtcError {
  return new SleapRtcError('REQUEST_CANCELLED', `Request ${requestId} was cancelled before a worker was assigned.`, { request_id: requestId });
}
