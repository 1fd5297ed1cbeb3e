/**
 * The videos inside a labels file, end to end with real processes (server, worker, client, the
 * strict sleap-nn stand-in, which loads the labels file and fails as sleap-nn does when a video it
 * names is not there) and real SLEAP files: the real labels file naming its videos by the client's
 * own paths. The client's mount and the worker's base path differ (`mnt-client` -> `share`).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { readPredictions, readRecords } from '../fixtures/fake-sleap-nn.js';
import { labWithVideos, recordingWorker, runCompleted, serverForFile } from './helpers/jobs-env.js';

const server = serverForFile();

const sha = async (f: string) => createHash('sha256').update(await readFile(f)).digest('hex');

test('inference on such a labels file: sleap-nn runs on a rewritten copy in the job folder; the user\'s file is unchanged', async (t) => {
  const lab = await labWithVideos(t, (m) => [`${m}/alice/videos/cam0.mp4`, `${m}/alice/videos/cam1.mp4`]);
  const before = await sha(lab.labels);
  const room = await server.newRoom();
  const { record } = await recordingWorker(t, room, lab.dir, { name: 'gpu-i', toml: lab.workerToml });
  const { result } = await runCompleted(room, lab.dir, ['track', '--data', lab.clientLabels, '--model', path.join(lab.mount, 'alice/models/m1'), '--json'], { config: lab.clientToml });
  assert.deepEqual(result.outputs, [`${lab.clientLabels}.predictions.slp`]);
  const [rec] = await readRecords(record);
  assert.ok(rec);
  const data = rec.argv[rec.argv.indexOf('--data_path') + 1] as string;
  assert.match(data, new RegExp(`^${path.join(lab.dir, 'work-gpu-i').replace(/[/.]/g, '\\$&')}/job-[^/]+/labels-[^/]+/cams\\.slp$`), data);
  assert.equal(await sha(lab.labels), before, "the user's labels file is not changed");
  // sleap-nn saved the videos by the worker's paths; they come back by the names the user's labels file holds.
  const predictions = await readPredictions(path.join(lab.share, 'alice/proj/cams.slp.predictions.slp'));
  assert.deepEqual(predictions.videos, [[`${lab.mount}/alice/videos/cam0.mp4`], [`${lab.mount}/alice/videos/cam1.mp4`]]);
  // Its provenance names the input it ran on (the rewritten copy) by the request's own path.
  assert.equal(predictions.provenance.source_file, 'proj/cams.slp');
});
