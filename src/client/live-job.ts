/**
 * The state of one running job on the client, for whoever watches or steers it: the terminal
 * line, the live page (src/client/ui), and SLEAP's LossViewer (lossviewer.ts). `runJob` feeds it
 * (worker, transfer, status, relayed events, log lines) and installs the stop handler once
 * sleap-nn trains on a worker; watchers read `snapshot()` and listen for changes.
 */
import { EventEmitter } from 'node:events';
import { LIMITS } from '../limits.js';
import type { TrainEvent } from '../protocol/progress.js';
import { TrainingProgress, type EpochRecord, type TrainingSnapshot } from './training.js';

export type LiveStatus = 'starting' | 'running' | 'stopping' | 'completed' | 'stopped_early' | 'failed' | 'cancelled';

export type StopSource = 'ctrl-c' | 'page' | 'lossviewer';

/** What a stop request did: sent (or will be once sleap-nn listens), or nothing to stop. */
export type StopAnswer = 'stopping' | 'not_training' | 'already_ending';

/** `mixed`: shared storage, with the videos that lie under no backend sent over the data channel. */
export type TransferMode = 'shared' | 'webrtc' | 'mixed';

export interface LiveSnapshot {
  job_id: string;
  job_type: 'train' | 'track';
  status: LiveStatus;
  worker: string | null;
  transfer: TransferMode;
  storage_backend: string | null;
  run_name: string | null;
  /** The latest word on a stop request (the worker's JOB_STOP_REPLY message). */
  stop_message: string | null;
  training: TrainingSnapshot;
  history: EpochRecord[];
}

interface LiveJobEvents {
  /** Something in the snapshot changed. */
  change: [];
  /** A relayed sleap-nn event, in order (LossViewer re-publishes these). */
  train_event: [TrainEvent];
  /** One line of sleap-nn's output. */
  log: [string];
  /** A stop was asked for (by anyone). */
  stop: [StopSource];
}

export class LiveJob extends EventEmitter<LiveJobEvents> {
  readonly jobId: string;
  readonly jobType: 'train' | 'track';
  readonly runName: string | null;
  readonly training: TrainingProgress;
  readonly logTail: string[] = [];
  worker: string | null = null;
  transfer: TransferMode;
  storageBackend: string | null;
  #status: LiveStatus = 'starting';
  #stopper: (() => void) | null = null;
  #stopMessage: string | null = null;

  constructor(opts: { jobId: string; jobType: 'train' | 'track'; transfer: TransferMode; storageBackend: string | null; runName?: string; totalEpochs?: number }) {
    super();
    this.jobId = opts.jobId;
    this.jobType = opts.jobType;
    this.transfer = opts.transfer;
    this.storageBackend = opts.storageBackend;
    this.runName = opts.runName ?? null;
    this.training = new TrainingProgress(opts.totalEpochs !== undefined ? { totalEpochs: opts.totalEpochs } : {});
  }

  get status(): LiveStatus {
    return this.#status;
  }

  /**
   * A training job whose sleap-nn reports progress over ZMQ (so its stop controller listens too)
   * and has not been asked to stop: the first Ctrl-C stops it. Before the first event (sleap-nn
   * still loading, or one without ZMQ support) a stop could not be carried out, so Ctrl-C cancels.
   */
  get canStop(): boolean {
    return this.#stopper !== null && this.#status === 'running' && this.training.source === 'zmq';
  }

  setStatus(status: LiveStatus): void {
    if (this.#status === status) return;
    // Once the job ended, nothing changes it back.
    if (['completed', 'stopped_early', 'failed', 'cancelled'].includes(this.#status)) return;
    this.#status = status;
    if (status !== 'running' && status !== 'stopping') this.#stopper = null;
    this.emit('change');
  }

  setWorker(name: string): void {
    this.worker = name;
    this.emit('change');
  }

  setTransfer(transfer: TransferMode, storageBackend: string | null): void {
    this.transfer = transfer;
    this.storageBackend = storageBackend;
    this.emit('change');
  }

  /** runJob installs how to stop (a JOB_STOP to the worker) while a training job runs; null removes it. */
  setStopper(stop: (() => void) | null): void {
    this.#stopper = this.jobType === 'train' ? stop : null;
  }

  requestStop(source: StopSource): StopAnswer {
    if (this.#status === 'stopping') return 'already_ending';
    if (!this.canStop || !this.#stopper) return ['running', 'starting'].includes(this.#status) ? 'not_training' : 'already_ending';
    this.#stopper();
    this.setStatus('stopping');
    this.emit('stop', source);
    return 'stopping';
  }

  stopReply(message: string): void {
    this.#stopMessage = message;
    this.emit('change');
  }

  trainEvent(e: TrainEvent): void {
    this.training.onEvent(e);
    this.emit('train_event', e);
    this.emit('change');
  }

  logProgress(epoch: number, total: number): void {
    if (this.training.onLogProgress(epoch, total)) this.emit('change');
  }

  log(line: string): void {
    this.logTail.push(line);
    if (this.logTail.length > LIMITS.progressLogTailLines) this.logTail.splice(0, this.logTail.length - LIMITS.progressLogTailLines);
    this.emit('log', line);
  }

  snapshot(): LiveSnapshot {
    return {
      job_id: this.jobId,
      job_type: this.jobType,
      status: this.#status,
      worker: this.worker,
      transfer: this.transfer,
      storage_backend: this.storageBackend,
      run_name: this.runName,
      stop_message: this.#stopMessage,
      training: this.training.snapshot(),
      history: [...this.training.history],
    };
  }
}
