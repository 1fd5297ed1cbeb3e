/**
 * Sending a file, or a folder as a tar stream, from disk over its own data channel
 * (`transfer:<id>`) of a peer connection. docs/transfer.md describes the protocol and the figures.
 *
 * Flow control is ours, on two levels, and nothing is ever read into memory beyond them:
 *  - the channel's send buffer: stop queueing above `highWaterBytes` of bufferedAmount, resume on
 *    `bufferedamountlow` (threshold `lowWaterBytes`). node-datachannel's own stream wrapper drops
 *    messages when its buffer is full, so it is not used.
 *  - the receiver's disk: stay at most `windowBytes` ahead of the bytes the receiver reports as
 *    written (TRANSFER_PROGRESS), so a slow disk on the far side cannot fill its memory.
 *
 * Integrity: a file's size and SHA-256 are computed in a first pass (or taken from the caller's
 * hash index) and offered in FILE_META; a folder's tar stream is hashed as it is produced and its
 * size and hash go in FILE_COMPLETE. The receiver verifies before it moves into place and answers
 * TRANSFER_ACK.
 *
 * The offer: after FILE_META the sender waits for the receiver's answer. TRANSFER_ACK at once
 * means it already has the file (nothing is sent); TRANSFER_READY names the prefix it holds from
 * an interrupted transfer, which the sender takes only after hashing its own first bytes and
 * finding the same SHA-256. FILE_START then says where the data begins.
 */
import { createHash, randomUUID } from 'node:crypto';
import { constants } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { SleapRtcError } from '../errors.js';
import { LIMITS } from '../limits.js';
import {
  RECEIVER_TO_SENDER_TYPES,
  ReceiverToSenderSchema,
  transferChannelLabel,
  type FileMeta,
  type ReceiverToSender,
  type SenderToReceiver,
  type TransferKind,
} from '../protocol/transfer.js';
import type { PeerChannel } from './channel.js';
import { sha256File, type FileDigest } from '../content/file-hash.js';
import { proofOf, type ProofRange } from '../content/possession.js';
import type { PeerConnection } from './peer-connection.js';
import { RateMeter, type TransferProgressEvent } from './progress.js';
import { StallTimer } from './stall-timer.js';
import { packStream, planDirectory, rechunk, type PackPlan } from './tar-pack.js';
import { remoteTransferError, TransferFraming } from './transfer-framing.js';
import { sendFolder } from './folder-send.js';

export interface SendOptions {
  /** Name at the receiver, a relative path (default: the base name of the local path). */
  name?: string;
  transferId?: string;
  signal?: AbortSignal;
  onProgress?: (progress: TransferProgressEvent) => void;
  /** Folder sends: refuse (default) or skip symbolic links inside the folder. */
  symlinks?: 'refuse' | 'skip';
  chunkBytes?: number;
  highWaterBytes?: number;
  lowWaterBytes?: number;
  windowBytes?: number;
  stallTimeoutMs?: number;
  /** After cancelling, how long to wait for the receiver to close the channel (it then has the cancel). */
  lingerMs?: number;
  /** Called once the send is over, succeeded or not, with the bytes of the stream it put on the channel. */
  onBytesSent?: (bytes: number) => void;
  /** Where a file's SHA-256 comes from (the client's hash index); default: read the whole file. */
  digest?: (filePath: string, signal?: AbortSignal) => Promise<FileDigest>;
  /**
   * A folder: offer it file by file (each file cached and resumed like any other; the receiver
   * must take folder offers, as the worker does for job inputs) instead of one tar stream.
   */
  folders?: 'tar' | 'offer';
  /** Send only this very file (same device and inode), opened without following a final symlink. */
  expectInode?: { dev: number; ino: number };
  /**
   * TEST HOOK, never for production: rewrite each chunk after it was hashed and before it is sent
   * (corruption and truncation tests inject faults here instead of mocking WebRTC).
   */
  transformChunk?: (chunk: Uint8Array, offset: number) => Uint8Array;
}

export interface SendResult {
  transferId: string;
  name: string;
  kind: TransferKind;
  /** Bytes of the stream (the file, or the tar of the folder). */
  size: number;
  sha256: string;
  /** Files and folders sent (folders), null for a file. */
  entries: number | null;
  /** A folder offered file by file: how many of its files the receiver already had (null otherwise). */
  cachedFiles: number | null;
  durationMs: number;
  /** The receiver already had the file: nothing was sent. */
  cached: boolean;
  /** Bytes of the file the receiver already held from an interrupted transfer, not sent again. */
  resumedFrom: number;
  /** Bytes of the stream put on the channel in this transfer. */
  bytesSent: number;
}

/** Send a regular file or a folder, whichever `localPath` is. */
export async function sendPath(peer: PeerConnection, localPath: string, opts: SendOptions = {}): Promise<SendResult> {
  const st = await stat(localPath).catch(() => null);
  if (st?.isDirectory()) return opts.folders === 'offer' ? sendFolder(peer, localPath, opts) : sendDirectory(peer, localPath, opts);
  return sendFile(peer, localPath, opts);
}

export async function sendFile(peer: PeerConnection, filePath: string, opts: SendOptions = {}): Promise<SendResult> {
  opts.signal?.throwIfAborted();
  const st = await stat(filePath).catch(() => null);
  if (!st || !st.isFile()) {
    throw new SleapRtcError('TRANSFER_SOURCE_INVALID', `Cannot send ${filePath}: ${st ? 'it is not a regular file' : 'it does not exist'}.`, { path: filePath });
  }
  const digest = await (opts.digest ?? sha256File)(filePath, opts.signal).catch((err: unknown) => {
    throw sourceReadError(filePath, err);
  });
  const fh = await open(filePath, opts.expectInode ? constants.O_RDONLY | constants.O_NOFOLLOW : 'r').catch((err: unknown) => {
    throw sourceReadError(filePath, err);
  });
  try {
    if (opts.expectInode) {
      const now = await fh.stat();
      if (!now.isFile() || now.dev !== opts.expectInode.dev || now.ino !== opts.expectInode.ino) {
        throw new SleapRtcError('TRANSFER_SOURCE_INVALID', `${filePath} was replaced while its folder was being sent; send the folder again once nothing changes it.`, { path: filePath });
      }
    }
    const sender = new Sender(peer, opts, 'file', opts.name ?? path.basename(filePath));
    sender.prover = (nonce, ranges) => proofOf(nonce, ranges, [filePath]);
    return await sender.run(
      { size: digest.size, sha256: digest.sha256 },
      (from) => readFileChunks(fh, digest.size, sender.chunkBytes, filePath, from),
      async (err) => describeChangedSource(err, filePath, digest),
      (offset, held) => prefixMatches(fh, offset, held, opts.signal),
    );
  } finally {
    await fh.close();
  }
}

export async function sendDirectory(peer: PeerConnection, dirPath: string, opts: SendOptions = {}): Promise<SendResult> {
  opts.signal?.throwIfAborted();
  const plan: PackPlan = await planDirectory(dirPath, { symlinks: opts.symlinks ?? 'refuse', signal: opts.signal });
  const sender = new Sender(peer, opts, 'tar', opts.name ?? path.basename(path.resolve(dirPath)));
  return sender.run(
    { approxSize: plan.approxTarBytes, entries: plan.paths.length },
    () => rechunk(packStream(plan), sender.chunkBytes),
    async (err) => err,
    async () => false,
  );
}

/** What the files of a folder offer did: sent by `body` on channels of their own. */
export interface FolderBodyResult {
  bytesSent: number;
  cachedFiles: number;
}

/**
 * The folder transfer itself (src/transport/folder-send.ts builds the list): FILE_META with every
 * file, then, unless the receiver has them all, `body` sends each file on its own channel; then
 * FILE_COMPLETE with the total and the list's hash, and the receiver's TRANSFER_ACK.
 */
export function sendFolderOffer(
  peer: PeerConnection,
  opts: SendOptions,
  name: string,
  offer: { files: FileMeta['files'] & object; size: number; sha256: string; paths: string[] },
  body: (transferId: string, signal: AbortSignal) => Promise<FolderBodyResult>,
): Promise<SendResult> {
  const sender = new Sender(peer, opts, 'folder', name);
  sender.prover = (nonce, ranges) => proofOf(nonce, ranges, offer.paths);
  return sender.run(
    { size: offer.size, sha256: offer.sha256, entries: offer.files.length, files: offer.files },
    () => (async function* () {})(),
    async (err) => err,
    async () => false,
    (signal) => body(sender.transferId, signal),
  );
}

/** Whether our first `offset` bytes hash to `held` (what the receiver says it holds). */
async function prefixMatches(fh: FileHandle, offset: number, held: string, signal?: AbortSignal): Promise<boolean> {
  const hash = createHash('sha256');
  const buf = Buffer.allocUnsafe(1024 * 1024);
  let pos = 0;
  while (pos < offset) {
    signal?.throwIfAborted();
    const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, offset - pos), pos);
    if (bytesRead === 0) return false;
    hash.update(buf.subarray(0, bytesRead));
    pos += bytesRead;
  }
  return hash.digest('hex') === held;
}

async function* readFileChunks(fh: FileHandle, size: number, chunkBytes: number, filePath: string, from = 0): AsyncGenerator<Uint8Array> {
  let pos = from;
  const read = async (at: number): Promise<Uint8Array> => {
    const buf = Buffer.allocUnsafe(Math.min(chunkBytes, size - at));
    let got = 0;
    while (got < buf.length) {
      const { bytesRead } = await fh.read(buf, got, buf.length - got, at + got);
      if (bytesRead === 0) {
        throw new SleapRtcError('TRANSFER_SOURCE_INVALID', `${filePath} became shorter while it was being sent (${at + got} of ${size} bytes).`, { path: filePath });
      }
      got += bytesRead;
    }
    return buf;
  };
  // Read one chunk ahead so the disk and the channel work at the same time.
  let next = pos < size ? read(pos) : null;
  while (next) {
    const chunk = await next;
    pos += chunk.byteLength;
    next = pos < size ? read(pos) : null;
    // An abandoned read-ahead must not surface as an unhandled rejection.
    next?.catch(() => {});
    yield chunk;
  }
}

function sourceReadError(filePath: string, err: unknown): SleapRtcError {
  if (err instanceof SleapRtcError) return err;
  const e = err as NodeJS.ErrnoException;
  if (e?.name === 'AbortError') return cancelledLocally('');
  return new SleapRtcError('TRANSFER_SOURCE_INVALID', `Cannot read ${filePath}: ${e?.message ?? String(err)}`, { path: filePath });
}

async function describeChangedSource(err: SleapRtcError, filePath: string, digest: FileDigest): Promise<SleapRtcError> {
  if (err.code !== 'TRANSFER_HASH_MISMATCH' && err.code !== 'TRANSFER_SIZE_MISMATCH') return err;
  const now = await stat(filePath).catch(() => null);
  if (now && now.mtimeMs === digest.mtimeMs && now.size === digest.size) return err;
  return new SleapRtcError(err.code, `${err.message} ${filePath} changed while it was being sent; send it again once it is no longer being written.`, {
    ...err.details,
    source_changed: true,
  });
}

function cancelledLocally(transferId: string): SleapRtcError {
  return new SleapRtcError('TRANSFER_CANCELLED', `Transfer ${transferId} was cancelled on this side.`, { transfer_id: transferId, by: 'local' });
}

/** What the receiver answered to FILE_META. */
type OfferAnswer = { ready: Extract<ReceiverToSender, { type: 'TRANSFER_READY' }> } | { ack: Extract<ReceiverToSender, { type: 'TRANSFER_ACK' }> };

interface Announce {
  size?: number;
  sha256?: string;
  approxSize?: number;
  entries?: number;
  files?: FileMeta['files'];
}

class Sender {
  readonly transferId: string;
  /** Answers the receiver's TRANSFER_CHALLENGE (it holds what we offer: show we hold it too). */
  prover: ((nonce: string, ranges: ProofRange[]) => Promise<string>) | null = null;
  #challenged = false;
  readonly chunkBytes: number;
  readonly #peer: PeerConnection;
  readonly #opts: SendOptions;
  readonly #kind: TransferKind;
  readonly #name: string;
  readonly #high: number;
  readonly #low: number;
  readonly #window: number;
  readonly #started = Date.now();
  #framing: TransferFraming<ReceiverToSender, SenderToReceiver> | null = null;
  #error: SleapRtcError | null = null;
  #failed: Promise<never>;
  #rejectFailed!: (err: SleapRtcError) => void;
  #acked = 0;
  #sent = 0;
  #total: number | null = null;
  #ackWaiter: (() => void) | null = null;
  #finalAck: ((ack: Extract<ReceiverToSender, { type: 'TRANSFER_ACK' }>) => void) | null = null;
  /** The receiver's answer to the offer: where to start, or that it already has the file. */
  #answer: ((a: OfferAnswer) => void) | null = null;
  #announce: Announce = {};
  #streaming = false;
  #startOffset = 0;
  #rate = new RateMeter();
  #stall: StallTimer | null = null;
  /** A TRANSFER_CANCEL went out: close only after the receiver has had the chance to read it. */
  #notified = false;

  constructor(peer: PeerConnection, opts: SendOptions, kind: TransferKind, name: string) {
    this.#peer = peer;
    this.#opts = opts;
    this.#kind = kind;
    this.#name = name;
    this.transferId = opts.transferId ?? randomUUID();
    this.chunkBytes = Math.max(1024, Math.min(opts.chunkBytes ?? LIMITS.transferChunkBytes, peer.maxMessageSize));
    this.#high = opts.highWaterBytes ?? LIMITS.transferBufferedHighBytes;
    this.#low = Math.min(opts.lowWaterBytes ?? LIMITS.transferBufferedLowBytes, this.#high);
    this.#window = Math.max(opts.windowBytes ?? LIMITS.transferWindowBytes, this.chunkBytes);
    this.#failed = new Promise<never>((_, reject) => {
      this.#rejectFailed = reject;
    });
    this.#failed.catch(() => {});
  }

  async run(
    announce: Announce,
    source: (from: number) => AsyncIterable<Uint8Array>,
    explain: (err: SleapRtcError) => Promise<SleapRtcError>,
    heldMatches: (offset: number, heldSha256: string) => Promise<boolean>,
    folderBody?: (signal: AbortSignal) => Promise<FolderBodyResult>,
  ): Promise<SendResult> {
    this.#announce = announce;
    const signal = this.#opts.signal;
    const onAbort = (): void => this.#fail(cancelledLocally(this.transferId), 'cancel');
    let channel: PeerChannel | null = null;
    try {
      channel = await this.#peer.openChannel(transferChannelLabel(this.transferId));
      channel.lowWaterBytes = this.#low;
      const framing = new TransferFraming<ReceiverToSender, SenderToReceiver>(channel, this.transferId, ReceiverToSenderSchema, RECEIVER_TO_SENDER_TYPES);
      this.#framing = framing;
      framing.listen({
        control: (m) => this.#onControl(m),
        binary: () => this.#fail(new SleapRtcError('TRANSFER_PROTOCOL', `Transfer ${this.transferId}: the receiver sent binary data.`), 'cancel'),
        invalid: (err) => this.#fail(err, 'cancel'),
        closed: () =>
          this.#fail(new SleapRtcError('TRANSFER_ABORTED', `Transfer ${this.transferId} stopped: the receiver's channel closed before it confirmed the transfer.`, { transfer_id: this.transferId }), false),
      });
      signal?.addEventListener('abort', onAbort, { once: true });
      if (signal?.aborted) onAbort();
      const stallMs = this.#opts.stallTimeoutMs ?? LIMITS.transferStallTimeoutMs;
      this.#stall = new StallTimer(stallMs, () =>
        this.#fail(new SleapRtcError('TRANSFER_STALLED', `Transfer ${this.transferId} made no progress for ${Math.round(stallMs / 1000)} s.`, { transfer_id: this.transferId }), 'cancel'),
      );

      const meta: FileMeta = {
        type: 'FILE_META',
        transfer_id: this.transferId,
        name: this.#name,
        kind: this.#kind,
        size: announce.size ?? null,
        sha256: announce.sha256 ?? null,
        ...(announce.approxSize !== undefined ? { approx_size: announce.approxSize } : {}),
        ...(announce.entries !== undefined ? { entries: announce.entries } : {}),
        ...(announce.files !== undefined ? { files: announce.files } : {}),
      };
      this.#total = announce.size ?? announce.approxSize ?? null;
      this.#check();
      const answered = new Promise<OfferAnswer>((resolve) => (this.#answer = resolve));
      framing.send(meta);
      const answer = await Promise.race([answered, this.#failed]);
      if ('ack' in answer) {
        // The receiver already had this file: it is in place and nothing crosses the channel.
        this.#stall.stop();
        this.#acked = answer.ack.size;
        return this.#result(answer.ack.size, answer.ack.sha256, announce, { cached: true, resumedFrom: answer.ack.size, bytesSent: 0, cachedFiles: announce.files?.length ?? null });
      }
      if (folderBody) return await this.#runFolder(framing, announce, folderBody);
      let offset = answer.ready.offset;
      if (offset > 0 && !(await heldMatches(offset, answer.ready.held_sha256 ?? ''))) offset = 0;
      this.#check();
      this.#sent = offset;
      this.#acked = offset;
      this.#startOffset = offset;
      this.#streaming = true;
      framing.send({ type: 'FILE_START', transfer_id: this.transferId, offset });

      const hash = announce.sha256 === undefined ? createHash('sha256') : null;
      let produced = offset;
      for await (const raw of source(offset)) {
        this.#check();
        hash?.update(raw);
        const chunk = this.#opts.transformChunk ? this.#opts.transformChunk(raw, produced) : raw;
        produced += raw.byteLength;
        await this.#waitForRoom(channel);
        channel.send(chunk);
        this.#sent += chunk.byteLength;
        this.#stall.touch();
      }
      this.#check();
      const sha256 = announce.sha256 ?? (hash as ReturnType<typeof createHash>).digest('hex');
      const ack = new Promise<Extract<ReceiverToSender, { type: 'TRANSFER_ACK' }>>((resolve) => {
        this.#finalAck = resolve;
      });
      framing.send({ type: 'FILE_COMPLETE', transfer_id: this.transferId, size: produced, sha256 });
      await Promise.race([ack, this.#failed]);
      this.#stall.stop();
      this.#emitProgress(this.#acked);
      return this.#result(produced, sha256, announce, { cached: false, resumedFrom: offset, bytesSent: produced - offset, cachedFiles: null });
    } catch (err) {
      const e = this.#error ?? asSendError(err, this.transferId);
      this.#fail(e, 'cancel');
      throw await explain(e);
    } finally {
      this.#stall?.stop();
      signal?.removeEventListener('abort', onAbort);
      this.#opts.onBytesSent?.(this.#streaming ? this.#sent - this.#startOffset : 0);
      if (this.#notified && this.#framing) {
        // We told the receiver to stop: let it read that (it closes when it has) before closing.
        await this.#framing.lingerThenClose(this.#opts.lingerMs ?? LIMITS.transferLingerMs);
      } else {
        channel?.close();
      }
    }
  }

  /** A folder offer the receiver did not have whole: its files go on channels of their own. */
  async #runFolder(framing: TransferFraming<ReceiverToSender, SenderToReceiver>, announce: Announce, body: (signal: AbortSignal) => Promise<FolderBodyResult>): Promise<SendResult> {
    const size = announce.size as number;
    const sha256 = announce.sha256 as string;
    this.#streaming = true;
    framing.send({ type: 'FILE_START', transfer_id: this.transferId, offset: 0 });
    // Each file's transfer watches its own progress; this channel only carries the start and the end.
    (this.#stall as StallTimer).stop();
    const stop = new AbortController();
    this.#failed.catch(() => stop.abort());
    const done = await Promise.race([body(stop.signal), this.#failed]).catch((err: unknown) => {
      stop.abort();
      throw err;
    });
    this.#check();
    const ack = new Promise<Extract<ReceiverToSender, { type: 'TRANSFER_ACK' }>>((resolve) => {
      this.#finalAck = resolve;
    });
    framing.send({ type: 'FILE_COMPLETE', transfer_id: this.transferId, size, sha256 });
    await Promise.race([ack, this.#failed]);
    return this.#result(size, sha256, announce, {
      cached: done.cachedFiles === (announce.files?.length ?? 0),
      resumedFrom: size - done.bytesSent,
      bytesSent: done.bytesSent,
      cachedFiles: done.cachedFiles,
    });
  }

  #result(size: number, sha256: string, announce: Announce, how: { cached: boolean; resumedFrom: number; bytesSent: number; cachedFiles: number | null }): SendResult {
    return {
      transferId: this.transferId,
      name: this.#name,
      kind: this.#kind,
      size,
      sha256,
      entries: announce.entries ?? null,
      durationMs: Date.now() - this.#started,
      ...how,
    };
  }

  #check(): void {
    if (this.#error) throw this.#error;
  }

  async #waitForRoom(channel: PeerChannel): Promise<void> {
    for (;;) {
      this.#check();
      if (channel.bufferedAmount > this.#high) {
        await Promise.race([channel.whenWritable(this.#high), this.#failed]);
        continue;
      }
      if (this.#sent - this.#acked >= this.#window) {
        await Promise.race([new Promise<void>((resolve) => (this.#ackWaiter = resolve)), this.#failed]);
        continue;
      }
      return;
    }
  }

  #onControl(message: ReceiverToSender): void {
    this.#stall?.touch();
    switch (message.type) {
      case 'TRANSFER_READY': {
        const answer = this.#answer;
        this.#answer = null;
        const size = this.#announce.size;
        const bad = !answer || (size === undefined ? message.offset !== 0 : message.offset > size);
        if (bad) {
          this.#fail(new SleapRtcError('TRANSFER_PROTOCOL', `Transfer ${this.transferId}: the receiver sent TRANSFER_READY ${answer ? `offering byte ${message.offset}` : 'twice'}.`), 'cancel');
          return;
        }
        answer({ ready: message });
        return;
      }
      case 'TRANSFER_PROGRESS': {
        // Before the start a zero is a keep-alive (the receiver waits for another copy of this file).
        if (!this.#streaming) {
          if (message.bytes !== 0) this.#fail(new SleapRtcError('TRANSFER_PROTOCOL', `Transfer ${this.transferId}: the receiver confirmed ${message.bytes} bytes before the transfer started.`), 'cancel');
          return;
        }
        if (message.bytes > this.#sent || message.bytes < this.#acked) {
          this.#fail(new SleapRtcError('TRANSFER_PROTOCOL', `Transfer ${this.transferId}: the receiver confirmed ${message.bytes} bytes (sent ${this.#sent}, confirmed before ${this.#acked}).`), 'cancel');
          return;
        }
        this.#acked = message.bytes;
        this.#emitProgress(message.bytes);
        const wake = this.#ackWaiter;
        this.#ackWaiter = null;
        wake?.();
        return;
      }
      case 'TRANSFER_ACK':
        if (this.#answer) {
          // Straight after the offer: the receiver has the file already, if it is this file.
          const answer = this.#answer;
          this.#answer = null;
          if (this.#kind === 'tar' || message.size !== this.#announce.size || message.sha256 !== this.#announce.sha256) {
            this.#fail(new SleapRtcError('TRANSFER_PROTOCOL', `Transfer ${this.transferId}: the receiver confirmed content that was not offered.`), 'cancel');
            return;
          }
          answer({ ack: message });
          return;
        }
        if (!this.#finalAck) {
          this.#fail(new SleapRtcError('TRANSFER_PROTOCOL', `Transfer ${this.transferId}: the receiver confirmed the transfer before it was complete.`), 'cancel');
          return;
        }
        this.#acked = message.size;
        this.#finalAck(message);
        return;
      case 'TRANSFER_CHALLENGE': {
        const prover = this.prover;
        if (!this.#answer || !prover || this.#challenged) {
          this.#fail(new SleapRtcError('TRANSFER_PROTOCOL', `Transfer ${this.transferId}: the receiver sent TRANSFER_CHALLENGE ${this.#challenged ? 'twice' : 'out of turn'}.`), 'cancel');
          return;
        }
        this.#challenged = true;
        prover(message.nonce, message.ranges).then(
          (proof) => this.#framing?.send({ type: 'TRANSFER_PROOF', transfer_id: this.transferId, proof }),
          (err: unknown) => this.#fail(asSendError(err, this.transferId), 'cancel'),
        );
        return;
      }
      case 'TRANSFER_ERROR':
        this.#fail(remoteTransferError(message.code, message.message, this.transferId), false);
        return;
      case 'TRANSFER_CANCEL': {
        const why = message.reason ? `: ${message.reason}` : '';
        this.#fail(new SleapRtcError('TRANSFER_CANCELLED', `Transfer ${this.transferId} was cancelled by the receiver${why}.`, { transfer_id: this.transferId, by: 'remote' }), false);
        return;
      }
    }
  }

  #emitProgress(bytes: number): void {
    this.#opts.onProgress?.({
      transferId: this.transferId,
      name: this.#name,
      bytes,
      total: this.#total,
      rateBytesPerSec: this.#rate.update(bytes),
    });
  }

  /** Settle the failure once; tell the receiver to stop unless it is the one who stopped. */
  #fail(err: SleapRtcError, notify: 'cancel' | false): void {
    if (this.#error) return;
    this.#error = err;
    this.#stall?.stop();
    if (notify) {
      // A plain cancel needs no reason; any other local failure tells the receiver what happened.
      const reason = err.code === 'TRANSFER_CANCELLED' ? {} : { reason: err.message.slice(0, 1000) };
      this.#notified = this.#framing?.send({ type: 'TRANSFER_CANCEL', transfer_id: this.transferId, ...reason }) ?? false;
    }
    this.#rejectFailed(err);
    const wake = this.#ackWaiter;
    this.#ackWaiter = null;
    wake?.();
  }
}

function asSendError(err: unknown, transferId: string): SleapRtcError {
  if (err instanceof SleapRtcError) {
    // A channel that closed under a send is the peer going away, in transfer terms.
    if (err.code === 'PEER_CLOSED') {
      return new SleapRtcError('TRANSFER_ABORTED', `Transfer ${transferId} stopped: ${err.message}`, { transfer_id: transferId });
    }
    return err;
  }
  const e = err as NodeJS.ErrnoException;
  return new SleapRtcError('TRANSFER_IO', `Transfer ${transferId}: could not read the data to send (${e?.message ?? String(err)}).`, { transfer_id: transferId });
}
