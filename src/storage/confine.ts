/**
 * Path confinement: the security boundary of sleap-rtc (the seed's `validate_path_in_root`).
 *
 * A peer names a file as backend + user subdirectory + relative path. Whatever it sends, the local
 * path we end up touching must lie inside the backend's base directory, judged on REAL paths (all
 * symlinks followed), because a symlink planted under a shared mount is just as good an escape as
 * `..`.
 *
 * Two layers:
 *  1. checkRelativePath: lexical rules, no filesystem access. Peers never need `..`, `.`, absolute
 *     paths, backslashes or empty segments, so those are refused outright rather than normalised:
 *     normalising hides intent and is where traversal bugs live.
 *  2. confinePath / isInside: follow symlinks the way the kernel would, including dangling ones
 *     and paths that do not exist yet, and require the result to sit under the real base.
 *
 * TOCTOU limit: the check is made at resolve time. If someone with write access to the storage
 * swaps a directory for a symlink afterwards, a later open() follows the new link. Callers should
 * open the returned path immediately and not hold it across long waits; the threat this guards
 * against is a remote peer, who cannot change the local filesystem between the two steps.
 */
import { lstat, readlink, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { SleapRtcError } from '../errors.js';
import { LIMITS } from '../limits.js';

export type PathRule =
  | 'not_string'
  | 'empty'
  | 'absolute'
  | 'dotdot'
  | 'nul'
  | 'backslash'
  | 'empty_segment'
  | 'dot_segment'
  | 'too_long'
  | 'escapes_base'
  | 'base_missing';

export class PathValidationError extends SleapRtcError {
  readonly rule: PathRule;

  constructor(rule: PathRule, message: string, info: { path?: unknown; base?: string } = {}) {
    super('PATH_VALIDATION', message, { rule, path: describePath(info.path), base: info.base ?? null });
    this.rule = rule;
  }
}

/** What each rule means to the person who sent the path, and what to send instead. */
const RULE_SENTENCES: Record<Exclude<PathRule, 'escapes_base' | 'base_missing'>, string> = {
  not_string: 'a path must be a string',
  empty: 'the path is empty; name a file or folder relative to the backend',
  absolute: 'it is absolute; send a path relative to the backend base, e.g. "project/labels.slp"',
  dotdot: 'it contains a ".." segment; send a path that stays inside the backend, without ".."',
  nul: 'it contains a NUL byte, which no file name may hold',
  backslash: 'it contains a backslash; use "/" to separate folders',
  empty_segment: 'it has an empty segment ("//", or a trailing "/"); remove the extra "/"',
  dot_segment: 'it contains a "." segment; remove the "./" parts',
  too_long: `it is too long (at most ${LIMITS.relativePathMaxBytes} bytes, ${LIMITS.pathSegmentMaxBytes} per folder or file name)`,
};

function refuse(rule: keyof typeof RULE_SENTENCES, relativePath: unknown): never {
  throw new PathValidationError(rule, `path ${quote(relativePath)} is refused: ${RULE_SENTENCES[rule]}`, {
    path: relativePath,
  });
}

/** `C:`, `c:foo`: absolute (or drive-relative) on the Windows machine that sent it. */
const WINDOWS_DRIVE = /^[A-Za-z]:/;

/**
 * Lexical checks for a relative POSIX path that came from another machine; returns its segments
 * (empty array only when `allowEmpty` and the path is ""). Throws PathValidationError.
 */
export function checkRelativePath(relativePath: string, opts: { allowEmpty?: boolean } = {}): string[] {
  // Peers send JSON, so a non-string can arrive even though the type says string.
  if (typeof relativePath !== 'string') refuse('not_string', relativePath);
  if (relativePath === '') {
    if (opts.allowEmpty) return [];
    refuse('empty', relativePath);
  }
  if (relativePath.includes('\0')) refuse('nul', relativePath);
  if (relativePath.startsWith('/') || WINDOWS_DRIVE.test(relativePath)) refuse('absolute', relativePath);
  if (relativePath.includes('\\')) refuse('backslash', relativePath);
  if (Buffer.byteLength(relativePath, 'utf8') > LIMITS.relativePathMaxBytes) refuse('too_long', relativePath);
  const segments = relativePath.split('/');
  for (const segment of segments) {
    if (segment === '') refuse('empty_segment', relativePath);
    if (segment === '..') refuse('dotdot', relativePath);
    if (segment === '.') refuse('dot_segment', relativePath);
    if (Buffer.byteLength(segment, 'utf8') > LIMITS.pathSegmentMaxBytes) refuse('too_long', relativePath);
  }
  return segments;
}

/**
 * Resolve `relativePath` under `baseDir` and prove the result stays inside the REAL path of
 * baseDir (symlinks resolved; for a path that does not exist yet, the real path of its nearest
 * existing ancestor, with dangling symlinks followed to where they would create the file).
 * Returns the absolute path built on the real base path. Throws PathValidationError.
 */
export async function confinePath(
  baseDir: string,
  relativePath: string,
  opts: { allowEmpty?: boolean } = {},
): Promise<string> {
  const segments = checkRelativePath(relativePath, opts);
  const base = await realBase(baseDir, relativePath);
  const candidate = segments.length ? path.join(base, ...segments) : base;
  let real: string;
  try {
    real = await resolveLoose(candidate);
  } catch (err) {
    throw new PathValidationError(
      'escapes_base',
      `path ${quote(relativePath)} is refused: it could not be resolved (${(err as Error).message})`,
      { path: relativePath, base },
    );
  }
  if (!within(base, real)) {
    throw new PathValidationError(
      'escapes_base',
      `path ${quote(relativePath)} is refused: it leads outside the backend base ${base} (through a symbolic link)`,
      { path: relativePath, base },
    );
  }
  return candidate;
}

/**
 * Same check for an already-absolute local path: is `candidate` inside `baseDir` once both are
 * real paths? False when the base does not exist or the candidate cannot be resolved.
 */
export async function isInside(baseDir: string, candidate: string): Promise<boolean> {
  if (typeof baseDir !== 'string' || typeof candidate !== 'string' || candidate.includes('\0')) return false;
  let base: string;
  try {
    base = await realpath(baseDir);
  } catch {
    return false;
  }
  try {
    return within(base, await resolveLoose(path.resolve(candidate)));
  } catch {
    return false;
  }
}

/**
 * The real path an absolute path refers to, or would refer to once created (see resolveLoose).
 * Throws on symlink loops and unreadable folders.
 */
export async function realPathOf(absPath: string): Promise<string> {
  return resolveLoose(path.resolve(absPath));
}

/** `base` and `target` are both real, normalised absolute paths. */
function within(base: string, target: string): boolean {
  if (target === base) return true;
  const prefix = base.endsWith(path.sep) ? base : base + path.sep;
  return target.startsWith(prefix);
}

async function realBase(baseDir: string, relativePath: unknown): Promise<string> {
  const fail = (why: string): never => {
    throw new PathValidationError('base_missing', `backend base ${quote(baseDir)} ${why}`, {
      path: relativePath,
      base: String(baseDir),
    });
  };
  if (typeof baseDir !== 'string' || baseDir === '' || baseDir.includes('\0')) fail('is not a usable path');
  let base = '';
  try {
    base = await realpath(baseDir);
  } catch (err) {
    fail(`cannot be opened (${(err as NodeJS.ErrnoException).code ?? 'error'}); check that the storage is mounted`);
  }
  if (!(await stat(base)).isDirectory()) fail('is not a directory');
  return base;
}

const MISSING = new Set(['ENOENT', 'ENOTDIR']);

/**
 * The real path `absPath` (absolute, normalised) refers to, or would refer to once created.
 * fs.realpath covers the common case (everything exists). Otherwise find the deepest ancestor
 * that fs.realpath can resolve, then walk the remaining components like the kernel: follow each
 * symlink (dangling ones too, since creating the file would follow them), stop at the first
 * component that does not exist and append the rest, which holds no symlinks by definition.
 */
async function resolveLoose(absPath: string): Promise<string> {
  const queue: string[] = [];
  let ancestor = absPath;
  let current: string | undefined;
  for (;;) {
    try {
      current = await realpath(ancestor);
      break;
    } catch (err) {
      if (!MISSING.has((err as NodeJS.ErrnoException).code ?? '')) throw err;
    }
    const parent = path.dirname(ancestor);
    if (parent === ancestor) break;
    queue.unshift(path.basename(ancestor));
    ancestor = parent;
  }
  if (queue.length === 0 && current !== undefined) return current;
  current ??= '/';
  let hops = 0;
  while (queue.length) {
    const segment = queue.shift() as string;
    if (segment === '.') continue;
    if (segment === '..') {
      // `current` holds no symlinks, so its lexical parent is its real parent.
      current = path.dirname(current);
      continue;
    }
    const next = path.join(current, segment);
    let isLink: boolean;
    try {
      isLink = (await lstat(next)).isSymbolicLink();
    } catch (err) {
      if (!MISSING.has((err as NodeJS.ErrnoException).code ?? '')) throw err;
      // Nothing below a missing component can exist; `..` after it would fail in the kernel too,
      // so collapsing lexically only ever makes the answer stricter.
      return path.join(next, ...queue);
    }
    if (!isLink) {
      current = next;
      continue;
    }
    if (++hops > LIMITS.symlinkMaxHops) throw new Error('too many levels of symbolic links');
    const target = await readlink(next);
    if (path.isAbsolute(target)) current = '/';
    queue.unshift(...target.split('/').filter((s) => s !== ''));
  }
  return current;
}

/** Safe to print: bounded length, control characters escaped. */
function describePath(p: unknown): string {
  if (typeof p !== 'string') return `<${p === null ? 'null' : typeof p}>`;
  const shown = p.length > 200 ? `${p.slice(0, 200)}...(${p.length} chars)` : p;
  // eslint-disable-next-line no-control-regex
  return shown.replace(/[\u0000-\u001f\u007f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

function quote(p: unknown): string {
  return typeof p === 'string' ? `'${describePath(p)}'` : describePath(p);
}
