/**
 * Lying senders against a real worker with a cache, each a real client process on loopback
 * (helpers/lying-client.ts): one offers a hash and sends other bytes, one claims the hash of
 * another user's cached file without having it. Each is refused with a stable code, nothing is
 * cached or left half-made, no byte of the cached file goes back, and the worker stays up.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { cacheEntries, cacheLab, cachedWorker, lastJson, serverForFile, sha256Hex, trainFromLaptop } from './helpers/jobs-env.js';
import { uniqueLabelsBytes } from '../helpers/sleap-data.js';
import { TS_LOADER } from '../helpers/cli.js';

const server = serverForFile();

const LIAR = fileURLToPath(new URL('./helpers/lying-client.ts', import.meta.url));

test('a lying client process: other bytes than offered, or a claimed hash without the bytes; refused, nothing kept, nothing sent back', async (t) => {
  const l = await cacheLab(t);
  const { dir, cache, laptop } = l;
  const theirs = await uniqueLabelsBytes(2 * 1024 * 1024);
  await writeFile(path.join(laptop, 'labels.slp'), theirs);
  const mine = await uniqueLabelsBytes(2 * 1024 * 1024);
  await writeFile(path.join(dir, 'mine.slp'), mine);
  const room = await server.newRoom();
  const w = await cachedWorker(t, room, l, 'honest-w');
  const train = (run: string): ReturnType<typeof trainFromLaptop> => trainFromLaptop(room, l, 'labels.slp', run);
  // Another user's labels enter the cache.
  const first = await train('r1');
  assert.equal(first.code, 0, first.stderr);
  const before = await cacheEntries(cache);
  assert.ok(before.includes(sha256Hex(theirs)));

  const lie = async (...args: string[]): Promise<{ terminal?: { type: string; code?: string }; sendError?: string; replies: { type: string; code?: string }[]; bytesBack: number }> => {
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', TS_LOADER, LIAR, room.serverUrl, room.roomId, room.token, 'honest-w', ...args], { timeout: 180_000 });
    return JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}');
  };

  const corrupt = await lie('corrupt', path.join(dir, 'mine.slp'), path.join(laptop, 'config.yaml'));
  assert.equal(corrupt.sendError, 'TRANSFER_HASH_MISMATCH');
  assert.equal(corrupt.terminal?.type, 'JOB_FAILED');
  assert.equal(corrupt.terminal?.code, 'TRANSFER_HASH_MISMATCH');
  assert.ok(!(await cacheEntries(cache)).includes(sha256Hex(mine)), 'nothing of the lie is cached');
  assert.deepEqual(await readdir(path.join(cache, 'partial')), [], 'no part file left');

  const claim = await lie('claim', path.join(dir, 'mine.slp'), path.join(laptop, 'config.yaml'), sha256Hex(theirs), String(theirs.length));
  assert.deepEqual(claim.replies.map((m) => m.type), ['TRANSFER_CHALLENGE', 'TRANSFER_ERROR']);
  assert.equal(claim.replies[1]?.code, 'TRANSFER_PROOF_FAILED');
  assert.equal(claim.terminal?.type, 'JOB_FAILED');
  assert.equal(claim.terminal?.code, 'TRANSFER_PROOF_FAILED');
  assert.equal(claim.bytesBack, 0, 'not a byte came back');

  // Nothing half-made in the worker's work folder; the worker is still up and its cache intact.
  const work = (await readdir(path.join(dir, 'work-honest-w'))).filter((n) => n.startsWith('job-'));
  assert.deepEqual(work, []);
  assert.equal(w.child.exitCode, null, 'the worker runs on');
  assert.deepEqual(await cacheEntries(cache), before);
  const again = await train('r2');
  assert.equal(again.code, 0, again.stderr);
  assert.equal(lastJson(again).bytes_sent, 0, 'the honest user still gets its cached files');
});
