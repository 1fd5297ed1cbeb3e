/**
 * A hand-written, hostile client against a real `sleap-rtc worker` process: raw JOB_REQUESTs
 * with traversal in user_subdir and in every path, symlinks leading out of the share, bad
 * frames, forged reservations. The worker refuses each with PATH_ERROR (or the right code), never
 * runs sleap-nn for them, writes nothing outside its base, and keeps serving honest requests.
 * Also: a legacy request without storage fields, and a reservation routed by the server.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { access, mkdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { JobRequest } from '../../src/protocol/job.js';
import { connectToPeer } from '../../src/transport/peer-connection.js';
import { requestWorker } from '../../src/transport/routing-client.js';
import { SignalingClient } from '../../src/transport/signaling-client.js';
import { readRecords } from '../fixtures/fake-sleap-nn.js';
import { JobPeer } from '../worker/helpers/job-peer.js';
import { labShare, type Room, serverForFile, startWorker } from './helpers/jobs-env.js';
import { tree } from '../helpers/fs-tree.js';

const server = serverForFile();

async function handWritten(t: TestContext, room: Room, worker: string): Promise<{ peer: JobPeer; signaling: SignalingClient }> {
  const signaling = await SignalingClient.connect({ serverUrl: room.serverUrl, roomId: room.roomId, token: room.token, role: 'client' });
  t.after(() => signaling.close());
  const pc = await connectToPeer({ signaler: signaling, remotePeerId: worker });
  t.after(() => pc.close());
  return { peer: new JobPeer(pc), signaling };
}

test('traversal in user_subdir and in every path is refused by rule; nothing is written outside the base and sleap-nn never runs', async (t) => {
  const lab = await labShare(t);
  const outside = path.join(lab.dir, 'outside');
  await mkdir(outside);
  await writeFile(path.join(outside, 'secret.slp'), 'secret');
  await symlink('../../outside', path.join(lab.share, 'alice', 'escape'));
  await symlink('../outside', path.join(lab.share, 'bob-link'));
  await symlink('../../../outside/secret.slp', path.join(lab.share, 'alice', 'proj', 'evil.slp'));
  const record = path.join(lab.dir, 'record.jsonl');
  const room = await server.newRoom();
  const worker = await startWorker(t, room, lab.dir, { name: 'target', toml: lab.workerToml, env: { FAKE_SLEAP_NN_RECORD: record } });
  const { peer } = await handWritten(t, room, 'target');
  const before = { outside: await tree(outside), share: await tree(lab.share) };

  const train = (id: string, user_subdir: string, spec: Partial<{ labels: string; config_file: string; output: string }>): JobRequest => ({
    type: 'JOB_REQUEST',
    job_id: id,
    job_type: 'train',
    transfer: 'shared',
    storage: { storage_backend: 'vast', user_subdir },
    spec: { labels: 'proj/labels.slp', config_file: 'proj/config.yaml', output: 'proj/models', run_name: 'r', ...spec },
  });
  const attacks: [JobRequest, string, string][] = [
    [train('u1', '..', {}), 'user_subdir', 'outside_base'],
    [train('u2', '../outside', {}), 'user_subdir', 'outside_base'],
    [train('u3', 'alice/../../outside', {}), 'user_subdir', 'outside_base'],
    [train('u4', '/etc', {}), 'user_subdir', 'outside_base'],
    [train('u5', 'bob-link', {}), 'user_subdir', 'outside_base'],
    [train('u6', '..\\..', {}), 'user_subdir', 'invalid'],
    [train('p1', 'alice', { labels: '../../outside/secret.slp' }), 'labels', 'outside_base'],
    [train('p2', 'alice', { labels: '/etc/passwd' }), 'labels', 'outside_base'],
    [train('p3', 'alice', { labels: 'escape/secret.slp' }), 'labels', 'outside_base'],
    [train('p4', 'alice', { labels: 'proj/evil.slp' }), 'labels', 'outside_base'],
    [train('p5', 'alice', { config_file: 'proj/../../../outside/secret.slp' }), 'config_file', 'outside_base'],
    [train('p6', 'alice', { output: '../../outside/pwned' }), 'output', 'outside_base'],
    [train('p7', 'alice', { output: 'escape/pwned' }), 'output', 'outside_base'],
    [train('p8', 'alice', { output: '/tmp/pwned' }), 'output', 'outside_base'],
    [{ type: 'JOB_REQUEST', job_id: 'k1', job_type: 'track', transfer: 'shared', storage: { storage_backend: 'vast', user_subdir: 'alice' }, spec: { data: 'proj/video.mp4', models: ['escape'], output: 'escape/p.slp' } }, 'models.0', 'outside_base'],
    [{ type: 'JOB_REQUEST', job_id: 'w1', job_type: 'train', transfer: 'webrtc', spec: { labels: '../../../outside/x.slp', config_file: 'c.yaml', output: 'o', run_name: 'r' } }, 'labels', 'outside_base'],
    [{ type: 'JOB_REQUEST', job_id: 'w2', job_type: 'train', transfer: 'webrtc', spec: { labels: 'l.slp', config_file: 'c.yaml', output: '/tmp/o', run_name: 'r' } }, 'output', 'outside_base'],
  ];
  for (const [request, field, rule] of attacks) {
    peer.send(request);
    const rejected = await peer.next('JOB_REJECTED', (m) => m.job_id === request.job_id);
    assert.equal(rejected.code, 'PATH_VALIDATION', request.job_id);
    const errors = peer.of(request.job_id).filter((m) => m.type === 'PATH_ERROR');
    assert.ok(
      errors.some((e) => e.type === 'PATH_ERROR' && e.field === field && e.rule === rule),
      `${request.job_id}: expected ${field}/${rule}, got ${JSON.stringify(errors)}`,
    );
    for (const m of peer.of(request.job_id)) assert.ok(!JSON.stringify(m).includes(lab.share), `worker path leaked: ${JSON.stringify(m)}`);
  }
  // Garbage on the same connection gets coded errors; the worker stays up.
  for (const frame of ['{', '{"type":"JOB_REQUEST"}', JSON.stringify({ type: 'EXEC', cmd: 'id' })]) {
    const n = peer.received.length;
    peer.send(frame);
    await peer.next('error', () => peer.received.length > n);
  }
  assert.deepEqual(await readRecords(record), [], 'sleap-nn never ran for a refused request');
  assert.deepEqual(await tree(outside), before.outside, 'nothing written outside the base');
  assert.deepEqual(await tree(lab.share), before.share, 'nothing created inside the base either');
  await assert.rejects(access('/tmp/pwned'));
  assert.equal(worker.child.exitCode, null, 'the worker is still running');

  peer.send(train('honest', 'alice', {}));
  const done = await peer.next('JOB_COMPLETE', (m) => m.job_id === 'honest');
  assert.equal(done.transfer, 'shared');
  assert.equal((await readRecords(record)).length, 1);
});

test('a legacy request without storage fields runs on the worker\'s SHARED_STORAGE_ROOT as backend `default`', async (t) => {
  const lab = await labShare(t);
  const room = await server.newRoom();
  await startWorker(t, room, lab.dir, { name: 'old-style', env: { SHARED_STORAGE_ROOT: path.join(lab.share, 'alice') } });
  const { peer } = await handWritten(t, room, 'old-style');
  peer.send({ type: 'JOB_REQUEST', job_id: 'legacy', job_type: 'track', spec: { data: 'proj/video.mp4', models: ['models/m1'], output: 'proj/legacy.slp' } });
  const accepted = await peer.next('JOB_ACCEPTED', (m) => m.job_id === 'legacy');
  assert.deepEqual(accepted, { type: 'JOB_ACCEPTED', job_id: 'legacy', transfer: 'shared', storage_backend: 'default', user_subdir: '' });
  const done = await peer.next('JOB_COMPLETE', (m) => m.job_id === 'legacy');
  assert.deepEqual(done.transfer === 'shared' && done.outputs, [{ type: 'SHARED_OUTPUT_PATH', storage_backend: 'default', user_subdir: '', relative_path: 'proj/legacy.slp' }]);
  await access(path.join(lab.share, 'alice/proj/legacy.slp'));
});

test('a routed job: the worker claims the reservation before running; a forged reservation is refused', async (t) => {
  const lab = await labShare(t);
  const room = await server.newRoom();
  const worker = await startWorker(t, room, lab.dir, { name: 'routed', toml: lab.workerToml });
  const { peer, signaling } = await handWritten(t, room, 'routed');
  const request = requestWorker(signaling, { jobType: 'train', requiredStorage: 'vast' });
  const assignment = await request.assigned();
  assert.equal(assignment.worker.peer_id, 'routed');
  const base: JobRequest = {
    type: 'JOB_REQUEST',
    job_id: 'forged',
    job_type: 'train',
    transfer: 'shared',
    storage: { storage_backend: 'vast', user_subdir: 'alice' },
    spec: { labels: 'proj/labels.slp', config_file: 'proj/config.yaml', output: 'proj/models', run_name: 'rr' },
  };
  peer.send({ ...base, reservation_id: 'not-a-real-reservation' });
  const refused = await peer.next('JOB_REJECTED', (m) => m.job_id === 'forged');
  assert.equal(refused.code, 'RESERVATION_NOT_FOUND');
  peer.send({ ...base, job_id: 'claimed', reservation_id: assignment.reservationId });
  await peer.next('JOB_ACCEPTED', (m) => m.job_id === 'claimed');
  await peer.next('JOB_COMPLETE', (m) => m.job_id === 'claimed');
  await worker.waitFor(/job claimed completed/);
  await request.release();
});
