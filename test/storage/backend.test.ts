import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ConfigError } from '../../src/config/errors.js';
import { createStorageBackend } from '../../src/storage/backend.js';
import { backendContract } from './backend-contract.js';
import { TS_LOADER } from '../helpers/cli.js';

backendContract('local filesystem', (opts) => createStorageBackend(opts));

test('createStorageBackend reports every bad option at once', () => {
  assert.throws(
    () => createStorageBackend({ name: 'bad name', basePath: 'relative/dir', type: 'tape' as never, userSubdir: '../x' }),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.deepEqual(err.problems.map((p) => p.path), ['name', 'base_path', 'type', 'user_subdir']);
      return true;
    },
  );
});

test('createStorageBackend fills defaults and normalises the base path', () => {
  const b = createStorageBackend({ name: 'vast', basePath: '/mnt/vast/' });
  assert.equal(b.basePath, '/mnt/vast');
  assert.equal(b.type, 'local');
  assert.equal(b.description, '');
  assert.equal(b.userSubdir, undefined);
  assert.ok(Object.isFrozen(b));
  assert.deepEqual(JSON.parse(JSON.stringify(b)), { name: 'vast', base_path: '/mnt/vast', type: 'local', description: '' });
});

test('health reports a read-only folder as not writable (checked as an unprivileged user)', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sleap-rtc-ro-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const ro = path.join(dir, 'read-only');
  await mkdir(ro);
  await chmod(dir, 0o755);
  await chmod(ro, 0o555);
  // Root ignores file modes, so when the tests run as root the check runs as "nobody".
  const asNobody = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};
  const backendModule = new URL('../../src/storage/backend.ts', import.meta.url).href;
  const script = `const { createStorageBackend } = await import(${JSON.stringify(backendModule)});
    const h = await createStorageBackend({ name: 'ro', basePath: ${JSON.stringify(ro)} }).health();
    process.stdout.write(JSON.stringify(h));`;
  const child = spawn(process.execPath, ['--import', TS_LOADER, '--input-type=module', '-e', script], { ...asNobody, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  assert.equal(code, 0, err);
  const h = JSON.parse(out) as { readable: boolean; writable: boolean; error?: string };
  assert.equal(h.readable, true);
  assert.equal(h.writable, false);
  assert.match(h.error ?? '', /not writable/);
});
