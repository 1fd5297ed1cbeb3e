/**
 * The scale-out seam: two server instances sharing one store and one bus behave as one server.
 * Peers on different instances see each other, relay to each other and hear each other leave.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createMemoryBus } from '../../src/signaling/buses/memory.js';
import { startSignalingServer } from '../../src/signaling/server.js';
import { createMemoryStore } from '../../src/signaling/stores/memory.js';
import { startTwoInstances } from './harness.js';
import { registerPeer, waitFor, workerMetadata } from '../helpers/ws-peer.js';

test('two instances on one store and one bus relay between their peers', async (t) => {
  const { a, b, store, peers } = await startTwoInstances(t);
  const room = await a.createRoom();
  const other = await b.createRoom();

  const worker = await registerPeer(a.wsUrl, { room_id: room.room_id, token: room.token, role: 'worker', peer_id: 'gpu', metadata: workerMetadata(['vast']) });
  peers.push(worker);
  const client = await registerPeer(b.wsUrl, { room_id: room.room_id, token: room.token, role: 'client', peer_id: 'laptop' });
  peers.push(client);
  const stranger = await registerPeer(a.wsUrl, { room_id: other.room_id, token: other.token, role: 'client', peer_id: 'stranger' });
  peers.push(stranger);

  // Registration on B sees the worker on A, and A's worker hears of the client on B.
  assert.deepEqual(client.registered?.peers, [{ peer_id: 'gpu', role: 'worker', metadata: workerMetadata(['vast']) }]);
  assert.equal(((await worker.next('peer_joined')).peer as { peer_id: string }).peer_id, 'laptop');

  // Peer ids are unique across instances.
  const twin = await registerPeer(b.wsUrl, { room_id: room.room_id, token: room.token, role: 'worker', peer_id: 'gpu' });
  peers.push(twin);
  assert.equal(twin.peerId, 'gpu-2');

  // Discovery on B finds the worker on A by its storage backend.
  client.send({ type: 'discover_peers', filters: { properties: { 'capabilities.storage_backends': { $contains: 'vast' } } }, request_id: 'd' });
  assert.deepEqual(
    (await client.next<{ type: string; peers: { peer_id: string }[] }>('peer_list')).peers.map((p) => p.peer_id),
    ['gpu'],
  );

  // Relay B -> A and A -> B, sender set by the sending instance.
  client.send({ type: 'peer_message', to_peer_id: 'gpu', payload: { hello: 'from b' } });
  assert.deepEqual(await worker.next('peer_message'), { type: 'peer_message', from_peer_id: 'laptop', payload: { hello: 'from b' } });
  worker.send({ type: 'offer', target: 'laptop', sdp: 'v=0' });
  assert.deepEqual(await client.next('offer'), { type: 'offer', sender: 'gpu', sdp: 'v=0' });
  for (let i = 0; i < 20; i++) client.send({ type: 'candidate', target: 'gpu', candidate: `c${i}`, mid: '0' });
  const order = [];
  for (let i = 0; i < 20; i++) order.push((await worker.next('candidate')).candidate);
  assert.deepEqual(order, Array.from({ length: 20 }, (_, i) => `c${i}`), 'order kept across instances');
  assert.equal(b.metrics().messages_relayed, 21);
  assert.equal(a.metrics().messages_relayed, 1);

  // Room checks hold across instances.
  client.send({ type: 'peer_message', to_peer_id: 'stranger', payload: 1 });
  assert.equal((await client.next('error')).code, 'NOT_IN_ROOM');
  client.send({ type: 'peer_message', to_peer_id: 'nobody', payload: 1 });
  assert.equal((await client.next('error')).code, 'PEER_NOT_FOUND');

  // Metadata updates and departures cross instances too.
  worker.send({ type: 'update_metadata', metadata: workerMetadata(['vast'], { status: 'busy' }) });
  assert.equal(((await client.next('peer_updated')).peer as { peer_id: string }).peer_id, 'gpu');
  await client.close();
  assert.deepEqual(await worker.next('peer_left', (m) => m.peer_id === 'laptop'), { type: 'peer_left', peer_id: 'laptop' });
  await stranger.barrier();
  assert.equal(stranger.received.some((m) => m.type === 'peer_left' || m.type === 'peer_joined'), false, 'the other room heard nothing');

  // Both instances read the same room count; each counts only its own sockets.
  await waitFor(() => b.metrics().connections === 1, 5000, 'B to have only the twin left');
  const [ma, mb] = await Promise.all([a, b].map(async (s) => (await fetch(`${s.url}/metrics`)).json() as Promise<{ rooms: number; peers: unknown }>));
  assert.equal(ma?.rooms, 2);
  assert.equal(mb?.rooms, 2);
  assert.deepEqual(ma?.peers, { worker: 1, client: 1 });
  assert.deepEqual(mb?.peers, { worker: 1, client: 0 });
  assert.deepEqual(await store.stats(), { rooms: 2, peers: { worker: 2, client: 1 } });
});

test('closing one instance removes its peers from the shared store and tells the others', async (t) => {
  const store = createMemoryStore();
  const bus = createMemoryBus();
  const a = await startSignalingServer({ port: 0, store, bus });
  const b = await startSignalingServer({ port: 0, store, bus });
  const room = await a.createRoom();
  const stay = await registerPeer(a.wsUrl, { room_id: room.room_id, token: room.token, peer_id: 'stay' });
  t.after(async () => {
    await stay.close();
    await a.close();
    await b.close();
    await store.close();
    await bus.close();
  });
  const goes = await registerPeer(b.wsUrl, { room_id: room.room_id, token: room.token, peer_id: 'goes' });
  await stay.next('peer_joined');
  await b.close();
  assert.equal((await goes.closed).code, 1001);
  assert.deepEqual(await stay.next('peer_left'), { type: 'peer_left', peer_id: 'goes' });
  assert.equal(await store.getPeer('goes'), undefined);
  assert.ok(await store.getRoom(room.room_id), 'a shared store outlives the instance');
});
