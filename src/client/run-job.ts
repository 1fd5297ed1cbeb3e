/**
 * One job from the client's side, start to end: plan it, get a worker from the server's routing,
 * connect, try shared storage when the plan allows, fall back to sending the files when no worker
 * (or the chosen worker) can see them, unless told not to, follow the job, and bring the results
 * home. The outcome is a JobResult, the object `--json` prints; nothing here writes to stdout.
 */
import type { SleapRtcConfig } from '../config/index.js';
import { SleapRtcError, type ErrorCode } from '../errors.js';
import { LIMITS } from '../limits.js';
import { silentLogger, type Logger } from '../log.js';
import type { JobRequest } from '../protocol/job.js';
import type { ServerToPeer } from '../protocol/signaling.js';
import { StorageConfig } from '../storage/index.js';
import { connectToPeer, type PeerConnection } from '../transport/peer-connection.js';
import { SignalingClient } from '../transport/signaling-client.js';
import { LiveJob, type TransferMode } from './live-job.js';
import { fallbackReason, noBackendReason, sharedOutputsHere } from './outcome.js';
import { planJob, type JobArgs, type JobPlan } from './plan.js';
import type { JobReporter } from './reporter.js';
import { isNoBackend, WorkerSelection, type WorkerChoice } from './select-worker.js';
import { ClientSession, type AttemptOutcome } from './session.js';
import { clearPending, notePending, pendingFor } from './pending-results.js';
import type { EpochRecord, TrainingSnapshot } from './training.js';
import { receiveOutputs, sendInputs } from './transfers.js';

export interface JobResult {
  job_id: string;
  /** `stopped_early`: training was stopped on request and its model came back, as for `completed`. */
  status: 'completed' | 'stopped_early' | 'failed' | 'cancelled';
  /** The worker's name; null when none was reached. */
  worker: string | null;
  transfer: TransferMode;
  /** Local paths of the files sent over the data channel (absent when none were). */
  files_sent?: string[];
  storage_backend: string | null;
  user_subdir: string | null;
  /** Results as paths on this machine. */
  outputs: string[];
  /** Payload bytes of input files sent to the worker (0 for shared storage). */
  bytes_sent: number;
  /** Payload bytes of results received from the worker. */
  bytes_received: number;
  /** Bytes not sent because the receiver already had them (the worker's cache, a resumed part file). */
  bytes_skipped: number;
  fallback_reason?: string;
  error?: { code: ErrorCode; message: string };
  /** Train jobs: what the client saw of the run, with one entry per finished epoch. */
  training?: Omit<TrainingSnapshot, 'batch' | 'ended'> & { loss_history: EpochRecord[] };
}

export interface RunJobOptions {
  args: JobArgs;
  config: SleapRtcConfig;
  serverUrl: string;
  roomId: string;
  token: string;
  /** `--worker NAME`. */
  worker?: string;
  /** `--queue-timeout SECONDS`. */
  queueTimeoutS?: number;
  noFallback?: boolean;
  reporter: JobReporter;
  logger?: Logger;
  /** Ctrl-C: cancels the remote job (or the wait for a worker). */
  signal?: AbortSignal;
  /** Called when the WebRTC connection to the worker is up (benchmarks time the phases). */
  onConnected?: () => void;
  /** Called when the worker reports that sleap-nn is running (benchmarks time this). */
  onStarted?: () => void;
  cancelReplyTimeoutMs?: number;
  /** Called once the job is planned, with the live state watchers read and the stop control (`--ui`, LossViewer, Ctrl-C). */
  onLive?: (live: LiveJob) => Promise<void> | void;
}

/** Plans (throwing for what the user must fix first), then runs the job; never throws after planning. */
export async function runJob(opts: RunJobOptions): Promise<JobResult> {
  const storage = StorageConfig.fromConfig(opts.config);
  const plan = await planJob(opts.args, storage);
  return runPlannedJob(plan, storage, opts);
}

/** How one worker ended the job, and the connection the results (if any) come over. */
interface WorkerRun {
  outcome: AttemptOutcome;
  peer: PeerConnection | null;
  /** The worker never took the job (connection failed, or the server moved it elsewhere first). */
  retryable: boolean;
  reassignedTo: WorkerChoice | null;
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
    bytes_sent: 0,
    bytes_received: 0,
    bytes_skipped: 0,
  };
  const tally = { sent: 0, received: 0, skipped: 0 };
  r.info(`job ${plan.jobId}`);
  await hintPending(plan, r);
  const live = new LiveJob({
    jobId: plan.jobId,
    jobType: plan.jobType,
    transfer: result.transfer,
    storageBackend: result.storage_backend,
    ...(plan.runName !== undefined ? { runName: plan.runName } : {}),
    ...(opts.args.maxEpochs !== undefined ? { totalEpochs: opts.args.maxEpochs } : {}),
  });
  await opts.onLive?.(live);
  const end = (res: JobResult): JobResult => {
    live.setStatus(res.status);
    if (plan.jobType === 'train') {
      const { batch: _batch, ended: _ended, ...figures } = live.training.snapshot();
      res.training = { ...figures, loss_history: [...live.training.history] };
    }
    return res;
  };
  r.info(plan.shared ? `transfer: shared storage (backend ${plan.shared.backend}, user ${plan.shared.userSubdir || '(base)'})` : `transfer: webrtc (reason: ${plan.transferReason})`);
  const fallBack = (reason: string): void => {
    r.info(`transfer: webrtc (reason: ${reason})`);
    Object.assign(result, { transfer: 'webrtc', storage_backend: null, user_subdir: null, fallback_reason: reason });
    live.setTransfer('webrtc', null);
  };
  const noFallback = (code: ErrorCode, message: string): SleapRtcError =>
    new SleapRtcError(code, `${message} Not sending the files instead, as --no-fallback asks.`);

  let signaling: SignalingClient | null = null;
  let selection: WorkerSelection | null = null;
  const peers: PeerConnection[] = [];
  const unwatch: (() => void)[] = [];
  try {
    signaling = await SignalingClient.connect({ serverUrl: opts.serverUrl, roomId: opts.roomId, token: opts.token, role: 'client', logger: opts.logger ?? silentLogger() });
    unwatch.push(reportSignaling(signaling, r));
    const select = (requiredStorage: string | undefined): WorkerSelection =>
      new WorkerSelection(signaling as SignalingClient, {
        jobType: plan.jobType,
        ...(requiredStorage !== undefined ? { requiredStorage } : {}),
        ...(opts.worker !== undefined ? { worker: opts.worker } : {}),
        ...(opts.queueTimeoutS !== undefined ? { queueTimeoutS: opts.queueTimeoutS } : {}),
        signal,
        report: (m) => r.info(m),
      });
    selection = select(plan.shared?.backend);
    let choice: WorkerChoice;
    try {
      choice = await selection.assigned();
    } catch (err) {
      if (!plan.shared || !isNoBackend(err) || signal.aborted) throw err;
      if (opts.noFallback) throw noFallback(err.code, err.message);
      fallBack(noBackendReason(plan.shared.backend, err.availableBackends, err.reason === 'worker_cannot_serve' ? opts.worker : undefined));
      selection = select(undefined);
      choice = await selection.assigned();
    }

    // Follow the job to whichever worker takes it: a worker that cannot be reached or that the
    // server replaces before it accepted is not the end of the job.
    let run: WorkerRun;
    for (;;) {
      result.worker = choice.name;
      live.setWorker(choice.name);
      r.info(`worker: ${choice.name}${choice.peerId !== choice.name ? ` (peer ${choice.peerId})` : ''}`);
      run = await runOnWorker(choice, selection, result.transfer === 'shared');
      if (run.peer) peers.push(run.peer);
      if (!run.retryable || signal.aborted) break;
      const next = run.reassignedTo ?? (await selection.nextReassignment(LIMITS.routingReservationTimeoutMs + LIMITS.signalingRequestTimeoutMs));
      if (!next) break;
      choice = next;
    }
    return end(await finish(run));
  } catch (err) {
    const e = err instanceof SleapRtcError ? err : new SleapRtcError('INTERNAL', (err as Error)?.message ?? String(err));
    result.error = { code: e.code, message: e.message };
    if (signal.aborted) result.status = 'cancelled';
    r.warn(`job ${plan.jobId} ${result.status}: [${e.code}] ${e.message}`);
    return end(result);
  } finally {
    for (const fn of unwatch) fn();
    result.bytes_sent = tally.sent;
    result.bytes_received = tally.received;
    result.bytes_skipped = tally.skipped;
    live.setStopper(null);
    await selection?.release();
    for (const p of peers) p.close();
    await signaling?.close();
  }

  async function runOnWorker(choice: WorkerChoice, sel: WorkerSelection, shared: boolean): Promise<WorkerRun> {
    let peer: PeerConnection;
    try {
      peer = await connectToPeer({
        signaler: signaling as SignalingClient,
        remotePeerId: choice.peerId,
        iceServers: opts.config.ice.servers.map((s) => ({ ...s, urls: [...s.urls] })),
        signal,
      });
    } catch (err) {
      const error = err instanceof SleapRtcError ? err : new SleapRtcError('PEER_CONNECT_FAILED', String(err));
      r.warn(`could not connect to worker ${choice.name}: ${error.message}`);
      return { outcome: { kind: 'lost', error }, peer: null, retryable: true, reassignedTo: null };
    }
    opts.onConnected?.();
    const session = new ClientSession(peer, {
      workerName: choice.name,
      reporter: r,
      upload: async (request, uploadSignal) => {
        const sent = await sendInputs({ peer, request, inputs: [...plan.inputs, ...plan.videoInputs], reporter: r, signal: uploadSignal, tally });
        result.files_sent = [...(result.files_sent ?? []), ...sent];
        if (result.transfer === 'shared') {
          result.transfer = 'mixed';
          live.setTransfer('mixed', result.storage_backend);
          r.info(`transfer: mixed (sent ${sent.length} video(s) that lie under no storage backend)`);
        }
      },
      onStarted: () => {
        live.setStatus('running');
        live.setStopper(() => session.stop());
        opts.onStarted?.();
      },
      onTrainEvent: (e) => live.trainEvent(e),
      onStopReply: (m) => live.stopReply(m.message),
      onProgress: (epoch, total) => live.logProgress(epoch, total),
      onLog: (line) => live.log(line),
    });
    // The server sees the worker leave at once; WebRTC would take 15-30 s to notice it is gone.
    // Either word counts: the room-wide peer_left, or job_peer_left about this job's worker.
    const onLeft = (peerId: string): void => {
      if (peerId === choice.peerId) void session.checkWorker('left_room');
    };
    const onMessage = (m: ServerToPeer): void => {
      if (m.type === 'job_peer_left' && m.role === 'worker') onLeft(m.peer_id);
    };
    const sig = signaling as SignalingClient;
    sig.on('peer_left', onLeft);
    sig.on('message', onMessage);
    unwatch.push(() => {
      sig.off('peer_left', onLeft);
      sig.off('message', onMessage);
    });
    let reassignedTo: WorkerChoice | null = null;
    sel.onReassigned((next) => {
      if (session.accepted) return;
      reassignedTo = next;
      peer.close();
    });
    const withReservation = (req: JobRequest): JobRequest => ({ ...req, reservation_id: choice.reservationId });
    try {
      let outcome = await attempt(session, withReservation(shared && plan.shared ? plan.shared.request : plan.transferRequest), signal, opts.cancelReplyTimeoutMs);
      const reason = shared && plan.shared && outcome.kind === 'rejected' ? fallbackReason(outcome, plan.shared.backend) : null;
      if (outcome.kind === 'rejected' && reason !== null && !signal.aborted) {
        if (opts.noFallback) {
          const e = noFallback(outcome.code, outcome.message);
          return { outcome: { ...outcome, message: e.message }, peer, retryable: false, reassignedTo: null };
        }
        fallBack(reason);
        outcome = await attempt(session, withReservation(plan.transferRequest), signal, opts.cancelReplyTimeoutMs);
      }
      const retryable = reassignedTo !== null || (outcome.kind === 'lost' && !session.accepted);
      return { outcome, peer, retryable, reassignedTo };
    } finally {
      sel.onReassigned(null);
    }
  }

  async function finish(run: WorkerRun): Promise<JobResult> {
    const outcome = run.outcome;
    switch (outcome.kind) {
      case 'completed': {
        const complete = outcome.complete;
        if (complete.transfer === 'shared') {
          result.outputs = await sharedOutputsHere(complete.outputs, storage, plan);
        } else {
          r.info(`receiving ${complete.outputs.length} output(s)`);
          const destination = plan.transferDestination(result.fallback_reason !== undefined);
          // Until every output is here, the worker keeps them and `sleap-rtc fetch` can get them.
          await notePending({ job_id: plan.jobId, worker: result.worker ?? '', server_url: opts.serverUrl, room_id: opts.roomId, job_type: plan.jobType, destination }).catch(() => {});
          try {
            result.outputs = await receiveOutputs({ peer: run.peer as PeerConnection, complete, jobType: plan.jobType, destination, reporter: r, signal, tally });
          } catch (err) {
            r.warn(`the results of job ${plan.jobId} stay on worker ${result.worker} for a while (24 h unless its [worker] results_keep_hours says otherwise); get them with: sleap-rtc fetch ${plan.jobId}`);
            throw err;
          }
          await clearPending(plan.jobId);
        }
        result.status = complete.stopped_early ? 'stopped_early' : 'completed';
        r.info(`job ${plan.jobId} ${complete.stopped_early ? 'stopped early; its model is kept' : 'completed'}`);
        return result;
      }
      case 'rejected':
      case 'failed':
        result.error = { code: outcome.code, message: outcome.message + (outcome.kind === 'rejected' ? videosRefused(outcome.pathErrors, plan) : '') };
        if (outcome.kind === 'failed' && outcome.exitCode !== null) r.warn(`sleap-nn exited with code ${outcome.exitCode}; its last line: ${outcome.lastLines.at(-1) ?? '(none)'}`);
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
    r.warn(`job ${plan.jobId} ${result.status}: [${result.error?.code}] ${result.error?.message}`);
    return result;
  }
}

/** Says what the client is waiting for while the signaling server is away; returns the remover. */
function reportSignaling(signaling: SignalingClient, r: JobReporter): () => void {
  let said: string | null = null;
  const onDisconnected = (why: SleapRtcError): void => {
    said = null;
    r.warn(`${why.message} A job already running goes on over the direct connection to its worker; reconnecting.`);
  };
  const onWaiting = (why: SleapRtcError): void => {
    if (said === why.code) return;
    said = why.code;
    r.info(`waiting for the signaling server: ${why.message}`);
  };
  const onReconnected = (): void => r.info('back on the signaling server');
  signaling.on('disconnected', onDisconnected);
  signaling.on('waiting', onWaiting);
  signaling.on('reconnected', onReconnected);
  return () => {
    signaling.off('disconnected', onDisconnected);
    signaling.off('waiting', onWaiting);
    signaling.off('reconnected', onReconnected);
  };
}

/** A job aimed where an earlier job's results never fully arrived: say how to get those. */
async function hintPending(plan: JobPlan, r: JobReporter): Promise<void> {
  const seen = new Set<string>();
  for (const fellBack of [false, true]) {
    for (const p of await pendingFor(plan.transferDestination(fellBack)).catch(() => [])) {
      if (seen.has(p.job_id) || p.job_type !== plan.jobType) continue;
      seen.add(p.job_id);
      r.warn(`the results of an earlier job ${p.job_id} (worker ${p.worker}) for ${p.destination} were not all received; get them with: sleap-rtc fetch ${p.job_id}`);
    }
  }
}

/** The videos a worker refused, named by this machine's own paths (the worker only knows references). */
function videosRefused(errors: readonly { field: string; rule: string }[], plan: JobPlan): string {
  const named = errors.flatMap((e) => {
    const v = plan.videos.find((pv) => pv.field === e.field);
    return v ? [`${v.local} (${e.rule.replace('_', ' ')}; video ${v.uses.map((u) => u.video).join(', ')} of the labels file)`] : [];
  });
  return named.length ? ` Videos refused: ${named.join('; ')}.` : '';
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
