/**
 * The worker's side of one client connection: job messages on the `control` channel, checked
 * against the schema, each JOB_REQUEST taken through check -> claim -> accept -> (upload) -> run ->
 * result, in the order docs/jobs.md gives. A frame that fails the schema gets an `error` reply
 * with its code and the session carries on. When the client goes away its jobs are cancelled.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import { SleapRtcError } from '../errors.js';
import { LIMITS } from '../limits.js';
import type { Logger } from '../log.js';
import { encodeMessage, ProtocolError } from '../protocol/codec.js';
import type { JobType } from '../protocol/common.js';
import { decodeClientToWorker, TERMINAL_JOB_MESSAGE_TYPES, type JobRequest, type WorkerToClient } from '../protocol/job.js';
import type { ChannelMessage } from '../transport/channel.js';
import { PeerLiveness } from '../transport/liveness.js';
import type { PeerConnection } from '../transport/peer-connection.js';
import type { SignalingClient } from '../transport/signaling-client.js';
import type { StorageConfig } from '../storage/index.js';
import type { ContentStore, Lease } from '../content/store.js';
import { JobRun } from './job-runner.js';
import type { ResultsShelf } from './results.js';
import { peerError, LocalPaths } from './peer-errors.js';
import { checkRequest, type CheckOutcome } from './request-check.js';
import { claimRunFolder, releaseRunFolder, type RunFolderRef } from './run-folder.js';
import type { InferenceCommand } from './sleap-nn-args.js';
import { claimReservation, releaseReservation } from './reservations.js';
import { outputTransfers, receiveInputs, sendOutputs, TransferInbox } from './transfers.js';

export type CancelReason = 'client_request' | 'client_disconnected' | 'worker_shutdown';

export interface SessionContext {
  workerName: string;
  storage: StorageConfig;
  healthyBackends: ReadonlySet<string>;
  jobTypes: ReadonlySet<JobType>;
  executable: string;
  /** The inference command the installed sleap-nn has (found at worker start); default `predict`. */
  inferenceCommand?: InferenceCommand;
  /** Parent of every job's own folder (cwd of sleap-nn; staging for transfer jobs). */
  workDir: string;
  env?: NodeJS.ProcessEnv;
  /** Job slots of the whole worker (max_concurrent_jobs); the worker turns them into its status. */
  slots: { acquire(): boolean; release(): void };
  /** For claiming routed jobs; null when there is no signaling connection (tests). */
  signaling: Pick<SignalingClient, 'send' | 'on' | 'off'> | null;
  logger: Logger;
  cancelGraceMs?: number;
  killGraceMs?: number;
  uploadStartTimeoutMs?: number;
  /** On shutdown, how long outputs still uploading may take (default LIMITS.workerShutdownGraceMs). */
  shutdownGraceMs?: number;
  /** The cache of files sent to this worker; null when it is off. */
  store?: ContentStore | null;
  /** Where a transfer job's outputs wait until the client has them all; null: not kept. */
  results?: ResultsShelf | null;
}

/** One job's way through #runJob. */
interface Attempt {
  request: JobRequest;
  job: ActiveJob;
  jobDir: string | null;
  /** Cache entries the job's inputs came from: not evicted while the job runs. */
  leases: Lease[];
  /** The job folder holds outputs the client has not confirmed yet: it stays (ResultsShelf). */
  keepDir: boolean;
  /** JOB_ACCEPTED was sent: an unexpected error now ends the job with JOB_FAILED, not JOB_REJECTED. */
  accepted: boolean;
  /** What the client is told failed, should an unexpected error end the attempt now. */
  step: string;
}

interface ActiveJob {
  id: string;
  abort: AbortController;
  run: JobRun | null;
  cancelReason: CancelReason | null;
  /** The message that ends the attempt has been sent; a cancel now has nothing to stop. */
  ended: boolean;
  finished: Promise<void>;
}

export class WorkerSession {
  readonly clientPeerId: string;
  readonly #peer: PeerConnection;
  readonly #ctx: SessionContext;
  readonly #log: Logger;
  readonly #jobs = new Map<string, ActiveJob>();
  readonly #inbox: TransferInbox;
  readonly #liveness = new PeerLiveness();
  /** This worker's own paths, which no message to the client may show. */
  readonly #local: LocalPaths;
  #closing: Promise<void> | null = null;
  #droppedLines = 0;

  constructor(peer: PeerConnection, ctx: SessionContext) {
    this.#peer = peer;
    this.#ctx = ctx;
    this.clientPeerId = peer.remotePeerId;
    this.#log = ctx.logger.child({ client: peer.remotePeerId });
    this.#inbox = new TransferInbox(peer);
    this.#local = LocalPaths.forWorker(ctx.workDir, ctx.storage);
    peer.control.onMessage((frame) => this.#onFrame(frame));
    peer.onClose(() => void this.close('client_disconnected'));
    peer.onSuspect(() => void this.checkClient('quiet'));
    // Any frame from the client, on any channel, answers a liveness probe (its PONG may wait behind its upload).
    peer.onActivity(() => this.#liveness.heard());
  }

  get activeJobs(): number {
    return this.#jobs.size;
  }

  /**
   * The signaling server says this client left the room (`left_room`), or the WebRTC connection
   * reports `disconnected` (`quiet`). A client that only lost the server still answers over the
   * direct connection and keeps its jobs; one that does not answer is gone, and its jobs are
   * cancelled as if the connection had closed.
   */
  async checkClient(why: 'left_room' | 'quiet'): Promise<void> {
    if (this.#closing) return;
    const what = why === 'left_room' ? `client ${this.clientPeerId} left the room` : `the connection to client ${this.clientPeerId} went quiet`;
    this.#log.info(`${what}; asking it over the direct connection whether it is still there`);
    const alive = await this.#liveness.probe((nonce) => {
      const ping: WorkerToClient = { type: 'PING', nonce };
      this.#peer.control.send(encodeMessage(ping));
    });
    if (alive) {
      this.#log.info(`client ${this.clientPeerId} answered${why === 'left_room' ? ': it lost only the signaling server' : ''}; its jobs go on`);
      return;
    }
    this.#log.info(`client ${this.clientPeerId} did not answer within ${LIMITS.peerProbeTimeoutMs} ms: it is gone`);
    await this.close('client_disconnected');
  }

  /** Cancel every job of this client, wait until each has ended, and close the connection. Idempotent. */
  close(reason: CancelReason): Promise<void> {
    this.#closing ??= (async () => {
      const jobs = [...this.#jobs.values()];
      for (const job of jobs) this.#cancel(job, reason);
      if (reason === 'worker_shutdown') await this.#graceForUploads(jobs);
      await Promise.all(jobs.map((j) => j.finished));
      this.#inbox.close();
      await this.#drain();
      this.#peer.close();
    })();
    return this.#closing;
  }

  /**
   * A job that already sent JOB_COMPLETE may still be uploading its outputs; a cancel does not
   * stop that. On shutdown it gets the grace period (`[worker] shutdown_grace_s`), no more: a
   * scheduler's SIGKILL follows its SIGTERM within ~30 s. Each such job is said to have finished
   * or been cancelled.
   */
  async #graceForUploads(jobs: readonly ActiveJob[]): Promise<void> {
    const uploading = jobs.filter((j) => j.ended && this.#jobs.has(j.id));
    if (uploading.length === 0) return;
    const graceMs = this.#ctx.shutdownGraceMs ?? LIMITS.workerShutdownGraceMs;
    const names = uploading.map((j) => j.id).join(', ');
    this.#log.info(`shutdown: waiting up to ${graceMs / 1000} s for the outputs of job(s) ${names} to finish uploading to client ${this.clientPeerId}`);
    let timer: NodeJS.Timeout | undefined;
    const graceOver = new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)));
    await Promise.race([Promise.all(uploading.map((j) => j.finished)), graceOver]);
    clearTimeout(timer);
    for (const job of uploading) {
      if (!this.#jobs.has(job.id)) {
        this.#log.info(`shutdown: job ${job.id}: its outputs finished uploading within the grace period`);
        continue;
      }
      this.#log.warn(`shutdown: job ${job.id}: cancelled the upload of its outputs after the ${graceMs / 1000} s grace period; the client did not get them all`);
      job.abort.abort();
    }
  }

  #onFrame(frame: ChannelMessage): void {
    this.#liveness.heard();
    if (this.#closing) return;
    if (typeof frame !== 'string') {
      this.#send({ type: 'error', code: 'INVALID_MESSAGE', message: 'The control channel carries JSON text frames only; file data goes on transfer channels.' });
      return;
    }
    let message;
    try {
      message = decodeClientToWorker(frame);
    } catch (err) {
      const e = err instanceof ProtocolError ? err : new SleapRtcError('INVALID_MESSAGE', String(err));
      this.#log.warn(`refused a message from client ${this.clientPeerId}: ${e.message}`);
      this.#send({ type: 'error', code: e.code, message: e.message.slice(0, 2000) });
      return;
    }
    switch (message.type) {
      case 'JOB_REQUEST':
        this.#start(message);
        return;
      case 'FETCH_REQUEST':
        void this.#fetch(message.job_id);
        return;
      case 'JOB_CANCEL': {
        const job = this.#jobs.get(message.job_id);
        if (job) this.#cancel(job, 'client_request');
        else this.#log.debug(`JOB_CANCEL for job ${message.job_id}, which is not running here`);
        return;
      }
      case 'JOB_STOP':
        this.#stop(message.job_id);
        return;
      case 'PING':
        this.#send({ type: 'PONG', nonce: message.nonce });
        return;
      case 'PONG':
        return;
      case 'error':
        this.#log.warn(`client ${this.clientPeerId} could not read a message: [${message.code}] ${message.message.slice(0, 500)}`);
        return;
    }
  }

  /** Stop training early: sleap-nn ends the epoch and saves, and the job completes with stopped_early. */
  #stop(job_id: string): void {
    const job = this.#jobs.get(job_id);
    const outcome = job && !job.ended && !job.cancelReason && job.run ? job.run.stop() : 'unsupported';
    const message =
      outcome === 'stopping'
        ? 'stopping training early: sleap-nn ends the current epoch and saves the model'
        : outcome === 'pending'
          ? "stop requested: sleap-nn's training controller is not listening yet; the stop goes out as soon as it is"
          : !job || job.ended
            ? `job ${job_id} is not running here`
            : 'this job cannot stop early (not a training job, or sleap-nn has not started); cancel it instead';
    this.#log.info(`job ${job_id}: stop requested by the client: ${outcome}`);
    if (job) this.#send({ type: 'JOB_STOP_REPLY', job_id, outcome, message }, job);
  }

  #start(request: JobRequest): void {
    if (this.#jobs.has(request.job_id)) {
      this.#send({ type: 'JOB_REJECTED', job_id: request.job_id, code: 'INVALID_MESSAGE', message: `Job ${request.job_id} is already running on this connection; use a new job_id.` });
      return;
    }
    const job: ActiveJob = { id: request.job_id, abort: new AbortController(), run: null, cancelReason: null, ended: false, finished: Promise.resolve() };
    this.#jobs.set(job.id, job);
    job.finished = this.#runJob(request, job).finally(() => this.#jobs.delete(job.id));
  }

  #cancel(job: ActiveJob, reason: CancelReason): void {
    if (job.cancelReason || job.ended) return;
    job.cancelReason = reason;
    this.#log.info(`cancelling job ${job.id} (${reason.replace('_', ' ')})`);
    job.abort.abort();
    job.run?.cancel();
  }

  /**
   * One job, as a list of steps with one cleanup path: admit (job type, slot), check the paths,
   * claim the reservation, accept, receive the inputs (transfer), run sleap-nn and report. Each
   * step either lets the next one go or has sent the message that ends the attempt. Whatever ends
   * it, the cleanup stack runs in reverse: the job folder is removed (a failure is logged), the
   * reservation and then the slot are given back.
   */
  async #runJob(request: JobRequest, job: ActiveJob): Promise<void> {
    const attempt: Attempt = { request, job, jobDir: null, leases: [], keepDir: false, accepted: false, step: 'The job could not be started on this worker' };
    const cleanup: (() => Promise<void> | void)[] = [];
    try {
      if (!this.#admit(attempt)) return;
      cleanup.push(() => this.#ctx.slots.release());
      cleanup.push(() => this.#removeJobDir(attempt));
      cleanup.push(() => {
        for (const lease of attempt.leases) lease.release();
      });
      const outcome = await this.#check(attempt);
      if (!outcome) return;
      const reservation = await this.#claim(attempt);
      if (reservation === false) return;
      if (reservation !== null && this.#ctx.signaling) {
        const signaling = this.#ctx.signaling;
        cleanup.push(() => releaseReservation(signaling, reservation));
      }
      if (outcome.runFolder) {
        const ref = outcome.runFolder;
        if (!(await this.#claimRunFolder(attempt, ref))) return;
        cleanup.push(() => releaseRunFolder(ref));
      }
      this.#accept(attempt, outcome);
      if (!(await this.#receive(attempt, outcome))) return;
      await this.#execute(attempt, outcome);
    } catch (err) {
      // Unexpected: the full error goes to the log, the client gets a code and a sentence
      // without any of this worker's paths.
      this.#log.error({ err }, `job ${request.job_id}: ${(err as Error)?.message ?? String(err)}`);
      const e = peerError(err, attempt.step, this.#local);
      this.#send(
        attempt.accepted
          ? { type: 'JOB_FAILED', job_id: request.job_id, exit_code: null, last_lines: [], code: e.code, message: e.message }
          : { type: 'JOB_REJECTED', job_id: request.job_id, code: e.code, message: e.message },
        job,
      );
    } finally {
      for (const step of cleanup.reverse()) {
        try {
          await step();
        } catch (err) {
          this.#log.error({ err }, `job ${request.job_id}: cleanup failed: ${(err as Error)?.message ?? String(err)}`);
        }
      }
    }
  }

  /** The job's own folder under work_dir, made on first use. */
  async #jobDir(attempt: Attempt): Promise<string> {
    const previous = attempt.step;
    attempt.step = "The worker could not create the job's folder";
    attempt.jobDir ??= await mkdtemp(path.join(this.#ctx.workDir, `job-${attempt.request.job_id}-`));
    attempt.step = previous;
    return attempt.jobDir;
  }

  /** The job folder is gone before the worker says it is free again; a failure is logged, not hidden. */
  async #removeJobDir(attempt: Attempt): Promise<void> {
    const dir = attempt.jobDir;
    if (dir === null || attempt.keepDir) return;
    await rm(dir, { recursive: true, force: true }).catch((err: Error) =>
      this.#log.warn(`job ${attempt.request.job_id}: could not remove its folder ${dir} (${err.message}); the worker's next start-up sweep removes it`),
    );
  }

  /** A job type this worker runs, and a free slot. */
  #admit({ request, job }: Attempt): boolean {
    const ctx = this.#ctx;
    const job_id = request.job_id;
    if (!ctx.jobTypes.has(request.job_type)) {
      const types = [...ctx.jobTypes].join(', ');
      this.#send({ type: 'JOB_REJECTED', job_id, code: 'NO_MATCHING_WORKER', message: `This worker does not run ${request.job_type} jobs (it runs: ${types}).` }, job);
      return false;
    }
    if (!ctx.slots.acquire()) {
      this.#send({ type: 'JOB_REJECTED', job_id, code: 'WORKER_BUSY', message: `Worker ${ctx.workerName} is running as many jobs as it may; try another worker or wait.` }, job);
      return false;
    }
    return true;
  }

  async #check(attempt: Attempt): Promise<Extract<CheckOutcome, { ok: true }> | undefined> {
    const ctx = this.#ctx;
    attempt.step = "The job's paths could not be checked on this worker";
    const outcome = await checkRequest(attempt.request, { storage: ctx.storage, healthyBackends: ctx.healthyBackends, stagingDir: () => this.#jobDir(attempt) });
    if (!outcome.ok) {
      this.#log.info(`refused job ${attempt.request.job_id}: ${summary(outcome.messages)}`);
      this.#sendAll(outcome.messages, attempt.job);
      return undefined;
    }
    return outcome;
  }

  /** The reservation id once claimed, null when the request has none, false when refused (and said). */
  async #claim({ request, job }: Attempt): Promise<string | null | false> {
    const ctx = this.#ctx;
    const job_id = request.job_id;
    if (request.reservation_id === undefined) return null;
    if (!ctx.signaling) {
      this.#send({ type: 'JOB_REJECTED', job_id, code: 'RESERVATION_NOT_FOUND', message: 'This worker is not connected to a signaling server and cannot claim reservations.' }, job);
      return false;
    }
    try {
      await claimReservation(ctx.signaling, request.reservation_id, this.clientPeerId);
      return request.reservation_id;
    } catch (err) {
      const e = asError(err);
      this.#log.warn(`refused job ${job_id}: ${e.message}`);
      this.#send({ type: 'JOB_REJECTED', job_id, code: e.code, message: `${e.message} The job was not started here.`.slice(0, 2000) }, job);
      return false;
    }
  }

  /**
   * The run folder, claimed only now, when nothing else can refuse the job: a concurrent job with
   * the same run name, or a folder created since the check, is refused here (and said); false then.
   */
  async #claimRunFolder({ request, job }: Attempt, ref: RunFolderRef): Promise<boolean> {
    const job_id = request.job_id;
    const taken = await claimRunFolder(ref);
    if (!taken) return true;
    this.#log.info(`refused job ${job_id}: ${taken.problem.message}`);
    this.#sendAll(
      [
        { type: 'PATH_ERROR', job_id, ...taken.problem },
        { type: 'JOB_REJECTED', job_id, code: taken.code, message: `A path was refused: output (${taken.problem.rule}).` },
      ],
      job,
    );
    return false;
  }

  #accept(attempt: Attempt, outcome: Extract<CheckOutcome, { ok: true }>): void {
    const { request, job } = attempt;
    const job_id = request.job_id;
    const storage = outcome.storage;
    this.#sendAll(outcome.messages, job);
    this.#send(
      storage.transfer === 'shared'
        ? { type: 'JOB_ACCEPTED', job_id, transfer: 'shared', storage_backend: storage.storage_backend, user_subdir: storage.user_subdir }
        : { type: 'JOB_ACCEPTED', job_id, transfer: 'webrtc' },
      job,
    );
    attempt.accepted = true;
    attempt.step = 'The job could not be run on this worker';
    this.#log.info(
      `job ${job_id} (${request.job_type}) accepted from client ${this.clientPeerId}: ` +
        (storage.transfer === 'shared' ? `shared storage (backend ${storage.storage_backend}, user ${storage.user_subdir || '(base)'})` : 'files by transfer'),
    );
  }

  /** A transfer job's inputs (a shared job's sent videos), into its job folder; false when the attempt ended (and was said). */
  async #receive(attempt: Attempt, outcome: Extract<CheckOutcome, { ok: true }>): Promise<boolean> {
    const { request, job } = attempt;
    const job_id = request.job_id;
    // A transfer job receives every input; a shared job only the videos that lie under no backend.
    const toReceive = outcome.paths.filter((p) => p.role === 'input' && (outcome.storage.transfer === 'webrtc' || p.video?.sent));
    if (toReceive.length === 0 || job.cancelReason) return true;
    const what = 'The input files did not arrive';
    try {
      const received = await receiveInputs({
        jobId: job_id,
        store: this.#ctx.store ?? null,
        leases: attempt.leases,
        inputs: toReceive,
        stagingDir: await this.#jobDir(attempt),
        inbox: this.#inbox,
        send: (m) => this.#send(m, job),
        signal: job.abort.signal,
        peerMessage: (err) => peerError(err, 'The worker could not receive this file', this.#local).message,
        ...(this.#ctx.uploadStartTimeoutMs !== undefined ? { startTimeoutMs: this.#ctx.uploadStartTimeoutMs } : {}),
      });
      this.#log.info(`job ${job_id}: inputs in place: ${received.map(describeReceipt).join(', ')}`);
      return true;
    } catch (err) {
      if (job.cancelReason) {
        this.#send({ type: 'JOB_CANCELLED', job_id, reason: job.cancelReason }, job);
        return false;
      }
      this.#log.warn({ err }, `job ${job_id}: receiving its inputs failed: ${asError(err).message}`);
      const e = peerError(err, what, this.#local);
      this.#send({ type: 'JOB_FAILED', job_id, exit_code: null, last_lines: [], code: e.code, message: e.message }, job);
      return false;
    }
  }

  /** sleap-nn, then the message that ends the job (and, for a transfer job, its outputs). */
  async #execute(attempt: Attempt, outcome: Extract<CheckOutcome, { ok: true }>): Promise<void> {
    const ctx = this.#ctx;
    const { request, job } = attempt;
    const job_id = request.job_id;
    const storage = outcome.storage;
    job.run = new JobRun({
      request,
      storage,
      paths: outcome.paths,
      executable: ctx.executable,
      inferenceCommand: ctx.inferenceCommand ?? 'predict',
      ...(outcome.runFolder ? { runFolder: outcome.runFolder } : {}),
      workerName: ctx.workerName,
      cwd: await this.#jobDir(attempt),
      logger: this.#log,
      send: (m) => this.#send(m, job),
      ...(ctx.env ? { env: ctx.env } : {}),
      ...(ctx.cancelGraceMs !== undefined ? { cancelGraceMs: ctx.cancelGraceMs } : {}),
      ...(ctx.killGraceMs !== undefined ? { killGraceMs: ctx.killGraceMs } : {}),
    });
    if (job.cancelReason) job.run.cancel();
    const result = await job.run.run();
    if (result.status === 'cancelled') {
      this.#log.info(`job ${job_id} cancelled`);
      this.#send({ type: 'JOB_CANCELLED', job_id, reason: job.cancelReason ?? 'client_request' }, job);
    } else if (result.status === 'failed') {
      this.#log.warn(`job ${job_id} failed: ${result.message.message}`);
      this.#send(result.message, job);
    } else if (storage.transfer === 'shared') {
      this.#log.info(`job ${job_id} completed`);
      const { storage_backend, user_subdir } = storage;
      this.#send(
        {
          type: 'JOB_COMPLETE',
          job_id,
          transfer: 'shared',
          outputs: result.outputs.map((o) => ({ type: 'SHARED_OUTPUT_PATH', storage_backend, user_subdir, relative_path: o.relative_path })),
          ...(result.stoppedEarly ? { stopped_early: true } : {}),
        },
        job,
      );
    } else {
      if (ctx.results && attempt.jobDir !== null) {
        // Written before JOB_COMPLETE: a worker killed while sending keeps them too.
        const until = await ctx.results.keep(job_id, attempt.jobDir, result.outputs);
        attempt.keepDir = true;
        this.#log.debug(`job ${job_id}: outputs kept until ${new Date(until).toISOString()} or until the client has them`);
      }
      const outputs = outputTransfers(result.outputs);
      this.#send(
        {
          type: 'JOB_COMPLETE',
          job_id,
          transfer: 'webrtc',
          outputs: outputs.map((o) => ({ relative_path: o.relative_path, transfer_id: o.transfer_id, kind: o.kind })),
          ...(result.stoppedEarly ? { stopped_early: true } : {}),
        },
        job,
      );
      try {
        await sendOutputs(this.#peer, outputs, job.abort.signal);
        this.#log.info(`job ${job_id} completed; its outputs were sent to the client`);
        if (attempt.keepDir) await ctx.results?.done(job_id);
        attempt.keepDir = false;
      } catch (err) {
        const kept = attempt.keepDir && ctx.results ? `; they are kept for ${keptFor(ctx.results)} for \`sleap-rtc fetch ${job_id}\`` : '';
        this.#log.warn(`job ${job_id} completed but sending its outputs failed: ${asError(err).message}${kept}`);
      }
    }
  }

  /** FETCH_REQUEST: send a finished job's kept outputs again; once all are confirmed they go. */
  async #fetch(job_id: string): Promise<void> {
    const shelf = this.#ctx.results;
    const kept = shelf ? await shelf.get(job_id).catch(() => null) : null;
    if (!shelf || !kept) {
      this.#send({
        type: 'JOB_REJECTED',
        job_id,
        code: 'RESULTS_NOT_FOUND',
        message: `Worker ${this.#ctx.workerName} keeps no results of job ${job_id}: they were all received already, the job did not finish here by transfer, or they expired (kept ${shelf ? keptFor(shelf) : 'not at all'}).`,
      });
      return;
    }
    const outputs = outputTransfers(kept.outputs);
    this.#log.info(`client ${this.clientPeerId} fetches the results of job ${job_id}`);
    this.#send({ type: 'JOB_COMPLETE', job_id, transfer: 'webrtc', outputs: outputs.map((o) => ({ relative_path: o.relative_path, transfer_id: o.transfer_id, kind: o.kind })) });
    try {
      await sendOutputs(this.#peer, outputs, new AbortController().signal);
      await shelf.done(job_id);
      this.#log.info(`job ${job_id}: its kept results were fetched; removed here`);
    } catch (err) {
      this.#log.warn(`job ${job_id}: fetching its results failed: ${asError(err).message}; they stay for another fetch`);
    }
  }

  /** Give the last messages (JOB_CANCELLED on shutdown) a moment to leave before the connection closes. */
  async #drain(): Promise<void> {
    const deadline = Date.now() + LIMITS.jobCloseDrainMs;
    while (Date.now() < deadline) {
      let buffered = 0;
      try {
        buffered = this.#peer.control.bufferedAmount;
      } catch {
        return;
      }
      if (buffered === 0) return;
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  #sendAll(messages: readonly WorkerToClient[], job: ActiveJob): void {
    for (const m of messages) this.#send(m, job);
  }

  /** Best effort: a client that went away is handled by close(), not by failed sends. */
  #send(message: WorkerToClient, job: ActiveJob | null = null): void {
    if (job && TERMINAL_JOB_MESSAGE_TYPES.has(message.type)) job.ended = true;
    let control;
    try {
      control = this.#peer.control;
    } catch {
      return;
    }
    if (!control.isOpen) return;
    // Batch losses are only a preview: on a slow link they give way; epoch events always go.
    if (message.type === 'TRAIN_EVENT' && message.event === 'batch_end' && control.bufferedAmount > LIMITS.progressMaxBufferedBytes) return;
    if (message.type === 'JOB_LOG') {
      // A client on a slow link must not make the worker buffer sleap-nn's output without bound.
      if (control.bufferedAmount > LIMITS.jobLogMaxBufferedBytes) {
        this.#droppedLines += 1;
        return;
      }
      if (this.#droppedLines > 0) {
        const n = this.#droppedLines;
        this.#droppedLines = 0;
        this.#send({ ...message, stream: 'stderr', line: `[sleap-rtc: ${n} log line(s) dropped; the connection is slower than sleap-nn's output]` }, job);
      }
    }
    try {
      control.send(encodeMessage(message));
    } catch (err) {
      this.#log.debug({ err }, `could not send ${message.type} to client ${this.clientPeerId}`);
    }
  }
}

function describeReceipt(r: { name: string; size: number; cached: boolean; resumedFrom: number; bytesReceived: number }): string {
  if (r.cached) return `${r.name} (from the cache, ${r.size} bytes)`;
  if (r.resumedFrom > 0) return `${r.name} (resumed at byte ${r.resumedFrom}, ${r.bytesReceived} bytes received)`;
  return `${r.name} (${r.bytesReceived} bytes received)`;
}

function asError(err: unknown): SleapRtcError {
  return err instanceof SleapRtcError ? err : new SleapRtcError('INTERNAL', (err as Error)?.message ?? String(err));
}

function keptFor(shelf: ResultsShelf): string {
  const h = shelf.keepMs / 3_600_000;
  return h >= 1 ? `${Math.round(h * 10) / 10} h` : `${Math.round(shelf.keepMs / 60_000)} min`;
}

function summary(messages: readonly WorkerToClient[]): string {
  const last = messages.at(-1);
  return last && last.type === 'JOB_REJECTED' ? last.message : `${messages.length} message(s)`;
}
