/** `sleap-rtc workers` as a real child process against a real server with three differently equipped workers. */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startSignalingServer, type SignalingServer } from '../../src/signaling/server.js';
import { runCli } from '../helpers/cli.js';
import { registerPeer, workerMetadata, type TestPeer } from '../helpers/ws-peer.js';

interface Room {
  server: SignalingServer;
  room: { room_id: string; token: string };
  /** --server --room --token */
  flags: string[];
}

/**
 * Workers: "vast-box" (vast, A100 80 GB), "both-box" (vast + scratch, busy), "plain-box" (no
 * backend). A client holds vast-box with a reservation and has one vast request queued.
 */
async function room(t: TestContext): Promise<Room> {
  const server = await startSignalingServer({ host: '127.0.0.1', port: 0 });
  const peers: TestPeer[] = [];
  t.after(async () => {
    await Promise.all(peers.map((p) => p.close()));
    await server.close();
  });
  const room = await server.createRoom();
  const join = async (opts: Parameters<typeof registerPeer>[1]): Promise<TestPeer> => {
    const p = await registerPeer(server.wsUrl, opts);
    peers.push(p);
    return p;
  };
  const base = { room_id: room.room_id, token: room.token };
  await join({
    ...base,
    role: 'worker',
    peer_id: 'w-vast',
    metadata: workerMetadata(['vast'], {
      name: 'vast-box',
      capabilities: { storage_backends: ['vast'], job_types: ['train', 'track'], max_concurrent_jobs: 1, gpu: { name: 'NVIDIA A100', memory_mb: 81920 } },
    }),
  });
  await join({ ...base, role: 'worker', peer_id: 'w-both', metadata: workerMetadata(['vast', 'scratch'], { name: 'both-box', status: 'busy' }) });
  await join({ ...base, role: 'worker', peer_id: 'w-none', metadata: workerMetadata([], { name: 'plain-box', capabilities: { storage_backends: [], job_types: ['track'], max_concurrent_jobs: 2 } }) });
  const client = await join({ ...base, role: 'client', peer_id: 'laptop' });
  client.send({ type: 'request_worker', request_id: 'held', job_type: 'train', required_storage: 'vast' });
  await client.next('worker_assigned');
  client.send({ type: 'request_worker', request_id: 'waiting', job_type: 'train', required_storage: 'vast' });
  await client.next('queue_position');
  return { server, room, flags: ['--server', server.url, '--room', room.room_id, '--token', room.token] };
}

test('workers: a table of every worker with backends, jobs, GPU, slots and queue share', async (t) => {
  const r = await room(t);
  const res = await runCli(['workers', ...r.flags]);
  assert.equal(res.code, 0, res.stderr);
  const lines = res.stdout.trimEnd().split('\n');
  assert.match(lines[0] ?? '', /^NAME\s+PEER ID\s+STATUS\s+BACKENDS\s+JOBS\s+GPU\s+SLOTS\s+QUEUED$/);
  const row = (name: string): string[] => {
    const line = lines.find((l) => l.startsWith(`${name} `));
    assert.ok(line, `a row for ${name} in:\n${res.stdout}`);
    return line.split(/\s{2,}/);
  };
  assert.deepEqual(row('vast-box'), ['vast-box', 'w-vast', 'available', 'vast', 'train,track', 'NVIDIA A100 (80 GB)', '0/1', '1']);
  assert.deepEqual(row('both-box'), ['both-box', 'w-both', 'busy', 'vast, scratch', 'train,track', '-', '0/1', '1']);
  assert.deepEqual(row('plain-box'), ['plain-box', 'w-none', 'available', '(none: transfer jobs only)', 'track', '-', '2/2', '0']);
  assert.equal(lines.at(-1), "1 of 3 workers is available now (1 request waiting in the room's queue)");
});

test('workers --storage-backend: only the workers with it, and how many are free now', async (t) => {
  const r = await room(t);
  const vast = await runCli(['workers', ...r.flags, '--storage-backend', 'vast']);
  assert.equal(vast.code, 0, vast.stderr);
  assert.match(vast.stdout, /vast-box/);
  assert.match(vast.stdout, /both-box/);
  assert.doesNotMatch(vast.stdout, /plain-box/);
  assert.equal(vast.stdout.trimEnd().split('\n').at(-1), "0 of 2 workers with backend 'vast' are available now (1 request waiting in the room's queue)");
  const scratch = await runCli(['workers', ...r.flags, '--storage-backend', 'scratch', '--json']);
  assert.equal(scratch.code, 0, scratch.stderr);
  assert.deepEqual(
    (JSON.parse(scratch.stdout) as { peer_id: string }[]).map((w) => w.peer_id),
    ['w-both'],
  );
  const nfs = await runCli(['workers', ...r.flags, '--storage-backend', 'nfs']);
  assert.equal(nfs.code, 0, nfs.stderr);
  assert.equal(nfs.stdout.trim(), `No worker in room ${r.room.room_id} has backend 'nfs' (backends in the room: scratch, vast); jobs on it would be sent as transfer jobs.`);
});

test('workers --json: the same rows as a JSON array; room and token may come from the environment', async (t) => {
  const r = await room(t);
  const res = await runCli(['workers', '--server', r.server.url, '--json'], { env: { SLEAP_RTC_ROOM: r.room.room_id, SLEAP_RTC_TOKEN: r.room.token } });
  assert.equal(res.code, 0, res.stderr);
  const rows = JSON.parse(res.stdout) as Record<string, unknown>[];
  assert.deepEqual(rows, [
    {
      peer_id: 'w-vast',
      name: 'vast-box',
      status: 'available',
      storage_backends: ['vast'],
      job_types: ['train', 'track'],
      gpu: { name: 'NVIDIA A100', memory_mb: 81920 },
      slots: { total: 1, pending: 1, claimed: 0, free: 0 },
      queued: 1,
      available: false,
    },
    {
      peer_id: 'w-both',
      name: 'both-box',
      status: 'busy',
      storage_backends: ['vast', 'scratch'],
      job_types: ['train', 'track'],
      gpu: null,
      slots: { total: 1, pending: 0, claimed: 0, free: 0 },
      queued: 1,
      available: false,
    },
    {
      peer_id: 'w-none',
      name: 'plain-box',
      status: 'available',
      storage_backends: [],
      job_types: ['track'],
      gpu: null,
      slots: { total: 2, pending: 0, claimed: 0, free: 2 },
      queued: 0,
      available: true,
    },
  ]);
});

test('workers: the [signaling] section of --config names server, room and token', async (t) => {
  const r = await room(t);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sleap-rtc-workers-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'lab.toml');
  await writeFile(file, `[signaling]\nserver_url = "${r.server.url}"\nroom_id = "${r.room.room_id}"\ntoken = "${r.room.token}"\n`);
  const res = await runCli(['workers', '--config', file, '--storage-backend', 'scratch']);
  assert.equal(res.code, 0, res.stderr);
  assert.equal(res.stdout.trimEnd().split('\n').at(-1), "0 of 1 worker with backend 'scratch' is available now (1 request waiting in the room's queue)");
});

test('workers: usage and connection errors say what to type instead', async (t) => {
  const r = await room(t);
  const cases: { args: string[]; code: number; stderr: RegExp }[] = [
    { args: ['workers', '--server', r.server.url, '--room', r.room.room_id], code: 2, stderr: /\[USAGE\].*--token TOKEN \(or SLEAP_RTC_TOKEN\)/ },
    { args: ['workers', '--server', r.server.url], code: 2, stderr: /--room ID \(or SLEAP_RTC_ROOM\) and --token TOKEN/ },
    { args: ['workers', ...r.flags, '--storage-backend', '../etc'], code: 2, stderr: /--storage-backend takes a backend name/ },
    { args: ['workers', '--server', r.server.url, '--room', r.room.room_id, '--token', 'wrong'], code: 2, stderr: /\[INVALID_TOKEN\].*--token/ },
    { args: ['workers', '--server', r.server.url, '--room', 'nosuchroom', '--token', 'x'], code: 1, stderr: /\[ROOM_NOT_FOUND\].*room create/ },
    { args: ['workers', '--server', 'not a url', '--room', 'r', '--token', 't'], code: 2, stderr: /not a server URL/ },
  ];
  for (const c of cases) {
    const res = await runCli(c.args);
    assert.equal(res.code, c.code, `${c.args.join(' ')}: ${res.stderr}`);
    assert.match(res.stderr, c.stderr, c.args.join(' '));
    assert.equal(res.stdout, '', 'nothing on stdout');
  }
});
