/** The HTTP side of the signaling server and its lifecycle, on real sockets. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { RoomCreatedSchema } from '../../src/protocol/signaling.js';
import { startSignalingServer } from '../../src/signaling/server.js';
import { startHarness } from './harness.js';

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
}

function http(url: string, method: string, body?: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text === '' ? undefined : JSON.parse(text) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

test('POST /rooms: 201 with a room id, a 128+ bit token and the TTL; each room differs; no caching', async (t) => {
  const h = await startHarness(t, { roomIdleTtlMs: 3_600_000 });
  const first = await http(`${h.server.url}/rooms`, 'POST', '{"ignored":true}');
  assert.equal(first.status, 201);
  assert.equal(first.headers['content-type'], 'application/json; charset=utf-8');
  assert.equal(first.headers['cache-control'], 'no-store');
  const room = RoomCreatedSchema.parse(first.body);
  assert.equal(room.idle_ttl_s, 3600);
  assert.ok(Buffer.from(room.token, 'base64url').length * 8 >= 128);
  const second = RoomCreatedSchema.parse((await http(`${h.server.url}/rooms`, 'POST')).body);
  assert.notEqual(second.room_id, room.room_id);
  assert.notEqual(second.token, room.token);
  // The room is usable.
  const peer = await h.join({ room_id: room.room_id, token: room.token, peer_id: 'p' });
  assert.equal(peer.peerId, 'p');
  assert.equal(h.server.metrics().rooms_created, 3);
});

test('GET /health and GET /metrics answer JSON', async (t) => {
  const h = await startHarness(t);
  const health = await http(`${h.server.url}/health`, 'GET');
  assert.equal(health.status, 200);
  const body = health.body as { status: string; uptime_s: number };
  assert.equal(body.status, 'ok');
  assert.ok(Number.isInteger(body.uptime_s) && body.uptime_s >= 0);
  await h.join({ role: 'worker', peer_id: 'w' });
  const metrics = await http(`${h.server.url}/metrics?x=1`, 'GET');
  assert.equal(metrics.status, 200);
  const m = metrics.body as Record<string, unknown>;
  assert.equal(m.rooms, 1);
  assert.deepEqual(m.peers, { worker: 1, client: 0 });
  assert.equal(m.connections, 1);
  for (const key of ['uptime_s', 'messages_received', 'messages_relayed', 'rooms_created', 'rooms_expired']) assert.equal(typeof m[key], 'number', key);
  assert.deepEqual(m.errors, {});
  const head = await http(`${h.server.url}/health`, 'HEAD');
  assert.equal(head.status, 200);
  assert.equal(head.body, undefined);
});

const ROUTE_ERRORS = [
  { method: 'GET', path: '/', status: 404, code: 'ROUTE_NOT_FOUND' },
  { method: 'GET', path: '/room', status: 404, code: 'ROUTE_NOT_FOUND' },
  { method: 'GET', path: '/rooms/abc', status: 405, code: 'METHOD_NOT_ALLOWED' },
  { method: 'GET', path: '/__proto__', status: 404, code: 'ROUTE_NOT_FOUND' },
  { method: 'GET', path: '/constructor', status: 404, code: 'ROUTE_NOT_FOUND' },
  { method: 'POST', path: '/ROOMS', status: 404, code: 'ROUTE_NOT_FOUND' },
  { method: 'POST', path: '/rooms%00', status: 404, code: 'ROUTE_NOT_FOUND' },
  { method: 'GET', path: '/rooms', status: 405, code: 'METHOD_NOT_ALLOWED', allow: 'POST' },
  { method: 'DELETE', path: '/rooms', status: 405, code: 'METHOD_NOT_ALLOWED', allow: 'POST' },
  { method: 'POST', path: '/health', status: 405, code: 'METHOD_NOT_ALLOWED', allow: 'GET, HEAD' },
  { method: 'PUT', path: '/metrics', status: 405, code: 'METHOD_NOT_ALLOWED', allow: 'GET, HEAD' },
  { method: 'GET', path: '/ws', status: 426, code: 'UPGRADE_REQUIRED' },
  { method: 'POST', path: '/ws', status: 426, code: 'UPGRADE_REQUIRED' },
];

for (const r of ROUTE_ERRORS) {
  test(`HTTP ${r.method} ${r.path} -> ${r.status} ${r.code}`, async (t) => {
    const h = await startHarness(t);
    const reply = await http(`${h.server.url}${r.path}`, r.method);
    assert.equal(reply.status, r.status);
    const error = (reply.body as { error: { code: string; message: string } }).error;
    assert.equal(error.code, r.code);
    assert.ok(error.message.length > 10);
    if ('allow' in r) assert.equal(reply.headers.allow, r.allow);
    assert.equal(h.server.metrics().errors[r.code as 'ROUTE_NOT_FOUND'], 1);
  });
}

test('port 0 picks a free port; url and wsUrl name it', async (t) => {
  const server = await startSignalingServer({ port: 0 });
  t.after(() => server.close());
  assert.ok(server.port > 0);
  assert.equal(server.url, `http://127.0.0.1:${server.port}`);
  assert.equal(server.wsUrl, `ws://127.0.0.1:${server.port}/ws`);
});

test('IPv6 loopback works and is bracketed in URLs', async (t) => {
  const server = await startSignalingServer({ host: '::1', port: 0 });
  t.after(() => server.close());
  assert.equal(server.url, `http://[::1]:${server.port}`);
  const reply = await http(`${server.url}/health`, 'GET');
  assert.equal(reply.status, 200);
});

test('a port in use is ADDRESS_IN_USE with a sentence saying what to do', async (t) => {
  const first = await startSignalingServer({ port: 0 });
  t.after(() => first.close());
  await assert.rejects(startSignalingServer({ port: first.port }), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'ADDRESS_IN_USE');
    assert.match(err.message, new RegExp(`127\\.0\\.0\\.1:${first.port}`));
    assert.match(err.message, /--port/);
    return true;
  });
});

test('bad options are refused before listening', async () => {
  for (const opts of [{ port: -1 }, { port: 70000 }, { port: 1.5 }, { pingIntervalMs: 0 }, { maxPayloadBytes: -5 }, { roomIdleTtlMs: Number.NaN }]) {
    await assert.rejects(startSignalingServer(opts), { code: 'USAGE' }, JSON.stringify(opts));
  }
});

test('close releases the port (a new server can take it) and is safe twice', async () => {
  const first = await startSignalingServer({ port: 0 });
  await http(`${first.url}/health`, 'GET');
  await first.close();
  await first.close();
  const second = await startSignalingServer({ port: first.port });
  await second.close();
});
