/**
 * Files of a transfer job: the inputs the worker asks the client for (UPLOAD_REQUEST), received
 * into the job's staging folder, and the outputs sent back after JOB_COMPLETE. Each file travels
 * on its own `transfer:<id>` channel (src/transport/file-send.ts, file-receive.ts); the worker
 * picks the ids, so a channel it did not ask for is closed unread.
 */
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { SleapRtcError } from '../errors.js';
import { LIMITS } from '../limits.js';
import type { WorkerToClient } from '../protocol/job.js';
import { transferIdFromLabel } from '../protocol/transfer.js';
import type { PeerChannel } from '../transport/channel.js';
import type { ContentStore, Lease } from '../content/store.js';
import { receiveTransfer, type ReceiveResult } from '../transport/file-receive.js';
import { sendPath } from '../transport/file-send.js';
import type { PeerConnection } from '../transport/peer-connection.js';
import type { CheckedPath } from './request-check.js';
import type { JobOutput } from './job-runner.js';

/** Routes the client's transfer channels on one peer connection to the job that asked for them. */
export class TransferInbox {
  readonly #expected = new Map<string, (channel: PeerChannel) => void>();
  /** Folders offered file by file: the channels of their files (`<id>.f<n>`), held until taken. */
  readonly #folders = new Map<string, FolderChannels>();
  readonly #detach: () => void;

  constructor(peer: PeerConnection) {
    this.#detach = peer.onChannel((channel) => {
      const id = transferIdFromLabel(channel.label);
      const take = id === null ? undefined : this.#expected.get(id);
      if (take && id !== null) {
        this.#expected.delete(id);
        take(channel);
        return;
      }
      const folder = id === null ? undefined : this.#folders.get(id.replace(/\.f\d+$/, ''));
      if (id !== null && folder && /\.f\d+$/.test(id)) folder.arrive(id, channel);
      else channel.close();
    });
  }

  /** Route the channels of folder transfer `id`'s files to the returned taker until `close()`. */
  expectFolder(id: string): FolderChannels {
    const folder = new FolderChannels(() => this.#folders.delete(id));
    this.#folders.set(id, folder);
    return folder;
  }

  /** Resolves with the channel of transfer `id` once the client opens it; rejects on timeout or abort. */
  expect(id: string, timeoutMs: number, signal: AbortSignal): Promise<PeerChannel> {
    return new Promise((resolve, reject) => {
      const stop = (err: SleapRtcError): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        this.#expected.delete(id);
        reject(err);
      };
      const onAbort = (): void => stop(new SleapRtcError('TRANSFER_CANCELLED', `Transfer ${id} was cancelled on this side.`, { transfer_id: id }));
      const timer = setTimeout(
        () => stop(new SleapRtcError('TRANSFER_STALLED', `The client did not start sending transfer ${id} within ${Math.round(timeoutMs / 1000)} s.`, { transfer_id: id })),
        timeoutMs,
      );
      this.#expected.set(id, (channel) => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        resolve(channel);
      });
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  close(): void {
    this.#detach();
    this.#expected.clear();
    for (const f of [...this.#folders.values()]) f.close();
  }
}

/** The channels of one folder's files: held (a few) until the folder's receiver takes them by id. */
export class FolderChannels {
  readonly #held = new Map<string, PeerChannel>();
  readonly #waiting = new Map<string, (channel: PeerChannel) => void>();
  readonly #onClose: () => void;
  #closed = false;

  constructor(onClose: () => void) {
    this.#onClose = onClose;
  }

  arrive(id: string, channel: PeerChannel): void {
    const take = this.#waiting.get(id);
    if (take) {
      this.#waiting.delete(id);
      take(channel);
    } else if (this.#closed || this.#held.has(id) || this.#held.size >= LIMITS.folderHeldChannels) {
      channel.close();
    } else {
      this.#held.set(id, channel);
    }
  }

  take = (id: string, signal: AbortSignal): Promise<PeerChannel> => {
    const held = this.#held.get(id);
    if (held) {
      this.#held.delete(id);
      return Promise.resolve(held);
    }
    return new Promise((resolve, reject) => {
      const onAbort = (): void => {
        this.#waiting.delete(id);
        reject(new SleapRtcError('TRANSFER_CANCELLED', `Transfer ${id} was cancelled on this side.`, { transfer_id: id }));
      };
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      this.#waiting.set(id, (channel) => {
        signal.removeEventListener('abort', onAbort);
        resolve(channel);
      });
    });
  };

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#onClose();
    for (const c of this.#held.values()) c.close();
    this.#held.clear();
  }
}

/**
 * Ask for every input and receive them into `stagingDir`. Each must arrive under exactly the name
 * the request gave it and as the kind it is (a model folder as a folder). With the worker's cache
 * (`store`) a file it holds is placed from there and not sent. Rejects with the first transfer
 * error; the others are cancelled through `signal` by the caller. The cache entries the inputs
 * came from are added to `leases` as they arrive; the caller releases them when the job ends.
 */
export async function receiveInputs(opts: {
  jobId: string;
  inputs: readonly CheckedPath[];
  stagingDir: string;
  inbox: TransferInbox;
  send: (message: WorkerToClient) => void;
  signal: AbortSignal;
  startTimeoutMs?: number;
  /** What the client is told on a transfer channel that fails here (worker-side words, no local paths). */
  peerMessage?: (err: SleapRtcError) => string;
  store?: ContentStore | null;
  leases: Lease[];
}): Promise<ReceiveResult[]> {
  const wanted = opts.inputs.map((p) => ({ path: p, transferId: randomUUID() as string }));
  const timeoutMs = opts.startTimeoutMs ?? LIMITS.jobTransferStartTimeoutMs;
  // One failed input stops the others (and their waits), as does the caller's signal.
  const stop = new AbortController();
  const onOuterAbort = (): void => stop.abort();
  if (opts.signal.aborted) stop.abort();
  else opts.signal.addEventListener('abort', onOuterAbort, { once: true });
  const signal = stop.signal;
  const channels = wanted.map((w) => opts.inbox.expect(w.transferId, timeoutMs, signal));
  // A folder may be offered file by file: its files' channels are routed to its receiver.
  const folders = new Map(wanted.filter((w) => w.path.kind === 'directory').map((w) => [w.transferId, opts.inbox.expectFolder(w.transferId)]));
  // Every expectation exists before the client hears of them, so no channel can arrive unrouted.
  channels.forEach((c) => c.catch(() => {}));
  opts.send({ type: 'UPLOAD_REQUEST', job_id: opts.jobId, files: wanted.map((w) => ({ field: w.path.field, transfer_id: w.transferId })) });
  const receiveOne = async (w: { path: CheckedPath; transferId: string }, i: number): Promise<ReceiveResult> => {
    const channel = await (channels[i] as Promise<PeerChannel>);
    const result = await receiveTransfer(channel, {
      destDir: opts.stagingDir,
      signal,
      ...(opts.peerMessage ? { peerMessage: opts.peerMessage } : {}),
      ...(opts.store ? { store: opts.store } : {}),
      ...(folders.has(w.transferId) ? { subChannel: (folders.get(w.transferId) as FolderChannels).take } : {}),
      onMeta: (meta) => {
        const kinds = w.path.kind === 'directory' ? ['tar', 'folder'] : ['file'];
        if (meta.name !== w.path.relative_path || !kinds.includes(meta.kind)) {
          throw new SleapRtcError(
            'TRANSFER_PROTOCOL',
            `Transfer ${w.transferId} for ${w.path.field} must be the ${w.path.kind} '${w.path.relative_path}', not the ${meta.kind === 'file' ? 'file' : 'folder'} '${meta.name.slice(0, 200)}'.`,
          );
        }
      },
    });
    opts.leases.push(...result.leases);
    return result;
  };
  try {
    return await Promise.all(
      wanted.map((w, i) =>
        receiveOne(w, i).catch((err: unknown) => {
          stop.abort();
          throw err;
        }),
      ),
    );
  } finally {
    opts.signal.removeEventListener('abort', onOuterAbort);
    for (const f of folders.values()) f.close();
  }
}

/** The transfer ids for a transfer job's JOB_COMPLETE. */
export function outputTransfers(outputs: readonly JobOutput[]): (JobOutput & { transfer_id: string })[] {
  return outputs.map((o) => ({ ...o, transfer_id: randomUUID() }));
}

/** Send each output (after JOB_COMPLETE named their ids); the client names them by their last segment. */
export async function sendOutputs(peer: PeerConnection, outputs: readonly (JobOutput & { transfer_id: string })[], signal: AbortSignal): Promise<void> {
  for (const o of outputs) {
    await sendPath(peer, o.local, { transferId: o.transfer_id, name: path.posix.basename(o.relative_path), signal });
  }
}
