/** `sleap-rtc room create` as a real child process against a real server (split from cli.test.ts so each file stays well inside the runner's per-file time limit). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startSignalingServer } from '../../src/signaling/server.js';
import { runCli } from '../helpers/cli.js';
import { registerPeer } from '../helpers/ws-peer.js';
import { startCliServer } from './cli-server.js';

test('room create prints the room id, the token and the worker command to run', async (t) => {
  const server = await startCliServer(t, ['--port', '0', '--host', '127.0.0.1']);
  const r = await runCli(['room', 'create', '--server', server.url]);
  assert.equal(r.code, 0, r.stderr);
  const id = /room id: (\S+)/.exec(r.stdout)?.[1];
  const token = /token: +(\S+)/.exec(r.stdout)?.[1];
  assert.ok(id && token, r.stdout);
  assert.ok(r.stdout.includes(`sleap-rtc worker --server ${server.url} --room ${id} --token ${token}`), r.stdout);
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
