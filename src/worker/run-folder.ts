/**
 * A training job's run folder, `<output>/<run_name>` on the storage backend.
 *
 * sleap-nn (training/model_trainer.py, `_setup_ckpt_path`) quietly trains into
 * `<run_name>-1` (then `-2`, ...) when `<ckpt_dir>/<run_name>/best.ckpt` already exists, and into
 * the existing folder, mixing old and new files, when the folder exists without one. Neither is
 * what a user who typed `--run-name` expects, and the client would report a folder that is not
 * the one written. So an existing run folder is refused (RUN_FOLDER_EXISTS):
 * - the request check looks first (`runFolderProblem`), so nothing is claimed or sent for a job
 *   that cannot run;
 * - right before the job is accepted the worker claims the folder (`claimRunFolder`): `mkdir`
 *   without `recursive`, below the output folder opened through descriptors (storage/beneath.ts),
 *   creates it only if nothing is there, atomically, so a folder created in the meantime, or a
 *   concurrent job with the same name, is refused too. sleap-nn writes a fresh private run
 *   folder (job-runner.ts), which the worker then puts into exactly this one.
 * When the job does not complete, a run folder that is still empty is removed before the worker
 * answers (`releaseRunFolder`), so the same run name can be used again at once. A folder with
 * anything in it stays, for the user to look at.
 */
import { lstat, mkdir, rmdir } from 'node:fs/promises';
import type { ErrorCode } from '../errors.js';
import type { PathErrorRule, PathField } from '../protocol/job.js';
import { closeQuietly, ConfinedRoot, fdPath } from '../storage/index.js';

export interface RunFolderProblem {
  code: ErrorCode;
  problem: { field: PathField; rule: PathErrorRule; message: string };
}

/** Where a shared train job's run folder goes. */
export interface RunFolderRef {
  /** The backend's base on this worker. */
  basePath: string;
  /** The output folder below the base (user folder + output, POSIX; "" is the base). */
  parent: string;
  /** The run name: one folder name. */
  name: string;
  /** The run folder as the client named it (relative), for messages; never this worker's path. */
  shown: string;
}

const exists = (shown: string): RunFolderProblem => ({
  code: 'RUN_FOLDER_EXISTS',
  problem: {
    field: 'output',
    rule: 'invalid',
    message:
      `output: the run folder '${shown}' already exists; sleap-rtc does not train into an existing run folder ` +
      '(sleap-nn would mix files, or switch to another folder). Choose another --run-name, or move that folder away.',
  },
});

const cannot = (shown: string, what: string, code: string | undefined): RunFolderProblem => ({
  code: 'PATH_VALIDATION',
  problem: { field: 'output', rule: 'not_writable', message: `output: the run folder '${shown}' cannot be ${what} on this worker (${code ?? 'error'})` },
});

/** The run folder as the client named it: `<output>/<run_name>` relative to the user folder. */
export function shownRunFolder(outputRelative: string, runName: string): string {
  return outputRelative === '' ? runName : `${outputRelative}/${runName}`;
}

/** Undefined when nothing is at the run folder yet (`local`: its resolved path, already confined). */
export async function runFolderProblem(local: string, shown: string): Promise<RunFolderProblem | undefined> {
  const st = await lstat(local).catch((err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? undefined : err));
  if (st === undefined) return undefined;
  if (st instanceof Error) return cannot(shown, 'checked', (st as NodeJS.ErrnoException).code);
  return exists(shown);
}

/** Runs `fn` with `<parent fd>/<name>`: a path the kernel resolves from a descriptor below the base. */
async function inParent<T>(ref: RunFolderRef, fn: (p: string) => Promise<T>): Promise<T> {
  const root = await ConfinedRoot.open(ref.basePath);
  try {
    const parent = await root.open(ref.parent, 'directory', { shown: ref.shown });
    try {
      return await fn(`${fdPath(parent.fd)}/${ref.name}`);
    } finally {
      await closeQuietly(parent.fd);
    }
  } finally {
    await root.close();
  }
}

/** Creates the run folder; a problem when anything is already there (or it cannot be made). */
export async function claimRunFolder(ref: RunFolderRef): Promise<RunFolderProblem | undefined> {
  try {
    await inParent(ref, (p) => mkdir(p));
    return undefined;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'EEXIST' ? exists(ref.shown) : cannot(ref.shown, 'created', code);
  }
}

/** Removes the run folder if it is still empty; a folder with anything in it stays. */
export async function releaseRunFolder(ref: RunFolderRef): Promise<void> {
  await inParent(ref, (p) => rmdir(p)).catch(() => undefined);
}
