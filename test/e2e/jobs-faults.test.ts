/**
 * Faults with real processes killed for real (docs/jobs.md, "what happens when"): each case kills
 * a real server, worker or sleap-nn with SIGKILL or SIGTERM at a bad moment and then looks at the
 * disk on both sides. The files are real SLEAP files (test/helpers/sleap-data.ts).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { lstat, mkdir, mkdtemp, readFile, readdir, realpath, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { copyLabelsWithVideo, copyTrainingConfig } from '../helpers/sleap-data.js';
import { runCli } from '../helpers/cli.js';
import { spawnTracked, startServer, startWorker, type Room } from './helpers/jobs-env.js';

let server: Awaited<ReturnType<typeof startServer>>;
const suite: { fns: (() => unknown)[]; after: (fn: () => unknown) => void } = { fns: [], after: (fn) => suite.fns.push(fn) };
before(async () => {
  server = await startServer(suite);
});
after(async () => {
  for (const fn of suite.fns.reverse()) await fn();
});

type Hooks = { after: (fn: () => unknown) => void };

/** A lab share with a real labels file, its video and a real sleap-nn config, seen by client and worker. */
async function realLab(t: Hooks) {
  const dir = await realpath(await mkdtemp(path.join(os.tmpdir(), 'sleap-rtc-faults-')));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const share = path.join(dir, 'share');
  const proj = path.join(share, 'alice', 'proj');
  await mkdir(proj, { recursive: true });
  const { labels, video } = await copyLabelsWithVideo(proj);
  const config = await copyTrainingConfig(path.join(proj, 'config.yaml'));
  const toml = `[storage.vast]\nbase_path = ${JSON.stringify(share)}\ntype = "nfs"\n`;
  const clientToml = path.join(dir, 'client.toml');
  await writeFile(clientToml, toml);
  return { dir, share, labels, video, config, clientToml, workerToml: toml, work: (name: string) => path.join(dir, `work-${name}`) };
}
type Lab = Awaited<ReturnType<typeof realLab>>;

const train = (lab: Lab, room: Room, run: string, epochs: number): string[] => [
  'train', '--labels', lab.labels, '--config-file', lab.config, '--run-name', run, '--max-epochs', String(epochs), '--json', '--config', lab.clientToml, ...room.flags,
];

/** True once `pid` is gone (or a zombie nobody has reaped yet: it runs nothing and holds no GPU). */
async function isGone(pid: number): Promise<boolean> {
  try {
    process.kill(pid, 0);
  } catch {
    return true;
  }
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  return / Z /.test(stat.slice(stat.lastIndexOf(')')));
}

async function msUntilGone(pid: number, giveUpMs: number): Promise<number> {
  const t0 = Date.now();
  while (Date.now() - t0 < giveUpMs) {
    if (await isGone(pid)) return Date.now() - t0;
    await new Promise((r) => setTimeout(r, 25));
  }
  return Infinity;
}

test('worker SIGKILL mid-training: sleap-nn is gone within 2 s, the client fails within seconds naming the worker, no half model anywhere', async (t) => {
  const lab = await realLab(t);
  const room = await server.newRoom();
  const pidFile = path.join(lab.dir, 'sleap-nn.pids');
  // One epoch a minute: the stand-in writes nothing for a minute, as a real trainer may, so only
  // the worker's guard can end it (not a write to a closed pipe).
  const worker = await startWorker(t, room, lab.dir, {
    name: 'gpu-k',
    toml: lab.workerToml,
    env: { FAKE_SLEAP_NN_EPOCH_DELAY_MS: '60000', FAKE_SLEAP_NN_PID_FILE: pidFile },
  });
  const client = spawnTracked(t, train(lab, room, 'killed', 5), { env: { HOME: lab.dir } });
  await client.waitFor(/Checkpoints will be saved to/);
  const pid = Number((await readFile(pidFile, 'utf8')).trim().split('\n')[0]);
  assert.ok(pid > 0 && !(await isGone(pid)), 'sleap-nn is running');

  const killedAt = Date.now();
  worker.child.kill('SIGKILL');
  const goneMs = await msUntilGone(pid, 10_000);
  const { code } = await client.exit;
  const clientMs = Date.now() - killedAt;
  t.diagnostic(`sleap-nn gone ${goneMs} ms after the worker's SIGKILL; client failed after ${clientMs} ms`);
  if (goneMs === Infinity) process.kill(pid, 'SIGKILL');
  assert.ok(goneMs < 2_000, `sleap-nn outlived the worker by ${goneMs} ms`);

  assert.equal(code, 1, client.stderr());
  const result = JSON.parse(client.stdout().trimEnd().split('\n').at(-1) ?? '') as { status: string; worker: string; error: { code: string; message: string } };
  assert.equal(result.status, 'failed');
  assert.equal(result.error.code, 'PEER_GONE');
  assert.match(result.error.message, /Worker gpu-k/);
  assert.ok(clientMs < 10_000, `the client took ${clientMs} ms to notice (WebRTC alone takes 13-29 s)`);

  // Disk, client side: nothing that looks like a result. Worker side: the job's folder is left
  // behind (nothing ran to remove it); the start-up sweep test below covers its removal.
  await assert.rejects(readFile(path.join(lab.share, 'alice/proj/models/killed/best.ckpt')));
  const left = await readdir(lab.work('gpu-k'));
  assert.ok(left.some((n) => n.startsWith('job-')), `the killed worker's job folder is there: ${left.join(', ')}`);
});

test('worker SIGKILL mid-upload: the client fails naming the worker; the restarted worker sweeps the job folder and its work folder is empty', async (t) => {
  const lab = await realLab(t);
  const room = await server.newRoom();
  // A model folder to send: a checkpoint of realistic size (no real one exists in shared/; its
  // bytes do not matter to the stand-in, only that they take a while to send).
  const models = path.join(lab.dir, 'client', 'models', 'centroid');
  await mkdir(models, { recursive: true });
  await writeFile(path.join(models, 'best.ckpt'), Buffer.alloc(192 * 1024 * 1024, 7));
  await copyTrainingConfig(path.join(models, 'training_config.yaml'));
  const work = lab.work('gpu-u');
  // No storage on the worker: everything is sent to it.
  const worker = await startWorker(t, room, lab.dir, { name: 'gpu-u' });
  const client = spawnTracked(t, ['track', '--data', lab.video, '--model', models, '--json', ...room.flags], { env: { HOME: lab.dir }, cwd: path.join(lab.dir, 'client') });

  // Mid-upload: the worker's job folder already holds part of the model, not all of it.
  let staged = 0;
  for (let i = 0; i < 2000 && staged < 16 * 1024 * 1024; i++) {
    staged = await folderBytes(work, (n) => n.startsWith('job-'));
    if (staged < 16 * 1024 * 1024) await new Promise((r) => setTimeout(r, 20));
  }
  assert.ok(staged >= 16 * 1024 * 1024, `the upload started (${staged} bytes staged)`);
  worker.child.kill('SIGKILL');
  await worker.exit;
  const leftBehind = await folderBytes(work, (n) => n.startsWith('job-'));
  assert.ok(leftBehind > 0 && leftBehind < 192 * 1024 * 1024 + 4096, `a partial upload is left in ${work}: ${leftBehind} bytes`);

  const { code } = await client.exit;
  assert.equal(code, 1, client.stderr());
  const result = JSON.parse(client.stdout().trimEnd().split('\n').at(-1) ?? '') as { status: string; error: { code: string; message: string } };
  assert.equal(result.status, 'failed');
  assert.match(result.error.message, /gpu-u/, 'the failure names the worker');
  // Client side: no predictions file, nothing half-written in its folder.
  assert.deepEqual((await readdir(path.join(lab.dir, 'client'))).sort(), ['models']);

  // Restart with the same work folder: the sweep removes the killed run's job folder and says so.
  const again = await startWorker(t, room, lab.dir, { name: 'gpu-u' });
  const swept = await again.waitFor(/start-up sweep: removed 1 job folder\(s\) an earlier run left in \S+, [^(]+\((\d+) bytes\)/);
  assert.equal(Number(swept[1]), leftBehind);
  assert.deepEqual((await readdir(work)).filter((n) => n !== '.workers'), [], 'the work folder is empty but for the running worker\'s mark');
});

/** Bytes of the files under the entries of `dir` whose names pass `pick` (0 while `dir` is missing). */
async function folderBytes(dir: string, pick: (name: string) => boolean): Promise<number> {
  let total = 0;
  const walk = async (p: string): Promise<void> => {
    const st = await lstat(p).catch(() => null);
    if (!st) return;
    if (!st.isDirectory()) {
      total += st.size;
      return;
    }
    for (const n of await readdir(p).catch(() => [] as string[])) await walk(path.join(p, n));
  };
  for (const n of await readdir(dir).catch(() => [] as string[])) if (pick(n)) await walk(path.join(dir, n));
  return total;
}

/** A server of this test's own (it gets killed); `restart()` starts a new one on the same port. */
async function ownServer(t: Hooks, extra: string[] = []) {
  const first = spawnTracked(t, ['server', '--port', '0', ...extra]);
  const url = (await first.waitFor(/listening on (http:\/\/\S+) \(WebSocket/))[1] as string;
  const port = new URL(url).port;
  const r = await runCli(['room', 'create', '--server', url, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const created = JSON.parse(r.stdout) as { room_id: string; token: string };
  const room: Room = { serverUrl: url, roomId: created.room_id, token: created.token, flags: ['--server', url, '--room', created.room_id, '--token', created.token] };
  return {
    room,
    process: first,
    async restart() {
      const next = spawnTracked(t, ['server', '--port', port, ...extra]);
      await next.waitFor(/listening on/);
      return next;
    },
  };
}

test('server SIGKILL mid-training, restarted without the room: the job completes; the worker keeps waiting for the room instead of cancelling and exiting', async (t) => {
  const lab = await realLab(t);
  const srv = await ownServer(t);
  const worker = await startWorker(t, srv.room, lab.dir, { name: 'gpu-s', toml: lab.workerToml, env: { FAKE_SLEAP_NN_EPOCH_DELAY_MS: '1500' } });
  const client = spawnTracked(t, train(lab, srv.room, 'survives', 6), { env: { HOME: lab.dir } });
  await client.waitFor(/Epoch 1\/6/);
  srv.process.child.kill('SIGKILL');
  await srv.process.exit;
  await worker.waitFor(/1 running job\(s\) go on over their direct connections while the signaling server is away/);
  await srv.restart(); // a fresh server: it does not know the room
  await worker.waitFor(/waiting for the signaling server at \S+ to know room \S+ again/);

  const { code } = await client.exit;
  assert.equal(code, 0, client.stderr());
  const result = JSON.parse(client.stdout().trimEnd().split('\n').at(-1) ?? '') as { status: string };
  assert.equal(result.status, 'completed');
  assert.match(client.stderr(), /A job already running goes on over the direct connection/);
  assert.match(await readFile(path.join(lab.share, 'alice/proj/models/survives/best.ckpt'), 'utf8'), /run=survives epochs=6/);
  await worker.waitFor(/job \S+ completed/);
  assert.doesNotMatch(worker.stderr(), /cancelling job/);
  assert.equal(worker.child.exitCode, null, 'the worker is still running');
  assert.deepEqual((await readdir(lab.work('gpu-s'))).filter((n) => n !== '.workers'), [], 'the job folder is removed');
});
