/**
 * No worker path reaches a client: each error path of a job is forced for real (a job folder that
 * cannot be made, a staging folder gone while files arrive, a file in the way, a confinement
 * failure at use time), and everything the worker sent, on the control channel and on every
 * transfer channel, is searched for the worker's paths. Also: a job folder that cannot be removed
 * is logged, not hidden.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readdir, rm, rmdir, writeFile } from 'node:fs/promises';
import { Writable } from 'node:stream';
import os from 'node:os';
import path from 'node:path';
import { createLogger } from '../../src/log.js';
import type { JobRequest } from '../../src/protocol/job.js';
import { sendFile } from '../../src/transport/file-send.js';
import { LocalPaths, peerError } from '../../src/worker/peer-errors.js';
import { SleapRtcError } from '../../src/errors.js';
import { gatedSleapNn, sessionEnv, sharedTrain, type SessionEnv } from './helpers/session-env.js';

const transferTrain = (jobId: string, labels = 'labels.slp'): JobRequest =>
  ({
    type: 'JOB_REQUEST',
    job_id: jobId,
    job_type: 'train',
    transfer: 'webrtc',
    spec: { labels, config_file: 'config.yaml', output: 'out', run_name: 'r1', max_epochs: 1 },
  }) as JobRequest;

/** No frame the worker sent shows a path of the worker (its work folder, its share, the temp root). */
function assertNoWorkerPath(env: SessionEnv, label: string): void {
  const worker = [env.root, env.workDir, env.share, os.tmpdir() + '/'];
  for (const frame of env.sent) {
    for (const p of worker) assert.ok(!frame.includes(p), `${label}: the worker sent its path ${p} in ${frame.slice(0, 400)}`);
  }
}

/** The client's side of a transfer job: answer UPLOAD_REQUEST after `before` ran; collect TRANSFER_ERRORs. */
async function upload(t: TestContext, env: SessionEnv, jobId: string, names: Record<string, string>, before: () => Promise<void>): Promise<void> {
  const request = await env.client.next('UPLOAD_REQUEST', (m) => m.job_id === jobId);
  await before();
  const local = await mkdtemp(path.join(os.tmpdir(), 'sleap-rtc-client-'));
  t.after(() => rm(local, { recursive: true, force: true }));
  for (const f of request.files) {
    const name = names[f.field] as string;
    const file = path.join(local, path.basename(name));
    await writeFile(file, `${f.field} bytes`);
    await sendFile(env.client.peer, file, { transferId: f.transfer_id, name }).catch(() => {});
  }
}

test('a job folder that cannot be made: a coded refusal that names no worker path', async (t) => {
  const env = await sessionEnv(t);
  await rmdir(env.workDir);
  env.client.send(transferTrain('t1'));
  const rejected = await env.client.next('JOB_REJECTED');
  assert.equal(rejected.code, 'INTERNAL');
  assert.match(rejected.message, /^The worker could not create the job's folder: a folder the worker needs is missing \(ENOENT\)\.$/);
  env.client.send(sharedTrain('s1'));
  const failed = await env.client.next('JOB_FAILED', (m) => m.job_id === 's1');
  assert.match(failed.message, /^The worker could not create the job's folder: .*\(ENOENT\)\.$/);
  assertNoWorkerPath(env, 'mkdtemp');
});

test('the staging folder gone while files arrive: JOB_FAILED and TRANSFER_ERROR without the folder\'s path', async (t) => {
  const env = await sessionEnv(t);
  env.client.send(transferTrain('t2'));
  await upload(t, env, 't2', { labels: 'labels.slp', config_file: 'config.yaml' }, async () => {
    for (const d of await readdir(env.workDir)) await rm(path.join(env.workDir, d), { recursive: true, force: true });
  });
  const failed = await env.client.next('JOB_FAILED', (m) => m.job_id === 't2');
  assert.match(failed.message, /^The input files did not arrive: /);
  assert.ok(env.sent.some((f) => f.includes('"type":"TRANSFER_ERROR"')), 'the sender was told on the transfer channel');
  assertNoWorkerPath(env, 'staging gone');
});

test('a file in the way of a received one (an fs error): the errno in words, no path', async (t) => {
  const env = await sessionEnv(t);
  env.client.send(transferTrain('t3', 'sub/labels.slp'));
  await upload(t, env, 't3', { labels: 'sub/labels.slp', config_file: 'config.yaml' }, async () => {
    const [dir] = await readdir(env.workDir);
    await writeFile(path.join(env.workDir, dir as string, 'sub'), 'in the way');
  });
  const failed = await env.client.next('JOB_FAILED', (m) => m.job_id === 't3');
  assert.match(failed.message, /^The input files did not arrive: .*\((EEXIST|ENOTDIR)\)\.$/);
  assertNoWorkerPath(env, 'file in the way');
});

test('a confinement failure at use time names the client\'s path only', async (t) => {
  const gated = await gatedSleapNn(t);
  const env = await sessionEnv(t, { executable: gated.executable });
  env.client.send(sharedTrain('s2'));
  await env.client.next('JOB_STARTED');
  await rm(path.join(env.share, 'alice', 'out'), { recursive: true });
  await writeFile(path.join(env.share, 'alice', 'out'), 'a file where the output folder was');
  await writeFile(path.join(gated.gate, 'go'), '');
  const failed = await env.client.next('JOB_FAILED', (m) => m.job_id === 's2', 30_000);
  assert.equal(failed.code, 'PATH_CHANGED');
  assert.match(failed.message, /^output: 'out\/r1' is not a folder/);
  assertNoWorkerPath(env, 'confinement');
});

test('peerError: a table of raw errors, each mapped to a code and a sentence without the local path', () => {
  const local = new LocalPaths(['/scratch/sleap-rtc', '/mnt/vast']);
  const fsError = (code: string, p: string): NodeJS.ErrnoException => Object.assign(new Error(`${code}: failed, open '${p}'`), { code });
  const cases: [unknown, string, RegExp][] = [
    [fsError('ENOSPC', '/scratch/sleap-rtc/job-1/x.part'), 'INTERNAL', /: the worker's disk is full \(ENOSPC\)\.$/],
    [fsError('EACCES', '/mnt/vast/alice'), 'INTERNAL', /permission denied for the worker's user \(EACCES\)/],
    [new SleapRtcError('TRANSFER_IO', "Transfer x: could not write the received data (EIO EIO: i/o error, write '/scratch/sleap-rtc/a')."), 'TRANSFER_IO', /input\/output error .*\(EIO\)/],
    [new SleapRtcError('TRANSFER_DEST_EXISTS', '/scratch/sleap-rtc/job-1/labels.slp already exists; remove it'), 'TRANSFER_DEST_EXISTS', /already in the job's folder/],
    [new SleapRtcError('PATH_VALIDATION', "backend base '/scratch/sleap-rtc/job-1' cannot be opened (ENOENT)"), 'PATH_VALIDATION', /a folder the worker needs is missing \(ENOENT\)/],
    [new SleapRtcError('TRANSFER_HASH_MISMATCH', '"labels.slp": the SHA-256 of the received bytes (ab) is not the one the sender announced (cd).'), 'TRANSFER_HASH_MISMATCH', /"labels\.slp": the SHA-256/],
    [new SleapRtcError('TRANSFER_PROTOCOL', 'mentions /mnt/vast/alice by mistake'), 'TRANSFER_PROTOCOL', /an unexpected error on the worker/],
    [new Error('boom at /mnt/vast'), 'INTERNAL', /an unexpected error on the worker/],
    ['a string', 'INTERNAL', /an unexpected error/],
  ];
  for (const [err, code, sentence] of cases) {
    const e = peerError(err, 'Step', local);
    assert.equal(e.code, code, String(err));
    assert.match(e.message, /^Step: /);
    assert.match(e.message, sentence, e.message);
    assert.ok(!e.message.includes('/scratch/sleap-rtc') && !e.message.includes('/mnt/vast'), e.message);
  }
});

test('a job folder that cannot be removed is logged with its path, not hidden', async (t) => {
  const probe = path.join(await mkdtemp(path.join(os.tmpdir(), 'sleap-rtc-chattr-')), 'f');
  await writeFile(probe, '');
  const canPin = spawnSync('chattr', ['+i', probe]).status === 0;
  spawnSync('chattr', ['-i', probe]);
  await rm(path.dirname(probe), { recursive: true, force: true });
  if (!canPin) {
    t.skip('needs root and a file system with immutable files (chattr +i) to make a removal fail');
    return;
  }
  let log = '';
  const logger = createLogger({ name: 'worker', format: 'json', destination: new Writable({ write: (c: Buffer, _e, cb) => ((log += c.toString()), cb()) }) });
  const gated = await gatedSleapNn(t);
  const env = await sessionEnv(t, { executable: gated.executable, logger });
  env.client.send(sharedTrain('s3'));
  await env.client.next('JOB_STARTED');
  const [dir] = await readdir(env.workDir);
  const pinned = path.join(env.workDir, dir as string, 'pinned');
  await writeFile(pinned, '');
  assert.equal(spawnSync('chattr', ['+i', pinned]).status, 0);
  t.after(() => void spawnSync('chattr', ['-i', pinned]));
  await writeFile(path.join(gated.gate, 'go'), '');
  await env.client.next('JOB_COMPLETE', (m) => m.job_id === 's3', 30_000);
  for (let i = 0; i < 500 && !log.includes('could not remove its folder'); i++) await new Promise((r) => setTimeout(r, 10));
  assert.match(log, /"level":40.*job s3: could not remove its folder [^ ]+ \([A-Z]+: .*\); the worker's next start-up sweep removes it/);
  spawnSync('chattr', ['-i', pinned]);
});

