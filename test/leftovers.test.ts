/**
 * The backstop in test/setup.ts: a test file that leaves a process running does not hang the run;
 * the process is named, killed, and the file fails.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { TS_LOADER } from './helpers/cli.js';
import { descendantsOf } from './helpers/leftovers.js';

const SETUP = fileURLToPath(new URL('./setup.ts', import.meta.url));
const NEVER_STOPS = fileURLToPath(new URL('./fixtures/leftovers/never-stops.test.ts', import.meta.url));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('a file that leaves a child running has it killed and exits 1, naming it', async () => {
  const child = spawn(process.execPath, ['--import', TS_LOADER, '--import', SETUP, NEVER_STOPS], {
    env: { ...process.env, SLEAP_RTC_TEST_LEFTOVER_GRACE_MS: '1000' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));

  const sleeper = Number(/sleeper (\d+)/.exec(out)?.[1]);
  assert.ok(Number.isInteger(sleeper) && sleeper > 0, out);
  assert.equal(code, 1, err);
  assert.match(err, /still running 1 s after its last test; killing the 1 process\(es\) it left:/);
  assert.match(err, new RegExp(`${sleeper} sleep 600`));
  // SIGKILL is delivered at once, but the zombie is reaped by init: wait until it is gone.
  for (let i = 0; i < 100 && alive(sleeper) && !/^Z/m.test(stateOf(sleeper)); i++) await new Promise((r) => setTimeout(r, 50));
  assert.ok(!alive(sleeper) || stateOf(sleeper).startsWith('Z'), `sleep ${sleeper} still runs`);
});

function stateOf(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2);
  } catch {
    return '';
  }
}

test('descendantsOf finds children and grandchildren, and nothing once they are gone', async () => {
  const parent = spawn('sh', ['-c', 'sleep 600 & wait'], { stdio: 'ignore' });
  let found: { pid: number; command: string }[] = [];
  for (let i = 0; i < 100 && found.length < 2; i++) {
    found = descendantsOf(process.pid).filter((p) => p.pid === parent.pid || p.command === 'sleep 600');
    if (found.length < 2) await new Promise((r) => setTimeout(r, 20));
  }
  assert.deepEqual(found.map((p) => p.command).sort(), ['sh -c sleep 600 & wait', 'sleep 600']);
  for (const p of found) process.kill(p.pid, 'SIGKILL');
  await new Promise((r) => parent.once('exit', r));
  assert.deepEqual(descendantsOf(process.pid).filter((p) => p.command === 'sleep 600' && found.some((f) => f.pid === p.pid)), []);
});
