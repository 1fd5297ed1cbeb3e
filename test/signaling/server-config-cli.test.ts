/** `sleap-rtc server --config` as a real child process (split from cli.test.ts so each file stays inside the runner's per-file time limit on a loaded machine). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startSignalingServer } from '../../src/signaling/server.js';
import { runCli } from '../helpers/cli.js';
import { startCliServer } from './cli-server.js';
import { freePort } from './redis-server.js';

test('server --config takes [server] settings from the file; flags beat the file', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sleap-rtc-server-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'config.toml');
  // The file's port is in use, so the server only starts if --port overrides it.
  const taken = await startSignalingServer({ port: 0 });
  t.after(() => taken.close());
  await writeFile(file, `[server]\nhost = "127.0.0.1"\nport = ${taken.port}\nroom_idle_ttl_s = 7200\nping_interval_s = 5\n`);
  const server = await startCliServer(t, ['--config', file, '--port', '0']);
  const r = await runCli(['room', 'create', '--server', server.url, '--json']);
  assert.equal(JSON.parse(r.stdout).idle_ttl_s, 7200);
  server.child.kill('SIGTERM');
  assert.equal((await server.exit).code, 0);
  const clash = await runCli(['server', '--config', file]);
  assert.equal(clash.code, 1, 'without --port the file\'s port is used');
  assert.match(clash.stderr, /ADDRESS_IN_USE/);
});

test('server --config naming a missing file or a bad [server] section exits 2 naming the file and key', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sleap-rtc-server-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const missing = await runCli(['server', '--config', path.join(dir, 'nope.toml')]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /CONFIG_NOT_FOUND/);
  const file = path.join(dir, 'bad.toml');
  await writeFile(file, '[server]\nport = "eighty"\n');
  const bad = await runCli(['server', '--config', file]);
  assert.equal(bad.code, 2);
  assert.ok(bad.stderr.includes(file), bad.stderr);
  assert.match(bad.stderr, /server\.port/);
});

test('server --config reads the store from [signaling] store; the older [server] store naming another store is a configuration error (exit 2)', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sleap-rtc-server-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const port = await freePort();
  const url = `redis://127.0.0.1:${port}/3`;
  const file = path.join(dir, 'store.toml');
  // Nothing listens there: the error names the URL, which shows the key was read.
  await writeFile(file, `[signaling]\nstore = "${url}"\n`);
  const unreachable = await runCli(['server', '--port', '0', '--config', file], { timeoutMs: 120_000 });
  assert.equal(unreachable.code, 1, unreachable.stderr);
  assert.match(unreachable.stderr, new RegExp(`STORE_UNAVAILABLE\\]: Cannot reach Redis at redis://127\\.0\\.0\\.1:${port}/3`));
  assert.match(unreachable.stderr, /\[signaling\] store/);

  await writeFile(file, `[signaling]\nstore = "${url}"\n[server]\nstore = "memory"\n`);
  const clash = await runCli(['server', '--port', '0', '--config', file], { timeoutMs: 120_000 });
  assert.equal(clash.code, 2, clash.stderr);
  assert.match(clash.stderr, /CONFIG_INVALID/);
  assert.ok(clash.stderr.includes(`${file}: server.store: is "memory" but signaling.store is "${url}"`), clash.stderr);
});
