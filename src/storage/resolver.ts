/**
 * Translation between local paths and the logical references that travel between machines:
 * `resolve` is what a worker does with a reference (backend + user folder + relative path ->
 * its own local path), `toRelative` is what a client does with a local file before sending a job
 * (its own local path -> reference).
 */
import { realpath } from 'node:fs/promises';
import path from 'node:path';
import type { StorageBackend } from './backend.js';
import { checkRelativePath, realPathOf } from './confine.js';
import { PathNotInBackendError } from './errors.js';
import type { StorageConfig } from './storage-config.js';

export interface StorageLocation {
  backend: string;
  /** "" when the file lies directly in the backend base. */
  userSubdir: string;
  /** POSIX separators; "" only when the path is the user folder (or base) itself. */
  relativePath: string;
}

interface Match {
  backend: StorageBackend;
  /** Length of the base the path matched, for the longest-match rule. */
  baseLength: number;
  /** The path below the base, as segments. */
  segments: string[];
}

export class StorageResolver {
  readonly storage: StorageConfig;

  constructor(storage: StorageConfig) {
    this.storage = storage;
  }

  /** Local path for a reference; throws StorageBackendNotFound or PathValidationError. */
  resolve(backend: string, userSubdir: string, relativePath: string, opts?: { allowEmpty?: boolean }): Promise<string> {
    return this.storage.resolvePath(backend, userSubdir, relativePath, opts);
  }

  /**
   * The reference for a local path (resolved against the current directory when relative). The
   * backend is the one whose base contains the path, the longest base when several do (a
   * `scratch` mounted inside `vast` wins for files under it); `backend` restricts the choice to
   * one. Comparison is on real paths, and on the lexical path for a backend whose base does not
   * exist here. userSubdir is the backend's configured user_subdir when the path lies under it,
   * else the first folder below the base.
   *
   * Throws StorageBackendNotFound, PathNotInBackendError, or PathValidationError when the path
   * holds a name a peer would refuse (a backslash, say).
   */
  async toRelative(absolutePath: string, backend?: string): Promise<StorageLocation> {
    const candidates = backend === undefined ? this.storage.backends() : [this.storage.getBackend(backend)];
    const lexical = path.resolve(absolutePath);
    let real: string | null;
    try {
      real = await realPathOf(lexical);
    } catch {
      real = null;
    }
    let best: Match | undefined;
    for (const b of candidates) {
      const m = await matchBackend(b, lexical, real);
      if (m && (!best || m.baseLength > best.baseLength)) best = m;
    }
    if (!best) {
      throw new PathNotInBackendError(
        lexical,
        candidates.map((b) => ({ name: b.name, basePath: b.basePath })),
      );
    }
    const { backend: b, segments } = best;
    const configured = b.userSubdir ? b.userSubdir.split('/') : undefined;
    let userSubdir: string;
    let rest: string[];
    if (configured && configured.every((s, i) => segments[i] === s)) {
      userSubdir = b.userSubdir as string;
      rest = segments.slice(configured.length);
    } else if (segments.length > 1) {
      userSubdir = segments[0] as string;
      rest = segments.slice(1);
    } else {
      userSubdir = '';
      rest = segments;
    }
    const relativePath = rest.join('/');
    // Fail here, on the sender, rather than after a round trip to a worker that would refuse it.
    checkRelativePath(userSubdir, { allowEmpty: true });
    checkRelativePath(relativePath, { allowEmpty: true });
    return { backend: b.name, userSubdir, relativePath };
  }
}

async function matchBackend(b: StorageBackend, lexical: string, real: string | null): Promise<Match | undefined> {
  const lexicalBase = path.resolve(b.basePath);
  let realBase: string | null;
  try {
    realBase = await realpath(lexicalBase);
  } catch {
    realBase = null;
  }
  if (realBase === null) {
    // Not mounted here (yet): names are all there is to compare.
    const below = under(lexicalBase, lexical);
    return below && { backend: b, baseLength: lexicalBase.length, segments: below };
  }
  if (real === null || !under(realBase, real)) return undefined;
  // Inside for real. Prefer the names the user wrote (they survive symlinks inside the storage);
  // fall back to the real path when the user reached the file by another route.
  const below = under(lexicalBase, lexical) ?? under(realBase, lexical) ?? (under(realBase, real) as string[]);
  return { backend: b, baseLength: realBase.length, segments: below };
}

/** Segments of `target` below `base` ([] for base itself), or undefined when it is not below. */
function under(base: string, target: string): string[] | undefined {
  if (target === base) return [];
  const prefix = base.endsWith(path.sep) ? base : base + path.sep;
  if (!target.startsWith(prefix)) return undefined;
  return target.slice(prefix.length).split(path.sep).filter((s) => s !== '');
}
