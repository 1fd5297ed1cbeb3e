/**
 * The worker's content-addressed cache: files kept by their SHA-256 so that a file a client sends
 * once is never sent again, across jobs and worker restarts.
 *
 * Layout under the cache folder (docs/transfer.md, "The worker's cache"):
 *
 *   entries/<first two hex digits>/<sha256>   one verified file each, read-only (0444)
 *   partial/<sha256>.part (+ .part.json)      a file being received; resumable, never an entry
 *   index.json                                size, stamp, last use and verified flag per entry
 *   lock                                      the pid of the worker using the folder
 *
 * The folder is the truth: at open the entries on disk are listed and merged with index.json, so
 * a lost or damaged index is rebuilt from the folder alone (entries it did not know are taken as
 * unverified and hashed in full at their first use). An entry enters only after the receiver
 * checked its SHA-256; at each use its size, inode and modification time are compared with the
 * stamp taken when it was verified, and an entry that changed is hashed again and evicted if its
 * content no longer matches its name. Least recently used entries are evicted first to stay under
 * `maxBytes`, never one a running job holds (a lease).
 *
 * The cache only ever feeds this worker's own job folders: nothing here is sent to a peer.
 */
import { chmod, mkdir, open, readdir, readFile, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { SleapRtcError } from '../errors.js';
import type { Logger } from '../log.js';
import { sha256File } from './file-hash.js';
import { PartialFile } from './partial-file.js';
import { cloneInto, type CloneMethod } from './place.js';

const SHA = /^[0-9a-f]{64}$/;

/** Cache folders this process has open: a second store on the same folder is refused too. */
const openDirs = new Set<string>();

const IndexEntrySchema = z.strictObject({
  size: z.number().int().nonnegative(),
  ino: z.number().nonnegative(),
  mtimeNs: z.string().regex(/^[0-9]+$/),
  lastUsed: z.number().nonnegative(),
  verified: z.boolean(),
});
const IndexSchema = z.strictObject({ v: z.literal(1), entries: z.record(z.string().regex(SHA), IndexEntrySchema) });
type IndexEntry = z.infer<typeof IndexEntrySchema>;

export interface StoreStats {
  dir: string;
  entries: number;
  bytes: number;
  maxBytes: number;
}

/** A running job's hold on one entry: it is not evicted until released. */
export interface Lease {
  readonly sha256: string;
  readonly size: number;
  readonly path: string;
  release(): void;
}

/** One receipt of a content into its partial file; `end()` lets a waiting receipt of it go on. */
export interface Receipt {
  readonly partial: PartialFile;
  end(): void;
}

export interface ContentStoreOptions {
  dir: string;
  maxBytes: number;
  logger?: Logger;
}

export class ContentStore {
  readonly dir: string;
  readonly maxBytes: number;
  readonly #log: Logger | undefined;
  readonly #index = new Map<string, IndexEntry>();
  readonly #pins = new Map<string, number>();
  /** Receipts in progress, by hash: a second receiver of the same content waits for the first. */
  readonly #receiving = new Map<string, Promise<void>>();
  #saving: Promise<void> = Promise.resolve();
  #closed = false;

  private constructor(o: ContentStoreOptions) {
    this.dir = o.dir;
    this.maxBytes = o.maxBytes;
    this.#log = o.logger;
  }

  /** Open (creating) the cache folder, take its lock, and rebuild the index from what is on disk. */
  static async open(o: ContentStoreOptions): Promise<ContentStore> {
    const store = new ContentStore(o);
    await mkdir(path.join(o.dir, 'entries'), { recursive: true, mode: 0o700 });
    await mkdir(path.join(o.dir, 'partial'), { recursive: true, mode: 0o700 });
    await store.#lock();
    await store.#load();
    await store.#evict();
    await store.#save();
    return store;
  }

  stats(): StoreStats {
    let bytes = 0;
    for (const e of this.#index.values()) bytes += e.size;
    return { dir: this.dir, entries: this.#index.size, bytes, maxBytes: this.maxBytes };
  }

  has(sha256: string): boolean {
    return this.#index.has(sha256);
  }

  entryPath(sha256: string): string {
    return path.join(this.dir, 'entries', sha256.slice(0, 2), sha256);
  }

  partialPath(sha256: string): string {
    return path.join(this.dir, 'partial', `${sha256}.part`);
  }

  /**
   * A verified entry of this content, leased, or null. An entry whose file changed since it was
   * verified is hashed again; if it no longer matches its name it is evicted (and null returned).
   */
  async acquire(sha256: string, size: number): Promise<Lease | null> {
    if (!SHA.test(sha256)) return null;
    const entry = this.#index.get(sha256);
    if (!entry || entry.size !== size) return null;
    const lease = this.#lease(sha256, size);
    try {
      const p = this.entryPath(sha256);
      const st = await stat(p, { bigint: true }).catch(() => null);
      const same = st !== null && st.isFile() && Number(st.size) === entry.size && Number(st.ino) === entry.ino && st.mtimeNs.toString() === entry.mtimeNs;
      if (!same || !entry.verified) {
        const digest = st?.isFile() ? await sha256File(p).catch(() => null) : null;
        if (!digest || digest.sha256 !== sha256 || digest.size !== size) {
          this.#log?.warn(`cache: entry ${sha256.slice(0, 12)}… no longer matches its hash; evicted (the file will be sent again)`);
          lease.release();
          await this.#remove(sha256, true);
          return null;
        }
        const now = await stat(p, { bigint: true });
        this.#index.set(sha256, { ...entry, ino: Number(now.ino), mtimeNs: now.mtimeNs.toString(), verified: true });
      }
      this.#touch(sha256);
      return lease;
    } catch (err) {
      lease.release();
      throw err;
    }
  }

  /** Give `dest` the content of a leased entry (reflink, hard link or copy). */
  place(lease: Lease, dest: string, overwrite: boolean): Promise<CloneMethod> {
    return cloneInto(lease.path, dest, overwrite);
  }

  /**
   * Start receiving this content into its partial file. Only one receipt of a content runs at a
   * time: a second waits for the first (`onWait` is called meanwhile, for keep-alives) and then
   * gets null when the content arrived in the cache, or the partial file when it did not.
   * The caller ends the receipt (`end()`) after admitting, keeping or discarding the partial file.
   */
  async beginReceipt(sha256: string, size: number, opts: { signal?: AbortSignal; onWait?: () => void } = {}): Promise<Receipt | null> {
    for (;;) {
      if (this.#index.has(sha256)) return null;
      const busy = this.#receiving.get(sha256);
      if (!busy) break;
      const tick = setInterval(() => opts.onWait?.(), 5_000);
      try {
        await abortable(busy, opts.signal);
      } finally {
        clearInterval(tick);
      }
    }
    let done!: () => void;
    const receipt = new Promise<void>((r) => (done = r));
    this.#receiving.set(sha256, receipt);
    const end = (): void => {
      if (this.#receiving.get(sha256) === receipt) this.#receiving.delete(sha256);
      done();
    };
    try {
      const partial = await PartialFile.open(this.partialPath(sha256), { sha256, size, resumable: true, ...(opts.signal ? { signal: opts.signal } : {}) });
      if (!partial) throw new SleapRtcError('INTERNAL', `cache: the partial file of ${sha256.slice(0, 12)}… is held by another receipt`);
      return { partial, end };
    } catch (err) {
      end();
      throw err;
    }
  }

  /**
   * Take a finished, verified partial file in as an entry and lease it. If the content is already
   * there the file is dropped: one copy per content.
   */
  async admit(partial: PartialFile): Promise<Lease> {
    const { sha256, size } = partial;
    const dest = this.entryPath(sha256);
    if (this.#index.has(sha256)) {
      await partial.discard();
    } else {
      await mkdir(path.dirname(dest), { recursive: true, mode: 0o700 });
      await chmod(partial.path, 0o444);
      await rename(partial.path, dest);
      await partial.settled();
      const st = await stat(dest, { bigint: true });
      this.#index.set(sha256, { size, ino: Number(st.ino), mtimeNs: st.mtimeNs.toString(), lastUsed: Date.now(), verified: true });
    }
    const lease = this.#lease(sha256, size);
    this.#touch(sha256);
    await this.#evict();
    await this.#save();
    return lease;
  }

  /** Remove every entry no job holds and every partial file (an admin's "clear"). */
  async clear(): Promise<void> {
    for (const sha of [...this.#index.keys()]) if (!this.#pins.get(sha)) await this.#remove(sha, false);
    for (const name of await readdir(path.join(this.dir, 'partial')).catch(() => [])) {
      if (!PartialFile.isHeld(path.join(this.dir, 'partial', name.replace(/\.json$/, '')))) await rm(path.join(this.dir, 'partial', name), { force: true });
    }
    await this.#save();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    await this.#save();
    this.#closed = true;
    await this.#saving.catch(() => {});
    await rm(path.join(this.dir, 'lock'), { force: true });
    openDirs.delete(path.resolve(this.dir));
  }

  #lease(sha256: string, size: number): Lease {
    this.#pins.set(sha256, (this.#pins.get(sha256) ?? 0) + 1);
    let released = false;
    return {
      sha256,
      size,
      path: this.entryPath(sha256),
      release: () => {
        if (released) return;
        released = true;
        const n = (this.#pins.get(sha256) ?? 1) - 1;
        if (n <= 0) this.#pins.delete(sha256);
        else this.#pins.set(sha256, n);
        void this.#evict().then(() => this.#save()).catch(() => {});
      },
    };
  }

  #touch(sha256: string): void {
    const e = this.#index.get(sha256);
    if (e) e.lastUsed = Math.max(Date.now(), e.lastUsed + 1);
    void this.#save();
  }

  async #evict(): Promise<void> {
    if (this.#closed) return;
    let total = this.stats().bytes;
    if (total <= this.maxBytes) return;
    const order = [...this.#index.entries()].sort((a, b) => a[1].lastUsed - b[1].lastUsed);
    for (const [sha, e] of order) {
      if (total <= this.maxBytes) break;
      if (this.#pins.get(sha)) continue;
      await this.#remove(sha, false);
      total -= e.size;
      this.#log?.info(`cache: evicted ${sha.slice(0, 12)}… (${e.size} bytes, least recently used)`);
    }
  }

  async #remove(sha256: string, save: boolean): Promise<void> {
    this.#index.delete(sha256);
    await unlink(this.entryPath(sha256)).catch(() => {});
    if (save) await this.#save();
  }

  /** Merge index.json with the entries on disk; the disk wins. */
  async #load(): Promise<void> {
    let saved: Record<string, IndexEntry> = {};
    try {
      const parsed = IndexSchema.safeParse(JSON.parse(await readFile(path.join(this.dir, 'index.json'), 'utf8')));
      if (parsed.success) saved = parsed.data.entries;
      else this.#log?.warn('cache: index.json is damaged; rebuilding it from the entries on disk');
    } catch {
      // No index yet (or unreadable): rebuilt from the folder.
    }
    const root = path.join(this.dir, 'entries');
    for (const shard of await readdir(root)) {
      if (!/^[0-9a-f]{2}$/.test(shard)) continue;
      for (const name of await readdir(path.join(root, shard))) {
        const p = path.join(root, shard, name);
        if (!SHA.test(name) || name.slice(0, 2) !== shard) {
          // Leftovers (a temporary name from an interrupted admission) are not entries.
          await rm(p, { recursive: true, force: true });
          continue;
        }
        const st = await stat(p, { bigint: true }).catch(() => null);
        if (!st?.isFile()) continue;
        const known = saved[name];
        const sameStamp = known && known.size === Number(st.size) && known.ino === Number(st.ino) && known.mtimeNs === st.mtimeNs.toString();
        this.#index.set(name, {
          size: Number(st.size),
          ino: Number(st.ino),
          mtimeNs: st.mtimeNs.toString(),
          lastUsed: known?.lastUsed ?? Number(st.mtimeMs),
          verified: Boolean(sameStamp && known?.verified),
        });
      }
    }
  }

  #save(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    const entries = Object.fromEntries(this.#index);
    this.#saving = this.#saving
      .catch(() => {})
      .then(async () => {
        const tmp = path.join(this.dir, 'index.json.tmp');
        await writeFile(tmp, JSON.stringify({ v: 1, entries }));
        await rename(tmp, path.join(this.dir, 'index.json'));
      });
    return this.#saving.catch((err: unknown) => this.#log?.warn(`cache: could not save index.json: ${(err as Error).message}`));
  }

  /** One worker per cache folder: a second one would evict what the first one's jobs use. */
  async #lock(): Promise<void> {
    const lock = path.join(this.dir, 'lock');
    if (openDirs.has(path.resolve(this.dir))) {
      throw new SleapRtcError('CACHE_UNAVAILABLE', `The cache folder ${this.dir} is already open in this process.`, { path: this.dir });
    }
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fh = await open(lock, 'wx', 0o600);
        await fh.writeFile(`${process.pid}\n`);
        await fh.close();
        openDirs.add(path.resolve(this.dir));
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        const pid = Number((await readFile(lock, 'utf8').catch(() => '')).trim());
        if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid)) {
          throw new SleapRtcError(
            'CACHE_UNAVAILABLE',
            `The cache folder ${this.dir} is in use by another worker (process ${pid}). Give each worker its own [worker] cache_dir.`,
            { path: this.dir, pid },
          );
        }
        // A stale lock from a worker that died: take it over.
        await rm(lock, { force: true });
      }
    }
    throw new SleapRtcError('CACHE_UNAVAILABLE', `Could not lock the cache folder ${this.dir}.`, { path: this.dir });
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function abortable<T>(p: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (!signal) return p;
  signal.throwIfAborted();
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
