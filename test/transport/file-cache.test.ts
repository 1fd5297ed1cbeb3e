/**
 * The offer, the cache and resume over a real WebRTC pair: a file the receiver's store holds is
 * not sent; an interrupted file resumes from the verified prefix; a lying or poisoning sender gets
 * nothing cached; two receipts of one content leave one copy; and the receiver's acknowledgement
 * reaches the sender even when the receiving side closes the connection at once.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ContentStore } from '../../src/content/store.js';
import { SleapRtcError } from '../../src/errors.js';
import type { PeerChannel } from '../../src/transport/channel.js';
import { receiveTransfer } from '../../src/transport/file-receive.js';
import { sendFile } from '../../src/transport/file-send.js';
import { connectedPair } from './helpers/peers.js';
import { receiveNext, tempDir } from './helpers/transfer.js';

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

async function store(t: { after: (fn: () => Promise<void>) => void }): Promise<ContentStore> {
  return ContentStore.open({ dir: path.join(await tempDir(t, 'cache'), 'c'), maxBytes: 1 << 30 });
}

test('a file the store holds is placed without a byte sent; the job folder gets its own name for it', async (t) => {
  const { offerer, answerer } = await connectedPair(t);
  const src = await tempDir(t, 'src');
  const cache = await store(t);
  const data = randomBytes(3 * 1024 * 1024 + 17);
  await writeFile(path.join(src, 'labels.slp'), data);
  const jobs = [await tempDir(t, 'job1'), await tempDir(t, 'job2')];
  const results = [];
  for (const dir of jobs) {
    const receiving = receiveNext(answerer, { destDir: dir, store: cache });
    const sent = await sendFile(offerer, path.join(src, 'labels.slp'));
    const got = await receiving;
    assert.ok(got.ok, String(!got.ok && got.error));
    got.result.lease?.release();
    results.push({ sent, got: got.result });
    assert.deepEqual(await readFile(path.join(dir, 'labels.slp')), data);
  }
  const [first, second] = results as [(typeof results)[0], (typeof results)[0]];
  assert.deepEqual([first.sent.cached, first.sent.bytesSent, first.got.bytesReceived], [false, data.length, data.length]);
  assert.deepEqual([second.sent.cached, second.sent.bytesSent, second.got.bytesReceived, second.got.cached], [true, 0, 0, true]);
  assert.equal(cache.stats().entries, 1);
  // Not a second copy: the job's file shares the entry's data (hard link here, or a reflink).
  const entry = await stat(cache.entryPath(sha(data)));
  const placed = await stat(path.join(jobs[1] as string, 'labels.slp'));
  assert.ok(placed.ino === entry.ino || placed.nlink === 1);
  await cache.close();
});

test('an interrupted transfer resumes from what the receiver holds; the whole file is verified', async (t) => {
  const { offerer, answerer } = await connectedPair(t);
  const src = await tempDir(t, 'src');
  const dst = await tempDir(t, 'dst');
  const cache = await store(t);
  const data = randomBytes(24 * 1024 * 1024);
  await writeFile(path.join(src, 'video.mp4'), data);
  const stop = new AbortController();
  const first = receiveNext(answerer, { destDir: dst, store: cache, progressEveryBytes: 1024 * 1024 });
  await assert.rejects(
    sendFile(offerer, path.join(src, 'video.mp4'), {
      signal: stop.signal,
      onProgress: (p) => {
        if (p.bytes >= 10 * 1024 * 1024) stop.abort();
      },
    }),
    (e: unknown) => e instanceof SleapRtcError && e.code === 'TRANSFER_CANCELLED',
  );
  const cut = await first;
  assert.equal(cut.ok, false);
  assert.deepEqual(await readdir(dst), [], 'nothing half-written in the job folder');
  assert.equal(cache.stats().entries, 0, 'a partial file is never an entry');
  const second = receiveNext(answerer, { destDir: dst, store: cache });
  const sent = await sendFile(offerer, path.join(src, 'video.mp4'));
  const got = await second;
  assert.ok(got.ok);
  got.result.lease?.release();
  assert.ok(sent.resumedFrom >= 10 * 1024 * 1024, `resumed at ${sent.resumedFrom}`);
  assert.equal(sent.bytesSent, data.length - sent.resumedFrom);
  assert.equal(got.result.resumedFrom, sent.resumedFrom);
  assert.deepEqual(await readFile(path.join(dst, 'video.mp4')), data);
  assert.deepEqual(await readdir(path.join(cache.dir, 'partial')), []);
  await cache.close();
});

/** A raw sender on a transfer channel: sends frames, records replies. */
async function rawSender(peer: Awaited<ReturnType<typeof connectedPair>>['offerer'], id: string): Promise<{ channel: PeerChannel; replied: (type: string) => Promise<Record<string, unknown>> }> {
  const channel = await peer.openChannel(`transfer:${id}`);
  const replies: Record<string, unknown>[] = [];
  const waiters: { type: string; resolve: (m: Record<string, unknown>) => void }[] = [];
  channel.onMessage((m) => {
    if (typeof m !== 'string') return;
    const msg = JSON.parse(m) as Record<string, unknown>;
    replies.push(msg);
    for (const w of waiters.filter((x) => x.type === msg.type)) w.resolve(msg);
  });
  return {
    channel,
    replied: (type) =>
      new Promise((resolve) => {
        const found = replies.find((r) => r.type === type);
        if (found) resolve(found);
        else waiters.push({ type, resolve });
      }),
  };
}

test('a sender that offers one hash and sends other bytes: refused, nothing cached, no partial kept', async (t) => {
  const { offerer, answerer } = await connectedPair(t);
  const dst = await tempDir(t, 'dst');
  const cache = await store(t);
  const claimed = randomBytes(4096);
  const outcome = receiveNext(answerer, { destDir: dst, store: cache });
  const s = await rawSender(offerer, 'liar');
  s.channel.send(JSON.stringify({ type: 'FILE_META', transfer_id: 'liar', name: 'f.bin', kind: 'file', size: 4096, sha256: sha(claimed) }));
  const ready = await s.replied('TRANSFER_READY');
  assert.deepEqual([ready.offset, ready.held_sha256], [0, null]);
  const other = randomBytes(4096);
  s.channel.send(JSON.stringify({ type: 'FILE_START', transfer_id: 'liar', offset: 0 }));
  s.channel.send(other);
  s.channel.send(JSON.stringify({ type: 'FILE_COMPLETE', transfer_id: 'liar', size: 4096, sha256: sha(claimed) }));
  const o = await outcome;
  assert.equal(o.ok, false);
  assert.equal((o.error as SleapRtcError).code, 'TRANSFER_HASH_MISMATCH');
  assert.equal(cache.stats().entries, 0);
  assert.deepEqual(await readdir(dst), []);
  assert.deepEqual(await readdir(path.join(cache.dir, 'partial')), []);
  await cache.close();
});

test('a poisoned partial prefix is not resumed: the honest sender checks it and starts over', async (t) => {
  const { offerer, answerer } = await connectedPair(t);
  const src = await tempDir(t, 'src');
  const dst = await tempDir(t, 'dst');
  const cache = await store(t);
  const data = randomBytes(2 * 1024 * 1024);
  await writeFile(path.join(src, 'labels.slp'), data);
  // A room member that knows the hash sends garbage under it and cuts the transfer.
  const outcome = receiveNext(answerer, { destDir: dst, store: cache });
  const s = await rawSender(offerer, 'poison');
  s.channel.send(JSON.stringify({ type: 'FILE_META', transfer_id: 'poison', name: 'labels.slp', kind: 'file', size: data.length, sha256: sha(data) }));
  s.channel.send(JSON.stringify({ type: 'FILE_START', transfer_id: 'poison', offset: 0 }));
  for (let i = 0; i < 4; i++) s.channel.send(randomBytes(256 * 1024));
  await s.replied('TRANSFER_PROGRESS');
  s.channel.send(JSON.stringify({ type: 'TRANSFER_CANCEL', transfer_id: 'poison' }));
  assert.equal((await outcome).ok, false);
  const second = receiveNext(answerer, { destDir: dst, store: cache });
  const sent = await sendFile(offerer, path.join(src, 'labels.slp'));
  const got = await second;
  assert.ok(got.ok, String(!got.ok && got.error));
  got.result.lease?.release();
  assert.equal(sent.resumedFrom, 0, 'the held prefix did not match and was not used');
  assert.equal(sent.bytesSent, data.length);
  assert.deepEqual(await readFile(path.join(dst, 'labels.slp')), data);
  await cache.close();
});

test('two receipts of one file at once: one is sent, the other waits and is placed from the cache; one copy', async (t) => {
  const { offerer, answerer } = await connectedPair(t);
  const src = await tempDir(t, 'src');
  const cache = await store(t);
  const data = randomBytes(8 * 1024 * 1024);
  await writeFile(path.join(src, 'video.mp4'), data);
  const dirs = [await tempDir(t, 'j1'), await tempDir(t, 'j2')];
  const receipts: Promise<unknown>[] = [];
  answerer.onChannel((ch) => {
    const dir = ch.label.endsWith('a') ? dirs[0] : dirs[1];
    receipts.push(receiveTransfer(ch, { destDir: dir as string, store: cache }).then((r) => r.lease?.release()));
  });
  const sends = await Promise.all([sendFile(offerer, path.join(src, 'video.mp4'), { transferId: 'tx-a' }), sendFile(offerer, path.join(src, 'video.mp4'), { transferId: 'tx-b' })]);
  await Promise.all(receipts);
  assert.equal(sends[0].bytesSent + sends[1].bytesSent, data.length, 'the bytes crossed once');
  assert.equal(cache.stats().entries, 1);
  for (const d of dirs) assert.deepEqual(await readFile(path.join(d, 'video.mp4')), data);
  await cache.close();
});

test('without a store, a resumable receiver keeps an interrupted part file beside the name and resumes it', async (t) => {
  const { offerer, answerer } = await connectedPair(t);
  const src = await tempDir(t, 'src');
  const dst = await tempDir(t, 'dst');
  const data = randomBytes(12 * 1024 * 1024);
  await writeFile(path.join(src, 'out.slp'), data);
  const stop = new AbortController();
  const first = receiveNext(answerer, { destDir: dst, resumable: true, progressEveryBytes: 1024 * 1024, signal: stop.signal });
  const sending = sendFile(offerer, path.join(src, 'out.slp'), {
    onProgress: (p) => {
      if (p.bytes >= 4 * 1024 * 1024) stop.abort();
    },
  });
  await assert.rejects(sending);
  assert.equal((await first).ok, false);
  const left = await readdir(dst);
  assert.deepEqual(left.sort(), [`out.slp.${sha(data).slice(0, 16)}.part`, `out.slp.${sha(data).slice(0, 16)}.part.json`]);
  const second = receiveNext(answerer, { destDir: dst, resumable: true });
  const sent = await sendFile(offerer, path.join(src, 'out.slp'));
  assert.ok((await second).ok);
  assert.ok(sent.resumedFrom > 0 && sent.bytesSent < data.length);
  assert.deepEqual(await readdir(dst), ['out.slp']);
  assert.deepEqual(await readFile(path.join(dst, 'out.slp')), data);
});

// Issue 15, item 6: the client used to close the whole connection right after its last receive
// resolved, before the TRANSFER_ACK it had just queued was delivered; the worker then logged
// "the receiver's channel closed before it confirmed" although the client had the file.
test('the acknowledgement reaches the sender when the receiver closes the connection right after', async (t) => {
  const src = await tempDir(t, 'src');
  await writeFile(path.join(src, 'f.bin'), randomBytes(64 * 1024));
  const runs = 25;
  const failures: string[] = [];
  for (let i = 0; i < runs; i++) {
    const hooks: (() => void)[] = [];
    const { offerer, answerer } = await connectedPair({ after: (fn: () => void) => hooks.push(fn) });
    const dst = await tempDir(t, `ack${i}`);
    const receiving = new Promise<void>((resolve, reject) => {
      offerer.onChannel((ch) => {
        receiveTransfer(ch, { destDir: dst }).then(() => {
          // What the CLI does once it has the last output: close everything.
          offerer.close();
          resolve();
        }, reject);
      });
    });
    const sent = sendFile(answerer, path.join(src, 'f.bin')).then(
      () => null,
      (e: unknown) => (e as Error).message,
    );
    await receiving;
    const err = await sent;
    if (err) failures.push(err);
    for (const h of hooks) h();
  }
  assert.deepEqual(failures, [], `${failures.length} of ${runs} senders saw the channel close unconfirmed`);
});
