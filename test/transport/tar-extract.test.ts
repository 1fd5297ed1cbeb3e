import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, readFile, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { SleapRtcError } from '../../src/errors.js';
import { checkEntry, TarExtractor } from '../../src/transport/tar-extract.js';
import { tarArchive, type RawEntry } from './helpers/tar-bytes.js';

const LIMITS = { maxEntries: 1000, maxBytes: 10 * 1024 * 1024 };

async function tempRoot(t: { after: (fn: () => Promise<void>) => void }): Promise<{ outer: string; root: string }> {
  const outer = await mkdtemp(path.join(os.tmpdir(), 'sleap-rtc-tarx-'));
  t.after(() => rm(outer, { recursive: true, force: true }));
  const root = path.join(outer, 'dest', 'extract');
  await mkdir(root, { recursive: true });
  return { outer, root };
}

/** Feed an archive in small pieces (so entries straddle writes) and finish. */
async function extract(root: string, archive: Buffer, limits = LIMITS, piece = 700): Promise<{ entries: number; bytes: number }> {
  const x = new TarExtractor(root, limits);
  try {
    for (let i = 0; i < archive.length; i += piece) await x.write(archive.subarray(i, i + piece));
    return await x.finish();
  } catch (err) {
    await x.abort(err as SleapRtcError);
    throw err;
  }
}

async function listTree(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    for (const d of await readdir(path.join(dir, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${d.name}` : d.name;
      out.push(d.isDirectory() ? `${r}/` : r);
      if (d.isDirectory()) await walk(r);
    }
  };
  await walk('');
  return out.sort();
}

test('extracts files and folders, including an empty file and an empty folder', async (t) => {
  const { root } = await tempRoot(t);
  const result = await extract(
    root,
    tarArchive([
      { path: 'a/', type: 'Directory' },
      { path: 'a/b.txt', data: 'hello' },
      { path: 'a/empty.bin', data: '' },
      { path: 'c/', type: 'Directory' },
      { path: 'top.txt', data: 'x'.repeat(1500) },
      { path: 'implicit/parent/file.txt', data: 'deep' },
    ]),
  );
  assert.deepEqual(result, { entries: 6, bytes: 5 + 1500 + 4 });
  assert.deepEqual(await listTree(root), ['a/', 'a/b.txt', 'a/empty.bin', 'c/', 'implicit/', 'implicit/parent/', 'implicit/parent/file.txt', 'top.txt']);
  assert.equal(await readFile(path.join(root, 'a/b.txt'), 'utf8'), 'hello');
  assert.equal(await readFile(path.join(root, 'top.txt'), 'utf8'), 'x'.repeat(1500));
});

test('an archive of end blocks only (an empty folder) extracts to nothing', async (t) => {
  const { root } = await tempRoot(t);
  assert.deepEqual(await extract(root, tarArchive([])), { entries: 0, bytes: 0 });
  assert.deepEqual(await listTree(root), []);
});

const HOSTILE: { name: string; entries: RawEntry[]; code: string; rule?: string }[] = [
  { name: 'absolute path', entries: [{ path: '/tmp/sleap-rtc-evil', data: 'x' }], code: 'PATH_VALIDATION', rule: 'absolute' },
  { name: 'leading ..', entries: [{ path: '../evil', data: 'x' }], code: 'PATH_VALIDATION', rule: 'dotdot' },
  { name: '.. in the middle', entries: [{ path: 'a/../../evil', data: 'x' }], code: 'PATH_VALIDATION', rule: 'dotdot' },
  { name: '.. folder', entries: [{ path: '../', type: 'Directory' }], code: 'PATH_VALIDATION', rule: 'dotdot' },
  { name: 'PAX header path with ..', entries: [{ path: '', paxPath: '../pax-evil', data: 'x' }], code: 'PATH_VALIDATION', rule: 'dotdot' },
  { name: 'PAX header absolute path', entries: [{ path: '', paxPath: '/etc/cron.d/evil', data: 'x' }], code: 'PATH_VALIDATION', rule: 'absolute' },
  { name: 'backslash traversal', entries: [{ path: 'a\\..\\..\\evil', data: 'x' }], code: 'PATH_VALIDATION', rule: 'backslash' },
  { name: 'symlink to /etc', entries: [{ path: 'etc', type: 'SymbolicLink', linkpath: '/etc' }], code: 'TRANSFER_ENTRY_REFUSED' },
  {
    name: 'symlink then a file through it',
    entries: [
      { path: 'out', type: 'SymbolicLink', linkpath: '..' },
      { path: 'out/evil', data: 'x' },
    ],
    code: 'TRANSFER_ENTRY_REFUSED',
  },
  { name: 'harmless-looking symlink inside', entries: [{ path: 'a.txt', data: 'a' }, { path: 'l', type: 'SymbolicLink', linkpath: 'a.txt' }], code: 'TRANSFER_ENTRY_REFUSED' },
  { name: 'hardlink to /etc/passwd', entries: [{ path: 'pw', type: 'Link', linkpath: '/etc/passwd' }], code: 'TRANSFER_ENTRY_REFUSED' },
  { name: 'hardlink out with ..', entries: [{ path: 'h', type: 'Link', linkpath: '../../outside' }], code: 'TRANSFER_ENTRY_REFUSED' },
  { name: 'character device', entries: [{ path: 'null', type: 'CharacterDevice' }], code: 'TRANSFER_ENTRY_REFUSED' },
  { name: 'block device', entries: [{ path: 'sda', type: 'BlockDevice' }], code: 'TRANSFER_ENTRY_REFUSED' },
  { name: 'fifo', entries: [{ path: 'pipe', type: 'FIFO' }], code: 'TRANSFER_ENTRY_REFUSED' },
  { name: 'GNU dump dir', entries: [{ path: 'dump', type: 'GNUDumpDir' }], code: 'TRANSFER_ENTRY_REFUSED' },
  { name: 'same name twice', entries: [{ path: 'a', data: '1' }, { path: 'a', data: '2' }], code: 'TRANSFER_ARCHIVE_INVALID' },
  { name: 'file where a folder will go', entries: [{ path: 'a', data: '1' }, { path: 'a/b', data: '2' }], code: 'TRANSFER_IO' },
  { name: 'dot segment', entries: [{ path: './x', data: '1' }], code: 'PATH_VALIDATION', rule: 'dot_segment' },
];

for (const c of HOSTILE) {
  test(`hostile entry refused: ${c.name}`, async (t) => {
    const { outer, root } = await tempRoot(t);
    const before = await listTree(outer);
    await assert.rejects(extract(root, tarArchive([{ path: 'fine.txt', data: 'ok' }, ...c.entries])), (err: unknown) => {
      assert.ok(err instanceof SleapRtcError, String(err));
      assert.equal(err.code, c.code, err.message);
      if (c.rule) assert.equal((err.details as { rule?: string }).rule, c.rule);
      return true;
    });
    // Nothing was written outside the extraction root.
    const after = (await listTree(outer)).filter((p) => !p.startsWith('dest/extract/'));
    assert.deepEqual(after, before.filter((p) => !p.startsWith('dest/extract/')));
  });
}

test('limits: too many entries, too many bytes', async (t) => {
  const { root } = await tempRoot(t);
  await assert.rejects(
    extract(root, tarArchive([{ path: 'a', data: '1' }, { path: 'b', data: '2' }, { path: 'c', data: '3' }]), { maxEntries: 2, maxBytes: 100 }),
    (err: unknown) => err instanceof SleapRtcError && err.code === 'TRANSFER_TOO_LARGE',
  );
  const { root: root2 } = await tempRoot(t);
  await assert.rejects(
    extract(root2, tarArchive([{ path: 'big', data: 'x'.repeat(5000) }]), { maxEntries: 10, maxBytes: 4096 }),
    (err: unknown) => err instanceof SleapRtcError && err.code === 'TRANSFER_TOO_LARGE',
  );
});

test('malformed archives: truncated entry, missing end marker, garbage, gzip', async (t) => {
  const cases: { name: string; bytes: Buffer; code: string }[] = [
    { name: 'truncated entry', bytes: tarArchive([{ path: 'a', data: 'x'.repeat(100), claimSize: 5000 }], { end: false }), code: 'TRANSFER_ARCHIVE_INVALID' },
    { name: 'no end marker', bytes: tarArchive([{ path: 'a', data: 'hello' }], { end: false }), code: 'TRANSFER_ARCHIVE_INVALID' },
    { name: 'garbage', bytes: Buffer.alloc(4096, 0x41), code: 'TRANSFER_ARCHIVE_INVALID' },
    { name: 'gzip', bytes: Buffer.concat([Buffer.from([0x1f, 0x8b, 8, 0]), Buffer.alloc(2000)]), code: 'TRANSFER_ENTRY_REFUSED' },
  ];
  for (const c of cases) {
    const { root } = await tempRoot(t);
    await assert.rejects(extract(root, c.bytes), (err: unknown) => {
      assert.ok(err instanceof SleapRtcError, `${c.name}: ${String(err)}`);
      assert.equal(err.code, c.code, `${c.name}: ${err.message}`);
      return true;
    });
  }
});

test('checkEntry strips exactly one trailing slash from folders only', () => {
  assert.equal(checkEntry({ type: 'Directory', path: 'a/b/' }), 'a/b');
  assert.throws(() => checkEntry({ type: 'File', path: 'a/b/' }), (e: unknown) => e instanceof SleapRtcError && e.code === 'PATH_VALIDATION');
  assert.throws(() => checkEntry({ type: 'Directory', path: 'a//' }), (e: unknown) => e instanceof SleapRtcError && e.code === 'PATH_VALIDATION');
});
