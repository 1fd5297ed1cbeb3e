/**
 * One checked job run through sleap-nn: open the job's files (confined at use time, job-files.ts),
 * build the argument array from them, start the process, stream its lines and epoch progress to
 * the client, put its outputs in place, and report how it ended, with the outputs it produced.
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { SleapRtcError } from '../errors.js';
import { LIMITS } from '../limits.js';
import { newestLinesWithin, type JobRequest, type PathField, type WorkerToClient } from '../protocol/job.js';
import type { Logger } from '../log.js';
import { PathChangedError } from '../storage/index.js';
import type { CheckedPath, CheckedStorage } from './request-check.js';
import { sharedJobFiles, stagedJobFiles, type JobFiles } from './job-files.js';
import { startJobProcess, type JobProcess } from './job-process.js';
import { ProgressRelay } from './progress-relay.js';
import { releaseRunFolder, type RunFolderRef } from './run-folder.js';
import { buildInferenceArgs, buildTrainArgs, type InferenceCommand, type PathMapping, type TrainArgsInput } from './sleap-nn-args.js';
import { expectedEpochs } from './train-config.js';
import { setUpVideos, type VideoSetup } from './videos.js';
import { nameRunFolderVideos, nameVideos, relativeTo, RunFolderLabelsError, type VideoNames } from './predictions.js';

export interface JobOutput {
  /** Relative to the job's base (user folder, or staging folder), POSIX. */
  relative_path: string;
  local: string;
  kind: 'file' | 'directory';
  /** Files a directory output must hold for the job to count as done. */
  mustHold?: readonly string[];
}

/** What a finished training run folder holds at least (with save_ckpt, which the worker always sets). */
export const RUN_FOLDER_MODEL_FILES = ['best.ckpt', 'training_config.yaml'] as const;

/**
 * The `--prefix-map` of a shared-storage job: the client's base path of the backend becomes this
 * worker's, when the two differ (videos named inside the labels file carry client paths).
 */
export function sharedPrefixMap(storage: CheckedStorage): PathMapping | undefined {
  if (storage.transfer !== 'shared' || storage.client_base_path === undefined) return undefined;
  const from = storage.client_base_path;
  const absolute = path.posix.isAbsolute(from) || path.win32.isAbsolute(from);
  return absolute && from !== storage.worker_base_path ? { from, to: storage.worker_base_path } : undefined;
}

export type RunOutcome =
  | { status: 'completed'; outputs: JobOutput[]; stoppedEarly: boolean }
  | { status: 'failed'; message: Extract<WorkerToClient, { type: 'JOB_FAILED' }> }
  | { status: 'cancelled' };

export interface RunOptions {
  request: JobRequest;
  storage: CheckedStorage;
  paths: readonly CheckedPath[];
  executable: string;
  /** `predict` or `track`, as found at worker start. */
  inferenceCommand: InferenceCommand;
  /** A shared train job's run folder on the share, claimed (created empty) before the job was accepted. */
  runFolder?: RunFolderRef;
  workerName: string;
  /**
   * The job's own private folder: sleap-nn's working directory (stray files land there), where
   * its inputs are shown to it and, for a shared-storage job, where it writes its outputs before
   * the worker puts them in place (job-files.ts).
   */
  cwd: string;
  logger?: Logger;
  env?: NodeJS.ProcessEnv;
  send: (message: WorkerToClient) => void;
  cancelGraceMs?: number;
  killGraceMs?: number;
  /** Train jobs: relay sleap-nn's ZMQ progress and accept stop requests (default true). */
  zmqProgress?: boolean;
}

export type StopOutcome = 'stopping' | 'pending' | 'unsupported';

/** Room left in a JOB_FAILED frame for everything but `last_lines`. */
const FAILURE_FRAME_OVERHEAD = 8 * 1024;

export class JobRun {
  readonly #opts: RunOptions;
  #process: JobProcess | null = null;
  #cancelled = false;
  /** This worker's paths in sleap-nn's lines, and the client's words for them (longest first). */
  #redactions: [string, string][] = [];
  #relay: ProgressRelay | null = null;
  #eventSeq = 0;
  /** Job files of the other backends the labels file's videos lie on, by base path. */
  readonly #otherFiles = new Map<string, JobFiles>();

  constructor(opts: RunOptions) {
    this.#opts = opts;
  }

  /** Stop the run: before sleap-nn starts it never starts; after, the process gets the cancel ladder. */
  cancel(): void {
    this.#cancelled = true;
    void this.#process?.cancel();
  }

  /** Train jobs: ask sleap-nn to end the epoch and save (its ZMQ controller); the run then completes. */
  stop(): StopOutcome {
    if (!this.#relay || this.#cancelled) return 'unsupported';
    return this.#relay.requestStop();
  }

  /**
   * The run as a list of steps with one cleanup path: open the job's files (inputs pinned by the
   * worker, a private output folder), start sleap-nn, wait for it, check and publish its outputs.
   * Whatever step ends the run, the descriptors the job held are closed.
   */
  async run(): Promise<RunOutcome> {
    const cleanup: (() => Promise<void>)[] = [];
    try {
      if (this.#cancelled) return { status: 'cancelled' };
      const files = await this.#openFiles();
      if ('status' in files) return files;
      cleanup.push(() => files.close());
      cleanup.push(async () => {
        for (const f of this.#otherFiles.values()) await f.close();
      });
      const plan = await this.#plan(files).catch((err: unknown) => this.#changed(err, 'before sleap-nn started'));
      if ('status' in plan) return plan;
      if (plan.configFile !== undefined && plan.train !== undefined) {
        this.#relay = await this.#openRelay(plan.configFile);
        cleanup.push(() => (this.#relay as ProgressRelay).close());
        plan.args = buildTrainArgs({ ...plan.train, zmq: { publishPort: this.#relay.publishPort, controllerPort: this.#relay.controllerPort } });
      }
      const started = await this.#start(plan.args);
      if (started) return started;
      const done = await (this.#process as JobProcess).done;
      await this.#relay?.drain(done.exitCode === 0 && !done.cancelled);
      const result = { ...done, lastLines: done.lastLines.map((l) => this.#redact(l)) };
      const ended = this.#ended(result);
      const outcome = await this.#publish(files, plan.outputs, ended, result.lastLines);
      // A run folder left empty (nothing was written) goes before the client hears the outcome,
      // so the same run name works again at once.
      if (outcome.status !== 'completed' && this.#opts.runFolder) await releaseRunFolder(this.#opts.runFolder);
      return outcome;
    } finally {
      for (const step of cleanup.reverse()) await step().catch(() => {});
    }
  }

  /** sleap-nn's ZMQ progress and stop sockets for a train job (progress-relay.ts). */
  async #openRelay(configFile: string): Promise<ProgressRelay> {
    const { request, send } = this.#opts;
    const job_id = request.job_id;
    const totalEpochs = await expectedEpochs(configFile, request.job_type === 'train' ? request.spec.max_epochs : undefined);
    return ProgressRelay.open({
      send: (e) => send({ type: 'TRAIN_EVENT', job_id, seq: this.#eventSeq++, ...e }),
      note: (line) => send({ type: 'JOB_LOG', job_id, stream: 'stderr', line }),
      ...(totalEpochs !== undefined ? { totalEpochs } : {}),
    });
  }

  async #openFiles(): Promise<JobFiles | Extract<RunOutcome, { status: 'failed' }>> {
    const { storage, cwd } = this.#opts;
    if (storage.transfer !== 'shared') return stagedJobFiles(cwd);
    try {
      return await sharedJobFiles({ basePath: storage.worker_base_path, jobDir: cwd });
    } catch (err) {
      return this.#changed(err, 'before sleap-nn started');
    }
  }

  /** sleap-nn started (undefined), or how the run ended instead. */
  async #start(args: string[]): Promise<RunOutcome | undefined> {
    const { request, send } = this.#opts;
    const job_id = request.job_id;
    if (this.#cancelled) return { status: 'cancelled' };
    try {
      this.#process = await startJobProcess({
        executable: this.#opts.executable,
        args,
        cwd: this.#opts.cwd,
        ...(this.#opts.env ? { env: this.#opts.env } : {}),
        onLine: (stream, line) => send({ type: 'JOB_LOG', job_id, stream, line: this.#redact(line) }),
        onProgress: (p) => send({ type: 'JOB_PROGRESS', job_id, epoch: p.epoch, total_epochs: p.totalEpochs }),
        ...(this.#opts.cancelGraceMs !== undefined ? { cancelGraceMs: this.#opts.cancelGraceMs } : {}),
        ...(this.#opts.killGraceMs !== undefined ? { killGraceMs: this.#opts.killGraceMs } : {}),
      });
    } catch (err) {
      const e = err instanceof SleapRtcError ? err : new SleapRtcError('INTERNAL', `sleap-nn could not be started: ${(err as Error).message}`);
      return { status: 'failed', message: failure(job_id, null, null, [], e.code, e.message) };
    }
    // A cancel that arrived while the process was being spawned.
    if (this.#cancelled) void this.#process.cancel();
    send({ type: 'JOB_STARTED', job_id, worker: this.#opts.workerName });
    return undefined;
  }

  /** How sleap-nn's exit ends the run; undefined when it succeeded. */
  #ended(result: Awaited<JobProcess['done']>): RunOutcome | undefined {
    const job_id = this.#opts.request.job_id;
    if (result.cancelled) return { status: 'cancelled' };
    if (result.exitCode === 0) return undefined;
    const how = result.exitCode === null ? `was killed by ${result.signal ?? 'a signal'}` : `exited with code ${result.exitCode}`;
    const last = result.lastLines.at(-1);
    return {
      status: 'failed',
      message: failure(job_id, result.exitCode, result.signal, result.lastLines, 'SLEAP_NN_FAILED', `sleap-nn ${how}${last ? `: ${last.slice(0, 500)}` : ''}`),
    };
  }

  /**
   * Check the outputs of a successful run and put them in place. After a failed or cancelled run
   * whatever sleap-nn wrote (checkpoints so far) is put in place too, as it would have been had
   * sleap-nn written into the share, but a problem doing so does not change how the run ended.
   */
  async #publish(files: JobFiles, outputs: PlannedOutput[], ended: RunOutcome | undefined, lastLines: readonly string[]): Promise<RunOutcome> {
    const job_id = this.#opts.request.job_id;
    for (const o of outputs) {
      const st = await stat(o.local).catch(() => undefined);
      const ok = o.kind === 'directory' ? st?.isDirectory() : st?.isFile();
      if (!ok) {
        if (ended) continue;
        return {
          status: 'failed',
          message: failure(job_id, 0, null, lastLines, 'JOB_OUTPUT_MISSING', `sleap-nn exited with code 0 but did not write '${o.relative_path}'.`),
        };
      }
      const lacking = ended ? undefined : await firstMissing(o);
      if (lacking !== undefined) {
        return {
          status: 'failed',
          message: failure(job_id, 0, null, lastLines, 'JOB_OUTPUT_MISSING', `sleap-nn exited with code 0 but did not write '${lacking}'.`),
        };
      }
      if (o.videoNames) {
        const named = await this.#nameVideos(o, o.videoNames, lastLines);
        if (named && !ended) return named;
        if (named) {
          // A failed or cancelled run: its partial output stays here rather than leave with worker paths.
          this.#opts.logger?.warn(`job ${job_id}: the partial output '${o.relative_path}' was not put in place: ${named.message.message}`);
          continue;
        }
      }
      if (o.dest === undefined) continue;
      try {
        await files.publish(o.local, o.dest, o.kind, o.relative_path);
      } catch (err) {
        if (ended) {
          this.#opts.logger?.warn(`job ${job_id}: the partial output '${o.relative_path}' was not put in place: ${(err as Error).message}`);
          continue;
        }
        return this.#changed(err, 'after sleap-nn finished; its results were not put in place', 'output', lastLines);
      }
    }
    return ended ?? { status: 'completed', outputs: outputs.map(({ relative_path, local, kind }) => ({ relative_path, local, kind })), stoppedEarly: this.#relay?.stopRequested ?? false };
  }

  /**
   * Gives the videos of a predictions file, or of every labels file in a run folder, the client's
   * names (predictions.ts). A file that is no labels file fails the job: it is not delivered.
   */
  async #nameVideos(o: PlannedOutput, names: VideoNames, lastLines: readonly string[]): Promise<Extract<RunOutcome, { status: 'failed' }> | undefined> {
    const job_id = this.#opts.request.job_id;
    const redact = (text: string): string => this.#redact(text);
    if (o.kind === 'file') {
      try {
        const n = await nameVideos(o.local, names, redact);
        if (n > 0) this.#opts.logger?.info(`job ${job_id}: ${n} video name(s) in '${o.relative_path}' given the client's names`);
        return undefined;
      } catch (err) {
        this.#opts.logger?.error({ err }, `job ${job_id}: the videos of the predictions file ${o.local} could not be renamed`);
        const code = err instanceof SleapRtcError ? err.code : 'INTERNAL';
        const why = `sleap-nn wrote '${o.relative_path}', but its videos could not be given your names (${code}); it was not delivered, so that it names no path of this worker.`;
        return { status: 'failed', message: failure(job_id, 0, null, lastLines, 'PREDICTIONS_UNREADABLE', why) };
      }
    }
    try {
      const renamed = await nameRunFolderVideos(o.local, names, redact);
      for (const [file, n] of renamed) if (n > 0) this.#opts.logger?.info(`job ${job_id}: ${n} video name(s) in '${o.relative_path}/${file}' given the client's names`);
      return undefined;
    } catch (err) {
      this.#opts.logger?.error({ err }, `job ${job_id}: the videos of a labels file in the run folder ${o.local} could not be renamed`);
      const file = err instanceof RunFolderLabelsError ? `${o.relative_path}/${err.file}` : o.relative_path;
      const cause = err instanceof RunFolderLabelsError ? err.cause : err;
      const code = cause instanceof SleapRtcError ? cause.code : 'INTERNAL';
      const why = `sleap-nn wrote '${file}' into the run folder, but its videos could not be given your names (${code}); the run folder was not delivered, so that it names no path of this worker.`;
      return { status: 'failed', message: failure(job_id, 0, null, lastLines, 'RUN_FOLDER_LABELS_UNREADABLE', why) };
    }
  }

  /** A path that failed confinement at use time, as JOB_FAILED naming only the client's path. */
  #changed(err: unknown, when: string, field = '', lastLines: readonly string[] = []): Extract<RunOutcome, { status: 'failed' }> {
    const job_id = this.#opts.request.job_id;
    if (!(err instanceof PathChangedError)) {
      const e = err instanceof SleapRtcError ? err : new SleapRtcError('INTERNAL', 'the job files could not be prepared on this worker');
      if (!(err instanceof SleapRtcError)) this.#opts.logger?.error({ err }, `job ${job_id}: preparing its files failed`);
      return { status: 'failed', message: failure(job_id, null, null, lastLines, e.code, e.message) };
    }
    const which = err.field ?? field;
    const message =
      err.reason === 'base_missing'
        ? `The storage backend of this job is not available on the worker any more; the job was stopped ${when}.`
        : `${which ? `${which}: ` : ''}${err.message}. It changed after the worker checked it, so the job was stopped ${when}.`;
    return { status: 'failed', message: failure(job_id, null, null, lastLines, 'PATH_CHANGED', message) };
  }

  /**
   * sleap-nn's line with this worker's paths put in the client's words: a pinned input becomes the
   * path the client sent, the private output folder the client's output, the job folder
   * `<job folder>`, the backend base `<backend NAME>`. A client never learns how the worker lays
   * out its disks, and reads its own file names in the log.
   */
  #redact(line: string): string {
    let out = line;
    for (const [from, to] of this.#redactions) if (out.includes(from)) out = out.split(from).join(to);
    return out;
  }

  #learn(pairs: [string, string][]): void {
    this.#redactions = [...this.#redactions, ...pairs.filter(([from]) => from.length > 1)].sort((a, b) => b[0].length - a[0].length);
  }

  async #plan(files: JobFiles): Promise<PlannedRun> {
    const { storage, cwd } = this.#opts;
    this.#learn(
      storage.transfer === 'shared'
        ? [[cwd, '<job folder>'], [storage.worker_base_path, `<backend ${storage.storage_backend}>`]]
        : [[`${cwd}/`, ''], [cwd, '<job folder>']],
    );
    const planned = await this.#planArgs(files);
    for (const o of planned.outputs) this.#learn([[o.local, o.relative_path]]);
    return planned;
  }

  /**
   * The labels file's videos (worker/videos.ts): the labels file read through the worker's own
   * descriptor of it, and each video opened through the job files of the backend it lies on, like
   * every other input, so sleap-nn is given pinned paths, never a name on a share.
   */
  async #videos(files: JobFiles, labelsGiven: string, below: (p: CheckedPath) => string): Promise<VideoSetup> {
    const { request, paths, cwd } = this.#opts;
    if (request.spec.videos === undefined) return { kind: 'none' };
    const field: PathField = request.job_type === 'train' ? 'labels' : 'data';
    const labels = paths.find((p) => p.field === field);
    if (!labels) throw new SleapRtcError('INTERNAL', `job ${request.job_id}: no checked path for ${field}`);
    let read: string;
    try {
      read = await files.read(below(labels), labels.relative_path);
    } catch (err) {
      if (err instanceof PathChangedError) err.field = field;
      throw err;
    }
    const given: CheckedPath[] = [];
    for (const p of paths.filter(videoField)) given.push({ ...p, local: await this.#video(files, p) });
    try {
      return await setUpVideos(request, given, { read, given: labelsGiven }, cwd);
    } catch (err) {
      if (!(err instanceof SleapRtcError) || err.code === 'SLP_VIDEOS_MISMATCH') throw err;
      if (err.code === 'SLP_NOT_HDF5' && err.details.reason === HDF5_NAME_MOVED) {
        // HDF5 resolves a linked path to its real name, by name: the file the worker holds open
        // was moved or removed on the storage meanwhile (it is still never read from elsewhere).
        const moved = new PathChangedError('missing', labels.relative_path, 'was moved or removed on the storage while the worker read it');
        moved.field = field;
        throw moved;
      }
      // The labels file's own error names this worker's path, so only its code is sent.
      throw new SleapRtcError(err.code, `The labels file could not be prepared on this worker (${err.code}); nothing was run.`);
    }
  }

  /** The path sleap-nn is given for one video: pinned below its backend, or the sent file in the job's own folder. */
  async #video(files: JobFiles, p: CheckedPath): Promise<string> {
    const v = p.video;
    if (!v || v.sent || v.below === undefined || v.base_path === undefined) return p.local;
    const { storage, cwd } = this.#opts;
    let own = storage.transfer === 'shared' && v.base_path === storage.worker_base_path ? files : this.#otherFiles.get(v.base_path);
    try {
      if (!own) {
        own = await sharedJobFiles({ basePath: v.base_path, jobDir: path.join(cwd, `backend-${this.#otherFiles.size + 1}`) });
        this.#otherFiles.set(v.base_path, own);
        this.#learn([[v.base_path, `<backend ${v.storage_backend ?? '?'}>`]]);
      }
      const pinned = await own.input(v.below, 'file', p.relative_path);
      this.#learn([[pinned, p.relative_path]]);
      return pinned;
    } catch (err) {
      if (err instanceof PathChangedError) err.field = p.field;
      throw err;
    }
  }

  async #planArgs(files: JobFiles): Promise<PlannedRun> {
    const { request, storage } = this.#opts;
    const checked = (field: PathField): CheckedPath => {
      const p = this.#opts.paths.find((c) => c.field === field);
      if (!p) throw new SleapRtcError('INTERNAL', `job ${request.job_id}: no checked path for ${field}`);
      return p;
    };
    const shared = storage.transfer === 'shared';
    /** Below the backend base (shared) or the staging folder (transfer). */
    const below = (p: CheckedPath): string => (shared ? [storage.user_subdir, p.relative_path].filter((s) => s !== '').join('/') : p.relative_path);
    const input = async (field: PathField): Promise<string> => {
      const p = checked(field);
      try {
        const given = await files.input(below(p), p.kind, p.relative_path);
        this.#learn([[given, p.relative_path]]);
        return given;
      } catch (err) {
        if (err instanceof PathChangedError) err.field = field;
        throw err;
      }
    };
    if (request.job_type === 'train') {
      const out = checked('output');
      const spec = request.spec;
      const configFile = await input('config_file');
      const labels = await input('labels');
      const videos = await this.#videos(files, labels, below);
      // An older client sends no video list: the client's mount is then mapped to ours as a whole.
      const prefixMap = videos.kind === 'none' ? sharedPrefixMap(storage) : undefined;
      const videoPathMap = videos.kind === 'train' ? videos.videoPathMap : undefined;
      const ckptDir = shared ? await files.outputDir() : out.local;
      const train: TrainArgsInput = {
        configFile,
        labels,
        outputDir: ckptDir,
        runName: spec.run_name,
        ...(spec.max_epochs !== undefined ? { maxEpochs: spec.max_epochs } : {}),
        ...(spec.batch_size !== undefined ? { batchSize: spec.batch_size } : {}),
        ...(spec.learning_rate !== undefined ? { learningRate: spec.learning_rate } : {}),
        ...(prefixMap ? { prefixMap } : videoPathMap ? { videoPathMap } : {}),
      };
      const args = buildTrainArgs(train);
      const relative = spec.output === '' ? spec.run_name : `${spec.output}/${spec.run_name}`;
      const dest = shared ? [below(out), spec.run_name].filter((s) => s !== '').join('/') : undefined;
      // sleap-nn saves the labels it trained on (labels_gt.*.slp) and its predictions on them
      // (labels_pr.*.slp) in the run folder, naming the videos as remapped here and a .pkg.slp's
      // embedded frames by the labels path it was given; they leave with the client's names.
      const videoNames: VideoNames = new Map([
        ...(videoPathMap ?? []).map((m): [string, string] => [m.to, m.from]),
        [labels, relativeTo(`${relative}/labels_gt.train.0.slp`, spec.labels)],
      ]);
      // sleap-nn writes a fresh folder (private for a shared job, so never <run_name>-1), which
      // must hold a model; it is then put into the run folder the session claimed on the share.
      return {
        args,
        outputs: [{ relative_path: relative, local: path.join(ckptDir, spec.run_name), kind: 'directory', mustHold: [...RUN_FOLDER_MODEL_FILES], videoNames, ...(dest !== undefined ? { dest } : {}) }],
        ...(this.#opts.zmqProgress !== false ? { configFile, train } : {}),
      };
    }
    const out = checked('output');
    const given = await input('data');
    const videos = await this.#videos(files, given, below);
    const data = videos.kind === 'track' ? videos.data : given;
    // sleap-nn names its input (the rewritten copy, for a labels file) in its log and provenance: the client's path.
    if (data !== given) this.#learn([[data, checked('data').relative_path]]);
    const models: string[] = [];
    for (let i = 0; i < request.spec.models.length; i++) models.push(await input(`models.${i}`));
    const produced = shared ? path.join(await files.outputDir(), path.posix.basename(out.relative_path)) : out.local;
    const args = buildInferenceArgs({ command: this.#opts.inferenceCommand, data, models, output: produced });
    // The predictions name their videos as sleap-nn opened them here; they leave with the client's names.
    const input_ = relativeTo(request.spec.output, request.spec.data);
    const videoNames = new Map([...(videos.kind === 'track' ? videos.names : []), [given, input_], [data, input_]]);
    return { args, outputs: [{ relative_path: out.relative_path, local: produced, kind: 'file', videoNames, ...(shared ? { dest: below(out) } : {}) }] };
  }
}

/**
 * HDF5's reason (H5F__build_actual_name) when a path that is a symbolic link, such as a pinned
 * input or /proc/self/fd/N, no longer resolves by name to the file behind it.
 */
const HDF5_NAME_MOVED = "can't retrieve real path for file";

/** A video the job reads, as job-files.ts pins it. */
function videoField(p: CheckedPath): boolean {
  return /^videos\.\d+$/.test(p.field);
}

/** An output as sleap-nn will write it (`local`), and where it goes below the base (`dest`, shared jobs). */
interface PlannedOutput extends JobOutput {
  dest?: string;
  /** A predictions file or a run folder: its labels files' videos get the client's names before it leaves (predictions.ts). */
  videoNames?: VideoNames;
}

async function firstMissing(o: JobOutput): Promise<string | undefined> {
  for (const name of o.mustHold ?? []) {
    const st = await stat(path.join(o.local, name)).catch(() => undefined);
    if (!st?.isFile()) return `${o.relative_path}/${name}`;
  }
  return undefined;
}

interface PlannedRun {
  args: string[];
  outputs: PlannedOutput[];
  /** Train jobs with ZMQ progress: the config file as sleap-nn reads it (for its epoch count). */
  configFile?: string;
  /** With `configFile`: the training arguments, built again with the relay's ports once it is open. */
  train?: TrainArgsInput;
}

function failure(
  job_id: string,
  exitCode: number | null,
  signal: NodeJS.Signals | null,
  lines: readonly string[],
  code: SleapRtcError['code'],
  message: string,
): Extract<WorkerToClient, { type: 'JOB_FAILED' }> {
  return {
    type: 'JOB_FAILED',
    job_id,
    exit_code: exitCode,
    ...(signal ? { signal } : {}),
    last_lines: newestLinesWithin(lines.slice(-LIMITS.jobLogTailLines), LIMITS.jobMessageMaxBytes - FAILURE_FRAME_OVERHEAD),
    code,
    message: message.slice(0, 2000),
  };
}
