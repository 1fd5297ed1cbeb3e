/**
 * A worker in a room: registers with its storage backends, job types and GPU, accepts WebRTC
 * connections from clients, runs one WorkerSession per connection, and keeps its advertised
 * status honest (`busy` while every job slot is taken, `available` otherwise).
 */
import { mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { SleapRtcConfig } from '../config/index.js';
import { silentLogger, type Logger } from '../log.js';
import type { Capabilities, GpuInfo, JobType, Metadata, WorkerStatus } from '../protocol/common.js';
import { StorageConfig } from '../storage/index.js';
import { xdgCacheDir } from '../content/xdg.js';
import { ContentStore } from '../content/store.js';
import { acceptPeer } from '../transport/peer-connection.js';
import { SignalingClient } from '../transport/signaling-client.js';
import { buildCapabilities, checkBackends, describeBackend } from './capabilities.js';
import { detectGpu } from './gpu.js';
import { WorkerSession, type CancelReason } from './session.js';
import { ResultsShelf } from './results.js';
import { openWorkDir } from './work-dir.js';
import { probeSleapNn, type SleapNnInfo } from './sleap-nn-probe.js';

export interface WorkerOptions {
  config: SleapRtcConfig;
  serverUrl: string;
  roomId: string;
  token: string;
  /** Identity in the room (requested peer id and metadata.name); default [worker] name, else the host name. */
  name?: string;
  logger?: Logger;
  /** Environment for sleap-nn (default: this process's). */
  env?: NodeJS.ProcessEnv;
  /** Skip the nvidia-smi probe and advertise this (tests; null = no GPU). */
  gpu?: GpuInfo | null;
  cancelGraceMs?: number;
  killGraceMs?: number;
  uploadStartTimeoutMs?: number;
}

export interface RunningWorker {
  readonly name: string;
  readonly peerId: string;
  readonly capabilities: Capabilities;
  /** The sleap-nn found at start: version and inference command. */
  readonly sleapNn: SleapNnInfo;
  readonly signaling: SignalingClient;
  /** Jobs accepted and not yet over. */
  readonly runningJobs: number;
  /** Resolves when no job is running (at once if none is). */
  whenIdle(): Promise<void>;
  /** Cancel running jobs (JOB_CANCELLED, reason worker_shutdown), close every connection, leave the room. Idempotent. */
  close(): Promise<void>;
}

export async function startWorker(opts: WorkerOptions): Promise<RunningWorker> {
  const log = opts.logger ?? silentLogger();
  const config = opts.config;
  const storage = StorageConfig.fromConfig(config);
  const backends = await checkBackends(storage);
  for (const b of backends) (b.healthy ? log.info.bind(log) : log.warn.bind(log))(describeBackend(b));
  if (backends.length === 0) log.info('no storage backends configured: this worker serves jobs whose files are sent to it');
  const gpu = opts.gpu === undefined ? await detectGpu({ log }) : (opts.gpu ?? undefined);
  log.info(gpu ? `GPU: ${gpu.count ?? 1} x ${gpu.name}${gpu.memory_mb ? ` (${gpu.memory_mb} MiB)` : ''}` : 'GPU: none found (nvidia-smi absent or silent)');
  // Once, before joining the room: a worker whose sleap-nn cannot run must not take jobs.
  const sleapNn = await probeSleapNn(config.worker.sleap_nn, opts.env ? { env: opts.env } : {});
  log.info(`sleap-nn ${sleapNn.version} (${sleapNn.executable}); inference jobs run \`sleap-nn ${sleapNn.inferenceCommand}\``);
  if (sleapNn.inferenceCommand === 'track') {
    log.warn(`this sleap-nn has no \`predict\` command: inference uses the legacy \`track\` pipeline (upgrade to sleap-nn 0.3 or later for \`predict\`)`);
  }
  const maxJobs = config.worker.max_concurrent_jobs;
  const jobTypes: JobType[] = [...config.worker.job_types];
  const capabilities = buildCapabilities({ backends, jobTypes, maxConcurrentJobs: maxJobs, gpu });
  const name = opts.name ?? config.worker.name ?? hostName();
  const workDir = config.worker.work_dir ?? path.join(os.tmpdir(), 'sleap-rtc-worker');
  await mkdir(workDir, { recursive: true });
  // What a killed earlier run left here goes before any job starts (work-dir.ts has the rule).
  // Results still waiting for `sleap-rtc fetch` are not debris: the sweep leaves their folders.
  const results = new ResultsShelf({ workDir, keepMs: config.worker.results_keep_hours * 3_600_000, logger: log });
  await results.sweep();
  const workFolder = await openWorkDir(workDir, { logger: log, keep: new Set(await results.keptDirs()) });
  const sweeper = setInterval(() => void results.sweep().catch(() => {}), 15 * 60_000);
  sweeper.unref();
  const store = await openCache(config, log);

  let running = 0;
  const statusOf = (): WorkerStatus => (running >= maxJobs ? 'busy' : 'available');
  const metadata = (): Metadata => ({ name, status: statusOf(), capabilities });
  const signaling = await SignalingClient.connect({
    serverUrl: opts.serverUrl,
    roomId: opts.roomId,
    token: opts.token,
    role: 'worker',
    peerId: name,
    metadata: metadata(),
    logger: log,
  });

  let lastStatus = statusOf();
  const slots = {
    acquire(): boolean {
      if (running >= maxJobs) return false;
      running += 1;
      publish();
      return true;
    },
    release(): void {
      running = Math.max(0, running - 1);
      publish();
      if (running === 0) for (const fn of idleWaiters.splice(0)) fn();
    },
  };
  const idleWaiters: (() => void)[] = [];
  function publish(): void {
    const status = statusOf();
    if (status === lastStatus) return;
    lastStatus = status;
    log.info(`status: ${status} (${running} of ${maxJobs} job slot(s) in use)`);
    signaling.updateMetadata(metadata());
  }

  const sessions = new Set<WorkerSession>();
  let closing: Promise<void> | null = null;
  const healthyBackends = new Set(capabilities.storage_backends);

  signaling.on('offer', (from) => {
    if (closing) return;
    const peer = signaling.peers.get(from);
    if (peer?.role !== 'client') {
      log.warn(`ignored a connection offer from ${from}, which is not a client in this room`);
      return;
    }
    acceptPeer({ signaler: signaling, remotePeerId: from, iceServers: config.ice.servers.map((s) => ({ ...s, urls: [...s.urls] })) })
      .then((pc) => {
        if (closing) {
          pc.close();
          return;
        }
        log.info(`client ${from} connected`);
        const session = new WorkerSession(pc, {
          workerName: name,
          storage,
          healthyBackends,
          jobTypes: new Set(jobTypes),
          executable: config.worker.sleap_nn,
          inferenceCommand: sleapNn.inferenceCommand,
          workDir,
          store,
          results,
          slots,
          signaling,
          logger: log,
          ...(opts.env ? { env: opts.env } : {}),
          ...(opts.cancelGraceMs !== undefined ? { cancelGraceMs: opts.cancelGraceMs } : {}),
          ...(opts.killGraceMs !== undefined ? { killGraceMs: opts.killGraceMs } : {}),
          ...(opts.uploadStartTimeoutMs !== undefined ? { uploadStartTimeoutMs: opts.uploadStartTimeoutMs } : {}),
          shutdownGraceMs: config.worker.shutdown_grace_s * 1000,
        });
        sessions.add(session);
        void pc.closed.then(() => {
          log.info(`client ${from} disconnected`);
          return session.close('client_disconnected').finally(() => sessions.delete(session));
        });
      })
      .catch((err: Error) => log.warn(`connection from client ${from} failed: ${err.message}`));
  });
  // The signaling server sees a client vanish at once; the WebRTC connection may take much longer
  // to notice. But a client that only lost the server still answers: ask before cancelling.
  const clientLeft = (peerId: string): void => {
    for (const s of sessions) if (s.clientPeerId === peerId) void s.checkClient('left_room');
  };
  signaling.on('peer_left', clientLeft);
  signaling.on('message', (m) => {
    if (m.type === 'job_peer_left' && m.role === 'client') clientLeft(m.peer_id);
  });

  // Jobs run peer to peer: losing the server stops new jobs from arriving, never the running ones.
  signaling.on('disconnected', () => {
    if (running > 0) log.warn(`${running} running job(s) go on over their direct connections while the signaling server is away; new jobs wait until it is back`);
  });
  signaling.on('reconnected', () => log.info(`back in room ${opts.roomId} (status: ${statusOf()}, ${running} of ${maxJobs} job slot(s) in use)`));

  const closeAll = async (reason: CancelReason): Promise<void> => {
    await Promise.all([...sessions].map((s) => s.close(reason)));
    await signaling.close();
    await workFolder.release();
    await store?.close();
    clearInterval(sweeper);
  };

  return {
    name,
    get peerId() {
      return signaling.peerId;
    },
    capabilities,
    sleapNn,
    signaling,
    get runningJobs() {
      return running;
    },
    whenIdle() {
      return running === 0 ? Promise.resolve() : new Promise<void>((resolve) => idleWaiters.push(resolve));
    },
    close() {
      closing ??= closeAll('worker_shutdown');
      return closing;
    },
  };
}

/** The worker's cache of files sent to it, or null when `cache_max_bytes` is 0. Logs where it is and what it holds. */
async function openCache(config: SleapRtcConfig, log: Logger): Promise<ContentStore | null> {
  const maxBytes = config.worker.cache_max_bytes;
  if (maxBytes === 0) {
    log.info('cache: off (cache_max_bytes = 0); every file of a transfer job is sent');
    return null;
  }
  const dir = config.worker.cache_dir ?? path.join(xdgCacheDir(), 'worker-cache');
  const store = await ContentStore.open({ dir, maxBytes, logger: log });
  const st = store.stats();
  const gib = (n: number): string => `${(n / 1024 ** 3).toFixed(2)} GiB`;
  log.info(`cache: ${dir}, ${st.entries} file(s), ${gib(st.bytes)} of at most ${gib(st.maxBytes)}`);
  return store;
}

/** A peer id built from the host name (letters, digits, ".", "_", "-"). */
function hostName(): string {
  const cleaned = os.hostname().replace(/[^A-Za-z0-9._-]/g, '-').replace(/^[^A-Za-z0-9]+/, '').slice(0, 64);
  return cleaned || 'worker';
}
