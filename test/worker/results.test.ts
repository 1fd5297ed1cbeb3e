/** Kept results on real folders: kept, found, expired, removed; a record that points anywhere else is ignored. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ResultsShelf } from '../../src/worker/results.js';
import { tempDir } from '../transport/helpers/transfer.js';

async function jobDir(work: string, id: string): Promise<{ dir: string; out: string }> {
  const dir = path.join(work, `job-${id}-abc123`);
  await mkdir(path.join(dir, 'output', 'r1'), { recursive: true });
  await writeFile(path.join(dir, 'output', 'r1', 'best.ckpt'), 'model');
  return { dir, out: path.join(dir, 'output', 'r1') };
}

test('kept results are found until done, and survive a new shelf (a worker restart)', async (t) => {
  const work = await tempDir(t, 'work');
  const { dir, out } = await jobDir(work, 'job-1');
  const shelf = new ResultsShelf({ workDir: work, keepMs: 60_000 });
  await shelf.keep('job-1', dir, [{ relative_path: 'output/r1', local: out, kind: 'directory' }]);
  const again = new ResultsShelf({ workDir: work, keepMs: 60_000 });
  assert.equal((await again.get('job-1'))?.outputs[0]?.local, out);
  assert.deepEqual(await again.keptDirs(), [dir]);
  assert.equal(await again.sweep(), 0);
  await again.done('job-1');
  assert.equal(await again.get('job-1'), null);
  await assert.rejects(stat(dir));
  assert.deepEqual(await readdir(path.join(work, 'results')), []);
});

test('expired results are swept with their folder', async (t) => {
  const work = await tempDir(t, 'work');
  const { dir, out } = await jobDir(work, 'job-2');
  const shelf = new ResultsShelf({ workDir: work, keepMs: -1 });
  await shelf.keep('job-2', dir, [{ relative_path: 'output/r1', local: out, kind: 'directory' }]);
  assert.equal(await shelf.sweep(), 1);
  await assert.rejects(stat(dir));
});

test('a record naming a folder outside work_dir, or outputs outside its folder, is ignored and removes nothing', async (t) => {
  const work = await tempDir(t, 'work');
  const elsewhere = await tempDir(t, 'elsewhere');
  await writeFile(path.join(elsewhere, 'precious'), 'x');
  await mkdir(path.join(work, 'results'));
  const bad = [
    { v: 1, job_id: 'job-3', job_dir: elsewhere, outputs: [], expires_at: 0 },
    { v: 1, job_id: 'job-3', job_dir: path.join(work, 'job-job-3-x'), outputs: [{ relative_path: 'a', local: elsewhere, kind: 'file' }], expires_at: 0 },
    { v: 1, job_id: 'job-3', job_dir: path.join(work, '..'), outputs: [], expires_at: 0 },
  ];
  const shelf = new ResultsShelf({ workDir: work, keepMs: 60_000 });
  for (const record of bad) {
    await writeFile(path.join(work, 'results', 'job-3.json'), JSON.stringify(record));
    assert.equal(await shelf.get('job-3'), null);
    await shelf.sweep();
    assert.deepEqual(await readdir(elsewhere), ['precious']);
  }
  assert.equal(await shelf.get('../../etc/passwd'), null);
});
