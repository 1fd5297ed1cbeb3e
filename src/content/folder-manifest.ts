/**
 * A folder offered file by file: the list of its files (relative path, size, SHA-256), checked
 * the same way on both sides, and the one SHA-256 that names the whole list. The sender builds it
 * from a walk of the folder (every file hashed, or taken from the hash index); the receiver checks
 * it before it creates anything, then receives each file as a file transfer of its own, so each is
 * offered, cached and resumed like any other file.
 */
import { createHash } from 'node:crypto';
import { SleapRtcError } from '../errors.js';
import { checkRelativePath } from '../storage/confine.js';

export interface ManifestFile {
  /** Relative POSIX path inside the folder. */
  path: string;
  size: number;
  sha256: string;
}

/** SHA-256 of the list, in its order: what FILE_META of a folder announces as `sha256`. */
export function manifestSha256(files: readonly ManifestFile[]): string {
  const hash = createHash('sha256');
  for (const f of files) hash.update(`${f.sha256} ${f.size} ${f.path}\n`);
  return hash.digest('hex');
}

export function manifestBytes(files: readonly ManifestFile[]): number {
  let n = 0;
  for (const f of files) n += f.size;
  return n;
}

/**
 * Refuse a list no sender of ours would make: a path the path rules refuse (absolute, `..`, `.`,
 * empty segments, backslash, NUL), the same path twice (compared without case, as a
 * case-insensitive disk would), or a path that is both a file and a folder of another file.
 * Throws PATH_VALIDATION or TRANSFER_PROTOCOL naming the first bad path.
 */
export function checkManifest(files: readonly ManifestFile[]): void {
  const seen = new Set<string>();
  const folders = new Set<string>();
  for (const f of files) {
    const segments = checkRelativePath(f.path);
    const key = f.path.toLowerCase();
    if (seen.has(key)) throw new SleapRtcError('TRANSFER_PROTOCOL', `The folder lists '${f.path.slice(0, 200)}' twice.`, { path: f.path.slice(0, 200) });
    seen.add(key);
    let prefix = '';
    for (const s of segments.slice(0, -1)) {
      prefix = prefix ? `${prefix}/${s.toLowerCase()}` : s.toLowerCase();
      folders.add(prefix);
    }
  }
  for (const f of files) {
    if (folders.has(f.path.toLowerCase())) {
      throw new SleapRtcError('TRANSFER_PROTOCOL', `The folder lists '${f.path.slice(0, 200)}' both as a file and as a folder of other files.`, { path: f.path.slice(0, 200) });
    }
  }
}
