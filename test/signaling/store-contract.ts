/**
 * The contract every SignalingStore implementation must meet (cf. unstorage's shared driver
 * tests). An implementation's test file calls `runStoreContract(name, factory)`; the factory gets
 * a fresh, empty store per test. Expiry is tested with real tiny TTLs, so a networked store with
 * native key expiry can run the same suite.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RoomFullError, type NewPeer, type RoomRecord, type SignalingStore } from '../../src/signaling/store.js';
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

/**
 * What a store does with a room that has no peer: `expire-idle` removes it after its idle TTL
 * (the memory store, one process); `kept-until-deleted` keeps it until DELETE (the Redis store,
 * whose rooms must outlive every server process).
 */
export type IdleRooms = 'expire-idle' | 'kept-until-deleted';

export function runStoreContract(name: string, factory: StoreFactory, idleRooms: IdleRooms): void {
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

  test(`${name}: says whether it keeps rooms until deleted (what POST /rooms tells the room's creator)`, async (t) => {
    const store = await fresh(t);
    assert.equal(store.keepsRoomsUntilDeleted, idleRooms === 'kept-until-deleted');
  });

  if (idleRooms === 'expire-idle') {
    test(`${name}: a room with no peer expires after its TTL; one with peers does not`, async (t) => {
      const store = await fresh(t);
      const idle = room({ idle_ttl_ms: 40 });
      // Long enough that the peer surely joins before it runs out, even on a loaded machine.
      const busy = room({ idle_ttl_ms: 1000 });
      await store.createRoom(idle);
      await store.createRoom(busy);
      const joinedAt = Date.now();
      await store.addPeer(peer(busy.room_id));
      await waitFor(async () => (await store.getRoom(idle.room_id)) === undefined, 5000, 'the idle room to expire');
      // Past the busy room's TTL too: it stays because it has a peer.
      await new Promise((r) => setTimeout(r, Math.max(0, joinedAt + 1100 - Date.now())));
      await store.sweepIdleRooms();
      assert.ok(await store.getRoom(busy.room_id), 'a room with a peer stays');
      assert.equal(await store.addPeer(peer(idle.room_id, { preferred_id: 'late' })), undefined);
      assert.equal(await store.wasDeleted(idle.room_id), true, 'an expired room counts as deleted');
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
  } else {
    test(`${name}: a room with no peer is kept until deleted, past its idle TTL, token and all`, async (t) => {
      const store = await fresh(t);
      const r = room({ idle_ttl_ms: 20 });
      await store.createRoom(r);
      await store.addPeer(peer(r.room_id, { preferred_id: 'only' }));
      await store.removePeer('only');
      // Well past the TTL, with sweeps: still there, with the same token digest, and joinable.
      await new Promise((resolve) => setTimeout(resolve, 200));
      assert.deepEqual(await store.sweepIdleRooms(), []);
      assert.deepEqual(await store.getRoom(r.room_id), r);
      assert.equal(await store.wasDeleted(r.room_id), false);
      assert.equal((await store.addPeer(peer(r.room_id, { preferred_id: 'back' })))?.peer_id, 'back');
      assert.equal((await store.stats()).rooms, 1);
      await store.deleteRoom(r.room_id);
      assert.equal(await store.getRoom(r.room_id), undefined, 'until it is deleted');
      assert.equal(await store.wasDeleted(r.room_id), true);
    });
  }

  test(`${name}: deleteRoom removes the room with its peers and routing state, and reports the peers`, async (t) => {
    const store = await fresh(t);
    const r = room();
    const keep = room();
    await store.createRoom(r);
    await store.createRoom(keep);
    await store.addPeer(peer(r.room_id, { preferred_id: 'a' }));
    await store.addPeer(peer(r.room_id, { preferred_id: 'b', role: 'client', metadata: {} }));
    await store.addPeer(peer(keep.room_id, { preferred_id: 'k' }));
    const gone = await store.deleteRoom(r.room_id);
    assert.deepEqual(gone?.map((p) => p.peer_id).sort(), ['a', 'b']);
    assert.equal(await store.getRoom(r.room_id), undefined);
    assert.equal(await store.getPeer('a'), undefined);
    assert.deepEqual(await store.listPeers(r.room_id), []);
    assert.deepEqual(await store.stats(), { rooms: 1, peers: { worker: 1, client: 0 } });
    assert.equal(await store.deleteRoom(r.room_id), undefined, 'deleting twice reports nothing');
    assert.equal(await store.wasDeleted(r.room_id), true, 'remembered as deleted');
    assert.equal(await store.wasDeleted(keep.room_id), false);
    assert.equal(await store.wasDeleted('never-existed'), false);
    assert.equal((await store.addPeer(peer(keep.room_id, { preferred_id: 'a' })))?.peer_id, 'a', 'the ids are free again');
  });

  test(`${name}: max_room_peers refuses the peer past the limit with RoomFullError`, async (t) => {
    const store = await fresh(t);
    const r = room();
    await store.createRoom(r);
    await store.addPeer(peer(r.room_id, { preferred_id: 'one', max_room_peers: 2 }));
    await store.addPeer(peer(r.room_id, { preferred_id: 'two', max_room_peers: 2 }));
    await assert.rejects(store.addPeer(peer(r.room_id, { preferred_id: 'three', max_room_peers: 2 })), (err: unknown) => err instanceof RoomFullError && err.limit === 2);
    assert.equal(await store.getPeer('three'), undefined);
    await store.removePeer('one');
    assert.equal((await store.addPeer(peer(r.room_id, { preferred_id: 'three', max_room_peers: 2 })))?.peer_id, 'three');
  });

  test(`${name}: presence: a node whose heartbeat ran out is dead, and its peers are listed for removal`, async (t) => {
    const store = await fresh(t);
    const r = room();
    await store.createRoom(r);
    await store.heartbeat('node-a', 1_000, 500);
    await store.heartbeat('node-b', 1_000, 5_000);
    await store.addPeer(peer(r.room_id, { preferred_id: 'on-a', node_id: 'node-a' }));
    await store.addPeer(peer(r.room_id, { preferred_id: 'on-b', node_id: 'node-b' }));
    assert.equal(await store.isNodeAlive('node-a', 1_400), true);
    assert.deepEqual(await store.deadNodes(1_400), []);
    assert.deepEqual(await store.deadNodes(1_600), ['node-a']);
    assert.equal(await store.isNodeAlive('node-a', 1_600), false);
    assert.equal(await store.isNodeAlive('never-seen', 1_600), false);
    assert.deepEqual(await store.nodePeers('node-a'), ['on-a']);
    assert.deepEqual((await store.removePeer('on-a'))?.peer_id, 'on-a');
    assert.equal(await store.removePeer('on-a'), undefined, 'a second sweeper gets nothing');
    assert.deepEqual(await store.nodePeers('node-a'), []);
    await store.forgetNode('node-a');
    assert.deepEqual(await store.deadNodes(1_600), []);
    assert.deepEqual(await store.nodePeers('node-b'), ['on-b']);
  });

  test(`${name}: routing deadlines are indexed per room for any process to find`, async (t) => {
    const store = await fresh(t);
    const r = room();
    await store.createRoom(r);
    const state = { seq: 1, assignments: 0, queue: [], reservations: [], last_assigned: { w: 1 } };
    await store.updateRouting(r.room_id, () => ({ state, result: undefined }));
    assert.deepEqual(await store.dueRoutingRooms(Number.MAX_SAFE_INTEGER), [], 'no deadline, not indexed');
    const request = {
      room_id: r.room_id,
      client_peer_id: 'c',
      request_id: 'q',
      requirements: { job_type: 'train' as const, required_storage: null },
      requested_at_ms: 0,
      deadline_ms: 5_000,
      seq: 1,
      excluded: [],
    };
    await store.updateRouting(r.room_id, () => ({ state: { ...state, queue: [request] }, result: undefined }));
    assert.deepEqual(await store.dueRoutingRooms(4_999), []);
    assert.deepEqual(await store.dueRoutingRooms(5_000), [r.room_id]);
    assert.deepEqual((await store.readRouting(r.room_id)).queue.map((q) => q.request_id), ['q']);
    await store.updateRouting(r.room_id, () => ({ state, result: undefined }));
    assert.deepEqual(await store.dueRoutingRooms(Number.MAX_SAFE_INTEGER), []);
    // A step that returns no state changes nothing and may return anything.
    assert.equal(await store.updateRouting(r.room_id, () => ({ state: undefined, result: 42 })), 42);
  });

  runRoutingContract(name, factory);

  test(`${name}: close is safe twice`, async () => {
    const store = await factory();
    await store.close();
    await store.close();
  });
}
