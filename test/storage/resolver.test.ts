import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { PathValidationError, realPathOf } from '../../src/storage/confine.js';
import { PathNotInBackendError, StorageBackendNotFound } from '../../src/storage/errors.js';
import { StorageResolver, type StorageLocation } from '../../src/storage/resolver.js';
import { StorageConfig } from '../../src/storage/storage-config.js';

/*
 *   root/vast/alice/project/labels.slp     backend vast    (user_subdir alice)
 *   root/vast/bob/x.slp
 *   root/vast/top.slp
 *   root/vast/shared/videos/v.mp4
 *   root/vast/alice/vids -> ../shared/videos
 *   root/vast/alice/escape -> ../../elsewhere
 *   root/vast/inner/run1/                  backend inner   (nested inside vast)
 *   root/vast-link -> vast
 *   root/elsewhere/x.slp                   in no backend
 *   root/offline                           backend offline (not mounted here)
 */
let root = '';
let resolver: StorageResolver;

before(async () => {
  root = await realpath(await mkdtemp(path.join(os.tmpdir(), 'sleap-rtc-resolver-')));
  const vast = path.join(root, 'vast');
  await mkdir(path.join(vast, 'alice', 'project'), { recursive: true });
  await mkdir(path.join(vast, 'bob'));
  await mkdir(path.join(vast, 'shared', 'videos'), { recursive: true });
  await mkdir(path.join(vast, 'inner', 'run1'), { recursive: true });
  await mkdir(path.join(root, 'elsewhere'));
  await writeFile(path.join(vast, 'alice', 'project', 'labels.slp'), '');
  await writeFile(path.join(vast, 'bob', 'x.slp'), '');
  await writeFile(path.join(vast, 'top.slp'), '');
  await writeFile(path.join(vast, 'shared', 'videos', 'v.mp4'), '');
  await writeFile(path.join(root, 'elsewhere', 'x.slp'), '');
  await symlink('../shared/videos', path.join(vast, 'alice', 'vids'));
  await symlink('../../elsewhere', path.join(vast, 'alice', 'escape'));
  await symlink('vast', path.join(root, 'vast-link'));
  resolver = new StorageResolver(
    StorageConfig.fromToml({
      vast: { base_path: vast, type: 'nfs', user_subdir: 'alice' },
      inner: { base_path: path.join(vast, 'inner') },
      offline: { base_path: path.join(root, 'offline') },
    }),
  );
});

after(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

const loc = (backend: string, userSubdir: string, relativePath: string): StorageLocation => ({ backend, userSubdir, relativePath });

const FOUND: [local: string, backend: string | undefined, expected: StorageLocation][] = [
  ['vast/alice/project/labels.slp', undefined, loc('vast', 'alice', 'project/labels.slp')],
  ['vast/alice/new/deep/model.ckpt', undefined, loc('vast', 'alice', 'new/deep/model.ckpt')],
  ['vast/bob/x.slp', undefined, loc('vast', 'bob', 'x.slp')],
  ['vast/top.slp', undefined, loc('vast', '', 'top.slp')],
  ['vast/alice', undefined, loc('vast', 'alice', '')],
  ['vast', undefined, loc('vast', '', '')],
  ['vast/alice/vids/v.mp4', undefined, loc('vast', 'alice', 'vids/v.mp4')], // names as written survive a link inside
  ['vast/inner/run1/out.h5', undefined, loc('inner', 'run1', 'out.h5')], // longest base wins
  ['vast/inner/run1/out.h5', 'vast', loc('vast', 'inner', 'run1/out.h5')], // unless a backend is named
  ['vast-link/alice/project/labels.slp', undefined, loc('vast', 'alice', 'project/labels.slp')], // via a link to the mount
  ['vast-link/inner/run1/x', undefined, loc('inner', 'run1', 'x')],
  ['offline/carol/a.slp', undefined, loc('offline', 'carol', 'a.slp')], // not mounted: lexical
  ['vast/alice/project/../project/labels.slp', undefined, loc('vast', 'alice', 'project/labels.slp')],
];

for (const [local, backend, expected] of FOUND) {
  test(`toRelative(${local}${backend ? `, ${backend}` : ''}) -> ${JSON.stringify(expected)}, and back`, async () => {
    const abs = path.join(root, local);
    const got = await resolver.toRelative(abs, backend);
    assert.deepEqual(got, expected);
    if (expected.backend === 'offline') return; // nothing to resolve against on this machine
    const back = await resolver.resolve(got.backend, got.userSubdir, got.relativePath, { allowEmpty: true });
    assert.equal(await realPathOf(back), await realPathOf(abs));
  });
}

const NOT_FOUND: [local: string, backend: string | undefined][] = [
  ['elsewhere/x.slp', undefined],
  ['vast/alice/escape/x.slp', undefined], // under the base by name, outside it for real
  ['vast-sibling/x.slp', undefined], // "vast" is only a string prefix
  ['offline-2/x', undefined],
  ['vast/bob/x.slp', 'inner'],
];
for (const [local, backend] of NOT_FOUND) {
  test(`toRelative(${local}${backend ? `, ${backend}` : ''}) is PATH_NOT_IN_BACKEND and names the bases`, async () => {
    await assert.rejects(resolver.toRelative(path.join(root, local), backend), (err: unknown) => {
      assert.ok(err instanceof PathNotInBackendError);
      assert.equal(err.code, 'PATH_NOT_IN_BACKEND');
      assert.ok(err.message.includes(path.join(root, local)));
      assert.ok(err.message.includes(path.join(root, backend === 'inner' ? 'vast/inner' : 'vast')));
      return true;
    });
  });
}

test('toRelative with an unknown backend name is STORAGE_BACKEND_NOT_FOUND', async () => {
  await assert.rejects(resolver.toRelative(path.join(root, 'vast', 'top.slp'), 'nope'), StorageBackendNotFound);
});

test('toRelative refuses a local name a worker would refuse', async () => {
  await assert.rejects(resolver.toRelative(path.join(root, 'vast', 'alice', 'we\\ird.slp')), { rule: 'backslash' });
});

test('toRelative with no backends configured explains that none are', async () => {
  const empty = new StorageResolver(new StorageConfig([]));
  await assert.rejects(empty.toRelative('/data/x.slp'), (err: unknown) => err instanceof PathNotInBackendError && /none are configured/.test(err.message));
});

test('resolve refuses traversal through the resolver too', async () => {
  await assert.rejects(resolver.resolve('vast', 'alice', '../../elsewhere/x.slp'), PathValidationError);
  await assert.rejects(resolver.resolve('vast', 'alice', 'escape/x.slp'), { rule: 'escapes_base' });
});

test('property: toRelative then resolve returns the same real file', async () => {
  const name = fc.constantFrom('alice', 'bob', 'project', 'vids', 'inner', 'run1', 'new', 'escape', 'labels.slp', 'v.mp4');
  const local = fc.tuple(fc.constantFrom('vast', 'vast-link', 'elsewhere'), fc.array(name, { maxLength: 5 })).map(([top, rest]) => path.join(root, top, ...rest));
  await fc.assert(
    fc.asyncProperty(local, async (abs) => {
      let where: StorageLocation;
      try {
        where = await resolver.toRelative(abs);
      } catch (err) {
        assert.ok(err instanceof PathNotInBackendError, String(err));
        // Refused only when the path really is outside every mounted base.
        const real = await realPathOf(abs);
        assert.ok(!real.startsWith(path.join(root, 'vast') + path.sep) && real !== path.join(root, 'vast'), `${abs} wrongly refused`);
        return;
      }
      const back = await resolver.resolve(where.backend, where.userSubdir, where.relativePath, { allowEmpty: true });
      assert.equal(await realPathOf(back), await realPathOf(abs));
    }),
    { numRuns: 300 },
  );
});
