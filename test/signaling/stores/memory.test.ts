import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SleapRtcError } from '../../../src/errors.js';
import { createMemoryStore, openMemoryStore } from '../../../src/signaling/stores/memory.js';
import { runStoreContract } from '../store-contract.js';

runStoreContract('memory store', () => createMemoryStore(), 'expire-idle');

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

test('memory store with a rooms file: a reopened store knows its rooms and tokens; deleted rooms stay deleted', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'sleap-rtc-rooms-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'state', 'rooms.json');
  const first = await openMemoryStore({ file });
  const kept = { room_id: 'kept', token_sha256: 'ab'.repeat(32), created_at_ms: 5, idle_ttl_ms: 60_000 };
  await first.createRoom(kept);
  await first.createRoom({ ...kept, room_id: 'deleted' });
  await first.addPeer({ room_id: 'kept', role: 'worker', metadata: {}, node_id: 'n', preferred_id: 'w' });
  assert.deepEqual((await first.deleteRoom('deleted'))?.length, 0);
  assert.equal(first.describe().location, file);
  await first.close();
  assert.equal((await stat(file)).mode & 0o777, 0o600, 'the file is private');
  assert.deepEqual((await readdir(join(dir, 'state'))).sort(), ['rooms.json'], 'no temporary file left behind');

  const second = await openMemoryStore({ file });
  assert.deepEqual(await second.getRoom('kept'), kept);
  assert.equal(await second.getRoom('deleted'), undefined);
  assert.equal(await second.wasDeleted('deleted'), true, 'a deleted room is remembered as deleted across the restart');
  assert.deepEqual(await second.listPeers('kept'), [], 'peers are not kept: they register again');
  assert.equal((await second.addPeer({ room_id: 'kept', role: 'worker', metadata: {}, node_id: 'n', preferred_id: 'w' }))?.peer_id, 'w');
  await second.close();
});

test('memory store with a rooms file: the idle clock survives a restart', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'sleap-rtc-rooms-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'rooms.json');
  let now = 1_000;
  const first = await openMemoryStore({ file, now: () => now });
  await first.createRoom({ room_id: 'r', token_sha256: 'ab'.repeat(32), created_at_ms: now, idle_ttl_ms: 100 });
  await first.close();
  now += 100;
  const second = await openMemoryStore({ file, now: () => now });
  t.after(() => second.close());
  assert.equal(await second.getRoom('r'), undefined, 'idle since creation, expired across the restart');
});

test('memory store with a rooms file: a file that is not a rooms file is refused and left alone', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'sleap-rtc-rooms-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const cases = ['not json', '{"version": 2, "rooms": []}', '{"version": 1, "rooms": [{"room_id": "../x"}]}', '[]'];
  for (const text of cases) {
    const file = join(dir, 'rooms.json');
    await writeFile(file, text);
    await assert.rejects(openMemoryStore({ file }), (err: unknown) => err instanceof SleapRtcError && err.code === 'STORE_UNAVAILABLE' && err.message.includes(file), text);
    assert.equal(await readFile(file, 'utf8'), text, 'untouched');
  }
});
