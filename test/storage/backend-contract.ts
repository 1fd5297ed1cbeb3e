/**
 * The behaviour every storage backend kind must have (cf. unstorage's shared driver tests). A kind
 * runs it from its own test file: `backendContract('local filesystem', (opts) => createStorageBackend(opts))`.
 *
 * The suite builds a real folder tree for the backend to serve; a kind that is not a plain mounted
 * filesystem must expose that tree through its own means in `factory` (e.g. mount or sync it).
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PathValidationError, type PathRule } from '../../src/storage/confine.js';
import type { StorageBackendApi, StorageType } from '../../src/storage/backend.js';

export interface BackendFactoryOptions {
  name: string;
  basePath: string;
  type?: StorageType;
  description?: string;
  userSubdir?: string;
}

export type BackendFactory = (opts: BackendFactoryOptions) => StorageBackendApi | Promise<StorageBackendApi>;

export function backendContract(kind: string, factory: BackendFactory): void {
  describe(`storage backend contract: ${kind}`, () => {
    /*
     *   root/base/alice/project/labels.slp
     *   root/base/bob/                          root/outside/secret.txt
     *   root/base/shared/videos/v1.mp4
     *   root/base/carol -> shared               (user folder that is a link inside the base)
     *   root/base/mallory -> ../outside         (user folder that is a link out of the base)
     *   root/base/alice/videos -> ../shared/videos
     *   root/base/alice/escape -> /etc
     */
    let root = '';
    let base = '';
    let realBase = '';
    let backend: StorageBackendApi;

    before(async () => {
      root = await mkdtemp(path.join(os.tmpdir(), 'sleap-rtc-contract-'));
      base = path.join(root, 'base');
      await mkdir(path.join(base, 'alice', 'project'), { recursive: true });
      await mkdir(path.join(base, 'bob'));
      await mkdir(path.join(base, 'shared', 'videos'), { recursive: true });
      await mkdir(path.join(root, 'outside'));
      await writeFile(path.join(base, 'alice', 'project', 'labels.slp'), 'labels');
      await writeFile(path.join(base, 'shared', 'videos', 'v1.mp4'), 'video');
      await writeFile(path.join(root, 'outside', 'secret.txt'), 'secret');
      await symlink('shared', path.join(base, 'carol'));
      await symlink('../outside', path.join(base, 'mallory'));
      await symlink('../shared/videos', path.join(base, 'alice', 'videos'));
      await symlink('/etc', path.join(base, 'alice', 'escape'));
      realBase = await realpath(base);
      backend = await factory({ name: 'vast', basePath: base, type: 'nfs', description: 'test share', userSubdir: 'alice' });
    });

    after(async () => {
      if (root) await rm(root, { recursive: true, force: true });
    });

    test('exposes its name, base, type, description and user folder', () => {
      assert.equal(backend.name, 'vast');
      assert.equal(backend.basePath, base);
      assert.equal(backend.type, 'nfs');
      assert.equal(backend.description, 'test share');
      assert.equal(backend.userSubdir, 'alice');
    });

    const accepted: [userSubdir: string, relativePath: string, expected: string][] = [
      ['alice', 'project/labels.slp', 'alice/project/labels.slp'],
      ['alice', 'project/new/model.ckpt', 'alice/project/new/model.ckpt'],
      ['alice', 'videos/v1.mp4', 'alice/videos/v1.mp4'], // link to a sibling folder inside the base
      ['carol', 'videos/v1.mp4', 'carol/videos/v1.mp4'], // user folder is itself a link inside the base
      ['', 'shared/videos/v1.mp4', 'shared/videos/v1.mp4'], // no user folder
      ['new-user', 'first/file.slp', 'new-user/first/file.slp'], // user folder not created yet
      ['alice/project', 'labels.slp', 'alice/project/labels.slp'],
    ];
    for (const [userSubdir, relativePath, expected] of accepted) {
      test(`resolves (${JSON.stringify(userSubdir)}, ${JSON.stringify(relativePath)}) inside the base`, async () => {
        const resolved = await backend.resolvePath(userSubdir, relativePath);
        assert.equal(resolved, path.join(realBase, expected));
        assert.equal(await backend.validatePath(resolved), true);
      });
    }

    test('allowEmpty lets "" name the user folder itself', async () => {
      assert.equal(await backend.resolvePath('alice', '', { allowEmpty: true }), path.join(realBase, 'alice'));
      await assert.rejects(backend.resolvePath('alice', ''), { rule: 'empty' });
    });

    const refused: [userSubdir: unknown, relativePath: unknown, rule: PathRule, part: 'user_subdir' | 'path'][] = [
      ['..', 'etc/passwd', 'dotdot', 'user_subdir'],
      ['alice/..', 'x', 'dotdot', 'user_subdir'],
      ['/etc', 'passwd', 'absolute', 'user_subdir'],
      ['alice\\..', 'x', 'backslash', 'user_subdir'],
      ['mallory', 'secret.txt', 'escapes_base', 'user_subdir'],
      ['mallory', 'new/file', 'escapes_base', 'user_subdir'],
      [7, 'x', 'not_string', 'user_subdir'],
      ['alice', '../bob/x', 'dotdot', 'path'],
      ['alice', '../../outside/secret.txt', 'dotdot', 'path'],
      ['alice', '/etc/passwd', 'absolute', 'path'],
      ['alice', 'escape/passwd', 'escapes_base', 'path'],
      ['alice', 'escape/new/file', 'escapes_base', 'path'],
      ['alice', 'a\0b', 'nul', 'path'],
      ['alice', 'a//b', 'empty_segment', 'path'],
      ['alice', './a', 'dot_segment', 'path'],
      ['alice', null, 'not_string', 'path'],
    ];
    for (const [userSubdir, relativePath, rule, part] of refused) {
      test(`refuses (${JSON.stringify(userSubdir)}, ${JSON.stringify(relativePath)}) with ${rule}`, async () => {
        await assert.rejects(backend.resolvePath(userSubdir as string, relativePath as string), (err: unknown) => {
          assert.ok(err instanceof PathValidationError, String(err));
          assert.equal(err.code, 'PATH_VALIDATION');
          assert.equal(err.rule, rule);
          if (part === 'user_subdir') assert.match(err.message, /^user_subdir /);
          else assert.doesNotMatch(err.message, /^user_subdir /);
          return true;
        });
      });
    }

    test('validatePath answers for already-resolved paths on real paths', async () => {
      assert.equal(await backend.validatePath(path.join(base, 'alice', 'project', 'labels.slp')), true);
      assert.equal(await backend.validatePath(path.join(base, 'not', 'yet')), true);
      assert.equal(await backend.validatePath(path.join(base, 'mallory', 'secret.txt')), false);
      assert.equal(await backend.validatePath(path.join(base, 'alice', 'escape')), false);
      assert.equal(await backend.validatePath(path.join(root, 'outside')), false);
      assert.equal(await backend.validatePath(`${base}-sibling`), false);
    });

    test('health: an existing writable folder is ok', async () => {
      assert.deepEqual(await backend.health(), { exists: true, isDirectory: true, readable: true, writable: true });
    });

    test('health: a missing base says so, and resolving under it is refused with base_missing', async () => {
      const missing = await factory({ name: 'gone', basePath: path.join(root, 'not-mounted') });
      const h = await missing.health();
      assert.equal(h.exists, false);
      assert.equal(h.isDirectory, false);
      assert.match(h.error ?? '', /does not exist/);
      await assert.rejects(missing.resolvePath('alice', 'x.slp'), { rule: 'base_missing' });
    });

    test('health: a file where the base should be is not a directory', async () => {
      const file = path.join(root, 'a-file');
      await writeFile(file, '');
      const h = await (await factory({ name: 'file', basePath: file })).health();
      assert.equal(h.exists, true);
      assert.equal(h.isDirectory, false);
      assert.match(h.error ?? '', /not a directory/);
    });
  });
}
