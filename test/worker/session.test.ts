/**
 * WorkerSession over a real WebRTC connection in this process, with the sleap-nn stand-in: the
 * message order of shared and transfer jobs, bad frames, refusals, cancel, a client that leaves,
 * failures, and a client that sends something other than what the worker asked for.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import { createLogger, silentLogger } from '../../src/log.js';
import { LIMITS } from '../../src/limits.js';
import type { JobRequest } from '../../src/protocol/job.js';
import { StorageConfig } from '../../src/storage/index.js';
import { receiveTransfer } from '../../src/transport/file-receive.js';
import { sendFile, sendPath } from '../../src/transport/file-send.js';
import { transferIdFromLabel } from '../../src/protocol/transfer.js';
import { WorkerSession, type SessionContext } from '../../src/worker/session.js';
import { FAKE_SLEAP_NN, readPredictions, readRecords, tempDir } from '../fixtures/fake-sleap-nn.js';
import { copySleapFile, copyTrainingConfig, writeLabelsNamingVideos } from '../helpers/sleap-data.js';
import { connectedPair } from '../transport/helpers/peers.js';
import { JobPeer } from './helpers/job-peer.js';

interface Setup {
  client: JobPeer;
  session: WorkerSession;
  share: string;
  workDir: string;
  record: string;
  slots: { used: number; max: number };
}

async function setup(
  t: TestContext,
  opts: {
    env?: NodeJS.ProcessEnv;
    executable?: string;
    max?: number;
    jobTypes?: ('train' | 'track')[];
    logger?: SessionContext['logger'];
    shutdownGraceMs?: number;
    inferenceCommand?: 'predict' | 'track';
  } = {},
): Promise<Setup> {
  const root = await tempDir(t);
  const share = path.join(root, 'share');
  const workDir = path.join(root, 'work');
  await mkdir(path.join(share, 'alice', 'proj'), { recursive: true });
  await mkdir(workDir);
  // Real files: the labels with their video beside them, sleap-nn's sample config, a model folder.
  // The labels name their video as the client saw it (/Volumes/vast, the client_base_path of
  // sharedTrain): the worker's --prefix-map must bring it to this share.
  await writeLabelsNamingVideos(path.join(share, 'alice', 'proj', 'labels.slp'), ['/Volumes/vast/alice/proj/small_robot.mp4']);
  await copySleapFile('video', path.join(share, 'alice', 'proj', 'small_robot.mp4'));
  await copyTrainingConfig(path.join(share, 'alice', 'proj', 'config.yaml'));
  await copyTrainingConfig(path.join(share, 'alice', 'models', 'm1', 'training_config.yaml'));
  await writeFile(path.join(share, 'alice', 'models', 'm1', 'best.ckpt'), 'ckpt');
  const record = path.join(root, 'record.jsonl');
  const slots = { used: 0, max: opts.max ?? 1 };
  const { offerer, answerer } = await connectedPair(t);
  const ctx: SessionContext = {
    workerName: 'gpu-test',
    storage: StorageConfig.fromToml({ vast: { base_path: share } }),
    healthyBackends: new Set(['vast']),
    jobTypes: new Set(opts.jobTypes ?? ['train', 'track']),
    executable: opts.executable ?? FAKE_SLEAP_NN,
    ...(opts.inferenceCommand ? { inferenceCommand: opts.inferenceCommand } : {}),
    workDir,
    env: { ...process.env, FAKE_SLEAP_NN_RECORD: record, ...opts.env },
    slots: {
      acquire: () => (slots.used < slots.max ? (slots.used++, true) : false),
      release: () => void slots.used--,
    },
    signaling: null,
    logger: opts.logger ?? silentLogger(),
    cancelGraceMs: 2_000,
    killGraceMs: 1_000,
    ...(opts.shutdownGraceMs !== undefined ? { shutdownGraceMs: opts.shutdownGraceMs } : {}),
  };
  const session = new WorkerSession(answerer, ctx);
  t.after(() => session.close('worker_shutdown'));
  return { client: new JobPeer(offerer), session, share, workDir, record, slots };
}

const sharedTrain = (jobId = 'j1', extra: Partial<JobRequest> = {}): JobRequest =>
  ({
    type: 'JOB_REQUEST',
    job_id: jobId,
    job_type: 'train',
    transfer: 'shared',
    storage: { storage_backend: 'vast', user_subdir: 'alice', client_base_path: '/Volumes/vast' },
    spec: { labels: 'proj/labels.slp', config_file: 'proj/config.yaml', output: 'proj/models', run_name: 'r1', max_epochs: 3 },
    ...extra,
  }) as JobRequest;

/** Resolves once the slot count has dropped back to zero (the job's cleanup ran). */
async function slotsFree(s: Setup): Promise<void> {
  for (let i = 0; i < 500 && s.slots.used > 0; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(s.slots.used, 0, 'the job slot was given back');
}

test('a shared-storage train job: paths validated, accepted, started, logs, progress, complete with relative outputs', async (t) => {
  const s = await setup(t);
  s.client.send(sharedTrain());
  const done = await s.client.next('JOB_COMPLETE');
  assert.deepEqual(done.outputs, [{ type: 'SHARED_OUTPUT_PATH', storage_backend: 'vast', user_subdir: 'alice', relative_path: 'proj/models/r1' }]);
  const types = s.client.of('j1').map((m) => m.type);
  assert.deepEqual(types.slice(0, 5), ['PATH_VALIDATED', 'PATH_VALIDATED', 'PATH_VALIDATED', 'JOB_ACCEPTED', 'JOB_STARTED']);
  assert.equal(types.at(-1), 'JOB_COMPLETE');
  assert.deepEqual(
    s.client.of('j1').filter((m) => m.type === 'JOB_PROGRESS').map((m) => m.type === 'JOB_PROGRESS' && m.epoch),
    [1, 2, 3],
  );
  assert.ok(s.client.of('j1').some((m) => m.type === 'JOB_LOG' && m.line.startsWith('Epoch 2/3')));
  assert.ok((await readFile(path.join(s.share, 'alice/proj/models/r1/best.ckpt'), 'utf8')).startsWith('FAKE-CKPT'));
  const [rec] = await readRecords(s.record);
  assert.ok(rec, 'sleap-nn ran');
  const i = rec.argv.indexOf('--prefix-map');
  assert.deepEqual(rec.argv.slice(i + 1, i + 3), ['/Volumes/vast/', `${s.share}/`], "the client mount is mapped to this worker's mount");
  assert.ok(rec.argv.includes('++trainer_config.save_ckpt=true'));
  assert.ok(rec.cwd.startsWith(s.workDir), 'sleap-nn runs in the job folder');
  await slotsFree(s);
});

test('a transfer job: UPLOAD_REQUEST, files staged under their names, outputs sent back after JOB_COMPLETE', async (t) => {
  const s = await setup(t);
  const local = await tempDir(t);
  // A package file: its frames travel inside it (sending the videos of other labels files is issue 10's part 5).
  await copySleapFile('pkg', path.join(local, 'my labels.slp'));
  await copyTrainingConfig(path.join(local, 'cfg.yaml'));
  const dest = await tempDir(t);
  s.client.send({ type: 'JOB_REQUEST', job_id: 'tj', job_type: 'train', transfer: 'webrtc', spec: { labels: 'my labels.slp', config_file: 'cfg.yaml', output: 'output', run_name: 'r', max_epochs: 2 } });
  const upload = await s.client.next('UPLOAD_REQUEST');
  assert.deepEqual(upload.files.map((f) => f.field), ['labels', 'config_file']);
  const names: Record<string, string> = { labels: 'my labels.slp', config_file: 'cfg.yaml' };
  // Output channels may open before JOB_COMPLETE is read; collect them from the start.
  const channels = new Map<string, Parameters<typeof receiveTransfer>[0]>();
  s.client.peer.onChannel((ch) => channels.set(transferIdFromLabel(ch.label) ?? '', ch));
  for (const f of upload.files) await sendFile(s.client.peer, path.join(local, names[f.field] as string), { transferId: f.transfer_id, name: names[f.field] as string });
  const complete = await s.client.next('JOB_COMPLETE');
  assert.equal(complete.transfer, 'webrtc');
  const out = complete.transfer === 'webrtc' ? complete.outputs : [];
  assert.deepEqual(out.map((o) => [o.relative_path, o.kind]), [['output/r', 'directory']]);
  for (let i = 0; i < 200 && !channels.has(out[0]?.transfer_id ?? ''); i++) await new Promise((r) => setTimeout(r, 10));
  const got = await receiveTransfer(channels.get(out[0]?.transfer_id ?? '') as Parameters<typeof receiveTransfer>[0], { destDir: dest });
  assert.equal(got.path, path.join(dest, 'r'));
  assert.match(await readFile(path.join(dest, 'r', 'best.ckpt'), 'utf8'), /FAKE-CKPT run=r /);
  assert.ok((await readdir(path.join(dest, 'r'))).includes('labels_gt.train.0.slp'), 'the whole run folder came back');
  const types = s.client.of('tj').map((m) => m.type);
  assert.deepEqual([types[0], types[1], types[2]], ['JOB_ACCEPTED', 'UPLOAD_REQUEST', 'JOB_STARTED']);
  await slotsFree(s);
  assert.deepEqual(await readdir(s.workDir), [], 'the staging folder is removed');
});

test('frames that are not valid job messages get an error with a code, and the session keeps working', async (t) => {
  const s = await setup(t);
  const bad: [unknown, string][] = [
    ['not json', 'INVALID_JSON'],
    [new Uint8Array([1, 2, 3]), 'INVALID_MESSAGE'],
    [{ type: 'RUN_SHELL', cmd: 'rm -rf /' }, 'UNKNOWN_TYPE'],
    [{ type: 'JOB_REQUEST', job_id: 'x' }, 'INVALID_MESSAGE'],
    [{ ...sharedTrain('x'), spec: { labels: 'a\0b', config_file: 'c', output: '', run_name: 'r' } }, 'INVALID_MESSAGE'],
    [{ ...sharedTrain('x'), extra_field: 1 }, 'INVALID_MESSAGE'],
    [[1, 2], 'INVALID_MESSAGE'],
    [JSON.stringify({ type: 'JOB_CANCEL', job_id: 'x', pad: 'x'.repeat(LIMITS.jobMessageMaxBytes) }), 'FRAME_TOO_LARGE'],
  ];
  for (const [frame, code] of bad) {
    const before = s.client.received.length;
    s.client.send(frame);
    const reply = await s.client.next('error', () => s.client.received.length > before);
    assert.equal(reply.code, code, `reply to ${String(frame).slice(0, 60)}`);
    assert.ok(reply.message.length > 10);
  }
  s.client.send(sharedTrain('after'));
  await s.client.next('JOB_COMPLETE', (m) => m.job_id === 'after');
});

test('busy, unknown job types, a repeated job id and an unclaimable reservation are rejected with their code', async (t) => {
  const s = await setup(t, { max: 1, jobTypes: ['train'], env: { FAKE_SLEAP_NN_EPOCH_DELAY_MS: '200' } });
  s.client.send({ type: 'JOB_REQUEST', job_id: 'trk', job_type: 'track', transfer: 'shared', storage: { storage_backend: 'vast', user_subdir: 'alice' }, spec: { data: 'd', models: ['m'], output: 'o' } });
  assert.equal((await s.client.next('JOB_REJECTED', (m) => m.job_id === 'trk')).code, 'NO_MATCHING_WORKER');
  const long = sharedTrain('long', { spec: { labels: 'proj/labels.slp', config_file: 'proj/config.yaml', output: 'proj/models', run_name: 'l', max_epochs: 1000 } } as Partial<JobRequest>);
  s.client.send(long);
  await s.client.next('JOB_STARTED', (m) => m.job_id === 'long');
  s.client.send(long);
  assert.equal((await s.client.next('JOB_REJECTED', (m) => m.job_id === 'long')).code, 'INVALID_MESSAGE');
  s.client.send(sharedTrain('second'));
  const busy = await s.client.next('JOB_REJECTED', (m) => m.job_id === 'second');
  assert.equal(busy.code, 'WORKER_BUSY');
  s.client.send({ type: 'JOB_CANCEL', job_id: 'long' });
  await s.client.next('JOB_CANCELLED', (m) => m.job_id === 'long');
  await slotsFree(s);
  s.client.send(sharedTrain('routed', { reservation_id: 'res-1' } as Partial<JobRequest>));
  assert.equal((await s.client.next('JOB_REJECTED', (m) => m.job_id === 'routed')).code, 'RESERVATION_NOT_FOUND');
  await slotsFree(s);
});

test('JOB_CANCEL stops sleap-nn (SIGINT) and answers JOB_CANCELLED; the slot is free again', async (t) => {
  const s = await setup(t, { env: { FAKE_SLEAP_NN_EPOCH_DELAY_MS: '300' } });
  s.client.send(sharedTrain('c', { spec: { labels: 'proj/labels.slp', config_file: 'proj/config.yaml', output: 'proj/models', run_name: 'c', max_epochs: 1000 } } as Partial<JobRequest>));
  await s.client.next('JOB_PROGRESS', (m) => m.job_id === 'c');
  s.client.send({ type: 'JOB_CANCEL', job_id: 'c' });
  const cancelled = await s.client.next('JOB_CANCELLED', (m) => m.job_id === 'c');
  assert.equal(cancelled.reason, 'client_request');
  assert.ok(s.client.of('c').some((m) => m.type === 'JOB_LOG' && m.line === 'KeyboardInterrupt'), 'sleap-nn got SIGINT');
  assert.equal(s.client.of('c').filter((m) => m.type === 'JOB_COMPLETE' || m.type === 'JOB_FAILED').length, 0);
  await slotsFree(s);
});

test('a client that goes away mid-job has its job cancelled and the slot given back', async (t) => {
  const s = await setup(t, { env: { FAKE_SLEAP_NN_EPOCH_DELAY_MS: '300' } });
  s.client.send(sharedTrain('gone', { spec: { labels: 'proj/labels.slp', config_file: 'proj/config.yaml', output: 'proj/models', run_name: 'g', max_epochs: 1000 } } as Partial<JobRequest>));
  await s.client.next('JOB_PROGRESS', (m) => m.job_id === 'gone');
  assert.equal(s.slots.used, 1);
  s.client.peer.close();
  await slotsFree(s);
  assert.equal(s.session.activeJobs, 0);
  // sleap-nn was stopped, not left running: it never reached its end-of-training evaluation.
  await assert.rejects(readFile(path.join(s.share, 'alice/proj/models/g/labels_pr.val.0.slp')));
});

test('a failing sleap-nn gives JOB_FAILED with its exit code and last lines; a missing one names [worker] sleap_nn', async (t) => {
  const s = await setup(t, { env: { FAKE_SLEAP_NN_FAIL: '1' } });
  s.client.send(sharedTrain('f'));
  const failed = await s.client.next('JOB_FAILED', (m) => m.job_id === 'f');
  assert.equal(failed.exit_code, 3);
  assert.equal(failed.code, 'SLEAP_NN_FAILED');
  assert.match(failed.message, /exited with code 3/);
  assert.ok(failed.last_lines.some((l) => l.includes('OutOfMemoryError')));
  await slotsFree(s);

  const m = await setup(t, { executable: '/nonexistent/sleap-nn' });
  m.client.send(sharedTrain('nf'));
  const notFound = await m.client.next('JOB_FAILED', (x) => x.job_id === 'nf');
  assert.equal(notFound.code, 'SLEAP_NN_NOT_FOUND');
  assert.equal(notFound.exit_code, null);
  assert.match(notFound.message, /\[worker\] sleap_nn/);
  await slotsFree(m);
});

test('a transfer client that sends another name or kind than asked gets JOB_FAILED and nothing lands outside staging', async (t) => {
  const s = await setup(t);
  const local = await tempDir(t);
  await writeFile(path.join(local, 'labels.slp'), 'x');
  await mkdir(path.join(local, 'folder'));
  await writeFile(path.join(local, 'folder', 'f'), 'x');
  const cases: [string, string, string][] = [
    ['wrong-name', path.join(local, 'labels.slp'), 'other.slp'],
    ['traversal', path.join(local, 'labels.slp'), '../../escaped.slp'],
    ['folder-for-file', path.join(local, 'folder'), 'labels.slp'],
  ];
  for (const [jobId, source, name] of cases) {
    s.client.send({ type: 'JOB_REQUEST', job_id: jobId, job_type: 'train', transfer: 'webrtc', spec: { labels: 'labels.slp', config_file: 'c.yaml', output: 'out', run_name: 'r' } });
    const upload = await s.client.next('UPLOAD_REQUEST', (m) => m.job_id === jobId);
    const labels = upload.files.find((f) => f.field === 'labels');
    await assert.rejects(sendPath(s.client.peer, source, { transferId: labels?.transfer_id as string, name }), (e: { code?: string }) => e.code === 'TRANSFER_PROTOCOL');
    const failed = await s.client.next('JOB_FAILED', (m) => m.job_id === jobId);
    assert.equal(failed.code, 'TRANSFER_PROTOCOL', `${jobId}: ${failed.message}`);
    assert.equal(failed.exit_code, null);
    await slotsFree(s);
  }
  assert.deepEqual(await readdir(s.workDir), [], 'staging folders are removed');
  assert.deepEqual((await readdir(path.dirname(s.workDir))).sort(), ['share', 'work'], 'nothing landed beside the work folder');
  assert.equal((await readRecords(s.record)).length, 0, 'sleap-nn never ran');
});

test('shutdown (SIGTERM) while outputs upload: bounded by the grace period, and the log says the upload was cancelled', async (t) => {
  const lines: string[] = [];
  const logger = createLogger({
    name: 'worker',
    format: 'json',
    destination: new Writable({
      write(chunk: Buffer, _e, cb) {
        for (const l of chunk.toString('utf8').split('\n')) if (l) lines.push((JSON.parse(l) as { msg: string }).msg);
        cb();
      },
    }),
  });
  const s = await setup(t, { logger, shutdownGraceMs: 500 });
  const local = await tempDir(t);
  await copySleapFile('pkg', path.join(local, 'labels.slp'));
  await copyTrainingConfig(path.join(local, 'cfg.yaml'));
  s.client.send({ type: 'JOB_REQUEST', job_id: 'up', job_type: 'train', transfer: 'webrtc', spec: { labels: 'labels.slp', config_file: 'cfg.yaml', output: 'output', run_name: 'r', max_epochs: 1 } });
  const upload = await s.client.next('UPLOAD_REQUEST');
  const names: Record<string, string> = { labels: 'labels.slp', config_file: 'cfg.yaml' };
  for (const f of upload.files) await sendFile(s.client.peer, path.join(local, names[f.field] as string), { transferId: f.transfer_id, name: names[f.field] as string });
  await s.client.next('JOB_COMPLETE');
  // This client never takes its outputs (a stalled laptop): the upload cannot finish on its own
  // before the transfer start timeout (a minute), far past any scheduler's kill delay.
  const t0 = Date.now();
  await s.session.close('worker_shutdown');
  const took = Date.now() - t0;
  assert.ok(took < 10_000, `shutdown waited ${took} ms for an upload, past its 0.5 s grace`);
  assert.ok(lines.some((l) => /shutdown: waiting up to 0\.5 s for the outputs of job\(s\) up to finish uploading/.test(l)), lines.join('\n'));
  assert.ok(lines.some((l) => /shutdown: job up: cancelled the upload of its outputs after the 0\.5 s grace period/.test(l)), lines.join('\n'));
  await slotsFree(s);
});

test('an existing run folder is refused before sleap-nn starts (RUN_FOLDER_EXISTS); a folder claimed for a refused job is removed', async (t) => {
  const s = await setup(t);
  await mkdir(path.join(s.share, 'alice/proj/models/taken'), { recursive: true });
  await writeFile(path.join(s.share, 'alice/proj/models/taken/best.ckpt'), 'an older model');
  s.client.send(sharedTrain('dup', { spec: { labels: 'proj/labels.slp', config_file: 'proj/config.yaml', output: 'proj/models', run_name: 'taken', max_epochs: 1 } } as Partial<JobRequest>));
  const rejected = await s.client.next('JOB_REJECTED', (m) => m.job_id === 'dup');
  assert.equal(rejected.code, 'RUN_FOLDER_EXISTS');
  const pathError = await s.client.next('PATH_ERROR', (m) => m.job_id === 'dup');
  assert.equal(pathError.field, 'output');
  assert.match(pathError.message, /run folder 'proj\/models\/taken' already exists.*--run-name/);
  assert.ok(!pathError.message.includes(s.share), 'the worker path is not shown');
  await slotsFree(s);
  assert.equal(await readFile(path.join(s.share, 'alice/proj/models/taken/best.ckpt'), 'utf8'), 'an older model');
  assert.deepEqual(await readdir(path.join(s.share, 'alice/proj/models')), ['taken'], 'no taken-1 beside it');
  assert.equal((await readRecords(s.record)).length, 0, 'sleap-nn never ran');

  // Claimed by the check, then refused (no such reservation): the empty folder does not stay behind.
  s.client.send(sharedTrain('routed', { reservation_id: 'res-9' } as Partial<JobRequest>));
  assert.equal((await s.client.next('JOB_REJECTED', (m) => m.job_id === 'routed')).code, 'RESERVATION_NOT_FOUND');
  await slotsFree(s);
  assert.deepEqual(await readdir(path.join(s.share, 'alice/proj/models')), ['taken']);
  // ... so the same run name works at once.
  s.client.send(sharedTrain('again'));
  await s.client.next('JOB_COMPLETE', (m) => m.job_id === 'again');
  assert.ok((await readdir(path.join(s.share, 'alice/proj/models/r1'))).includes('best.ckpt'));
});

test('inference runs the command found at worker start: predict, or track on an old sleap-nn', async (t) => {
  for (const command of ['predict', 'track'] as const) {
    const s = await setup(t, { inferenceCommand: command });
    s.client.send({
      type: 'JOB_REQUEST',
      job_id: `i-${command}`,
      job_type: 'track',
      transfer: 'shared',
      storage: { storage_backend: 'vast', user_subdir: 'alice' },
      spec: { data: 'proj/small_robot.mp4', models: ['models/m1'], output: 'proj/small_robot.predictions.slp' },
    });
    await s.client.next('JOB_COMPLETE', (m) => m.job_id === `i-${command}`);
    const [rec] = await readRecords(s.record);
    assert.equal(rec?.argv[0], command);
    assert.equal(rec?.argv.at(-2), '--output_path');
    const predictions = await readPredictions(path.join(s.share, 'alice/proj/small_robot.predictions.slp'));
    assert.deepEqual([predictions.videos, predictions.frames], [[['small_robot.mp4']], 40]);
    await slotsFree(s);
  }
});

test('two concurrent jobs with one run name: one trains, the other is refused with RUN_FOLDER_EXISTS', async (t) => {
  const s = await setup(t, { max: 2, env: { FAKE_SLEAP_NN_EPOCH_DELAY_MS: '100' } });
  const twin = (id: string): JobRequest => sharedTrain(id, { spec: { labels: 'proj/labels.slp', config_file: 'proj/config.yaml', output: 'proj/models', run_name: 'twin', max_epochs: 2 } } as Partial<JobRequest>);
  s.client.send(twin('a'));
  s.client.send(twin('b'));
  const end = (id: string) => s.client.of(id).find((m) => m.type === 'JOB_REJECTED' || m.type === 'JOB_COMPLETE' || m.type === 'JOB_FAILED');
  for (let i = 0; i < 3000 && !(end('a') && end('b')); i++) await new Promise((r) => setTimeout(r, 20));
  const ends = [end('a'), end('b')];
  assert.deepEqual(ends.map((m) => m?.type).sort(), ['JOB_COMPLETE', 'JOB_REJECTED'], JSON.stringify(ends));
  const refused = ends.find((m) => m?.type === 'JOB_REJECTED');
  assert.equal(refused?.type === 'JOB_REJECTED' && refused.code, 'RUN_FOLDER_EXISTS');
  assert.deepEqual(await readdir(path.join(s.share, 'alice/proj/models')), ['twin']);
  await slotsFree(s);
});
