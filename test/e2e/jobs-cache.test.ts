/**
 * The worker's cache and resumed transfers with real processes on loopback: `sleap-rtc server`,
 * `sleap-rtc worker` (killed and restarted for real) and `sleap-rtc train`. Each case asserts the
 * bytes the client's --json reports and what is on disk in the worker's cache afterwards.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  type CacheLab,
  cacheEntries,
  cacheLab,
  cachedWorker,
  lastJson,
  serverForFile,
  sha256Hex,
  spawnTracked,
  trainFromLaptop,
  type Worker,
} from './helpers/jobs-env.js';
import { uniqueLabelsBytes } from '../helpers/sleap-data.js';
import { labelsOnly } from '../helpers/slp-content.js';

const server = serverForFile();

async function stopWorker(w: Worker, signal: NodeJS.Signals): Promise<void> {
  w.child.kill(signal);
  await w.exit;
}

test('a file sent once is not sent again, also after the worker restarts; the worker logs its cache at start', async (t) => {
  const l = await cacheLab(t);
  const room = await server.newRoom();
  const labels = await uniqueLabelsBytes(2 * 1024 * 1024);
  await writeFile(path.join(l.laptop, 'labels.slp'), labels);
  const w1 = await cachedWorker(t, room, l, 'c1');
  assert.match(w1.stderr(), new RegExp(`cache: ${l.cache.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}, 0 file\\(s\\)`));
  const first = await trainFromLaptop(room, l, 'labels.slp', 'r1');
  assert.equal(first.code, 0, first.stderr);
  const j1 = lastJson(first);
  assert.equal(j1.bytes_sent, labels.length + l.config.length);
  assert.equal(j1.bytes_skipped, 0);
  assert.deepEqual(await cacheEntries(l.cache), [sha256Hex(labels), sha256Hex(l.config)].sort());
  await stopWorker(w1, 'SIGTERM');

  const w2 = await cachedWorker(t, room, l, 'c2');
  assert.match(w2.stderr(), /cache: .*, 2 file\(s\)/);
  const second = await trainFromLaptop(room, l, 'labels.slp', 'r2');
  assert.equal(second.code, 0, second.stderr);
  const j2 = lastJson(second);
  assert.equal(j2.bytes_sent, 0, 'nothing sent the second time');
  assert.equal(j2.bytes_skipped, labels.length + l.config.length);
  assert.match(second.stderr, /upload labels\.slp: cached on worker/);
  assert.deepEqual(labelsOnly(path.join(l.laptop, 'r2', 'labels_gt.train.0.slp')), labelsOnly(path.join(l.laptop, 'labels.slp')), 'sleap-nn read the cached labels');
});

test('a corrupted cache entry is detected when used, evicted, and the file is sent instead', async (t) => {
  const l = await cacheLab(t);
  const room = await server.newRoom();
  const labels = await uniqueLabelsBytes(1024 * 1024);
  await writeFile(path.join(l.laptop, 'labels.slp'), labels);
  const w = await cachedWorker(t, room, l, 'corrupt');
  assert.equal((await trainFromLaptop(room, l, 'labels.slp', 'a')).code, 0);
  const entry = path.join(l.cache, 'entries', sha256Hex(labels).slice(0, 2), sha256Hex(labels));
  await chmod(entry, 0o644);
  const bad = Buffer.from(labels);
  bad[4242] = bad[4242]! ^ 0x55;
  await writeFile(entry, bad);
  const r = await trainFromLaptop(room, l, 'labels.slp', 'b');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(lastJson(r).bytes_sent, labels.length, 'the labels were sent again, the config was not');
  assert.deepEqual(await readFile(entry), labels, 'the entry holds the right bytes again');
  assert.match(w.stderr(), /no longer matches its hash; evicted/);
});

test('eviction keeps the cache under cache_max_bytes, least recently used first', async (t) => {
  const l = await cacheLab(t);
  const room = await server.newRoom();
  const files = [await uniqueLabelsBytes(1024 * 1024), await uniqueLabelsBytes(1024 * 1024), await uniqueLabelsBytes(1024 * 1024)];
  for (const [i, f] of files.entries()) await writeFile(path.join(l.laptop, `l${i}.slp`), f);
  await cachedWorker(t, room, l, 'small', `cache_max_bytes = ${Math.floor(2.5 * 1024 * 1024)}`);
  for (const i of [0, 1]) assert.equal((await trainFromLaptop(room, l, `l${i}.slp`, `r${i}`)).code, 0);
  // Use l0 again: l1 is now the least recently used.
  assert.equal(lastJson(await trainFromLaptop(room, l, 'l0.slp', 'again')).bytes_sent, 0);
  assert.equal((await trainFromLaptop(room, l, 'l2.slp', 'r2')).code, 0);
  assert.deepEqual(await cacheEntries(l.cache), [sha256Hex(files[0]!), sha256Hex(files[2]!), sha256Hex(l.config)].sort());
  let total = 0;
  for (const e of await cacheEntries(l.cache)) total += (await stat(path.join(l.cache, 'entries', e.slice(0, 2), e))).size;
  assert.ok(total <= 2.5 * 1024 * 1024, `${total} bytes in the cache`);
});

/** Wait until the worker's partial file of `hash` records at least `bytes` as durable. */
async function durable(l: CacheLab, hash: string, bytes: number, timeoutMs = 120_000): Promise<number> {
  const sidecar = path.join(l.cache, 'partial', `${hash}.part.json`);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const d = Number((JSON.parse(await readFile(sidecar, 'utf8').catch(() => '{}')) as { durable?: number }).durable ?? 0);
    if (d >= bytes) return d;
    if (Date.now() > deadline) throw new Error(`partial file of ${hash} never held ${bytes} bytes (last ${d})`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const BIG = 96 * 1024 * 1024;

test('worker killed (SIGKILL) mid-upload: the next job resumes from what the restarted worker held', async (t) => {
  const l = await cacheLab(t);
  const room = await server.newRoom();
  const labels = await uniqueLabelsBytes(BIG);
  await writeFile(path.join(l.laptop, 'big.slp'), labels);
  const w1 = await cachedWorker(t, room, l, 'k1');
  const client = spawnTracked(t, ['train', '--labels', 'big.slp', '--config-file', 'config.yaml', '--run-name', 'k', '--max-epochs', '1', '--json', ...room.flags], { env: { HOME: l.dir }, cwd: l.laptop });
  const held = await durable(l, sha256Hex(labels), 32 * 1024 * 1024);
  await stopWorker(w1, 'SIGKILL');
  const ended = await client.exit;
  assert.equal(ended.code, 1, client.stderr());
  // Inputs go one after the other, the labels first: nothing is in the cache yet.
  assert.deepEqual(await cacheEntries(l.cache), [], 'the half-sent file is not an entry');

  await cachedWorker(t, room, l, 'k2');
  const r = await trainFromLaptop(room, l, 'big.slp', 'k');
  assert.equal(r.code, 0, r.stderr);
  const j = lastJson(r);
  assert.ok(Number(j.bytes_skipped) >= held, `skipped ${j.bytes_skipped}, held ${held}`);
  assert.equal(Number(j.bytes_sent) + Number(j.bytes_skipped), BIG + l.config.length);
  assert.match(r.stderr, /upload big\.slp: resumed at/);
  assert.deepEqual(await cacheEntries(l.cache), [sha256Hex(labels), sha256Hex(l.config)].sort());
  assert.deepEqual(await readdir(path.join(l.cache, 'partial')), [], 'no partial file left');
  assert.equal(sha256Hex(await readFile(path.join(l.cache, 'entries', sha256Hex(labels).slice(0, 2), sha256Hex(labels)))), sha256Hex(labels));
});

test('connection cut (client killed) mid-upload: the next job resumes; Ctrl-C keeps the part too', async (t) => {
  const l = await cacheLab(t);
  const room = await server.newRoom();
  const labels = await uniqueLabelsBytes(BIG);
  await writeFile(path.join(l.laptop, 'big.slp'), labels);
  await cachedWorker(t, room, l, 'cut');
  let mark = 16 * 1024 * 1024;
  for (const signal of ['SIGKILL', 'SIGINT'] as const) {
    const client = spawnTracked(t, ['train', '--labels', 'big.slp', '--config-file', 'config.yaml', '--run-name', 'c', '--max-epochs', '1', '--json', ...room.flags], { env: { HOME: l.dir }, cwd: l.laptop });
    await durable(l, sha256Hex(labels), mark);
    client.child.kill(signal);
    await client.exit;
    mark += 16 * 1024 * 1024;
  }
  const r = await trainFromLaptop(room, l, 'big.slp', 'c');
  assert.equal(r.code, 0, r.stderr);
  const j = lastJson(r);
  assert.ok(Number(j.bytes_skipped) >= 32 * 1024 * 1024, `skipped ${j.bytes_skipped}`);
  assert.equal(Number(j.bytes_sent) + Number(j.bytes_skipped), BIG + l.config.length);
  assert.deepEqual(await cacheEntries(l.cache), [sha256Hex(labels), sha256Hex(l.config)].sort());
  assert.deepEqual(await readdir(path.join(l.cache, 'partial')), []);
});

test('two jobs with the same file at once: its bytes cross once, one copy in the cache', async (t) => {
  const l = await cacheLab(t);
  const room = await server.newRoom();
  const labels = await uniqueLabelsBytes(16 * 1024 * 1024);
  await writeFile(path.join(l.laptop, 'same.slp'), labels);
  await cachedWorker(t, room, l, 'pair', 'max_concurrent_jobs = 2');
  const [a, b] = await Promise.all([trainFromLaptop(room, l, 'same.slp', 'a'), trainFromLaptop(room, l, 'same.slp', 'b')]);
  assert.equal(a.code, 0, a.stderr);
  assert.equal(b.code, 0, b.stderr);
  const sent = Number(lastJson(a).bytes_sent) + Number(lastJson(b).bytes_sent);
  assert.equal(sent, labels.length + l.config.length, 'each file crossed once');
  assert.deepEqual(await cacheEntries(l.cache), [sha256Hex(labels), sha256Hex(l.config)].sort());
});
