/**
 * The client's side of the job conversation with one worker, on the connection's `control`
 * channel: send a JOB_REQUEST, follow the worker's answers in the order docs/jobs.md gives, and
 * report how the attempt ended. Every frame is checked against the schema; one that fails gets an
 * `error` reply and is otherwise ignored. A rejected attempt can be followed by another one on the
 * same connection (the fallback to a transfer job).
 */
import { SleapRtcError, type ErrorCode } from '../errors.js';
import { encodeMessage, ProtocolError } from '../protocol/codec.js';
import { LIMITS } from '../limits.js';
import { decodeWorkerToClient, type ClientToWorker, type JobRequest, type WorkerToClient } from '../protocol/job.js';
import type { ChannelMessage } from '../transport/channel.js';
import { PeerLiveness } from '../transport/liveness.js';
import type { PeerConnection } from '../transport/peer-connection.js';
import type { JobReporter } from './reporter.js';

type Msg<T extends WorkerToClient['type']> = Extract<WorkerToClient, { type: T }>;

export type AttemptOutcome =
  | { kind: 'rejected'; code: ErrorCode; message: string; pathErrors: Msg<'PATH_ERROR'>[]; backendMissing: Msg<'BACKEND_NOT_AVAILABLE'> | null }
  | { kind: 'completed'; complete: Msg<'JOB_COMPLETE'> }
  | { kind: 'failed'; code: ErrorCode; message: string; exitCode: number | null; lastLines: string[] }
  | { kind: 'cancelled'; reason: Msg<'JOB_CANCELLED'>['reason'] }
  | { kind: 'lost'; error: SleapRtcError };

export interface SessionHooks {
  /** The worker's name, for its log lines. */
  workerName: string;
  reporter: JobReporter;
  /** Send what an UPLOAD_REQUEST asks for; a rejection becomes the attempt's failure. */
  upload(request: Msg<'UPLOAD_REQUEST'>, signal: AbortSignal): Promise<void>;
  onStarted?: () => void;
  /** sleap-nn's training events, relayed by the worker (in order, batch_end thinned). */
  onTrainEvent?: (event: Msg<'TRAIN_EVENT'>) => void;
  /** The worker's answer to a stop request. */
  onStopReply?: (reply: Msg<'JOB_STOP_REPLY'>) => void;
  /** An `Epoch N/M` log line (progress when sleap-nn sends no events). */
  onProgress?: (epoch: number, total: number) => void;
  /** One line of sleap-nn's output. */
  onLog?: (line: string) => void;
}

interface Attempt {
  jobId: string;
  pathErrors: Msg<'PATH_ERROR'>[];
  backendMissing: Msg<'BACKEND_NOT_AVAILABLE'> | null;
  uploads: AbortController;
  uploadError: SleapRtcError | null;
  finish: (outcome: AttemptOutcome) => void;
}

export class ClientSession {
  readonly #peer: PeerConnection;
  readonly #hooks: SessionHooks;
  #attempt: Attempt | null = null;
  #accepted = false;
  readonly #liveness = new PeerLiveness();

  constructor(peer: PeerConnection, hooks: SessionHooks) {
    this.#peer = peer;
    this.#hooks = hooks;
    peer.control.onMessage((frame) => this.#onFrame(frame));
    peer.onSuspect(() => void this.checkWorker('quiet'));
    // Any frame from the worker, on any channel, answers a liveness probe (its PONG may wait behind its results).
    peer.onActivity(() => this.#liveness.heard());
    peer.onClose((reason) => {
      this.#end({ kind: 'lost', error: new SleapRtcError('PEER_CLOSED', `The connection to worker ${hooks.workerName} closed before the job ended (${reason.message}).`) });
    });
  }

  /** Whether the worker accepted the latest attempt (it then owns the job, and its reservation). */
  get accepted(): boolean {
    return this.#accepted;
  }

  /** Send `request` and resolve with how the worker ended it. One attempt at a time. */
  attempt(request: JobRequest): Promise<AttemptOutcome> {
    if (this.#attempt) return Promise.reject(new SleapRtcError('INTERNAL', 'An attempt is already in progress on this connection.'));
    this.#accepted = false;
    return new Promise((resolve) => {
      this.#attempt = { jobId: request.job_id, pathErrors: [], backendMissing: null, uploads: new AbortController(), uploadError: null, finish: resolve };
      if (!this.#peer.isOpen) {
        this.#end({ kind: 'lost', error: new SleapRtcError('PEER_CLOSED', `The connection to worker ${this.#hooks.workerName} is closed.`) });
        return;
      }
      this.#send(request);
    });
  }

  /** Ask the worker to stop the current attempt; its JOB_CANCELLED (or another end) settles it. */
  cancel(): void {
    const a = this.#attempt;
    if (!a) return;
    a.uploads.abort();
    this.#send({ type: 'JOB_CANCEL', job_id: a.jobId });
  }

  /**
   * The signaling server says the worker left the room (`left_room`), or the WebRTC connection
   * reports `disconnected` (`quiet`). A worker that only lost the server answers a PING over the
   * direct connection and the job goes on; one that does not answer within a few seconds is gone
   * (killed, crashed, cut off), and the attempt ends now instead of when WebRTC times out.
   */
  async checkWorker(why: 'left_room' | 'quiet'): Promise<void> {
    if (!this.#peer.isOpen) return;
    const name = this.#hooks.workerName;
    const what = why === 'left_room' ? `worker ${name} left the room` : `the direct connection to worker ${name} went quiet`;
    this.#hooks.reporter.info(`${what}; asking it over the direct connection whether it is still running the job`);
    const alive = await this.#liveness.probe((nonce) => {
      const ping: ClientToWorker = { type: 'PING', nonce };
      this.#peer.control.send(encodeMessage(ping));
    });
    if (alive) {
      this.#hooks.reporter.info(`worker ${name} answered: the job goes on${why === 'left_room' ? ' (it lost only the signaling server)' : ''}`);
      return;
    }
    // Between attempts (results downloading): closing the connection ends the transfers at once.
    if (!this.#attempt) {
      this.#hooks.reporter.warn(`worker ${name} did not answer over the direct connection: it is gone`);
      this.#peer.close();
      return;
    }
    this.#end({
      kind: 'lost',
      error: new SleapRtcError(
        'PEER_GONE',
        `Worker ${name} ${why === 'left_room' ? 'left the room and ' : ''}did not answer over the direct connection within ${Math.round(LIMITS.peerProbeTimeoutMs / 1000)} s: it was stopped, crashed or lost its network. The job did not finish there.`,
        { worker: name },
      ),
    });
  }

  /** Ask the worker to stop training early (sleap-nn ends the epoch and saves); the attempt then completes. */
  stop(): void {
    const a = this.#attempt;
    if (a) this.#send({ type: 'JOB_STOP', job_id: a.jobId });
  }

  /** Settle the current attempt as lost (a timeout in the caller). */
  abandon(error: SleapRtcError): void {
    this.#end({ kind: 'lost', error });
  }

  #onFrame(frame: ChannelMessage): void {
    this.#liveness.heard();
    const a = this.#attempt;
    if (typeof frame !== 'string') return;
    let m: WorkerToClient;
    try {
      m = decodeWorkerToClient(frame);
    } catch (err) {
      const e = err instanceof ProtocolError ? err : new SleapRtcError('INVALID_MESSAGE', String(err));
      this.#hooks.reporter.warn(`ignored a message from worker ${this.#hooks.workerName}: ${e.message}`);
      this.#send({ type: 'error', code: e.code, message: e.message.slice(0, 2000) });
      return;
    }
    if (m.type === 'error') {
      this.#hooks.reporter.warn(`worker ${this.#hooks.workerName} could not read a message: [${m.code}] ${m.message.slice(0, 500)}`);
      return;
    }
    if (m.type === 'PING') {
      this.#send({ type: 'PONG', nonce: m.nonce });
      return;
    }
    if (m.type === 'PONG') return;
    if (!a || m.job_id !== a.jobId) return;
    const r = this.#hooks.reporter;
    switch (m.type) {
      case 'PATH_VALIDATED':
        return;
      case 'PATH_ERROR':
        a.pathErrors.push(m);
        r.warn(`worker ${this.#hooks.workerName}: ${m.message}`);
        return;
      case 'BACKEND_NOT_AVAILABLE':
        a.backendMissing = m;
        return;
      case 'JOB_REJECTED':
        this.#end({ kind: 'rejected', code: m.code, message: m.message, pathErrors: a.pathErrors, backendMissing: a.backendMissing });
        return;
      case 'JOB_ACCEPTED':
        this.#accepted = true;
        r.info(`job ${m.job_id} accepted by worker ${this.#hooks.workerName}`);
        return;
      case 'UPLOAD_REQUEST':
        this.#hooks.upload(m, a.uploads.signal).catch((err: unknown) => {
          if (a.uploads.signal.aborted && !a.uploadError) return;
          a.uploadError = err instanceof SleapRtcError ? err : new SleapRtcError('TRANSFER_IO', String(err));
          r.warn(`sending the input files failed: ${a.uploadError.message}`);
          this.cancel();
        });
        return;
      case 'JOB_STARTED':
        this.#hooks.onStarted?.();
        r.info(`sleap-nn started on worker ${m.worker}`);
        return;
      case 'JOB_LOG':
        r.workerLine(this.#hooks.workerName, m.stream, m.line);
        this.#hooks.onLog?.(m.line);
        return;
      case 'JOB_PROGRESS':
        r.epoch(m.epoch, m.total_epochs);
        this.#hooks.onProgress?.(m.epoch, m.total_epochs);
        return;
      case 'TRAIN_EVENT':
        this.#hooks.onTrainEvent?.(m);
        return;
      case 'JOB_STOP_REPLY':
        r.info(`worker ${this.#hooks.workerName}: ${m.message}`);
        this.#hooks.onStopReply?.(m);
        return;
      case 'JOB_COMPLETE':
        this.#end({ kind: 'completed', complete: m });
        return;
      case 'JOB_FAILED':
        this.#end(
          a.uploadError
            ? { kind: 'failed', code: a.uploadError.code, message: a.uploadError.message, exitCode: null, lastLines: [] }
            : { kind: 'failed', code: m.code, message: m.message, exitCode: m.exit_code, lastLines: m.last_lines },
        );
        return;
      case 'JOB_CANCELLED':
        this.#end(
          a.uploadError
            ? { kind: 'failed', code: a.uploadError.code, message: a.uploadError.message, exitCode: null, lastLines: [] }
            : { kind: 'cancelled', reason: m.reason },
        );
        return;
    }
  }

  #end(outcome: AttemptOutcome): void {
    const a = this.#attempt;
    if (!a) return;
    this.#attempt = null;
    if (outcome.kind !== 'completed') a.uploads.abort();
    a.finish(outcome);
  }

  #send(message: ClientToWorker): void {
    try {
      this.#peer.control.send(encodeMessage(message));
    } catch (err) {
      this.#end({ kind: 'lost', error: err instanceof SleapRtcError ? err : new SleapRtcError('PEER_CLOSED', String(err)) });
    }
  }
}
