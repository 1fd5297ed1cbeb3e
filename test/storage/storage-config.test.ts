import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, realpath, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ConfigError } from '../../src/config/errors.js';
import { parseConfig } from '../../src/config/load.js';
import { createStorageBackend } from '../../src/storage/backend.js';
import { PathValidationError } from '../../src/storage/confine.js';
import { StorageBackendNotFound } from '../../src/storage/errors.js';
import { StorageConfig } from '../../src/storage/storage-config.js';

test('fromToml builds backends in file order with defaults and ~ expanded', () => {
  const storage = StorageConfig.fromToml(
    { vast: { base_path: '/mnt/vast', type: 'nfs', user_subdir: 'alice' }, scratch: { base_path: '~/scratch' } },
    { homeDir: '/home/alice' },
  );
  assert.deepEqual(storage.listBackends(), ['vast', 'scratch']);
  assert.equal(storage.hasBackend('vast'), true);
  assert.equal(storage.hasBackend('VAST'), false);
  assert.equal(storage.hasBackend('__proto__'), false);
  const scratch = storage.getBackend('scratch');
  assert.equal(scratch.basePath, '/home/alice/scratch');
  assert.equal(scratch.type, 'local');
  assert.equal(storage.getBackend('vast').userSubdir, 'alice');
});

test('fromToml reports every problem with its storage.* key', () => {
  assert.throws(
    () => StorageConfig.fromToml({ vast: { base_pth: '/x' }, 'bad name': { base_path: 'rel' } }, { source: 'test.toml' }),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.code, 'CONFIG_INVALID');
      const paths = err.problems.map((p) => p.path).sort();
      assert.deepEqual(paths, ['storage."bad name"', 'storage."bad name".base_path', 'storage.vast.base_path', 'storage.vast.base_pth']);
      assert.ok(err.problems.every((p) => p.file === 'test.toml'));
      return true;
    },
  );
  assert.throws(() => StorageConfig.fromToml('not a table'), (err: unknown) => err instanceof ConfigError && err.problems[0]?.path === 'storage');
});

test('fromToml applies the SHARED_STORAGE_ROOT fallback only when given env and no sections', () => {
  const env = { SHARED_STORAGE_ROOT: '/srv/shared' };
  assert.deepEqual(StorageConfig.fromToml({}, { env }).listBackends(), ['default']);
  assert.equal(StorageConfig.fromToml(undefined, { env }).getBackend('default').basePath, '/srv/shared');
  assert.deepEqual(StorageConfig.fromToml({ vast: { base_path: '/mnt/vast' } }, { env }).listBackends(), ['vast']);
  assert.deepEqual(StorageConfig.fromToml({}).listBackends(), []);
});

test('fromConfig uses a loaded configuration as is', () => {
  const config = parseConfig('[storage.a]\nbase_path = "/a"\n[storage.b]\nbase_path = "/b"\ntype = "smb"\n', 'x.toml', {});
  const storage = StorageConfig.fromConfig(config);
  assert.deepEqual(storage.listBackends(), ['a', 'b']);
  assert.equal(storage.getBackend('b').type, 'smb');
});

test('getBackend on an unknown name lists the configured backends', () => {
  const storage = StorageConfig.fromToml({ vast: { base_path: '/mnt/vast' }, scratch: { base_path: '/scratch' } });
  assert.throws(
    () => storage.getBackend('nfs'),
    (err: unknown) => {
      assert.ok(err instanceof StorageBackendNotFound);
      assert.equal(err.code, 'STORAGE_BACKEND_NOT_FOUND');
      assert.equal(err.exitCode, 2);
      assert.match(err.message, /"nfs" is not configured here; configured backends: vast, scratch/);
      assert.deepEqual(err.details.configured, ['vast', 'scratch']);
      return true;
    },
  );
});

test('getBackend with no backends at all says how to add one', () => {
  assert.throws(
    () => new StorageConfig([]).getBackend('vast'),
    (err: unknown) => err instanceof StorageBackendNotFound && /no storage backends are configured; add a \[storage.<name>\] section/.test(err.message),
  );
});

test('a hostile backend name is quoted and bounded in the message', () => {
  const err = (() => {
    try {
      new StorageConfig([]).getBackend(`x\n${'y'.repeat(500)}`);
    } catch (e) {
      return e as Error;
    }
    return undefined;
  })();
  assert.ok(err instanceof StorageBackendNotFound);
  assert.ok(!err.message.includes('\n'));
  assert.ok(err.message.length < 400);
});

test('duplicate backend names are a programming error', () => {
  const a = createStorageBackend({ name: 'a', basePath: '/a' });
  assert.throws(() => new StorageConfig([a, a]), TypeError);
});

test('resolvePath goes through the named backend and rejects (never throws) on errors', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sleap-rtc-storage-config-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const storage = StorageConfig.fromToml({ lab: { base_path: dir } });
  assert.equal(await storage.resolvePath('lab', 'alice', 'p/labels.slp'), path.join(await realpath(dir), 'alice/p/labels.slp'));
  const unknown = storage.resolvePath('nope', 'alice', 'x');
  assert.ok(unknown instanceof Promise);
  await assert.rejects(unknown, StorageBackendNotFound);
  await assert.rejects(storage.resolvePath('lab', 'alice', '../../etc/passwd'), PathValidationError);
});
