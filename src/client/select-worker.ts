/**
 * Choosing the worker a job goes to, through the server's routing (docs/routing.md,
 * src/transport/routing-client.ts): ask for a worker that has the job's backend and runs its type
 * (or the one `--worker` names), wait in the room's queue while they are all busy, and follow a
 * reassignment when the chosen worker did not take the job in time or left. Everything about
 * worker choice lives in this one module.
 */
import { SleapRtcError } from '../errors.js';
import type { JobType } from '../protocol/common.js';
import { requestWorker, RoutingError, type Assignment, type RoutingUpdate, type WorkerRequest } from '../transport/routing-client.js';
import type { SignalingClient } from '../transport/signaling-client.js';

export interface WorkerChoice {
  peerId: string;
  /** metadata.name, else the peer id. */
  name: string;
  /** Goes into the JOB_REQUEST; the worker claims it before running the job. */
  reservationId: string;
}

export interface SelectOptions {
  jobType: JobType;
  /** Backend of a shared-storage job; absent for a transfer job. */
  requiredStorage?: string;
  /** `--worker NAME`: peer id or metadata.name. */
  worker?: string;
  /** `--queue-timeout SECONDS`; absent: wait until a worker is free. */
  queueTimeoutS?: number;
  signal?: AbortSignal;
  /** Queue positions and reassignments, as sentences. */
  report?: (message: string) => void;
}

export class WorkerSelection {
  readonly #request: WorkerRequest;
  readonly #opts: SelectOptions;
  #reassigned: ((choice: WorkerChoice) => void) | null = null;

  constructor(signaling: SignalingClient, opts: SelectOptions) {
    this.#opts = opts;
    this.#request = requestWorker(
      signaling,
      {
        jobType: opts.jobType,
        ...(opts.requiredStorage !== undefined ? { requiredStorage: opts.requiredStorage } : {}),
        ...(opts.worker !== undefined ? { worker: opts.worker } : {}),
        ...(opts.queueTimeoutS !== undefined ? { queueTimeoutS: opts.queueTimeoutS } : {}),
      },
      opts.signal ? { signal: opts.signal } : {},
    );
    this.#request.on('update', (u) => this.#onUpdate(u));
  }

  /** The worker assigned now (waiting in the queue first if need be). Rejects with a RoutingError or on cancel. */
  async assigned(): Promise<WorkerChoice> {
    try {
      return toChoice(await this.#request.assigned());
    } catch (err) {
      if (this.#opts.signal?.aborted) throw new SleapRtcError('JOB_CANCELLED', 'Cancelled while waiting for a worker.');
      throw err;
    }
  }

  /** Called when the server moves the job to another worker (the first did not claim it in time, or left). */
  onReassigned(listener: ((choice: WorkerChoice) => void) | null): void {
    this.#reassigned = listener;
  }

  /** Resolves with the next reassignment, or null when none comes within `waitMs`. */
  nextReassignment(waitMs: number): Promise<WorkerChoice | null> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => done(null), waitMs);
      const done = (c: WorkerChoice | null): void => {
        clearTimeout(timer);
        this.#request.off('update', onUpdate);
        this.#request.off('failed', onFailed);
        resolve(c);
      };
      const onUpdate = (u: RoutingUpdate): void => {
        if (u.type === 'assigned' && u.reassignedFrom) done(toChoice(u));
      };
      const onFailed = (): void => done(null);
      this.#request.on('update', onUpdate);
      this.#request.on('failed', onFailed);
    });
  }

  /** The job is over (or abandoned): give the reservation back. Never throws. */
  async release(): Promise<void> {
    await this.#request.release().catch(() => {});
  }

  #onUpdate(u: RoutingUpdate): void {
    const report = this.#opts.report;
    const what = this.#opts.worker !== undefined ? `worker '${this.#opts.worker}'` : this.#opts.requiredStorage !== undefined ? `a worker with backend '${this.#opts.requiredStorage}'` : `a worker for ${this.#opts.jobType} jobs`;
    if (u.type === 'queued') {
      report?.(
        u.matchingWorkers === 0
          ? `Waiting for ${what} to join the room`
          : `Waiting for ${what}: position ${u.position} in the queue (${u.matchingWorkers} worker${u.matchingWorkers === 1 ? '' : 's'} can serve it, all busy)`,
      );
      return;
    }
    if (u.reassignedFrom) {
      const next = toChoice(u);
      const why = u.reassignedFrom.reason === 'worker_left' ? 'left the room' : 'did not take the job in time';
      report?.(`Worker ${u.reassignedFrom.peerId} ${why}; trying ${next.name}`);
      this.#reassigned?.(next);
    }
  }
}

/**
 * A NO_MATCHING_WORKER because the backend is what is missing (no worker in the room has it, or
 * the worker `--worker` names lacks it): the case for sending the files instead.
 */
export function isNoBackend(err: unknown): err is RoutingError {
  if (!(err instanceof RoutingError) || err.code !== 'NO_MATCHING_WORKER') return false;
  return err.reason === 'no_backend' || (err.reason === 'worker_cannot_serve' && err.details.missing === 'storage');
}

function toChoice(a: Assignment): WorkerChoice {
  return { peerId: a.worker.peer_id, name: a.worker.metadata.name ?? a.worker.peer_id, reservationId: a.reservationId };
}
