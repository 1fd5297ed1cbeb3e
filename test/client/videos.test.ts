/**
 * The client's half of the videos inside a labels file: listed and found as SLEAP would on this
 * machine, each distinct file made a reference on whichever backend holds it (or sent), before any
 * network. Real labels files (the real small_robot_minimal.slp naming the videos of each case).
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
import { labelsNaming } from '../helpers/slp-files.js';

/*
 *   root/share  (the client's mount root/mnt -> share: backend vast)
 *     alice/proj/{two.slp, config.yaml, cam2.mp4}, alice/videos/cam0.mp4
 *   root/archive/cam1.mp4      backend archive
 *   root/laptop/v3.mp4         no backend
 */
let root = '';
let storage: StorageConfig;
const mnt = (p: string) => path.join(root, 'mnt', p);

before(async () => {
  root = await realpath(await mkdtemp(path.join(os.tmpdir(), 'sleap-rtc-plan-videos-')));
  const share = path.join(root, 'share');
  await mkdir(path.join(share, 'alice', 'videos'), { recursive: true });
  await mkdir(path.join(root, 'archive'));
  await mkdir(path.join(root, 'laptop'));
  await symlink(share, path.join(root, 'mnt'));
  await copySleapFile('video', path.join(share, 'alice/videos/cam0.mp4'));
  await copySleapFile('video', path.join(share, 'alice/proj/cam2.mp4'));
  await copySleapFile('video', path.join(root, 'archive/cam1.mp4'));
  await copySleapFile('video', path.join(root, 'laptop/v3.mp4'));
  await writeFile(path.join(share, 'alice/proj/config.yaml'), 'x');
  await labelsNaming(path.join(share, 'alice/proj/two.slp'), [
    mnt('alice/videos/cam0.mp4'),
    path.join(root, 'archive/cam1.mp4'),
    'elsewhere/cam2.mp4', // relative: found by its name next to the labels file
    path.join(root, 'laptop/v3.mp4'),
    mnt('alice/videos/cam0.mp4'), // the same file again
  ]);
  await labelsNaming(path.join(share, 'alice/proj/missing.slp'), [mnt('alice/videos/gone.mp4')]);
  await writeFile(path.join(share, 'alice/proj/text.slp'), 'not a labels file');
  storage = StorageConfig.fromToml({ vast: { base_path: path.join(root, 'mnt') }, archive: { base_path: path.join(root, 'archive') } });
});

after(() => rm(root, { recursive: true, force: true }));

const train = (labels: string): JobArgs => ({ jobType: 'train', labels: mnt(`alice/proj/${labels}`), configFile: mnt('alice/proj/config.yaml'), runName: 'r1', cwd: root });

test('each distinct video becomes a reference on the backend that holds it, or is sent; a file named twice is one entry', async () => {
  const plan = await planJob(train('two.slp'), storage);
  assert.ok(plan.shared, String(plan.transferReason));
  assert.deepEqual(plan.shared.request.spec.videos, [
    { path: 'videos/cam0.mp4', storage_backend: 'vast', user_subdir: 'alice', uses: [{ video: 0, image: 0 }, { video: 4, image: 0 }] },
    { path: 'cam1.mp4', storage_backend: 'archive', user_subdir: '', uses: [{ video: 1, image: 0 }] },
    { path: 'proj/cam2.mp4', storage_backend: 'vast', user_subdir: 'alice', uses: [{ video: 2, image: 0 }] },
    { path: 'v3.mp4', uses: [{ video: 3, image: 0 }] },
  ]);
  assert.deepEqual(plan.videos.map((v) => [v.field, v.local]), [
    ['videos.0', mnt('alice/videos/cam0.mp4')],
    ['videos.1', path.join(root, 'archive/cam1.mp4')],
    ['videos.2', mnt('alice/proj/cam2.mp4')],
    ['videos.3', path.join(root, 'laptop/v3.mp4')],
  ]);
  // Sent, every video gets a plain name of its own in the staging folder.
  assert.deepEqual(plan.transferRequest.spec.videos, [
    { path: 'cam0.mp4', uses: [{ video: 0, image: 0 }, { video: 4, image: 0 }] },
    { path: 'cam1.mp4', uses: [{ video: 1, image: 0 }] },
    { path: 'cam2.mp4', uses: [{ video: 2, image: 0 }] },
    { path: 'v3.mp4', uses: [{ video: 3, image: 0 }] },
  ]);
  assert.deepEqual(plan.videoInputs.map((i) => [i.field, i.staged]), [['videos.0', 'cam0.mp4'], ['videos.1', 'cam1.mp4'], ['videos.2', 'cam2.mp4'], ['videos.3', 'v3.mp4']]);
});

test('a video SLEAP would not find here stops the job before any network, naming the labels file and the name it holds', async () => {
  await assert.rejects(planJob(train('missing.slp'), storage), (e: unknown) => {
    assert.ok(e instanceof SleapRtcError);
    assert.equal(e.code, 'SLP_VIDEO_NOT_FOUND');
    assert.equal(e.exitCode, 2);
    assert.match(e.message, /missing\.slp names video 0 as '.*gone\.mp4', which is not on this machine \(looked at .* and .*\)/);
    return true;
  });
});

test('a labels file that is not one: exit 2 naming it, before any network', async () => {
  await assert.rejects(planJob(train('text.slp'), storage), (e: SleapRtcError) => e.code === 'SLP_NOT_HDF5' && e.exitCode === 2 && e.message.includes('text.slp'));
});

test('track: a .slp to predict on carries its videos; a video file carries none', async () => {
  await mkdir(path.join(root, 'share/alice/models/m1'), { recursive: true });
  const onSlp = await planJob({ jobType: 'track', data: mnt('alice/proj/two.slp'), models: [mnt('alice/models/m1')], cwd: root }, storage);
  assert.equal(onSlp.shared?.request.spec.videos?.length, 4);
  const onVideo = await planJob({ jobType: 'track', data: mnt('alice/videos/cam0.mp4'), models: [mnt('alice/models/m1')], cwd: root }, storage);
  assert.equal('videos' in (onVideo.shared?.request.spec ?? {}), false);
  assert.deepEqual(onVideo.videos, []);
});
