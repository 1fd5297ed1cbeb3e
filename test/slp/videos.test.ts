import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { listVideos, resolveVideos } from '../../src/slp/index.js';
import { SleapRtcError } from '../../src/errors.js';
import { copySleapFile, sleapDataPath } from '../helpers/sleap-data.js';
import { mediaEntry, tempDir, writeH5, writeLabels } from './make-labels.js';
import { runH5py } from './h5py.js';

test('lists the one video of the real labels file, stored by a relative name', async (t) => {
  const dir = await tempDir(t);
  const labels = await copySleapFile('labels', path.join(dir, 'small_robot_minimal.slp'));
  const list = await listVideos(labels);
  assert.equal(list.formatId, 1.1);
  assert.deepEqual(list.videos, [{ index: 0, kind: 'file', names: ['tests/data/videos/small_robot.mp4'] }]);
});

test('lists the embedded video of the real package file, with its dataset', async (t) => {
  const dir = await tempDir(t);
  const pkg = await copySleapFile('pkg', path.join(dir, 'minimal_instance.pkg.slp'));
  const list = await listVideos(pkg);
  assert.equal(list.formatId, 1.2);
  assert.deepEqual(list.videos, [{ index: 0, kind: 'embedded', names: [], dataset: 'video0/video' }]);
  const [resolved] = await resolveVideos(list, dir);
  assert.deepEqual(resolved!.files, [], 'an embedded video names no file to find');
});

test('a relative name is found as SLEAP finds it: as given first, then by its base name next to the labels file', async (t) => {
  const dir = await tempDir(t);
  const labelsDir = path.join(dir, 'project');
  await mkdir(labelsDir);
  const labels = await copySleapFile('labels', path.join(labelsDir, 'small_robot_minimal.slp'));
  const list = await listVideos(labels);

  // Nothing anywhere: not found, and both places are reported as tried.
  let [v] = await resolveVideos(list, dir);
  assert.equal(v!.files[0]!.path, null);
  assert.deepEqual(v!.files[0]!.tried, [path.join(dir, 'tests/data/videos/small_robot.mp4'), path.join(labelsDir, 'small_robot.mp4')]);

  // Next to the labels file (as in shared/sleap-data).
  await copySleapFile('video', path.join(labelsDir, 'small_robot.mp4'));
  [v] = await resolveVideos(list, dir);
  assert.deepEqual({ path: v!.files[0]!.path, how: v!.files[0]!.how }, { path: path.join(labelsDir, 'small_robot.mp4'), how: 'next-to-labels' });

  // As given (relative to the current folder) wins over next to the labels file.
  await copySleapFile('video', path.join(dir, 'tests/data/videos/small_robot.mp4'));
  [v] = await resolveVideos(list, dir);
  assert.deepEqual({ path: v!.files[0]!.path, how: v!.files[0]!.how }, { path: path.join(dir, 'tests/data/videos/small_robot.mp4'), how: 'as-given' });
});

test('names with .., absolute names, Windows names and image sequences are listed verbatim and resolved like SLEAP', async (t) => {
  const dir = await tempDir(t);
  const labels = path.join(dir, 'labels.slp');
  const outside = path.join(dir, 'elsewhere', 'cam.mp4');
  await mkdir(path.dirname(outside));
  await writeFile(outside, 'not really a video');
  const images = JSON.stringify({ backend: { filename: 'frames/0001.png', filenames: ['frames/0001.png', 'frames/0002.png'], dataset: '' } });
  await writeLabels(labels, [
    mediaEntry('../../../../etc/passwd'),
    mediaEntry(outside),
    mediaEntry('C:\\Users\\alice\\videos\\cam.mp4'),
    images,
    JSON.stringify({ filename: 'top-level-only.mp4', backend: {} }),
  ]);
  const list = await listVideos(labels);
  assert.deepEqual(list.videos.map((v) => [v.kind, v.names]), [
    ['file', ['../../../../etc/passwd']],
    ['file', [outside]],
    ['file', ['C:\\Users\\alice\\videos\\cam.mp4']],
    ['images', ['frames/0001.png', 'frames/0002.png']],
    ['file', ['top-level-only.mp4']],
  ]);
  await writeFile(path.join(dir, 'cam.mp4'), 'the copy next to the labels file');
  const resolved = await resolveVideos(list, path.join(dir, 'elsewhere'));
  // `..` is taken as given (relative to the current folder), then only its base name next to the labels file.
  assert.deepEqual(resolved[0]!.files[0]!.tried, [path.resolve(dir, 'elsewhere', '../../../../etc/passwd'), path.join(dir, 'passwd')]);
  assert.equal(resolved[1]!.files[0]!.how, 'as-given');
  // A Windows name is read with / separators: not found as given, found by base name next to the labels file.
  assert.deepEqual([resolved[2]!.files[0]!.path, resolved[2]!.files[0]!.how], [path.join(dir, 'cam.mp4'), 'next-to-labels']);
  assert.equal(resolved[3]!.files.length, 2);
});

test('listing follows a symlinked labels file and leaves the file unchanged', async (t) => {
  const dir = await tempDir(t);
  const labels = await copySleapFile('labels', path.join(dir, 'small_robot_minimal.slp'));
  const before = await readFile(labels);
  await symlink(labels, path.join(dir, 'link.slp'));
  const list = await listVideos(path.join(dir, 'link.slp'));
  assert.equal(list.videos.length, 1);
  assert.deepEqual(await readFile(labels), before);
});

/** Each case: a file that claims to be a labels file and is not; the code and a word of the message. */
const hostile: { name: string; make: (file: string) => Promise<void>; code: string; says: RegExp }[] = [
  { name: 'a text file', make: (f) => writeFile(f, 'labels go here\n'), code: 'SLP_NOT_HDF5', says: /signature not found/ },
  { name: 'an empty file', make: (f) => writeFile(f, ''), code: 'SLP_NOT_HDF5', says: /HDF5/ },
  {
    name: 'a zip archive (an empty one: end-of-central-directory record only)',
    make: (f) => writeFile(f, Buffer.concat([Buffer.from('PK\x05\x06'), Buffer.alloc(18)])),
    code: 'SLP_NOT_HDF5',
    says: /signature not found/,
  },
  { name: 'a real video renamed .slp', make: async (f) => writeFile(f, await readFile(sleapDataPath('video'))), code: 'SLP_NOT_HDF5', says: /signature not found/ },
  {
    name: 'the real labels file cut in half',
    make: async (f) => writeFile(f, (await readFile(sleapDataPath('labels'))).subarray(0, 8000)),
    code: 'SLP_NOT_HDF5',
    says: /truncated/,
  },
  {
    name: 'the real labels file with its signature damaged',
    make: async (f) => {
      const b = Buffer.from(await readFile(sleapDataPath('labels')));
      b[1] = 0x58;
      await writeFile(f, b);
    },
    code: 'SLP_NOT_HDF5',
    says: /signature not found/,
  },
  { name: 'a folder', make: (f) => mkdir(f), code: 'SLP_NOT_HDF5', says: /folder/ },
  { name: 'an HDF5 file without videos_json', make: (f) => writeH5(f, (h) => void h.create_group('metadata')), code: 'SLP_NO_VIDEOS_TABLE', says: /no videos_json/ },
  {
    name: 'videos_json as a group',
    make: (f) => writeH5(f, (h) => void h.create_group('videos_json')),
    code: 'SLP_NO_VIDEOS_TABLE',
    says: /no videos_json/,
  },
  {
    name: 'videos_json of numbers',
    make: (f) => writeH5(f, (h) => void h.create_dataset({ name: 'videos_json', data: new Float64Array([1, 2]) })),
    code: 'SLP_VIDEOS_INVALID',
    says: /dataset of strings/,
  },
  {
    name: 'videos_json of two dimensions',
    make: (f) => writeH5(f, (h) => void h.create_dataset({ name: 'videos_json', data: ['{}', '{}', '{}', '{}'], shape: [2, 2], dtype: 'A2' })),
    code: 'SLP_VIDEOS_INVALID',
    says: /one-dimensional/,
  },
  { name: 'an entry that is not JSON', make: (f) => writeLabels(f, [mediaEntry('a.mp4'), '{"backend": {"filename": "b.mp4"']), code: 'SLP_VIDEOS_INVALID', says: /videos_json\[1\] is not JSON/ },
  { name: 'an entry that is JSON but a list', make: (f) => writeLabels(f, ['["a.mp4"]']), code: 'SLP_VIDEOS_INVALID', says: /not a video description/ },
  { name: 'an entry without a backend', make: (f) => writeLabels(f, ['{"filename": "a.mp4"}']), code: 'SLP_VIDEOS_INVALID', says: /not a video description/ },
  { name: 'a filename that is a number', make: (f) => writeLabels(f, ['{"backend": {"filename": 7}}']), code: 'SLP_VIDEOS_INVALID', says: /"filename" that is not a non-empty string/ },
  { name: 'an empty filename', make: (f) => writeLabels(f, ['{"backend": {"filename": ""}}']), code: 'SLP_VIDEOS_INVALID', says: /non-empty/ },
  { name: 'a filename with a NUL', make: (f) => writeLabels(f, [mediaEntry('a\u0000.mp4')]), code: 'SLP_VIDEOS_INVALID', says: /NUL/ },
  { name: 'an embedded video without a dataset', make: (f) => writeLabels(f, ['{"backend": {"filename": "."}}']), code: 'SLP_VIDEOS_INVALID', says: /backend.dataset/ },
  { name: 'an empty image list', make: (f) => writeLabels(f, ['{"backend": {"filename": "a.png", "filenames": []}}']), code: 'SLP_VIDEOS_INVALID', says: /filenames/ },
  { name: 'an image list with a non-string', make: (f) => writeLabels(f, ['{"backend": {"filenames": ["a.png", null]}}']), code: 'SLP_VIDEOS_INVALID', says: /image file name/ },
  {
    name: 'bytes that are not UTF-8',
    make: async (f) => void runH5py("import h5py, sys, numpy as np\nh5py.File(sys.argv[1], 'w').create_dataset('videos_json', data=np.array([b'{\\xff\\xfe}'], dtype='S4'))", [f]),
    code: 'SLP_VIDEOS_INVALID',
    says: /not UTF-8/,
  },
];

for (const c of hostile) {
  test(`refused with ${c.code}: ${c.name}`, async (t) => {
    const dir = await tempDir(t);
    const file = path.join(dir, 'labels.slp');
    await c.make(file);
    const err = await listVideos(file).then(
      () => assert.fail('listing should have failed'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof SleapRtcError, String(err));
    assert.equal(err.code, c.code, err.message);
    assert.equal(err.exitCode, 2);
    assert.ok(err.message.includes(file), `the message names the file: ${err.message}`);
    assert.match(err.message, c.says);
  });
}

test('a missing labels file is a usage error that names it', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'nope.slp');
  await assert.rejects(listVideos(file), (e: SleapRtcError) => e.code === 'USAGE' && e.message.includes(file) && e.exitCode === 2);
});

test("a failed listing prints nothing of HDF5's own error stack (it goes into the message instead)", async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'x.slp');
  await writeFile(file, 'not hdf5');
  // HDF5 writes its error stack to file descriptor 2 with fs.writeSync; spy on that, and on process.stderr.
  const seen: string[] = [];
  const writeSync = fs.writeSync;
  const stderrWrite = process.stderr.write;
  fs.writeSync = ((fd: number, ...rest: unknown[]) => {
    if (fd === 2) seen.push(String(rest[0]));
    return (writeSync as (...a: unknown[]) => number)(fd, ...rest);
  }) as typeof fs.writeSync;
  process.stderr.write = ((chunk: unknown, ...rest: unknown[]) => {
    seen.push(String(chunk));
    return (stderrWrite as (...a: unknown[]) => boolean).call(process.stderr, chunk, ...rest);
  }) as typeof process.stderr.write;
  let err: unknown;
  try {
    err = await listVideos(file).catch((e: unknown) => e);
  } finally {
    fs.writeSync = writeSync;
    process.stderr.write = stderrWrite;
  }
  assert.equal((err as SleapRtcError).code, 'SLP_NOT_HDF5');
  assert.match((err as Error).message, /file signature not found/);
  assert.deepEqual(seen.filter((s) => s.includes('HDF5')), []);
});

test("a file read through its descriptor's link (/proc/self/fd/N) whose name is gone: HDF5 cannot build its real name (SLP_NOT_HDF5, the reason the worker maps to PATH_CHANGED)", async (t) => {
  const dir = await tempDir(t);
  const pkg = await copySleapFile('pkg', path.join(dir, 'held.slp'));
  const fd = fs.openSync(pkg, 'r');
  t.after(() => fs.closeSync(fd));
  // While the name resolves, the descriptor's link reads as the file.
  assert.equal((await listVideos(`/proc/self/fd/${fd}`)).formatId, 1.2);
  fs.unlinkSync(pkg);
  await assert.rejects(listVideos(`/proc/self/fd/${fd}`), (e: unknown) => {
    assert.ok(e instanceof SleapRtcError && e.code === 'SLP_NOT_HDF5', String(e));
    assert.equal(e.details.reason, "can't retrieve real path for file");
    return true;
  });
});
