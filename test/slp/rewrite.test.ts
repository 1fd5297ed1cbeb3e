import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmod, readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import fc from 'fast-check';
import { listVideos, writeRenamedCopy } from '../../src/slp/index.js';
import { SleapRtcError } from '../../src/errors.js';
import { copySleapFile } from '../helpers/sleap-data.js';
import { describe, runH5py } from './h5py.js';
import { mediaEntry, tempDir, writeLabels } from './make-labels.js';

const sha = async (f: string) => createHash('sha256').update(await readFile(f)).digest('hex');

/** Asserts that h5py sees the same objects in both files, all equal except the contents of videos_json. */
function assertSameButVideos(original: string, copy: string): { before: string[]; after: string[] } {
  const a = describe(original);
  const b = describe(copy);
  assert.deepEqual(Object.keys(b).sort(), Object.keys(a).sort(), 'the same groups and datasets');
  for (const key of Object.keys(a)) {
    if (key === 'videos_json') continue;
    assert.deepEqual(b[key], a[key], `${key} is unchanged (kind, attributes, shape, dtype, HDF5 type, layout, contents)`);
  }
  const { values: before, content: _c1, ...restA } = a.videos_json!;
  const { values: after, content: _c2, ...restB } = b.videos_json!;
  assert.deepEqual(restB, restA, 'videos_json keeps its type, shape, layout and attributes');
  return { before: before!, after: after! };
}

test('a rewritten copy of the real labels file: new name read back by our reader and by h5py, everything else unchanged', async (t) => {
  const dir = await tempDir(t);
  const labels = await copySleapFile('labels', path.join(dir, 'small_robot_minimal.slp'));
  await chmod(labels, 0o444); // the user's file may be read-only; it is only read
  const before = await sha(labels);
  const copy = path.join(dir, 'job', 'labels.slp');
  await (await import('node:fs/promises')).mkdir(path.dirname(copy));
  await writeRenamedCopy(labels, copy, new Map([[0, ['/home/jovyan/vast/robot.mp4']]]));

  assert.equal(await sha(labels), before, "the user's file is not changed");
  assert.deepEqual((await listVideos(copy)).videos, [{ index: 0, kind: 'file', names: ['/home/jovyan/vast/robot.mp4'] }]);
  const { before: old, after } = assertSameButVideos(labels, copy);
  assert.deepEqual(after.map((s) => JSON.parse(s)), old.map((s) => {
    const o = JSON.parse(s);
    o.backend.filename = '/home/jovyan/vast/robot.mp4';
    return o;
  }), 'only the file name changed in the entry');
  assert.equal(describe(copy).metadata!.attrs.format_id!.value, '1.1', 'format_id stays');
  assert.deepEqual(await readdir(path.dirname(copy)), ['labels.slp'], 'no temporary file is left');
});

test('no renames: the copy is the same file to h5py', async (t) => {
  const dir = await tempDir(t);
  const pkg = await copySleapFile('pkg', path.join(dir, 'minimal_instance.pkg.slp'));
  const copy = path.join(dir, 'copy.pkg.slp');
  await writeRenamedCopy(pkg, copy, new Map());
  const { before, after } = assertSameButVideos(pkg, copy);
  assert.deepEqual(after, before);
});

test('an embedded video has no file name to rewrite', async (t) => {
  const dir = await tempDir(t);
  const pkg = await copySleapFile('pkg', path.join(dir, 'minimal_instance.pkg.slp'));
  await assert.rejects(writeRenamedCopy(pkg, path.join(dir, 'c.slp'), new Map([[0, ['/x.mp4']]])), /embedded/);
  await assert.rejects(writeRenamedCopy(pkg, path.join(dir, 'c.slp'), new Map([[3, ['/x.mp4']]])), /no video 3/);
  assert.deepEqual((await readdir(dir)).sort(), ['minimal_instance.pkg.slp']);
});

test('a variable-length videos table takes names of any length (h5py reads them back, nothing else changes)', async (t) => {
  const dir = await tempDir(t);
  const labels = await copySleapFile('labels', path.join(dir, 'small_robot_minimal.slp'));
  const vlen = path.join(dir, 'vlen.slp');
  runH5py(
    [
      'import h5py, shutil, sys',
      'shutil.copyfile(sys.argv[1], sys.argv[2])',
      "with h5py.File(sys.argv[2], 'a') as f:",
      "    v = [bytes(x) for x in f['videos_json'][:]]",
      "    del f['videos_json']",
      "    f.create_dataset('videos_json', data=v, dtype=h5py.special_dtype(vlen=bytes), maxshape=(None,))",
    ].join('\n'),
    [labels, vlen],
  );
  const long = `/home/jovyan/vast/${'deep/'.repeat(60)}vidéo "quoted" \\ ü.mp4`;
  const copy = path.join(dir, 'copy.slp');
  await writeRenamedCopy(vlen, copy, new Map([[0, [long]]]));
  assert.deepEqual((await listVideos(copy)).videos[0]!.names, [long]);
  const { after } = assertSameButVideos(vlen, copy);
  assert.equal(JSON.parse(after[0]!).backend.filename, long, 'h5py reads the same name');
});

test('a name too long for a fixed-length table is refused, and an existing destination is left alone', async (t) => {
  const dir = await tempDir(t);
  const labels = await copySleapFile('labels', path.join(dir, 'small_robot_minimal.slp'));
  const dest = path.join(dir, 'dest.slp');
  await writeFile(dest, 'the previous copy');
  const err = await writeRenamedCopy(labels, dest, new Map([[0, [`/${'x'.repeat(200)}.mp4`]]])).catch((e: unknown) => e);
  assert.ok(err instanceof SleapRtcError);
  assert.equal(err.code, 'SLP_VIDEO_NAME_TOO_LONG');
  assert.equal(err.details.available, 123);
  assert.ok(Number(err.details.needed) > 200, String(err.details.needed));
  assert.equal(await readFile(dest, 'utf8'), 'the previous copy');
  assert.deepEqual((await readdir(dir)).sort(), ['dest.slp', 'small_robot_minimal.slp'], 'no temporary file is left');
});

test('a destination folder that does not exist: SLP_WRITE_FAILED naming both files', async (t) => {
  const dir = await tempDir(t);
  const labels = await copySleapFile('labels', path.join(dir, 'small_robot_minimal.slp'));
  const dest = path.join(dir, 'missing', 'copy.slp');
  await assert.rejects(writeRenamedCopy(labels, dest, new Map([[0, ['/a.mp4']]])), (e: SleapRtcError) =>
    e.code === 'SLP_WRITE_FAILED' && e.message.includes(labels) && e.message.includes(dest));
});

test('rewriting in place is refused', async (t) => {
  const dir = await tempDir(t);
  const labels = await copySleapFile('labels', path.join(dir, 'small_robot_minimal.slp'));
  await assert.rejects(writeRenamedCopy(labels, labels, new Map([[0, ['/a.mp4']]])), /in place/);
});

test("Python's NaN and Infinity in an entry survive a rewrite, and other entries stay byte for byte", async (t) => {
  const dir = await tempDir(t);
  const labels = path.join(dir, 'labels.slp');
  const first = '{"backend":{"filename":"/data/a-long-original-name.mp4","fps":NaN,"shape":[Infinity,-Infinity],"note":"NaN in a string"}}';
  const second = '{ "backend" : { "filename" : "b.mp4" } }';
  await writeLabels(labels, [first, second]);
  const copy = path.join(dir, 'copy.slp');
  await writeRenamedCopy(labels, copy, new Map([[0, ['/v/a.mp4']]]));
  const values = describe(copy).videos_json!.values!;
  assert.equal(values[0], '{"backend":{"filename":"/v/a.mp4","fps":NaN,"shape":[Infinity,-Infinity],"note":"NaN in a string"}}');
  assert.equal(values[1], second);
});

test('an image sequence gets its list of names (and the first as its filename)', async (t) => {
  const dir = await tempDir(t);
  const labels = path.join(dir, 'labels.slp');
  await writeLabels(labels, [JSON.stringify({ filename: ['img/000.png', 'img/001.png'], backend: { filename: 'img/000.png', filenames: ['img/000.png', 'img/001.png'] } }), mediaEntry('keep.mp4')]);
  const copy = path.join(dir, 'copy.slp');
  await writeRenamedCopy(labels, copy, new Map([[0, ['/w/0.png', '/w/1.png']]]));
  const entry = JSON.parse(describe(copy).videos_json!.values![0]!);
  assert.deepEqual(entry, { filename: ['/w/0.png', '/w/1.png'], backend: { filename: '/w/0.png', filenames: ['/w/0.png', '/w/1.png'] } });
  assert.deepEqual((await listVideos(copy)).videos[1]!.names, ['keep.mp4']);
});

test('property: any names written to a variable-length table read back exactly', async (t) => {
  const dir = await tempDir(t);
  const labels = path.join(dir, 'labels.slp');
  await writeLabels(labels, [mediaEntry('a.mp4'), mediaEntry('b.mp4'), mediaEntry('c.mp4')], { vlen: true });
  const name = fc.string({ unit: 'binary', minLength: 1, maxLength: 300 }).filter((s) => !s.includes('\u0000') && s !== '.');
  let n = 0;
  await fc.assert(
    fc.asyncProperty(fc.uniqueArray(fc.integer({ min: 0, max: 2 }), { maxLength: 3 }), fc.array(name, { minLength: 3, maxLength: 3 }), async (which, names) => {
      const copy = path.join(dir, `copy-${n++}.slp`);
      await writeRenamedCopy(labels, copy, new Map(which.map((i) => [i, [names[i]!]])));
      const got = (await listVideos(copy)).videos.map((v) => v.names[0]);
      assert.deepEqual(got, ['a.mp4', 'b.mp4', 'c.mp4'].map((orig, i) => (which.includes(i) ? names[i] : orig)));
    }),
    { numRuns: 40 },
  );
});
