/** `sleap-rtc server --store`: Redis unreachable at start, and a store setting that is not understood. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runCli } from '../helpers/cli.js';
import { freePort } from './redis-server.js';

test('Redis unreachable at start: a clear error naming the URL, exit 1', async () => {
  const port = await freePort();
  const r = await runCli(['server', '--port', '0', '--store', `redis://127.0.0.1:${port}/0`], { timeoutMs: 120_000 });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /STORE_UNAVAILABLE/);
  assert.match(r.stderr, new RegExp(`Cannot reach Redis at redis://127\\.0\\.0\\.1:${port}/0`));
});

test('a --store that is not memory or a Redis URL is a usage error (exit 2)', async () => {
  const r = await runCli(['server', '--port', '0', '--store', 'mongodb://x'], { timeoutMs: 120_000 });
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /redis:\/\/HOST:PORT\/DB/);
});
