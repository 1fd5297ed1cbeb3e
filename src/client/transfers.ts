/**
 * The client's files in a transfer job: inputs sent when the worker asks (UPLOAD_REQUEST), and
 * outputs received after a transfer JOB_COMPLETE. The worker names the transfer ids; the client
 * decides the names things get on its own disk and refuses anything else.
 */
import { mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { SleapRtcError } from '../errors.js';
import { LIMITS } from '../limits.js';
import type { WorkerToClient } from '../protocol/job.js';
import { transferIdFromLabel } from '../protocol/transfer.js';
import type { PeerChannel } from '../transport/channel.js';
import { receiveTransfer } from '../transport/file-receive.js';
import { sendPath } from '../transport/file-send.js';
import type { PeerConnection } from '../transport/peer-connection.js';
import { HashIndex } from '../content/hash-index.js';
import type { LocalInput } from './plan.js';
import { formatBytes, type JobReporter } from './reporter.js';

/** Payload bytes of a job's transfers: what crossed the connection, and what did not have to. */
export interface TransferTally {
  /** Uploaded (client to worker). */
  sent: number;
  /** Downloaded (worker to client). */
  received: number;
  /** Not sent either way because the receiver had them. */
  skipped: number;
}

/** One transfer's line for the user when it did not simply stream from the start. */
function reportShortcut(
  r: JobReporter,
  direction: 'upload' | 'download',
  res: { name: string; size: number; cached: boolean; resumedFrom: number; entries: number | null; cachedFiles: number | null },
): void {
  if (res.cached) r.info(`${direction} ${res.name}: cached on worker (${formatBytes(res.size)} not sent)`);
  else if (res.cachedFiles !== null && res.resumedFrom > 0) {
    r.info(`${direction} ${res.name}: ${res.cachedFiles} of ${res.entries ?? 0} file(s) cached on worker, ${formatBytes(res.resumedFrom)} of ${formatBytes(res.size)} not sent`);
  }
  else if (res.resumedFrom > 0) r.info(`${direction} ${res.name}: resumed at ${formatBytes(res.resumedFrom)} of ${formatBytes(res.size)}`);
}

type UploadRequest = Extract<WorkerToClient, { type: 'UPLOAD_REQUEST' }>;
type TransferComplete = Extract<WorkerToClient, { type: 'JOB_COMPLETE'; transfer: 'webrtc' }>;

/**
 * Send the inputs the worker asked for (the labels file, config, models, and the labels file's
 * videos), one after the other, under their staged names. Each file is offered by its SHA-256
 * (from the hash index when it did not change) and only sent when the worker does not have it;
 * `tally` counts the bytes sent and skipped. Progress is reported as one transfer across all the
 * files: bytes done of all bytes. Returns the local paths the worker asked for.
 */
export async function sendInputs(opts: {
  peer: PeerConnection;
  request: UploadRequest;
  inputs: readonly LocalInput[];
  reporter: JobReporter;
  signal: AbortSignal;
  tally?: TransferTally;
  hashIndex?: HashIndex;
}): Promise<string[]> {
  const plan = opts.request.files.map((f) => {
    const input = opts.inputs.find((i) => i.field === f.field);
    if (!input) throw new SleapRtcError('INVALID_MESSAGE', `The worker asked for ${f.field}, which this job does not have.`);
    return { input, transferId: f.transfer_id };
  });
  const index = opts.hashIndex ?? HashIndex.default();
  // Files have a known size; a folder's is the sender's estimate once it starts.
  const sizes = await Promise.all(plan.map(async ({ input }) => (input.kind === 'file' ? (await stat(input.local)).size : 0)));
  let done = 0;
  const all = `all-inputs-${opts.request.job_id}`;
  try {
    for (const [i, { input, transferId }] of plan.entries()) {
      let last = 0;
      const res = await sendPath(opts.peer, input.local, {
        transferId,
        name: input.staged,
        signal: opts.signal,
        // Counted even when the send fails: --json says what really crossed.
        onBytesSent: (n) => {
          if (opts.tally) opts.tally.sent += n;
        },
        digest: (p, signal) => index.digest(p, signal),
        // A model folder is offered file by file, so each of its files is cached and resumed.
        folders: 'offer',
        onProgress: (p) => {
          last = p.bytes;
          if (p.total !== null && input.kind === 'directory') sizes[i] = p.total;
          const total = sizes.reduce((a, b) => a + b, 0);
          const name = plan.length === 1 ? input.staged : `${i + 1}/${plan.length} ${input.staged}`;
          opts.reporter.transfer('upload', { ...p, transferId: all, name, bytes: done + p.bytes, total: Math.max(total, done + p.bytes) });
        },
      });
      if (opts.tally) opts.tally.skipped += res.size - res.bytesSent;
      reportShortcut(opts.reporter, 'upload', res);
      done += Math.max(last, res.size, sizes[i] ?? 0);
    }
  } finally {
    await index.save();
  }
  return plan.map(({ input }) => input.local);
}

/**
 * Receive a transfer job's outputs. `destination` is a folder for train (the run folder lands in
 * it) and the predictions file for track. Returns the local paths.
 */
export async function receiveOutputs(opts: {
  peer: PeerConnection;
  complete: TransferComplete;
  jobType: 'train' | 'track';
  destination: string;
  reporter: JobReporter;
  signal: AbortSignal;
  startTimeoutMs?: number;
  tally?: TransferTally;
}): Promise<string[]> {
  const destDir = opts.jobType === 'train' ? opts.destination : path.dirname(opts.destination);
  await mkdir(destDir, { recursive: true });
  const timeoutMs = opts.startTimeoutMs ?? LIMITS.jobTransferStartTimeoutMs;
  // Every expected channel has its waiter before the listener is set: channels the worker opened
  // before JOB_COMPLETE reached us were held by the peer connection and are handed over at once.
  const waiting = new Map(
    opts.complete.outputs.map((o) => {
      let take!: (channel: PeerChannel) => void;
      let timer: NodeJS.Timeout | undefined;
      const channel = new Promise<PeerChannel>((resolve, reject) => {
        timer = setTimeout(() => reject(new SleapRtcError('TRANSFER_STALLED', `The worker did not start sending ${o.relative_path} within ${Math.round(timeoutMs / 1000)} s.`)), timeoutMs);
        const onAbort = (): void => {
          clearTimeout(timer);
          reject(new SleapRtcError('TRANSFER_CANCELLED', `Receiving ${o.relative_path} was cancelled.`));
        };
        opts.signal.addEventListener('abort', onAbort, { once: true });
        take = (ch) => {
          clearTimeout(timer);
          opts.signal.removeEventListener('abort', onAbort);
          resolve(ch);
        };
      });
      channel.catch(() => {});
      return [o.transfer_id, { out: o, channel, take, stop: () => clearTimeout(timer) }] as const;
    }),
  );
  const detach = opts.peer.onChannel((channel) => {
    const id = transferIdFromLabel(channel.label);
    const entry = id === null ? undefined : waiting.get(id);
    if (!entry) {
      channel.close();
      return;
    }
    entry.take(channel);
  });
  try {
    const results: string[] = [];
    for (const { out, channel: pending } of waiting.values()) {
      const channel = await pending;
      const expectedKind = out.kind === 'directory' ? 'tar' : 'file';
      const result = await receiveTransfer(channel, {
        destDir,
        // Predictions are rewritten like sleap-nn would on shared storage; run folders are new each time.
        overwrite: opts.jobType === 'track',
        // An interrupted download stays as a part file that `sleap-rtc fetch` resumes.
        resumable: true,
        signal: opts.signal,
        onProgress: (p) => opts.reporter.transfer('download', p),
        onMeta: (meta) => {
          if (meta.name !== path.posix.basename(out.relative_path) || meta.kind !== expectedKind) {
            throw new SleapRtcError('TRANSFER_PROTOCOL', `The worker sent '${meta.name.slice(0, 200)}' (${meta.kind}) for output '${out.relative_path}' (${out.kind}).`);
          }
        },
      });
      if (opts.tally) {
        opts.tally.received += result.bytesReceived;
        opts.tally.skipped += result.resumedFrom;
      }
      reportShortcut(opts.reporter, 'download', result);
      // Spelled under the destination as given, not as its real path (a mount may be a symlink).
      results.push(path.join(destDir, path.basename(result.path)));
    }
    return results;
  } finally {
    detach();
    for (const w of waiting.values()) w.stop();
  }
}
