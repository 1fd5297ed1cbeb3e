/**
 * Checking a JOB_REQUEST's paths before anything runs: the worker's half of the security boundary.
 *
 * Shared storage: every path is resolved under `<backend base>/<user_subdir>` on THIS machine with
 * the storage layer's confinement (real paths, symlinks followed), then inputs must exist, be of
 * the right kind and be readable, and the output must be creatable and writable. Transfer jobs:
 * every path is a name inside the job's fresh staging folder, and names may not overlap.
 *
 * Answers never hold this worker's absolute paths: a PATH_ERROR says the field, the rule and the
 * relative path the client sent, so a peer learns nothing about how the storage is mounted here.
 * Nothing is created unless every check passed.
 */
import { constants } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import {
  interpretStorage,
  jobPaths,
  type JobPath,
  type JobRequest,
  type PathErrorRule,
  type PathField,
  type WorkerToClient,
} from '../protocol/job.js';
import {
  canAccess,
  checkRelativePath,
  closeQuietly,
  ConfinedRoot,
  confinePath,
  fdPath,
  PathChangedError,
  PathValidationError,
  type StorageConfig,
} from '../storage/index.js';
import { SleapRtcError, type ErrorCode } from '../errors.js';
import { runFolderProblem, shownRunFolder, type RunFolderRef } from './run-folder.js';
import { matchVideos } from './videos.js';

/** A path of the job as this worker will hand it to sleap-nn. */
export interface CheckedPath extends JobPath {
  /** Absolute path on this worker. */
  local: string;
  /**
   * For `videos.N`: the backend it was found on (its base on this worker, and the path below that
   * base the job files open at use time), or `sent` when it comes over the data channel.
   */
  video?: { storage_backend?: string; base_path?: string; below?: string; sent: boolean };
}

export type CheckedStorage =
  | { transfer: 'shared'; storage_backend: string; user_subdir: string; client_base_path?: string; worker_base_path: string; legacy: boolean }
  | { transfer: 'webrtc'; legacy: boolean };

export type CheckOutcome =
  | {
      ok: true;
      storage: CheckedStorage;
      paths: CheckedPath[];
      messages: WorkerToClient[];
      /** A shared train job's run folder, checked to be free; the session claims it before accepting. */
      runFolder?: RunFolderRef;
    }
  | { ok: false; messages: WorkerToClient[] };

export interface CheckContext {
  storage: StorageConfig;
  /** Backends this worker advertises (healthy at start-up). */
  healthyBackends: ReadonlySet<string>;
  /** Creates the staging folder of a transfer job (only called when the request passes). */
  stagingDir: () => Promise<string>;
}

type PathProblem = { field: PathField; rule: PathErrorRule; message: string };

/** Check `request`; the messages are what to send the client, in order. */
export async function checkRequest(request: JobRequest, ctx: CheckContext): Promise<CheckOutcome> {
  const plan = interpretStorage(request, (name) => ctx.healthyBackends.has(name));
  if (plan.transfer === 'webrtc') return checkTransfer(request, ctx, plan.legacy);
  return checkShared(request, ctx, plan);
}

// ---- shared storage ---------------------------------------------------------------------------

async function checkShared(
  request: JobRequest,
  ctx: CheckContext,
  plan: { storage_backend: string; user_subdir: string; client_base_path?: string; legacy: boolean },
): Promise<CheckOutcome> {
  const { job_id } = request;
  const name = plan.storage_backend;
  if (!ctx.healthyBackends.has(name) || !ctx.storage.hasBackend(name)) return backendMissing(job_id, name, ctx);
  const backend = ctx.storage.getBackend(name);

  try {
    await backend.resolvePath(plan.user_subdir, '', { allowEmpty: true });
  } catch (err) {
    if (err instanceof PathValidationError && err.rule === 'base_missing') return backendMissing(job_id, name, ctx);
    return refuse(job_id, [problemFrom(err, 'user_subdir', plan.user_subdir, name)]);
  }

  const problems: PathProblem[] = [];
  const checked: CheckedPath[] = [];
  for (const p of jobPaths(request)) {
    let local: string;
    try {
      local = await backend.resolvePath(plan.user_subdir, p.relative_path, { allowEmpty: p.role === 'output' });
    } catch (err) {
      if (err instanceof PathValidationError && err.rule === 'base_missing') return backendMissing(job_id, name, ctx);
      problems.push(problemFrom(err, p.field, p.relative_path, name));
      continue;
    }
    const problem = p.role === 'input' ? await inputProblem(p, local) : await outputProblem(p, local);
    if (problem) {
      problems.push(problem);
      continue;
    }
    if (request.job_type === 'train' && p.field === 'output') {
      // sleap-nn writes into <output>/<run_name>: a run folder that already exists as a link
      // leading out of the storage would take the results with it.
      const run = p.relative_path === '' ? request.spec.run_name : `${p.relative_path}/${request.spec.run_name}`;
      try {
        await backend.resolvePath(plan.user_subdir, run);
      } catch (err) {
        problems.push(problemFrom(err, p.field, run, name));
        continue;
      }
    }
    checked.push({ ...p, local });
  }
  const videos = await checkSharedVideos(request, ctx, problems);
  if ('missingBackend' in videos) return backendMissing(job_id, videos.missingBackend, ctx);
  if (problems.length === 0) {
    const clash = overwritesInput(checked);
    if (clash) problems.push(clash);
  }
  if (problems.length === 0 && videos.sent.length > 0) {
    // Sent videos land in the job folder, created only now that every other check passed.
    const dir = await ctx.stagingDir();
    for (const v of videos.sent) v.local = await confinePath(dir, v.relative_path);
  }
  checked.push(...videos.checked, ...videos.sent);
  if (problems.length === 0) {
    const problem = await labelsMatchVideos(request, checked, { basePath: backend.basePath, userSubdir: plan.user_subdir });
    if (problem) problems.push(problem);
  }
  if (problems.length) return refuse(job_id, problems);

  // Every check passed: only now create the output folder, through descriptors below the base
  // (storage/beneath.ts), so a folder swapped for a link since the check is refused, not created through.
  const created = await createOutputFolders(backend.basePath, plan.user_subdir, checked);
  if (created) return refuse(job_id, [created]);

  // A training job's run folder must be new: sleap-nn would otherwise mix files into it or
  // silently train into <run_name>-1. The session claims it (atomically) just before accepting.
  let runFolder: RunFolderRef | undefined;
  if (request.job_type === 'train') {
    const out = checked.find((c) => c.field === 'output') as CheckedPath;
    const name = request.spec.run_name;
    runFolder = {
      basePath: backend.basePath,
      parent: [plan.user_subdir, out.relative_path].filter((s) => s !== '').join('/'),
      name,
      shown: shownRunFolder(out.relative_path, name),
    };
    const taken = await runFolderProblem(path.join(out.local, name), runFolder.shown);
    if (taken) return refuse(job_id, [taken.problem], taken.code);
  }

  const storage: CheckedStorage = {
    transfer: 'shared',
    storage_backend: name,
    user_subdir: plan.user_subdir,
    worker_base_path: backend.basePath,
    legacy: plan.legacy,
    ...(plan.client_base_path !== undefined ? { client_base_path: plan.client_base_path } : {}),
  };
  const messages: WorkerToClient[] = checked
    .filter((p) => !p.video?.sent)
    .map((p) => ({
      type: 'PATH_VALIDATED',
      job_id,
      field: p.field,
      path: {
        type: p.role === 'input' ? 'SHARED_INPUT_PATH' : 'SHARED_OUTPUT_PATH',
        storage_backend: p.video?.storage_backend ?? name,
        user_subdir: p.video ? (videoRef(request, p.field)?.user_subdir ?? plan.user_subdir) : plan.user_subdir,
        relative_path: p.relative_path,
      },
    }));
  return { ok: true, storage, paths: checked, messages, ...(runFolder !== undefined ? { runFolder } : {}) };
}

async function createOutputFolders(basePath: string, userSubdir: string, checked: readonly CheckedPath[]): Promise<PathProblem | undefined> {
  let root: ConfinedRoot;
  try {
    root = await ConfinedRoot.open(basePath);
  } catch {
    return { field: 'output', rule: 'invalid', message: 'output: the storage backend is not available on this worker' };
  }
  try {
    for (const p of checked.filter((c) => c.role === 'output')) {
      const dir = p.kind === 'directory' ? p.relative_path : path.posix.dirname(p.relative_path);
      const rel = [userSubdir, dir === '.' ? '' : dir].filter((s) => s !== '').join('/');
      try {
        await closeQuietly((await root.open(rel, 'directory', { create: true, shown: p.relative_path })).fd);
      } catch (err) {
        if (!(err instanceof PathChangedError)) throw err;
        const rule: PathErrorRule = err.reason === 'escapes_base' ? 'outside_base' : err.reason === 'unreadable' ? 'not_writable' : 'invalid';
        return { field: p.field, rule, message: `${p.field}: ${err.message}` };
      }
    }
    return undefined;
  } finally {
    await root.close();
  }
}

async function inputProblem(p: JobPath, local: string): Promise<PathProblem | undefined> {
  const shown = `'${p.relative_path}'`;
  let st;
  try {
    st = await stat(local);
  } catch (err) {
    const code = errnoOf(err);
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      return { field: p.field, rule: 'missing', message: `${p.field}: ${shown} does not exist on this worker's mount of the backend` };
    }
    return { field: p.field, rule: 'not_readable', message: `${p.field}: ${shown} cannot be opened on this worker (${code})` };
  }
  if (p.kind === 'file' && !st.isFile()) {
    return { field: p.field, rule: 'invalid', message: `${p.field}: ${shown} is ${st.isDirectory() ? 'a folder' : 'not a regular file'}; name a file` };
  }
  if (p.kind === 'directory' && !st.isDirectory()) {
    return { field: p.field, rule: 'invalid', message: `${p.field}: ${shown} is not a folder; name the model folder (the one holding best.ckpt)` };
  }
  const mode = p.kind === 'directory' ? constants.R_OK | constants.X_OK : constants.R_OK;
  if (!(await canAccess(local, mode))) {
    return { field: p.field, rule: 'not_readable', message: `${p.field}: ${shown} is not readable by the worker's user` };
  }
  return undefined;
}

async function outputProblem(p: JobPath, local: string): Promise<PathProblem | undefined> {
  const shown = `'${p.relative_path}'`;
  const st = await stat(local).catch(() => undefined);
  if (st) {
    if (p.kind === 'directory' && !st.isDirectory()) {
      return { field: p.field, rule: 'invalid', message: `${p.field}: ${shown} exists and is not a folder` };
    }
    if (p.kind === 'file' && !st.isFile()) {
      return { field: p.field, rule: 'invalid', message: `${p.field}: ${shown} exists and is not a regular file` };
    }
  }
  // Where the output will be created: the folder itself, or the nearest folder that exists above it.
  let probe = p.kind === 'directory' && st ? local : path.dirname(local);
  for (;;) {
    const pst = await stat(probe).catch(() => undefined);
    if (pst) {
      if (!pst.isDirectory()) return { field: p.field, rule: 'invalid', message: `${p.field}: a parent of ${shown} is not a folder` };
      break;
    }
    const parent = path.dirname(probe);
    if (parent === probe) break;
    probe = parent;
  }
  const writable = (await canAccess(probe, constants.W_OK | constants.X_OK)) && (!st?.isFile() || (await canAccess(local, constants.W_OK)));
  if (!writable) return { field: p.field, rule: 'not_writable', message: `${p.field}: ${shown} is not writable by the worker's user` };
  return undefined;
}

/** A track job must not write its predictions over one of its own inputs. */
function overwritesInput(paths: readonly CheckedPath[]): PathProblem | undefined {
  const output = paths.find((p) => p.role === 'output' && p.kind === 'file');
  if (!output) return undefined;
  const hit = paths.find((p) => p.role === 'input' && p.local === output.local);
  return hit && { field: 'output', rule: 'invalid', message: `output: '${output.relative_path}' is the same file as ${hit.field}; choose another output file` };
}

// ---- videos named in the labels file --------------------------------------------------------------

function videoRef(request: JobRequest, field: PathField) {
  const m = /^videos\.(\d+)$/.exec(field);
  return m ? request.spec.videos?.[Number(m[1])] : undefined;
}

/**
 * The request's videos on a shared-storage job: each one on a backend is resolved under that
 * backend (which may be another than the labels file's) and checked like any input; the others
 * will be sent, and only need names that stay inside the job folder and differ from each other.
 */
async function checkSharedVideos(
  request: JobRequest,
  ctx: CheckContext,
  problems: PathProblem[],
): Promise<{ checked: CheckedPath[]; sent: CheckedPath[] } | { missingBackend: string }> {
  const checked: CheckedPath[] = [];
  const sent: CheckedPath[] = [];
  const names = new Set<string>();
  for (const [i, v] of (request.spec.videos ?? []).entries()) {
    const p: JobPath = { field: `videos.${i}` as PathField, relative_path: v.path, role: 'input', kind: 'file' };
    if (v.storage_backend === undefined) {
      try {
        checkRelativePath(v.path);
      } catch (err) {
        problems.push(problemFrom(err, p.field, v.path, null));
        continue;
      }
      if (names.has(v.path)) {
        problems.push({ field: p.field, rule: 'invalid', message: `${p.field}: '${show(v.path)}' is named by two sent videos; give each its own name` });
        continue;
      }
      names.add(v.path);
      sent.push({ ...p, local: '', video: { sent: true } });
      continue;
    }
    const backendName = v.storage_backend;
    if (!ctx.healthyBackends.has(backendName) || !ctx.storage.hasBackend(backendName)) return { missingBackend: backendName };
    let local: string;
    try {
      local = await ctx.storage.getBackend(backendName).resolvePath(v.user_subdir ?? '', v.path);
    } catch (err) {
      if (err instanceof PathValidationError && err.rule === 'base_missing') return { missingBackend: backendName };
      problems.push(problemFrom(err, p.field, v.path, backendName));
      continue;
    }
    const problem = await inputProblem(p, local);
    if (problem) {
      problems.push({ ...problem, message: `${problem.message.replace(/^videos\.\d+: /, `${p.field}: video `)}${usesNote(v.uses)}` });
      continue;
    }
    const below = [v.user_subdir ?? '', v.path].filter((s) => s !== '').join('/');
    checked.push({ ...p, local, video: { storage_backend: backendName, base_path: ctx.storage.getBackend(backendName).basePath, below, sent: false } });
  }
  return { checked, sent };
}

function usesNote(uses: readonly { video: number; image: number }[]): string {
  return ` (video ${[...new Set(uses.map((u) => u.video))].join(', ')} of the labels file)`;
}

/** The labels file, read here, must name exactly the videos the request lists (shared jobs; transfer jobs check after the upload). */
async function labelsMatchVideos(
  request: JobRequest,
  checked: readonly CheckedPath[],
  where: { basePath: string; userSubdir: string },
): Promise<PathProblem | undefined> {
  if (request.spec.videos === undefined || checked.some((p) => p.video?.sent)) return undefined;
  const field: PathField = request.job_type === 'train' ? 'labels' : 'data';
  const relative = request.job_type === 'train' ? request.spec.labels : request.spec.data;
  let root: ConfinedRoot | undefined;
  try {
    // Read through a descriptor below the backend base (storage/beneath.ts), as the job files
    // read it at use time: a labels file swapped for a link out of the storage is never opened.
    root = await ConfinedRoot.open(where.basePath);
    const opened = await root.open([where.userSubdir, relative].filter((s) => s !== '').join('/'), 'file', { shown: relative });
    try {
      await matchVideos(request, checked, fdPath(opened.fd));
    } finally {
      await closeQuietly(opened.fd);
    }
    return undefined;
  } catch (err) {
    if (err instanceof PathChangedError) return { field, rule: err.reason === 'escapes_base' ? 'outside_base' : 'invalid', message: `${field}: ${err.message}`.slice(0, 2000) };
    // A mismatch names videos as the labels file does (the client's own names); any other error
    // would name this worker's path, so only its code is told.
    if (err instanceof SleapRtcError && err.code === 'SLP_VIDEOS_MISMATCH') return { field, rule: 'invalid', message: `${field}: ${err.message}`.slice(0, 2000) };
    const code = err instanceof SleapRtcError ? err.code : errnoOf(err);
    return { field, rule: 'invalid', message: `${field}: '${show(relative)}' cannot be read as a SLEAP labels file on this worker (${code})` };
  } finally {
    await root?.close();
  }
}

// ---- transfer ---------------------------------------------------------------------------------

async function checkTransfer(request: JobRequest, ctx: CheckContext, legacy: boolean): Promise<CheckOutcome> {
  const { job_id } = request;
  // Every video is sent with the labels file: names in the staging folder like the other inputs.
  const paths: (JobPath & { video?: CheckedPath['video'] })[] = [
    ...jobPaths(request),
    ...(request.spec.videos ?? []).map((v, i) => ({ field: `videos.${i}` as PathField, relative_path: v.path, role: 'input' as const, kind: 'file' as const, video: { sent: true } })),
  ];
  const problems: PathProblem[] = [];
  // The names the job will occupy in its staging folder (a train job writes <output>/<run_name>).
  const claimed: { field: PathField; segments: string[] }[] = [];
  for (const p of paths) {
    let segments: string[];
    try {
      segments = checkRelativePath(p.relative_path, { allowEmpty: p.role === 'output' });
    } catch (err) {
      problems.push(problemFrom(err, p.field, p.relative_path, null));
      continue;
    }
    if (p.role === 'output' && request.job_type === 'train') segments = [...segments, request.spec.run_name];
    const overlap = claimed.find((c) => isPrefix(c.segments, segments) || isPrefix(segments, c.segments));
    if (overlap) {
      problems.push({
        field: p.field,
        rule: 'invalid',
        message: `${p.field}: '${p.relative_path}' overlaps ${overlap.field} in the job's staging folder; give each file its own name`,
      });
      continue;
    }
    claimed.push({ field: p.field, segments });
  }
  if (problems.length) return refuse(job_id, problems);
  const staging = await ctx.stagingDir();
  const checked: CheckedPath[] = [];
  for (const p of paths) {
    // The folder is new and empty, so this cannot fail short of a bug; it is the same boundary check anyway.
    checked.push({ ...p, local: await confinePath(staging, p.relative_path, { allowEmpty: p.role === 'output' }) });
  }
  return { ok: true, storage: { transfer: 'webrtc', legacy }, paths: checked, messages: [] };
}

function isPrefix(a: readonly string[], b: readonly string[]): boolean {
  return a.length <= b.length && a.every((s, i) => s === b[i]);
}

// ---- answers ----------------------------------------------------------------------------------

function backendMissing(job_id: string, backend: string, ctx: CheckContext): CheckOutcome {
  const available = [...ctx.healthyBackends].sort();
  const list = available.length ? `it has: ${available.join(', ')}` : 'it has no storage backends';
  return {
    ok: false,
    messages: [
      { type: 'BACKEND_NOT_AVAILABLE', job_id, backend, available_backends: available },
      { type: 'JOB_REJECTED', job_id, code: 'BACKEND_NOT_AVAILABLE', message: `This worker has no usable storage backend '${backend}'; ${list}.` },
    ],
  };
}

function refuse(job_id: string, problems: readonly PathProblem[], code: ErrorCode = 'PATH_VALIDATION'): CheckOutcome {
  const list = problems.map((p) => `${p.field} (${p.rule})`).join(', ');
  return {
    ok: false,
    messages: [
      ...problems.map((p): WorkerToClient => ({ type: 'PATH_ERROR', job_id, field: p.field, rule: p.rule, message: p.message.slice(0, 2000) })),
      {
        type: 'JOB_REJECTED',
        job_id,
        code,
        message: `${problems.length === 1 ? 'A path was' : `${problems.length} paths were`} refused: ${list}.`.slice(0, 2000),
      },
    ],
  };
}

/** A confinement failure as a PATH_ERROR, in words that never show this worker's base path. */
function problemFrom(err: unknown, field: PathField, relative: string, backend: string | null): PathProblem {
  if (!(err instanceof PathValidationError)) {
    return { field, rule: 'invalid', message: `${field}: '${show(relative)}' could not be checked on this worker (${errnoOf(err)})` };
  }
  const where = backend === null ? "the job's staging folder" : `storage backend '${backend}'`;
  switch (err.rule) {
    case 'escapes_base':
      return { field, rule: 'outside_base', message: `${field}: '${show(relative)}' is refused: it leads outside ${where} (through a symbolic link, or it cannot be resolved)` };
    case 'absolute':
    case 'dotdot':
      return { field, rule: 'outside_base', message: `${field}: ${lexicalReason(err)}` };
    case 'base_missing':
      return { field, rule: 'invalid', message: `${field}: ${where} is not available on this worker` };
    default:
      return { field, rule: 'invalid', message: `${field}: ${lexicalReason(err)}` };
  }
}

/** The lexical rules' messages name only the offending path, never a base. */
function lexicalReason(err: PathValidationError): string {
  return err.message.replace(/^user_subdir /, '');
}

function show(p: string): string {
  // eslint-disable-next-line no-control-regex
  const clean = p.replace(/[\u0000-\u001f\u007f]/g, '?');
  return clean.length > 200 ? `${clean.slice(0, 200)}...` : clean;
}

function errnoOf(err: unknown): string {
  return (err as NodeJS.ErrnoException)?.code ?? 'error';
}

