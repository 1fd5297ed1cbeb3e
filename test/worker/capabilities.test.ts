/** What a worker advertises: only backends it can use now, one readable line per backend. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { StorageConfig } from '../../src/storage/index.js';
import { buildCapabilities, checkBackends, describeBackend } from '../../src/worker/capabilities.js';
import { tempDir } from '../fixtures/fake-sleap-nn.js';

test('healthy backends are advertised; missing ones and non-folders are logged with why, and left out', async (t) => {
  const dir = await tempDir(t);
  await mkdir(path.join(dir, 'vast'));
  await writeFile(path.join(dir, 'a-file'), 'x');
  const storage = StorageConfig.fromToml({
    vast: { base_path: path.join(dir, 'vast'), type: 'nfs' },
    gone: { base_path: path.join(dir, 'not-mounted') },
    file: { base_path: path.join(dir, 'a-file'), type: 'smb' },
  });
  const reports = await checkBackends(storage);
  assert.deepEqual(reports.map(describeBackend), [
    `storage backend 'vast' -> ${path.join(dir, 'vast')} (nfs): ok`,
    `storage backend 'gone' -> ${path.join(dir, 'not-mounted')} (local): not advertised: directory does not exist`,
    `storage backend 'file' -> ${path.join(dir, 'a-file')} (smb): not advertised: not a directory`,
  ]);
  const gpu = { name: 'NVIDIA A100', count: 2, memory_mb: 81920, driver: '550.54' };
  assert.deepEqual(buildCapabilities({ backends: reports, jobTypes: ['train'], maxConcurrentJobs: 2, gpu }), {
    storage_backends: ['vast'],
    job_types: ['train'],
    max_concurrent_jobs: 2,
    gpu,
  });
  assert.equal('gpu' in buildCapabilities({ backends: [], jobTypes: ['track'], maxConcurrentJobs: 1, gpu: undefined }), false);
});
