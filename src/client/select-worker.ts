/**
 * Choosing the worker a job goes to. Everything about worker choice lives here, so that the
 * server-side routing (docs/routing.md: `request_worker`, reservations, queue positions) can
 * replace this module's body without touching the rest of the client.
 *
 * Today: `--worker NAME` picks that worker (by peer id or name); otherwise the first available
 * worker that runs the job type, preferring one that advertises the job's storage backend. When
 * none is available yet the client waits for one (joined, or back to `available`), up to a limit.
 */
import { SleapRtcError } from '../errors.js';
import { LIMITS } from '../limits.js';
import type { JobType, PeerInfo } from '../protocol/common.js';
import type { SignalingClient } from '../transport/signaling-client.js';

export interface WorkerChoice {
  peerId: string;
  /** metadata.name, else the peer id. */
  name: string;
  /** Set when the server routed the job; goes into the JOB_REQUEST. */
  reservationId?: string;
  /** Give back whatever the choice holds (a reservation); safe to call twice. */
  release(): void;
}

export interface SelectOptions {
  jobType: JobType;
  /** Backend of a shared-storage job; absent for a transfer job. */
  requiredStorage?: string;
  /** `--worker NAME`: peer id or metadata.name. */
  worker?: string;
  /** Peers already tried and found wanting (e.g. busy); skipped. */
  exclude?: ReadonlySet<string>;
  waitMs?: number;
  signal?: AbortSignal;
  onWaiting?: (message: string) => void;
}

type Signaling = Pick<SignalingClient, 'peers' | 'on' | 'off' | 'roomId'>;

export function selectWorker(signaling: Signaling, opts: SelectOptions): Promise<WorkerChoice> {
  const waitMs = opts.waitMs ?? LIMITS.clientWorkerWaitMs;
  return new Promise((resolve, reject) => {
    let announced = '';
    const finish = (result: WorkerChoice | SleapRtcError): void => {
      clearTimeout(timer);
      signaling.off('peer_joined', evaluate);
      signaling.off('peer_updated', evaluate);
      signaling.off('peer_left', evaluate);
      opts.signal?.removeEventListener('abort', onAbort);
      if (result instanceof SleapRtcError) reject(result);
      else resolve(result);
    };
    function evaluate(): void {
      const verdict = choose([...signaling.peers.values()], opts, signaling.roomId);
      if ('chosen' in verdict) {
        finish(verdict.chosen);
        return;
      }
      if (verdict.waiting !== announced) {
        announced = verdict.waiting;
        opts.onWaiting?.(verdict.waiting);
      }
    }
    const timer = setTimeout(() => {
      const verdict = choose([...signaling.peers.values()], opts, signaling.roomId);
      finish('chosen' in verdict ? verdict.chosen : new SleapRtcError('NO_MATCHING_WORKER', `${verdict.giveUp} (waited ${Math.round(waitMs / 1000)} s).`, { room_id: signaling.roomId }));
    }, waitMs);
    const onAbort = (): void => finish(new SleapRtcError('JOB_CANCELLED', 'Cancelled while waiting for a worker.'));
    signaling.on('peer_joined', evaluate);
    signaling.on('peer_updated', evaluate);
    signaling.on('peer_left', evaluate);
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    if (opts.signal?.aborted) onAbort();
    else evaluate();
  });
}

type Verdict = { chosen: WorkerChoice } | { waiting: string; giveUp: string };

/** The pure rule: who gets the job now, or what we are waiting for. */
export function choose(peers: readonly PeerInfo[], opts: SelectOptions, roomId: string): Verdict {
  const workers = peers.filter((p) => p.role === 'worker' && !opts.exclude?.has(p.peer_id));
  const nameOf = (p: PeerInfo): string => p.metadata.name ?? p.peer_id;
  const runsType = (p: PeerInfo): boolean => p.metadata.capabilities?.job_types.includes(opts.jobType) ?? false;
  const available = (p: PeerInfo): boolean => p.metadata.status === 'available';
  const chosen = (p: PeerInfo): Verdict => ({ chosen: { peerId: p.peer_id, name: nameOf(p), release: () => {} } });

  if (opts.worker !== undefined) {
    const pinned = workers.find((p) => p.peer_id === opts.worker) ?? workers.find((p) => p.metadata.name === opts.worker);
    if (!pinned) {
      const here = workers.map(nameOf);
      const giveUp = `Worker '${opts.worker}' is not in room ${roomId}; ${here.length ? `workers here: ${here.join(', ')}` : 'the room has no workers'}`;
      return { waiting: `Waiting for worker '${opts.worker}' to join room ${roomId}`, giveUp };
    }
    if (!runsType(pinned)) {
      return { waiting: `Worker '${opts.worker}' does not run ${opts.jobType} jobs`, giveUp: `Worker '${opts.worker}' does not run ${opts.jobType} jobs` };
    }
    if (available(pinned)) return chosen(pinned);
    return { waiting: `Waiting for worker '${opts.worker}' to finish its current job`, giveUp: `Worker '${opts.worker}' stayed busy` };
  }

  const able = workers.filter(runsType);
  const hasBackend = (p: PeerInfo): boolean =>
    opts.requiredStorage === undefined || (p.metadata.capabilities?.storage_backends.includes(opts.requiredStorage) ?? false);
  const pick = able.find((p) => available(p) && hasBackend(p)) ?? able.find(available);
  if (pick) return chosen(pick);
  if (able.length === 0) {
    return {
      waiting: `Waiting for a worker that runs ${opts.jobType} jobs to join room ${roomId}`,
      giveUp: `No worker in room ${roomId} runs ${opts.jobType} jobs; start one with \`sleap-rtc worker --room ${roomId} --token TOKEN\``,
    };
  }
  return {
    waiting: `Waiting for a worker: all ${able.length} worker(s) that run ${opts.jobType} jobs are busy`,
    giveUp: `Every worker in room ${roomId} that runs ${opts.jobType} jobs stayed busy`,
  };
}
