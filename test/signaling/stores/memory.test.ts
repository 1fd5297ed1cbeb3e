import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createMemoryStore } from '../../../src/signaling/stores/memory.js';
import { runStoreContract } from '../store-contract.js';

runStoreContract('memory store', () => createMemoryStore());

test('memory store: expiry follows the injected clock exactly', async () => {
  let now = 1_000;
  const store = createMemoryStore({ now: () => now });
  await store.createRoom({ room_id: 'r', token_sha256: 'ab'.repeat(32), created_at_ms: now, idle_ttl_ms: 100 });
  now += 99;
  assert.deepEqual(await store.sweepIdleRooms(), []);
  assert.ok(await store.getRoom('r'));
  now += 1;
  assert.equal(await store.getRoom('r'), undefined, 'expired at exactly created + ttl');
  await store.close();
});

test('memory store: refuses use after close', async () => {
  const store = createMemoryStore();
  await store.close();
  await assert.rejects(store.getRoom('x'), /closed/);
});
