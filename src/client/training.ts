/**
 * A training run as the client sees it: the epochs finished with their losses, the best
 * validation loss, epoch time and ETA, built from the worker's TRAIN_EVENTs (sleap-nn's ZMQ
 * events), or from JOB_PROGRESS (sleap-nn's log lines) when sleap-nn sends no events.
 *
 * Metric names are Lightning's, as sleap-nn's LightningModules log them
 * (sleap_nn/training/lightning_modules.py): `train/loss` (epoch mean), `val/loss`, `train/lr`,
 * and `loss` (the step loss, on batch_end). Older names (`val_loss`, `lr`) are read as well.
 */
import { LIMITS } from '../limits.js';
import type { TrainEvent, TrainLogs } from '../protocol/progress.js';

export interface EpochRecord {
  /** 1-based: the number of epochs finished when this one ended. */
  epoch: number;
  train_loss: number | null;
  val_loss: number | null;
  lr: number | null;
  /** Wall time of the epoch as the client saw it; null when its start was not seen. */
  seconds: number | null;
}

export interface BatchPoint {
  /** Fractional epochs: epoch index + (batch + 1) / batches per epoch. */
  x: number;
  loss: number;
}

export interface TrainingSnapshot {
  /** Where the figures come from: sleap-nn's ZMQ events, its log lines, or nothing yet. */
  source: 'zmq' | 'log' | 'none';
  epochs_done: number;
  total_epochs: number | null;
  train_loss: number | null;
  val_loss: number | null;
  best: { epoch: number; val_loss: number } | null;
  epoch_seconds: number | null;
  eta_seconds: number | null;
  /** The batch loss most recently relayed, within the running epoch. */
  batch: { epoch: number; batch: number; loss: number | null } | null;
  ended: boolean;
}

const pick = (logs: TrainLogs | null | undefined, ...keys: string[]): number | null => {
  for (const k of keys) {
    const v = logs?.[k];
    if (typeof v === 'number' && Number.isFinite(v)) return v;
  }
  return null;
};

/** Epochs averaged for the ETA (recent ones: the first epoch is often slower). */
const ETA_WINDOW = 5;

export class TrainingProgress {
  readonly history: EpochRecord[] = [];
  readonly batches: BatchPoint[] = [];
  #source: TrainingSnapshot['source'] = 'none';
  #total: number | null;
  #epochStartedAt: number | null = null;
  #lastEpochEndAt: number | null = null;
  #batchesPerEpoch = 1;
  #batch: TrainingSnapshot['batch'] = null;
  #ended = false;
  readonly #now: () => number;

  constructor(opts: { totalEpochs?: number; now?: () => number } = {}) {
    this.#total = opts.totalEpochs ?? null;
    this.#now = opts.now ?? (() => performance.now());
  }

  get source(): TrainingSnapshot['source'] {
    return this.#source;
  }

  /** Applies one relayed sleap-nn event; returns true when an epoch just finished. */
  onEvent(e: TrainEvent): boolean {
    this.#source = 'zmq';
    if (e.total_epochs !== undefined) this.#total = e.total_epochs;
    const now = this.#now();
    switch (e.event) {
      case 'train_begin':
        this.#lastEpochEndAt = now;
        return false;
      case 'epoch_begin':
        this.#epochStartedAt = now;
        return false;
      case 'batch_end': {
        const epoch = e.epoch ?? 0;
        const batch = e.batch ?? 0;
        this.#batchesPerEpoch = Math.max(this.#batchesPerEpoch, batch + 1);
        const loss = pick(e.logs, 'loss', 'train/loss');
        this.#batch = { epoch, batch, loss };
        if (loss !== null) {
          this.batches.push({ x: epoch + (batch + 1) / this.#batchesPerEpoch, loss });
          if (this.batches.length > LIMITS.progressBatchPointsKept) this.batches.splice(0, this.batches.length - LIMITS.progressBatchPointsKept);
        }
        return false;
      }
      case 'epoch_end': {
        const started = this.#epochStartedAt ?? this.#lastEpochEndAt;
        const record: EpochRecord = {
          epoch: (e.epoch ?? this.history.length) + 1,
          train_loss: pick(e.logs, 'train/loss', 'loss'),
          val_loss: pick(e.logs, 'val/loss', 'val_loss'),
          lr: pick(e.logs, 'train/lr', 'lr'),
          seconds: started === null ? null : (now - started) / 1000,
        };
        // A repeated epoch_end (never expected) replaces the record rather than adding a point.
        if (this.history.at(-1)?.epoch === record.epoch) this.history.pop();
        this.history.push(record);
        this.#epochStartedAt = null;
        this.#lastEpochEndAt = now;
        return true;
      }
      case 'train_end':
        this.#ended = true;
        return false;
    }
  }

  /** Log-line progress (`Epoch N/M`), used only while no ZMQ event has arrived. */
  onLogProgress(epoch: number, total: number): boolean {
    if (this.#source === 'zmq') return false;
    this.#source = 'log';
    this.#total = total;
    const now = this.#now();
    const changed = epoch !== this.history.length;
    while (this.history.length < epoch) {
      const seconds = this.#lastEpochEndAt === null ? null : (now - this.#lastEpochEndAt) / 1000;
      this.history.push({ epoch: this.history.length + 1, train_loss: null, val_loss: null, lr: null, seconds });
    }
    this.#lastEpochEndAt = now;
    return changed;
  }

  snapshot(): TrainingSnapshot {
    const last = this.history.at(-1);
    let best: TrainingSnapshot['best'] = null;
    for (const r of this.history) if (r.val_loss !== null && (best === null || r.val_loss < best.val_loss)) best = { epoch: r.epoch, val_loss: r.val_loss };
    const times = this.history.map((r) => r.seconds).filter((s): s is number => s !== null).slice(-ETA_WINDOW);
    const mean = times.length ? times.reduce((a, b) => a + b, 0) / times.length : null;
    // The last record's own number, not the count of records: an epoch_end lost by ZMQ on the way
    // (docs/jobs.md) leaves a gap in the history but not in the count of finished epochs.
    const done = last?.epoch ?? 0;
    const remaining = this.#total !== null ? Math.max(0, this.#total - done) : null;
    return {
      source: this.#source,
      epochs_done: done,
      total_epochs: this.#total,
      train_loss: last?.train_loss ?? null,
      val_loss: last?.val_loss ?? null,
      best,
      epoch_seconds: last?.seconds ?? null,
      eta_seconds: mean !== null && remaining !== null ? mean * remaining : null,
      batch: this.#batch,
      ended: this.#ended,
    };
  }
}

// ---- formatting -----------------------------------------------------------------------------

export function formatLoss(v: number | null): string {
  if (v === null) return '-';
  return v !== 0 && (Math.abs(v) < 1e-3 || Math.abs(v) >= 1e4) ? v.toExponential(3) : v.toPrecision(4);
}

export function formatDuration(seconds: number | null): string {
  if (seconds === null) return '-';
  const s = Math.round(seconds);
  if (s < 60) return seconds < 10 ? `${seconds.toFixed(1)} s` : `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} min`;
}

/** One line: `epoch 3/100 | train 0.0123 | val 0.0145 | best val 0.0140 (epoch 2) | 12.3 s/epoch | ETA 20 min 04 s`. */
export function trainingLine(s: TrainingSnapshot): string {
  const parts = [`epoch ${s.epochs_done}/${s.total_epochs ?? '?'}`];
  if (s.source === 'zmq') {
    parts.push(`train ${formatLoss(s.train_loss)}`, `val ${formatLoss(s.val_loss)}`);
    parts.push(s.best ? `best val ${formatLoss(s.best.val_loss)} (epoch ${s.best.epoch})` : 'best val -');
  }
  parts.push(`${formatDuration(s.epoch_seconds)}/epoch`, `ETA ${formatDuration(s.eta_seconds)}`);
  return parts.join(' | ');
}
