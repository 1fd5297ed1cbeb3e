/** `sleap-rtc server` and `sleap-rtc room create` as real child processes on loopback. */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { RoomCreatedSchema } from '../../src/protocol/signaling.js';
import { startSignalingServer } from '../../src/signaling/server.js';
import { runCli, spawnCli } from '../helpers/cli.js';
import { registerPeer } from '../helpers/ws-peer.js';

const LISTENING = /listening on (http:\/\/\S+) \(WebSocket (ws:\/\/\S+)\)/;

interface RunningServer {
  child: ChildProcess;
  url: string;
  wsUrl: string;
  stderr: () => string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts `sleap-rtc server ...args` and resolves once it prints its listening line. */
async function startCliServer(t: TestContext, args: string[], env: NodeJS.ProcessEnv = {}): Promise<RunningServer> {
  const child = spawnCli(['server', ...args], { env });
  let stderr = '';
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal }));
  });
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exit;
    }
  });
  child.stdout?.resume();
  const match = await new Promise<RegExpMatchArray>((resolve, reject) => {
    // A hang guard, not a timing: tsx compiles on start, and a loaded machine took over 30 s.
    const timer = setTimeout(() => reject(new Error(`no listening line within 120 s; stderr: ${stderr}`)), 120_000);
    child.stderr?.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      const m = LISTENING.exec(stderr);
      if (m) {
        clearTimeout(timer);
        resolve(m);
      }
    });
    void exit.then(({ code }) => {
      clearTimeout(timer);
      reject(new Error(`server exited (${code}) before listening; stderr: ${stderr}`));
    });
  });
  return { child, url: match[1] as string, wsUrl: match[2] as string, stderr: () => stderr, exit };
}

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
