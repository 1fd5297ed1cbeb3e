/**
 * What a client may be told about an error on this worker: a stable code and a sentence that names
 * only what the client itself sent (a field, its relative path, a file name), never a path of this
 * machine. Raw messages of file-system errors carry the worker's paths
 * ("ENOSPC: no space left on device, open '/scratch/sleap-rtc/job-j1-x/labels.slp.part'"), and so
 * can the messages of errors built on a local path; both are replaced here by words that say what
 * went wrong and who can fix it. The full error still goes to the worker's own log.
 */
import { realpathSync } from 'node:fs';
import os from 'node:os';
import { SleapRtcError, type ErrorCode } from '../errors.js';
import type { StorageConfig } from '../storage/index.js';

export interface PeerError {
  code: ErrorCode;
  message: string;
}

/**
 * Errors whose messages are built only from what the peer sent and from numbers, so they may be
 * forwarded as they are (still checked against the worker's paths before they leave).
 */
const OWN_WORDS: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'PATH_CHANGED',
  'TRANSFER_SIZE_MISMATCH',
  'TRANSFER_HASH_MISMATCH',
  'TRANSFER_CANCELLED',
  'TRANSFER_ABORTED',
  'TRANSFER_STALLED',
  // Their messages say which disk filled (the cache or the job's folder) or which proof failed, with no path.
  'TRANSFER_DISK_FULL',
  'TRANSFER_PROOF_FAILED',
  'TRANSFER_PROTOCOL',
  'TRANSFER_TOO_LARGE',
  'TRANSFER_ENTRY_REFUSED',
  'TRANSFER_ARCHIVE_INVALID',
  'SLEAP_NN_FAILED',
  'SLEAP_NN_NOT_FOUND',
  'JOB_OUTPUT_MISSING',
  'RESERVATION_NOT_FOUND',
  'RESERVATION_EXPIRED',
  'PEER_CLOSED',
  'INVALID_MESSAGE',
]);

/** What an errno means on the worker, in words for the person at the other end. */
const ERRNO_WORDS: Record<string, string> = {
  ENOSPC: "the worker's disk is full",
  EDQUOT: "the worker's disk quota is used up",
  EACCES: "permission denied for the worker's user",
  EPERM: "operation not permitted for the worker's user",
  EROFS: "the worker's folder is read-only",
  ENOENT: 'a folder the worker needs is missing',
  ENOTDIR: 'a folder the worker needs is a file',
  EEXIST: 'a file is in the way',
  EISDIR: 'a folder is in the way',
  EMFILE: 'the worker has too many files open',
  ENFILE: 'the worker has too many files open',
  EIO: "input/output error on the worker's disk",
  ENAMETOOLONG: 'a name is too long for the worker',
};

/** The worker's own paths that must never reach a peer, longest first. */
export class LocalPaths {
  readonly #paths: string[];

  constructor(paths: readonly string[]) {
    const all = new Set<string>();
    for (const p of paths) {
      if (typeof p !== 'string' || p.length < 2) continue;
      all.add(p);
      try {
        all.add(realpathSync(p));
      } catch {
        // not there (yet): the name itself is what an error would show
      }
    }
    this.#paths = [...all].filter((p) => p.length > 1).sort((a, b) => b.length - a.length);
  }

  /** The job folders' parent, every backend base, the temp folder and the home folder of this worker. */
  static forWorker(workDir: string, storage: StorageConfig): LocalPaths {
    return new LocalPaths([workDir, ...storage.backends().map((b) => b.basePath), os.tmpdir(), os.homedir()]);
  }

  /** Whether `text` shows one of these paths. */
  in(text: string): boolean {
    return this.#paths.some((p) => text.includes(p));
  }
}

/**
 * `err` as the client may see it: `what` says which step failed, in the client's terms ("The input
 * files did not arrive"); the reason is the error's own message when that is in the peer's words
 * and shows no local path, else a sentence made from its code or errno.
 */
export function peerError(err: unknown, what: string, local: LocalPaths): PeerError {
  const code: ErrorCode = err instanceof SleapRtcError ? err.code : 'INTERNAL';
  const own = err instanceof SleapRtcError && OWN_WORDS.has(err.code) && !local.in(err.message) ? err.message : undefined;
  const reason = own ?? reasonOf(err);
  const message = `${what}: ${reason}`;
  // The backstop: whatever the mapping missed, a local path never leaves.
  return { code, message: (local.in(message) ? `${what}: ${reasonOf(err)}` : message).slice(0, 2000) };
}

/** A short reason with no path in it: the errno in words, or what the code means. */
function reasonOf(err: unknown): string {
  const errno = errnoOf(err);
  if (errno) return `${ERRNO_WORDS[errno] ?? 'a file operation failed on the worker'} (${errno}).`;
  if (err instanceof SleapRtcError) {
    switch (err.code) {
      case 'TRANSFER_IO':
        return 'a received file could not be written on the worker; its operator can see why in its log.';
      case 'TRANSFER_DEST_EXISTS':
        return "a file of the same name is already in the job's folder on the worker.";
      case 'PATH_VALIDATION':
        return "the job's folder on the worker is not usable; its operator can see why in its log.";
      default:
        break;
    }
  }
  return 'an unexpected error on the worker; its operator can see the details in its log.';
}

/** The errno of an error, or of the error it wraps (TRANSFER_IO wraps the file-system error). */
function errnoOf(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e && depth < 4; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as NodeJS.ErrnoException).code;
    if (typeof code === 'string' && /^E[A-Z0-9]+$/.test(code) && !(e instanceof SleapRtcError)) return code;
  }
  // A coded error that quotes an errno in its message ("could not write the received data (ENOSPC ...").
  const m = err instanceof Error ? /\b(E[A-Z]{2,}[A-Z0-9]*)\b/.exec(err.message) : null;
  return m && m[1] && m[1] in ERRNO_WORDS ? m[1] : undefined;
}
