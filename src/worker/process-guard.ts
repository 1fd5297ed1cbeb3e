/**
 * sleap-nn must not outlive the worker, even when the worker is killed with SIGKILL and runs no
 * cleanup at all: a real trainer left behind holds the GPU until someone finds it.
 *
 * The guard is a tiny `sh` process per job, in its own process group, whose stdin is a pipe from
 * the worker. The kernel closes that pipe whenever the worker dies, however it dies. `read` then
 * sees end-of-file and the guard kills sleap-nn's whole process group (sleap-nn and its
 * data-loader processes) with SIGKILL. When the job ends normally, the worker writes `done`
 * first and the guard exits without killing anything.
 *
 * Why not `setpriv --pdeathsig` (PR_SET_PDEATHSIG): it is Linux only, it kills only sleap-nn
 * itself and not its data-loader processes, and running sleap-nn through it hides a missing
 * executable behind setpriv's exit status 127. The pipe works the same on Linux and macOS, in a
 * container and under SLURM; docs/jobs.md ("what happens when") says what else holds where.
 */
import { spawn, type ChildProcess } from 'node:child_process';

/** Reads one line; anything but `done` (including end-of-file) kills the group named by $1. */
const GUARD_SCRIPT = 'read line; [ "$line" = done ] || kill -s KILL -- "-$1" 2>/dev/null; exit 0';

export interface ProcessGuard {
  /** The job ended normally: let the guard go without killing anything. Safe to call twice. */
  release(): void;
  /** The guard's own pid (tests), or null when it could not be started. */
  readonly pid: number | null;
}

/**
 * Starts a guard for the process group `pgid` (a detached child's pid). Never throws: without a
 * shell the job still runs, unguarded, and `onUnguarded` says so.
 */
export function guardProcessGroup(pgid: number, onUnguarded: (reason: string) => void = () => {}): ProcessGuard {
  let guard: ChildProcess;
  try {
    guard = spawn('/bin/sh', ['-c', GUARD_SCRIPT, 'sleap-rtc-guard', String(pgid)], {
      // Its own group: a Ctrl-C at the worker's terminal must not kill the guard before the worker.
      detached: true,
      stdio: ['pipe', 'ignore', 'ignore'],
    });
  } catch (err) {
    onUnguarded((err as Error).message);
    return { release: () => {}, pid: null };
  }
  guard.on('error', (err) => onUnguarded(err.message));
  guard.stdin?.on('error', () => undefined);
  // The guard must not keep the worker's event loop alive, nor its pipe.
  guard.unref();
  (guard.stdin as unknown as { unref?: () => void } | null)?.unref?.();
  let released = false;
  return {
    pid: guard.pid ?? null,
    release() {
      if (released) return;
      released = true;
      guard.stdin?.end('done\n');
    },
  };
}
