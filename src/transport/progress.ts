/** Progress of one transfer, as the CLI's progress bars consume it. */

export interface TransferProgressEvent {
  transferId: string;
  name: string;
  /** Bytes confirmed so far: written to disk by the receiver (both sides report the same figure). */
  bytes: number;
  /** Total bytes when known (a file); the sender's estimate for a folder; null when unknown. */
  total: number | null;
  /** Recent rate in bytes per second (smoothed over about a second). */
  rateBytesPerSec: number;
}

/** Exponentially weighted rate: steady enough for a progress bar, quick to follow a change. */
export class RateMeter {
  #lastBytes = 0;
  #lastTime: number;
  #rate = 0;
  readonly #halfLifeMs: number;

  constructor(now = Date.now(), halfLifeMs = 1000) {
    this.#lastTime = now;
    this.#halfLifeMs = halfLifeMs;
  }

  /** Record the running byte count; returns the current rate in bytes per second. */
  update(bytes: number, now = Date.now()): number {
    const dt = now - this.#lastTime;
    if (dt <= 0) return this.#rate;
    const instant = ((bytes - this.#lastBytes) * 1000) / dt;
    const weight = 1 - Math.pow(0.5, dt / this.#halfLifeMs);
    this.#rate = this.#rate === 0 ? instant : this.#rate + weight * (instant - this.#rate);
    this.#lastBytes = bytes;
    this.#lastTime = now;
    return this.#rate;
  }

  get rate(): number {
    return this.#rate;
  }
}
