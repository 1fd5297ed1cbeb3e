/**
 * File and folder transfers between two real WebRTC peer connections on loopback, disk to disk:
 * round trips, integrity faults injected on the sender, cancellation from either side, a peer
 * dropped mid-transfer, destination rules.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { SleapRtcError } from '../../src/errors.js';
import { LIMITS } from '../../src/limits.js';
import { sendDirectory, sendFile, sendPath } from '../../src/transport/file-send.js';
import type { TransferProgressEvent } from '../../src/transport/progress.js';
import { connectedPair } from './helpers/peers.js';
import { receiveNext, snapshot, tempDir } from './helpers/transfer.js';

const CHUNK = LIMITS.transferChunkBytes;
/**
 * For cancel and drop tests: the sender may run only two chunks ahead of what the receiver has
 * confirmed (the receiver confirms every chunk), so whatever stops the transfer after the first
 * confirmations always lands before FILE_COMPLETE could have been sent.
 */
const SMALL_WINDOW = { windowBytes: 2 * CHUNK } as const;

function codeOf(outcome: { ok: boolean; error?: unknown }): string {
  assert.equal(outcome.ok, false, 'expected the receiver to fail');
  assert.ok(outcome.error instanceof SleapRtcError, String(outcome.error));
  return outcome.error.code;
}

async function rejection(p: Promise<unknown>): Promise<SleapRtcError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof SleapRtcError, String(err));
    return err;
  }
  assert.fail('expected a rejection');
}

test('files of awkward sizes arrive byte-identical, with monotonic progress ending at the size', async (t) => {
  const { offerer, answerer } = await connectedPair(t);
  const src = await tempDir(t, 'src');
  const dst = await tempDir(t, 'dst');
  for (const size of [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 12_345]) {
    const data = randomBytes(size);
    const file = path.join(src, `f-${size}.bin`);
    await writeFile(file, data);
    const sent: TransferProgressEvent[] = [];
    const received: TransferProgressEvent[] = [];
    const receiving = receiveNext(answerer, { destDir: dst, onProgress: (p) => received.push(p) });
    const result = await sendFile(offerer, file, { onProgress: (p) => sent.push(p) });
    const outcome = await receiving;
    assert.ok(outcome.ok, `size ${size}: ${outcome.ok ? '' : String(outcome.error)}`);
    assert.deepEqual(await readFile(path.join(dst, `f-${size}.bin`)), data, `size ${size}`);
    assert.equal(result.size, size);
    assert.equal(outcome.result.sha256, result.sha256);
    assert.equal(outcome.result.path, path.join(dst, `f-${size}.bin`));
    for (const events of [sent, received]) {
      assert.ok(events.length > 0);
      for (let i = 1; i < events.length; i++) assert.ok((events[i] as TransferProgressEvent).bytes >= (events[i - 1] as TransferProgressEvent).bytes);
      assert.equal(events.at(-1)?.bytes, size);
      assert.equal(events.at(-1)?.total, size);
    }
  }
  // Only the final files: no part files left behind.
  assert.equal((await readdir(dst)).filter((n) => n.endsWith('.part')).length, 0);
});

test('a folder with nested and empty folders, an empty file and odd sizes arrives identical', async (t) => {
  const { offerer, answerer } = await connectedPair(t);
  const src = await tempDir(t, 'src');
  const dst = await tempDir(t, 'dst');
  const root = path.join(src, 'project');
  await mkdir(path.join(root, 'labels', 'v1', 'deep'), { recursive: true });
  await mkdir(path.join(root, 'empty-folder'), { recursive: true });
  await writeFile(path.join(root, 'labels', 'v1', 'deep', 'big.bin'), randomBytes(2 * CHUNK + 4321));
  await writeFile(path.join(root, 'labels', 'labels.slp'), randomBytes(100_003));
  await writeFile(path.join(root, 'empty.txt'), '');
  await writeFile(path.join(root, 'a name with spaces & ünïcode.txt'), 'hello');
  await writeFile(path.join(root, 'x'.repeat(150)), 'long name needs a PAX header');
  const receiving = receiveNext(answerer, { destDir: dst });
  const result = await sendDirectory(offerer, root);
  const outcome = await receiving;
  assert.ok(outcome.ok, outcome.ok ? '' : String(outcome.error));
  assert.equal(result.kind, 'tar');
  assert.equal(outcome.result.entries, result.entries);
  assert.equal(outcome.result.sha256, result.sha256);
  assert.deepEqual(await snapshot(path.join(dst, 'project')), await snapshot(root));
  assert.deepEqual(await readdir(dst), ['project']);
});

test('an empty folder arrives as an empty folder; sendPath picks file or folder', async (t) => {
  const { offerer, answerer } = await connectedPair(t);
  const src = await tempDir(t, 'src');
  const dst = await tempDir(t, 'dst');
  await mkdir(path.join(src, 'nothing'));
  await writeFile(path.join(src, 'one.txt'), 'one');
  let receiving = receiveNext(answerer, { destDir: dst });
  await sendPath(offerer, path.join(src, 'nothing'));
  assert.ok((await receiving).ok);
  receiving = receiveNext(answerer, { destDir: dst });
  const r = await sendPath(offerer, path.join(src, 'one.txt'), { name: 'renamed/one.txt' });
  assert.equal(r.kind, 'file');
  assert.ok((await receiving).ok);
  assert.deepEqual(await snapshot(dst), { nothing: 'dir', renamed: 'dir', 'renamed/one.txt': (await snapshot(src))['one.txt'] as string });
});

test('tiny send buffer and flow-control window still deliver everything, in order', async (t) => {
  const { offerer, answerer } = await connectedPair(t);
  const src = await tempDir(t, 'src');
  const dst = await tempDir(t, 'dst');
  const data = randomBytes(40 * 16_384 + 99);
  await writeFile(path.join(src, 'f.bin'), data);
  const receiving = receiveNext(answerer, { destDir: dst, windowBytes: 32_768, progressEveryBytes: 16_384 });
  await sendFile(offerer, path.join(src, 'f.bin'), { chunkBytes: 16_384, highWaterBytes: 16_384, lowWaterBytes: 4096, windowBytes: 32_768 });
  assert.ok((await receiving).ok);
  assert.deepEqual(await readFile(path.join(dst, 'f.bin')), data);
});

const corruptions: { name: string; transform: (c: Uint8Array, offset: number) => Uint8Array; code: string }[] = [
  {
    name: 'one flipped bit in the second chunk',
    transform: (c, offset) => {
      if (offset !== CHUNK) return c;
      const copy = Uint8Array.from(c);
      copy[17] = (copy[17] as number) ^ 0x01;
      return copy;
    },
    code: 'TRANSFER_HASH_MISMATCH',
  },
  { name: 'last chunk cut short (truncated stream)', transform: (c, offset) => (offset >= 2 * CHUNK ? c.subarray(0, c.byteLength - 1000) : c), code: 'TRANSFER_SIZE_MISMATCH' },
  { name: 'last chunk dropped entirely', transform: (c, offset) => (offset >= 2 * CHUNK ? c.subarray(0, 0) : c), code: 'TRANSFER_SIZE_MISMATCH' },
  { name: 'extra bytes appended to the last chunk', transform: (c, offset) => (offset >= 2 * CHUNK ? Buffer.concat([c, c.subarray(0, 10)]) : c), code: 'TRANSFER_SIZE_MISMATCH' },
];

for (const c of corruptions) {
  test(`file fault detected by the receiver: ${c.name}`, async (t) => {
    const { offerer, answerer } = await connectedPair(t);
    const src = await tempDir(t, 'src');
    const dst = await tempDir(t, 'dst');
    await writeFile(path.join(src, 'f.bin'), randomBytes(2 * CHUNK + 5000));
    const receiving = receiveNext(answerer, { destDir: dst });
    const err = await rejection(sendFile(offerer, path.join(src, 'f.bin'), { transformChunk: c.transform }));
    assert.equal(err.code, c.code, err.message);
    assert.equal(err.details.remote, true);
    assert.equal(codeOf(await receiving), c.code);
    assert.deepEqual(await readdir(dst), [], 'nothing left at the destination');
  });
}

test('folder fault detected: corrupted file data inside the tar stream', async (t) => {
  const { offerer, answerer } = await connectedPair(t);
  const src = await tempDir(t, 'src');
  const dst = await tempDir(t, 'dst');
  await mkdir(path.join(src, 'd'));
  await writeFile(path.join(src, 'd', 'big.bin'), randomBytes(3 * CHUNK));
  const receiving = receiveNext(answerer, { destDir: dst });
  const flip = (chunk: Uint8Array, offset: number): Uint8Array => {
    if (offset !== CHUNK) return chunk;
    const copy = Uint8Array.from(chunk);
    copy[1000] = (copy[1000] as number) ^ 0xff;
    return copy;
  };
  const err = await rejection(sendDirectory(offerer, path.join(src, 'd'), { transformChunk: flip }));
  assert.equal(err.code, 'TRANSFER_HASH_MISMATCH');
  assert.equal(codeOf(await receiving), 'TRANSFER_HASH_MISMATCH');
  assert.deepEqual(await readdir(dst), []);
});

test('cancel from the sending side (AbortSignal): both sides report TRANSFER_CANCELLED, nothing left', async (t) => {
  const { offerer, answerer } = await connectedPair(t);
  const src = await tempDir(t, 'src');
  const dst = await tempDir(t, 'dst');
  await writeFile(path.join(src, 'f.bin'), randomBytes(64 * CHUNK));
  const ac = new AbortController();
  const receiving = receiveNext(answerer, { destDir: dst, progressEveryBytes: CHUNK });
  const err = await rejection(
    sendFile(offerer, path.join(src, 'f.bin'), {
      ...SMALL_WINDOW,
      signal: ac.signal,
      onProgress: (p) => {
        if (p.bytes > 0) ac.abort();
      },
    }),
  );
  assert.equal(err.code, 'TRANSFER_CANCELLED');
  assert.equal(err.details.by, 'local');
  const outcome = await receiving;
  assert.equal(codeOf(outcome), 'TRANSFER_CANCELLED');
  assert.equal((outcome as { error: SleapRtcError }).error.details.by, 'remote');
  assert.deepEqual(await readdir(dst), []);
});

test('cancel from the receiving side: both sides report TRANSFER_CANCELLED, nothing left', async (t) => {
  const { offerer, answerer } = await connectedPair(t);
  const src = await tempDir(t, 'src');
  const dst = await tempDir(t, 'dst');
  await writeFile(path.join(src, 'f.bin'), randomBytes(64 * CHUNK));
  const ac = new AbortController();
  const receiving = receiveNext(answerer, {
    destDir: dst,
    signal: ac.signal,
    progressEveryBytes: CHUNK,
    onProgress: (p) => {
      if (p.bytes > 0) ac.abort();
    },
  });
  const err = await rejection(sendFile(offerer, path.join(src, 'f.bin'), SMALL_WINDOW));
  assert.equal(err.code, 'TRANSFER_CANCELLED');
  assert.equal(err.details.by, 'remote');
  const outcome = await receiving;
  assert.equal(codeOf(outcome), 'TRANSFER_CANCELLED');
  assert.equal((outcome as { error: SleapRtcError }).error.details.by, 'local');
  assert.deepEqual(await readdir(dst), []);
});

test('cancel of a folder transfer removes the partly extracted folder', async (t) => {
  const { offerer, answerer } = await connectedPair(t);
  const src = await tempDir(t, 'src');
  const dst = await tempDir(t, 'dst');
  await mkdir(path.join(src, 'd', 'sub'), { recursive: true });
  for (let i = 0; i < 8; i++) await writeFile(path.join(src, 'd', 'sub', `f${i}.bin`), randomBytes(4 * CHUNK));
  const ac = new AbortController();
  const receiving = receiveNext(answerer, { destDir: dst, progressEveryBytes: CHUNK });
  const err = await rejection(sendDirectory(offerer, path.join(src, 'd'), { ...SMALL_WINDOW, signal: ac.signal, onProgress: (p) => p.bytes > 6 * CHUNK && ac.abort() }));
  assert.equal(err.code, 'TRANSFER_CANCELLED');
  assert.equal(codeOf(await receiving), 'TRANSFER_CANCELLED');
  assert.deepEqual(await readdir(dst), []);
});

test('the sender\'s peer connection dropped mid-transfer: receiver reports TRANSFER_ABORTED, no partial file', async (t) => {
  const { offerer, answerer } = await connectedPair(t);
  const src = await tempDir(t, 'src');
  const dst = await tempDir(t, 'dst');
  await writeFile(path.join(src, 'f.bin'), randomBytes(64 * CHUNK));
  const receiving = receiveNext(answerer, { destDir: dst, progressEveryBytes: CHUNK });
  const sending = sendFile(offerer, path.join(src, 'f.bin'), {
    ...SMALL_WINDOW,
    onProgress: (p) => {
      if (p.bytes > 0) offerer.close();
    },
  });
  const err = await rejection(sending);
  assert.equal(err.code, 'TRANSFER_ABORTED');
  const outcome = await receiving;
  assert.equal(codeOf(outcome), 'TRANSFER_ABORTED');
  assert.match((outcome as { error: Error }).error.message, /channel closed/);
  assert.deepEqual(await readdir(dst), []);
});

test('an existing destination is refused (and left alone) unless overwrite is set', async (t) => {
  const { offerer, answerer } = await connectedPair(t);
  const src = await tempDir(t, 'src');
  const dst = await tempDir(t, 'dst');
  await writeFile(path.join(src, 'f.txt'), 'new');
  await writeFile(path.join(dst, 'f.txt'), 'old');
  let receiving = receiveNext(answerer, { destDir: dst });
  const err = await rejection(sendFile(offerer, path.join(src, 'f.txt')));
  assert.equal(err.code, 'TRANSFER_DEST_EXISTS');
  assert.equal(codeOf(await receiving), 'TRANSFER_DEST_EXISTS');
  assert.equal(await readFile(path.join(dst, 'f.txt'), 'utf8'), 'old');

  receiving = receiveNext(answerer, { destDir: dst, overwrite: true });
  await sendFile(offerer, path.join(src, 'f.txt'));
  assert.ok((await receiving).ok);
  assert.equal(await readFile(path.join(dst, 'f.txt'), 'utf8'), 'new');

  await mkdir(path.join(src, 'd'));
  await writeFile(path.join(src, 'd', 'n.txt'), 'new');
  await mkdir(path.join(dst, 'd'));
  await writeFile(path.join(dst, 'd', 'stale.txt'), 'stale');
  receiving = receiveNext(answerer, { destDir: dst, overwrite: true });
  await sendDirectory(offerer, path.join(src, 'd'));
  assert.ok((await receiving).ok);
  assert.deepEqual(await readdir(path.join(dst, 'd')), ['n.txt']);
  assert.deepEqual((await readdir(dst)).sort(), ['d', 'f.txt']);
});

test('names the receiver must not accept are refused there, and nothing escapes destDir', async (t) => {
  const { offerer, answerer } = await connectedPair(t);
  const src = await tempDir(t, 'src');
  const outside = await tempDir(t, 'outside');
  const dst = await tempDir(t, 'dst');
  await writeFile(path.join(src, 'f.txt'), 'x');
  await symlink(outside, path.join(dst, 'escape'));
  for (const name of ['../f.txt', '/tmp/f.txt', 'a/../../f.txt', 'escape/f.txt', 'a\\b.txt', '']) {
    const receiving = receiveNext(answerer, { destDir: dst });
    const err = await rejection(sendFile(offerer, path.join(src, 'f.txt'), { name }));
    // An empty name never leaves the sender: the FILE_META schema refuses it on the receiver.
    assert.ok(['PATH_VALIDATION', 'INVALID_MESSAGE'].includes(err.code), `${name}: ${err.code} ${err.message}`);
    const code = codeOf(await receiving);
    assert.equal(code, err.code, name);
  }
  assert.deepEqual(await readdir(outside), []);
  assert.deepEqual(await readdir(dst), ['escape']);
});

test('a folder holding a symlink is refused before anything is sent, or sent without it on request', async (t) => {
  const { offerer, answerer } = await connectedPair(t);
  const src = await tempDir(t, 'src');
  const dst = await tempDir(t, 'dst');
  await mkdir(path.join(src, 'd'));
  await writeFile(path.join(src, 'd', 'real.txt'), 'r');
  await symlink('/etc/passwd', path.join(src, 'd', 'link'));
  const err = await rejection(sendDirectory(offerer, path.join(src, 'd')));
  assert.equal(err.code, 'TRANSFER_SOURCE_INVALID');
  assert.match(err.message, /symbolic link/);

  const receiving = receiveNext(answerer, { destDir: dst });
  await sendDirectory(offerer, path.join(src, 'd'), { symlinks: 'skip' });
  assert.ok((await receiving).ok);
  assert.deepEqual(await readdir(path.join(dst, 'd')), ['real.txt']);
});

test('sending something that is not there, or not a file, fails before a channel opens', async (t) => {
  const { offerer } = await connectedPair(t);
  const src = await tempDir(t, 'src');
  for (const p of [path.join(src, 'missing.bin'), src]) {
    const err = await rejection(sendFile(offerer, p));
    assert.equal(err.code, 'TRANSFER_SOURCE_INVALID');
  }
  assert.equal((await rejection(sendDirectory(offerer, path.join(src, 'missing')))).code, 'TRANSFER_SOURCE_INVALID');
});
