/**
 * The predictions file leaves the worker naming videos as the client knows them
 * (src/worker/predictions.ts), on real labels files from ../shared/sleap-data whose videos table
 * and provenance name worker paths, as sleap-nn's would; read back by h5wasm and by h5py. The same
 * renaming for every `.slp` of a training run folder (labels_gt / labels_pr), and no rewrite at all
 * of a file with nothing to rename.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { listVideos } from '../../src/slp/index.js';
import { nameRunFolderVideos, nameVideos, relativeTo, RunFolderLabelsError } from '../../src/worker/predictions.js';
import { tempDir } from '../fixtures/fake-sleap-nn.js';
import { labelsNaming } from '../helpers/slp-files.js';
import { copySleapFile } from '../helpers/sleap-data.js';

const JOB = '/home/jovyan/.sleap-rtc/work/job-abc123-XyZ';

/** h5py's view: every video name, and sleap-nn's provenance in metadata's json. */
function h5pyRead(file: string): { videos: string[]; provenance: Record<string, unknown> } {
  const script = String.raw`
import json, sys, h5py
with h5py.File(sys.argv[1], 'r') as f:
    videos = [json.loads(v)['backend']['filename'] for v in f['videos_json'][:]]
    md = f['metadata'].attrs['json']
    md = json.loads(md if isinstance(md, str) else md.decode())
    print(json.dumps({'videos': videos, 'provenance': md.get('provenance', {})}))
`;
  const r = spawnSync('/usr/bin/python3', ['-c', script, file], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as { videos: string[]; provenance: Record<string, unknown> };
}

/** Sets sleap-nn's provenance in the file's metadata json (as sleap-io stores Labels.provenance). */
function setProvenance(file: string, provenance: Record<string, unknown>): void {
  const script = String.raw`
import json, sys, h5py
with h5py.File(sys.argv[1], 'a') as f:
    md = json.loads(f['metadata'].attrs['json'])
    md['provenance'] = json.loads(sys.argv[2])
    f['metadata'].attrs['json'] = json.dumps(md)
`;
  const r = spawnSync('/usr/bin/python3', ['-c', script, file, JSON.stringify(provenance)], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
}

const redact = (text: string): string => text.split(`${JOB}/inputs/0/`).join('proj/').split(JOB).join('<job folder>');

test('videos named by worker paths get the client names; other absolute names their base name; provenance redacted', async (t) => {
  const dir = await tempDir(t);
  const file = await labelsNaming(path.join(dir, 'p.slp'), [`${JOB}/inputs/2/cam0.mp4`, `${JOB}/labels-1/cam1.mp4`, '/somewhere/else/cam2.mp4', 'rel/cam3.mp4']);
  setProvenance(file, { source_file: `${JOB}/inputs/0/labels.slp`, model_paths: [`${JOB}/inputs/1/m1`], sleap_nn_version: '0.3.3' });
  const names = new Map([
    [`${JOB}/inputs/2/cam0.mp4`, '/Volumes/talmo/alice/videos/cam0.mp4'],
    [`${JOB}/labels-1/cam1.mp4`, 'C:\\lab\\cam1.mp4'],
  ]);
  assert.equal(await nameVideos(file, names, redact), 3, 'three videos renamed: two by the map, one to its base name');
  assert.deepEqual((await listVideos(file)).videos.map((v) => v.names), [['/Volumes/talmo/alice/videos/cam0.mp4'], ['C:\\lab\\cam1.mp4'], ['cam2.mp4'], ['rel/cam3.mp4']]);
  const read = h5pyRead(file);
  assert.deepEqual(read.videos, ['/Volumes/talmo/alice/videos/cam0.mp4', 'C:\\lab\\cam1.mp4', 'cam2.mp4', 'rel/cam3.mp4']);
  assert.deepEqual(read.provenance, { source_file: 'proj/labels.slp', model_paths: ['<job folder>/inputs/1/m1'], sleap_nn_version: '0.3.3' });
  assert.deepEqual((await readdir(dir)).sort(), ['p.slp'], 'no temporary file left beside it');
});

test('a name longer than the fixed-length table is written as its base name', async (t) => {
  const dir = await tempDir(t);
  const file = await labelsNaming(path.join(dir, 'p.slp'), [`${JOB}/inputs/2/cam0.mp4`]);
  const long = `/Volumes/talmo/${'a-very-long-folder/'.repeat(12)}cam0.mp4`;
  await nameVideos(file, new Map([[`${JOB}/inputs/2/cam0.mp4`, long]]), redact);
  assert.deepEqual((await listVideos(file)).videos[0]?.names, ['cam0.mp4']);
});

test('a file that is not a labels file is refused with its code, and left as it was', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'p.slp');
  await writeFile(file, 'not HDF5');
  await assert.rejects(nameVideos(file, new Map(), redact), (e: Error & { code?: string }) => e.code === 'SLP_NOT_HDF5');
  assert.deepEqual(await readdir(dir), ['p.slp']);
});

test('relativeTo: the input as seen from the predictions file, both in the job\'s own terms', () => {
  const table: [string, string, string][] = [
    ['proj/video.mp4.predictions.slp', 'proj/video.mp4', 'video.mp4'],
    ['out/run.slp', 'proj/video.mp4', '../proj/video.mp4'],
    ['p.slp', 'clips/c 1.mp4', 'clips/c 1.mp4'],
    ['a/b/c/p.slp', 'a/x.slp', '../../x.slp'],
  ];
  for (const [output, data, want] of table) assert.equal(relativeTo(output, data), want, `${output} → ${data}`);
});

/** The file's identity and bytes: a file left alone keeps all three. */
async function snapshot(file: string): Promise<{ ino: number; mtimeMs: number; bytes: Buffer }> {
  const st = await stat(file);
  return { ino: st.ino, mtimeMs: st.mtimeMs, bytes: await readFile(file) };
}

test('a file with nothing to rename and no worker path in its metadata is not rewritten (same inode, same bytes)', async (t) => {
  const dir = await tempDir(t);
  for (const which of ['labels', 'pkg'] as const) {
    // The real files as SLEAP saved them: a relative video name, or frames embedded ("."); empty provenance.
    const file = await copySleapFile(which, path.join(dir, `${which}.slp`));
    const before = await snapshot(file);
    assert.equal(await nameVideos(file, new Map([[`${JOB}/inputs/2/cam0.mp4`, '/Volumes/talmo/cam0.mp4']]), redact), 0);
    const after = await snapshot(file);
    assert.equal(after.ino, before.ino, `${which}: same inode`);
    assert.equal(after.mtimeMs, before.mtimeMs, `${which}: not written`);
    assert.ok(after.bytes.equals(before.bytes), `${which}: byte-identical`);
  }
  assert.deepEqual((await readdir(dir)).sort(), ['labels.slp', 'pkg.slp'], 'no temporary file either');
});

test('a file whose only worker path is in its metadata is rewritten (new inode), its videos unchanged', async (t) => {
  const dir = await tempDir(t);
  const file = await labelsNaming(path.join(dir, 'p.slp'), ['rel/cam0.mp4']);
  setProvenance(file, { filename: `${JOB}/inputs/0/labels.slp` });
  const before = await snapshot(file);
  assert.equal(await nameVideos(file, new Map(), redact), 0, 'no video renamed');
  assert.notEqual((await snapshot(file)).ino, before.ino, 'renamed over: a new inode');
  assert.deepEqual(h5pyRead(file), { videos: ['rel/cam0.mp4'], provenance: { filename: 'proj/labels.slp' } });
});

test('a training run folder: every .slp (labels_gt, labels_pr, in subfolders too) gets the client names; other files untouched', async (t) => {
  const run = path.join(await tempDir(t), 'run1');
  await mkdir(path.join(run, 'viz'), { recursive: true });
  const pinned = [`${JOB}/inputs/2/cam0.mp4`, `${JOB}/inputs/3/cam1.mp4`];
  const names = new Map([
    [pinned[0]!, '/Volumes/talmo/alice/cam0.mp4'],
    [pinned[1]!, '/Volumes/talmo/alice/cam1.mp4'],
    [`${JOB}/inputs/0/labels.pkg.slp`, '../labels.pkg.slp'],
  ]);
  for (const f of ['labels_gt.train.0.slp', 'labels_gt.val.0.slp', 'labels_pr.train.0.slp', 'viz/labels_pr.val.0.slp']) {
    await labelsNaming(path.join(run, f), pinned);
    setProvenance(path.join(run, f), { filename: `${JOB}/inputs/0/labels.slp` });
  }
  // sleap-io keeps a .pkg.slp's frames where they are: the video names the labels file it loaded.
  await labelsNaming(path.join(run, 'labels_gt.test.0.slp'), [`${JOB}/inputs/0/labels.pkg.slp`]);
  const clean = await labelsNaming(path.join(run, 'clean.slp'), ['cam9.mp4']);
  await writeFile(path.join(run, 'best.ckpt'), 'weights');
  const cleanBefore = await snapshot(clean);

  const renamed = await nameRunFolderVideos(run, names, redact);
  assert.deepEqual([...renamed], [
    ['clean.slp', 0],
    ['labels_gt.test.0.slp', 1],
    ['labels_gt.train.0.slp', 2],
    ['labels_gt.val.0.slp', 2],
    ['labels_pr.train.0.slp', 2],
    ['viz/labels_pr.val.0.slp', 2],
  ]);
  for (const f of ['labels_gt.train.0.slp', 'labels_gt.val.0.slp', 'labels_pr.train.0.slp', 'viz/labels_pr.val.0.slp']) {
    const read = h5pyRead(path.join(run, f));
    assert.deepEqual(read.videos, ['/Volumes/talmo/alice/cam0.mp4', '/Volumes/talmo/alice/cam1.mp4'], f);
    assert.deepEqual(read.provenance, { filename: 'proj/labels.slp' }, f);
    assert.ok(!JSON.stringify(read).includes(JOB), `${f} names no worker path`);
  }
  assert.deepEqual(h5pyRead(path.join(run, 'labels_gt.test.0.slp')).videos, ['../labels.pkg.slp']);
  const cleanAfter = await snapshot(clean);
  assert.equal(cleanAfter.ino, cleanBefore.ino, 'a file with nothing to rename keeps its inode');
  assert.ok(cleanAfter.bytes.equals(cleanBefore.bytes));
  assert.equal(await readFile(path.join(run, 'best.ckpt'), 'utf8'), 'weights');
  assert.deepEqual((await readdir(run)).sort(), ['best.ckpt', 'clean.slp', 'labels_gt.test.0.slp', 'labels_gt.train.0.slp', 'labels_gt.val.0.slp', 'labels_pr.train.0.slp', 'viz']);
});

test('a run folder .slp that is no labels file: RunFolderLabelsError naming it, with the labels file code', async (t) => {
  const table: [string, string | Buffer, string][] = [
    ['labels_pr.val.0.slp', 'not HDF5', 'SLP_NOT_HDF5'],
    ['labels_gt.val.0.slp', Buffer.alloc(0), 'SLP_NOT_HDF5'],
  ];
  for (const [name, content, code] of table) {
    const run = await tempDir(t);
    await labelsNaming(path.join(run, 'labels_gt.train.0.slp'), [`${JOB}/inputs/2/cam0.mp4`]);
    await writeFile(path.join(run, name), content);
    await assert.rejects(
      nameRunFolderVideos(run, new Map(), redact),
      (e: unknown) => e instanceof RunFolderLabelsError && e.file === name && (e.cause as { code?: string }).code === code,
      name,
    );
    assert.equal(h5pyRead(path.join(run, 'labels_gt.train.0.slp')).videos.length, 1);
  }
});

test('a run folder whose labels file has no videos table is refused too', async (t) => {
  const run = await tempDir(t);
  // A real HDF5 file that is not a labels file: the labels file with its videos table removed by h5py.
  const file = await copySleapFile('labels', path.join(run, 'labels_gt.train.0.slp'));
  const r = spawnSync('/usr/bin/python3', ['-c', "import sys, h5py, os; os.chmod(sys.argv[1], 0o644); f = h5py.File(sys.argv[1], 'a'); del f['videos_json']; f.close()", file], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  await assert.rejects(nameRunFolderVideos(run, new Map(), redact), (e: unknown) => e instanceof RunFolderLabelsError && (e.cause as { code?: string }).code === 'SLP_NO_VIDEOS_TABLE');
});
