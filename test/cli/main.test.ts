import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { CLI_ENTRY, runCli } from '../helpers/cli.js';

test('--help lists the program and exits 0', async () => {
  const r = await runCli(['--help']);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /Usage: sleap-rtc/);
});

test('an unknown subcommand is a usage error (exit 2) that says what to type', async () => {
  const r = await runCli(['no-such-command']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /unknown command/);
  assert.match(r.stderr, /--help/);
});

test('--help loads none of the heavy libraries: each command loads its own when it runs', async () => {
  const trace = new URL('../fixtures/module-trace/register.mjs', import.meta.url).href;
  const child = spawn(process.execPath, ['--import', trace, CLI_ENTRY, '--help'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  child.stdout.resume();
  const code = await new Promise((resolve) => child.once('close', resolve));
  assert.equal(code, 0, stderr);
  const loaded = [...stderr.matchAll(/^module: (\S+)$/gm)].map((m) => m[1] as string);
  // The trace works: the CLI's own modules are listed.
  assert.ok(loaded.some((u) => u.endsWith('/dist/cli/main.js')), stderr.slice(0, 2000));
  const heavy = loaded.filter((u) => /\/node_modules\/(h5wasm|zeromq|ioredis|node-datachannel)\/|\/dist\/(worker|signaling)\//.test(u));
  assert.deepEqual(heavy, []);
});
