/**
 * Disk full while the worker receives into its cache, on a real small filesystem: the worker runs
 * in a mount namespace of its own (`unshare -m`, tests run as root) where its cache folder is a
 * tmpfs of 8 MiB. A 16 MiB labels file fills it: the job fails with TRANSFER_DISK_FULL naming the
 * cache's disk, no part file or entry is left (seen through /proc/<pid>/root, the worker's view),
 * and the worker stays up and runs the next job, which fits.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { FAKE_SLEAP_NN } from '../fixtures/fake-sleap-nn.js';
import { CLI_ENTRY } from '../helpers/cli.js';
import { cacheLab, lastJson, serverForFile, sha256Hex, trainFromLaptop } from './helpers/jobs-env.js';
import { uniqueLabelsBytes } from '../helpers/sleap-data.js';

const server = serverForFile();

test('disk full while receiving into the cache: TRANSFER_DISK_FULL naming the cache, nothing left, the worker stays up', { skip: process.getuid?.() !== 0 ? 'needs root for unshare -m and mount' : false }, async (t) => {
  const l = await cacheLab(t, 'small/cache');
  const { dir, cache, laptop } = l;
  const small = path.dirname(cache);
  await mkdir(small);
  const big = await uniqueLabelsBytes(16 * 1024 * 1024);
  await writeFile(path.join(laptop, 'big.slp'), big);
  const fits = await uniqueLabelsBytes(1024 * 1024);
  await writeFile(path.join(laptop, 'fits.slp'), fits);
  const room = await server.newRoom();
  const toml = path.join(dir, 'worker.toml');
  await writeFile(toml, `[worker]\nsleap_nn = ${JSON.stringify(FAKE_SLEAP_NN)}\nwork_dir = ${JSON.stringify(path.join(dir, 'work'))}\ncache_dir = ${JSON.stringify(cache)}\n`);

  // The worker in its own mount namespace, its cache folder on an 8 MiB tmpfs only it sees.
  const child = spawn(
    'unshare',
    ['-m', '--propagation', 'private', '--', 'sh', '-c', 'mount -t tmpfs -o size=8m tmpfs "$0" && exec "$@"', small, process.execPath, CLI_ENTRY, 'worker', ...room.flags, '--name', 'tiny', '--config', toml],
    { env: { ...process.env, HOME: dir, SLEAP_RTC_CONFIG: '' }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let log = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (log += d));
  const exited = new Promise((r) => child.on('close', r));
  t.after(async () => {
    if (child.exitCode === null) {
      child.kill('SIGTERM');
      await exited;
    }
  });
  for (let i = 0; i < 1200 && !/worker tiny ready in room/.test(log); i++) await new Promise((r) => setTimeout(r, 100));
  assert.match(log, /worker tiny ready in room/);
  // The worker's view of its cache (the namespace's tmpfs), from outside.
  const seen = (p: string): string => path.join(`/proc/${child.pid}/root`, p);
  assert.match(log, /cache: .*of at most/);

  const train = (labels: string, run: string): ReturnType<typeof trainFromLaptop> => trainFromLaptop(room, l, labels, run);
  const full = await train('big.slp', 'r1');
  assert.equal(full.code, 1, full.stderr);
  const j = lastJson(full) as { status: string; error: { code: string; message: string } };
  assert.equal(j.status, 'failed');
  assert.equal(j.error.code, 'TRANSFER_DISK_FULL');
  assert.match(j.error.message, /cache folder \(\[worker\] cache_dir\) is full/);
  assert.ok(!j.error.message.includes(cache), 'the worker\'s path is not told to the client');
  assert.deepEqual(await readdir(seen(path.join(cache, 'partial'))), [], 'no part file left in the cache');
  assert.ok(!(await readdir(seen(path.join(cache, 'entries')), { recursive: true })).some((n) => String(n).endsWith(sha256Hex(big))), 'no entry');
  assert.deepEqual((await readdir(path.join(dir, 'work'))).filter((n) => n.startsWith('job-')), [], 'no job folder left');
  assert.match(log, /cache folder \(\[worker\] cache_dir\) is full/);

  assert.equal(child.exitCode, null, 'the worker is still up');
  const ok = await train('fits.slp', 'r2');
  assert.equal(ok.code, 0, ok.stderr);
  assert.ok((await readdir(seen(path.join(cache, 'entries')), { recursive: true })).some((n) => String(n).endsWith(sha256Hex(fits))));
});
