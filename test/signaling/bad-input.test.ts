/**
 * Abuse: every kind of bad frame gets `{type:"error", code, message}`, the connection stays up
 * where that is safe, and nothing leaks (asserted through metrics afterwards).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorMessageSchema } from '../../src/protocol/common.js';
import { LIMITS } from '../../src/limits.js';
import { openPeer, waitFor, workerMetadata, type TestPeer } from '../helpers/ws-peer.js';
import { startHarness } from './harness.js';

const MAX = 16 * 1024;

type Frame = string | { binary: Buffer };

interface Case {
  name: string;
  frame: (room: { room_id: string; token: string }) => Frame;
  code: string;
  /** Where the case applies: before or after register. */
  when: 'unregistered' | 'registered' | 'both';
}

const register = (room: { room_id: string; token: string }, extra: Record<string, unknown> = {}, metadata: unknown = {}): string =>
  JSON.stringify({ type: 'register', room_id: room.room_id, token: room.token, role: 'worker', metadata, ...extra });

const deep = (levels: number): string => `${'['.repeat(levels)}${']'.repeat(levels)}`;

const CASES: Case[] = [
  { name: 'not JSON', frame: () => 'hello', code: 'INVALID_JSON', when: 'both' },
  { name: 'truncated JSON', frame: () => '{"type":"discover_peers"', code: 'INVALID_JSON', when: 'both' },
  { name: 'empty frame', frame: () => '', code: 'INVALID_JSON', when: 'both' },
  { name: 'JSON array', frame: () => '[]', code: 'INVALID_MESSAGE', when: 'both' },
  { name: 'JSON string', frame: () => '"register"', code: 'INVALID_MESSAGE', when: 'both' },
  { name: 'JSON null', frame: () => 'null', code: 'INVALID_MESSAGE', when: 'both' },
  { name: 'object without type', frame: () => '{}', code: 'INVALID_MESSAGE', when: 'both' },
  { name: 'numeric type', frame: () => '{"type":5}', code: 'INVALID_MESSAGE', when: 'both' },
  { name: 'unknown type', frame: () => '{"type":"hello"}', code: 'UNKNOWN_TYPE', when: 'both' },
  { name: 'a server -> peer type', frame: () => '{"type":"registered","peer_id":"x","room_id":"y","peers":[]}', code: 'UNKNOWN_TYPE', when: 'both' },
  { name: 'prototype-named type', frame: () => '{"type":"__proto__"}', code: 'UNKNOWN_TYPE', when: 'both' },
  { name: 'type "error" from a peer', frame: () => '{"type":"error","code":"INTERNAL","message":"x"}', code: 'UNKNOWN_TYPE', when: 'both' },
  { name: 'binary frame', frame: () => ({ binary: Buffer.from('{"type":"discover_peers"}') }), code: 'INVALID_MESSAGE', when: 'both' },
  { name: 'frame over maxPayloadBytes', frame: () => JSON.stringify({ type: 'discover_peers', request_id: 'x'.repeat(MAX) }), code: 'FRAME_TOO_LARGE', when: 'both' },
  { name: 'nesting 100 deep', frame: () => `{"type":"peer_message","to_peer_id":"a","payload":${deep(100)}}`, code: 'INVALID_MESSAGE', when: 'both' },
  { name: 'nesting 5000 deep (would overflow JSON.stringify)', frame: () => `{"type":"peer_message","to_peer_id":"a","payload":${deep(5000)}}`, code: 'INVALID_MESSAGE', when: 'both' },
  // register problems (a bad register is answered; the socket stays up)
  { name: 'register without token', frame: (r) => JSON.stringify({ type: 'register', room_id: r.room_id, role: 'worker' }), code: 'INVALID_MESSAGE', when: 'unregistered' },
  { name: 'register with a path as room id', frame: (r) => register(r, { room_id: '../rooms' }), code: 'INVALID_MESSAGE', when: 'unregistered' },
  { name: 'register with role admin', frame: (r) => register(r, { role: 'admin' }), code: 'INVALID_MESSAGE', when: 'unregistered' },
  { name: 'register with a slash in peer_id', frame: (r) => register(r, { peer_id: 'a/b' }), code: 'INVALID_MESSAGE', when: 'unregistered' },
  { name: 'register with a 129-char peer_id', frame: (r) => register(r, { peer_id: 'p'.repeat(129) }), code: 'INVALID_MESSAGE', when: 'unregistered' },
  { name: 'register with an unknown field', frame: (r) => register(r, { admin: true }), code: 'INVALID_MESSAGE', when: 'unregistered' },
  { name: 'register with an own __proto__ key', frame: (r) => register(r).replace('{', '{"__proto__":{"admin":true},'), code: 'INVALID_MESSAGE', when: 'unregistered' },
  { name: 'register with a traversal backend name', frame: (r) => register(r, {}, workerMetadata(['../etc'])), code: 'INVALID_MESSAGE', when: 'unregistered' },
  { name: 'register with a bad status', frame: (r) => register(r, {}, { status: 'sleeping' }), code: 'INVALID_MESSAGE', when: 'unregistered' },
  { name: 'register with capabilities missing job_types', frame: (r) => register(r, {}, { capabilities: { storage_backends: [], max_concurrent_jobs: 1 } }), code: 'INVALID_MESSAGE', when: 'unregistered' },
  { name: 'register with metadata as an array', frame: (r) => register(r, {}, []), code: 'INVALID_MESSAGE', when: 'unregistered' },
  { name: 'register with metadata over the size limit', frame: (r) => register(r, {}, { blob: 'x'.repeat(LIMITS.signalingMaxMetadataBytes) }), code: 'INVALID_MESSAGE', when: 'unregistered' },
  // before register
  { name: 'peer_message before register', frame: () => '{"type":"peer_message","to_peer_id":"a","payload":1}', code: 'NOT_REGISTERED', when: 'unregistered' },
  { name: 'offer before register', frame: () => '{"type":"offer","target":"a","sdp":"x"}', code: 'NOT_REGISTERED', when: 'unregistered' },
  { name: 'update_metadata before register', frame: () => '{"type":"update_metadata","metadata":{}}', code: 'NOT_REGISTERED', when: 'unregistered' },
  { name: 'discover_peers before register', frame: () => '{"type":"discover_peers","filters":{}}', code: 'NOT_REGISTERED', when: 'unregistered' },
  // after register
  { name: 'second register', frame: (r) => register(r), code: 'ALREADY_REGISTERED', when: 'registered' },
  { name: 'peer_message without target', frame: () => '{"type":"peer_message","payload":1}', code: 'INVALID_MESSAGE', when: 'registered' },
  { name: 'offer with a numeric sdp', frame: () => '{"type":"offer","target":"a","sdp":1}', code: 'INVALID_MESSAGE', when: 'registered' },
  { name: 'candidate without mid', frame: () => '{"type":"candidate","target":"a","candidate":"x"}', code: 'INVALID_MESSAGE', when: 'registered' },
  { name: 'discover with an unknown operator', frame: () => '{"type":"discover_peers","filters":{"properties":{"a":{"$where":"1"}}}}', code: 'INVALID_MESSAGE', when: 'registered' },
  { name: 'discover with a bad role', frame: () => '{"type":"discover_peers","filters":{"role":"root"}}', code: 'INVALID_MESSAGE', when: 'registered' },
  { name: 'update_metadata with a bad capability', frame: () => '{"type":"update_metadata","metadata":{"capabilities":{"storage_backends":"vast"}}}', code: 'INVALID_MESSAGE', when: 'registered' },
];

/**
 * Proves the socket is up and every earlier reply has arrived. A registered peer asks
 * discover_peers; an unregistered one gets NOT_REGISTERED for it, echoing the request id.
 */
async function roundTrip(peer: TestPeer, registered: boolean, id: string): Promise<void> {
  peer.send({ type: 'discover_peers', filters: {}, request_id: id });
  if (registered) await peer.next('peer_list', (m) => m.request_id === id);
  else await peer.next('error', (m) => m.request_id === id && m.code === 'NOT_REGISTERED');
}

test('bad input: each case gets its coded error, the connection stays up, and nothing leaks', async (t) => {
  // A large metadata limit case needs frames larger than MAX, so that case runs on its own below.
  const h = await startHarness(t, { maxPayloadBytes: MAX });
  const plain = await h.open();
  const member = await h.join({ peer_id: 'member', role: 'worker', metadata: workerMetadata(['vast']) });
  let n = 0;
  for (const c of CASES) {
    if (c.name === 'register with metadata over the size limit') continue;
    const targets: [TestPeer, boolean][] = [];
    if (c.when !== 'registered') targets.push([plain, false]);
    if (c.when !== 'unregistered') targets.push([member, true]);
    for (const [peer, registered] of targets) {
      const frame = c.frame(h.room);
      if (typeof frame === 'string') peer.sendRaw(frame);
      else peer.sendRaw(frame.binary, { binary: true });
      const err = await peer.next('error');
      const where = `${c.name} (${registered ? 'registered' : 'unregistered'})`;
      assert.equal(err.code, c.code, where);
      assert.equal(ErrorMessageSchema.safeParse(err).success, true, `${where}: the error is a valid error message`);
      assert.ok(String(err.message).length > 10, `${where}: the error has a sentence`);
      await roundTrip(peer, registered, `rt-${++n}`);
    }
  }
  // Nothing was registered by the abuse, nothing was dropped.
  assert.deepEqual(h.server.metrics().peers, { worker: 1, client: 0 });
  assert.equal(h.server.metrics().connections, 2);
  await plain.close();
  await member.close();
  await waitFor(() => h.server.metrics().connections === 0, 5000, 'all connections to close');
  const res = await fetch(`${h.server.url}/metrics`);
  const metrics = (await res.json()) as { rooms: number; peers: unknown; connections: number; errors: Record<string, number> };
  assert.equal(metrics.rooms, 1, 'the room is still there, no other room appeared');
  assert.deepEqual(metrics.peers, { worker: 0, client: 0 });
  assert.equal(metrics.connections, 0);
  for (const code of ['INVALID_JSON', 'INVALID_MESSAGE', 'UNKNOWN_TYPE', 'FRAME_TOO_LARGE', 'NOT_REGISTERED', 'ALREADY_REGISTERED']) {
    assert.ok((metrics.errors[code] ?? 0) > 0, `errors.${code} counted`);
  }
});

test('bad input: fields over their own caps (metadata, sdp) are refused inside a frame that fits', async (t) => {
  const h = await startHarness(t);
  const peer = await h.open();
  peer.sendRaw(CASES.find((c) => c.name === 'register with metadata over the size limit')!.frame(h.room) as string);
  const err = await peer.next('error');
  assert.equal(err.code, 'INVALID_MESSAGE');
  assert.match(String(err.message), /limit/);
  peer.send({ type: 'register', room_id: h.room.room_id, token: h.room.token, role: 'worker', metadata: workerMetadata([]) });
  assert.equal((await peer.next('registered')).type, 'registered');
  peer.send({ type: 'update_metadata', metadata: { blob: 'x'.repeat(LIMITS.signalingMaxMetadataBytes) } });
  const metaErr = await peer.next('error');
  assert.equal(metaErr.code, 'INVALID_MESSAGE');
  assert.match(String(metaErr.message), /limit/);
  peer.send({ type: 'offer', target: 'nobody', sdp: 'x'.repeat(65537) });
  const sdpErr = await peer.next('error');
  assert.equal(sdpErr.code, 'INVALID_MESSAGE');
  assert.match(String(sdpErr.message), /sdp/);
});

test('bad input: a frame above twice maxPayloadBytes is cut off by ws (close 1009) and the server stays healthy', async (t) => {
  const h = await startHarness(t, { maxPayloadBytes: MAX });
  const peer = await h.open();
  peer.sendRaw(JSON.stringify({ type: 'discover_peers', request_id: 'x'.repeat(MAX * LIMITS.signalingHardPayloadFactor + 10) }));
  assert.equal((await peer.closed).code, 1009);
  await waitFor(() => h.server.metrics().connections === 0, 5000, 'the connection to be cleaned up');
  const again = await h.join({ peer_id: 'after' });
  assert.equal(again.peerId, 'after');
});

test('bad input: a text frame that is not UTF-8 makes ws close with 1007 and the server stays healthy', async (t) => {
  const h = await startHarness(t);
  const peer = await h.open();
  // Sent as text: the receiver validates UTF-8 before anything else sees the frame.
  peer.ws.send(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), { binary: false });
  assert.equal((await peer.closed).code, 1007);
  const again = await h.join({ peer_id: 'after' });
  assert.equal(again.peerId, 'after');
});

test('rate limit: frames beyond the burst are dropped with one RATE_LIMITED reply; the connection stays and recovers', async (t) => {
  // A near-zero refill makes the count exact however slow the machine is.
  const h = await startHarness(t, { rateLimit: { burst: 5, perSecond: 0.001 } });
  const peer = await h.join({ peer_id: 'flood' });
  const received0 = h.server.metrics().messages_received;
  for (let i = 0; i < 30; i++) peer.send({ type: 'discover_peers', request_id: `q${i}` });
  await waitFor(() => h.server.metrics().messages_received === received0 + 30, 5000, 'all 30 frames to arrive');
  const err = await peer.next('error');
  assert.equal(err.code, 'RATE_LIMITED');
  assert.ok(typeof (err.details as { retry_after_ms?: unknown }).retry_after_ms === 'number');
  // register took 1 of the 5 tokens: exactly 4 discovers were answered, in order.
  const lists = [];
  for (let i = 0; i < 4; i++) lists.push((await peer.next('peer_list')).request_id);
  assert.deepEqual(lists, ['q0', 'q1', 'q2', 'q3']);
  assert.equal(peer.received.filter((m) => m.type === 'error').length, 1, 'one reply per flood');
  assert.equal(peer.ws.readyState, peer.ws.OPEN);
  assert.equal(h.server.metrics().errors.RATE_LIMITED, 1);
});

test('rate limit: each connection has its own bucket', async (t) => {
  const h = await startHarness(t, { rateLimit: { burst: 3, perSecond: 0.001 } });
  const noisy = await h.join({ peer_id: 'noisy' });
  const quiet = await h.join({ peer_id: 'quiet' });
  for (let i = 0; i < 10; i++) noisy.send({ type: 'discover_peers' });
  assert.equal((await noisy.next('error')).code, 'RATE_LIMITED');
  quiet.send({ type: 'discover_peers', request_id: 'ok' });
  assert.deepEqual((await quiet.next('peer_list')).peers, [{ peer_id: 'noisy', role: 'client', metadata: {} }]);
});

test('bad input: a WebSocket upgrade on any path but /ws is refused with 404 and a coded body', async (t) => {
  const h = await startHarness(t);
  for (const path of ['/', '/rooms', '/wss', '/ws/extra', '/WS']) {
    await assert.rejects(openPeer(`ws://127.0.0.1:${h.server.port}${path}`), /HTTP 404/, path);
  }
  // The query string does not change the path.
  const ok = await openPeer(`ws://127.0.0.1:${h.server.port}/ws?v=1`);
  await ok.close();
  assert.equal(h.server.metrics().errors.ROUTE_NOT_FOUND, 5);
});
