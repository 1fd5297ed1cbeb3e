/**
 * A storage backend: a named mount of shared lab storage on this machine (`[storage.vast]
 * base_path = "/mnt/vast"`). Every kind sleap-rtc knows today (NFS, SMB, a synced Google shared
 * drive, a local disk) is a mounted filesystem, so one implementation serves them all and `type`
 * is descriptive. StorageBackendApi is the seam for a kind that is not a mounted filesystem; the
 * contract suite in test/storage/backend-contract.ts is what such a kind must pass.
 */
import { constants } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { ConfigError } from '../config/errors.js';
import { STORAGE_TYPES, type StorageType } from '../config/schema.js';
import { BackendNameSchema } from '../protocol/common.js';
import { canAccess } from './access.js';
import { checkRelativePath, confinePath, isInside, PathValidationError } from './confine.js';

export type { StorageType };

export interface BackendHealth {
  exists: boolean;
  isDirectory: boolean;
  readable: boolean;
  writable: boolean;
  /** What is wrong, as a short phrase ("directory does not exist"); absent when all is well. */
  error?: string;
}

export interface StorageBackendOptions {
  name: string;
  /** Absolute path of the mount on this machine. */
  basePath: string;
  type?: StorageType;
  description?: string;
  /** This user's folder under basePath, when configured (clients use it to describe their files). */
  userSubdir?: string;
}

/** What every backend kind offers. */
export interface StorageBackendApi {
  readonly name: string;
  readonly basePath: string;
  readonly type: StorageType;
  readonly description: string;
  readonly userSubdir: string | undefined;
  /**
   * The local path of `relativePath` inside `userSubdir` of this backend, proven to stay inside
   * the backend's real base. `allowEmpty` lets relativePath "" name the user folder itself.
   * Throws PathValidationError.
   */
  resolvePath(userSubdir: string, relativePath: string, opts?: { allowEmpty?: boolean }): Promise<string>;
  /** Whether an already-resolved local path lies inside this backend (on real paths). */
  validatePath(resolved: string): Promise<boolean>;
  /** Whether the mount is usable right now. Never throws. */
  health(): Promise<BackendHealth>;
}

export class StorageBackend implements StorageBackendApi {
  readonly name: string;
  readonly basePath: string;
  readonly type: StorageType;
  readonly description: string;
  readonly userSubdir: string | undefined;

  constructor(opts: Required<Pick<StorageBackendOptions, 'name' | 'basePath' | 'type' | 'description'>> & { userSubdir?: string }) {
    this.name = opts.name;
    this.basePath = opts.basePath;
    this.type = opts.type;
    this.description = opts.description;
    this.userSubdir = opts.userSubdir;
    Object.freeze(this);
  }

  async resolvePath(userSubdir: string, relativePath: string, opts: { allowEmpty?: boolean } = {}): Promise<string> {
    try {
      // The user folder is confined on its own first so a bad one is reported as such.
      await confinePath(this.basePath, userSubdir, { allowEmpty: true });
    } catch (err) {
      if (err instanceof PathValidationError && err.rule !== 'base_missing') {
        throw new PathValidationError(err.rule, `user_subdir ${err.message}`, { path: userSubdir, base: this.basePath });
      }
      throw err;
    }
    checkRelativePath(relativePath, { allowEmpty: opts.allowEmpty ?? false });
    // The final check is against the backend base, not the user folder: a user folder that is a
    // symlink to elsewhere in the same storage is fine, anything leaving the storage is not.
    const joined = [userSubdir, relativePath].filter((s) => s !== '').join('/');
    return confinePath(this.basePath, joined, { allowEmpty: true });
  }

  validatePath(resolved: string): Promise<boolean> {
    return isInside(this.basePath, resolved);
  }

  async health(): Promise<BackendHealth> {
    let isDirectory: boolean;
    try {
      isDirectory = (await stat(this.basePath)).isDirectory();
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const missing = code === 'ENOENT' || code === 'ENOTDIR';
      const error = missing ? 'directory does not exist' : `cannot be checked (${code ?? String(err)})`;
      return { exists: !missing, isDirectory: false, readable: false, writable: false, error };
    }
    if (!isDirectory) return { exists: true, isDirectory: false, readable: false, writable: false, error: 'not a directory' };
    const readable = await canAccess(this.basePath, constants.R_OK | constants.X_OK);
    const writable = await canAccess(this.basePath, constants.W_OK);
    const health: BackendHealth = { exists: true, isDirectory: true, readable, writable };
    if (!readable) health.error = 'not readable (permission denied)';
    else if (!writable) health.error = 'not writable (read-only for this user)';
    return health;
  }

  toJSON(): { name: string; base_path: string; type: StorageType; description: string; user_subdir?: string } {
    const out: ReturnType<StorageBackend['toJSON']> = { name: this.name, base_path: this.basePath, type: this.type, description: this.description };
    if (this.userSubdir !== undefined) out.user_subdir = this.userSubdir;
    return out;
  }
}


/**
 * Build a backend from options, checking the same invariants the config schema enforces (for
 * callers that do not come through a config file). Throws ConfigError listing every problem.
 */
export function createStorageBackend(opts: StorageBackendOptions): StorageBackend {
  const where = `storage backend ${JSON.stringify(String(opts.name))}`;
  const problems: { file: string; path: string; message: string }[] = [];
  if (!BackendNameSchema.safeParse(opts.name).success) {
    problems.push({ file: where, path: 'name', message: 'use 1 to 64 letters, digits, "_" or "-"' });
  }
  if (typeof opts.basePath !== 'string' || !path.isAbsolute(opts.basePath)) {
    problems.push({ file: where, path: 'base_path', message: `must be absolute, e.g. /mnt/vast; got '${String(opts.basePath)}'` });
  }
  const type = opts.type ?? 'local';
  if (!STORAGE_TYPES.includes(type)) {
    problems.push({ file: where, path: 'type', message: `must be one of ${STORAGE_TYPES.join(', ')}; got '${String(type)}'` });
  }
  if (opts.userSubdir !== undefined) {
    try {
      checkRelativePath(opts.userSubdir, { allowEmpty: true });
    } catch (err) {
      problems.push({ file: where, path: 'user_subdir', message: (err as Error).message });
    }
  }
  if (problems.length) throw new ConfigError(problems);
  const base = path.normalize(opts.basePath);
  return new StorageBackend({
    name: opts.name,
    basePath: base.length > 1 && base.endsWith(path.sep) ? base.slice(0, -1) : base,
    type,
    description: opts.description ?? '',
    ...(opts.userSubdir !== undefined ? { userSubdir: opts.userSubdir } : {}),
  });
}
