/** The store contract (and its routing half) against a real redis-server on a free loopback port. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { openRedisStore } from '../../../src/signaling/stores/redis.js';
import { SleapRtcError } from '../../../src/errors.js';
import { StoreUnavailableError, type SignalingStore } from '../../../src/signaling/store.js';
import { runStoreContract } from '../store-contract.js';
import { waitFor } from '../../helpers/ws-peer.js';
import { freePort, startRedisServer, type RedisServer } from '../redis-server.js';

let redis: RedisServer;

before(async () => {
  redis = await startRedisServer();
});
after(async () => {
  await redis.stop();
});

// Each test gets a flushed database, so tests cannot see each other's rooms.
runStoreContract('redis store', async () => {
  const store = await openRedisStore({ url: redis.url });
  await store.connection.redis.flushdb();
  return store;
}, 'kept-until-deleted');

test('redis store: unreachable at start is STORE_UNAVAILABLE naming the URL (no password)', async () => {
  const port = await freePort();
  const err = await openRedisStore({ url: `redis://:s3cret@127.0.0.1:${port}/2` }).then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.ok(err instanceof SleapRtcError);
  assert.equal(err.code, 'STORE_UNAVAILABLE');
  assert.match(err.message, new RegExp(`redis://127\\.0\\.0\\.1:${port}/2`));
  assert.doesNotMatch(err.message, /s3cret/);
});

test('redis store: commands fail fast with StoreUnavailableError while Redis is down, and work again after it is back', async (t) => {
  const own = await startRedisServer();
  t.after(() => own.stop());
  const store: SignalingStore = await openRedisStore({ url: own.url });
  t.after(() => store.close());
  assert.equal(await store.createRoom({ room_id: 'r1', token_sha256: 'ab'.repeat(32), created_at_ms: 1, idle_ttl_ms: 60_000 }), true);
  await own.kill();
  await assert.rejects(store.getRoom('r1'), StoreUnavailableError);
  await waitFor(() => !store.describe().connected, 5000, 'the store to report itself disconnected');
  await assert.rejects(store.getRoom('r1'), StoreUnavailableError);
  await own.start();
  // ioredis reconnects by itself; without persistence the room is gone, but the store works.
  for (let i = 0; ; i++) {
    try {
      await store.ping();
      break;
    } catch (err) {
      if (i > 200) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  assert.equal(store.describe().connected, true);
  assert.equal(await store.getRoom('r1'), undefined);
});
