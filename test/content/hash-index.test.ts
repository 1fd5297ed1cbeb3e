/** The client's hash index: an unchanged file is not read again; any change is seen. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFile, rename, stat, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import fc from 'fast-check';
import { HashIndex } from '../../src/content/hash-index.js';
import { xdgCacheDir, xdgStateDir } from '../../src/content/xdg.js';
import { tempDir } from '../transport/helpers/transfer.js';

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

test('an unchanged file comes from the index, also in a new process (the saved file)', async (t) => {
  const dir = await tempDir(t, 'idx');
  const f = path.join(dir, 'video.mp4');
  const data = randomBytes(100_000);
  await writeFile(f, data);
  const index = new HashIndex(path.join(dir, 'index.json'), { racyMs: 0 });
  const first = await index.digest(f);
  assert.deepEqual([first.sha256, first.size, first.fromIndex], [sha(data), data.length, false]);
  assert.equal((await index.digest(f)).fromIndex, true);
  await index.save();
  const again = await new HashIndex(path.join(dir, 'index.json'), { racyMs: 0 }).digest(f);
  assert.deepEqual([again.sha256, again.fromIndex], [sha(data), true]);
});

test('changes are always seen: same size with the time set back, replaced by rename, grown', async (t) => {
  const dir = await tempDir(t, 'idx');
  const f = path.join(dir, 'labels.slp');
  const changes: { name: string; change: (data: Buffer) => Promise<Buffer> }[] = [
    {
      name: 'same size, modification time put back',
      change: async (d) => {
        const st = await stat(f);
        const next = Buffer.from(d);
        next[0] = next[0]! ^ 1;
        await writeFile(f, next);
        await utimes(f, st.atime, st.mtime);
        return next;
      },
    },
    {
      name: 'replaced by a rename',
      change: async () => {
        const next = randomBytes(1000);
        await writeFile(`${f}.new`, next);
        await rename(`${f}.new`, f);
        return next;
      },
    },
    {
      name: 'appended to',
      change: async (d) => {
        const next = Buffer.concat([d, Buffer.from('x')]);
        await writeFile(f, next);
        return next;
      },
    },
  ];
  for (const c of changes) {
    let data: Buffer = randomBytes(1000);
    await writeFile(f, data);
    const index = new HashIndex(path.join(dir, `${c.name}.json`), { racyMs: 0 });
    await index.digest(f);
    data = await c.change(data);
    const d = await index.digest(f);
    assert.equal(d.fromIndex, false, c.name);
    assert.equal(d.sha256, sha(await readFile(f)), c.name);
  }
});

test('a file changed within the racy window is not remembered', async (t) => {
  const dir = await tempDir(t, 'idx');
  const f = path.join(dir, 'fresh.bin');
  await writeFile(f, 'just written');
  const index = new HashIndex(path.join(dir, 'index.json'), { racyMs: 60_000 });
  await index.digest(f);
  assert.equal((await index.digest(f)).fromIndex, false);
});

test('property: whatever bytes a file holds, the index never answers with another file content\'s hash', async (t) => {
  const dir = await tempDir(t, 'idx');
  const f = path.join(dir, 'p.bin');
  const index = new HashIndex(path.join(dir, 'index.json'), { racyMs: 0 });
  await fc.assert(
    fc.asyncProperty(fc.array(fc.uint8Array({ maxLength: 64 }), { minLength: 1, maxLength: 5 }), async (versions) => {
      for (const v of versions) {
        await writeFile(f, v);
        assert.equal((await index.digest(f)).sha256, sha(v));
      }
    }),
    { numRuns: 40 },
  );
});

test('the index lives under XDG_CACHE_HOME, else ~/.cache', () => {
  assert.equal(xdgCacheDir({ XDG_CACHE_HOME: '/x/cache' }, '/home/u'), '/x/cache/sleap-rtc');
  assert.equal(xdgCacheDir({}, '/home/u'), '/home/u/.cache/sleap-rtc');
  assert.equal(xdgCacheDir({ XDG_CACHE_HOME: 'relative' }, '/home/u'), '/home/u/.cache/sleap-rtc');
  assert.equal(xdgStateDir({}, '/home/u'), '/home/u/.local/state/sleap-rtc');
  assert.equal(xdgStateDir({ XDG_STATE_HOME: '/s' }, '/home/u'), '/s/sleap-rtc');
});
