/** The start-up sweep of the work folder: what it removes, what it must leave, and when it stays away. */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import { createLogger } from '../../src/log.js';
import { openWorkDir } from '../../src/worker/work-dir.js';
import { tempDir } from '../fixtures/fake-sleap-nn.js';

function capture() {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _e, cb) {
      for (const l of chunk.toString('utf8').split('\n')) if (l) lines.push((JSON.parse(l) as { msg: string }).msg);
      cb();
    },
  });
  return { lines, logger: createLogger({ name: 'worker', format: 'json', destination }) };
}

/** What an earlier, killed run leaves: a job with a half-received input, one with outputs never sent. */
async function leftovers(t: TestContext) {
  const work = await tempDir(t);
  await mkdir(path.join(work, 'job-a-x1y2z3'), { recursive: true });
  await writeFile(path.join(work, 'job-a-x1y2z3', 'labels.slp.6f1c.part'), Buffer.alloc(3000, 1));
  await mkdir(path.join(work, 'job-b-q9w8e7', 'models', 'run1'), { recursive: true });
  await writeFile(path.join(work, 'job-b-q9w8e7', 'models', 'run1', 'best.ckpt'), Buffer.alloc(5000, 2));
  await mkdir(path.join(work, 'job-kept-r5t6y7'), { recursive: true });
  await writeFile(path.join(work, 'job-kept-r5t6y7', 'predictions.slp'), 'kept for fetch');
  await mkdir(path.join(work, 'results'), { recursive: true });
  await writeFile(path.join(work, 'results', 'kept.json'), '{}');
  await writeFile(path.join(work, 'notes.txt'), 'not the worker\'s');
  return work;
}

test('removes the job folders an earlier run left, says what and how many bytes; leaves kept results and other names', async (t) => {
  const work = await leftovers(t);
  const log = capture();
  const { sweep, release } = await openWorkDir(work, { keep: new Set([path.join(work, 'job-kept-r5t6y7')]), logger: log.logger });
  t.after(release);
  assert.deepEqual(sweep.removed.map((r) => r.name), ['job-a-x1y2z3', 'job-b-q9w8e7']);
  assert.equal(sweep.bytes, 8000);
  assert.deepEqual((await readdir(work)).sort(), ['.workers', 'job-kept-r5t6y7', 'notes.txt', 'results']);
  const line = log.lines.find((l) => l.startsWith('start-up sweep: removed 2 job folder(s)'));
  assert.ok(line, log.lines.join('\n'));
  assert.match(line, /8000 bytes/);
  assert.match(line, /job-a-x1y2z3 \(2\.9 KiB\), job-b-q9w8e7 \(4\.9 KiB\)/);
});

test('a work folder in use by another live worker is not swept (and says why); a dead one\'s mark is stale', async (t) => {
  const work = await leftovers(t);
  const other = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
  t.after(() => other.kill('SIGKILL'));
  await mkdir(path.join(work, '.workers'), { recursive: true });
  await writeFile(path.join(work, '.workers', String(other.pid)), '');
  const log = capture();
  const first = await openWorkDir(work, { logger: log.logger });
  assert.equal(first.sweep.skipped, `another worker (pid ${other.pid}) uses ${work}`);
  assert.ok((await readdir(work)).includes('job-a-x1y2z3'), 'nothing removed');
  assert.ok(log.lines.some((l) => l.startsWith('start-up sweep skipped: another worker')));
  await first.release();

  other.kill('SIGKILL');
  await new Promise((r) => other.once('exit', r));
  const second = await openWorkDir(work, { logger: log.logger });
  t.after(second.release);
  assert.equal(second.sweep.skipped, null);
  assert.equal(second.sweep.removed.length, 3);
  assert.deepEqual(await readdir(path.join(work, '.workers')), [String(process.pid)]);
});

test('our own pid left in the folder (a container restart reuses it) is a leftover, not a live worker', async (t) => {
  const work = await leftovers(t);
  await mkdir(path.join(work, '.workers'), { recursive: true });
  await writeFile(path.join(work, '.workers', String(process.pid)), 'from the run before');
  const { sweep, release } = await openWorkDir(work, { logger: capture().logger });
  t.after(release);
  assert.equal(sweep.skipped, null);
  assert.equal(sweep.removed.length, 3);
});
