/**
 * The videos inside a labels file, end to end with real processes (server, worker, client, the
 * strict sleap-nn stand-in, which loads the labels file and fails as sleap-nn does when a video it
 * names is not there) and real SLEAP files: the real labels file naming its videos by the client's
 * own paths. The client's mount and the worker's base path differ (`mnt-client` -> `share`).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { readRecords } from '../fixtures/fake-sleap-nn.js';
import { copySleapFile } from '../helpers/sleap-data.js';
import { labelsContent, labelsOnly } from '../helpers/slp-content.js';
import { labWithVideos, recordingWorker, runCompleted, serverForFile, trainArgs, videoPathMaps } from './helpers/jobs-env.js';

const server = serverForFile();

test('fallback: the labels file and every video it names are sent, each file once; sleap-nn finds them in the staging folder', async (t) => {
  const lab = await labWithVideos(t, (m) => [`${m}/alice/videos/cam0.mp4`, `${m}/alice/videos/cam1.mp4`, `${m}/alice/videos/cam0.mp4`]);
  const room = await server.newRoom();
  await mkdir(path.join(lab.dir, 'scratch'));
  const { record } = await recordingWorker(t, room, lab.dir, { name: 'no-share', toml: `[storage.scratch]\nbase_path = ${JSON.stringify(path.join(lab.dir, 'scratch'))}\n` });
  const { r, result } = await runCompleted(room, lab.dir, trainArgs(lab, 'v4', 1, lab.clientLabels));
  assert.equal(result.transfer, 'webrtc');
  assert.deepEqual([...(result.files_sent as string[])].sort(), [
    path.join(lab.mount, 'alice/proj/cams.slp'),
    path.join(lab.mount, 'alice/proj/config.yaml'),
    path.join(lab.mount, 'alice/videos/cam0.mp4'),
    path.join(lab.mount, 'alice/videos/cam1.mp4'),
  ]);
  const [rec] = await readRecords(record);
  assert.ok(rec);
  const maps = videoPathMaps(rec.argv).map(([from, to]) => [from, path.basename(to)]);
  assert.deepEqual(maps, [[`${lab.mount}/alice/videos/cam0.mp4`, 'cam0.mp4'], [`${lab.mount}/alice/videos/cam1.mp4`, 'cam1.mp4']]);
  assert.match(r.stderr, /upload 1\/4 /, 'progress counts all the files');
  // sleap-nn saved the labels it trained on (and predicted on them) naming the videos by the staged
  // paths it was given; the run folder that arrives names them as the client's labels file does.
  const runFolder = (result.outputs as string[])[0]!;
  assert.equal(path.basename(runFolder), 'v4');
  const client = labelsContent(lab.labels);
  for (const f of ['labels_gt.train.0.slp', 'labels_gt.val.0.slp', 'labels_pr.train.0.slp', 'labels_pr.val.0.slp']) {
    const got = labelsContent(path.join(runFolder, f));
    assert.deepEqual(got.videos, client.videos, `${f}: the videos as the client's labels file names them`);
    const text = JSON.stringify([got.videos, got.provenance]);
    for (const workerPath of [path.join(lab.dir, 'scratch'), `${lab.share}/`, '/job-', '.sleap-rtc', '/staging']) assert.ok(!text.includes(workerPath), `${f} names no worker path (${workerPath}): ${text}`);
  }
  assert.deepEqual(labelsOnly(path.join(runFolder, 'labels_gt.train.0.slp')), labelsOnly(lab.labels), 'the frames, instances and points trained on');
  assert.deepEqual(labelsContent(path.join(runFolder, 'labels_gt.train.0.slp')).provenance, { filename: 'cams.slp' }, 'where sleap-io loaded them, in the job\'s terms');
});

test('a video under no backend goes over the data channel while the rest is read in place: transfer "mixed"', async (t) => {
  const lab = await labWithVideos(t, (m, dir) => [`${m}/alice/videos/cam0.mp4`, path.join(dir, 'laptop', 'cam9.mp4')]);
  await copySleapFile('video', path.join(lab.dir, 'laptop', 'cam9.mp4'));
  const room = await server.newRoom();
  const { record } = await recordingWorker(t, room, lab.dir, { name: 'gpu-m', toml: lab.workerToml });
  const { result } = await runCompleted(room, lab.dir, trainArgs(lab, 'v5', 1, lab.clientLabels));
  assert.equal(result.transfer, 'mixed');
  assert.deepEqual(result.files_sent, [path.join(lab.dir, 'laptop', 'cam9.mp4')]);
  const [rec] = await readRecords(record);
  assert.ok(rec);
  const maps = videoPathMaps(rec.argv);
  assert.equal(maps.length, 2);
  // The video on the share: pinned by the worker below its backend (job-files.ts), never the share's name.
  assert.equal(maps[0]?.[0], `${lab.mount}/alice/videos/cam0.mp4`);
  assert.match(String(maps[0]?.[1]), /work-gpu-m\/job-[^/]+\/inputs\/\d+\/cam0\.mp4$/);
  assert.match(String(maps[1]?.[1]), /work-gpu-m\/job-[^/]+\/cam9\.mp4$/);
});
