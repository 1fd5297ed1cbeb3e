/**
 * worker SIGKILL mid-training: sleap-nn is gone within 2 s, the client fails within seconds naming the worker, no half model anywhere.
 * Real processes killed for real; each case looks at the disk on both sides afterwards
 * (docs/jobs.md, "what happens when"). Shared set-up: helpers/faults-env.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { isGone, msUntilGone, realLab, train } from './helpers/faults-env.js';
import { lastJson, serverForFile, spawnTracked, startWorker } from './helpers/jobs-env.js';

const server = serverForFile();

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
  const result = lastJson<{ status: string; worker: string; error: { code: string; message: string } }>(client);
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
