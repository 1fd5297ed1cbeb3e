/** Room and peer behaviour of the signaling server, through real ws clients on loopback. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IdSchema } from '../../src/protocol/common.js';
import { ServerToPeerSchema } from '../../src/protocol/signaling.js';
import { openPeer, waitFor, workerMetadata, type Msg, type TestPeer } from '../helpers/ws-peer.js';
import { startHarness } from './harness.js';

/** Every frame the server sent must be a valid server -> peer message. */
function assertAllValid(...peers: TestPeer[]): void {
  for (const p of peers) {
    for (const m of p.received) assert.equal(ServerToPeerSchema.safeParse(m).success, true, JSON.stringify(m));
  }
}

test('register: the reply names the peer, the room and the others; the others hear peer_joined', async (t) => {
  const h = await startHarness(t);
  const worker = await h.join({ role: 'worker', peer_id: 'gpu-1', metadata: workerMetadata(['vast']) });
  const client = await h.join({ role: 'client', peer_id: 'laptop' });
  const workerReg = worker.registered;
  assert.deepEqual(workerReg, { type: 'registered', peer_id: 'gpu-1', room_id: h.room.room_id, peers: [] });
  assert.deepEqual(client.registered?.peers, [{ peer_id: 'gpu-1', role: 'worker', metadata: workerMetadata(['vast']) }]);
  const joined = await worker.next('peer_joined');
  assert.deepEqual(joined.peer, { peer_id: 'laptop', role: 'client', metadata: {} });
  await client.barrier();
  assert.equal(client.received.filter((m) => m.type === 'peer_joined').length, 0, 'a peer does not hear about itself');
  assert.deepEqual(h.server.metrics().peers, { worker: 1, client: 1 });
  assertAllValid(worker, client);
});

test('register: without a peer_id the server draws one; a taken id gets -2, -3; a freed id is reused', async (t) => {
  const h = await startHarness(t);
  const anon = await h.join({ role: 'worker' });
  assert.match(anon.peerId, /^worker-[a-z0-9]{6}$/);
  assert.equal(IdSchema.safeParse(anon.peerId).success, true);
  const first = await h.join({ peer_id: 'gpu-1' });
  const second = await h.join({ peer_id: 'gpu-1' });
  const third = await h.join({ peer_id: 'gpu-1' });
  assert.deepEqual([first.peerId, second.peerId, third.peerId], ['gpu-1', 'gpu-1-2', 'gpu-1-3']);
  await first.close();
  await anon.next('peer_left', (m) => m.peer_id === 'gpu-1');
  const again = await h.join({ peer_id: 'gpu-1' });
  assert.equal(again.peerId, 'gpu-1');
});

test('register: ids are unique across rooms too (a relay target names exactly one peer)', async (t) => {
  const h = await startHarness(t);
  const other = await h.server.createRoom();
  const a = await h.join({ peer_id: 'same' });
  const b = await h.join({ peer_id: 'same', room_id: other.room_id, token: other.token });
  assert.equal(a.peerId, 'same');
  assert.equal(b.peerId, 'same-2');
});

const REFUSALS = [
  { name: 'unknown room', patch: { room_id: 'no-such-room' }, code: 'ROOM_NOT_FOUND', close: 4004 },
  { name: 'wrong token', patch: { token: 'wrong-token' }, code: 'INVALID_TOKEN', close: 4001 },
  { name: 'token of another room', patch: 'other-token', code: 'INVALID_TOKEN', close: 4001 },
  { name: 'right token with a suffix', patch: 'token-suffix', code: 'INVALID_TOKEN', close: 4001 },
  { name: 'empty-looking token', patch: { token: ' ' }, code: 'INVALID_TOKEN', close: 4001 },
] as const;

for (const c of REFUSALS) {
  test(`register refused: ${c.name} -> ${c.code}, socket closed with ${c.close}, nothing stored`, async (t) => {
    const h = await startHarness(t);
    const other = await h.server.createRoom();
    const patch =
      c.patch === 'other-token' ? { token: other.token } : c.patch === 'token-suffix' ? { token: `${h.room.token}x` } : c.patch;
    const peer = await h.open();
    peer.send({ type: 'register', role: 'worker', room_id: h.room.room_id, token: h.room.token, metadata: {}, ...patch });
    const err = await peer.next('error');
    assert.equal(err.code, c.code);
    assert.match(String(err.message), /sleap-rtc room create/, 'the message says what to do');
    const closed = await peer.closed;
    assert.equal(closed.code, c.close);
    assert.equal(closed.reason, c.code);
    await waitFor(() => h.server.metrics().connections === 0, 5000, 'the connection to be gone');
    assert.deepEqual(h.server.metrics().peers, { worker: 0, client: 0 });
    assert.equal(h.server.metrics().errors[c.code], 1);
  });
}

test('register: a second register on one socket is ALREADY_REGISTERED and the socket stays up', async (t) => {
  const h = await startHarness(t);
  const peer = await h.join({ peer_id: 'one' });
  peer.send({ type: 'register', role: 'client', room_id: h.room.room_id, token: h.room.token, peer_id: 'two' });
  const err = await peer.next('error');
  assert.equal(err.code, 'ALREADY_REGISTERED');
  await peer.barrier();
  assert.deepEqual(h.server.metrics().peers, { worker: 0, client: 1 });
});

test('register: a socket that never registers is closed after the register timeout (4008)', async (t) => {
  const h = await startHarness(t, { registerTimeoutMs: 100 });
  const peer = await h.open();
  const closed = await peer.closed;
  assert.equal(closed.code, 4008);
  assert.equal(peer.received[0]?.code, 'NOT_REGISTERED');
});

test('discover_peers: filters by role, status and storage backend, only in the own room, never the sender', async (t) => {
  const h = await startHarness(t);
  const other = await h.server.createRoom();
  await h.join({ role: 'worker', peer_id: 'vast-1', metadata: workerMetadata(['vast', 'scratch']) });
  await h.join({ role: 'worker', peer_id: 'vast-busy', metadata: workerMetadata(['vast'], { status: 'busy' }) });
  await h.join({ role: 'worker', peer_id: 'nfs-1', metadata: workerMetadata(['nfs']) });
  await h.join({ role: 'worker', peer_id: 'none', metadata: workerMetadata([], { capabilities: { storage_backends: [], job_types: ['train'], max_concurrent_jobs: 4, gpu: { name: 'RTX 4090', memory_mb: 24564 } } }) });
  await h.join({ role: 'worker', peer_id: 'elsewhere', metadata: workerMetadata(['vast']), room_id: other.room_id, token: other.token });
  const me = await h.join({ role: 'client', peer_id: 'me' });

  const ask = async (filters: unknown): Promise<string[]> => {
    const request_id = `r-${Math.random()}`;
    me.send({ type: 'discover_peers', filters, request_id });
    const list = await me.next<Msg & { peers: { peer_id: string }[] }>('peer_list', (m) => m.request_id === request_id);
    return list.peers.map((p) => p.peer_id).sort();
  };
  assert.deepEqual(await ask({}), ['nfs-1', 'none', 'vast-1', 'vast-busy']);
  assert.deepEqual(await ask({ role: 'client' }), []);
  assert.deepEqual(await ask({ role: 'worker', status: 'available' }), ['nfs-1', 'none', 'vast-1']);
  assert.deepEqual(await ask({ status: 'busy' }), ['vast-busy']);
  assert.deepEqual(await ask({ properties: { 'capabilities.storage_backends': { $contains: 'vast' } } }), ['vast-1', 'vast-busy']);
  assert.deepEqual(await ask({ status: 'available', properties: { 'capabilities.storage_backends': { $contains: 'vast' } } }), ['vast-1']);
  assert.deepEqual(await ask({ properties: { 'capabilities.gpu.memory_mb': { $gte: 16000 } } }), ['none']);
  assert.deepEqual(await ask({ properties: { 'capabilities.max_concurrent_jobs': { $lte: 1 } } }), ['nfs-1', 'vast-1', 'vast-busy']);
  assert.deepEqual(await ask({ properties: { 'capabilities.gpu.name': { $contains: '4090' } } }), ['none']);
  assert.deepEqual(await ask({ properties: { 'capabilities.storage_backends.0': { $in: ['nfs', 'scratch'] } } }), ['nfs-1']);
  // Without request_id the reply has none.
  me.send({ type: 'discover_peers' });
  const plain = await me.next('peer_list', (m) => m.request_id === undefined);
  assert.equal(Object.hasOwn(plain, 'request_id'), false);
  assertAllValid(me);
});

test('update_metadata: replaces the metadata, is visible to discover at once, and others hear peer_updated', async (t) => {
  const h = await startHarness(t);
  const worker = await h.join({ role: 'worker', peer_id: 'w', metadata: workerMetadata(['vast']) });
  const client = await h.join({ role: 'client', peer_id: 'c' });
  worker.send({ type: 'update_metadata', metadata: workerMetadata(['vast'], { status: 'busy' }) });
  // The worker's next message is handled after the update; relaying it orders the client's view.
  worker.send({ type: 'peer_message', to_peer_id: 'c', payload: 'updated' });
  await client.next('peer_message');
  client.send({ type: 'discover_peers', filters: { status: 'busy' }, request_id: 'q' });
  const list = await client.next<Msg & { peers: { peer_id: string }[] }>('peer_list');
  assert.deepEqual(
    list.peers.map((p) => p.peer_id),
    ['w'],
  );
  const updated = await client.next('peer_updated');
  assert.deepEqual(updated.peer, { peer_id: 'w', role: 'worker', metadata: workerMetadata(['vast'], { status: 'busy' }) });
  await worker.barrier();
  assert.equal(worker.received.filter((m) => m.type === 'peer_updated').length, 0, 'the sender does not hear its own update');
  // Replace, not merge: a later update without `name` drops it.
  worker.send({ type: 'update_metadata', metadata: { status: 'available' } });
  const second = await client.next('peer_updated', (m) => (m.peer as { metadata: { status: string } }).metadata.status === 'available');
  assert.deepEqual((second.peer as { metadata: unknown }).metadata, { status: 'available' });
});

test('relay: peer_message and offer/answer/candidate reach the target with the server-set sender', async (t) => {
  const h = await startHarness(t);
  const a = await h.join({ peer_id: 'a' });
  const b = await h.join({ peer_id: 'b' });
  a.send({ type: 'peer_message', to_peer_id: 'b', payload: { job: 1, nested: ['x'] } });
  assert.deepEqual(await b.next('peer_message'), { type: 'peer_message', from_peer_id: 'a', payload: { job: 1, nested: ['x'] } });
  a.send({ type: 'offer', target: 'b', sdp: 'v=0 offer' });
  assert.deepEqual(await b.next('offer'), { type: 'offer', sender: 'a', sdp: 'v=0 offer' });
  b.send({ type: 'answer', target: 'a', sdp: 'v=0 answer' });
  assert.deepEqual(await a.next('answer'), { type: 'answer', sender: 'b', sdp: 'v=0 answer' });
  b.send({ type: 'candidate', target: 'a', candidate: 'candidate:1 1 UDP 1 127.0.0.1 5000 typ host', mid: '0' });
  assert.deepEqual(await a.next('candidate'), {
    type: 'candidate',
    sender: 'b',
    candidate: 'candidate:1 1 UDP 1 127.0.0.1 5000 typ host',
    mid: '0',
  });
  // Order is kept for a burst.
  for (let i = 0; i < 50; i++) a.send({ type: 'peer_message', to_peer_id: 'b', payload: i });
  const got: unknown[] = [];
  for (let i = 0; i < 50; i++) got.push((await b.next('peer_message')).payload);
  assert.deepEqual(got, Array.from({ length: 50 }, (_, i) => i));
  assert.equal(h.server.metrics().messages_relayed, 54);
  assertAllValid(a, b);
});

const SPOOFS = [
  { name: 'peer_message with from_peer_id', msg: { type: 'peer_message', to_peer_id: 'b', from_peer_id: 'c', payload: 1 } },
  { name: 'offer with sender', msg: { type: 'offer', target: 'b', sender: 'c', sdp: 'x' } },
  { name: 'answer with sender', msg: { type: 'answer', target: 'b', sender: 'c', sdp: 'x' } },
  { name: 'candidate with sender', msg: { type: 'candidate', target: 'b', sender: 'c', candidate: 'x', mid: '0' } },
  { name: 'incoming-shaped offer without target', msg: { type: 'offer', sender: 'c', sdp: 'x' } },
];

test('relay: a sender field supplied by the peer is refused, never forwarded', async (t) => {
  const h = await startHarness(t);
  const a = await h.join({ peer_id: 'a' });
  const b = await h.join({ peer_id: 'b' });
  await h.join({ peer_id: 'c' });
  for (const s of SPOOFS) {
    a.send(s.msg);
    const err = await a.next('error');
    assert.equal(err.code, 'INVALID_MESSAGE', s.name);
  }
  // Anything a sent before this reached b before it.
  a.send({ type: 'peer_message', to_peer_id: 'b', payload: 'marker' });
  const marker = await b.next('peer_message');
  assert.deepEqual(marker, { type: 'peer_message', from_peer_id: 'a', payload: 'marker' });
  const relayed = b.received.filter((m) => ['peer_message', 'offer', 'answer', 'candidate'].includes(m.type));
  assert.deepEqual(relayed, [marker], 'none of the spoofed messages was delivered');
  // A payload that merely contains a from_peer_id is payload, not a sender.
  a.send({ type: 'peer_message', to_peer_id: 'b', payload: { from_peer_id: 'c' } });
  assert.deepEqual(await b.next('peer_message'), { type: 'peer_message', from_peer_id: 'a', payload: { from_peer_id: 'c' } });
});

test('isolation: another room\'s peer is NOT_IN_ROOM, a missing one PEER_NOT_FOUND, and room events stay in their room', async (t) => {
  const h = await startHarness(t);
  const other = await h.server.createRoom();
  const outsider = await h.join({ peer_id: 'outsider', room_id: other.room_id, token: other.token });
  const a = await h.join({ peer_id: 'a' });
  const b = await h.join({ peer_id: 'b' });
  const cases = [
    { msg: { type: 'peer_message', to_peer_id: 'outsider', payload: 1 }, code: 'NOT_IN_ROOM' },
    { msg: { type: 'offer', target: 'outsider', sdp: 'x' }, code: 'NOT_IN_ROOM' },
    { msg: { type: 'answer', target: 'outsider', sdp: 'x' }, code: 'NOT_IN_ROOM' },
    { msg: { type: 'candidate', target: 'outsider', candidate: 'x', mid: '0' }, code: 'NOT_IN_ROOM' },
    { msg: { type: 'peer_message', to_peer_id: 'ghost', payload: 1 }, code: 'PEER_NOT_FOUND' },
    { msg: { type: 'offer', target: 'ghost', sdp: 'x' }, code: 'PEER_NOT_FOUND' },
  ];
  for (const c of cases) {
    a.send(c.msg);
    const err = await a.next('error');
    assert.equal(err.code, c.code, JSON.stringify(c.msg));
    assert.deepEqual(err.details, { peer_id: (c.msg as { to_peer_id?: string; target?: string }).to_peer_id ?? (c.msg as { target: string }).target });
  }
  a.send({ type: 'update_metadata', metadata: { name: 'renamed' } });
  await b.next('peer_updated');
  await b.close();
  await a.next('peer_left', (m) => m.peer_id === 'b');
  await outsider.barrier();
  assert.deepEqual(
    outsider.received.map((m) => m.type),
    ['registered', 'peer_list'],
    'the other room heard nothing of this one',
  );
  outsider.send({ type: 'discover_peers', request_id: 'x' });
  assert.deepEqual((await outsider.next('peer_list', (m) => m.request_id === 'x')).peers, []);
});

test('disconnect: the peer is removed, the room hears peer_left, metrics drop', async (t) => {
  const h = await startHarness(t);
  const a = await h.join({ peer_id: 'a', role: 'worker' });
  const b = await h.join({ peer_id: 'b' });
  b.ws.terminate();
  assert.deepEqual(await a.next('peer_left'), { type: 'peer_left', peer_id: 'b' });
  a.send({ type: 'peer_message', to_peer_id: 'b', payload: 1 });
  assert.equal((await a.next('error')).code, 'PEER_NOT_FOUND');
  await waitFor(() => h.server.metrics().connections === 1, 5000, 'one connection left');
  assert.deepEqual(h.server.metrics().peers, { worker: 1, client: 0 });
});

test('liveness: a peer that stops answering pings is dropped and its room hears peer_left', async (t) => {
  const h = await startHarness(t, { pingIntervalMs: 40 });
  const alive = await h.join({ peer_id: 'alive' });
  const dead = await h.join({ peer_id: 'dead' });
  // Stop reading: the client can no longer see pings, so it sends no pongs.
  (dead.ws as unknown as { _socket: { pause(): void } })._socket.pause();
  assert.deepEqual(await alive.next('peer_left'), { type: 'peer_left', peer_id: 'dead' });
  dead.ws.terminate();
  // The live peer answers pings (ws does so on its own) and stays.
  await waitFor(() => h.server.metrics().connections === 1, 5000, 'the dead connection to be gone');
  const before = alive.received.length;
  await new Promise((r) => setTimeout(r, 200));
  await alive.barrier();
  assert.equal(alive.received.length, before + 1, 'the live peer saw nothing but its own reply');
  assert.deepEqual(h.server.metrics().peers, { worker: 0, client: 1 });
});

test('room expiry: a room with no peer for its TTL is removed; registering into it is ROOM_DELETED (it existed: final, unlike ROOM_NOT_FOUND)', async (t) => {
  const h = await startHarness(t, { roomIdleTtlMs: 60 });
  assert.equal((await h.server.createRoom()).idle_ttl_s, 1);
  await waitFor(() => h.server.metrics().rooms_expired >= 2, 5000, 'both rooms to expire');
  assert.equal(h.server.metrics().rooms, 0);
  const late = await openPeer(h.server.wsUrl);
  t.after(() => late.close());
  late.send({ type: 'register', role: 'worker', room_id: h.room.room_id, token: h.room.token });
  assert.equal((await late.next('error')).code, 'ROOM_DELETED');
});

test('room expiry: a room with a peer does not expire; its clock starts when the last peer leaves', async (t) => {
  // Long enough that the harness's room is surely occupied before it could expire.
  const h = await startHarness(t, { roomIdleTtlMs: 500 });
  const keeper = await h.join({ peer_id: 'keeper' });
  await h.server.createRoom();
  await waitFor(() => h.server.metrics().rooms_expired === 1, 5000, 'the empty room to expire');
  const friend = await h.join({ peer_id: 'friend' });
  assert.equal(friend.peerId, 'friend', 'the occupied room is still there');
  await keeper.close();
  await friend.close();
  await waitFor(() => h.server.metrics().rooms_expired === 2, 5000, 'the emptied room to expire');
});

test('slow consumer: a peer that stops reading is disconnected once its backlog passes the limit', async (t) => {
  const h = await startHarness(t, { rateLimit: false, maxBufferedBytes: 256 * 1024 });
  const sender = await h.join({ peer_id: 'sender' });
  const sink = await h.join({ peer_id: 'sink' });
  (sink.ws as unknown as { _socket: { pause(): void } })._socket.pause();
  const payload = 'x'.repeat(60_000);
  let left = false;
  void sender.next('peer_left', undefined, 30_000).then(() => (left = true));
  for (let i = 0; i < 2000 && !left; i++) {
    sender.send({ type: 'peer_message', to_peer_id: 'sink', payload });
    if (i % 20 === 19) await new Promise((r) => setTimeout(r, 1));
  }
  await waitFor(() => left, 30_000, 'the sink to be dropped');
  sink.ws.terminate();
  assert.deepEqual(h.server.metrics().peers, { worker: 0, client: 1 });
});

test('close: peers get 1001, close is safe twice, and the server refuses new rooms afterwards', async (t) => {
  const h = await startHarness(t);
  const a = await h.join({ peer_id: 'a' });
  await Promise.all([h.server.close(), h.server.close()]);
  assert.equal((await a.closed).code, 1001);
  await h.server.close();
  await assert.rejects(h.server.createRoom(), { code: 'SIGNALING_CLOSED' });
  await assert.rejects(openPeer(h.server.wsUrl));
});
