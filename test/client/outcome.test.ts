/** Reading worker answers: when a refused shared job falls back to a transfer, and where shared outputs are here. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, realpath, rm, symlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fallbackReason, noBackendReason, sharedOutputsHere } from '../../src/client/outcome.js';
import type { JobPlan } from '../../src/client/plan.js';
import type { AttemptOutcome } from '../../src/client/session.js';
import { SleapRtcError } from '../../src/errors.js';
import type { PathErrorRule, PathField } from '../../src/protocol/job.js';
import { StorageConfig } from '../../src/storage/index.js';

type Rejected = Extract<AttemptOutcome, { kind: 'rejected' }>;
const rejected = (errors: [PathField, PathErrorRule][], backendMissing = false): Rejected => ({
  kind: 'rejected',
  code: backendMissing ? 'BACKEND_NOT_AVAILABLE' : 'PATH_VALIDATION',
  message: 'refused',
  pathErrors: errors.map(([field, rule]) => ({ type: 'PATH_ERROR', job_id: 'j', field, rule, message: 'm' })),
  backendMissing: backendMissing ? { type: 'BACKEND_NOT_AVAILABLE', job_id: 'j', backend: 'vast', available_backends: [] } : null,
});

test('fallback happens for a missing backend or missing inputs only; every other refusal is the user\'s to see', () => {
  const table: [Rejected, string | null][] = [
    [rejected([], true), 'worker lacks backend vast'],
    [rejected([['labels', 'missing']]), 'worker cannot find labels on its mount of backend vast'],
    [rejected([['data', 'missing'], ['models.1', 'missing']]), 'worker cannot find data, models.1 on its mount of backend vast'],
    [rejected([['labels', 'missing'], ['output', 'not_writable']]), null],
    [rejected([['labels', 'outside_base']]), null],
    [rejected([['labels', 'not_readable']]), null],
    [rejected([['user_subdir', 'missing']]), null],
    [rejected([['output', 'missing']]), null],
    [rejected([]), null],
  ];
  for (const [outcome, reason] of table) assert.equal(fallbackReason(outcome, 'vast'), reason, JSON.stringify(outcome.pathErrors));
  assert.equal(noBackendReason('vast', ['scratch', 'nas']), 'no worker in the room has backend vast (available: scratch, nas)');
  assert.equal(noBackendReason('vast', []), 'no worker in the room has backend vast');
  assert.equal(noBackendReason('vast', ['x'], 'gpu-2'), 'worker gpu-2 lacks backend vast');
});

test('shared outputs become paths on this machine\'s mount; references elsewhere or leading out are refused', async (t) => {
  const root = await realpath(await mkdtemp(path.join(os.tmpdir(), 'sleap-rtc-outcome-')));
  t.after(() => rm(root, { recursive: true, force: true }));
  await mkdir(path.join(root, 'share', 'alice'), { recursive: true });
  await mkdir(path.join(root, 'outside'));
  await symlink(path.join(root, 'share'), path.join(root, 'mnt'));
  await symlink('../../outside', path.join(root, 'share', 'alice', 'out-link'));
  const storage = StorageConfig.fromToml({ vast: { base_path: path.join(root, 'mnt') } });
  const plan = { shared: { backend: 'vast', userSubdir: 'alice' } } as JobPlan;
  const ref = (relative_path: string, over: object = {}) => ({ storage_backend: 'vast', user_subdir: 'alice', relative_path, ...over });
  assert.deepEqual(await sharedOutputsHere([ref('proj/models/r1'), ref('p.slp')], storage, plan), [
    path.join(root, 'mnt/alice/proj/models/r1'),
    path.join(root, 'mnt/alice/p.slp'),
  ]);
  for (const bad of [ref('../../etc'), ref('out-link/x'), ref('/etc/passwd'), ref('x', { user_subdir: 'bob' }), ref('x', { storage_backend: 'scratch' })]) {
    await assert.rejects(sharedOutputsHere([bad], storage, plan), (e: unknown) => e instanceof SleapRtcError, JSON.stringify(bad));
  }
});
