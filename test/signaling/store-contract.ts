/**
 * The contract every SignalingStore implementation must meet (cf. unstorage's shared driver
 * tests). An implementation's test file calls `runStoreContract(name, factory)`; the factory gets
 * a fresh, empty store per test. Expiry is tested with real tiny TTLs, so a networked store with
 * native key expiry can run the same suite.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { NewPeer, RoomRecord, SignalingStore } from '../../src/signaling/store.js';
import { waitFor } from '../helpers/ws-peer.js';
import { runRoutingContract } from './routing-store-contract.js';

export type StoreFactory = () => SignalingStore | Promise<SignalingStore>;

let counter = 0;

function room(overrides: Partial<RoomRecord> = {}): RoomRecord {
  counter += 1;
  return { room_id: `room-${counter}`, token_sha256: 'ab'.repeat(32), created_at_ms: Date.now(), idle_ttl_ms: 60_000, ...overrides };
}

function peer(roomId: string, overrides: Partial<NewPeer> = {}): NewPeer {
  return { room_id: roomId, role: 'worker', metadata: { status: 'available' }, node_id: 'node-a', preferred_id: 'gpu-1', ...overrides };
}

export function runStoreContract(name: string, factory: StoreFactory): void {
  async function fresh(t: { after: (fn: () => Promise<void>) => void }): Promise<SignalingStore> {
    const store = await factory();
    t.after(() => store.close());
    return store;
  }

  test(`${name}: a created room can be read back; a taken id is refused`, async (t) => {
    const store = await fresh(t);
    const r = room();
    assert.equal(await store.createRoom(r), true);
    assert.deepEqual(await store.getRoom(r.room_id), r);
    assert.equal(await store.createRoom({ ...r, token_sha256: 'cd'.repeat(32) }), false);
    assert.equal((await store.getRoom(r.room_id))?.token_sha256, r.token_sha256, 'the first room is untouched');
    assert.equal(await store.getRoom('no-such-room'), undefined);
  });

  test(`${name}: peers join, are listed in join order, and leave`, async (t) => {
    const store = await fresh(t);
    const r = room();
    await store.createRoom(r);
    const a = await store.addPeer(peer(r.room_id, { preferred_id: 'a' }));
    const b = await store.addPeer(peer(r.room_id, { preferred_id: 'b', role: 'client', metadata: {} }));
    assert.equal(a?.peer_id, 'a');
    assert.equal(b?.peer_id, 'b');
    assert.deepEqual(await store.getPeer('a'), a);
    assert.deepEqual(
      (await store.listPeers(r.room_id)).map((p) => p.peer_id),
      ['a', 'b'],
    );
    assert.deepEqual(await store.stats(), { rooms: 1, peers: { worker: 1, client: 1 } });
    assert.deepEqual(await store.removePeer('a'), a);
    assert.equal(await store.removePeer('a'), undefined, 'removing twice is a no-op');
    assert.equal(await store.getPeer('a'), undefined);
    assert.deepEqual(
      (await store.listPeers(r.room_id)).map((p) => p.peer_id),
      ['b'],
    );
    assert.deepEqual(await store.stats(), { rooms: 1, peers: { worker: 0, client: 1 } });
  });

  test(`${name}: a taken peer id gets the next free -N suffix, across rooms`, async (t) => {
    const store = await fresh(t);
    const r1 = room();
    const r2 = room();
    await store.createRoom(r1);
    await store.createRoom(r2);
    const ids = [];
    for (const roomId of [r1.room_id, r2.room_id, r1.room_id]) {
      ids.push((await store.addPeer(peer(roomId, { preferred_id: 'gpu-1' })))?.peer_id);
    }
    assert.deepEqual(ids, ['gpu-1', 'gpu-1-2', 'gpu-1-3']);
    await store.removePeer('gpu-1');
    assert.equal((await store.addPeer(peer(r2.room_id, { preferred_id: 'gpu-1' })))?.peer_id, 'gpu-1', 'a freed id is reused');
    // A suffix never pushes an id past the 128-character limit.
    const long = 'x'.repeat(128);
    await store.addPeer(peer(r1.room_id, { preferred_id: long }));
    const second = await store.addPeer(peer(r1.room_id, { preferred_id: long }));
    assert.equal(second?.peer_id.length, 128);
    assert.match(second?.peer_id ?? '', /-2$/);
  });

  test(`${name}: adding a peer to a missing room fails`, async (t) => {
    const store = await fresh(t);
    assert.equal(await store.addPeer(peer('nowhere')), undefined);
    assert.deepEqual(await store.stats(), { rooms: 0, peers: { worker: 0, client: 0 } });
  });

  test(`${name}: metadata is replaced, not merged, and records cannot be changed from outside`, async (t) => {
    const store = await fresh(t);
    const r = room();
    await store.createRoom(r);
    const metadata = { status: 'available' as const, name: 'w' };
    const added = await store.addPeer(peer(r.room_id, { metadata }));
    assert.ok(added);
    metadata.name = 'changed by caller';
    assert.equal((await store.getPeer(added.peer_id))?.metadata.name, 'w', 'the store kept its own copy');
    assert.throws(() => {
      (added.metadata as { name?: string }).name = 'x';
    }, TypeError);
    const updated = await store.setMetadata(added.peer_id, { status: 'busy' });
    assert.deepEqual(updated?.metadata, { status: 'busy' });
    assert.deepEqual((await store.getPeer(added.peer_id))?.metadata, { status: 'busy' });
    assert.deepEqual((await store.listPeers(r.room_id))[0]?.metadata, { status: 'busy' });
    assert.equal(await store.setMetadata('ghost', {}), undefined);
  });

  test(`${name}: a room with no peer expires after its TTL; one with peers does not`, async (t) => {
    const store = await fresh(t);
    const idle = room({ idle_ttl_ms: 40 });
    const busy = room({ idle_ttl_ms: 40 });
    await store.createRoom(idle);
    await store.createRoom(busy);
    await store.addPeer(peer(busy.room_id));
    await waitFor(async () => (await store.getRoom(idle.room_id)) === undefined, 5000, 'the idle room to expire');
    await store.sweepIdleRooms();
    assert.ok(await store.getRoom(busy.room_id), 'a room with a peer stays');
    assert.equal(await store.addPeer(peer(idle.room_id, { preferred_id: 'late' })), undefined);
    assert.equal((await store.stats()).rooms, 1);
  });

  test(`${name}: the idle clock starts when the last peer leaves`, async (t) => {
    const store = await fresh(t);
    const r = room({ idle_ttl_ms: 40 });
    await store.createRoom(r);
    await store.addPeer(peer(r.room_id, { preferred_id: 'only' }));
    await store.removePeer('only');
    await waitFor(async () => (await store.sweepIdleRooms()).includes(r.room_id), 5000, 'the sweep to remove the room');
    assert.equal(await store.getRoom(r.room_id), undefined);
    assert.deepEqual(await store.listPeers(r.room_id), []);
    assert.deepEqual(await store.sweepIdleRooms(), [], 'a room is reported once');
  });

  runRoutingContract(name, factory);

  test(`${name}: close is safe twice`, async () => {
    const store = await factory();
    await store.close();
    await store.close();
  });
}
