/**
 * Client planning against real folders: which backend and user folder a job gets, the relative
 * paths it sends, where outputs go, the names a transfer job uses, and the errors a user must fix
 * first (each naming what to type instead).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { planJob, type JobArgs } from '../../src/client/plan.js';
import { SleapRtcError } from '../../src/errors.js';
import { StorageConfig } from '../../src/storage/index.js';
import { copySleapFile } from '../helpers/sleap-data.js';

/*
 *   root/share/alice/proj/{labels.slp, config.yaml, video.mp4, a\b.slp}   the share
 *   root/share/alice/models/{m1,m2}/best.ckpt,  root/share/bob/other.yaml
 *   root/mnt -> share                     the client's mount of it (backend vast)
 *   root/scratch/x.yaml                   backend scratch
 *   root/laptop/{labels.slp, config.yaml, v.mp4}, root/laptop/dup/labels.slp   no backend
 */
let root = '';
let storage: StorageConfig;

before(async () => {
  root = await realpath(await mkdtemp(path.join(os.tmpdir(), 'sleap-rtc-plan-')));
  const share = path.join(root, 'share');
  for (const d of ['alice/proj', 'alice/models/m1', 'alice/models/m2', 'bob']) await mkdir(path.join(share, d), { recursive: true });
  for (const f of ['alice/proj/config.yaml', 'alice/proj/video.mp4', 'alice/models/m1/best.ckpt', 'alice/models/m2/best.ckpt', 'bob/other.yaml']) {
    await writeFile(path.join(share, f), 'x');
  }
  // Labels files are real package files (frames embedded: no external video to carry).
  for (const f of ['alice/proj/labels.slp', 'alice/proj/a\\b.slp']) await copySleapFile('pkg', path.join(share, f));
  await symlink(share, path.join(root, 'mnt'));
  await mkdir(path.join(root, 'scratch'));
  await writeFile(path.join(root, 'scratch', 'x.yaml'), 'x');
  await mkdir(path.join(root, 'laptop', 'dup'), { recursive: true });
  for (const f of ['config.yaml', 'v.mp4']) await writeFile(path.join(root, 'laptop', f), 'x');
  for (const f of ['labels.slp', 'dup/labels.slp']) await copySleapFile('pkg', path.join(root, 'laptop', f));
  storage = StorageConfig.fromToml({ vast: { base_path: path.join(root, 'mnt') }, scratch: { base_path: path.join(root, 'scratch') } });
});

after(() => rm(root, { recursive: true, force: true }));

const train = (over: Partial<JobArgs> = {}): JobArgs => ({
  jobType: 'train',
  labels: 'mnt/alice/proj/labels.slp',
  configFile: 'mnt/alice/proj/config.yaml',
  runName: 'r1',
  cwd: root,
  ...over,
});

async function usageError(p: Promise<unknown>, code: string, pattern: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof SleapRtcError, String(e));
    assert.equal(e.code, code, e.message);
    assert.match(e.message, pattern);
    return true;
  });
}

test('inputs under a backend: shared storage with relative paths below the inferred user folder', async () => {
  const plan = await planJob(train({ maxEpochs: 5, batchSize: 2, learningRate: 0.001 }), storage);
  assert.equal(plan.transferReason, null);
  assert.ok(plan.shared);
  assert.equal(plan.shared.backend, 'vast');
  assert.equal(plan.shared.userSubdir, 'alice');
  assert.equal(plan.shared.basePath, path.join(root, 'mnt'));
  assert.deepEqual(plan.shared.request, {
    type: 'JOB_REQUEST',
    job_id: plan.jobId,
    job_type: 'train',
    transfer: 'shared',
    storage: { storage_backend: 'vast', user_subdir: 'alice', client_base_path: path.join(root, 'mnt') },
    spec: { labels: 'proj/labels.slp', config_file: 'proj/config.yaml', output: 'proj/models', run_name: 'r1', max_epochs: 5, batch_size: 2, learning_rate: 0.001, videos: [] },
  });
  assert.match(plan.jobId, /^job-[0-9a-f]{12}$/);
});

test('track: default output beside the data; several models; --output under the backend is used as given', async () => {
  const args: JobArgs = { jobType: 'track', data: path.join(root, 'mnt/alice/proj/video.mp4'), models: ['mnt/alice/models/m1', 'mnt/alice/models/m2'], cwd: root };
  const plan = await planJob(args, storage);
  assert.deepEqual(plan.shared?.request.spec, { data: 'proj/video.mp4', models: ['models/m1', 'models/m2'], output: 'proj/video.mp4.predictions.slp' });
  const out = await planJob({ ...args, output: 'mnt/alice/results/p.slp' }, storage);
  assert.equal(out.shared?.request.spec.output, 'results/p.slp');
});

test('inputs spread over two users: the user folder is their common folder; --user-subdir overrides and is enforced', async () => {
  const plan = await planJob(train({ configFile: 'mnt/bob/other.yaml' }), storage);
  assert.equal(plan.shared?.userSubdir, '');
  assert.deepEqual((plan.shared?.request.spec as { labels: string }).labels, 'alice/proj/labels.slp');
  const own = await planJob(train({ userSubdir: 'alice/proj' }), storage);
  const spec = own.shared?.request.spec as { labels: string; output: string };
  assert.deepEqual([own.shared?.userSubdir, spec.labels, spec.output], ['alice/proj', 'labels.slp', 'models']);
  await usageError(planJob(train({ userSubdir: 'bob' }), storage), 'USAGE', /is not under .*bob: with --user-subdir bob, every input and the output must lie in that folder/);
  await usageError(planJob(train({ userSubdir: '../x' }), storage), 'USAGE', /--user-subdir "\.\.\/x"/);
});

test('transfer instead of shared storage, with the reason: outside every backend, or on two backends', async () => {
  const laptop = await planJob(train({ labels: 'laptop/labels.slp', configFile: 'laptop/config.yaml' }), storage);
  assert.equal(laptop.shared, null);
  assert.equal(laptop.transferReason, 'labels is not under any storage backend');
  const split = await planJob(train({ configFile: 'scratch/x.yaml' }), storage);
  assert.equal(split.shared, null);
  assert.equal(split.transferReason, 'the inputs lie on different storage backends (vast, scratch)');
  const none = await planJob(train(), new StorageConfig([]));
  assert.equal(none.transferReason, 'no storage backends are configured');
  const odd = await planJob(train({ labels: 'mnt/alice/proj/a\\b.slp' }), storage);
  assert.match(odd.transferReason ?? '', /labels has a name shared storage cannot carry/);
});

test('transfer requests use distinct plain names; results go to the current folder, or where a shared job would write', async () => {
  const plan = await planJob(train({ labels: 'laptop/dup/labels.slp', configFile: 'laptop/labels.slp' }), storage);
  assert.deepEqual(plan.transferRequest.spec, { labels: 'labels.slp', config_file: '2-labels.slp', output: 'output', run_name: 'r1', videos: [] });
  assert.equal(plan.transferRequest.transfer, 'webrtc');
  assert.equal(plan.transferRequest.storage, undefined);
  assert.equal(plan.transferDestination(false), root);
  assert.equal(plan.transferDestination(true), path.join(root, 'laptop', 'dup', 'models'));
  const track = await planJob({ jobType: 'track', data: 'mnt/alice/proj/video.mp4', models: ['mnt/alice/models/m1'], cwd: root }, storage);
  assert.deepEqual(track.transferRequest.spec, { data: 'video.mp4', models: ['m1'], output: 'video.mp4.predictions.slp' });
  assert.equal(track.transferDestination(false), path.join(root, 'video.mp4.predictions.slp'));
  assert.equal(track.transferDestination(true), path.join(root, 'mnt/alice/proj/video.mp4.predictions.slp'));
});

test('what the user must fix is an error before anything is sent, with what to type instead', async () => {
  const cases: [() => Promise<unknown>, string, RegExp][] = [
    [() => planJob(train({ storageBackend: 'nas' }), storage), 'STORAGE_BACKEND_NOT_FOUND', /"nas" is not configured here; configured backends: vast, scratch/],
    [() => planJob(train({ storageBackend: 'scratch' }), storage), 'PATH_NOT_IN_BACKEND', /is not under any configured storage backend: scratch/],
    [() => planJob(train({ output: 'laptop/models' }), storage), 'USAGE', /--output laptop\/models is not under storage backend 'vast' .* Give an --output under/],
    [() => planJob(train({ labels: 'mnt/alice/proj/nope.slp' }), storage), 'USAGE', /--labels mnt\/alice\/proj\/nope\.slp: no such file/],
    [() => planJob(train({ labels: 'mnt/alice/proj' }), storage), 'USAGE', /--labels mnt\/alice\/proj is a folder; give a file/],
    [() => planJob({ jobType: 'track', data: 'mnt/alice/proj/video.mp4', models: ['mnt/alice/proj/labels.slp'], cwd: root }, storage), 'USAGE', /--model .* is not a folder; give the model folder/],
    [() => planJob({ jobType: 'track', data: 'mnt/alice/proj/video.mp4', models: [], cwd: root }, storage), 'USAGE', /at least one --model DIR/],
    [() => planJob(train({ runName: '../evil' }), storage), 'USAGE', /--run-name "\.\.\/evil" is not usable as a folder name/],
  ];
  for (const [p, code, pattern] of cases) await usageError(p(), code, pattern);
});

test('a default run name is unique and a valid folder name', async () => {
  const a = await planJob(train({ runName: undefined }), storage);
  const b = await planJob(train({ runName: undefined }), storage);
  assert.match(a.runName ?? '', /^run_\d{8}_\d{6}_[0-9a-f]{4}$/);
  assert.notEqual(a.runName, b.runName);
  assert.notEqual(a.jobId, b.jobId);
});

test('a run folder that already exists where the results would land is refused before anything is sent', async () => {
  // Shared storage: <output>/<run> on the share (here the default output, models/ beside the labels).
  await mkdir(path.join(root, 'share', 'alice', 'proj', 'models', 'taken'), { recursive: true });
  // Transfer: <cwd>/<run> when no --output is given.
  await mkdir(path.join(root, 'laptop', 'taken-here'));
  const cases: [string, JobArgs][] = [
    ['shared', train({ runName: 'taken' })],
    ['transfer', train({ labels: 'laptop/labels.slp', configFile: 'laptop/config.yaml', cwd: root, output: 'laptop', runName: 'taken-here' })],
  ];
  for (const [name, args] of cases) {
    await assert.rejects(planJob(args, storage), (e: unknown) => {
      assert.ok(e instanceof SleapRtcError, name);
      assert.equal(e.code, 'RUN_FOLDER_EXISTS', name);
      assert.equal(e.exitCode, 2, name);
      assert.match(e.message, /already exists.*--run-name/, name);
      return true;
    });
  }
  await planJob(train({ runName: 'fresh' }), storage);
});
