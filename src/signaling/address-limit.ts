/**
 * `POST /rooms` per client address: a token bucket per address (burst, then perHour), so one
 * address cannot fill the store with rooms. Buckets that are full again are forgotten, so the map
 * holds only addresses that created rooms lately.
 */
import { TokenBucket } from './rate-limit.js';

/** Addresses tracked at most; past this the full buckets are dropped first, then everything. */
const MAX_ADDRESSES = 10_000;

export class AddressLimiter {
  private readonly buckets = new Map<string, TokenBucket>();

  constructor(private readonly opts: { burst: number; perHour: number }) {}

  /** Takes one creation for the address: 0 when allowed, else milliseconds until the next one is. */
  take(address: string): number {
    let bucket = this.buckets.get(address);
    if (bucket === undefined) {
      if (this.buckets.size >= MAX_ADDRESSES) this.prune();
      bucket = new TokenBucket({ burst: this.opts.burst, perSecond: this.opts.perHour / 3600 });
      this.buckets.set(address, bucket);
    }
    if (bucket.take()) return 0;
    return Math.max(1, bucket.retryAfterMs());
  }

  private prune(): void {
    for (const [address, bucket] of this.buckets) if (bucket.isFull()) this.buckets.delete(address);
    if (this.buckets.size >= MAX_ADDRESSES) this.buckets.clear();
  }
}
