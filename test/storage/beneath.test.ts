/**
 * Opening and writing below a base through descriptors (src/storage/beneath.ts): the attacks a
 * client with write access to the share can set up (links out, `..` through links, a file swapped
 * for a link, a FIFO, loops), and what must still work (links that stay inside, creating folders).
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, readFile, readdir, readlink, rename, symlink, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ConfinedRoot, closeQuietly, fdPath, PathChangedError } from '../../src/storage/beneath.js';
import { tempDir } from '../fixtures/fake-sleap-nn.js';

interface World {
  base: string;
  outside: string;
  root: ConfinedRoot;
}

async function world(t: TestContext): Promise<World> {
  const top = await tempDir(t, 'sleap-rtc-beneath-');
  const base = path.join(top, 'share');
  const outside = path.join(top, 'secret');
  await mkdir(path.join(base, 'alice', 'proj', 'deep'), { recursive: true });
  await mkdir(outside);
  await writeFile(path.join(base, 'alice', 'proj', 'labels.slp'), 'real labels');
  await writeFile(path.join(base, 'alice', 'proj', 'deep', 'x.txt'), 'deep');
  await writeFile(path.join(outside, 'labels.slp'), 'CANARY');
  await writeFile(path.join(outside, 'x.txt'), 'CANARY');
  const root = await ConfinedRoot.open(base);
  t.after(() => root.close());
  return { base, outside, root };
}

async function readOpened(root: ConfinedRoot, rel: string): Promise<{ text: string; route: string }> {
  const o = await root.open(rel, 'file');
  try {
    return { text: readFileSync(fdPath(o.fd), 'utf8'), route: o.route };
  } finally {
    await closeQuietly(o.fd);
  }
}

test('plain files and folders open, with their route below the base', async (t) => {
  const w = await world(t);
  assert.deepEqual(await readOpened(w.root, 'alice/proj/labels.slp'), { text: 'real labels', route: 'alice/proj/labels.slp' });
  const dir = await w.root.open('alice/proj', 'directory');
  assert.equal(dir.route, 'alice/proj');
  assert.deepEqual(await w.root.list(dir), ['deep', 'labels.slp']);
  await closeQuietly(dir.fd);
  const base = await w.root.open('', 'directory');
  assert.equal(base.route, '');
  await closeQuietly(base.fd);
});

test('links that stay inside the storage are followed, relative and absolute', async (t) => {
  const w = await world(t);
  await symlink('proj/labels.slp', path.join(w.base, 'alice', 'rel-link.slp'));
  await symlink(path.join(w.base, 'alice', 'proj'), path.join(w.base, 'alice', 'abs-dir'));
  await symlink('../../proj/labels.slp', path.join(w.base, 'alice', 'proj', 'deep', 'up.slp'));
  assert.equal((await readOpened(w.root, 'alice/rel-link.slp')).route, 'alice/proj/labels.slp');
  assert.equal((await readOpened(w.root, 'alice/abs-dir/deep/x.txt')).text, 'deep');
  assert.equal((await readOpened(w.root, 'alice/proj/deep/up.slp')).text, 'real labels');
});

test('attacks from the share are refused with PATH_CHANGED, and no outside byte is read', async (t) => {
  const w = await world(t);
  const cases: [string, (w: World) => Promise<string>, PathChangedError['reason'], 'file' | 'directory'][] = [
    ['file swapped for an absolute link out', async (w) => {
      await rename(path.join(w.base, 'alice/proj/labels.slp'), path.join(w.base, 'alice/proj/labels.old'));
      await symlink(path.join(w.outside, 'labels.slp'), path.join(w.base, 'alice/proj/labels.slp'));
      return 'alice/proj/labels.slp';
    }, 'escapes_base', 'file'],
    ['folder swapped for a link out', async (w) => {
      await rename(path.join(w.base, 'alice/proj'), path.join(w.base, 'alice/proj.real'));
      await symlink(w.outside, path.join(w.base, 'alice/proj'));
      return 'alice/proj/labels.slp';
    }, 'escapes_base', 'file'],
    ['relative link climbing out with ..', async (w) => {
      await symlink(`../../../${path.basename(w.outside)}`, path.join(w.base, 'alice', 'climb'));
      return 'alice/climb/x.txt';
    }, 'escapes_base', 'file'],
    ['link to the base\'s parent', async (w) => {
      await symlink('..', path.join(w.base, 'up'));
      return 'up/secret/x.txt';
    }, 'escapes_base', 'file'],
    ['link to /etc', async (w) => {
      await symlink('/etc', path.join(w.base, 'alice', 'etc'));
      return 'alice/etc/hostname';
    }, 'escapes_base', 'file'],
    ['link loop', async (w) => {
      await symlink('loop-b', path.join(w.base, 'alice', 'loop-a'));
      await symlink('loop-a', path.join(w.base, 'alice', 'loop-b'));
      return 'alice/loop-a';
    }, 'loop', 'file'],
    ['a FIFO named like the labels', async (w) => {
      execFileSync('mkfifo', [path.join(w.base, 'alice', 'fifo.slp')]);
      return 'alice/fifo.slp';
    }, 'wrong_kind', 'file'],
    ['a folder where a file is wanted', async () => 'alice/proj/deep', 'wrong_kind', 'file'],
    ['a file where a folder is wanted', async () => 'alice/proj/labels.slp', 'wrong_kind', 'directory'],
    ['a file on the way', async () => 'alice/proj/labels.slp/x', 'wrong_kind', 'file'],
    ['missing', async () => 'alice/nope.slp', 'missing', 'file'],
    ['a dotdot path', async () => 'alice/../../etc/passwd', 'escapes_base', 'file'],
  ];
  for (const [label, arrange, reason, want] of cases) {
    const w2 = await world(t);
    const rel = await arrange(w2);
    await assert.rejects(
      w2.root.open(rel, want),
      (err: unknown) => {
        assert.ok(err instanceof PathChangedError, `${label}: ${String(err)}`);
        assert.equal(err.code, 'PATH_CHANGED', label);
        assert.equal(err.reason, reason, `${label}: ${err.message}`);
        assert.ok(!err.message.includes(w2.base) && !err.message.includes(w2.outside), `${label}: no local path in "${err.message}"`);
        return true;
      },
      label,
    );
  }
  void w;
});

test('creating folders goes through descriptors: a dangling link out is never created through', async (t) => {
  const w = await world(t);
  const made = await w.root.open('alice/out/a/b', 'directory', { create: true });
  assert.equal(made.route, 'alice/out/a/b');
  await closeQuietly(made.fd);
  // A dangling link whose target would be created outside if mkdir followed it.
  await symlink(path.join(w.outside, 'made-here'), path.join(w.base, 'alice', 'dangling'));
  await assert.rejects(w.root.open('alice/dangling/sub', 'directory', { create: true }), { code: 'PATH_CHANGED' });
  assert.deepEqual((await readdir(w.outside)).sort(), ['labels.slp', 'x.txt'], 'nothing created outside');
});

test('writing a file replaces a planted link instead of writing through it, and refuses a folder swapped out', async (t) => {
  const w = await world(t);
  const src = path.join(await tempDir(t), 'best.ckpt');
  await writeFile(src, 'new checkpoint');
  await mkdir(path.join(w.base, 'alice', 'out'));
  await symlink(path.join(w.outside, 'x.txt'), path.join(w.base, 'alice', 'out', 'best.ckpt'));
  await w.root.writeFile('alice/out', 'best.ckpt', src, 'out/best.ckpt');
  assert.equal(await readFile(path.join(w.base, 'alice/out/best.ckpt'), 'utf8'), 'new checkpoint');
  assert.equal(await readFile(path.join(w.outside, 'x.txt'), 'utf8'), 'CANARY', 'the link target is untouched');
  await assert.rejects(readlink(path.join(w.base, 'alice/out/best.ckpt')), { code: 'EINVAL' }, 'the link was replaced by a file');

  await rename(path.join(w.base, 'alice/out'), path.join(w.base, 'alice/out.real'));
  await symlink(w.outside, path.join(w.base, 'alice/out'));
  await assert.rejects(w.root.writeFile('alice/out', 'best.ckpt', src, 'out/best.ckpt'), { code: 'PATH_CHANGED' });
  assert.deepEqual((await readdir(w.outside)).sort(), ['labels.slp', 'x.txt'], 'nothing written outside');
  assert.deepEqual(await readdir(path.join(w.base, 'alice/out.real')), ['best.ckpt'], 'no temp file left behind');
});

test('a descriptor keeps what was opened: renaming the folder afterwards changes nothing read through it', async (t) => {
  const w = await world(t);
  const o = await w.root.open('alice/proj/labels.slp', 'file');
  t.after(() => closeQuietly(o.fd));
  await rename(path.join(w.base, 'alice/proj'), path.join(w.base, 'alice/proj.real'));
  await symlink(w.outside, path.join(w.base, 'alice/proj'));
  assert.equal(readFileSync(fdPath(o.fd), 'utf8'), 'real labels');
});

test('a base that does not exist is reported without its path', async (t) => {
  const top = await tempDir(t);
  await assert.rejects(ConfinedRoot.open(path.join(top, 'not-mounted')), (err: unknown) => {
    assert.ok(err instanceof PathChangedError);
    assert.equal(err.reason, 'base_missing');
    assert.ok(!err.message.includes(top), err.message);
    return true;
  });
});
