import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TokenBucket } from '../../src/signaling/rate-limit.js';

test('token bucket: allows a burst, refuses the next frame, refills at the set rate', () => {
  let now = 0;
  const bucket = new TokenBucket({ burst: 3, perSecond: 10 }, () => now);
  assert.deepEqual([bucket.take(), bucket.take(), bucket.take(), bucket.take()], [true, true, true, false]);
  assert.equal(bucket.retryAfterMs(), 100);
  now += 50;
  assert.equal(bucket.take(), false, 'half a token is not a token');
  now += 50;
  assert.equal(bucket.take(), true);
  assert.equal(bucket.take(), false);
  now += 60_000;
  assert.deepEqual([bucket.take(), bucket.take(), bucket.take(), bucket.take()], [true, true, true, false], 'refill stops at the burst size');
});
