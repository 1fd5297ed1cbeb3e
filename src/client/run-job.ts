/**
 * One job from the client's side, start to end: plan it, find a worker, connect, try shared
 * storage when the plan allows, fall back to sending the files when the worker cannot see them
 * (unless told not to), follow the job, and bring the results home. The outcome is a JobResult,
 * the object `--json` prints; nothing here writes to stdout.
 */
import path from 'node:path';
import type { SleapRtcConfig } from '../config/index.js';
import { SleapRtcError, type ErrorCode } from '../errors.js';
import { LIMITS } from '../limits.js';
import { silentLogger, type Logger } from '../log.js';
import type { JobRequest } from '../protocol/job.js';
import { StorageConfig, StorageResolver } from '../storage/index.js';
import { connectToPeer, type PeerConnection } from '../transport/peer-connection.js';
import { SignalingClient } from '../transport/signaling-client.js';
import { planJob, type JobArgs, type JobPlan } from './plan.js';
import type { JobReporter } from './reporter.js';
import { selectWorker, type WorkerChoice } from './select-worker.js';
import { ClientSession, type AttemptOutcome } from './session.js';
import { receiveOutputs, sendInputs } from './transfers.js';

export interface JobResult {
  job_id: string;
  status: 'completed' | 'failed' | 'cancelled';
  /** The worker's name; null when none was reached. */
  worker: string | null;
  transfer: 'shared' | 'webrtc';
  storage_backend: string | null;
  user_subdir: string | null;
  /** Results as paths on this machine. */
  outputs: string[];
  fallback_reason?: string;
  error?: { code: ErrorCode; message: string };
}

export interface RunJobOptions {
  args: JobArgs;
  config: SleapRtcConfig;
  serverUrl: string;
  roomId: string;
  token: string;
  /** `--worker NAME`. */
  worker?: string;
  noFallback?: boolean;
  reporter: JobReporter;
  logger?: Logger;
  /** Ctrl-C: cancels the remote job (or the wait for a worker). */
  signal?: AbortSignal;
  /** Called when the worker reports that sleap-nn is running (benchmarks time this). */
  onStarted?: () => void;
  cancelReplyTimeoutMs?: number;
}

/** Plans (throwing for what the user must fix first), then runs the job; never throws after planning. */
export async function runJob(opts: RunJobOptions): Promise<JobResult> {
  const storage = StorageConfig.fromConfig(opts.config);
  const plan = await planJob(opts.args, storage);
  return runPlannedJob(plan, storage, opts);
}

export async function runPlannedJob(plan: JobPlan, storage: StorageConfig, opts: RunJobOptions): Promise<JobResult> {
  const r = opts.reporter;
  const signal = opts.signal ?? new AbortController().signal;
  const result: JobResult = {
    job_id: plan.jobId,
    status: 'failed',
    worker: null,
    transfer: plan.shared ? 'shared' : 'webrtc',
    storage_backend: plan.shared?.backend ?? null,
    user_subdir: plan.shared?.userSubdir ?? null,
    outputs: [],
  };
  r.info(plan.shared ? `transfer: shared storage (backend ${plan.shared.backend}, user ${plan.shared.userSubdir || '(base)'})` : `transfer: webrtc (reason: ${plan.transferReason})`);

  let signaling: SignalingClient | null = null;
  let peer: PeerConnection | null = null;
  let choice: WorkerChoice | null = null;
  try {
    signaling = await SignalingClient.connect({ serverUrl: opts.serverUrl, roomId: opts.roomId, token: opts.token, role: 'client', logger: opts.logger ?? silentLogger() });
    choice = await selectWorker(signaling, {
      jobType: plan.jobType,
      ...(plan.shared ? { requiredStorage: plan.shared.backend } : {}),
      ...(opts.worker !== undefined ? { worker: opts.worker } : {}),
      signal,
      onWaiting: (m) => r.info(m),
    });
    result.worker = choice.name;
    r.info(`worker: ${choice.name}${choice.peerId !== choice.name ? ` (peer ${choice.peerId})` : ''}`);
    peer = await connectToPeer({
      signaler: signaling,
      remotePeerId: choice.peerId,
      iceServers: opts.config.ice.servers.map((s) => ({ ...s, urls: [...s.urls] })),
      signal,
    });
    const connected = peer;
    const session = new ClientSession(connected, {
      workerName: choice.name,
      reporter: r,
      upload: (request, uploadSignal) => sendInputs({ peer: connected, request, inputs: plan.inputs, reporter: r, signal: uploadSignal }),
      ...(opts.onStarted ? { onStarted: opts.onStarted } : {}),
    });
    const reservation = choice.reservationId;
    const withReservation = (req: JobRequest): JobRequest => (reservation !== undefined ? { ...req, reservation_id: reservation } : req);

    let outcome: AttemptOutcome;
    let fellBack = false;
    if (plan.shared) {
      outcome = await attempt(session, withReservation(plan.shared.request), signal, opts.cancelReplyTimeoutMs);
      const reason = outcome.kind === 'rejected' ? fallbackReason(outcome, plan.shared.backend) : null;
      if (outcome.kind === 'rejected' && reason !== null && !signal.aborted) {
        if (opts.noFallback) {
          result.error = { code: outcome.code, message: `${outcome.message} Not sending the files instead, as --no-fallback asks.` };
          return result;
        }
        r.info(`transfer: webrtc (reason: ${reason})`);
        Object.assign(result, { transfer: 'webrtc', storage_backend: null, user_subdir: null, fallback_reason: reason });
        fellBack = true;
        outcome = await attempt(session, withReservation(plan.transferRequest), signal, opts.cancelReplyTimeoutMs);
      }
    } else {
      outcome = await attempt(session, withReservation(plan.transferRequest), signal, opts.cancelReplyTimeoutMs);
    }

    switch (outcome.kind) {
      case 'completed': {
        const complete = outcome.complete;
        if (complete.transfer === 'shared') {
          result.outputs = await sharedOutputsHere(complete.outputs, storage, plan);
        } else {
          r.info(`receiving ${complete.outputs.length} output(s)`);
          result.outputs = await receiveOutputs({ peer: connected, complete, jobType: plan.jobType, destination: plan.transferDestination(fellBack), reporter: r, signal });
        }
        result.status = 'completed';
        r.info(`job ${plan.jobId} completed`);
        return result;
      }
      case 'rejected':
        result.error = { code: outcome.code, message: outcome.message };
        break;
      case 'failed':
        result.error = { code: outcome.code, message: outcome.message };
        if (outcome.exitCode !== null) r.warn(`sleap-nn exited with code ${outcome.exitCode}; its last line: ${outcome.lastLines.at(-1) ?? '(none)'}`);
        break;
      case 'cancelled':
        result.status = 'cancelled';
        result.error = { code: 'JOB_CANCELLED', message: `The job was cancelled (${outcome.reason.replace('_', ' ')}).` };
        break;
      case 'lost':
        result.error = { code: outcome.error.code, message: outcome.error.message };
        if (signal.aborted) result.status = 'cancelled';
        break;
    }
    if (result.error) r.warn(`job ${plan.jobId} ${result.status}: [${result.error.code}] ${result.error.message}`);
    return result;
  } catch (err) {
    const e = err instanceof SleapRtcError ? err : new SleapRtcError('INTERNAL', (err as Error)?.message ?? String(err));
    result.error = { code: e.code, message: e.message };
    if (signal.aborted) result.status = 'cancelled';
    r.warn(`job ${plan.jobId} ${result.status}: [${e.code}] ${e.message}`);
    return result;
  } finally {
    choice?.release();
    peer?.close();
    await signaling?.close();
  }
}

/** One attempt, cancelled on the remote side when `signal` fires; gives up waiting for the confirmation after a while. */
async function attempt(session: ClientSession, request: JobRequest, signal: AbortSignal, cancelReplyTimeoutMs: number = LIMITS.jobCancelReplyTimeoutMs): Promise<AttemptOutcome> {
  let timer: NodeJS.Timeout | undefined;
  const onAbort = (): void => {
    session.cancel();
    timer = setTimeout(
      () => session.abandon(new SleapRtcError('JOB_CANCELLED', `The worker did not confirm the cancel within ${Math.round(cancelReplyTimeoutMs / 1000)} s; it may still be running the job.`)),
      cancelReplyTimeoutMs,
    );
  };
  const outcome = session.attempt(request);
  if (signal.aborted) onAbort();
  else signal.addEventListener('abort', onAbort, { once: true });
  try {
    return await outcome;
  } finally {
    signal.removeEventListener('abort', onAbort);
    clearTimeout(timer);
  }
}

/** Why a refused shared-storage attempt should be retried by sending the files, or null when it should not. */
export function fallbackReason(outcome: Extract<AttemptOutcome, { kind: 'rejected' }>, backend: string): string | null {
  if (outcome.backendMissing) return `worker lacks backend ${outcome.backendMissing.backend}`;
  const errors = outcome.pathErrors;
  if (errors.length > 0 && errors.every((e) => e.rule === 'missing' && e.field !== 'output' && e.field !== 'user_subdir')) {
    return `worker cannot find ${errors.map((e) => e.field).join(', ')} on its mount of backend ${backend}`;
  }
  return null;
}

/** The worker's output references as paths on this machine's mount of the same backend. */
async function sharedOutputsHere(
  refs: readonly { storage_backend: string; user_subdir: string; relative_path: string }[],
  storage: StorageConfig,
  plan: JobPlan,
): Promise<string[]> {
  const resolver = new StorageResolver(storage);
  const out: string[] = [];
  for (const ref of refs) {
    if (ref.storage_backend !== plan.shared?.backend || ref.user_subdir !== plan.shared.userSubdir) {
      throw new SleapRtcError('INVALID_MESSAGE', `The worker reported an output on ${ref.storage_backend}/${ref.user_subdir}, not where the job asked.`);
    }
    // Confined like any path from a peer; printed the way this machine names its mount.
    await resolver.resolve(ref.storage_backend, ref.user_subdir, ref.relative_path, { allowEmpty: true });
    out.push(path.join(storage.getBackend(ref.storage_backend).basePath, ...[ref.user_subdir, ref.relative_path].filter((s) => s !== '')));
  }
  return out;
}
