/** `sleap-rtc room create` as a real child process against a real server (split from cli.test.ts so each file stays well inside the runner's per-file time limit). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startSignalingServer } from '../../src/signaling/server.js';
import { runCli } from '../helpers/cli.js';
import { registerPeer } from '../helpers/ws-peer.js';
import { createServer } from 'node:http';
import { once } from 'node:events';
import { startCliServer } from './cli-server.js';
import { redisFor } from './scale-out-helpers.js';

test('room create prints the room id, the token and the worker command to run', async (t) => {
  const server = await startCliServer(t, ['--port', '0', '--host', '127.0.0.1']);
  const r = await runCli(['room', 'create', '--server', server.url]);
  assert.equal(r.code, 0, r.stderr);
  const id = /room id: (\S+)/.exec(r.stdout)?.[1];
  const token = /token: +(\S+)/.exec(r.stdout)?.[1];
  assert.ok(id && token, r.stdout);
  assert.ok(r.stdout.includes(`sleap-rtc worker --server ${server.url} --room ${id} --token ${token}`), r.stdout);
  // The memory store removes idle rooms after [server] room_idle_ttl_s (default 24 h), and says so.
  assert.match(r.stdout, /^ {2}removed after 24 h with no peer connected$/m);
  assert.doesNotMatch(r.stdout, /kept until/);
  const peer = await registerPeer(server.wsUrl, { room_id: id, token, role: 'worker' });
  await peer.close();
});

test('room create takes the server from SLEAP_RTC_SERVER, and accepts the ws:// endpoint form', async (t) => {
  const server = await startCliServer(t, ['--port', '0']);
  const fromEnv = await runCli(['room', 'create', '--json'], { env: { SLEAP_RTC_SERVER: server.url } });
  assert.equal(fromEnv.code, 0, fromEnv.stderr);
  assert.equal(JSON.parse(fromEnv.stdout).server_url, server.url);
  const wsForm = await runCli(['room', 'create', '--json', '--server', server.wsUrl], { env: { SLEAP_RTC_SERVER: 'http://127.0.0.1:9' } });
  assert.equal(wsForm.code, 0, wsForm.stderr);
  assert.equal(JSON.parse(wsForm.stdout).server_url, server.url, 'the flag beats the environment');
});

test('room create against a port nobody listens on: SIGNALING_UNREACHABLE naming the URL and `sleap-rtc server`, exit 1', async () => {
  const probe = await startSignalingServer({ port: 0 });
  const url = probe.url;
  await probe.close();
  const r = await runCli(['room', 'create', '--server', url]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /SIGNALING_UNREACHABLE/);
  assert.ok(r.stderr.includes(url), r.stderr);
  assert.match(r.stderr, /sleap-rtc server/);
  assert.equal(r.stdout, '');
});

test('room create with a malformed server URL is a usage error (exit 2) showing the expected form', async () => {
  for (const bad of ['not a url', 'ftp://127.0.0.1:21']) {
    const r = await runCli(['room', 'create', '--server', bad]);
    assert.equal(r.code, 2, bad);
    assert.match(r.stderr, /--server http:\/\/127\.0\.0\.1:8080/);
  }
});

test('room create on a server whose store keeps rooms until deleted (Redis) says so, and --json gives idle_ttl_s null; the memory store gives its TTL', async (t) => {
  const redis = await redisFor(t);
  // The idle TTL is set, and ignored by the Redis store: the answer must not repeat it.
  const [onRedis, onMemory] = await Promise.all([
    startCliServer(t, ['--port', '0', '--store', redis.url]),
    startCliServer(t, ['--port', '0', '--store', 'memory', '--rooms-file', '']),
  ]);
  const text = await runCli(['room', 'create', '--server', onRedis.url]);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /^ {2}kept until it is deleted, also while no peer is connected$/m);
  assert.doesNotMatch(text.stdout, /removed after/);

  const asJson = await runCli(['room', 'create', '--json', '--server', onRedis.url]);
  assert.equal(asJson.code, 0, asJson.stderr);
  const kept = JSON.parse(asJson.stdout) as { room_id: string; token: string; idle_ttl_s: unknown };
  assert.equal(kept.idle_ttl_s, null);
  // The room it names is real and works.
  const peer = await registerPeer(onRedis.wsUrl, { room_id: kept.room_id, token: kept.token, role: 'worker' });
  await peer.close();

  const memoryJson = await runCli(['room', 'create', '--json', '--server', onMemory.url]);
  assert.equal(memoryJson.code, 0, memoryJson.stderr);
  assert.equal((JSON.parse(memoryJson.stdout) as { idle_ttl_s: unknown }).idle_ttl_s, 86_400);
});

test('room create against a server answering a room in a form this version does not know: says the server may be newer, exit 1', async (t) => {
  // What an older sleap-rtc sees from a newer server: a room whose fields it does not accept.
  const future = createServer((req, res) => {
    res.writeHead(201, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ room_id: 'abcdefghij', token: 'x'.repeat(32), idle_ttl_s: 'forever' }));
  });
  future.listen(0, '127.0.0.1');
  await once(future, 'listening');
  t.after(() => future.close());
  const address = future.address();
  const url = `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`;
  const r = await runCli(['room', 'create', '--server', url]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /SIGNALING_UNREACHABLE/);
  assert.match(r.stderr, /a form this sleap-rtc does not understand; is the server newer\? Upgrade sleap-rtc/);
  assert.equal(r.stdout, '');
});
