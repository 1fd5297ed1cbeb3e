/**
 * The client's hash index: (device, inode, size, modification and change time) -> SHA-256, kept
 * in one small JSON file under the XDG cache folder, so a file that did not change since it was
 * last hashed is not read again before it is offered to a worker.
 *
 * A file is hashed again whenever any of those differ. Any write to a file changes its
 * modification and change times, and the change time cannot be set back by a user. As git does
 * for its index, a hash taken within `racyMs` of the file's last change is not stored: a write in
 * the same clock tick as the hash would otherwise go unseen.
 */
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { sha256File, type FileDigest } from './file-hash.js';
import { xdgCacheDir } from './xdg.js';

const RecordSchema = z.strictObject({
  size: z.number().int().nonnegative(),
  mtimeNs: z.string(),
  ctimeNs: z.string(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  used: z.number(),
});
const FileSchema = z.strictObject({ v: z.literal(1), files: z.record(z.string(), RecordSchema) });
type HashRecord = z.infer<typeof RecordSchema>;

/** Most files the index remembers; the least recently used are forgotten first. */
const MAX_RECORDS = 100_000;


export interface IndexedDigest extends FileDigest {
  /** True when the index answered without reading the file. */
  fromIndex: boolean;
}

export class HashIndex {
  readonly file: string;
  readonly #racyMs: number;
  #records = new Map<string, HashRecord>();
  #loaded = false;
  #dirty = false;

  constructor(file: string, opts: { racyMs?: number } = {}) {
    this.file = file;
    this.#racyMs = opts.racyMs ?? 2_000;
  }

  static default(): HashIndex {
    return new HashIndex(path.join(xdgCacheDir(), 'hash-index.json'));
  }

  /** The SHA-256 of the file at `p`: from the index when it has not changed, else by reading it. */
  async digest(p: string, signal?: AbortSignal): Promise<IndexedDigest> {
    await this.#load();
    const before = await stat(p, { bigint: true });
    const key = `${before.dev}:${before.ino}`;
    const known = this.#records.get(key);
    if (known && known.size === Number(before.size) && known.mtimeNs === before.mtimeNs.toString() && known.ctimeNs === before.ctimeNs.toString()) {
      known.used = Date.now();
      this.#dirty = true;
      return { sha256: known.sha256, size: known.size, mtimeMs: Number(before.mtimeMs), fromIndex: true };
    }
    const digest = await sha256File(p, signal);
    const after = await stat(p, { bigint: true });
    const unchanged = after.mtimeNs === before.mtimeNs && after.ctimeNs === before.ctimeNs && Number(after.size) === digest.size && after.ino === before.ino;
    const settled = Date.now() - Number(after.ctimeMs) > this.#racyMs && Date.now() - Number(after.mtimeMs) > this.#racyMs;
    if (unchanged && settled) {
      this.#records.set(key, { size: digest.size, mtimeNs: after.mtimeNs.toString(), ctimeNs: after.ctimeNs.toString(), sha256: digest.sha256, used: Date.now() });
      this.#dirty = true;
    } else {
      this.#records.delete(key);
    }
    return { ...digest, fromIndex: false };
  }

  /** Write the index if it changed (a temporary file renamed over it). Failures are not fatal. */
  async save(): Promise<void> {
    if (!this.#dirty) return;
    this.#dirty = false;
    let records = [...this.#records.entries()];
    if (records.length > MAX_RECORDS) records = records.sort((a, b) => b[1].used - a[1].used).slice(0, MAX_RECORDS);
    try {
      await mkdir(path.dirname(this.file), { recursive: true, mode: 0o700 });
      const tmp = `${this.file}.${process.pid}.tmp`;
      await writeFile(tmp, JSON.stringify({ v: 1, files: Object.fromEntries(records) }), { mode: 0o600 });
      await rename(tmp, this.file);
    } catch {
      // Only a cache: the next run hashes again.
    }
  }

  async #load(): Promise<void> {
    if (this.#loaded) return;
    this.#loaded = true;
    try {
      const parsed = FileSchema.safeParse(JSON.parse(await readFile(this.file, 'utf8')));
      if (parsed.success) this.#records = new Map(Object.entries(parsed.data.files));
    } catch {
      // No index yet, or unreadable: start empty.
    }
  }
}
