/**
 * Faults with real processes killed for real (docs/jobs.md, "what happens when"): each case kills
 * a real server, worker or sleap-nn with SIGKILL or SIGTERM at a bad moment and then looks at the
 * disk on both sides. The files are real SLEAP files (test/helpers/sleap-data.ts).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir, realpath, mkdtemp, rm, mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { copyLabelsWithVideo, copyTrainingConfig } from '../helpers/sleap-data.js';
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
  const { labels } = await copyLabelsWithVideo(proj);
  const config = await copyTrainingConfig(path.join(proj, 'config.yaml'));
  const toml = `[storage.vast]\nbase_path = ${JSON.stringify(share)}\ntype = "nfs"\n`;
  const clientToml = path.join(dir, 'client.toml');
  await import('node:fs/promises').then((fs) => fs.writeFile(clientToml, toml));
  return { dir, share, labels, config, clientToml, workerToml: toml, work: (name: string) => path.join(dir, `work-${name}`) };
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
