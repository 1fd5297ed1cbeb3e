/** A worker in a room (in this process, real server and WebRTC): advertising, status, who may connect, shutdown. */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, readdir } from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import { parseConfig } from '../../src/config/index.js';
import { createLogger } from '../../src/log.js';
import type { PeerInfo } from '../../src/protocol/common.js';
import { startSignalingServer } from '../../src/signaling/server.js';
import { connectToPeer } from '../../src/transport/peer-connection.js';
import { SignalingClient } from '../../src/transport/signaling-client.js';
import { startWorker } from '../../src/worker/worker.js';
import { FAKE_SLEAP_NN, tempDir } from '../fixtures/fake-sleap-nn.js';
import { copySleapFile, copyTrainingConfig } from '../helpers/sleap-data.js';
import { JobPeer } from './helpers/job-peer.js';

async function setup(t: TestContext) {
  const dir = await tempDir(t);
  await mkdir(path.join(dir, 'share', 'alice'), { recursive: true });
  await copySleapFile('pkg', path.join(dir, 'share', 'alice', 'labels.slp'));
  await copyTrainingConfig(path.join(dir, 'share', 'alice', 'config.yaml'));
  const toml = `
[storage.vast]
base_path = ${JSON.stringify(path.join(dir, 'share'))}
[storage.offline]
base_path = ${JSON.stringify(path.join(dir, 'not-mounted'))}
[worker]
sleap_nn = ${JSON.stringify(FAKE_SLEAP_NN)}
max_concurrent_jobs = 1
job_types = ["train"]
work_dir = ${JSON.stringify(path.join(dir, 'work'))}
`;
  const config = parseConfig(toml, 'worker.toml', {});
  const server = await startSignalingServer({ host: '127.0.0.1', port: 0 });
  t.after(() => server.close());
  const room = await server.createRoom();
  const base = { serverUrl: server.url, roomId: room.room_id, token: room.token };
  const logs = captureLog();
  const worker = await startWorker({ config, ...base, name: 'gpu-7', gpu: null, logger: logs.logger, env: { ...process.env, FAKE_SLEAP_NN_EPOCH_DELAY_MS: '200' } });
  t.after(() => worker.close());
  const join = async (role: 'client' | 'worker', peerId?: string): Promise<SignalingClient> => {
    const c = await SignalingClient.connect({ ...base, role, ...(peerId ? { peerId } : {}) });
    t.after(() => c.close());
    return c;
  };
  return { worker, join, logs, dir };
}

/** A real logger whose lines a test can wait for. */
function captureLog() {
  const lines: string[] = [];
  const waiters = new Set<() => void>();
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString('utf8').split('\n')) if (l) lines.push((JSON.parse(l) as { msg: string }).msg);
      for (const w of [...waiters]) w();
      cb();
    },
  });
  return {
    logger: createLogger({ name: 'worker', format: 'json', level: 'debug', destination }),
    lines,
    waitFor(pattern: RegExp, timeoutMs = 20_000): Promise<string> {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          const hit = lines.find((l) => pattern.test(l));
          if (hit === undefined) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(hit);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no log line ${pattern} within ${timeoutMs} ms; lines:\n${lines.join('\n')}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
  };
}

const job = (id: string, epochs: number) => ({
  type: 'JOB_REQUEST',
  job_id: id,
  job_type: 'train',
  transfer: 'shared',
  storage: { storage_backend: 'vast', user_subdir: 'alice' },
  spec: { labels: 'labels.slp', config_file: 'config.yaml', output: 'models', run_name: id, max_epochs: epochs },
});

test('registers under its name with only its healthy backends, and turns busy while its one slot runs a job', async (t) => {
  const { worker, join } = await setup(t);
  assert.equal(worker.peerId, 'gpu-7');
  assert.deepEqual(worker.sleapNn, { executable: FAKE_SLEAP_NN, version: '0.3.3', inferenceCommand: 'predict' });
  assert.deepEqual(worker.capabilities, { storage_backends: ['vast'], job_types: ['train'], max_concurrent_jobs: 1 });
  const client = await join('client');
  const seen = client.peers.get('gpu-7') as PeerInfo;
  assert.deepEqual([seen.metadata.name, seen.metadata.status], ['gpu-7', 'available']);
  const statuses: string[] = [];
  client.on('peer_updated', (p) => statuses.push(String(p.metadata.status)));
  const peer = new JobPeer(await connectToPeer({ signaler: client, remotePeerId: 'gpu-7' }));
  t.after(() => peer.peer.close());
  peer.send(job('a', 2));
  await peer.next('JOB_COMPLETE');
  while (statuses.length < 2) await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(statuses, ['busy', 'available']);
  assert.equal(worker.runningJobs, 0);
});

test('a connection offer from another worker is ignored', async (t) => {
  const { join } = await setup(t);
  const other = await join('worker', 'intruder');
  await assert.rejects(connectToPeer({ signaler: other, remotePeerId: 'gpu-7', timeoutMs: 1500 }), (e: { code?: string }) => e.code === 'PEER_CONNECT_TIMEOUT');
});

test('shutting down cancels running jobs with reason worker_shutdown and leaves the room', async (t) => {
  const { worker, join } = await setup(t);
  const client = await join('client');
  const peer = new JobPeer(await connectToPeer({ signaler: client, remotePeerId: 'gpu-7' }));
  t.after(() => peer.peer.close());
  peer.send(job('long', 10_000));
  await peer.next('JOB_PROGRESS');
  const left = new Promise<string>((resolve) => client.once('peer_left', resolve));
  await worker.close();
  assert.equal((await peer.next('JOB_CANCELLED')).reason, 'worker_shutdown');
  assert.equal(await left, 'gpu-7');
  await worker.close();
});

test('a client that leaves the room but answers over the direct connection keeps its job; one that does not answer loses it', async (t) => {
  const { worker, join, logs } = await setup(t);
  // Alive: the client's signaling connection ends (as in a VPN blip), its WebRTC connection stays.
  const alive = await join('client', 'alice');
  const peer = new JobPeer(await connectToPeer({ signaler: alive, remotePeerId: 'gpu-7' }));
  t.after(() => peer.peer.close());
  const ping = peer.next('PING', () => true, 60_000).then((m) => peer.send({ type: 'PONG', nonce: m.nonce }));
  peer.send(job('kept', 10_000));
  await peer.next('JOB_PROGRESS');
  await alive.close();
  await ping;
  await logs.waitFor(/client alice answered: it lost only the signaling server; its jobs go on/);
  const epochAfter = (await peer.next('JOB_PROGRESS', (m) => m.epoch >= 3)).epoch;
  assert.ok(epochAfter >= 3);
  assert.equal(peer.received.some((m) => m.type === 'JOB_CANCELLED'), false, 'the job was not cancelled');
  assert.equal(worker.runningJobs, 1);
  peer.send({ type: 'JOB_CANCEL', job_id: 'kept' });
  assert.equal((await peer.next('JOB_CANCELLED')).reason, 'client_request');
  await worker.whenIdle();

  // Gone: the client's process stops answering (here: it stops reading its control channel and
  // never answers PING), and its signaling connection ends.
  const mute = await join('client', 'bob');
  const gone = new JobPeer(await connectToPeer({ signaler: mute, remotePeerId: 'gpu-7' }));
  t.after(() => gone.peer.close());
  gone.send(job('dropped', 10_000));
  await gone.next('JOB_PROGRESS');
  const muted = gone.received.length;
  await mute.close();
  await logs.waitFor(/client bob did not answer within \d+ ms: it is gone/);
  await logs.waitFor(/cancelling job dropped \(client disconnected\)/);
  await worker.whenIdle();
  assert.ok(gone.received.slice(muted).some((m) => m.type === 'PING'), 'the worker asked before giving up');
});

test('a job folder that cannot be removed is said in the log, not hidden', async (t) => {
  const { worker, join, logs, dir } = await setup(t);
  const client = await join('client');
  const peer = new JobPeer(await connectToPeer({ signaler: client, remotePeerId: 'gpu-7' }));
  t.after(() => peer.peer.close());
  peer.send(job('stuck', 10_000));
  await peer.next('JOB_PROGRESS');
  // A mount point inside the job folder: rm cannot remove it (EBUSY), as with a busy NFS file.
  // The mounted folder is an empty one of its own, so nothing else can be reached through it.
  const jobDir = path.join(dir, 'work', (await readdir(path.join(dir, 'work'))).find((n) => n.startsWith('job-stuck-')) as string);
  const empty = path.join(dir, 'empty');
  await mkdir(empty);
  await mkdir(path.join(jobDir, 'busy'));
  const mounted = spawnSync('mount', ['--bind', '-o', 'ro', empty, path.join(jobDir, 'busy')]);
  if (mounted.status !== 0) {
    peer.send({ type: 'JOB_CANCEL', job_id: 'stuck' });
    t.skip(`needs root to bind-mount (${String(mounted.stderr).trim()})`);
    return;
  }
  try {
    peer.send({ type: 'JOB_CANCEL', job_id: 'stuck' });
    await peer.next('JOB_CANCELLED');
    const line = await logs.waitFor(/job stuck: could not remove its folder/);
    assert.match(line, /EBUSY|busy/i);
    assert.match(line, /start-up sweep removes it/);
  } finally {
    spawnSync('umount', [path.join(jobDir, 'busy')]);
  }
  await worker.whenIdle();
});
