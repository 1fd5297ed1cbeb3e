/**
 * A folder offered file by file over a real WebRTC pair, into the worker's cache: each file is
 * cached, a folder the cache holds whole is placed without a byte or a second channel, a changed
 * file alone is sent again, an interrupted file resumes, and a hostile list or file is refused
 * with a stable code leaving nothing in the destination and nothing in the cache.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ContentStore } from '../../src/content/store.js';
import { manifestBytes, manifestSha256, type ManifestFile } from '../../src/content/folder-manifest.js';
import type { SleapRtcError } from '../../src/errors.js';
import type { ChannelMessage } from '../../src/transport/channel.js';
import { receiveTransfer, type ReceiveOptions, type ReceiveResult } from '../../src/transport/file-receive.js';
import { sendFile, sendPath } from '../../src/transport/file-send.js';
import type { PeerConnection } from '../../src/transport/peer-connection.js';
import { TransferInbox } from '../../src/worker/transfers.js';
import { connectedPair } from './helpers/peers.js';
import { snapshot, tempDir } from './helpers/transfer.js';

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

async function store(t: TestContext): Promise<ContentStore> {
  const s = await ContentStore.open({ dir: path.join(await tempDir(t, 'cache'), 'c'), maxBytes: 1 << 30 });
  t.after(() => s.close());
  return s;
}

/** The worker's side: transfer `id` (a folder) received through the worker's inbox, its files' channels routed to it. */
function receiveFolder(answerer: PeerConnection, id: string, opts: ReceiveOptions): Promise<{ ok: true; result: ReceiveResult } | { ok: false; error: unknown }> {
  const inbox = new TransferInbox(answerer);
  const files = inbox.expectFolder(id);
  const stop = new AbortController();
  return inbox
    .expect(id, 30_000, stop.signal)
    .then((channel) => receiveTransfer(channel, { ...opts, subChannel: files.take }))
    .then(
      (result) => ({ ok: true as const, result }),
      (error: unknown) => ({ ok: false as const, error }),
    )
    .finally(() => {
      files.close();
      inbox.close();
    });
}

/** A model folder as sleap-nn leaves it: a checkpoint, its configs, a nested folder. */
async function modelFolder(dir: string, ckptBytes = 2 * 1024 * 1024): Promise<Record<string, Buffer>> {
  const files: Record<string, Buffer> = {
    'best.ckpt': randomBytes(ckptBytes),
    'training_config.yaml': Buffer.from('model_config:\n  backbone_config: {}\n'),
    'training_log.csv': Buffer.from('epoch,loss\n0,1.5\n'),
    'viz/train.0000.png': randomBytes(5000),
  };
  for (const [rel, data] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
    await writeFile(path.join(dir, rel), data);
  }
  return files;
}

test('a folder goes file by file into the cache; sent again it is placed at once; a changed file alone is sent again', async (t) => {
  const { offerer, answerer } = await connectedPair(t);
  const src = path.join(await tempDir(t, 'src'), 'centroid');
  const files = await modelFolder(src);
  const total = Object.values(files).reduce((n, b) => n + b.length, 0);
  const cache = await store(t);
  const send = async (dest: string, id: string): Promise<[Awaited<ReturnType<typeof sendPath>>, ReceiveResult]> => {
    const receiving = receiveFolder(answerer, id, { destDir: dest, store: cache });
    const sent = await sendPath(offerer, src, { transferId: id, folders: 'offer' });
    const got = await receiving;
    assert.ok(got.ok, String(!got.ok && (got.error as Error).message));
    for (const l of got.result.leases) l.release();
    assert.deepEqual(await snapshot(path.join(dest, 'centroid')), await snapshot(src));
    return [sent, got.result];
  };

  const [first, got1] = await send(await tempDir(t, 'job1'), 'fold-1');
  assert.deepEqual([first.kind, first.cached, first.bytesSent, first.cachedFiles, first.entries], ['folder', false, total, 0, 4]);
  assert.equal(got1.leases.length, 4);
  assert.equal(cache.stats().entries, 4, 'each file is an entry of its own');
  for (const data of Object.values(files)) assert.ok(cache.has(sha(data)));

  const [second, got2] = await send(await tempDir(t, 'job2'), 'fold-2');
  assert.deepEqual([second.cached, second.bytesSent, second.cachedFiles, got2.cached, got2.bytesReceived], [true, 0, 4, true, 0]);

  const changed = randomBytes(4000);
  await writeFile(path.join(src, 'training_log.csv'), changed);
  const [third] = await send(await tempDir(t, 'job3'), 'fold-3');
  assert.deepEqual([third.cached, third.bytesSent, third.cachedFiles], [false, changed.length, 3]);
  assert.equal(cache.stats().entries, 5);
});

test('a folder cut in the middle of its checkpoint resumes from what the cache holds', async (t) => {
  const { offerer, answerer } = await connectedPair(t);
  const src = path.join(await tempDir(t, 'src'), 'model');
  const files = await modelFolder(src, 24 * 1024 * 1024);
  const total = Object.values(files).reduce((n, b) => n + b.length, 0);
  const cache = await store(t);
  const stop = new AbortController();
  const cut = receiveFolder(answerer, 'cut-1', { destDir: await tempDir(t, 'job1'), store: cache, checkpointBytes: 4 * 1024 * 1024 });
  const sending = sendPath(offerer, src, {
    transferId: 'cut-1',
    folders: 'offer',
    signal: stop.signal,
    onProgress: (p) => {
      if (p.bytes >= 12 * 1024 * 1024) stop.abort();
    },
  });
  await assert.rejects(sending, (e: SleapRtcError) => e.code === 'TRANSFER_CANCELLED');
  const interrupted = await cut;
  assert.equal(interrupted.ok, false);
  const dest = await tempDir(t, 'job2');
  const again = receiveFolder(answerer, 'cut-2', { destDir: dest, store: cache });
  const sent = await sendPath(offerer, src, { transferId: 'cut-2', folders: 'offer' });
  const got = await again;
  assert.ok(got.ok);
  for (const l of got.result.leases) l.release();
  assert.ok(sent.resumedFrom >= 8 * 1024 * 1024, `resumed ${sent.resumedFrom}`);
  assert.equal(sent.bytesSent + sent.resumedFrom, total);
  assert.deepEqual(await snapshot(path.join(dest, 'model')), await snapshot(src));
  assert.deepEqual(await readdir(path.join(cache.dir, 'partial')), [], 'no partial file left');
});

test('a folder sender whose bytes differ from the hashes it offered: refused, nothing cached, nothing left', async (t) => {
  const { offerer, answerer } = await connectedPair(t);
  const src = path.join(await tempDir(t, 'src'), 'm');
  const files = await modelFolder(src);
  const cache = await store(t);
  const dest = await tempDir(t, 'job');
  const receiving = receiveFolder(answerer, 'lie-1', { destDir: dest, store: cache });
  const sending = sendPath(offerer, src, {
    transferId: 'lie-1',
    folders: 'offer',
    transformChunk: (c) => {
      const b = Buffer.from(c);
      b[0] = b[0]! ^ 0xff;
      return b;
    },
  });
  await assert.rejects(sending, (e: SleapRtcError) => e.code === 'TRANSFER_HASH_MISMATCH');
  const got = await receiving;
  assert.equal(got.ok, false);
  assert.equal((got as { error: SleapRtcError }).error.code, 'TRANSFER_HASH_MISMATCH');
  assert.deepEqual(await readdir(dest), [], 'no folder, no part folder');
  assert.equal(cache.stats().entries, 0);
  assert.ok(!cache.has(sha(files['best.ckpt']!)));
  assert.deepEqual(await readdir(path.join(cache.dir, 'partial')), []);
});

const ID = 'raw-1';
const file = (p: string, data = Buffer.from(p)): ManifestFile => ({ path: p, size: data.length, sha256: sha(data) });
function folderMeta(files: ManifestFile[], extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ type: 'FILE_META', transfer_id: ID, name: 'model', kind: 'folder', size: manifestBytes(files), sha256: manifestSha256(files), entries: files.length, files, ...extra });
}

const hostile: { name: string; frames: () => string[]; code: string }[] = [
  { name: 'a path with ..', frames: () => [folderMeta([file('../../etc/cron.d/x')])], code: 'PATH_VALIDATION' },
  { name: 'a nested ..', frames: () => [folderMeta([file('a/../../x')])], code: 'PATH_VALIDATION' },
  { name: 'an absolute path', frames: () => [folderMeta([file('/etc/passwd')])], code: 'PATH_VALIDATION' },
  { name: 'a Windows drive', frames: () => [folderMeta([file('C:/x')])], code: 'PATH_VALIDATION' },
  { name: 'a backslash', frames: () => [folderMeta([file('a\\..\\x')])], code: 'PATH_VALIDATION' },
  { name: 'a dot segment', frames: () => [folderMeta([file('a/./b')])], code: 'PATH_VALIDATION' },
  { name: 'the same path twice (by case)', frames: () => [folderMeta([file('best.ckpt'), file('BEST.ckpt')])], code: 'TRANSFER_PROTOCOL' },
  { name: 'a file that is also a folder', frames: () => [folderMeta([file('a'), file('a/b')])], code: 'TRANSFER_PROTOCOL' },
  { name: 'a total that is not the sum', frames: () => [folderMeta([file('a')], { size: 999 })], code: 'TRANSFER_PROTOCOL' },
  { name: 'a hash that is not the list\'s', frames: () => [folderMeta([file('a')], { sha256: 'a'.repeat(64) })], code: 'TRANSFER_PROTOCOL' },
  { name: 'a list on a file transfer', frames: () => [folderMeta([file('a')], { kind: 'file' })], code: 'INVALID_MESSAGE' },
  { name: 'a folder without its list', frames: () => [folderMeta([file('a')], { files: undefined })], code: 'INVALID_MESSAGE' },
  {
    name: 'binary data on the folder channel',
    frames: () => [folderMeta([file('a')]), JSON.stringify({ type: 'FILE_START', transfer_id: ID, offset: 0 }), '\u0000binary'],
    code: 'TRANSFER_PROTOCOL',
  },
  {
    name: 'a file sent under another name than the list gives',
    frames: () => [folderMeta([file('a')]), JSON.stringify({ type: 'FILE_START', transfer_id: ID, offset: 0 })],
    code: 'TRANSFER_PROTOCOL',
  },
];

for (const c of hostile) {
  test(`a hostile folder offer is refused: ${c.name}`, async (t) => {
    const { offerer, answerer } = await connectedPair(t);
    const dest = await tempDir(t, 'dst');
    const liar = path.join(await tempDir(t, 'liar'), 'b');
    await writeFile(liar, 'a');
    const cache = await store(t);
    const receiving = receiveFolder(answerer, ID, { destDir: dest, store: cache });
    const channel = await offerer.openChannel(`transfer:${ID}`);
    const replies: { type: string; code?: string }[] = [];
    const errored = new Promise<{ code?: string }>((resolve) =>
      channel.onMessage((m: ChannelMessage) => {
        if (typeof m !== 'string') return;
        const msg = JSON.parse(m) as { type: string; code?: string };
        replies.push(msg);
        if (msg.type === 'TRANSFER_ERROR') resolve(msg);
        // The last case: once ready, send the list's file under another name on its own channel.
        if (msg.type === 'TRANSFER_READY' && c.name.startsWith('a file sent under')) {
          void sendFile(offerer, liar, { transferId: `${ID}.f0`, name: 'b' }).catch(() => {});
        }
      }),
    );
    for (const f of c.frames()) channel.send(f.startsWith('\u0000') ? new Uint8Array([1, 2, 3]) : f);
    const got = await receiving;
    assert.equal(got.ok, false);
    assert.equal((got as { error: SleapRtcError }).error.code, c.code, (got as { error: Error }).error.message);
    assert.equal((await errored).code, c.code, 'the sender is told the same code');
    assert.deepEqual(await readdir(dest), [], 'nothing created in the destination');
    assert.equal(cache.stats().entries, 0, 'nothing cached');
  });
}

test('the sending side refuses a link inside the folder, and a file swapped after the walk', async (t) => {
  const { offerer } = await connectedPair(t);
  const src = path.join(await tempDir(t, 'src'), 'm');
  await modelFolder(src);
  await symlink('/etc/passwd', path.join(src, 'escape.yaml'));
  await assert.rejects(sendPath(offerer, src, { folders: 'offer' }), (e: SleapRtcError) => e.code === 'TRANSFER_SOURCE_INVALID' && /symbolic link/.test(e.message));
  // The file actually opened must be the one the walk saw (same device and inode).
  await assert.rejects(sendFile(offerer, path.join(src, 'best.ckpt'), { expectInode: { dev: 1, ino: 1 } }), (e: SleapRtcError) => e.code === 'TRANSFER_SOURCE_INVALID' && /replaced/.test(e.message));
  // Opened without following a final link: a link put in a file's place is not read through.
  await assert.rejects(sendFile(offerer, path.join(src, 'escape.yaml'), { expectInode: { dev: 1, ino: 1 } }), (e: SleapRtcError) => e.code === 'TRANSFER_SOURCE_INVALID');
});

/** A sender that knows the SHA-256 and size of content the receiver's cache holds, but not its bytes. */
async function claim(t: TestContext, files: ManifestFile[] | null, data: Buffer, proof: (challenge: { nonce: string; ranges: { offset: number; length: number }[] }) => string) {
  const { offerer, answerer } = await connectedPair(t);
  const cache = await store(t);
  // An honest user's file enters the cache first.
  const honest = path.join(await tempDir(t, 'honest'), 'secret.slp');
  await writeFile(honest, data);
  const seed = receiveFolder(answerer, 'seed', { destDir: await tempDir(t, 'seed'), store: cache });
  await sendFile(offerer, honest, { transferId: 'seed' });
  const seeded = await seed;
  assert.ok(seeded.ok);
  for (const l of seeded.result.leases) l.release();

  const dest = await tempDir(t, 'thief');
  const receiving = receiveFolder(answerer, ID, { destDir: dest, store: cache });
  const channel = await offerer.openChannel(`transfer:${ID}`);
  const replies: { type: string; code?: string }[] = [];
  let binaryBack = 0;
  const ended = new Promise<void>((resolve) =>
    channel.onMessage((m: ChannelMessage) => {
      if (typeof m !== 'string') {
        binaryBack += m.byteLength;
        return;
      }
      const msg = JSON.parse(m) as { type: string; code?: string; nonce: string; ranges: { offset: number; length: number }[] };
      replies.push(msg);
      if (msg.type === 'TRANSFER_CHALLENGE') channel.send(JSON.stringify({ type: 'TRANSFER_PROOF', transfer_id: ID, proof: proof(msg) }));
      if (msg.type === 'TRANSFER_ERROR' || msg.type === 'TRANSFER_ACK') resolve();
    }),
  );
  channel.send(files ? folderMeta(files) : JSON.stringify({ type: 'FILE_META', transfer_id: ID, name: 'stolen.slp', kind: 'file', size: data.length, sha256: sha(data) }));
  const got = await receiving;
  await ended;
  return { got, replies, binaryBack, dest, cache };
}

for (const size of [1000, 3 * 1024 * 1024]) {
  test(`a sender that claims a cached hash (${size} bytes) without the bytes: challenged, refused (TRANSFER_PROOF_FAILED), nothing placed or sent back`, async (t) => {
    const data = randomBytes(size);
    // The best a thief can do without the bytes: hash the nonce with guesses.
    const guess = (c: { nonce: string }): string => createHash('sha256').update(Buffer.from(c.nonce, 'hex')).update(sha(data)).digest('hex');
    for (const files of [null, [file('model/best.ckpt', data)]]) {
      const r = await claim(t, files, data, guess);
      assert.equal(r.got.ok, false);
      assert.equal((r.got as { error: SleapRtcError }).error.code, 'TRANSFER_PROOF_FAILED');
      assert.deepEqual(r.replies.map((m) => m.type), ['TRANSFER_CHALLENGE', 'TRANSFER_ERROR']);
      assert.equal(r.replies[1]?.code, 'TRANSFER_PROOF_FAILED');
      assert.equal(r.binaryBack, 0, 'not a byte of the cached file went back');
      assert.deepEqual(await readdir(r.dest), [], 'nothing placed');
      assert.equal(r.cache.stats().entries, 1, 'the honest entry stays');
    }
  });
}

test('a sender holding the bytes answers the challenge and the cached copy is placed', async (t) => {
  const data = randomBytes(3 * 1024 * 1024);
  const r = await claim(t, null, data, (c) => {
    const h = createHash('sha256').update(Buffer.from(c.nonce, 'hex'));
    for (const x of c.ranges) h.update(data.subarray(x.offset, x.offset + x.length));
    return h.digest('hex');
  });
  assert.ok(r.got.ok);
  for (const l of r.got.result.leases) l.release();
  assert.equal(r.got.result.cached, true);
  const challenge = r.replies[0] as unknown as { ranges: { length: number }[] };
  assert.ok(challenge.ranges.length === 8 && challenge.ranges.every((x) => x.length === 64 * 1024), 'a large file is sampled, not read whole');
});
