import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { WebSocketServer, type WebSocket as WsSocket } from 'ws';
import { startSignalingServer, type SignalingServer } from '../../src/signaling/server.js';
import { createMemoryStore } from '../../src/signaling/stores/memory.js';
import { SignalingClient, type SignalingClientOptions } from '../../src/transport/signaling-client.js';
import { acceptPeer, connectToPeer } from '../../src/transport/peer-connection.js';
import type { SleapRtcError } from '../../src/errors.js';

async function server(t: TestContext, opts: Parameters<typeof startSignalingServer>[0] = {}): Promise<SignalingServer> {
  const s = await startSignalingServer({ host: '127.0.0.1', port: 0, ...opts });
  t.after(() => s.close());
  return s;
}

async function client(t: TestContext, opts: SignalingClientOptions): Promise<SignalingClient> {
  const c = await SignalingClient.connect({ reconnectInitialDelayMs: 20, reconnectMaxDelayMs: 200, ...opts });
  t.after(() => c.close());
  return c;
}

const worker = (backends: string[], name: string) => ({
  name,
  status: 'available' as const,
  capabilities: { storage_backends: backends, job_types: ['train' as const, 'track' as const], max_concurrent_jobs: 1 },
});

test('registers, learns its peer id and the room, and sees peers come and go', async (t) => {
  const s = await server(t);
  const room = await s.createRoom();
  const base = { serverUrl: s.url, roomId: room.room_id, token: room.token };
  const w = await client(t, { ...base, role: 'worker', peerId: 'gpu-1', metadata: worker(['vast'], 'gpu-1') });
  assert.equal(w.peerId, 'gpu-1');
  assert.equal(w.state, 'open');

  const joined = once(w, 'peer_joined');
  const c = await client(t, { ...base, role: 'client' });
  assert.ok(c.peers.has('gpu-1'), 'the newcomer is told about the worker');
  const [peer] = (await joined) as [{ peer_id: string; role: string }];
  assert.equal(peer.peer_id, c.peerId);
  assert.equal(peer.role, 'client');

  const left = once(w, 'peer_left');
  await c.close();
  assert.deepEqual(await left, [c.peerId]);
  assert.equal(w.peers.has(c.peerId), false);
});

test('discover() filters by storage backend and sees metadata updates at once', async (t) => {
  const s = await server(t);
  const room = await s.createRoom();
  const base = { serverUrl: s.url, roomId: room.room_id, token: room.token };
  const a = await client(t, { ...base, role: 'worker', peerId: 'a', metadata: worker(['vast'], 'a') });
  await client(t, { ...base, role: 'worker', peerId: 'b', metadata: worker(['scratch'], 'b') });
  const c = await client(t, { ...base, role: 'client' });

  const vast = await c.discover({ role: 'worker', properties: { 'capabilities.storage_backends': { $contains: 'vast' } } });
  assert.deepEqual(vast.map((p) => p.peer_id), ['a']);

  const updated = once(c, 'peer_updated');
  a.updateMetadata({ ...worker(['vast'], 'a'), status: 'busy' });
  await updated;
  const available = await c.discover({ role: 'worker', status: 'available' });
  assert.deepEqual(available.map((p) => p.peer_id), ['b']);
});

test('peer messages are relayed with the sender set by the server; a gone peer is a server_error', async (t) => {
  const s = await server(t);
  const room = await s.createRoom();
  const base = { serverUrl: s.url, roomId: room.room_id, token: room.token };
  const a = await client(t, { ...base, role: 'worker', peerId: 'a' });
  const b = await client(t, { ...base, role: 'client', peerId: 'b' });
  const got = once(a, 'peer_message');
  b.sendToPeer('a', { hello: 'world' });
  assert.deepEqual(await got, ['b', { hello: 'world' }]);

  const err = once(b, 'server_error');
  b.sendToPeer('nobody', {});
  const [e] = (await err) as [SleapRtcError];
  assert.equal(e.code, 'PEER_NOT_FOUND');
});

test('a wrong token is refused with a sentence that says what to do, and is not retried', async (t) => {
  const s = await server(t);
  const room = await s.createRoom();
  await assert.rejects(
    SignalingClient.connect({ serverUrl: s.url, roomId: room.room_id, token: 'wrong', role: 'client' }),
    (err: SleapRtcError) => err.code === 'INVALID_TOKEN' && /--token/.test(err.message),
  );
  await assert.rejects(
    SignalingClient.connect({ serverUrl: s.url, roomId: 'no-such-room', token: 'x', role: 'client' }),
    (err: SleapRtcError) => err.code === 'ROOM_NOT_FOUND' && /room create/.test(err.message),
  );
  // Refusals must not leave registered peers behind.
  assert.equal(s.metrics().peers.client ?? 0, 0);
});

test('an unreachable server is SIGNALING_UNREACHABLE naming the URL', async (t) => {
  // A port that was just free: listen, note it, close.
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await once(wss, 'listening');
  const port = (wss.address() as { port: number }).port;
  await new Promise((r) => wss.close(r));
  const url = `http://127.0.0.1:${port}`;
  await assert.rejects(
    SignalingClient.connect({ serverUrl: url, roomId: 'r', token: 't', role: 'client', connectTimeoutMs: 5000 }),
    (err: SleapRtcError) => err.code === 'SIGNALING_UNREACHABLE' && err.message.includes(url),
  );
  t.diagnostic('ok');
});

test('after the server goes away and comes back, the client re-registers under the same peer id', async (t) => {
  const store = createMemoryStore();
  t.after(() => store.close());
  const first = await startSignalingServer({ host: '127.0.0.1', port: 0, store });
  const room = await first.createRoom();
  const port = first.port;
  const c = await client(t, { serverUrl: first.url, roomId: room.room_id, token: room.token, role: 'worker', peerId: 'gpu-7' });
  c.updateMetadata(worker(['vast'], 'gpu-7'));

  const disconnected = once(c, 'disconnected');
  await first.close();
  await disconnected;
  assert.equal(c.state, 'reconnecting');
  assert.throws(() => c.sendToPeer('x', {}), (e: SleapRtcError) => e.code === 'SIGNALING_CLOSED');

  const reconnected = once(c, 'reconnected');
  const second = await server(t, { port, store });
  await reconnected;
  assert.equal(c.peerId, 'gpu-7');
  assert.equal(c.state, 'open');

  // The re-registration carried the latest metadata.
  const other = await client(t, { serverUrl: second.url, roomId: room.room_id, token: room.token, role: 'client' });
  const peers = await other.discover({ properties: { 'capabilities.storage_backends': { $contains: 'vast' } } });
  assert.deepEqual(peers.map((p) => p.peer_id), ['gpu-7']);
});

test('a restarted server that does not know the room is waited out, not taken as the end (only a deleted room is final)', async (t) => {
  const first = await startSignalingServer({ host: '127.0.0.1', port: 0 });
  const room = await first.createRoom();
  const port = first.port;
  const c = await client(t, { serverUrl: first.url, roomId: room.room_id, token: room.token, role: 'client' });
  let closed = false;
  c.on('closed', () => (closed = true));
  await first.close();
  await server(t, { port }); // fresh memory store: the room is unknown there
  const [first1] = (await once(c, 'waiting')) as [SleapRtcError];
  const [second1] = (await once(c, 'waiting')) as [SleapRtcError];
  assert.equal(first1.code, 'ROOM_NOT_FOUND');
  assert.equal(second1.code, 'ROOM_NOT_FOUND', 'it keeps trying');
  assert.equal(c.state, 'reconnecting');
  assert.equal(closed, false);
});

test('close() is safe twice and rejects pending requests', async (t) => {
  const s = await server(t);
  const room = await s.createRoom();
  const c = await SignalingClient.connect({ serverUrl: s.url, roomId: room.room_id, token: room.token, role: 'client' });
  await c.close();
  await c.close();
  assert.equal(c.state, 'closed');
  await assert.rejects(c.discover(), (e: SleapRtcError) => e.code === 'SIGNALING_CLOSED');
});

test('two signaling clients open a WebRTC data channel through the server and exchange messages', async (t) => {
  const s = await server(t);
  const room = await s.createRoom();
  const base = { serverUrl: s.url, roomId: room.room_id, token: room.token };
  const w = await client(t, { ...base, role: 'worker', peerId: 'w' });
  const c = await client(t, { ...base, role: 'client', peerId: 'c' });

  const accepted = new Promise<Awaited<ReturnType<typeof acceptPeer>>>((resolve, reject) => {
    w.once('offer', (from) => acceptPeer({ signaler: w, remotePeerId: from }).then(resolve, reject));
  });
  const [offerer, answerer] = await Promise.all([connectToPeer({ signaler: c, remotePeerId: 'w' }), accepted]);
  t.after(() => {
    offerer.close();
    answerer.close();
  });
  assert.equal(answerer.remotePeerId, 'c');
  const got = new Promise<string>((resolve) => answerer.control.onMessage((m) => resolve(String(m))));
  offerer.control.send('ping over webrtc');
  assert.equal(await got, 'ping over webrtc');
});

// ---- issue 13: the socket of a refused registration, and close() racing a reconnect ----------

/** A hand-driven signaling server: the test decides what each connection is answered. */
async function rawServer(t: TestContext, onRegister: (ws: WsSocket, attempt: number) => void): Promise<{ url: string; sockets: WsSocket[] }> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await once(wss, 'listening');
  const sockets: WsSocket[] = [];
  let attempt = 0;
  wss.on('connection', (ws) => {
    sockets.push(ws);
    ws.on('message', (data) => {
      const m = JSON.parse(String(data)) as { type: string };
      if (m.type === 'register') onRegister(ws, (attempt += 1));
    });
  });
  t.after(async () => {
    for (const s of wss.clients) s.terminate();
    await new Promise((r) => wss.close(r));
  });
  return { url: `http://127.0.0.1:${(wss.address() as { port: number }).port}`, sockets };
}

const registered = (peerId: string) => JSON.stringify({ type: 'registered', peer_id: peerId, room_id: 'room-1', peers: [] });

test('a refused registration closes its socket (the server is not left holding it)', async (t) => {
  const s = await rawServer(t, (ws) => ws.send(JSON.stringify({ type: 'error', code: 'INVALID_TOKEN', message: 'no' })));
  await assert.rejects(SignalingClient.connect({ serverUrl: s.url, roomId: 'room-1', token: 'bad', role: 'client' }), (e: SleapRtcError) => e.code === 'INVALID_TOKEN');
  const socket = s.sockets[0];
  assert.ok(socket);
  if (socket.readyState !== socket.CLOSED) {
    const closed = once(socket, 'close');
    const timeout = new Promise((_, reject) => setTimeout(() => reject(new Error('the refused client left its socket open')), 5_000).unref());
    await Promise.race([closed, timeout]);
  }
});

test('close() while a reconnect is registering ends closed: no "reconnected" after "closed", state stays closed', async (t) => {
  let held: WsSocket | null = null;
  let onHeld!: () => void;
  const heldNow = new Promise<void>((resolve) => (onHeld = resolve));
  const s = await rawServer(t, (ws, attempt) => {
    if (attempt === 1) ws.send(registered('p1'));
    else {
      held = ws; // hold the reply of the re-registration
      onHeld();
    }
  });
  const c = await SignalingClient.connect({ serverUrl: s.url, roomId: 'room-1', token: 't', role: 'client', reconnectInitialDelayMs: 10, reconnectMaxDelayMs: 20 });
  const events: string[] = [];
  c.on('reconnected', () => events.push('reconnected'));
  c.on('closed', () => events.push('closed'));
  s.sockets[0]?.terminate();
  await heldNow;
  const closing = c.close();
  (held as WsSocket | null)?.send(registered('p1'));
  await closing;
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(c.state, 'closed');
  assert.deepEqual(events, ['closed']);
  assert.throws(() => c.sendToPeer('x', {}), (e: SleapRtcError) => e.code === 'SIGNALING_CLOSED');
  await c.close(); // and again: still safe
});

test('a room deleted under a registered client ends it at once with ROOM_DELETED (no reconnect loop)', async (t) => {
  const s = await server(t);
  const room = await s.createRoom();
  const c = await client(t, { serverUrl: s.url, roomId: room.room_id, token: room.token, role: 'worker', peerId: 'w' });
  let reconnecting = false;
  c.on('disconnected', () => (reconnecting = true));
  const closed = once(c, 'closed');
  const res = await fetch(`${s.url}/rooms/${room.room_id}`, { method: 'DELETE', headers: { authorization: `Bearer ${room.token}` } });
  assert.equal(res.status, 200);
  const [reason] = (await closed) as [SleapRtcError];
  assert.equal(reason.code, 'ROOM_DELETED');
  assert.match(reason.message, /will not come back.*room create/);
  assert.equal(c.state, 'closed');
  assert.equal(reconnecting, false);
});
