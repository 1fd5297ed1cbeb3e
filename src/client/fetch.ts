/**
 * `sleap-rtc fetch JOB_ID`: get the kept results of a transfer job whose download was cut. The
 * client's pending note (pending-results.ts) says which worker and where they go; flags can say
 * it instead. Part files an earlier download left are resumed (files) or removed (folders, which
 * are sent whole again), so nothing half-written stays beside the results.
 */
import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { SleapRtcConfig } from '../config/index.js';
import { SleapRtcError, UsageError, type ErrorCode } from '../errors.js';
import { silentLogger, type Logger } from '../log.js';
import { encodeMessage } from '../protocol/codec.js';
import { decodeWorkerToClient, type ClientToWorker, type WorkerToClient } from '../protocol/job.js';
import { connectToPeer, type PeerConnection } from '../transport/peer-connection.js';
import { SignalingClient } from '../transport/signaling-client.js';
import { clearPending, readPending } from './pending-results.js';
import type { JobReporter } from './reporter.js';
import { receiveOutputs } from './transfers.js';

type TransferComplete = Extract<WorkerToClient, { type: 'JOB_COMPLETE'; transfer: 'webrtc' }>;

export interface FetchResult {
  job_id: string;
  status: 'completed' | 'failed' | 'cancelled';
  worker: string;
  outputs: string[];
  bytes_received: number;
  bytes_skipped: number;
  error?: { code: ErrorCode; message: string };
}

export interface FetchOptions {
  jobId: string;
  config: SleapRtcConfig;
  serverUrl: string;
  roomId: string;
  token: string;
  /** The worker's name; default: the one the pending note names. */
  worker?: string;
  /** Where the results go (a folder for train, the predictions file for track); default: the note's. */
  output?: string;
  reporter: JobReporter;
  logger?: Logger;
  signal?: AbortSignal;
}

/** Throws UsageError when there is nothing to say where to fetch from; never throws after connecting. */
export async function fetchResults(o: FetchOptions): Promise<FetchResult> {
  const note = await readPending(o.jobId);
  const worker = o.worker ?? note?.worker;
  const destination = o.output !== undefined ? path.resolve(o.output) : note?.destination;
  if (!worker || !destination) {
    throw new UsageError(
      `This machine has no note of job ${o.jobId} still waiting for results; say where they are and where they go: sleap-rtc fetch ${o.jobId} --worker NAME --output PATH.`,
    );
  }
  const r = o.reporter;
  const signal = o.signal ?? new AbortController().signal;
  const result: FetchResult = { job_id: o.jobId, status: 'failed', worker, outputs: [], bytes_received: 0, bytes_skipped: 0 };
  const tally = { sent: 0, received: 0, skipped: 0 };
  let signaling: SignalingClient | null = null;
  let peer: PeerConnection | null = null;
  try {
    signaling = await SignalingClient.connect({ serverUrl: o.serverUrl, roomId: o.roomId, token: o.token, role: 'client', logger: o.logger ?? silentLogger() });
    r.info(`fetching the results of job ${o.jobId} from worker ${worker}`);
    peer = await connectToPeer({ signaler: signaling, remotePeerId: worker, iceServers: o.config.ice.servers.map((s) => ({ ...s, urls: [...s.urls] })), signal });
    const complete = await askForResults(peer, o.jobId, worker, signal);
    const jobType = note?.job_type ?? (complete.outputs.some((x) => x.kind === 'directory') ? 'train' : 'track');
    const destDir = jobType === 'train' ? destination : path.dirname(destination);
    await removeStaleParts(destDir, complete.outputs.map((x) => path.posix.basename(x.relative_path)));
    result.outputs = await receiveOutputs({ peer, complete, jobType, destination, reporter: r, signal, tally });
    result.status = 'completed';
    await clearPending(o.jobId);
    r.info(`job ${o.jobId}: results received`);
  } catch (err) {
    const e = err instanceof SleapRtcError ? err : new SleapRtcError('INTERNAL', (err as Error)?.message ?? String(err));
    result.error = { code: e.code, message: e.message };
    if (signal.aborted) result.status = 'cancelled';
    r.warn(`fetching job ${o.jobId} ${result.status}: [${e.code}] ${e.message}`);
  } finally {
    result.bytes_received = tally.received;
    result.bytes_skipped = tally.skipped;
    peer?.close();
    await signaling?.close();
  }
  return result;
}

/** Send FETCH_REQUEST; the worker answers a transfer JOB_COMPLETE, or JOB_REJECTED. */
function askForResults(peer: PeerConnection, jobId: string, worker: string, signal: AbortSignal): Promise<TransferComplete> {
  return new Promise((resolve, reject) => {
    const onAbort = (): void => reject(new SleapRtcError('TRANSFER_CANCELLED', 'Fetching was cancelled.'));
    signal.addEventListener('abort', onAbort, { once: true });
    peer.onClose((reason) => reject(new SleapRtcError('PEER_CLOSED', `The connection to worker ${worker} closed before it answered (${reason.message}).`)));
    peer.control.onMessage((frame) => {
      if (typeof frame !== 'string') return;
      let m: WorkerToClient;
      try {
        m = decodeWorkerToClient(frame);
      } catch {
        return;
      }
      if (m.type === 'PING') {
        // The worker checks we are still here (it heard we left the room): answer, as a job's client does.
        const pong: ClientToWorker = { type: 'PONG', nonce: m.nonce };
        peer.control.send(encodeMessage(pong));
        return;
      }
      if (m.type === 'error' || m.type === 'PONG' || m.job_id !== jobId) return;
      if (m.type === 'JOB_COMPLETE' && m.transfer === 'webrtc') resolve(m);
      else if (m.type === 'JOB_REJECTED') reject(new SleapRtcError(m.code, m.message));
    });
    const request: ClientToWorker = { type: 'FETCH_REQUEST', job_id: jobId };
    peer.control.send(encodeMessage(request));
  });
}

/**
 * Part files of an earlier download of these outputs: a folder's `<name>.<transfer id>.part/`
 * (sent whole again, so removed) and a plain `<name>.<transfer id>.part`. A resumable
 * `<name>.<sha256 prefix>.part` with its sidecar stays: the download resumes from it.
 */
async function removeStaleParts(destDir: string, names: readonly string[]): Promise<void> {
  const entries = await readdir(destDir).catch(() => [] as string[]);
  for (const name of names) {
    const stale = new RegExp(`^${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\\.part(\\.old-[0-9a-f]+)?$`);
    for (const e of entries) if (stale.test(e)) await rm(path.join(destDir, e), { recursive: true, force: true });
  }
}
