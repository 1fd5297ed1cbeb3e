/**
 * Extracting a received folder, entry by entry, into a directory the receiver created for this
 * transfer (a temporary directory inside the destination; file-receive.ts moves it into place
 * only after size and hash check out, and deletes it otherwise).
 *
 * The `tar` package parses; this file decides what may be written. Policy:
 *  - regular files and folders only. Symbolic and hard links are refused outright (not confined):
 *    nothing sleap-rtc sends needs them, and a link is the classic way out of an extraction root.
 *    Devices, fifos and entry kinds the parser does not know are refused too.
 *  - every entry name passes the project's lexical path rules (no absolute paths, no `..`, no
 *    backslashes, ...) and then confinePath() against the extraction root.
 *  - compressed archives are refused: the sender never compresses, and decompression would let a
 *    small stream expand without bound.
 *  - a name may appear once; limits on entry count and total extracted bytes.
 * The first refused entry stops extraction and reports a coded error; the caller removes the root.
 */
import { mkdir, open } from 'node:fs/promises';
import path from 'node:path';
import { Parser, type ReadEntry } from 'tar';
import { SleapRtcError } from '../errors.js';
import { checkRelativePath, confinePath, PathValidationError } from '../storage/confine.js';

export interface ExtractLimits {
  maxEntries: number;
  maxBytes: number;
}

export interface ExtractResult {
  entries: number;
  /** Bytes of file content written. */
  bytes: number;
}

const MAX_META_ENTRY_BYTES = 1024 * 1024;

function refused(message: string, details: Record<string, unknown>): SleapRtcError {
  return new SleapRtcError('TRANSFER_ENTRY_REFUSED', message, details);
}

function invalid(message: string): SleapRtcError {
  return new SleapRtcError('TRANSFER_ARCHIVE_INVALID', message);
}

/** The checked relative name of an entry, or a thrown coded error saying why it is refused. */
export function checkEntry(entry: { type: string; path: string; linkpath?: string | undefined }): string {
  const shown = JSON.stringify(entry.path.slice(0, 200));
  switch (entry.type) {
    case 'File':
    case 'OldFile':
    case 'ContiguousFile':
    case 'Directory':
      break;
    case 'SymbolicLink':
    case 'Link':
      throw refused(
        `Archive entry ${shown} is a ${entry.type === 'Link' ? 'hard' : 'symbolic'} link (to ${JSON.stringify(String(entry.linkpath ?? '').slice(0, 200))}); links are not accepted.`,
        { entry: entry.path, kind: entry.type },
      );
    case 'CharacterDevice':
    case 'BlockDevice':
    case 'FIFO':
      throw refused(`Archive entry ${shown} is a ${entry.type === 'FIFO' ? 'fifo' : 'device'}; only files and folders are accepted.`, {
        entry: entry.path,
        kind: entry.type,
      });
    default:
      throw refused(`Archive entry ${shown} is of a kind that is not accepted (${entry.type}); only files and folders are.`, {
        entry: entry.path,
        kind: entry.type,
      });
  }
  // tar writes folders as "name/"; that one trailing slash is the format, not part of the name.
  const rel = entry.type === 'Directory' && entry.path.endsWith('/') ? entry.path.slice(0, -1) : entry.path;
  try {
    checkRelativePath(rel);
  } catch (err) {
    if (err instanceof PathValidationError) {
      // The rule's own sentence, without its "path ... is refused:" lead-in (we name the entry).
      const reason = err.message.replace(/^path .* is refused: /s, '');
      throw new PathValidationError(err.rule, `Archive entry ${shown} is refused: ${reason}`, { path: entry.path });
    }
    throw err;
  }
  return rel;
}

export class TarExtractor {
  readonly #root: string;
  readonly #limits: ExtractLimits;
  readonly #parser: Parser;
  #error: SleapRtcError | null = null;
  #failListeners: ((err: SleapRtcError) => void)[] = [];
  #chain: Promise<void> = Promise.resolve();
  #failed: Promise<never>;
  #rejectFailed!: (err: SleapRtcError) => void;
  #names = new Set<string>();
  #entries = 0;
  #bytes = 0;
  #sawEof = false;
  #ended: Promise<void>;
  #started = false;

  /** `root` must be an existing, empty directory owned by this transfer. */
  constructor(root: string, limits: ExtractLimits) {
    this.#root = root;
    this.#limits = limits;
    this.#failed = new Promise<never>((_, reject) => {
      this.#rejectFailed = reject;
    });
    this.#failed.catch(() => {});
    this.#parser = new Parser({ strict: true, brotli: false, zstd: false, maxMetaEntrySize: MAX_META_ENTRY_BYTES });
    this.#parser.on('entry', (entry: ReadEntry) => this.#onEntry(entry));
    this.#parser.on('ignoredEntry', (entry: ReadEntry) => {
      this.fail(
        entry.meta
          ? invalid(`Archive has an oversized metadata header (${entry.size} bytes).`)
          : refused(`Archive entry ${JSON.stringify(entry.path.slice(0, 200))} is of a kind that is not accepted (${entry.type}).`, { entry: entry.path, kind: entry.type }),
      );
    });
    this.#parser.on('eof', () => {
      this.#sawEof = true;
    });
    this.#parser.on('error', (err: Error & { tarCode?: string }) => {
      // A folder with nothing in it is a tar of end blocks only; the parser calls that
      // "unrecognized", but it is exactly what the sender produces for an empty folder.
      if (err.tarCode === 'TAR_BAD_ARCHIVE' && this.#entries === 0 && this.#sawEof && /Unrecognized/.test(err.message)) return;
      this.fail(invalid(`Archive is malformed: ${err.message}`));
    });
    this.#ended = new Promise((resolve) => this.#parser.on('end', () => resolve()));
  }

  /** The first failure, or null. */
  get error(): SleapRtcError | null {
    return this.#error;
  }

  /** Called once, with the first failure (a refused entry, a malformed archive, a write error). */
  onFail(listener: (err: SleapRtcError) => void): void {
    if (this.#error) listener(this.#error);
    else this.#failListeners.push(listener);
  }

  /** Feed the next bytes of the stream; resolves when the parser can take more. */
  async write(chunk: Uint8Array): Promise<void> {
    if (this.#error) throw this.#error;
    const buf = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (!this.#started && buf.byteLength > 0) {
      this.#started = true;
      if (buf.byteLength >= 2 && buf[0] === 0x1f && buf[1] === 0x8b) {
        throw this.fail(refused('The folder archive is compressed (gzip); only plain tar is accepted.', { kind: 'gzip' }));
      }
    }
    if (this.#parser.write(buf)) return;
    await new Promise<void>((resolve, reject) => {
      const onDrain = (): void => {
        this.#failListeners = this.#failListeners.filter((l) => l !== onFail);
        resolve();
      };
      const onFail = (err: SleapRtcError): void => {
        this.#parser.off('drain', onDrain);
        reject(err);
      };
      this.#parser.once('drain', onDrain);
      this.onFail(onFail);
    });
  }

  /** The stream has ended: wait until every entry is on disk and check the archive was whole. */
  async finish(): Promise<ExtractResult> {
    if (this.#error) throw this.#error;
    this.#parser.end();
    await Promise.race([this.#ended, this.#failed]);
    await this.#chain;
    if (this.#error) throw this.#error;
    if (!this.#sawEof) throw this.fail(invalid('The folder archive ended before its end marker (truncated).'));
    return { entries: this.#entries, bytes: this.#bytes };
  }

  /** Stop extracting; resolves once no file is being written any more (so the root can be removed). */
  async abort(reason: SleapRtcError): Promise<void> {
    this.fail(reason);
    await this.#chain;
  }

  /** Record the first failure and stop the parser; returns the error that now stands. */
  fail(err: SleapRtcError): SleapRtcError {
    if (this.#error) return this.#error;
    this.#error = err;
    this.#parser.removeAllListeners('entry');
    this.#rejectFailed(err);
    for (const listener of this.#failListeners.splice(0)) listener(err);
    return err;
  }

  #onEntry(entry: ReadEntry): void {
    this.#entries++;
    const job = this.#chain.then(() => this.#extract(entry));
    this.#chain = job.catch((err: unknown) => {
      this.fail(
        err instanceof SleapRtcError
          ? err
          : new SleapRtcError('TRANSFER_IO', `Could not write archive entry ${JSON.stringify(entry.path.slice(0, 200))}: ${(err as Error).message}`),
      );
      entry.resume();
    });
  }

  async #extract(entry: ReadEntry): Promise<void> {
    if (this.#error) return;
    if (this.#entries > this.#limits.maxEntries) {
      throw new SleapRtcError('TRANSFER_TOO_LARGE', `The folder has more than ${this.#limits.maxEntries} entries, the most this receiver accepts.`, {
        limit: this.#limits.maxEntries,
      });
    }
    const rel = checkEntry(entry);
    if (this.#names.has(rel)) throw invalid(`Archive names ${JSON.stringify(rel.slice(0, 200))} twice.`);
    this.#names.add(rel);
    const target = await confinePath(this.#root, rel);
    if (this.#error) return;
    if (entry.type === 'Directory') {
      await mkdir(target, { recursive: true, mode: 0o755 });
      entry.resume();
      return;
    }
    await mkdir(path.dirname(target), { recursive: true, mode: 0o755 });
    if (this.#error) return;
    const fh = await open(target, 'wx', (entry.mode ?? 0) & 0o111 ? 0o755 : 0o644);
    try {
      const data$ = (entry as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
      for (;;) {
        // Race the failure: an iterator asked for more after the stream was stopped never answers.
        const next = await Promise.race([data$.next(), this.#failed]);
        if (next.done) break;
        const data = next.value;
        this.#bytes += data.byteLength;
        if (this.#bytes > this.#limits.maxBytes) {
          throw new SleapRtcError('TRANSFER_TOO_LARGE', `The folder holds more than ${this.#limits.maxBytes} bytes, the most this receiver accepts.`, {
            limit: this.#limits.maxBytes,
          });
        }
        await fh.write(data);
        if (this.#error) return;
      }
    } finally {
      await fh.close();
    }
  }
}
