/** The worker's content store on real files: restarts, a lost index, corruption, eviction order and cap, leases, the lock. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { chmod, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { PartialFile } from '../../src/content/partial-file.js';
import { ContentStore } from '../../src/content/store.js';
import { SleapRtcError } from '../../src/errors.js';
import { tempDir } from '../transport/helpers/transfer.js';

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** Receive `data` into the store the way file-receive does: a receipt, its partial file, admit. */
async function put(store: ContentStore, data: Buffer): Promise<void> {
  const receipt = await store.beginReceipt(sha(data), data.length);
  assert.ok(receipt, 'not cached yet');
  await receipt.partial.append([data]);
  assert.equal(receipt.partial.digest(), sha(data));
  await receipt.partial.finish(false);
  const lease = await store.admit(receipt.partial);
  receipt.end();
  lease.release();
}

async function open(dir: string, maxBytes = 1 << 30): Promise<ContentStore> {
  return ContentStore.open({ dir, maxBytes });
}

test('an entry survives a restart, is leased and placed into a job folder; an unknown hash is a miss', async (t) => {
  const dir = await tempDir(t, 'cache');
  const job = await tempDir(t, 'job');
  const data = randomBytes(5000);
  const a = await open(dir);
  await put(a, data);
  await a.close();
  const b = await open(dir);
  assert.deepEqual({ entries: b.stats().entries, bytes: b.stats().bytes }, { entries: 1, bytes: 5000 });
  assert.equal(await b.acquire(sha(randomBytes(10)), 10), null);
  assert.equal(await b.acquire(sha(data), 4999), null, 'a size that differs is a miss');
  const lease = await b.acquire(sha(data), data.length);
  assert.ok(lease);
  const method = await b.place(lease, path.join(job, 'labels.slp'), false);
  assert.ok(['reflink', 'hardlink', 'copy'].includes(method));
  assert.deepEqual(await readFile(path.join(job, 'labels.slp')), data);
  await assert.rejects(b.place(lease, path.join(job, 'labels.slp'), false), /already exists/);
  lease.release();
  await b.close();
});

test('a lost or damaged index is rebuilt from the folder alone; unverified entries are hashed at first use', async (t) => {
  const dir = await tempDir(t, 'cache');
  const data = [randomBytes(1000), randomBytes(2000)];
  const a = await open(dir);
  for (const d of data) await put(a, d);
  await a.close();
  for (const damage of [() => rm(path.join(dir, 'index.json')), () => writeFile(path.join(dir, 'index.json'), '{"v":1,"entries":{"x":1}}')]) {
    await damage();
    const b = await open(dir);
    assert.equal(b.stats().entries, 2);
    for (const d of data) {
      const lease = await b.acquire(sha(d), d.length);
      assert.ok(lease, 'rebuilt entry is found and verifies');
      lease.release();
    }
    await b.close();
  }
});

test('a corrupted entry is detected when used, evicted, and a new copy can enter', async (t) => {
  const dir = await tempDir(t, 'cache');
  const data = randomBytes(4096);
  const store = await open(dir);
  await put(store, data);
  const entry = store.entryPath(sha(data));
  assert.equal((await stat(entry)).mode & 0o777, 0o444, 'entries are read-only');
  await chmod(entry, 0o644);
  const bad = Buffer.from(data);
  bad[100] = bad[100]! ^ 0xff;
  await writeFile(entry, bad);
  assert.equal(await store.acquire(sha(data), data.length), null);
  assert.equal(store.stats().entries, 0);
  await assert.rejects(stat(entry));
  await put(store, data);
  const lease = await store.acquire(sha(data), data.length);
  assert.ok(lease);
  assert.deepEqual(await readFile(entry), data);
  lease.release();
  await store.close();
});

test('eviction: least recently used first, down to the cap, never an entry a job holds', async (t) => {
  const dir = await tempDir(t, 'cache');
  const store = await open(dir, 3000);
  const [a, b, c, d] = [randomBytes(1000), randomBytes(1000), randomBytes(1000), randomBytes(1000)] as [Buffer, Buffer, Buffer, Buffer];
  await put(store, a);
  await put(store, b);
  await put(store, c);
  // Use a: b is now the least recently used, and it is held by a running job.
  (await store.acquire(sha(a), 1000))?.release();
  const held = await store.acquire(sha(b), 1000);
  assert.ok(held);
  (await store.acquire(sha(a), 1000))?.release();
  await put(store, d);
  // Order of use: c (oldest, free), b (held), a, d. c goes.
  assert.equal(store.has(sha(c)), false);
  assert.ok(store.has(sha(a)) && store.has(sha(b)) && store.has(sha(d)));
  assert.ok(store.stats().bytes <= 3000);
  held.release();
  const files = (await readdir(path.join(dir, 'entries'), { recursive: true })).filter((f) => /[0-9a-f]{64}$/.test(f));
  assert.equal(files.length, 3, 'what is on disk is what the index says');
  await store.close();
});

test('a cap smaller than one file: it is still placed for the running job, then evicted when released', async (t) => {
  const dir = await tempDir(t, 'cache');
  const store = await open(dir, 500);
  const data = randomBytes(1000);
  const receipt = await store.beginReceipt(sha(data), 1000);
  assert.ok(receipt);
  await receipt.partial.append([data]);
  receipt.partial.digest();
  await receipt.partial.finish(false);
  const lease = await store.admit(receipt.partial);
  receipt.end();
  assert.ok(store.has(sha(data)), 'held while the job runs');
  lease.release();
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(store.has(sha(data)), false);
  assert.equal(store.stats().bytes, 0);
  await store.close();
});

test('two receipts of the same content: the second waits and then finds it cached (one copy)', async (t) => {
  const dir = await tempDir(t, 'cache');
  const store = await open(dir);
  const data = randomBytes(3000);
  const first = await store.beginReceipt(sha(data), 3000);
  assert.ok(first);
  const second = store.beginReceipt(sha(data), 3000);
  await first.partial.append([data]);
  first.partial.digest();
  await first.partial.finish(false);
  (await store.admit(first.partial)).release();
  first.end();
  assert.equal(await second, null, 'the content arrived meanwhile');
  assert.equal(store.stats().entries, 1);
  await store.close();
});

test('an interrupted receipt resumes from its durable prefix; other content starts over', async (t) => {
  const dir = await tempDir(t, 'cache');
  const store = await open(dir);
  const data = randomBytes(10_000);
  const r1 = await store.beginReceipt(sha(data), data.length);
  assert.ok(r1);
  await r1.partial.append([data.subarray(0, 4000)]);
  await r1.partial.keep();
  r1.end();
  const r2 = await store.beginReceipt(sha(data), data.length);
  assert.ok(r2);
  assert.equal(r2.partial.heldBytes, 4000);
  assert.equal(r2.partial.heldSha256, sha(data.subarray(0, 4000)));
  await r2.partial.append([data.subarray(4000)]);
  assert.equal(r2.partial.digest(), sha(data));
  await r2.partial.discard();
  r2.end();
  const p = path.join(dir, 'partial', 'x.part');
  const other = await PartialFile.open(p, { sha256: sha(data), size: 10, resumable: true });
  assert.equal(other?.heldBytes, 0);
  await other?.discard();
  await store.close();
});

test('one worker per cache folder: a second open is refused with CACHE_UNAVAILABLE; a stale lock is taken over', async (t) => {
  const dir = await tempDir(t, 'cache');
  const a = await open(dir);
  await assert.rejects(open(dir), (e: unknown) => e instanceof SleapRtcError && e.code === 'CACHE_UNAVAILABLE');
  await a.close();
  await writeFile(path.join(dir, 'lock'), '999999999\n');
  const b = await open(dir);
  await b.close();
});
