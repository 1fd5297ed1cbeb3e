/** Errors about storage backends as a whole (path-level refusals are PathValidationError in confine.ts). */
import { SleapRtcError } from '../errors.js';

/** Backend names can come from a peer; keep them printable and short in messages. */
function show(name: unknown): string {
  const s = typeof name === 'string' ? name : String(name);
  return JSON.stringify(s.length > 64 ? `${s.slice(0, 64)}...` : s);
}

export class StorageBackendNotFound extends SleapRtcError {
  readonly backend: string;

  constructor(backend: string, configured: readonly string[]) {
    const message = configured.length
      ? `storage backend ${show(backend)} is not configured here; configured backends: ${configured.join(', ')}`
      : `storage backend ${show(backend)} is not configured here, and no storage backends are configured; ` +
        `add a [storage.<name>] section with base_path = "/path/to/mount" to the config file (see config.example.toml), or set SHARED_STORAGE_ROOT`;
    super('STORAGE_BACKEND_NOT_FOUND', message, { backend: String(backend), configured: [...configured] });
    this.backend = String(backend);
  }
}

export class PathNotInBackendError extends SleapRtcError {
  readonly path: string;

  constructor(localPath: string, bases: readonly { name: string; basePath: string }[]) {
    const list = bases.map((b) => `${b.name} (${b.basePath})`).join(', ');
    const message = bases.length
      ? `${localPath} is not under any configured storage backend: ${list}; move the data under one of them, add a backend for its mount, or let the files be sent by transfer`
      : `${localPath} is not under any storage backend because none are configured; add a [storage.<name>] section for its mount, or let the files be sent by transfer`;
    super('PATH_NOT_IN_BACKEND', message, { path: localPath, backends: bases.map((b) => ({ name: b.name, base_path: b.basePath })) });
    this.path = localPath;
  }
}
