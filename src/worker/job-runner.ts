/**
 * One checked job run through sleap-nn: build the argument array from the paths the request check
 * resolved, start the process, stream its lines and epoch progress to the client, and report how
 * it ended, with the outputs it produced.
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { SleapRtcError } from '../errors.js';
import { LIMITS } from '../limits.js';
import { newestLinesWithin, type JobRequest, type PathField, type WorkerToClient } from '../protocol/job.js';
import type { CheckedPath, CheckedStorage } from './request-check.js';
import { startJobProcess, type JobProcess } from './job-process.js';
import { buildTrackArgs, buildTrainArgs } from './sleap-nn-args.js';

export interface JobOutput {
  /** Relative to the job's base (user folder, or staging folder), POSIX. */
  relative_path: string;
  local: string;
  kind: 'file' | 'directory';
}

export type RunOutcome =
  | { status: 'completed'; outputs: JobOutput[] }
  | { status: 'failed'; message: Extract<WorkerToClient, { type: 'JOB_FAILED' }> }
  | { status: 'cancelled' };

export interface RunOptions {
  request: JobRequest;
  storage: CheckedStorage;
  paths: readonly CheckedPath[];
  executable: string;
  workerName: string;
  /** Working directory of sleap-nn (the job's own folder, so stray files land there). */
  cwd: string;
  env?: NodeJS.ProcessEnv;
  send: (message: WorkerToClient) => void;
  cancelGraceMs?: number;
  killGraceMs?: number;
}

/** Room left in a JOB_FAILED frame for everything but `last_lines`. */
const FAILURE_FRAME_OVERHEAD = 8 * 1024;

export class JobRun {
  readonly #opts: RunOptions;
  #process: JobProcess | null = null;
  #cancelled = false;

  constructor(opts: RunOptions) {
    this.#opts = opts;
  }

  /** Stop the run: before sleap-nn starts it never starts; after, the process gets the cancel ladder. */
  cancel(): void {
    this.#cancelled = true;
    void this.#process?.cancel();
  }

  async run(): Promise<RunOutcome> {
    const { request, send } = this.#opts;
    const job_id = request.job_id;
    if (this.#cancelled) return { status: 'cancelled' };
    const { args, outputs } = this.#plan();
    try {
      this.#process = await startJobProcess({
        executable: this.#opts.executable,
        args,
        cwd: this.#opts.cwd,
        ...(this.#opts.env ? { env: this.#opts.env } : {}),
        onLine: (stream, line) => send({ type: 'JOB_LOG', job_id, stream, line }),
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
    const result = await this.#process.done;
    if (result.cancelled) return { status: 'cancelled' };
    if (result.exitCode !== 0) {
      const how = result.exitCode === null ? `was killed by ${result.signal ?? 'a signal'}` : `exited with code ${result.exitCode}`;
      const last = result.lastLines.at(-1);
      return {
        status: 'failed',
        message: failure(job_id, result.exitCode, result.signal, result.lastLines, 'SLEAP_NN_FAILED', `sleap-nn ${how}${last ? `: ${last.slice(0, 500)}` : ''}`),
      };
    }
    for (const o of outputs) {
      const st = await stat(o.local).catch(() => undefined);
      const ok = o.kind === 'directory' ? st?.isDirectory() : st?.isFile();
      if (!ok) {
        return {
          status: 'failed',
          message: failure(job_id, 0, null, result.lastLines, 'JOB_OUTPUT_MISSING', `sleap-nn exited with code 0 but did not write '${o.relative_path}'.`),
        };
      }
    }
    return { status: 'completed', outputs };
  }

  #plan(): { args: string[]; outputs: JobOutput[] } {
    const { request, storage } = this.#opts;
    const local = (field: PathField): CheckedPath => {
      const p = this.#opts.paths.find((c) => c.field === field);
      if (!p) throw new SleapRtcError('INTERNAL', `job ${request.job_id}: no checked path for ${field}`);
      return p;
    };
    if (request.job_type === 'train') {
      const out = local('output');
      const spec = request.spec;
      const prefixMap =
        storage.transfer === 'shared' &&
        storage.client_base_path !== undefined &&
        path.posix.isAbsolute(storage.client_base_path) &&
        storage.client_base_path !== storage.worker_base_path
          ? { from: storage.client_base_path, to: storage.worker_base_path }
          : undefined;
      const args = buildTrainArgs({
        configFile: local('config_file').local,
        labels: local('labels').local,
        outputDir: out.local,
        runName: spec.run_name,
        ...(spec.max_epochs !== undefined ? { maxEpochs: spec.max_epochs } : {}),
        ...(spec.batch_size !== undefined ? { batchSize: spec.batch_size } : {}),
        ...(spec.learning_rate !== undefined ? { learningRate: spec.learning_rate } : {}),
        ...(prefixMap ? { prefixMap } : {}),
      });
      const relative = spec.output === '' ? spec.run_name : `${spec.output}/${spec.run_name}`;
      return { args, outputs: [{ relative_path: relative, local: path.join(out.local, spec.run_name), kind: 'directory' }] };
    }
    const out = local('output');
    const args = buildTrackArgs({
      data: local('data').local,
      models: request.spec.models.map((_, i) => local(`models.${i}`).local),
      output: out.local,
    });
    return { args, outputs: [{ relative_path: out.relative_path, local: out.local, kind: 'file' }] };
  }
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
