/**
 * Receiving one transfer (a file, or a folder as a tar stream) on its own data channel, to disk.
 *
 * Nothing half-written is ever mistaken for whole: data goes to a part file (or a
 * `<name>.<transfer_id>.part/` folder) next to the final name or in the worker's cache, is
 * hashed as it arrives, and is moved to its final name only after the byte count and SHA-256
 * match what the sender announced. A failure that proves the data wrong (mismatch, refused entry,
 * disk full) deletes the part file or folder; an interruption (cancel, dropped channel, stall)
 * keeps a resumable part file for the next transfer of the same content. Either way the call
 * rejects with a coded error, and the sender is told which check failed (TRANSFER_ERROR) unless
 * the sender is the one who stopped.
 *
 * The offer: FILE_META names the file's size and SHA-256. With a content store (the worker's
 * cache) a file it holds is placed at once and acknowledged without a byte sent; otherwise the
 * receiver answers TRANSFER_READY with the verified prefix it holds, and the sender starts there.
 *
 * Memory stays bounded: the sender may be at most `windowBytes` ahead of what this side has
 * written (it learns our progress from TRANSFER_PROGRESS), and a sender that ignores the window
 * is cut off. Every name the sender chooses goes through confinePath(destDir, name).
 */
import { createHash, type Hash } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { SleapRtcError } from '../errors.js';
import { LIMITS } from '../limits.js';
import {
  SENDER_TO_RECEIVER_TYPES,
  SenderToReceiverSchema,
  transferIdFromLabel,
  type FileComplete,
  type FileMeta,
  type FileStart,
  type ReceiverToSender,
  type SenderToReceiver,
  type TransferKind,
} from '../protocol/transfer.js';
import { PartialFile } from '../content/partial-file.js';
import { DestinationExistsError, exists, moveDirIntoPlace, moveFileIntoPlace } from '../content/place.js';
import type { ContentStore, Lease, Receipt } from '../content/store.js';
import { confinePath } from '../storage/confine.js';
import type { PeerChannel } from './channel.js';
import { RateMeter, type TransferProgressEvent } from './progress.js';
import { StallTimer } from './stall-timer.js';
import { TarExtractor } from './tar-extract.js';
import { TransferFraming } from './transfer-framing.js';
import { checkFolderOffer, placeCachedFolder, receiveFolderFiles } from './folder-receive.js';
import type { ManifestFile } from '../content/folder-manifest.js';
import { makeChallenge, proofOf } from '../content/possession.js';

export interface ReceiveOptions {
  /** Existing directory the transfer lands in; the sender's name is confined to it. */
  destDir: string;
  /** Replace an existing file or folder of the same name (default: refuse, TRANSFER_DEST_EXISTS). */
  overwrite?: boolean;
  /** Largest transfer accepted (bytes on the wire, and file content for a folder). */
  maxBytes?: number;
  /** Most entries accepted in a folder. */
  maxEntries?: number;
  signal?: AbortSignal;
  onProgress?: (progress: TransferProgressEvent) => void;
  /** Look at the announcement before anything is written; throw a SleapRtcError to refuse. */
  onMeta?: (meta: FileMeta) => void | Promise<void>;
  /** fsync a received file before renaming it into place (default true; folders are not synced). */
  fsync?: boolean;
  stallTimeoutMs?: number;
  windowBytes?: number;
  progressEveryBytes?: number;
  lingerMs?: number;
  /**
   * The message the sender is told in TRANSFER_ERROR when this side fails (default: the error's
   * own message). A worker passes a mapping that names no path of its own.
   */
  peerMessage?: (err: SleapRtcError) => string;
  /**
   * The worker's cache: a file it holds is placed from it (nothing sent), a file it lacks is
   * received into it and placed from there; its partial files are resumable.
   */
  store?: ContentStore;
  /**
   * Without a store: keep an interrupted file as `<name>.<sha256 prefix>.part` (with a `.json`
   * sidecar) next to its final name, and resume from it when the same content is sent again.
   */
  resumable?: boolean;
  /** Resumable part files are synced and their sidecar updated at least this often. */
  checkpointBytes?: number;
  /**
   * Folder offers (kind `folder`): the channel of each of the folder's files, by its transfer id
   * (`<id>.f<index>`). Without it a folder offer is refused (TRANSFER_PROTOCOL).
   */
  subChannel?: (transferId: string, signal: AbortSignal) => Promise<PeerChannel>;
}

export interface ReceiveResult {
  transferId: string;
  name: string;
  kind: TransferKind;
  /** Final location on this machine. */
  path: string;
  size: number;
  sha256: string;
  /** Entries extracted (folders), null for a file. */
  entries: number | null;
  durationMs: number;
  /** The file came from the store: nothing was sent. */
  cached: boolean;
  /** Bytes of the file that were already held from an earlier transfer and not sent again. */
  resumedFrom: number;
  /** Bytes that crossed the channel in this transfer. */
  bytesReceived: number;
  /** With a store: the hold on the cache entry this file came from; release it when the job ends. */
  lease: Lease | null;
  /** Every hold on cache entries this transfer took (a file's one, or each file of a folder's). */
  leases: Lease[];
  /** A folder offered file by file: how many of its files came from the store (null otherwise). */
  cachedFiles: number | null;
}

type State = 'meta' | 'preparing' | 'ready' | 'data' | 'completing' | 'done' | 'failed';

type Inbound = { kind: 'control'; message: SenderToReceiver } | { kind: 'data'; chunk: Uint8Array };

/** Most chunks handed to one writev call. */
const MAX_WRITEV_CHUNKS = 64;

/** Failures that say nothing against the bytes received so far: a resumable part file is kept. */
const INTERRUPTIONS: ReadonlySet<string> = new Set(['TRANSFER_ABORTED', 'TRANSFER_CANCELLED', 'TRANSFER_STALLED', 'PEER_CLOSED']);

/** Receive the transfer that arrives on `channel` (labelled `transfer:<id>`). */
export function receiveTransfer(channel: PeerChannel, opts: ReceiveOptions): Promise<ReceiveResult> {
  return new Receiver(channel, opts).run();
}

class Receiver {
  readonly #opts: Required<Pick<ReceiveOptions, 'maxBytes' | 'maxEntries' | 'stallTimeoutMs' | 'windowBytes' | 'progressEveryBytes' | 'lingerMs' | 'checkpointBytes'>> &
    ReceiveOptions;
  readonly #channel: PeerChannel;
  readonly #transferId: string;
  readonly #framing: TransferFraming<SenderToReceiver, ReceiverToSender>;
  readonly #started = Date.now();
  #state: State = 'meta';
  #meta: FileMeta | null = null;
  #finalPath = '';
  /** The part folder of a folder transfer. */
  #partPath = '';
  #partial: PartialFile | null = null;
  #receipt: Receipt | null = null;
  #extractor: TarExtractor | null = null;
  /** A folder offered file by file: its list, the run receiving its files, their leases. */
  #folderFiles: ManifestFile[] | null = null;
  #folderRun: Promise<{ bytesReceived: number; cachedFiles: number }> | null = null;
  #folderLeases: Lease[] = [];
  /** Waiting for the sender's TRANSFER_PROOF. */
  #proofWaiter: ((proof: string) => void) | null = null;
  #hash: Hash = createHash('sha256');
  /** Position in the file (a resumed prefix counts) of the bytes received and written so far. */
  #received = 0;
  #written = 0;
  #reported = 0;
  #checkpointed = 0;
  #startOffset = 0;
  /** Aborted when the transfer fails: stops a wait for another receipt of the same content. */
  readonly #stop = new AbortController();
  #failure: SleapRtcError | null = null;
  #inbox: Inbound[] = [];
  #inboxBytes = 0;
  #pumping: Promise<void> | null = null;
  #stall: StallTimer | null = null;
  #rate = new RateMeter();
  #unlisten: (() => void) | null = null;
  #failed: Promise<never>;
  #rejectFailed!: (e: SleapRtcError) => void;
  #resolve!: (r: ReceiveResult) => void;
  #reject!: (e: SleapRtcError) => void;
  readonly #result: Promise<ReceiveResult>;

  constructor(channel: PeerChannel, opts: ReceiveOptions) {
    this.#channel = channel;
    this.#opts = {
      maxBytes: LIMITS.transferMaxBytes,
      maxEntries: LIMITS.transferMaxEntries,
      stallTimeoutMs: LIMITS.transferStallTimeoutMs,
      windowBytes: LIMITS.transferWindowBytes,
      progressEveryBytes: LIMITS.transferProgressEveryBytes,
      lingerMs: LIMITS.transferLingerMs,
      checkpointBytes: LIMITS.transferCheckpointBytes,
      ...opts,
    };
    this.#transferId = transferIdFromLabel(channel.label) ?? '';
    this.#framing = new TransferFraming(channel, this.#transferId, SenderToReceiverSchema, SENDER_TO_RECEIVER_TYPES);
    this.#failed = new Promise<never>((_, reject) => {
      this.#rejectFailed = reject;
    });
    this.#failed.catch(() => {});
    this.#result = new Promise((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
  }

  run(): Promise<ReceiveResult> {
    if (!this.#transferId) {
      this.#channel.close();
      return Promise.reject(new SleapRtcError('TRANSFER_PROTOCOL', `Data channel "${this.#channel.label.slice(0, 80)}" is not a transfer channel (expected "transfer:<id>").`));
    }
    this.#unlisten = this.#framing.listen({
      control: (message) => this.#onControl(message),
      binary: (chunk) => this.#onData(chunk),
      invalid: (err) => this.#fail(err, true),
      closed: () =>
        this.#fail(new SleapRtcError('TRANSFER_ABORTED', `Transfer ${this.#transferId} stopped: the sender's channel closed before the transfer completed.`, { transfer_id: this.#transferId }), false),
    });
    this.#stall = new StallTimer(this.#opts.stallTimeoutMs, () =>
      this.#fail(new SleapRtcError('TRANSFER_STALLED', `Transfer ${this.#transferId} received nothing for ${Math.round(this.#opts.stallTimeoutMs / 1000)} s.`, { transfer_id: this.#transferId }), true),
    );
    const signal = this.#opts.signal;
    if (signal) {
      const onAbort = (): void => this.#cancelLocally();
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
      void this.#result.catch(() => {}).finally(() => signal.removeEventListener('abort', onAbort));
    }
    return this.#result;
  }

  #onControl(message: SenderToReceiver): void {
    this.#stall?.touch();
    if (message.type === 'TRANSFER_PROOF') {
      // Answered while FILE_META is being handled (the queue waits for it), so not queued.
      const waiter = this.#proofWaiter;
      this.#proofWaiter = null;
      if (waiter) waiter(message.proof);
      else this.#fail(new SleapRtcError('TRANSFER_PROTOCOL', `Transfer ${this.#transferId}: TRANSFER_PROOF without a challenge.`), true);
      return;
    }
    if (message.type === 'TRANSFER_CANCEL') {
      const why = message.reason ? `: ${message.reason}` : '';
      const cancelled = new SleapRtcError('TRANSFER_CANCELLED', `Transfer ${this.#transferId} was cancelled by the sender${why}.`, { transfer_id: this.#transferId, by: 'remote' });
      const run = this.#folderRun;
      if (run) {
        // A folder's sender stops when one of its files failed here: that file's code says why, so
        // let it settle first (briefly).
        let timer: ReturnType<typeof setTimeout> | undefined;
        const later = new Promise<void>((r) => (timer = setTimeout(r, this.#opts.lingerMs)));
        void Promise.race([run.catch(() => {}), later]).then(() => {
          clearTimeout(timer);
          this.#fail(cancelled, false);
        });
        return;
      }
      this.#fail(cancelled, false);
      return;
    }
    this.#enqueue({ kind: 'control', message }, 0);
  }

  #onData(chunk: Uint8Array): void {
    this.#stall?.touch();
    this.#enqueue({ kind: 'data', chunk }, chunk.byteLength);
    // The sender may be `windowBytes` ahead of our writes; twice that means it is not listening.
    if (this.#inboxBytes > 2 * this.#opts.windowBytes + LIMITS.transferChunkBytes) {
      this.#fail(new SleapRtcError('TRANSFER_PROTOCOL', `Transfer ${this.#transferId}: the sender ignored flow control (more than ${2 * this.#opts.windowBytes} bytes unconfirmed).`), true);
    }
  }

  #enqueue(item: Inbound, bytes: number): void {
    if (this.#state === 'failed' || this.#state === 'done') return;
    this.#inbox.push(item);
    this.#inboxBytes += bytes;
    this.#kick();
  }

  #kick(): void {
    if (this.#pumping || this.#inbox.length === 0 || this.#state === 'failed' || this.#state === 'done') return;
    this.#pumping = this.#pump().finally(() => {
      this.#pumping = null;
      this.#kick();
    });
  }

  /** Processes inbound items strictly in order, one step at a time; the only writer to disk. */
  async #pump(): Promise<void> {
    try {
      while (this.#inbox.length > 0 && this.#state !== 'failed' && this.#state !== 'done') {
        const item = this.#inbox[0] as Inbound;
        if (item.kind === 'data') {
          // Take every data chunk queued right now: one writev instead of many writes.
          const batch: Uint8Array[] = [];
          while (batch.length < MAX_WRITEV_CHUNKS && this.#inbox[0]?.kind === 'data') {
            const next = this.#inbox.shift() as { kind: 'data'; chunk: Uint8Array };
            this.#inboxBytes -= next.chunk.byteLength;
            if (next.chunk.byteLength > 0) batch.push(next.chunk);
          }
          if (batch.length > 0) await this.#writeData(batch);
          continue;
        }
        this.#inbox.shift();
        const message = item.message;
        if (message.type === 'FILE_META' && this.#state === 'meta') await this.#prepare(message);
        else if (message.type === 'FILE_START' && this.#state === 'ready') await this.#start(message);
        else if (message.type === 'FILE_COMPLETE' && this.#state === 'data') await this.#complete(message);
        else throw new SleapRtcError('TRANSFER_PROTOCOL', `Transfer ${this.#transferId}: ${message.type} arrived out of order (while ${this.#state === 'meta' ? 'waiting for FILE_META' : this.#state}).`);
      }
    } catch (err) {
      this.#fail(asTransferError(err, this.#transferId, this.#receipt ? 'cache' : 'destination'), true);
    }
  }

  async #prepare(meta: FileMeta): Promise<void> {
    this.#state = 'preparing';
    this.#meta = meta;
    if (meta.transfer_id !== this.#transferId) throw new SleapRtcError('TRANSFER_PROTOCOL', 'FILE_META names another transfer.');
    const announced = meta.kind === 'tar' ? (meta.approx_size ?? 0) : (meta.size ?? 0);
    if (announced > this.#opts.maxBytes) {
      throw new SleapRtcError('TRANSFER_TOO_LARGE', `"${meta.name}" is ${announced} bytes; this receiver accepts at most ${this.#opts.maxBytes}.`, { limit: this.#opts.maxBytes });
    }
    if (meta.kind === 'tar' && (meta.entries ?? 0) > this.#opts.maxEntries) {
      throw new SleapRtcError('TRANSFER_TOO_LARGE', `"${meta.name}" has ${meta.entries} entries; this receiver accepts at most ${this.#opts.maxEntries}.`, { limit: this.#opts.maxEntries });
    }
    // The hook is the caller's code: a failure meanwhile (cancel, dropped channel) must not wait on it.
    if (this.#opts.onMeta) await Promise.race([this.#opts.onMeta(meta), this.#failed]);
    this.#finalPath = await confinePath(this.#opts.destDir, meta.name);
    await mkdir(path.dirname(this.#finalPath), { recursive: true });
    // Re-check now that the parents exist: none of them may have led outside destDir.
    this.#finalPath = await confinePath(this.#opts.destDir, meta.name);
    if (!this.#opts.overwrite && (await exists(this.#finalPath))) {
      throw new SleapRtcError('TRANSFER_DEST_EXISTS', `'${meta.name}' already exists in the destination folder; remove it or allow overwriting.`, { name: meta.name });
    }
    if (meta.kind === 'file') {
      const cached = await this.#openFile(meta, meta.sha256 as string, meta.size as number);
      if (cached) return this.#finishCached(meta, cached);
    } else if (meta.kind === 'folder') {
      if (await this.#prepareFolder(meta)) return;
    } else {
      this.#partPath = await confinePath(this.#opts.destDir, `${meta.name}.${this.#transferId}.part`);
      if (this.#state !== 'preparing') return;
      await mkdir(this.#partPath, { mode: 0o755 });
      this.#extractor = new TarExtractor(this.#partPath, { maxEntries: this.#opts.maxEntries, maxBytes: this.#opts.maxBytes });
      this.#extractor.onFail((err) => this.#fail(err, true));
    }
    if (this.#state !== 'preparing') {
      // Failed while the part file was being created: the failure's cleanup may have run already.
      await this.#removePart(INTERRUPTIONS.has(this.#failure?.code ?? ''));
      return;
    }
    this.#state = 'ready';
    const held = this.#partial?.heldBytes ?? 0;
    this.#framing.send({ type: 'TRANSFER_READY', transfer_id: this.#transferId, offset: held, held_sha256: held > 0 ? (this.#partial?.heldSha256 ?? null) : null });
  }

  /** A folder offered file by file: its part folder; true when the store had every file and it is done. */
  async #prepareFolder(meta: FileMeta): Promise<boolean> {
    const files = checkFolderOffer(meta, this.#opts.maxEntries);
    if (!this.#opts.subChannel) throw new SleapRtcError('TRANSFER_PROTOCOL', `"${meta.name.slice(0, 200)}": this receiver takes a folder as one stream, not file by file.`);
    this.#folderFiles = files;
    this.#partPath = await confinePath(this.#opts.destDir, `${meta.name}.${this.#transferId}.part`);
    if (this.#state !== 'preparing') return false;
    await mkdir(this.#partPath, { mode: 0o755 });
    const store = this.#opts.store;
    const leases = store ? await placeCachedFolder(store, files, this.#partPath, (paths) => this.#demandProof(meta, paths, files.map((f) => f.size), false)) : null;
    if (!leases) return false;
    this.#folderLeases = leases;
    if (this.#state !== 'preparing') return true;
    await moveDirIntoPlace(this.#partPath, this.#finalPath, this.#opts.overwrite === true).catch((err: unknown) => {
      throw destinationError(err, meta.name);
    });
    this.#partPath = '';
    if (this.#state !== 'preparing') return true;
    const held = this.#folderLeases;
    this.#folderLeases = [];
    await this.#succeed(meta, { size: meta.size as number, sha256: meta.sha256 as string, entries: files.length, cached: true, lease: null, leases: held, cachedFiles: files.length });
    return true;
  }

  /**
   * The cache holds what the sender offers: before it is placed, the sender proves it holds the
   * bytes (src/content/possession.ts), so knowing a hash never gets anyone a file.
   */
  async #demandProof(meta: FileMeta, paths: string[], sizes: number[], single: boolean): Promise<void> {
    const challenge = makeChallenge(sizes, single);
    if (!challenge) return;
    const answered = new Promise<string>((resolve) => (this.#proofWaiter = resolve));
    this.#framing.send({ type: 'TRANSFER_CHALLENGE', transfer_id: this.#transferId, nonce: challenge.nonce, ranges: challenge.ranges });
    const [got, want] = await Promise.all([Promise.race([answered, this.#failed]), proofOf(challenge.nonce, challenge.ranges, paths)]);
    if (got !== want) {
      throw new SleapRtcError(
        'TRANSFER_PROOF_FAILED',
        `"${meta.name.slice(0, 200)}": the sender offered content this side already has, but its answer to the challenge shows it does not hold those bytes; nothing was placed.`,
        { name: meta.name.slice(0, 200) },
      );
    }
  }

  /** The folder's files, each on its own channel; a failure of one fails the folder. */
  #startFolder(meta: FileMeta): void {
    // Each file's transfer has its own stall timer; this channel carries only the start and the end.
    this.#stall?.stop();
    const run = receiveFolderFiles({
      folderId: this.#transferId,
      meta,
      files: this.#folderFiles as ManifestFile[],
      partPath: this.#partPath,
      opts: this.#opts,
      signal: this.#stop.signal,
      receive: receiveTransfer,
      leases: this.#folderLeases,
      onFile: (before, inFile) => {
        this.#written = before + inFile;
        this.#emitProgress(false, false);
      },
    });
    run.catch((err: unknown) => this.#fail(asTransferError(err, this.#transferId), true));
    this.#folderRun = run;
  }

  /**
   * A file: from the store when it holds it (returns the lease), else open the part file it is
   * received into: the store's (after any other receipt of the same content ended), a resumable one
   * beside the final name, or a plain one.
   */
  async #openFile(meta: FileMeta, sha256: string, size: number): Promise<Lease | null> {
    const store = this.#opts.store;
    if (store) {
      for (let round = 0; round < 3; round++) {
        const lease = await store.acquire(sha256, size);
        if (lease) {
          await this.#demandProof(meta, [lease.path], [size], true).catch((err: unknown) => {
            lease.release();
            throw err;
          });
          return lease;
        }
        const receipt = await store.beginReceipt(sha256, size, {
          signal: this.#stop.signal,
          // Keep the sender's stall timer quiet while another job receives the same content.
          onWait: () => this.#framing.send({ type: 'TRANSFER_PROGRESS', transfer_id: this.#transferId, bytes: 0 }),
        });
        if (receipt) {
          this.#receipt = receipt;
          this.#partial = receipt.partial;
          return null;
        }
      }
      throw new SleapRtcError('TRANSFER_IO', `'${meta.name}' could not be taken from the cache or received into it.`, { name: meta.name });
    }
    if (this.#opts.resumable) {
      const p = await confinePath(this.#opts.destDir, `${meta.name}.${sha256.slice(0, 16)}.part`);
      this.#partial = await PartialFile.open(p, { sha256, size, resumable: true, signal: this.#stop.signal });
    }
    if (!this.#partial) {
      const p = await confinePath(this.#opts.destDir, `${meta.name}.${this.#transferId}.part`);
      this.#partial = await PartialFile.open(p, { sha256, size, resumable: false });
    }
    return null;
  }

  async #finishCached(meta: FileMeta, lease: Lease): Promise<void> {
    try {
      await (this.#opts.store as ContentStore).place(lease, this.#finalPath, this.#opts.overwrite === true);
    } catch (err) {
      lease.release();
      throw err;
    }
    if (this.#state !== 'preparing') {
      lease.release();
      return;
    }
    await this.#succeed(meta, { size: meta.size as number, sha256: meta.sha256 as string, entries: null, cached: true, lease, leases: [lease], cachedFiles: null });
  }

  async #start(m: FileStart): Promise<void> {
    const held = this.#partial?.heldBytes ?? 0;
    if (m.offset !== 0 && m.offset !== held) {
      throw new SleapRtcError('TRANSFER_PROTOCOL', `Transfer ${this.#transferId}: FILE_START at byte ${m.offset}, but this side offered ${held}.`);
    }
    if (this.#folderFiles && m.offset !== 0) throw new SleapRtcError('TRANSFER_PROTOCOL', `Transfer ${this.#transferId}: a folder starts at 0, not at byte ${m.offset}.`);
    if (m.offset === 0 && held > 0) await (this.#partial as PartialFile).restart();
    this.#startOffset = m.offset;
    this.#received = m.offset;
    this.#written = m.offset;
    this.#reported = m.offset;
    this.#checkpointed = m.offset;
    this.#state = 'data';
    this.#emitProgress(true);
    if (this.#folderFiles) this.#startFolder(this.#meta as FileMeta);
  }

  async #writeData(batch: Uint8Array[]): Promise<void> {
    if (this.#state !== 'data') {
      const when = this.#state === 'meta' || this.#state === 'preparing' ? 'before FILE_META' : this.#state === 'ready' ? 'before FILE_START' : 'after FILE_COMPLETE';
      throw new SleapRtcError('TRANSFER_PROTOCOL', `Transfer ${this.#transferId}: data arrived ${when}.`);
    }
    const meta = this.#meta as FileMeta;
    if (meta.kind === 'folder') throw new SleapRtcError('TRANSFER_PROTOCOL', `Transfer ${this.#transferId}: data arrived on a folder's own channel (each file has a channel of its own).`);
    let bytes = 0;
    for (const c of batch) bytes += c.byteLength;
    this.#received += bytes;
    if (meta.kind === 'file' && this.#received > (meta.size ?? 0)) {
      throw new SleapRtcError('TRANSFER_SIZE_MISMATCH', `"${meta.name}": received more than the announced ${meta.size} bytes.`, { expected: meta.size, received: this.#received });
    }
    if (this.#received > this.#opts.maxBytes) {
      throw new SleapRtcError('TRANSFER_TOO_LARGE', `"${meta.name}" exceeds the ${this.#opts.maxBytes}-byte limit of this receiver.`, { limit: this.#opts.maxBytes });
    }
    if (this.#partial) {
      await this.#partial.append(batch);
    } else if (this.#extractor) {
      for (const c of batch) this.#hash.update(c);
      for (const c of batch) await this.#extractor.write(c);
    }
    this.#written += bytes;
    if (this.#partial?.resumable && this.#written - this.#checkpointed >= this.#opts.checkpointBytes) {
      this.#checkpointed = this.#written;
      await this.#partial.checkpoint();
    }
    this.#stall?.touch();
    this.#emitProgress(false);
  }

  async #complete(done: FileComplete): Promise<void> {
    this.#state = 'completing';
    // From here on the work is local (hash, fsync, rename); a slow disk is not a stalled sender.
    this.#stall?.stop();
    const meta = this.#meta as FileMeta;
    if (meta.kind === 'folder') return this.#completeFolder(meta, done);
    const expectedSize = meta.kind === 'file' ? meta.size : done.size;
    if (this.#received !== done.size || expectedSize !== done.size) {
      throw new SleapRtcError(
        'TRANSFER_SIZE_MISMATCH',
        `"${meta.name}": received ${this.#received} bytes but the sender ${expectedSize !== done.size ? `announced ${expectedSize} and then reported` : 'reported'} ${done.size}.`,
        { expected: done.size, received: this.#received },
      );
    }
    const digest = this.#partial ? this.#partial.digest() : this.#hash.digest('hex');
    if (digest !== done.sha256 || (meta.sha256 !== null && meta.sha256 !== done.sha256)) {
      throw new SleapRtcError('TRANSFER_HASH_MISMATCH', `"${meta.name}": the SHA-256 of the received bytes (${digest}) is not the one the sender announced (${meta.sha256 ?? done.sha256}).`, {
        expected: meta.sha256 ?? done.sha256,
        received: digest,
      });
    }
    let entries: number | null = null;
    let lease: Lease | null = null;
    const overwrite = this.#opts.overwrite === true;
    if (this.#partial) {
      const partial = this.#partial;
      await partial.finish(this.#opts.fsync !== false);
      if (this.#state !== 'completing') return;
      if (this.#opts.store) {
        lease = await this.#opts.store.admit(partial);
        this.#partial = null;
        this.#receipt?.end();
        this.#receipt = null;
        try {
          await this.#opts.store.place(lease, this.#finalPath, overwrite);
        } catch (err) {
          lease.release();
          throw err;
        }
      } else {
        await moveFileIntoPlace(partial.path, this.#finalPath, overwrite).catch((err: unknown) => {
          throw destinationError(err, meta.name);
        });
        this.#partial = null;
        await partial.settled();
      }
    } else if (this.#extractor) {
      entries = (await this.#extractor.finish()).entries;
      if (this.#state !== 'completing') return;
      await moveDirIntoPlace(this.#partPath, this.#finalPath, overwrite).catch((err: unknown) => {
        throw destinationError(err, meta.name);
      });
    }
    if (this.#state !== 'completing') {
      lease?.release();
      return;
    }
    await this.#succeed(meta, { size: done.size, sha256: digest, entries, cached: false, lease, leases: lease ? [lease] : [], cachedFiles: null });
  }

  /** Every file arrived (the sender says so after each was acknowledged): the folder into place. */
  async #completeFolder(meta: FileMeta, done: FileComplete): Promise<void> {
    if (done.size !== meta.size || done.sha256 !== meta.sha256) {
      throw new SleapRtcError('TRANSFER_PROTOCOL', `"${meta.name}": the folder ended with a size or SHA-256 other than the one offered.`);
    }
    const files = await Promise.race([this.#folderRun as Promise<{ bytesReceived: number; cachedFiles: number }>, this.#failed]);
    if (this.#state !== 'completing') return;
    await moveDirIntoPlace(this.#partPath, this.#finalPath, this.#opts.overwrite === true).catch((err: unknown) => {
      throw destinationError(err, meta.name);
    });
    this.#partPath = '';
    if (this.#state !== 'completing') return;
    const leases = this.#folderLeases;
    this.#folderLeases = [];
    this.#received = this.#startOffset + files.bytesReceived;
    this.#written = meta.size as number;
    await this.#succeed(meta, { size: done.size, sha256: done.sha256, entries: (this.#folderFiles ?? []).length, cached: false, lease: null, leases, cachedFiles: files.cachedFiles });
  }

  /** In place: tell the sender, and resolve once it has read that (it closes the channel) or after the linger. */
  async #succeed(
    meta: FileMeta,
    r: { size: number; sha256: string; entries: number | null; cached: boolean; lease: Lease | null; leases: Lease[]; cachedFiles: number | null },
  ): Promise<void> {
    this.#state = 'done';
    this.#emitProgress(true);
    this.#stall?.stop();
    this.#unlisten?.();
    this.#framing.send({ type: 'TRANSFER_ACK', transfer_id: this.#transferId, size: r.size, sha256: r.sha256 });
    // Resolving at once would let the caller close the whole connection (the CLI does, then exits)
    // before the acknowledgement left: the sender then saw its channel close unconfirmed.
    await this.#framing.lingerThenClose(this.#opts.lingerMs);
    this.#resolve({
      transferId: this.#transferId,
      name: meta.name,
      kind: meta.kind,
      path: this.#finalPath,
      size: r.size,
      sha256: r.sha256,
      entries: r.entries,
      durationMs: Date.now() - this.#started,
      cached: r.cached,
      resumedFrom: r.cached ? r.size : meta.kind === 'folder' ? r.size - (this.#received - this.#startOffset) : this.#startOffset,
      bytesReceived: r.cached ? 0 : this.#received - this.#startOffset,
      lease: r.lease,
      leases: r.leases,
      cachedFiles: r.cachedFiles,
    });
  }

  #emitProgress(force: boolean, onChannel = true): void {
    const due = this.#written - this.#reported >= this.#opts.progressEveryBytes;
    if (!due && !force) return;
    this.#reported = this.#written;
    if (onChannel && this.#meta?.kind !== 'folder' && (this.#state === 'data' || this.#state === 'completing')) {
      this.#framing.send({ type: 'TRANSFER_PROGRESS', transfer_id: this.#transferId, bytes: this.#written });
    }
    const meta = this.#meta;
    if (!meta || !this.#opts.onProgress) return;
    const total = meta.kind === 'tar' ? (meta.approx_size ?? null) : meta.size;
    this.#opts.onProgress({ transferId: this.#transferId, name: meta.name, bytes: this.#written, total, rateBytesPerSec: this.#rate.update(this.#written) });
  }

  #cancelLocally(): void {
    this.#fail(new SleapRtcError('TRANSFER_CANCELLED', `Transfer ${this.#transferId} was cancelled on this side.`, { transfer_id: this.#transferId, by: 'local' }), 'cancel');
  }

  /**
   * The single failure path: settle once, tell the sender (TRANSFER_ERROR, or TRANSFER_CANCEL when
   * we cancelled) unless the sender is the one who stopped, remove what was written, close.
   */
  #fail(err: SleapRtcError, notify: boolean | 'cancel'): void {
    if (this.#state === 'failed' || this.#state === 'done') return;
    this.#state = 'failed';
    this.#failure = err;
    this.#stop.abort();
    this.#rejectFailed(err);
    this.#stall?.stop();
    this.#unlisten?.();
    if (notify === 'cancel') {
      this.#framing.send({ type: 'TRANSFER_CANCEL', transfer_id: this.#transferId });
    } else if (notify) {
      const message = this.#opts.peerMessage ? this.#opts.peerMessage(err) : err.message;
      this.#framing.send({ type: 'TRANSFER_ERROR', transfer_id: this.#transferId, code: err.code, message: message.slice(0, 4000) });
    }
    // Release a write waiting on the extractor, then let in-flight writes finish before deleting,
    // so nothing is recreated after the delete.
    this.#extractor?.fail(err);
    void (async () => {
      await this.#pumping?.catch(() => {});
      await this.#extractor?.abort(err);
      await this.#removePart(INTERRUPTIONS.has(err.code));
      this.#reject(err);
      await this.#framing.lingerThenClose(notify ? this.#opts.lingerMs : 0);
    })();
  }

  /** Drop what was written; an interrupted resumable part file is kept for the next transfer. */
  async #removePart(interrupted: boolean): Promise<void> {
    const partial = this.#partial;
    this.#partial = null;
    if (partial) await (interrupted ? partial.keep() : partial.discard()).catch(() => {});
    this.#receipt?.end();
    this.#receipt = null;
    // A folder's files that arrived stay in the cache (entries); the job's holds on them end here.
    await this.#folderRun?.catch(() => {});
    for (const l of this.#folderLeases.splice(0)) l.release();
    if (this.#partPath) await rm(this.#partPath, { recursive: true, force: true }).catch(() => {});
  }
}

function destinationError(err: unknown, name: string): unknown {
  if (err instanceof DestinationExistsError) {
    return new SleapRtcError('TRANSFER_DEST_EXISTS', `'${name}' appeared in the destination folder while the transfer ran; the received copy was discarded.`, { name });
  }
  return err;
}

function asTransferError(err: unknown, transferId: string, into: 'cache' | 'destination' = 'destination'): SleapRtcError {
  if (err instanceof SleapRtcError) return err;
  const e = err as NodeJS.ErrnoException;
  if (e?.code === 'ENOSPC' || e?.code === 'EDQUOT') {
    // Which disk: the worker's cache (its partial files) or the destination folder (a job folder, the client's folder).
    const where = into === 'cache' ? "the disk of the worker's cache folder ([worker] cache_dir)" : 'the disk of the destination folder';
    const what = e.code === 'EDQUOT' ? 'is over its quota' : 'is full';
    return new SleapRtcError(
      'TRANSFER_DISK_FULL',
      `Transfer ${transferId}: ${where} ${what} (${e.code}); nothing of the transfer was kept. Free space there (or lower cache_max_bytes), then run the job again.`,
      { transfer_id: transferId, filled: into },
    );
  }
  return new SleapRtcError('TRANSFER_IO', `Transfer ${transferId}: could not write the received data (${e.code ?? ''} ${e.message}).`.replace('( ', '('), {
    transfer_id: transferId,
  });
}
