/**
 * The receiving side against a hand-driven (possibly hostile) sender on a real data channel:
 * malformed and out-of-order frames, lying sizes and hashes, hostile folder archives, a sender
 * that ignores flow control or goes silent. Each case: a coded error on the receiver, the same
 * code reported back to the sender, and nothing left at (or outside) the destination.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir } from 'node:fs/promises';
import path from 'node:path';
import { SleapRtcError } from '../../src/errors.js';
import type { ChannelMessage, PeerChannel } from '../../src/transport/channel.js';
import { receiveTransfer, type ReceiveOptions } from '../../src/transport/file-receive.js';
import type { PeerConnection } from '../../src/transport/peer-connection.js';
import { connectedPair } from './helpers/peers.js';
import { tarArchive, type RawEntry } from './helpers/tar-bytes.js';
import { receiveNext, tempDir } from './helpers/transfer.js';

const ID = 'tx-1';
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** A sender driven by hand: open the channel, send frames, read what the receiver answers. */
async function rawSender(offerer: PeerConnection, label = `transfer:${ID}`): Promise<{ channel: PeerChannel; replies: unknown[]; replied: (type: string) => Promise<unknown> }> {
  const channel = await offerer.openChannel(label);
  const replies: unknown[] = [];
  const waiters: { type: string; resolve: (m: unknown) => void }[] = [];
  channel.onMessage((m: ChannelMessage) => {
    if (typeof m !== 'string') return;
    const msg = JSON.parse(m) as { type: string };
    replies.push(msg);
    for (const w of waiters.filter((x) => x.type === msg.type)) w.resolve(msg);
  });
  const replied = (type: string): Promise<unknown> =>
    new Promise((resolve) => {
      const found = replies.find((r) => (r as { type: string }).type === type);
      if (found) resolve(found);
      else waiters.push({ type, resolve });
    });
  return { channel, replies, replied };
}

function fileMeta(data: Uint8Array, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ type: 'FILE_META', transfer_id: ID, name: 'f.bin', kind: 'file', size: data.byteLength, sha256: sha(data), ...extra });
}

/** FILE_START at 0: a plain sender may send it straight after FILE_META, without waiting for TRANSFER_READY. */
function start(offset = 0): string {
  return JSON.stringify({ type: 'FILE_START', transfer_id: ID, offset });
}

function complete(size: number, sha256: string): string {
  return JSON.stringify({ type: 'FILE_COMPLETE', transfer_id: ID, size, sha256 });
}

async function expectFailure(
  outcome: Promise<{ ok: boolean; error?: unknown }>,
  code: string,
  sender: { replied: (type: string) => Promise<unknown> } | null,
  dst: string,
): Promise<SleapRtcError> {
  const o = await outcome;
  assert.equal(o.ok, false, 'receiver should fail');
  const err = o.error as SleapRtcError;
  assert.ok(err instanceof SleapRtcError, String(err));
  assert.equal(err.code, code, err.message);
  if (sender) {
    const reply = (await sender.replied('TRANSFER_ERROR')) as { code: string; message: string };
    assert.equal(reply.code, code);
    assert.ok(reply.message.length > 0);
  }
  assert.deepEqual(await readdir(dst), [], 'destination left empty');
  return err;
}

test('a channel whose label is not a transfer label is refused', async (t) => {
  const { offerer, answerer } = await connectedPair(t);
  const dst = await tempDir(t, 'dst');
  const outcome = receiveNext(answerer, { destDir: dst });
  await offerer.openChannel('control-2');
  await expectFailure(outcome, 'TRANSFER_PROTOCOL', null, dst);
});

const badOpenings: { name: string; frames: (data: Buffer) => (string | Uint8Array)[]; code: string; opts?: Partial<ReceiveOptions> }[] = [
  { name: 'binary before FILE_META', frames: (d) => [d], code: 'TRANSFER_PROTOCOL' },
  { name: 'not JSON', frames: () => ['{"type": "FILE_META", '], code: 'INVALID_JSON' },
  { name: 'unknown type', frames: () => [JSON.stringify({ type: 'GIMME_ROOT', transfer_id: ID })], code: 'UNKNOWN_TYPE' },
  { name: 'receiver-only message from the sender', frames: () => [JSON.stringify({ type: 'TRANSFER_ACK', transfer_id: ID, size: 0, sha256: '0'.repeat(64) })], code: 'UNKNOWN_TYPE' },
  { name: 'file meta without hash', frames: (d) => [fileMeta(d, { sha256: null })], code: 'INVALID_MESSAGE' },
  { name: 'meta with an extra field', frames: (d) => [fileMeta(d, { owner: 'root' })], code: 'INVALID_MESSAGE' },
  { name: 'negative size', frames: (d) => [fileMeta(d, { size: -1 })], code: 'INVALID_MESSAGE' },
  { name: 'uppercase hex hash', frames: (d) => [fileMeta(d, { sha256: sha(d).toUpperCase() })], code: 'INVALID_MESSAGE' },
  { name: 'meta for another transfer', frames: (d) => [fileMeta(d, { transfer_id: 'tx-2' })], code: 'TRANSFER_PROTOCOL' },
  { name: 'FILE_COMPLETE first', frames: (d) => [complete(d.byteLength, sha(d))], code: 'TRANSFER_PROTOCOL' },
  { name: 'oversized control frame', frames: (d) => [fileMeta(d, { name: 'a'.repeat(70_000) })], code: 'FRAME_TOO_LARGE' },
  { name: 'traversing name', frames: (d) => [fileMeta(d, { name: '../../etc/cron.d/x' })], code: 'PATH_VALIDATION' },
  { name: 'absolute name', frames: (d) => [fileMeta(d, { name: '/etc/passwd' })], code: 'PATH_VALIDATION' },
  { name: 'announced size over the limit', frames: (d) => [fileMeta(d)], code: 'TRANSFER_TOO_LARGE', opts: { maxBytes: 10 } },
  {
    name: 'folder with more entries than allowed',
    frames: () => [JSON.stringify({ type: 'FILE_META', transfer_id: ID, name: 'd', kind: 'tar', size: null, sha256: null, entries: 5000 })],
    code: 'TRANSFER_TOO_LARGE',
    opts: { maxEntries: 100 },
  },
];

for (const c of badOpenings) {
  test(`refused opening: ${c.name}`, async (t) => {
    const { offerer, answerer } = await connectedPair(t);
    const dst = await tempDir(t, 'dst');
    const outcome = receiveNext(answerer, { destDir: dst, ...c.opts });
    const sender = await rawSender(offerer);
    for (const f of c.frames(randomBytes(1000))) sender.channel.send(f);
    await expectFailure(outcome, c.code, sender, dst);
  });
}

const lies: { name: string; run: (s: PeerChannel, data: Buffer) => void; code: string }[] = [
  {
    name: 'more bytes than announced',
    run: (s, d) => {
      s.send(fileMeta(d));
      s.send(start());
      s.send(d);
      s.send(new Uint8Array(1));
    },
    code: 'TRANSFER_SIZE_MISMATCH',
  },
  {
    name: 'stream ends short of the announced size',
    run: (s, d) => {
      s.send(fileMeta(d));
      s.send(start());
      s.send(d.subarray(0, 600));
      s.send(complete(d.byteLength, sha(d)));
    },
    code: 'TRANSFER_SIZE_MISMATCH',
  },
  {
    name: 'FILE_COMPLETE changes the size',
    run: (s, d) => {
      s.send(fileMeta(d));
      s.send(start());
      s.send(d.subarray(0, 600));
      s.send(complete(600, sha(d.subarray(0, 600))));
    },
    code: 'TRANSFER_SIZE_MISMATCH',
  },
  {
    name: 'bytes do not match the hash',
    run: (s, d) => {
      s.send(fileMeta(d));
      s.send(start());
      s.send(randomBytes(d.byteLength));
      s.send(complete(d.byteLength, sha(d)));
    },
    code: 'TRANSFER_HASH_MISMATCH',
  },
  {
    name: 'FILE_COMPLETE swaps in the hash of what was sent',
    run: (s, d) => {
      const other = randomBytes(d.byteLength);
      s.send(fileMeta(d));
      s.send(start());
      s.send(other);
      s.send(complete(d.byteLength, sha(other)));
    },
    code: 'TRANSFER_HASH_MISMATCH',
  },
  {
    name: 'a second FILE_META',
    run: (s, d) => {
      s.send(fileMeta(d));
      s.send(fileMeta(d));
    },
    code: 'TRANSFER_PROTOCOL',
  },
];

for (const c of lies) {
  test(`lying sender detected: ${c.name}`, async (t) => {
    const { offerer, answerer } = await connectedPair(t);
    const dst = await tempDir(t, 'dst');
    const outcome = receiveNext(answerer, { destDir: dst });
    const sender = await rawSender(offerer);
    c.run(sender.channel, randomBytes(1000));
    await expectFailure(outcome, c.code, sender, dst);
  });
}

const hostileTars: { name: string; entries: RawEntry[]; code: string }[] = [
  { name: 'absolute path', entries: [{ path: '/tmp/sleap-rtc-hostile-abs', data: 'pwned' }], code: 'PATH_VALIDATION' },
  { name: '../x', entries: [{ path: '../x', data: 'pwned' }], code: 'PATH_VALIDATION' },
  { name: 'nested ../../x', entries: [{ path: 'ok/../../../x', data: 'pwned' }], code: 'PATH_VALIDATION' },
  { name: 'symlink to /etc, then a file through it', entries: [{ path: 'etc', type: 'SymbolicLink', linkpath: '/etc' }, { path: 'etc/sleap-rtc-hostile', data: 'pwned' }], code: 'TRANSFER_ENTRY_REFUSED' },
  { name: 'symlink to the parent', entries: [{ path: 'up', type: 'SymbolicLink', linkpath: '../..' }], code: 'TRANSFER_ENTRY_REFUSED' },
  { name: 'hardlink out', entries: [{ path: 'shadow', type: 'Link', linkpath: '/etc/shadow' }], code: 'TRANSFER_ENTRY_REFUSED' },
  { name: 'hardlink with ..', entries: [{ path: 'h', type: 'Link', linkpath: '../outside/secret' }], code: 'TRANSFER_ENTRY_REFUSED' },
  { name: 'character device', entries: [{ path: 'null', type: 'CharacterDevice' }], code: 'TRANSFER_ENTRY_REFUSED' },
  { name: 'fifo', entries: [{ path: 'pipe', type: 'FIFO' }], code: 'TRANSFER_ENTRY_REFUSED' },
];

for (const c of hostileTars) {
  test(`hostile folder archive refused: ${c.name}`, async (t) => {
    const { offerer, answerer } = await connectedPair(t);
    const base = await tempDir(t, 'base');
    const dst = path.join(base, 'dest');
    const outside = path.join(base, 'outside');
    await mkdir(dst);
    await mkdir(outside);
    const outcome = receiveNext(answerer, { destDir: dst });
    const sender = await rawSender(offerer);
    // Good entries first, so something was already written when the hostile one arrives.
    const bytes = tarArchive([{ path: 'good/', type: 'Directory' }, { path: 'good/a.txt', data: 'fine' }, ...c.entries]);
    sender.channel.send(JSON.stringify({ type: 'FILE_META', transfer_id: ID, name: 'project', kind: 'tar', size: null, sha256: null, entries: 3 }));
    sender.channel.send(start());
    for (let i = 0; i < bytes.length; i += 4096) sender.channel.send(bytes.subarray(i, i + 4096));
    sender.channel.send(complete(bytes.length, sha(bytes)));
    await expectFailure(outcome, c.code, sender, dst);
    assert.deepEqual(await readdir(outside), []);
    assert.deepEqual((await readdir(base)).sort(), ['dest', 'outside']);
    assert.equal(existsSync('/tmp/sleap-rtc-hostile-abs'), false);
    assert.equal(existsSync('/etc/sleap-rtc-hostile'), false);
  });
}

test('a sender that ignores the flow-control window is cut off', async (t) => {
  const { offerer, answerer } = await connectedPair(t);
  const dst = await tempDir(t, 'dst');
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  // onMeta holds the receiver before it writes anything, so everything sent piles up unconfirmed.
  const outcome = receiveNext(answerer, { destDir: dst, windowBytes: 16_384, onMeta: () => held });
  const sender = await rawSender(offerer);
  const data = randomBytes(2 * 1024 * 1024);
  sender.channel.send(fileMeta(data));
  for (let i = 0; i < data.length; i += 65_536) sender.channel.send(data.subarray(i, i + 65_536));
  await expectFailure(outcome, 'TRANSFER_PROTOCOL', sender, dst);
  release();
});

test('a sender that goes silent fails with TRANSFER_STALLED', async (t) => {
  const { offerer, answerer } = await connectedPair(t);
  const dst = await tempDir(t, 'dst');
  const outcome = receiveNext(answerer, { destDir: dst, stallTimeoutMs: 300 });
  const sender = await rawSender(offerer);
  const data = randomBytes(1000);
  sender.channel.send(fileMeta(data));
  sender.channel.send(start());
  sender.channel.send(data.subarray(0, 10));
  await expectFailure(outcome, 'TRANSFER_STALLED', sender, dst);
});

test('onMeta can refuse a transfer before anything is written', async (t) => {
  const { offerer, answerer } = await connectedPair(t);
  const dst = await tempDir(t, 'dst');
  const outcome = receiveNext(answerer, {
    destDir: dst,
    onMeta: (meta) => {
      throw new SleapRtcError('TRANSFER_TOO_LARGE', `no room for ${meta.name}`);
    },
  });
  const sender = await rawSender(offerer);
  const data = randomBytes(10);
  sender.channel.send(fileMeta(data));
  sender.channel.send(data);
  sender.channel.send(complete(10, sha(data)));
  await expectFailure(outcome, 'TRANSFER_TOO_LARGE', sender, dst);
});

test('receiveTransfer on a channel that is already closed reports TRANSFER_ABORTED', async (t) => {
  const { offerer, answerer } = await connectedPair(t);
  const dst = await tempDir(t, 'dst');
  const seen = new Promise<PeerChannel>((resolve) => answerer.onChannel(resolve));
  const ch = await offerer.openChannel(`transfer:${ID}`);
  const incoming = await seen;
  ch.close();
  await incoming.closed;
  await assert.rejects(receiveTransfer(incoming, { destDir: dst }), (e: unknown) => e instanceof SleapRtcError && e.code === 'TRANSFER_ABORTED');
});
