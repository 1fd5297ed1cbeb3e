/**
 * Jobs end to end with real processes on loopback: `sleap-rtc server`, `sleap-rtc worker` and
 * `sleap-rtc train` / `track`, with the sleap-nn stand-in doing real file work. The client and
 * the worker name one share by different base paths, so shared-storage jobs really are resolved
 * on the worker's side.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { FAKE_SLEAP_NN, readPredictions, readRecords } from '../fixtures/fake-sleap-nn.js';
import { labShare, lastJson, runClient, serverForFile, startWorker } from './helpers/jobs-env.js';
import { copySleapFile, copyTrainingConfig } from '../helpers/sleap-data.js';
import { labelsContent, labelsOnly } from '../helpers/slp-content.js';

const server = serverForFile();

const JSON_KEYS = ['job_id', 'status', 'worker', 'transfer', 'storage_backend', 'user_subdir', 'outputs', 'bytes_sent', 'bytes_received', 'bytes_skipped'];

test('shared storage: the worker reads the data in place under its own base path; outputs print as client paths', async (t) => {
  const lab = await labShare(t);
  const room = await server.newRoom();
  const record = path.join(lab.dir, 'record.jsonl');
  await startWorker(t, room, lab.dir, { name: 'gpu-a', toml: lab.workerToml, env: { FAKE_SLEAP_NN_RECORD: record } });
  const labels = path.join(lab.mount, 'alice/proj/labels.slp');
  const r = await runClient(room, lab.dir, ['train', '--labels', labels, '--config-file', path.join(lab.mount, 'alice/proj/config.yaml'), '--run-name', 'r1', '--max-epochs', '2', '--json'], { config: lab.clientToml });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trimEnd().split('\n').length, 1, 'stdout holds only the JSON result');
  const result = lastJson(r);
  assert.deepEqual(Object.keys(result), [...JSON_KEYS, 'training'], 'a train job adds what was seen of the training');
  delete result.training;
  assert.match(String(result.job_id), /^job-[0-9a-f]+$/);
  assert.deepEqual({ ...result, job_id: 'x' }, {
    job_id: 'x',
    status: 'completed',
    worker: 'gpu-a',
    transfer: 'shared',
    storage_backend: 'vast',
    user_subdir: 'alice',
    outputs: [path.join(lab.mount, 'alice/proj/models/r1')],
    bytes_sent: 0,
    bytes_received: 0,
    bytes_skipped: 0,
  });
  assert.match(r.stderr, /transfer: shared storage \(backend vast, user alice\)/);
  assert.match(r.stderr, /Epoch 2\/2/);
  assert.match(await readFile(path.join(lab.share, 'alice/proj/models/r1/best.ckpt'), 'utf8'), /epochs=2/);
  const [rec] = await readRecords(record);
  assert.ok(rec);
  // sleap-nn got paths in the worker's job folder (each pinned to the file the worker opened in its
  // share, docs/storage-backends.md), never a name on the share nor the client's. This labels file
  // is a package (frames embedded): no video to map (jobs-videos-*.test.ts cover external videos).
  const job = `[^']*/job-[^/']+`;
  const labelsArg = rec.argv.find((a) => a.startsWith('++data_config.train_labels_path='));
  assert.match(String(labelsArg), new RegExp(`^\\+\\+data_config\\.train_labels_path=\\['${job}/inputs/\\d+/labels\\.slp'\\]$`), rec.argv.join(' '));
  assert.ok(!rec.argv.includes('--prefix-map') && !rec.argv.includes('--video-path-map'), rec.argv.join(' '));
  assert.ok(!rec.argv.some((a) => a.includes(`${lab.mount}/`)), 'no client path reaches sleap-nn');
  assert.ok(!rec.argv.some((a) => a.includes(`${lab.share}/`)), 'no name on the share reaches sleap-nn');
  // It read the labels in the share: its ground-truth copy in the run folder holds their frames, and
  // names the package (loaded by its pinned path) as the client knows it, relative to the run folder.
  const gt = path.join(lab.share, 'alice/proj/models/r1/labels_gt.train.0.slp');
  assert.deepEqual(labelsOnly(gt), labelsOnly(path.join(lab.share, 'alice/proj/labels.slp')));
  assert.deepEqual(labelsContent(gt).videos, [['../../labels.slp']]);
  assert.deepEqual(labelsContent(gt).provenance, { filename: 'proj/labels.slp' });
});

test('shared storage track: default output beside the data; plain output is the path alone on stdout', async (t) => {
  const lab = await labShare(t);
  const room = await server.newRoom();
  await startWorker(t, room, lab.dir, { name: 'gpu-t', toml: lab.workerToml });
  const r = await runClient(room, lab.dir, ['track', '--data', 'mnt-client/alice/proj/video.mp4', '--model', 'mnt-client/alice/models/m1'], { config: lab.clientToml });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, `${path.join(lab.mount, 'alice/proj/video.mp4.predictions.slp')}\n`);
  const predictions = await readPredictions(path.join(lab.share, 'alice/proj/video.mp4.predictions.slp'));
  // sleap-nn read a private name in the job folder; the predictions name the video as the client
  // knows it (next to the predictions file), and its provenance names the client's path, not the worker's.
  assert.deepEqual(predictions.videos, [['video.mp4']]);
  assert.equal(predictions.provenance.source_file, 'proj/video.mp4');
  assert.equal(predictions.frames, 40);
});

test('no worker has the backend: the files are sent instead and results land where the shared job would have written', async (t) => {
  const lab = await labShare(t);
  const room = await server.newRoom();
  await mkdir(path.join(lab.dir, 'scratch'));
  await startWorker(t, room, lab.dir, { name: 'no-share', toml: `[storage.scratch]\nbase_path = ${JSON.stringify(path.join(lab.dir, 'scratch'))}\n` });
  // A package file: its frames travel inside it (a labels file's external videos are not sent yet).
  const args = ['train', '--labels', path.join(lab.mount, 'alice/proj/labels.pkg.slp'), '--config-file', path.join(lab.mount, 'alice/proj/config.yaml'), '--run-name', 'fb', '--max-epochs', '2', '--json'];

  const strict = await runClient(room, lab.dir, [...args, '--no-fallback'], { config: lab.clientToml });
  assert.equal(strict.code, 1, strict.stderr);
  const failed = lastJson(strict);
  assert.equal(failed.status, 'failed');
  assert.deepEqual((failed.error as { code: string }).code, 'NO_MATCHING_WORKER');
  assert.match((failed.error as { message: string }).message, /--no-fallback/);
  await assert.rejects(readdir(path.join(lab.share, 'alice/proj/models')), 'nothing was written');

  const r = await runClient(room, lab.dir, args, { config: lab.clientToml });
  assert.equal(r.code, 0, r.stderr);
  const result = lastJson(r);
  assert.equal(result.transfer, 'webrtc');
  assert.equal(result.storage_backend, null);
  assert.equal(result.user_subdir, null);
  assert.equal(result.worker, 'no-share');
  assert.match(String(result.fallback_reason), /no worker in the room has backend vast \(available: scratch\)/);
  assert.match(r.stderr, /transfer: webrtc \(reason: no worker in the room has backend vast/);
  assert.deepEqual(result.outputs, [path.join(lab.mount, 'alice/proj/models/fb')]);
  assert.match(await readFile(path.join(lab.share, 'alice/proj/models/fb/best.ckpt'), 'utf8'), /FAKE-CKPT run=fb/);
});

test('an input missing on the worker\'s mount falls back to sending it; --no-fallback fails naming the field; a locally missing input is a usage error', async (t) => {
  const lab = await labShare(t);
  const room = await server.newRoom();
  // The worker's "vast" is another folder that lacks alice's files (a share not synced yet).
  const empty = path.join(lab.dir, 'other-copy');
  await mkdir(path.join(empty, 'alice', 'proj'), { recursive: true });
  await startWorker(t, room, lab.dir, { name: 'stale', toml: `[storage.vast]\nbase_path = ${JSON.stringify(empty)}\n` });
  const args = ['track', '--data', path.join(lab.mount, 'alice/proj/video.mp4'), '--model', path.join(lab.mount, 'alice/models/m1'), '--json'];

  const strict = await runClient(room, lab.dir, [...args, '--no-fallback'], { config: lab.clientToml });
  assert.equal(strict.code, 1, strict.stderr);
  assert.equal((lastJson(strict).error as { code: string }).code, 'PATH_VALIDATION');
  assert.match(strict.stderr, /data: 'proj\/video\.mp4' does not exist on this worker's mount/);
  assert.ok(!strict.stderr.includes(empty), 'the worker\'s own paths are not shown to the client');

  const r = await runClient(room, lab.dir, args, { config: lab.clientToml });
  assert.equal(r.code, 0, r.stderr);
  const result = lastJson(r);
  assert.equal(result.transfer, 'webrtc');
  assert.match(String(result.fallback_reason), /worker cannot find data, models\.0 on its mount of backend vast/);
  assert.deepEqual(result.outputs, [path.join(lab.mount, 'alice/proj/video.mp4.predictions.slp')]);
  assert.deepEqual(await readdir(path.join(empty, 'alice', 'proj')), [], 'the worker wrote nothing on its own copy');

  const missing = await runClient(room, lab.dir, ['track', '--data', path.join(lab.mount, 'alice/proj/nope.mp4'), '--model', path.join(lab.mount, 'alice/models/m1'), '--json'], { config: lab.clientToml });
  assert.equal(missing.code, 2);
  assert.equal(missing.stdout, '');
  assert.match(missing.stderr, /--data .*nope\.mp4: no such file/);
});

test('legacy SHARED_STORAGE_ROOT on both sides: the `default` backend, resolved by each side under its own root', async (t) => {
  const lab = await labShare(t);
  const room = await server.newRoom();
  // The legacy worker has no config file, so its sleap-nn is the one on the PATH: the stand-in.
  const PATH = `${path.dirname(FAKE_SLEAP_NN)}${path.delimiter}${process.env.PATH ?? ''}`;
  await startWorker(t, room, lab.dir, { name: 'legacy', noConfig: true, env: { SHARED_STORAGE_ROOT: lab.share, PATH } });
  const r = await runClient(room, lab.dir, ['train', '--labels', path.join(lab.mount, 'alice/proj/labels.slp'), '--config-file', path.join(lab.mount, 'alice/proj/config.yaml'), '--run-name', 'lg', '--max-epochs', '2', '--json'], {
    env: { SHARED_STORAGE_ROOT: lab.mount },
  });
  assert.equal(r.code, 0, r.stderr);
  const result = lastJson(r);
  assert.deepEqual([result.transfer, result.storage_backend, result.user_subdir], ['shared', 'default', 'alice']);
  assert.deepEqual(result.outputs, [path.join(lab.mount, 'alice/proj/models/lg')]);
  assert.ok((await readdir(path.join(lab.share, 'alice/proj/models/lg'))).includes('best.ckpt'));
});

test('files outside every backend go by transfer; results land in the current folder', async (t) => {
  const lab = await labShare(t);
  const room = await server.newRoom();
  await startWorker(t, room, lab.dir, { name: 'gpu-x', toml: lab.workerToml });
  const work = path.join(lab.dir, 'laptop');
  await mkdir(path.join(work, 'models', 'centroid'), { recursive: true });
  await mkdir(path.join(work, 'models', 'instance'), { recursive: true });
  await writeFile(path.join(work, 'models', 'centroid', 'best.ckpt'), 'c');
  await writeFile(path.join(work, 'models', 'instance', 'best.ckpt'), 'i');
  await copyTrainingConfig(path.join(work, 'models', 'centroid', 'training_config.yaml'));
  await copyTrainingConfig(path.join(work, 'models', 'instance', 'training_config.yaml'), 'singleInstanceConfig');
  await copySleapFile('video', path.join(work, 'clip 1.mp4'));
  const r = await runClient(room, lab.dir, ['track', '--data', 'clip 1.mp4', '--model', 'models/centroid', '--model', 'models/instance', '--json'], { cwd: work, config: lab.clientToml });
  assert.equal(r.code, 0, r.stderr);
  const result = lastJson(r);
  assert.equal(result.transfer, 'webrtc');
  assert.equal(result.fallback_reason, undefined);
  assert.match(r.stderr, /transfer: webrtc \(reason: data is not under any storage backend\)/);
  assert.deepEqual(result.outputs, [path.join(work, 'clip 1.mp4.predictions.slp')]);
  const predictions = await readPredictions(path.join(work, 'clip 1.mp4.predictions.slp'));
  assert.equal(predictions.provenance.model_paths?.length, 2);
  assert.deepEqual(predictions.videos, [['clip 1.mp4']], 'the video by its name next to the predictions, no staging path');
});

test('a failing sleap-nn: exit 1, status failed with its code, and its last lines shown', async (t) => {
  const lab = await labShare(t);
  const room = await server.newRoom();
  await startWorker(t, room, lab.dir, { name: 'oom', toml: lab.workerToml, env: { FAKE_SLEAP_NN_FAIL: '1' } });
  const r = await runClient(room, lab.dir, ['train', '--labels', path.join(lab.mount, 'alice/proj/labels.slp'), '--config-file', path.join(lab.mount, 'alice/proj/config.yaml'), '--json'], { config: lab.clientToml });
  assert.equal(r.code, 1, r.stderr);
  const result = lastJson(r);
  assert.equal(result.status, 'failed');
  assert.deepEqual(result.outputs, []);
  assert.equal((result.error as { code: string }).code, 'SLEAP_NN_FAILED');
  assert.match(r.stderr, /torch\.OutOfMemoryError: CUDA out of memory/);
  assert.match(r.stderr, /exited with code 3/);
});
