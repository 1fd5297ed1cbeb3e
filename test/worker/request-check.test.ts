/**
 * The worker's request check, the security boundary for job paths: tables of hostile requests
 * against a real folder tree with symlinks leading out, asserting the field and rule refused,
 * that nothing was created anywhere, and that no answer shows the worker's own paths.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmod, mkdir, mkdtemp, realpath, rm, stat, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { JobRequest, WorkerToClient } from '../../src/protocol/job.js';
import { StorageConfig } from '../../src/storage/index.js';
import { checkRequest, type CheckContext, type CheckOutcome } from '../../src/worker/request-check.js';
import { tree } from '../helpers/fs-tree.js';
import { TS_LOADER } from '../helpers/cli.js';

/*
 *   root/share/                       backend vast (the worker's base)
 *     alice/proj/labels.slp, config.yaml, video.mp4, afolder/
 *     alice/models/m1/best.ckpt
 *     alice/escape -> ../../outside             (folder link leading out)
 *     alice/proj/evil.slp -> ../../../outside/secret.slp
 *     alice/dangling -> ../../outside/new-dir   (does not exist yet)
 *     bob-link -> ../outside                    (a user folder leading out)
 *   root/outside/secret.slp                     must never be touched
 */
let root = '';
let share = '';
let outside = '';
let storage: StorageConfig;

before(async () => {
  root = await realpath(await mkdtemp(path.join(os.tmpdir(), 'sleap-rtc-check-')));
  share = path.join(root, 'share');
  outside = path.join(root, 'outside');
  await mkdir(path.join(share, 'alice', 'proj', 'afolder'), { recursive: true });
  await mkdir(path.join(share, 'alice', 'models', 'm1'), { recursive: true });
  await mkdir(outside);
  await writeFile(path.join(outside, 'secret.slp'), 'secret');
  for (const f of ['labels.slp', 'config.yaml', 'video.mp4']) await writeFile(path.join(share, 'alice', 'proj', f), f);
  await writeFile(path.join(share, 'alice', 'models', 'm1', 'best.ckpt'), 'ckpt');
  await symlink('../../outside', path.join(share, 'alice', 'escape'));
  await symlink('../../../outside/secret.slp', path.join(share, 'alice', 'proj', 'evil.slp'));
  await symlink('../../outside/new-dir', path.join(share, 'alice', 'dangling'));
  await symlink('../outside', path.join(share, 'bob-link'));
  await mkdir(path.join(share, 'alice', 'runs'));
  await symlink('../../../outside', path.join(share, 'alice', 'runs', 'r1'));
  storage = StorageConfig.fromToml({ vast: { base_path: share, type: 'nfs' }, scratch: { base_path: path.join(root, 'gone') } });
});

after(() => rm(root, { recursive: true, force: true }));

function context(extra: Partial<CheckContext> = {}): CheckContext & { stagingCalls: number } {
  const ctx = {
    storage,
    healthyBackends: new Set(['vast']),
    stagingCalls: 0,
    stagingDir: async () => {
      ctx.stagingCalls += 1;
      return mkdtemp(path.join(root, 'staging-'));
    },
    ...extra,
  };
  return ctx;
}

const trainReq = (over: { user_subdir?: string; labels?: string; config_file?: string; output?: string; backend?: string } = {}): JobRequest => ({
  type: 'JOB_REQUEST',
  job_id: 'j1',
  job_type: 'train',
  transfer: 'shared',
  storage: { storage_backend: over.backend ?? 'vast', user_subdir: over.user_subdir ?? 'alice', client_base_path: '/Volumes/vast' },
  spec: { labels: over.labels ?? 'proj/labels.slp', config_file: over.config_file ?? 'proj/config.yaml', output: over.output ?? 'proj/models', run_name: 'r1' },
});

const trackReq = (over: { data?: string; models?: string[]; output?: string } = {}): JobRequest => ({
  type: 'JOB_REQUEST',
  job_id: 'j2',
  job_type: 'track',
  transfer: 'shared',
  storage: { storage_backend: 'vast', user_subdir: 'alice' },
  spec: { data: over.data ?? 'proj/video.mp4', models: over.models ?? ['models/m1'], output: over.output ?? 'proj/video.mp4.predictions.slp' },
});

function refused(outcome: CheckOutcome): Extract<WorkerToClient, { type: 'PATH_ERROR' }>[] {
  assert.equal(outcome.ok, false, 'expected a refusal');
  const last = outcome.messages.at(-1);
  assert.equal(last?.type, 'JOB_REJECTED');
  return outcome.messages.filter((m): m is Extract<WorkerToClient, { type: 'PATH_ERROR' }> => m.type === 'PATH_ERROR');
}

function assertNoWorkerPaths(outcome: CheckOutcome): void {
  for (const m of outcome.messages) {
    const text = JSON.stringify(m);
    assert.ok(!text.includes(root), `a message shows the worker's paths: ${text}`);
  }
}

const attacks: { name: string; request: () => JobRequest; field: string; rule: string }[] = [
  { name: 'user_subdir ".."', request: () => trainReq({ user_subdir: '..' }), field: 'user_subdir', rule: 'outside_base' },
  { name: 'user_subdir "../outside"', request: () => trainReq({ user_subdir: '../outside' }), field: 'user_subdir', rule: 'outside_base' },
  { name: 'user_subdir "alice/../.."', request: () => trainReq({ user_subdir: 'alice/../..' }), field: 'user_subdir', rule: 'outside_base' },
  { name: 'user_subdir absolute', request: () => trainReq({ user_subdir: '/etc' }), field: 'user_subdir', rule: 'outside_base' },
  { name: 'user_subdir is a symlink out', request: () => trainReq({ user_subdir: 'bob-link' }), field: 'user_subdir', rule: 'outside_base' },
  { name: 'user_subdir with a backslash', request: () => trainReq({ user_subdir: '..\\outside' }), field: 'user_subdir', rule: 'invalid' },
  { name: 'user_subdir "./alice"', request: () => trainReq({ user_subdir: './alice' }), field: 'user_subdir', rule: 'invalid' },
  { name: 'labels "../../outside/secret.slp"', request: () => trainReq({ labels: '../../outside/secret.slp' }), field: 'labels', rule: 'outside_base' },
  { name: 'labels "proj/../../../outside/secret.slp"', request: () => trainReq({ labels: 'proj/../../../outside/secret.slp' }), field: 'labels', rule: 'outside_base' },
  { name: 'labels absolute', request: () => trainReq({ labels: '/etc/passwd' }), field: 'labels', rule: 'outside_base' },
  { name: 'labels Windows drive', request: () => trainReq({ labels: 'C:/Windows/x.slp' }), field: 'labels', rule: 'outside_base' },
  { name: 'labels through a folder link out', request: () => trainReq({ labels: 'escape/secret.slp' }), field: 'labels', rule: 'outside_base' },
  { name: 'labels is a file link out', request: () => trainReq({ labels: 'proj/evil.slp' }), field: 'labels', rule: 'outside_base' },
  { name: 'labels with a backslash', request: () => trainReq({ labels: 'proj\\labels.slp' }), field: 'labels', rule: 'invalid' },
  { name: 'labels with "//"', request: () => trainReq({ labels: 'proj//labels.slp' }), field: 'labels', rule: 'invalid' },
  { name: 'config_file traversal', request: () => trainReq({ config_file: '../../outside/secret.slp' }), field: 'config_file', rule: 'outside_base' },
  { name: 'output traversal', request: () => trainReq({ output: '../../outside/models' }), field: 'output', rule: 'outside_base' },
  { name: 'output through a folder link out', request: () => trainReq({ output: 'escape/models' }), field: 'output', rule: 'outside_base' },
  { name: 'output through a dangling link out', request: () => trainReq({ output: 'dangling' }), field: 'output', rule: 'outside_base' },
  { name: 'output absolute', request: () => trainReq({ output: '/tmp' }), field: 'output', rule: 'outside_base' },
  { name: 'train run folder is a link out', request: () => trainReq({ output: 'runs' }), field: 'output', rule: 'outside_base' },
  { name: 'track data traversal', request: () => trackReq({ data: '../../outside/secret.slp' }), field: 'data', rule: 'outside_base' },
  { name: 'track model through a link out', request: () => trackReq({ models: ['models/m1', 'escape'] }), field: 'models.1', rule: 'outside_base' },
  { name: 'track output through a link out', request: () => trackReq({ output: 'escape/p.slp' }), field: 'output', rule: 'outside_base' },
  { name: 'track output onto the file link out', request: () => trackReq({ output: 'proj/evil.slp' }), field: 'output', rule: 'outside_base' },
];

test('hostile paths are refused with the field and rule, nothing is created, and no answer shows worker paths', async () => {
  const before = { share: await tree(share), outside: await tree(outside) };
  for (const a of attacks) {
    const ctx = context();
    const outcome = await checkRequest(a.request(), ctx);
    const errors = refused(outcome);
    assert.ok(
      errors.some((e) => e.field === a.field && e.rule === a.rule),
      `${a.name}: expected ${a.field}/${a.rule}, got ${JSON.stringify(errors.map((e) => [e.field, e.rule, e.message]))}`,
    );
    assertNoWorkerPaths(outcome);
    assert.equal(ctx.stagingCalls, 0, `${a.name}: a refused request must not create a staging folder`);
    const rejected = outcome.messages.at(-1) as Extract<WorkerToClient, { type: 'JOB_REJECTED' }>;
    assert.equal(rejected.code, 'PATH_VALIDATION');
  }
  assert.deepEqual(await tree(share), before.share, 'nothing was created under the base');
  assert.deepEqual(await tree(outside), before.outside, 'nothing was created outside the base');
});

test('wrong kinds, missing inputs and an output over an input are refused by rule', async () => {
  const cases: { request: JobRequest; field: string; rule: string }[] = [
    { request: trainReq({ labels: 'proj/missing.slp' }), field: 'labels', rule: 'missing' },
    { request: trainReq({ labels: 'proj/afolder' }), field: 'labels', rule: 'invalid' },
    { request: trainReq({ output: 'proj/labels.slp' }), field: 'output', rule: 'invalid' },
    { request: trainReq({ output: 'proj/labels.slp/models' }), field: 'output', rule: 'invalid' },
    { request: trainReq({ user_subdir: 'nobody-here' }), field: 'labels', rule: 'missing' },
    { request: trackReq({ models: ['proj/labels.slp'] }), field: 'models.0', rule: 'invalid' },
    { request: trackReq({ models: ['models/none'] }), field: 'models.0', rule: 'missing' },
    { request: trackReq({ output: 'proj/video.mp4' }), field: 'output', rule: 'invalid' },
    { request: trackReq({ output: 'proj/afolder' }), field: 'output', rule: 'invalid' },
  ];
  for (const c of cases) {
    const outcome = await checkRequest(c.request, context());
    const errors = refused(outcome);
    assert.ok(errors.some((e) => e.field === c.field && e.rule === c.rule), `${JSON.stringify(c.request.spec)}: ${JSON.stringify(errors)}`);
    assertNoWorkerPaths(outcome);
  }
  // All the problems of one request are reported together.
  const many = refused(await checkRequest(trainReq({ labels: 'proj/missing.slp', config_file: '../x', output: 'escape/m' }), context()));
  assert.deepEqual(many.map((e) => [e.field, e.rule]), [['labels', 'missing'], ['config_file', 'outside_base'], ['output', 'outside_base']]);
});

test('a backend the worker lacks, or has but not healthy, is BACKEND_NOT_AVAILABLE listing what it has', async () => {
  for (const backend of ['nope', 'scratch']) {
    const outcome = await checkRequest(trainReq({ backend }), context());
    assert.equal(outcome.ok, false);
    assert.deepEqual(outcome.messages[0], { type: 'BACKEND_NOT_AVAILABLE', job_id: 'j1', backend, available_backends: ['vast'] });
    assert.equal(outcome.messages[1]?.type, 'JOB_REJECTED');
    assert.equal((outcome.messages[1] as { code: string }).code, 'BACKEND_NOT_AVAILABLE');
    assert.match((outcome.messages[1] as { message: string }).message, /no usable storage backend '.+'; it has: vast/);
  }
});

test('a good shared request resolves every path under this worker\'s base and creates the output folder', async (t) => {
  const outcome = await checkRequest(trainReq({ output: 'proj/new/models' }), context());
  t.after(() => rm(path.join(share, 'alice', 'proj', 'new'), { recursive: true, force: true }));
  assert.ok(outcome.ok, JSON.stringify(outcome.messages));
  assert.deepEqual(outcome.storage, { transfer: 'shared', storage_backend: 'vast', user_subdir: 'alice', client_base_path: '/Volumes/vast', worker_base_path: share, legacy: false });
  assert.deepEqual(
    outcome.paths.map((p) => [p.field, p.local]),
    [
      ['labels', path.join(share, 'alice/proj/labels.slp')],
      ['config_file', path.join(share, 'alice/proj/config.yaml')],
      ['output', path.join(share, 'alice/proj/new/models')],
    ],
  );
  assert.ok((await stat(path.join(share, 'alice/proj/new/models'))).isDirectory());
  assert.deepEqual(
    outcome.messages.map((m) => m.type === 'PATH_VALIDATED' && [m.field, m.path.type, m.path.relative_path]),
    [
      ['labels', 'SHARED_INPUT_PATH', 'proj/labels.slp'],
      ['config_file', 'SHARED_INPUT_PATH', 'proj/config.yaml'],
      ['output', 'SHARED_OUTPUT_PATH', 'proj/new/models'],
    ],
  );
});

test('legacy requests: the default backend with user folder "" when the worker has one, else a transfer job', async () => {
  const legacyStorage = StorageConfig.fromToml({}, { env: { SHARED_STORAGE_ROOT: path.join(share, 'alice') } });
  const legacy: JobRequest = { type: 'JOB_REQUEST', job_id: 'old', job_type: 'track', spec: { data: 'proj/video.mp4', models: ['models/m1'], output: 'proj/out.slp' } };
  const shared = await checkRequest(legacy, context({ storage: legacyStorage, healthyBackends: new Set(['default']) }));
  assert.ok(shared.ok, JSON.stringify(shared.messages));
  assert.equal(shared.storage.transfer, 'shared');
  assert.deepEqual(shared.storage.transfer === 'shared' && [shared.storage.storage_backend, shared.storage.user_subdir, shared.storage.legacy], ['default', '', true]);
  assert.equal(shared.paths[0]?.local, path.join(share, 'alice/proj/video.mp4'));
  const ctx = context();
  const transfer = await checkRequest(legacy, ctx);
  assert.ok(transfer.ok);
  assert.deepEqual(transfer.storage, { transfer: 'webrtc', legacy: true });
  assert.equal(ctx.stagingCalls, 1);
});

test('transfer jobs: names go into a fresh staging folder; traversal and overlapping names are refused', async () => {
  const base = { type: 'JOB_REQUEST' as const, job_id: 't', transfer: 'webrtc' as const };
  const train = (labels: string, config_file: string, output: string): JobRequest => ({ ...base, job_type: 'train', spec: { labels, config_file, output, run_name: 'r' } });
  const ctx = context();
  const ok = await checkRequest(train('labels.slp', 'config.yaml', 'output'), ctx);
  assert.ok(ok.ok);
  const staging = path.dirname(ok.paths[0]?.local ?? '');
  assert.ok(staging.startsWith(path.join(root, 'staging-')));
  assert.deepEqual(ok.paths.map((p) => path.relative(staging, p.local)), ['labels.slp', 'config.yaml', 'output']);
  const bad: [JobRequest, string, string][] = [
    [train('../labels.slp', 'c.yaml', 'out'), 'labels', 'outside_base'],
    [train('/etc/passwd', 'c.yaml', 'out'), 'labels', 'outside_base'],
    [train('a\\b', 'c.yaml', 'out'), 'labels', 'invalid'],
    [train('same.slp', 'same.slp', 'out'), 'config_file', 'invalid'],
    [train('dir/labels.slp', 'dir', 'out'), 'config_file', 'invalid'],
    [train('out/r', 'c.yaml', 'out'), 'output', 'invalid'],
    [train('labels.slp', 'c.yaml', '../up'), 'output', 'outside_base'],
  ];
  for (const [request, field, rule] of bad) {
    const c = context();
    const errors = refused(await checkRequest(request, c));
    assert.ok(errors.some((e) => e.field === field && e.rule === rule), `${JSON.stringify(request.spec)}: ${JSON.stringify(errors)}`);
    assert.equal(c.stagingCalls, 0);
  }
});

test('unreadable inputs and unwritable outputs are refused (checked as an unprivileged user)', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sleap-rtc-perm-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const base = path.join(dir, 'share');
  await mkdir(path.join(base, 'u', 'ro'), { recursive: true });
  await writeFile(path.join(base, 'u', 'labels.slp'), 'x');
  await writeFile(path.join(base, 'u', 'locked.slp'), 'x');
  await writeFile(path.join(base, 'u', 'config.yaml'), 'x');
  for (const d of [dir, base, path.join(base, 'u')]) await chmod(d, 0o777);
  await chmod(path.join(base, 'u', 'labels.slp'), 0o644);
  await chmod(path.join(base, 'u', 'config.yaml'), 0o644);
  await chmod(path.join(base, 'u', 'locked.slp'), 0o000);
  await chmod(path.join(base, 'u', 'ro'), 0o555);
  const moduleUrl = (rel: string): string => new URL(rel, import.meta.url).href;
  const script = `
    const { checkRequest } = await import(${JSON.stringify(moduleUrl('../../src/worker/request-check.ts'))});
    const { StorageConfig } = await import(${JSON.stringify(moduleUrl('../../src/storage/index.ts'))});
    const storage = StorageConfig.fromToml({ vast: { base_path: ${JSON.stringify(base)} } });
    const ctx = { storage, healthyBackends: new Set(['vast']), stagingDir: async () => { throw new Error('no staging'); } };
    const req = (labels, output) => ({ type: 'JOB_REQUEST', job_id: 'p', job_type: 'train', transfer: 'shared',
      storage: { storage_backend: 'vast', user_subdir: 'u' }, spec: { labels, config_file: 'config.yaml', output, run_name: 'r' } });
    const out = [];
    for (const [l, o] of [['locked.slp', 'models'], ['labels.slp', 'ro/models'], ['labels.slp', 'ro']]) {
      const r = await checkRequest(req(l, o), ctx);
      out.push(r.messages.filter((m) => m.type === 'PATH_ERROR').map((m) => [m.field, m.rule]));
    }
    process.stdout.write(JSON.stringify(out));`;
  const asNobody = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};
  const child = spawn(process.execPath, ['--import', TS_LOADER, '--input-type=module', '-e', script], { ...asNobody, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  assert.equal(await new Promise((resolve) => child.on('close', resolve)), 0, err);
  assert.deepEqual(JSON.parse(out), [[['labels', 'not_readable']], [['output', 'not_writable']], [['output', 'not_writable']]]);
});
