/** `sleap-rtc server` and `sleap-rtc room create` as real child processes on loopback. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RoomCreatedSchema } from '../../src/protocol/signaling.js';
import { startSignalingServer } from '../../src/signaling/server.js';
import { runCli } from '../helpers/cli.js';
import { registerPeer } from '../helpers/ws-peer.js';
import { startCliServer } from './cli-server.js';

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  test(`server --port 0 serves rooms and shuts down cleanly on ${signal} (exit 0)`, async (t) => {
    const server = await startCliServer(t, ['--port', '0']);
    assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(server.wsUrl, `${server.url.replace('http', 'ws')}/ws`);
    const created = await runCli(['room', 'create', '--server', server.url, '--json']);
    assert.equal(created.code, 0, created.stderr);
    const room = RoomCreatedSchema.extend({ server_url: RoomCreatedSchema.shape.token }).parse(JSON.parse(created.stdout));
    assert.equal(room.server_url, server.url);
    const peer = await registerPeer(server.wsUrl, { room_id: room.room_id, token: room.token, peer_id: 'via-cli' });
    assert.equal(peer.peerId, 'via-cli');
    server.child.kill(signal);
    assert.deepEqual(await server.exit, { code: 0, signal: null });
    assert.equal((await peer.closed).code, 1001, 'peers are told the server is going away');
    assert.match(server.stderr(), new RegExp(`${signal} received`));
  });
}

test('server on a port in use: ADDRESS_IN_USE, says to pick another --port, exit 1', async (t) => {
  const taken = await startSignalingServer({ port: 0 });
  t.after(() => taken.close());
  const r = await runCli(['server', '--port', String(taken.port)]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /ADDRESS_IN_USE/);
  assert.match(r.stderr, /--port/);
});

test('server with a bad --port is a usage error (exit 2) that shows a valid one', async () => {
  for (const bad of ['abc', '-1', '65536', '80.5', '']) {
    const r = await runCli(['server', '--port', bad]);
    assert.equal(r.code, 2, `--port ${bad}: ${r.stderr}`);
    assert.match(r.stderr, /--port 8080/);
  }
});
