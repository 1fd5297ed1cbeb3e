/**
 * The videos inside a job's labels file on the worker: the request check resolves each reference
 * under its own backend (two backends here), refuses what leads outside, reports a missing video
 * without any worker path; the labels file read on the worker must name exactly the listed videos;
 * training gets one prefix map or a map per video, and inference a rewritten copy in the job folder.
 * Real labels files (the real small_robot_minimal.slp naming the videos a case needs).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, readlink, realpath, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { JobRequest, VideoFile, WorkerToClient } from '../../src/protocol/job.js';
import { listVideos } from '../../src/slp/index.js';
import { StorageConfig } from '../../src/storage/index.js';
import { checkRequest, type CheckContext, type CheckedPath, type CheckedStorage } from '../../src/worker/request-check.js';
import { setUpVideos } from '../../src/worker/videos.js';
import { copySleapFile } from '../helpers/sleap-data.js';
import { labelsNaming } from '../helpers/slp-files.js';

/*
 * The client sees /Volumes/talmo (backend vast) and /Volumes/lab (backend archive); this worker
 * mounts them at <root>/vast and <root>/archive.
 *   vast/alice/proj/labels.slp          names cam0 (vast) and cam1 (archive) by client paths
 *   vast/alice/videos/cam0.mp4
 *   archive/shared/cam1.mp4
 *   outside/secret.mp4                  never to be reached
 */
const CLIENT_VAST = '/Volumes/talmo';
const CLIENT_ARCHIVE = '/Volumes/lab';
let root = '';
let vast = '';
let archive = '';
let storage: StorageConfig;

before(async () => {
  root = await realpath(await mkdtemp(path.join(os.tmpdir(), 'sleap-rtc-videos-')));
  vast = path.join(root, 'vast');
  archive = path.join(root, 'archive');
  await mkdir(path.join(vast, 'alice', 'videos'), { recursive: true });
  await mkdir(path.join(archive, 'shared'), { recursive: true });
  await mkdir(path.join(root, 'outside'));
  await copySleapFile('video', path.join(vast, 'alice', 'videos', 'cam0.mp4'));
  await copySleapFile('video', path.join(archive, 'shared', 'cam1.mp4'));
  await writeFile(path.join(root, 'outside', 'secret.mp4'), 'secret');
  await labelsNaming(path.join(vast, 'alice', 'proj', 'labels.slp'), [`${CLIENT_VAST}/alice/videos/cam0.mp4`, `${CLIENT_ARCHIVE}/shared/cam1.mp4`]);
  await labelsNaming(path.join(vast, 'alice', 'proj', 'one-backend.slp'), [`${CLIENT_VAST}/alice/videos/cam0.mp4`, `${CLIENT_VAST}/alice/videos/cam0.mp4`]);
  await copySleapFile('centroidConfig', path.join(vast, 'alice', 'proj', 'config.yaml'));
  await mkdir(path.join(vast, 'alice', 'models', 'm1'), { recursive: true });
  await writeFile(path.join(vast, 'alice', 'models', 'm1', 'best.ckpt'), 'ckpt');
  storage = StorageConfig.fromToml({ vast: { base_path: vast }, archive: { base_path: archive } });
});

after(() => rm(root, { recursive: true, force: true }));

const cam0: VideoFile = { path: 'videos/cam0.mp4', storage_backend: 'vast', user_subdir: 'alice', uses: [{ video: 0, image: 0 }] };
const cam1: VideoFile = { path: 'shared/cam1.mp4', storage_backend: 'archive', user_subdir: '', uses: [{ video: 1, image: 0 }] };

let runs = 0;
/** A train request; each gets its own run name (the check claims the run folder). */
function train(videos: VideoFile[] | undefined, labels = 'proj/labels.slp'): JobRequest {
  return {
    type: 'JOB_REQUEST',
    job_id: 'job-v1',
    job_type: 'train',
    transfer: 'shared',
    storage: { storage_backend: 'vast', user_subdir: 'alice', client_base_path: CLIENT_VAST },
    spec: { labels, config_file: 'proj/config.yaml', output: 'proj/models', run_name: `r${++runs}`, ...(videos ? { videos } : {}) },
  } as JobRequest;
}

function track(videos: VideoFile[]): JobRequest {
  return {
    type: 'JOB_REQUEST',
    job_id: 'job-v2',
    job_type: 'track',
    transfer: 'shared',
    storage: { storage_backend: 'vast', user_subdir: 'alice', client_base_path: CLIENT_VAST },
    spec: { data: 'proj/labels.slp', models: ['models/m1'], output: 'proj/predictions.slp', videos },
  } as JobRequest;
}

function ctx(jobDir: string): CheckContext {
  return { storage, healthyBackends: new Set(['vast', 'archive']), stagingDir: async () => jobDir };
}

async function jobDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(path.join(root, 'job-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function noWorkerPaths(messages: readonly WorkerToClient[]): void {
  const text = JSON.stringify(messages);
  assert.ok(!text.includes(root), `no answer shows the worker's paths: ${text}`);
}

const sha = async (f: string) => createHash('sha256').update(await readFile(f)).digest('hex');

test('videos on two backends: each resolved under its own backend and echoed as its reference', async (t) => {
  const out = await checkRequest(train([cam0, cam1]), ctx(await jobDir(t)));
  assert.ok(out.ok, JSON.stringify(out.messages));
  const v = out.paths.filter((p) => p.field.startsWith('videos.'));
  assert.deepEqual(v.map((p) => [p.field, p.local, p.video]), [
    ['videos.0', path.join(vast, 'alice/videos/cam0.mp4'), { storage_backend: 'vast', base_path: vast, below: 'alice/videos/cam0.mp4', sent: false }],
    ['videos.1', path.join(archive, 'shared/cam1.mp4'), { storage_backend: 'archive', base_path: archive, below: 'shared/cam1.mp4', sent: false }],
  ]);
  const echoed = out.messages.filter((m) => m.type === 'PATH_VALIDATED' && m.field.startsWith('videos.'));
  assert.deepEqual(echoed.map((m) => (m as { path: unknown }).path), [
    { type: 'SHARED_INPUT_PATH', storage_backend: 'vast', user_subdir: 'alice', relative_path: 'videos/cam0.mp4' },
    { type: 'SHARED_INPUT_PATH', storage_backend: 'archive', user_subdir: '', relative_path: 'shared/cam1.mp4' },
  ]);
  noWorkerPaths(out.messages);
});

/** Hostile and broken video references: the field refused, its rule, and words of the message. */
const refused: { name: string; videos: VideoFile[]; field: string; rule: string; says: RegExp }[] = [
  { name: 'a video missing on this mount', videos: [{ ...cam0, path: 'videos/gone.mp4' }, cam1], field: 'videos.0', rule: 'missing', says: /video 'videos\/gone\.mp4' does not exist.*\(video 0 of the labels file\)/ },
  { name: 'a name with ..', videos: [{ ...cam0, path: '../../outside/secret.mp4' }, cam1], field: 'videos.0', rule: 'outside_base', says: /\.\./ },
  { name: 'an absolute path outside every backend', videos: [cam0, { ...cam1, path: `${root}/outside/secret.mp4` }], field: 'videos.1', rule: 'outside_base', says: /absolute/ },
  { name: 'a folder instead of a video', videos: [{ ...cam0, path: 'videos' }, cam1], field: 'videos.0', rule: 'invalid', says: /folder/ },
  { name: 'a sent name with ..', videos: [cam0, { path: '../cam1.mp4', uses: [{ video: 1, image: 0 }] }], field: 'videos.1', rule: 'outside_base', says: /\.\./ },
  { name: 'a video the labels file does not name', videos: [cam0, cam1, { ...cam0, path: 'videos/cam0.mp4', uses: [{ video: 2, image: 0 }] }], field: 'labels', rule: 'invalid', says: /lists video 2, which is not an external video/ },
  { name: 'a video of the labels file left out', videos: [cam0], field: 'labels', rule: 'invalid', says: /names video 1 \('\/Volumes\/lab\/shared\/cam1\.mp4'\), which the request does not list/ },
  { name: 'one video listed twice', videos: [cam0, cam1, { ...cam1, uses: [{ video: 1, image: 0 }] }], field: 'labels', rule: 'invalid', says: /listed twice/ },
];

for (const c of refused) {
  test(`refused before anything runs: ${c.name}`, async (t) => {
    const dir = await jobDir(t);
    const out = await checkRequest(train(c.videos), ctx(dir));
    assert.equal(out.ok, false, JSON.stringify(out.messages));
    const errors = out.messages.filter((m): m is Extract<WorkerToClient, { type: 'PATH_ERROR' }> => m.type === 'PATH_ERROR');
    assert.deepEqual(errors.map((e) => [e.field, e.rule]), [[c.field, c.rule]], JSON.stringify(errors));
    assert.match(errors[0]!.message, c.says);
    assert.equal(out.messages.at(-1)?.type, 'JOB_REJECTED');
    noWorkerPaths(out.messages);
    assert.deepEqual(await readdir(dir), [], 'nothing was created in the job folder');
  });
}

test('a video on a backend this worker lacks: BACKEND_NOT_AVAILABLE (the client can send the files instead)', async (t) => {
  const out = await checkRequest(train([cam0, cam1]), { ...ctx(await jobDir(t)), healthyBackends: new Set(['vast']) });
  assert.equal(out.ok, false);
  assert.deepEqual(out.messages.map((m) => m.type), ['BACKEND_NOT_AVAILABLE', 'JOB_REJECTED']);
  assert.equal((out.messages[0] as { backend: string }).backend, 'archive');
});

async function checked(request: JobRequest, dir: string): Promise<{ storage: CheckedStorage; paths: CheckedPath[] }> {
  const out = await checkRequest(request, ctx(dir));
  assert.ok(out.ok, JSON.stringify(out.messages));
  return { storage: out.storage, paths: out.paths };
}

/** setUpVideos as the job runner calls it, here with the checked paths as the paths given to sleap-nn. */
function setUp(request: JobRequest, paths: readonly CheckedPath[], dir: string) {
  const field = request.job_type === 'train' ? 'labels' : 'data';
  const labels = paths.find((p) => p.field === field)!.local;
  return setUpVideos(request, paths, { read: labels, given: labels }, dir);
}

test('training, videos on two backends: one --video-path-map per stored name, to this worker\'s paths', async (t) => {
  const dir = await jobDir(t);
  const c = await checked(train([cam0, cam1]), dir);
  const setup = await setUp(train([cam0, cam1]), c.paths, dir);
  assert.deepEqual(setup, {
    kind: 'train',
    videoPathMap: [
      { from: `${CLIENT_VAST}/alice/videos/cam0.mp4`, to: path.join(vast, 'alice/videos/cam0.mp4') },
      { from: `${CLIENT_ARCHIVE}/shared/cam1.mp4`, to: path.join(archive, 'shared/cam1.mp4') },
    ],
  });
});

test('training, every video under the labels file\'s backend: still one --video-path-map per stored name, never a --prefix-map (sleap-nn gets no name on the share)', async (t) => {
  const dir = await jobDir(t);
  const both = { ...cam0, uses: [{ video: 0, image: 0 }, { video: 1, image: 0 }] };
  const request = train([both], 'proj/one-backend.slp');
  const c = await checked(request, dir);
  assert.deepEqual(await setUp(request, c.paths, dir), {
    kind: 'train',
    videoPathMap: [{ from: `${CLIENT_VAST}/alice/videos/cam0.mp4`, to: path.join(vast, 'alice/videos/cam0.mp4') }],
  });
});

test('an older client without a videos list: nothing is read or remapped here', async (t) => {
  const dir = await jobDir(t);
  const c = await checked(train(undefined), dir);
  assert.deepEqual(await setUp(train(undefined), c.paths, dir), { kind: 'none' });
});

test('inference on a labels file: a rewritten copy in the job folder names this worker\'s paths; the user\'s file is unchanged', async (t) => {
  const dir = await jobDir(t);
  const labels = path.join(vast, 'alice/proj/labels.slp');
  const before = await sha(labels);
  const request = track([cam0, cam1]);
  const c = await checked(request, dir);
  const setup = await setUp(request, c.paths, dir);
  assert.equal(setup.kind, 'track');
  const copy = (setup as { data: string }).data;
  assert.ok(copy.startsWith(`${dir}/`), copy);
  assert.equal(path.basename(copy), 'labels.slp');
  const names = (await listVideos(copy)).videos.map((v) => v.names);
  // The real file's table holds 123 bytes per entry: these paths fit, or the copy names links beside it.
  const resolved = await Promise.all(names.map(async ([n]) => realpath(path.isAbsolute(n!) ? n! : path.join(path.dirname(copy), n!))));
  assert.deepEqual(resolved, [path.join(vast, 'alice/videos/cam0.mp4'), path.join(archive, 'shared/cam1.mp4')]);
  assert.equal(await sha(labels), before);
  // What sleap-nn is given for each video, back to the name the user's labels file stored (predictions.ts).
  const back = (setup as { names: Map<string, string> }).names;
  assert.deepEqual(
    names.map(([n]) => back.get(path.isAbsolute(n!) ? n! : path.join(path.dirname(copy), n!))),
    [`${CLIENT_VAST}/alice/videos/cam0.mp4`, `${CLIENT_ARCHIVE}/shared/cam1.mp4`],
  );
});

test('inference when the worker\'s paths do not fit the fixed-length table: links beside the copy, named by base name', async (t) => {
  const deep = await mkdtemp(path.join(root, `${'very-long-folder-name-'.repeat(6)}`));
  t.after(() => rm(deep, { recursive: true, force: true }));
  const bigStorage = StorageConfig.fromToml({ vast: { base_path: deep } });
  await mkdir(path.join(deep, 'alice', 'videos'), { recursive: true });
  await copySleapFile('video', path.join(deep, 'alice', 'videos', 'cam0.mp4'));
  await labelsNaming(path.join(deep, 'alice', 'proj', 'labels.slp'), [`${CLIENT_VAST}/alice/videos/cam0.mp4`]);
  await mkdir(path.join(deep, 'alice', 'models', 'm1'), { recursive: true });
  await writeFile(path.join(deep, 'alice', 'models', 'm1', 'best.ckpt'), 'ckpt');
  const dir = await jobDir(t);
  const request = track([cam0]);
  const out = await checkRequest(request, { storage: bigStorage, healthyBackends: new Set(['vast']), stagingDir: async () => dir });
  assert.ok(out.ok, JSON.stringify(out.messages));
  const setup = (await setUp(request, out.paths, dir)) as { data: string; names: Map<string, string> };
  const [name] = (await listVideos(setup.data)).videos[0]!.names;
  assert.equal(name, 'cam0.mp4');
  assert.equal(await readlink(path.join(path.dirname(setup.data), 'cam0.mp4')), path.join(deep, 'alice/videos/cam0.mp4'));
  assert.equal(setup.names.get(path.join(path.dirname(setup.data), 'cam0.mp4')), `${CLIENT_VAST}/alice/videos/cam0.mp4`);
});

test('inference on a package file: no copy, the file is used as it is', async (t) => {
  const dir = await jobDir(t);
  await copySleapFile('pkg', path.join(vast, 'alice', 'proj', 'pkg.slp'));
  const request = { ...track([]), spec: { ...track([]).spec, data: 'proj/pkg.slp' } } as JobRequest;
  const c = await checked(request, dir);
  assert.deepEqual(await setUp(request, c.paths, dir), { kind: 'track', data: path.join(vast, 'alice/proj/pkg.slp'), names: new Map() });
  assert.deepEqual(await readdir(dir), []);
});
