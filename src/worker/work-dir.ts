/**
 * The worker's work folder (`[worker] work_dir`) between runs: a start-up sweep removes what an
 * earlier run of this worker left behind when it was killed (SIGKILL, OOM killer, power loss):
 * job folders with staged inputs, half-received `.part` files and outputs never sent.
 *
 * The rule is explicit and narrow:
 * - only direct children named `job-*` (the only names the worker gives its job folders) are
 *   candidates; everything else in the folder (the results records, a user's own files) stays;
 * - a job folder that a kept-results record claims (outputs waiting for `sleap-rtc fetch`) stays;
 * - nothing is swept while another live worker process uses the same folder: every worker writes
 *   `.workers/<pid>` while it runs, and a start-up that finds a live one skips the sweep and says so
 *   (two workers on one machine with the default work folder must not delete each other's jobs).
 */
import { lstat, mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../log.js';

export interface SweepResult {
  /** What was removed, with its size in bytes. */
  removed: { name: string; bytes: number }[];
  bytes: number;
  /** Removals that failed (logged, never hidden). */
  failed: { name: string; error: string }[];
  /** Why the sweep did not run (another live worker uses the folder), or null. */
  skipped: string | null;
}

const OWNERS = '.workers';

/**
 * Registers this process as a user of `workDir` and sweeps what earlier runs left, unless another
 * live worker uses it too. `keep` holds job folders (absolute paths) that must stay. Returns the
 * sweep's result and a release() for shutdown.
 */
export async function openWorkDir(
  workDir: string,
  opts: { keep?: ReadonlySet<string>; logger: Logger },
): Promise<{ sweep: SweepResult; release(): Promise<void> }> {
  const log = opts.logger;
  await mkdir(path.join(workDir, OWNERS), { recursive: true });
  const others = await liveOwners(workDir);
  const mine = path.join(workDir, OWNERS, String(process.pid));
  await writeFile(mine, `${new Date().toISOString()}\n`);
  const release = async (): Promise<void> => {
    await rm(mine, { force: true }).catch((err: Error) => log.warn(`could not remove ${mine}: ${err.message}`));
  };
  if (others.length > 0) {
    const skipped = `another worker (pid ${others.join(', ')}) uses ${workDir}`;
    log.warn(`start-up sweep skipped: ${skipped}; give each worker its own [worker] work_dir so a restart can clean up after itself`);
    return { sweep: { removed: [], bytes: 0, failed: [], skipped }, release };
  }
  const sweep = await sweepWorkDir(workDir, opts.keep ?? new Set());
  report(workDir, sweep, log);
  return { sweep, release };
}

/** Removes the `job-*` folders (and files) of `workDir` that `keep` does not name. */
export async function sweepWorkDir(workDir: string, keep: ReadonlySet<string>): Promise<SweepResult> {
  const result: SweepResult = { removed: [], bytes: 0, failed: [], skipped: null };
  const kept = new Set([...keep].map((p) => path.resolve(p)));
  for (const name of (await readdir(workDir)).sort()) {
    if (!name.startsWith('job-')) continue;
    const full = path.join(workDir, name);
    if (kept.has(path.resolve(full))) continue;
    const bytes = await sizeOf(full);
    try {
      await rm(full, { recursive: true, force: true });
      result.removed.push({ name, bytes });
      result.bytes += bytes;
    } catch (err) {
      result.failed.push({ name, error: (err as Error).message });
    }
  }
  return result;
}

function report(workDir: string, sweep: SweepResult, log: Logger): void {
  if (sweep.removed.length > 0) {
    const shown = sweep.removed.slice(0, 10).map((r) => `${r.name} (${formatBytes(r.bytes)})`);
    const more = sweep.removed.length > shown.length ? `, and ${sweep.removed.length - shown.length} more` : '';
    log.info(
      `start-up sweep: removed ${sweep.removed.length} job folder(s) an earlier run left in ${workDir}, ${formatBytes(sweep.bytes)} (${sweep.bytes} bytes): ${shown.join(', ')}${more}`,
    );
  } else {
    log.info(`start-up sweep: nothing left over in ${workDir}`);
  }
  for (const f of sweep.failed) log.warn(`start-up sweep: could not remove ${path.join(workDir, f.name)}: ${f.error}`);
}

/** Pids in `.workers/` that are alive and not this process; stale entries are removed. */
async function liveOwners(workDir: string): Promise<number[]> {
  const live: number[] = [];
  for (const name of await readdir(path.join(workDir, OWNERS))) {
    const pid = Number(name);
    // Our own pid here is a leftover of an earlier run (a container restarts with the same pid).
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid)) live.push(pid);
    else await rm(path.join(workDir, OWNERS, name), { force: true });
  }
  return live;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Bytes under `p` (files only; links are not followed). */
async function sizeOf(p: string): Promise<number> {
  const st = await lstat(p).catch(() => null);
  if (!st) return 0;
  if (!st.isDirectory()) return st.size;
  let total = 0;
  for (const name of await readdir(p).catch(() => [] as string[])) total += await sizeOf(path.join(p, name));
  return total;
}

function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

