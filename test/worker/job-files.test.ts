/**
 * Confinement at use time (src/worker/job-files.ts), through a real WorkerSession: what a client
 * that mounts the same share read-write can do between the worker's check and sleap-nn's opens.
 * A gated stand-in makes the moment deterministic: the worker has done everything it does before
 * sleap-nn starts, and sleap-nn has not opened anything yet.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { JobRequest } from '../../src/protocol/job.js';
import { CANARY, gatedSleapNn, sessionEnv, type SessionEnv } from './helpers/session-env.js';
import { labelsContent, labelsOnly } from '../helpers/slp-content.js';
import { readPredictions, readRecords } from '../fixtures/fake-sleap-nn.js';

const train = (jobId: string, output = 'out'): JobRequest =>
  ({
    type: 'JOB_REQUEST',
    job_id: jobId,
    job_type: 'train',
    transfer: 'shared',
    storage: { storage_backend: 'vast', user_subdir: 'alice' },
    spec: { labels: 'proj/labels.slp', config_file: 'proj/config.yaml', output, run_name: 'r1', max_epochs: 2 },
  }) as JobRequest;

const track = (jobId: string): JobRequest =>
  ({
    type: 'JOB_REQUEST',
    job_id: jobId,
    job_type: 'track',
    transfer: 'shared',
    storage: { storage_backend: 'vast', user_subdir: 'alice' },
    spec: { data: 'proj/labels.slp', models: ['models/m1'], output: 'out/predictions.slp' },
  }) as JobRequest;

/** Replace `alice/<name>` by a link to the outside folder (the real one kept aside). */
async function swapOut(env: SessionEnv, name: string): Promise<void> {
  await rename(path.join(env.share, 'alice', name), path.join(env.share, 'alice', `${name}.real`));
  await symlink(env.outside, path.join(env.share, 'alice', name));
}

async function waitFor(file: string): Promise<void> {
  for (let i = 0; i < 3000; i++) {
    if (await readFile(file).then(() => true, () => false)) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`${file} never appeared`);
}

async function outsideUntouched(env: SessionEnv): Promise<void> {
  assert.deepEqual((await readdir(env.outside)).sort(), ['best.ckpt', 'config.yaml', 'labels.slp', 'm1']);
  assert.deepEqual(await readdir(path.join(env.outside, 'm1')), ['best.ckpt']);
}

test('inputs swapped for links out after the worker opened them: sleap-nn still reads the checked files', async (t) => {
  const gated = await gatedSleapNn(t);
  const env = await sessionEnv(t, { executable: gated.executable });
  env.client.send(train('j1'));
  await env.client.next('JOB_STARTED');
  await waitFor(path.join(gated.gate, 'waiting'));
  await swapOut(env, 'proj');
  await writeFile(path.join(gated.gate, 'go'), '');
  const done = await env.client.next('JOB_COMPLETE', () => true, 30_000);
  assert.equal(done.transfer, 'shared');
  // sleap-nn read the real labels (its ground-truth copy holds their frames) and the real config.
  const gtFile = path.join(env.share, 'alice/out/r1/labels_gt.train.0.slp');
  const gt = await readFile(gtFile);
  assert.deepEqual(labelsOnly(gtFile), labelsOnly(path.join(env.share, 'alice/proj.real/labels.slp')), 'sleap-nn read the real labels');
  // The package's frames are named by the labels file as the client knows it, relative to the run folder.
  assert.deepEqual(labelsContent(gtFile).videos, [['../../proj/labels.slp']]);
  assert.equal(labelsContent(gtFile).provenance.filename, 'proj/labels.slp', 'where sleap-io loaded them, in the client\'s words');
  for (const f of ['labels_gt.val.0.slp', 'labels_pr.train.0.slp', 'labels_pr.val.0.slp']) {
    const c = labelsContent(path.join(env.share, 'alice/out/r1', f));
    assert.ok(!JSON.stringify([c.videos, c.provenance]).includes('"/'), `${f} names no absolute path of the worker: ${JSON.stringify([c.videos, c.provenance])}`);
  }
  const config = await readFile(path.join(env.share, 'alice/out/r1/training_config.yaml'), 'utf8');
  assert.match(config, /min_train_steps_per_epoch: 200/, 'sleap-nn read the real config');
  assert.ok(!config.includes(CANARY) && !gt.includes(CANARY), 'no canary byte');
  await outsideUntouched(env);
});

test('the output folder swapped for a link out while sleap-nn runs: nothing is written outside, the job fails with PATH_CHANGED', async (t) => {
  const gated = await gatedSleapNn(t);
  const env = await sessionEnv(t, { executable: gated.executable });
  env.client.send(train('j2'));
  await waitFor(path.join(gated.gate, 'waiting'));
  await swapOut(env, 'out');
  await writeFile(path.join(gated.gate, 'go'), '');
  const failed = await env.client.next('JOB_FAILED', () => true, 30_000);
  assert.equal(failed.code, 'PATH_CHANGED');
  assert.match(failed.message, /^output: 'out\/r1' leads outside the storage/);
  assert.ok(!failed.message.includes(env.root), failed.message);
  await outsideUntouched(env);
  // Only the run folder the worker claimed before accepting the job, still empty: nothing half-written.
  assert.deepEqual(await readdir(path.join(env.share, 'alice', 'out.real')), ['r1'], 'only the claimed run folder');
  assert.deepEqual(await readdir(path.join(env.share, 'alice', 'out.real', 'r1')), [], 'nothing half-written in the real folder');
});

test('a model folder holding a link out (not looked into by the check) stops the track job before sleap-nn starts', async (t) => {
  const env = await sessionEnv(t);
  await rm(path.join(env.share, 'alice/models/m1/training_config.yaml'));
  await symlink(path.join(env.outside, 'best.ckpt'), path.join(env.share, 'alice/models/m1/training_config.yaml'));
  env.client.send(track('k1'));
  const failed = await env.client.next('JOB_FAILED', () => true, 30_000);
  assert.equal(failed.code, 'PATH_CHANGED');
  assert.equal(failed.message.split(':')[0], 'models.0');
  assert.match(failed.message, /'models\/m1\/training_config\.yaml' leads outside the storage/);
  assert.ok(!env.client.of('k1').some((m) => m.type === 'JOB_STARTED'), 'sleap-nn never started');
  await outsideUntouched(env);
});

test('a track job reads its model folder and data through the worker, and its predictions land in the share', async (t) => {
  const env = await sessionEnv(t);
  env.client.send(track('k2'));
  const done = await env.client.next('JOB_COMPLETE', () => true, 30_000);
  assert.deepEqual(done.transfer === 'shared' && done.outputs.map((o) => o.relative_path), ['out/predictions.slp']);
  // sleap-nn was given private names (kept extensions), never a name on the share.
  const [run] = await readRecords(env.record);
  assert.ok(run, 'sleap-nn ran');
  const data = run.argv[run.argv.indexOf('--data_path') + 1] ?? '';
  const models = run.argv.flatMap((a, i) => (a === '--model_paths' ? [run.argv[i + 1] ?? ''] : []));
  assert.ok(path.basename(data) === 'labels.slp' && !data.startsWith(env.share), data);
  assert.ok(models.length > 0 && models.every((m) => !m.startsWith(env.share)), models.join());
  // The predictions it wrote name no path of the worker: the input as seen from out/.
  const predictions = await readPredictions(path.join(env.share, 'alice/out/predictions.slp'));
  assert.ok(predictions.videos.flat().every((n) => !n.startsWith('/')), JSON.stringify(predictions.videos));
  await outsideUntouched(env);
});
