/**
 * Per-connection token bucket: a peer may send `burst` frames at once and `perSecond` frames per
 * second after that. Refill is computed on demand from the clock, so idle connections cost no
 * timers.
 */
import { performance } from 'node:perf_hooks';

export interface RateLimitOptions {
  burst: number;
  perSecond: number;
}

export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly opts: RateLimitOptions,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.tokens = opts.burst;
    this.last = this.now();
  }

  /** Takes one token; false when the bucket is empty (the frame should be refused). */
  take(): boolean {
    const t = this.now();
    this.tokens = Math.min(this.opts.burst, this.tokens + ((t - this.last) / 1000) * this.opts.perSecond);
    this.last = t;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** True when the bucket has refilled to its burst (nothing to remember about this peer). */
  isFull(): boolean {
    const t = this.now();
    return this.tokens + ((t - this.last) / 1000) * this.opts.perSecond >= this.opts.burst;
  }

  /** Milliseconds until the next token, for the RATE_LIMITED reply. */
  retryAfterMs(): number {
    if (this.tokens >= 1) return 0;
    return Math.ceil(((1 - this.tokens) / this.opts.perSecond) * 1000);
  }
}
