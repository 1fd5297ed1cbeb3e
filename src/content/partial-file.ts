/**
 * A partial file that can be resumed: the bytes received so far of one file whose size and
 * SHA-256 are known up front, kept at `<path>` with a small sidecar `<path>.json` that records how
 * many bytes are known to be on disk (`durable`: written and synced). A later transfer of the same
 * content opens it again, truncates it to `durable`, feeds those bytes to a fresh SHA-256 and
 * continues from there. The whole file is still verified against its SHA-256 before anyone uses
 * it; a partial file is never taken for a whole one.
 *
 * The sidecar is rewritten (write a temporary file, rename it over) at each checkpoint: every
 * `checkpointBytes` while data arrives, and with the exact count when a transfer stops while this
 * process lives. A process killed between checkpoints loses at most one checkpoint's worth.
 */
import { createHash, type Hash } from 'node:crypto';
import { open, readFile, rename, rm, stat, writeFile, type FileHandle } from 'node:fs/promises';
import { z } from 'zod';

const SidecarSchema = z.strictObject({
  v: z.literal(1),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  size: z.number().int().nonnegative(),
  durable: z.number().int().nonnegative(),
});

/** Block size used to re-hash a resumed prefix. */
const REHASH_BLOCK = 1024 * 1024;

/** Paths of partial files held open by this process: one writer per partial file. */
const held = new Set<string>();

export interface PartialOpenOptions {
  sha256: string;
  size: number;
  /** Keep a sidecar so the file can be resumed; false: a plain part file, removed on failure. */
  resumable: boolean;
  signal?: AbortSignal;
}

export class PartialFile {
  readonly path: string;
  readonly sha256: string;
  readonly size: number;
  readonly resumable: boolean;
  /** Bytes already held (and hashed) when the file was opened: where the data may resume. */
  readonly heldBytes: number;
  /** SHA-256 of the first `heldBytes` bytes, null when nothing is held. */
  readonly heldSha256: string | null;
  #fh: FileHandle | null;
  #hash: Hash;
  #written: number;
  #durable: number;
  #closed = false;

  private constructor(p: string, o: PartialOpenOptions, fh: FileHandle, hash: Hash, heldBytes: number) {
    this.path = p;
    this.sha256 = o.sha256;
    this.size = o.size;
    this.resumable = o.resumable;
    this.heldBytes = heldBytes;
    this.heldSha256 = heldBytes > 0 ? hash.copy().digest('hex') : null;
    this.#fh = fh;
    this.#hash = hash;
    this.#written = heldBytes;
    this.#durable = heldBytes;
  }

  /** Whether another transfer in this process is writing the partial file at `p`. */
  static isHeld(p: string): boolean {
    return held.has(p);
  }

  /**
   * Open (or create) the partial file at `p`. A resumable one with a matching sidecar resumes from
   * its durable prefix; anything else (no sidecar, other content, a torn sidecar) starts empty.
   * Returns null when another transfer of this process holds it.
   */
  static async open(p: string, o: PartialOpenOptions): Promise<PartialFile | null> {
    if (held.has(p)) return null;
    held.add(p);
    let fh: FileHandle | null = null;
    try {
      const prior = o.resumable ? await readSidecar(p, o) : 0;
      fh = await open(p, prior > 0 ? 'r+' : o.resumable ? 'w' : 'wx', 0o644);
      const hash = createHash('sha256');
      let heldBytes = 0;
      if (prior > 0) {
        const st = await fh.stat();
        heldBytes = Math.min(prior, st.size);
        await fh.truncate(heldBytes);
        await hashPrefix(fh, heldBytes, hash, o.signal);
      }
      const partial = new PartialFile(p, o, fh, hash, heldBytes);
      if (o.resumable && heldBytes === 0) await partial.#writeSidecar(0);
      return partial;
    } catch (err) {
      held.delete(p);
      await fh?.close().catch(() => {});
      throw err;
    }
  }

  get written(): number {
    return this.#written;
  }

  /** Start again from byte 0 (the sender would not resume from what is held). */
  async restart(): Promise<void> {
    const fh = this.#handle();
    await fh.truncate(0);
    this.#hash = createHash('sha256');
    this.#written = 0;
    this.#durable = 0;
    if (this.resumable) await this.#writeSidecar(0);
  }

  /** Append `chunks` (hashing them); returns the bytes written. */
  async append(chunks: Uint8Array[]): Promise<number> {
    const fh = this.#handle();
    let bytes = 0;
    for (const c of chunks) {
      this.#hash.update(c);
      bytes += c.byteLength;
    }
    await writeAll(fh, chunks, this.#written);
    this.#written += bytes;
    return bytes;
  }

  /** Sync what was written and record it as durable (resumable files only). */
  async checkpoint(): Promise<void> {
    if (!this.resumable || this.#closed || this.#written === this.#durable) return;
    await this.#handle().datasync();
    await this.#writeSidecar(this.#written);
  }

  /** The SHA-256 of everything written so far (ends the hash: call once, at the end). */
  digest(): string {
    return this.#hash.digest('hex');
  }

  /**
   * The data is whole and verified: sync it and close it. The file stays at `path` (its sidecar
   * says it is whole) until the caller moved it and calls `settled()`.
   */
  async finish(fsync: boolean): Promise<void> {
    const fh = this.#handle();
    if (fsync) await fh.sync();
    if (this.resumable) await this.#writeSidecar(this.#written);
    await this.#close();
  }

  /** The finished file was moved away: drop its sidecar. */
  async settled(): Promise<void> {
    if (this.resumable) await rm(sidecarOf(this.path), { force: true });
  }

  /** Stop writing, keeping what was written for a later resume (a plain part file is removed). */
  async keep(): Promise<void> {
    if (this.#closed) return;
    if (!this.resumable) return this.discard();
    try {
      await this.checkpoint();
    } catch {
      // Could not sync: the sidecar still names the last durable count.
    }
    await this.#close();
  }

  /** Remove the partial file and its sidecar. */
  async discard(): Promise<void> {
    await this.#close();
    await rm(this.path, { force: true }).catch(() => {});
    await rm(sidecarOf(this.path), { force: true }).catch(() => {});
  }

  #handle(): FileHandle {
    if (!this.#fh || this.#closed) throw new Error(`partial file ${this.path} is closed`);
    return this.#fh;
  }

  async #close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    held.delete(this.path);
    const fh = this.#fh;
    this.#fh = null;
    await fh?.close().catch(() => {});
  }

  async #writeSidecar(durable: number): Promise<void> {
    const tmp = `${sidecarOf(this.path)}.tmp`;
    await writeFile(tmp, JSON.stringify({ v: 1, sha256: this.sha256, size: this.size, durable }));
    await rename(tmp, sidecarOf(this.path));
    this.#durable = durable;
  }
}

export function sidecarOf(p: string): string {
  return `${p}.json`;
}

/** Bytes a partial file at `p` holds for this content (0 when none, or it is for other content). */
export async function heldBytesOf(p: string, sha256: string, size: number): Promise<number> {
  return readSidecar(p, { sha256, size });
}

async function readSidecar(p: string, o: Pick<PartialOpenOptions, 'sha256' | 'size'>): Promise<number> {
  try {
    const parsed = SidecarSchema.safeParse(JSON.parse(await readFile(sidecarOf(p), 'utf8')));
    if (!parsed.success || parsed.data.sha256 !== o.sha256 || parsed.data.size !== o.size) return 0;
    const st = await stat(p);
    return Math.min(parsed.data.durable, st.size, o.size);
  } catch {
    return 0;
  }
}

async function hashPrefix(fh: FileHandle, bytes: number, hash: Hash, signal?: AbortSignal): Promise<void> {
  const buf = Buffer.allocUnsafe(REHASH_BLOCK);
  let pos = 0;
  while (pos < bytes) {
    signal?.throwIfAborted();
    const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, bytes - pos), pos);
    if (bytesRead === 0) throw new Error('partial file shrank while it was re-hashed');
    hash.update(buf.subarray(0, bytesRead));
    pos += bytesRead;
  }
}

export async function writeAll(fh: FileHandle, chunks: Uint8Array[], position: number): Promise<void> {
  let pos = position;
  let pending = chunks.filter((c) => c.byteLength > 0);
  while (pending.length > 0) {
    const { bytesWritten } = await fh.writev(pending, pos);
    pos += bytesWritten;
    // Short writes are rare (disk full is an error instead) but legal: continue where it stopped.
    let skip = bytesWritten;
    const rest: Uint8Array[] = [];
    for (const c of pending) {
      if (skip >= c.byteLength) {
        skip -= c.byteLength;
        continue;
      }
      rest.push(skip > 0 ? c.subarray(skip) : c);
      skip = 0;
    }
    pending = rest;
  }
}
