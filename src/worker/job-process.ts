/**
 * One sleap-nn run as a child process: output as bounded lines, epoch progress, a tail of recent
 * lines for failure reports, and cancellation that escalates SIGINT -> SIGTERM -> SIGKILL.
 *
 * The child gets its own process group (detached) so a cancel reaches sleap-nn's data-loader
 * workers too, the way Ctrl-C in a terminal would, and so Ctrl-C on the worker's own terminal
 * does not hit running jobs behind the worker's back: the worker decides how to stop them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { stat } from 'node:fs/promises';
import { SleapRtcError } from '../errors.js';
import { LIMITS } from '../limits.js';
import { LineSplitter, parseEpochProgress, type EpochProgress } from './log-lines.js';
import { guardProcessGroup } from './process-guard.js';

export type OutputStream = 'stdout' | 'stderr';

export interface JobProcessOptions {
  /** The sleap-nn executable: a name looked up on PATH, or a path (`[worker] sleap_nn`). */
  executable: string;
  args: readonly string[];
  cwd?: string;
  /** Defaults to this process's environment. PYTHONUNBUFFERED=1 is always added so lines arrive as printed. */
  env?: NodeJS.ProcessEnv;
  onLine?: (stream: OutputStream, line: string) => void;
  /** Called when a line shows a new `Epoch N/M`. */
  onProgress?: (progress: EpochProgress) => void;
  maxLineChars?: number;
  tailLines?: number;
  /** SIGINT -> SIGTERM delay on cancel. */
  cancelGraceMs?: number;
  /** SIGTERM -> SIGKILL delay on cancel. */
  killGraceMs?: number;
  /** Called when the guard that kills sleap-nn with the worker could not be started. */
  onUnguarded?: (reason: string) => void;
}

export interface JobProcessResult {
  /** Exit status, or null when the process died of a signal. */
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  /** True when cancel() was called before the process ended. */
  cancelled: boolean;
  /** The last lines of output (both streams, in arrival order). */
  lastLines: string[];
}

/** The configured sleap-nn could not be started. */
export class SleapNnNotFoundError extends SleapRtcError {
  constructor(executable: string, reason: string, cause: unknown) {
    super(
      'SLEAP_NN_NOT_FOUND',
      `Cannot run sleap-nn: "${executable}" ${reason}. Set [worker] sleap_nn in the worker's config file to the ` +
        'sleap-nn executable (a full path, or a command name on the PATH).',
      { executable },
      { cause },
    );
  }
}

type State = 'running' | 'cancelling' | 'exited';

export class JobProcess {
  readonly pid: number;
  /** Settles once, when the process has exited and its output has been read. Never rejects. */
  readonly done: Promise<JobProcessResult>;

  private state: State = 'running';
  private cancelRequested = false;
  private exitSeen = false;
  private readonly tail: string[] = [];
  private readonly timers = new Set<NodeJS.Timeout>();
  private lastProgress: EpochProgress | undefined;

  /** Use `startJobProcess`, which reports a missing executable as an error instead of an exit. */
  constructor(
    private readonly child: ChildProcess,
    private readonly opts: JobProcessOptions,
  ) {
    if (child.pid === undefined) throw new Error('JobProcess needs a spawned child');
    this.pid = child.pid;
    this.done = new Promise((resolve) => this.watch(resolve));
  }

  get running(): boolean {
    return this.state !== 'exited';
  }

  get lastLines(): string[] {
    return [...this.tail];
  }

  /**
   * Ask sleap-nn to stop: SIGINT now, SIGTERM after the grace period, SIGKILL after another.
   * Safe to call any number of times and after exit; always resolves with the final result.
   */
  cancel(): Promise<JobProcessResult> {
    if (this.state === 'running' && !this.exitSeen) {
      this.state = 'cancelling';
      this.cancelRequested = true;
      this.signal('SIGINT');
      const termMs = this.opts.cancelGraceMs ?? LIMITS.jobCancelGraceMs;
      const killMs = this.opts.killGraceMs ?? LIMITS.jobKillGraceMs;
      this.after(termMs, () => {
        this.signal('SIGTERM');
        this.after(killMs, () => this.signal('SIGKILL'));
      });
    }
    return this.done;
  }

  private watch(resolve: (r: JobProcessResult) => void): void {
    const maxChars = this.opts.maxLineChars ?? LIMITS.jobLogMaxLineChars;
    const open = new Set<OutputStream>();
    let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;

    const finish = (): void => {
      if (!exit || this.state === 'exited') return;
      if (open.size > 0) return;
      this.state = 'exited';
      for (const t of this.timers) clearTimeout(t);
      this.timers.clear();
      resolve({ exitCode: exit.code, signal: exit.signal, cancelled: this.cancelRequested, lastLines: this.lastLines });
    };

    for (const name of ['stdout', 'stderr'] as const) {
      const stream = this.child[name];
      if (!stream) continue;
      open.add(name);
      const splitter = new LineSplitter(maxChars, (line) => this.line(name, line));
      stream.setEncoding('utf8');
      stream.on('data', (text: string) => splitter.push(text));
      stream.on('error', () => undefined);
      stream.on('close', () => {
        splitter.end();
        open.delete(name);
        finish();
      });
    }

    this.child.on('exit', (code, signal) => {
      exit = { code, signal };
      this.exitSeen = true;
      // A grandchild that inherited the pipes can keep them open after sleap-nn itself exits.
      this.after(LIMITS.jobOutputDrainMs, () => {
        for (const name of open) this.child[name]?.destroy();
      });
      finish();
    });
  }

  private line(stream: OutputStream, line: string): void {
    this.tail.push(line);
    const max = this.opts.tailLines ?? LIMITS.jobLogTailLines;
    if (this.tail.length > max) this.tail.splice(0, this.tail.length - max);
    this.opts.onLine?.(stream, line);
    const progress = parseEpochProgress(line);
    if (
      progress &&
      (progress.epoch !== this.lastProgress?.epoch || progress.totalEpochs !== this.lastProgress?.totalEpochs)
    ) {
      this.lastProgress = progress;
      this.opts.onProgress?.(progress);
    }
  }

  private signal(sig: NodeJS.Signals): void {
    if (this.state === 'exited') return;
    try {
      process.kill(-this.pid, sig);
    } catch {
      // The group is gone or not ours; fall back to the process itself.
      this.child.kill(sig);
    }
  }

  private after(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    this.timers.add(t);
  }
}

/**
 * Starts sleap-nn with an argument array (never a shell). Resolves once the process is running;
 * rejects with SleapNnNotFoundError when the executable is missing or not executable.
 */
export async function startJobProcess(opts: JobProcessOptions): Promise<JobProcess> {
  if (opts.cwd !== undefined) {
    // spawn reports a missing cwd as ENOENT, which would be misread as a missing executable.
    const st = await stat(opts.cwd).catch(() => undefined);
    if (!st?.isDirectory()) {
      throw new SleapRtcError('INTERNAL', `The job's working directory ${JSON.stringify(opts.cwd)} does not exist.`);
    }
  }
  const child = spawn(opts.executable, [...opts.args], {
    shell: false,
    detached: true,
    cwd: opts.cwd,
    env: { ...(opts.env ?? process.env), PYTHONUNBUFFERED: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      child.off('spawn', onSpawn);
      const reason =
        err.code === 'ENOENT'
          ? 'was not found'
          : err.code === 'EACCES'
            ? 'is not executable (permission denied)'
            : `could not be started (${err.code ?? err.message})`;
      reject(new SleapNnNotFoundError(opts.executable, reason, err));
    };
    const onSpawn = (): void => {
      child.off('error', onError);
      resolve();
    };
    child.once('error', onError);
    child.once('spawn', onSpawn);
  });
  // After a successful spawn, later 'error' events (a failed kill) must not crash the worker.
  child.on('error', () => undefined);
  // sleap-nn dies with the worker, even on SIGKILL (process-guard.ts).
  const guard = guardProcessGroup(child.pid as number, opts.onUnguarded);
  child.once('exit', () => guard.release());
  return new JobProcess(child, opts);
}
