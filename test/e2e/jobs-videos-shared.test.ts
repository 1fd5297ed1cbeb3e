/**
 * The videos inside a labels file, end to end with real processes (server, worker, client, the
 * strict sleap-nn stand-in, which loads the labels file and fails as sleap-nn does when a video it
 * names is not there) and real SLEAP files: the real labels file naming its videos by the client's
 * own paths. The client's mount and the worker's base path differ (`mnt-client` -> `share`).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cp, mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { readRecords } from '../fixtures/fake-sleap-nn.js';
import { labWithVideos, lastJson, recordingWorker, runClient, runCompleted, serverForFile, trainArgs, videoPathMaps } from './helpers/jobs-env.js';

const server = serverForFile();

test('shared training: a labels file naming its videos by client paths trains on the worker with one --video-path-map per name, to the videos it pinned', async (t) => {
  const lab = await labWithVideos(t, (m) => [`${m}/alice/videos/cam0.mp4`, `${m}/alice/videos/cam1.mp4`, `${m}/alice/videos/cam0.mp4`]);
  const room = await server.newRoom();
  const { record } = await recordingWorker(t, room, lab.dir, { name: 'gpu-v', toml: lab.workerToml });
  const { result } = await runCompleted(room, lab.dir, trainArgs(lab, 'v1', 1, lab.clientLabels));
  assert.equal(result.transfer, 'shared');
  assert.equal('files_sent' in result, false, 'nothing was sent');
  const [rec] = await readRecords(record);
  assert.ok(rec);
  // Never a --prefix-map: sleap-nn gets the paths the worker pinned in its job folder, never a name on the share.
  assert.ok(!rec.argv.includes('--prefix-map'), rec.argv.join(' '));
  const maps = videoPathMaps(rec.argv);
  assert.deepEqual(maps.map(([from]) => from), [`${lab.mount}/alice/videos/cam0.mp4`, `${lab.mount}/alice/videos/cam1.mp4`], rec.argv.join(' '));
  for (const [from, to] of maps) assert.match(String(to), new RegExp(`/job-[^/]+/inputs/\\d+/${path.basename(String(from)).replace('.', '\\.')}$`));
  assert.ok(!rec.argv.some((a) => a.includes(`${lab.share}/`)), 'no name on the share reaches sleap-nn');
});

test('a video missing on the worker\'s mount: refused before sleap-nn starts, named by the client\'s own path', async (t) => {
  const lab = await labWithVideos(t, (m) => [`${m}/alice/videos/cam0.mp4`, `${m}/alice/videos/cam1.mp4`]);
  const room = await server.newRoom();
  // The worker's copy of the share lacks cam1 (not synced yet): its base is another folder.
  const stale = path.join(lab.dir, 'stale');
  await mkdir(path.join(stale, 'alice'), { recursive: true });
  await cp(path.join(lab.share, 'alice'), path.join(stale, 'alice'), { recursive: true, dereference: false });
  await rm(path.join(stale, 'alice/videos/cam1.mp4'));
  const { record } = await recordingWorker(t, room, lab.dir, { name: 'gpu-stale', toml: `[storage.vast]\nbase_path = ${JSON.stringify(stale)}\n` });
  const r = await runClient(room, lab.dir, [...trainArgs(lab, 'v2', 1, lab.clientLabels), '--no-fallback']);
  assert.equal(r.code, 1, r.stderr);
  const error = lastJson(r).error as { code: string; message: string };
  assert.equal(error.code, 'PATH_VALIDATION');
  assert.match(error.message, new RegExp(`Videos refused: ${path.join(lab.mount, 'alice/videos/cam1.mp4').replace(/[/.]/g, '\\$&')} \\(missing; video 1 of the labels file\\)`));
  assert.match(r.stderr, /videos\.1: video 'videos\/cam1\.mp4' does not exist on this worker's mount/);
  assert.ok(!r.stderr.includes(stale) && !r.stdout.includes(stale), "the worker's own paths are not shown");
  assert.deepEqual(await readRecords(record), [], 'sleap-nn never started');
});
