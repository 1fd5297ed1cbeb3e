/**
 * What a running job shows the user, on stderr (stdout is kept for results): status lines,
 * sleap-nn's own lines, and progress of uploads, epochs and downloads. On a terminal the progress
 * is drawn as bars (cli-progress) with lines scrolling above them; otherwise it is plain lines,
 * transfers reported every tenth of the way, so logs stay readable in files and CI.
 */
import cliProgress from 'cli-progress';
import type { TransferProgressEvent } from '../transport/progress.js';
import { trainingLine, type TrainingSnapshot } from './training.js';

export type TransferDirection = 'upload' | 'download';

export interface JobReporter {
  info(message: string): void;
  warn(message: string): void;
  /** One line of sleap-nn's output. */
  workerLine(worker: string, stream: 'stdout' | 'stderr', line: string): void;
  epoch(epoch: number, total: number): void;
  /** sleap-nn's training events: the one live line (epoch, losses, best, epoch time, ETA). */
  training(snapshot: TrainingSnapshot): void;
  transfer(direction: TransferDirection, progress: TransferProgressEvent): void;
  /** Stop drawing; safe to call twice. */
  close(): void;
}

export function createReporter(opts: { stream?: NodeJS.WritableStream & { isTTY?: boolean }; tty?: boolean } = {}): JobReporter {
  const stream = opts.stream ?? process.stderr;
  return (opts.tty ?? stream.isTTY === true) ? new BarReporter(stream) : new LineReporter(stream);
}

/** A reporter that shows nothing (library callers, benchmarks). */
export function silentReporter(): JobReporter {
  const nop = (): void => {};
  return { info: nop, warn: nop, workerLine: nop, epoch: nop, training: nop, transfer: nop, close: nop };
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} B` : `${v.toFixed(1)} ${units[u]}`;
}

function clock(): string {
  return new Date().toTimeString().slice(0, 8);
}

class LineReporter implements JobReporter {
  readonly #out: NodeJS.WritableStream;
  readonly #tenths = new Map<string, number>();
  #epochsShown = 0;

  constructor(out: NodeJS.WritableStream) {
    this.#out = out;
  }

  info(message: string): void {
    this.#out.write(`[${clock()}] ${message}\n`);
  }

  warn(message: string): void {
    this.#out.write(`[${clock()}] warning: ${message}\n`);
  }

  workerLine(worker: string, _stream: 'stdout' | 'stderr', line: string): void {
    this.#out.write(`  ${worker} | ${line}\n`);
  }

  epoch(): void {
    // sleap-nn's own "Epoch N/M" lines already say it.
  }

  /** One line per finished epoch. */
  training(s: TrainingSnapshot): void {
    if (s.epochs_done <= this.#epochsShown) return;
    this.#epochsShown = s.epochs_done;
    this.info(trainingLine(s));
  }

  transfer(direction: TransferDirection, p: TransferProgressEvent): void {
    const total = p.total ?? 0;
    const tenth = total > 0 ? Math.min(10, Math.floor((p.bytes / total) * 10)) : 0;
    const last = this.#tenths.get(p.transferId) ?? -1;
    if (tenth <= last) return;
    this.#tenths.set(p.transferId, tenth);
    const of = total > 0 ? ` of ${formatBytes(total)}` : '';
    const rate = p.rateBytesPerSec > 0 ? `, ${formatBytes(p.rateBytesPerSec)}/s` : '';
    this.info(`${direction} ${p.name}: ${tenth * 10}% (${formatBytes(p.bytes)}${of}${rate})`);
  }

  close(): void {}
}

class BarReporter implements JobReporter {
  readonly #out: NodeJS.WritableStream;
  readonly #bars: cliProgress.MultiBar;
  readonly #transfers = new Map<string, cliProgress.SingleBar>();
  #epochs: cliProgress.SingleBar | null = null;
  #richEpochs = false;
  #closed = false;

  constructor(out: NodeJS.WritableStream) {
    this.#out = out;
    this.#bars = new cliProgress.MultiBar(
      {
        stream: out,
        format: ' {label} [{bar}] {percentage}% | {detail}',
        hideCursor: true,
        clearOnComplete: false,
        fps: 5,
      },
      cliProgress.Presets.shades_classic,
    );
  }

  info(message: string): void {
    this.#log(`[${clock()}] ${message}`);
  }

  warn(message: string): void {
    this.#log(`[${clock()}] warning: ${message}`);
  }

  workerLine(worker: string, _stream: 'stdout' | 'stderr', line: string): void {
    this.#log(`  ${worker} | ${line}`);
  }

  epoch(epoch: number, total: number): void {
    if (this.#closed || this.#richEpochs) return;
    this.#epochs ??= this.#bars.create(total, 0, { label: 'training'.padEnd(24), detail: '' });
    this.#epochs.setTotal(total);
    this.#epochs.update(epoch, { detail: `epoch ${epoch}/${total}` });
  }

  training(s: TrainingSnapshot): void {
    if (this.#closed) return;
    this.#richEpochs = true;
    const total = Math.max(s.total_epochs ?? s.epochs_done, 1);
    this.#epochs ??= this.#bars.create(total, 0, { label: 'training'.padEnd(24), detail: '' });
    this.#epochs.setTotal(total);
    this.#epochs.update(s.epochs_done, { detail: trainingLine(s) });
    // Drawn now, not at the bars' next frame: an epoch's figures show as soon as they arrive.
    this.#bars.update();
  }

  transfer(direction: TransferDirection, p: TransferProgressEvent): void {
    if (this.#closed) return;
    const total = Math.max(p.total ?? p.bytes, 1);
    const label = `${direction} ${p.name}`.slice(0, 24).padEnd(24);
    const detail = `${formatBytes(p.bytes)} of ${formatBytes(total)}${p.rateBytesPerSec > 0 ? `, ${formatBytes(p.rateBytesPerSec)}/s` : ''}`;
    let bar = this.#transfers.get(p.transferId);
    if (!bar) {
      bar = this.#bars.create(total, 0, { label, detail });
      this.#transfers.set(p.transferId, bar);
    }
    bar.setTotal(total);
    bar.update(p.bytes, { label, detail });
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#bars.isActive) this.#bars.stop();
  }

  /**
   * cli-progress only prints logged lines on its next redraw, and never once stopped: with no
   * bar on screen a line is written straight away, with bars it is logged and redrawn at once.
   */
  #log(line: string): void {
    if (this.#closed || !this.#bars.isActive) {
      this.#out.write(`${line}\n`);
      return;
    }
    this.#bars.log(`${line}\n`);
    this.#bars.update();
  }
}
