/**
 * A model folder through the worker's cache, with real processes on loopback (`sleap-rtc server`,
 * `sleap-rtc worker`, `sleap-rtc train` and `track`): the run folder a training job made is sent
 * for inference file by file, each file enters the cache, the second inference job sends nothing,
 * and a model folder cut mid-upload resumes.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { type CacheLab, cacheEntries, cacheLab, cachedWorker, lastJson, runClient, serverForFile, sha256Hex, spawnTracked, trainFromLaptop } from './helpers/jobs-env.js';
import { copySleapFile, copyTrainingConfig, uniqueLabelsBytes } from '../helpers/sleap-data.js';

const server = serverForFile();

/** The cache lab with a real video, `small_robot.mp4`, in the laptop folder to run inference on. */
async function lab(t: TestContext): Promise<CacheLab> {
  const l = await cacheLab(t);
  await copySleapFile('video', path.join(l.laptop, 'small_robot.mp4'));
  return l;
}

/** Every file under `dir` (relative path -> bytes). */
async function filesOf(dir: string, rel = ''): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const d of await readdir(path.join(dir, rel), { withFileTypes: true })) {
    const r = rel ? `${rel}/${d.name}` : d.name;
    if (d.isDirectory()) for (const [k, v] of await filesOf(dir, r)) out.set(k, v);
    else out.set(r, await readFile(path.join(dir, r)));
  }
  return out;
}

test('the run folder of a training job, sent for inference twice: each of its files is cached, the second job sends nothing', async (t) => {
  const l = await lab(t);
  const room = await server.newRoom();
  await writeFile(path.join(l.laptop, 'labels.slp'), await uniqueLabelsBytes(1024 * 1024));
  await cachedWorker(t, room, l, 'fold');
  const trained = await trainFromLaptop(room, l, 'labels.slp', 'r1');
  assert.equal(trained.code, 0, trained.stderr);
  const model = await filesOf(path.join(l.laptop, 'r1'));
  assert.ok(model.has('best.ckpt') && model.has('training_config.yaml'), [...model.keys()].join(', '));
  const video = await readFile(path.join(l.laptop, 'small_robot.mp4'));
  const before = new Set(await cacheEntries(l.cache));
  // What the first inference job must send: the video and each file of the folder the cache lacks.
  const fresh = new Map([...model.values(), video].map((b) => [sha256Hex(b), b.length]));
  let expected = 0;
  for (const [h, n] of fresh) if (!before.has(h)) expected += n;

  const track = (out: string): ReturnType<typeof runClient> =>
    runClient(room, l.dir, ['track', '--data', 'small_robot.mp4', '--model', 'r1', '--output', out, '--json'], { cwd: l.laptop });
  const first = await track('p1.slp');
  assert.equal(first.code, 0, first.stderr);
  assert.equal(lastJson(first).bytes_sent, expected);
  const cached = new Set(await cacheEntries(l.cache));
  for (const [rel, data] of model) assert.ok(cached.has(sha256Hex(data)), `${rel} is an entry of the cache`);

  const second = await track('p2.slp');
  assert.equal(second.code, 0, second.stderr);
  const j = lastJson(second);
  assert.equal(j.bytes_sent, 0, 'nothing sent the second time');
  assert.equal(j.bytes_skipped, [...model.values()].reduce((n, b) => n + b.length, 0) + video.length);
  assert.match(second.stderr, /upload r1: cached on worker/);
  assert.deepEqual(await readdir(path.join(l.cache, 'partial')), []);
});

test('a model folder cut mid-upload (client killed) resumes in the next job from what the worker held', async (t) => {
  const l = await lab(t);
  const room = await server.newRoom();
  const model = path.join(l.laptop, 'models', 'centroid');
  await mkdir(model, { recursive: true });
  // The stand-in does not read the checkpoint's bytes; its size makes the upload take a while.
  const ckpt = randomBytes(96 * 1024 * 1024);
  await writeFile(path.join(model, 'best.ckpt'), ckpt);
  await copyTrainingConfig(path.join(model, 'training_config.yaml'));
  await cachedWorker(t, room, l, 'cut');
  const args = ['track', '--data', 'small_robot.mp4', '--model', 'models/centroid', '--output', 'p.slp', '--json', ...room.flags];
  const client = spawnTracked(t, args, { env: { HOME: l.dir }, cwd: l.laptop });
  const sidecar = path.join(l.cache, 'partial', `${sha256Hex(ckpt)}.part.json`);
  let held = 0;
  for (let i = 0; i < 6000 && held < 32 * 1024 * 1024; i++) {
    held = Number((JSON.parse(await readFile(sidecar, 'utf8').catch(() => '{}')) as { durable?: number }).durable ?? 0);
    if (held < 32 * 1024 * 1024) await new Promise((r) => setTimeout(r, 20));
  }
  assert.ok(held >= 32 * 1024 * 1024, `the checkpoint's upload started (${held} bytes held)`);
  client.child.kill('SIGKILL');
  await client.exit;
  assert.ok(!(await cacheEntries(l.cache)).includes(sha256Hex(ckpt)), 'the half-sent checkpoint is not an entry');

  const r = await runClient(room, l.dir, args.slice(0, -room.flags.length), { cwd: l.laptop });
  assert.equal(r.code, 0, r.stderr);
  const j = lastJson(r);
  assert.ok(Number(j.bytes_skipped) >= held, `skipped ${j.bytes_skipped}, held ${held}`);
  assert.match(r.stderr, /upload centroid: 1 of 2 file\(s\) cached on worker|upload centroid: 0 of 2 file\(s\) cached on worker/);
  assert.ok((await cacheEntries(l.cache)).includes(sha256Hex(ckpt)));
  assert.deepEqual(await readdir(path.join(l.cache, 'partial')), [], 'no partial file left');
});
