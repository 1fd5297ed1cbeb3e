/**
 * Confinement at USE time: opening and creating files inside a backend's base through file
 * descriptors, so that what is opened is what was proven to lie inside, whatever happens to the
 * names afterwards.
 *
 * confinePath (confine.ts) judges a path by its names at one moment. A client that mounts the same
 * share read-write can swap a checked folder for a symbolic link a second later, and a later
 * open() by name follows the new link. Linux's openat2(RESOLVE_BENEATH) would close that gap, but
 * Node has no openat. This module builds the same walk in user space:
 *
 *  - It opens the real base as a directory descriptor, then each component with
 *    O_NOFOLLOW through `/proc/self/fd/<dir fd>/<name>`. The kernel resolves `/proc/self/fd/N` to
 *    the very directory the descriptor holds (not to a name), and O_NOFOLLOW stops at a symbolic
 *    link in the last component, so each step is an `openat(dirfd, name, O_NOFOLLOW)`.
 *  - A symbolic link met on the way is read and followed by this code, never by the kernel:
 *    `..` pops the stack of descriptors it came along (and popping past the base is an escape), an
 *    absolute target must lie under the base and restarts from the base's descriptor. A link
 *    inside the storage that points elsewhere in the same storage therefore still works.
 *  - Each step opens with O_PATH, which does not open the object for reading, and fstat on that
 *    descriptor says what it is: folders must be folders and files regular files (a FIFO planted
 *    as "labels.slp" cannot hang the worker, a device is never opened). Only a regular file is
 *    then opened for reading, through its own descriptor.
 *  - Folders are created with mkdir through the parent's descriptor (mkdir never follows a link
 *    in its last component), then opened like any other component.
 *  - Files are written under a fresh name created with O_EXCL in the verified folder, then renamed
 *    over the final name through the same descriptor (rename replaces a link, it never writes
 *    through one).
 *
 * Needs Linux's /proc (the worker platform). Every error is a PathChangedError whose message names
 * only the relative path the peer sent, never this machine's base path.
 */
import { close, constants, copyFile, fstat, mkdir, open, readdir, readlink, realpath, rename, unlink } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { promisify } from 'node:util';
import { SleapRtcError } from '../errors.js';
import { LIMITS } from '../limits.js';
import { checkRelativePath } from './confine.js';

const openP = promisify(open);
const closeP = promisify(close);
const fstatP = promisify(fstat);
const mkdirP = promisify(mkdir);
const readlinkP = promisify(readlink);
const realpathP = promisify(realpath);
const renameP = promisify(rename);
const copyFileP = promisify(copyFile);
const unlinkP = promisify(unlink);
const readdirP = promisify(readdir);

const { O_RDONLY, O_NOFOLLOW, O_DIRECTORY } = constants;
/**
 * Linux's O_PATH (asm-generic value, x86-64 and arm64): a descriptor that names an object without
 * opening it for I/O. Every step of a walk uses it, so that nothing is really opened (a FIFO that
 * would block, a device with side effects on open) before fstat has said what it is.
 */
const O_PATH = 0o10000000;

/** Why a path could not be used safely. */
export type PathChangedReason = 'escapes_base' | 'missing' | 'wrong_kind' | 'unreadable' | 'loop' | 'base_missing';

/**
 * A path that passed the request check could not be opened safely when it was used: it now leads
 * outside the base, no longer exists, or is no longer the kind of file it was. The message names
 * only `relativePath` (what the peer sent), so it may be forwarded as it is.
 */
export class PathChangedError extends SleapRtcError {
  readonly reason: PathChangedReason;
  /** The job field the path belongs to, when the caller knows it ("labels", "output"). */
  field: string | undefined;

  constructor(reason: PathChangedReason, relativePath: string, detail: string) {
    super('PATH_CHANGED', `'${shown(relativePath)}' ${detail}`, { reason, path: shown(relativePath) });
    this.reason = reason;
  }
}

/** The path of an open descriptor of THIS process, usable by this process only. */
export function fdPath(fd: number): string {
  return `/proc/self/fd/${fd}`;
}

/** `<dir fd>/<name>` as a path the kernel resolves from the descriptor, not from a name. */
function at(dirFd: number, name: string): string {
  return `${fdPath(dirFd)}/${name}`;
}

export type Want = 'file' | 'directory';

/** An open file or folder inside the base. Close it when done (closeQuietly). */
export interface Opened {
  /** A file: open for reading. A folder: an O_PATH descriptor (use it as `/proc/self/fd/N/...`). */
  fd: number;
  /** Where it was found below the base, links resolved ("" for the base itself). */
  route: string;
}

/**
 * A backend base opened as a directory descriptor: every open and create below it goes through
 * that descriptor. Open one per job and close it when the job ends.
 */
export class ConfinedRoot {
  readonly fd: number;
  /** Real path of the base (absolute link targets are judged against it and the configured path). */
  readonly #real: string;
  readonly #configured: string;
  #closed = false;

  private constructor(fd: number, real: string, configured: string) {
    this.fd = fd;
    this.#real = real;
    this.#configured = configured;
  }

  /** Opens the base (the admin's configured path, links in it followed: it is trusted configuration). */
  static async open(basePath: string): Promise<ConfinedRoot> {
    let real: string;
    let fd: number;
    try {
      real = await realpathP(basePath);
      fd = await openP(real, O_PATH | O_DIRECTORY);
    } catch (err) {
      throw new PathChangedError('base_missing', '', `cannot be used: the storage is not available on this worker (${errno(err)})`);
    }
    return new ConfinedRoot(fd, real, path.resolve(basePath));
  }

  /**
   * Opens `relativePath` (below the base; "" is the base itself) as a `want`, following links
   * only while they stay inside. With `create`, missing folders are made (want 'directory').
   * Throws PathChangedError.
   */
  async open(relativePath: string, want: Want, opts: { create?: boolean; shown?: string } = {}): Promise<Opened> {
    if (this.#closed) throw new SleapRtcError('INTERNAL', 'ConfinedRoot used after close()');
    const shownPath = opts.shown ?? relativePath;
    let segments: string[];
    try {
      segments = checkRelativePath(relativePath, { allowEmpty: true });
    } catch {
      throw new PathChangedError('escapes_base', shownPath, 'is not a path inside the storage');
    }
    return this.#walk(shownPath, segments, want, opts.create === true);
  }

  async #walk(shownPath: string, segments: string[], want: Want, create: boolean): Promise<Opened> {
    const stack: { fd: number; name: string }[] = [];
    const queue = [...segments];
    let hops = 0;
    let retries = 0;
    const top = (): number => stack.at(-1)?.fd ?? this.fd;
    const fail = (reason: PathChangedReason, detail: string): never => {
      throw new PathChangedError(reason, shownPath, detail);
    };
    try {
      while (queue.length) {
        const seg = queue.shift() as string;
        if (seg === '' || seg === '.') continue;
        if (seg === '..') {
          const popped = stack.pop();
          if (!popped) fail('escapes_base', 'leads outside the storage (through a symbolic link)');
          else await closeQuietly(popped.fd);
          continue;
        }
        const asDir = queue.length > 0 || want === 'directory';
        let fd: number;
        try {
          // O_PATH | O_NOFOLLOW opens a symbolic link itself (to be read and judged below), and
          // opens nothing else for I/O.
          fd = await openP(at(top(), seg), O_PATH | O_NOFOLLOW);
        } catch (err) {
          const code = errno(err);
          if (code === 'ENOENT' && asDir && create) {
            try {
              await mkdirP(at(top(), seg));
            } catch (e) {
              if (errno(e) !== 'EEXIST') fail('unreadable', `cannot be created on this worker (${errno(e)})`);
            }
            if (++retries > LIMITS.symlinkMaxHops) fail('missing', 'keeps changing while it is being created');
            queue.unshift(seg);
            continue;
          }
          if (code === 'ENOENT') fail('missing', 'does not exist (any more)');
          return fail('unreadable', `cannot be opened on this worker (${code})`);
        }
        let st;
        try {
          st = await fstatP(fd);
        } catch (err) {
          await closeQuietly(fd);
          return fail('unreadable', `cannot be checked on this worker (${errno(err)})`);
        }
        if (st.isSymbolicLink()) {
          await closeQuietly(fd);
          let target: string;
          try {
            target = await readlinkP(at(top(), seg));
          } catch (e) {
            // Swapped again between the open and the read: look at the component once more.
            if (++retries > LIMITS.symlinkMaxHops) fail('missing', 'keeps changing while it is being opened');
            if (errno(e) !== 'EINVAL' && errno(e) !== 'ENOENT') fail('unreadable', `cannot be read on this worker (${errno(e)})`);
            queue.unshift(seg);
            continue;
          }
          if (++hops > LIMITS.symlinkMaxHops) fail('loop', 'has too many levels of symbolic links');
          if (target === '') fail('missing', 'holds an empty symbolic link');
          if (path.isAbsolute(target)) {
            const below = this.#below(target);
            if (below === undefined) fail('escapes_base', 'leads outside the storage (through a symbolic link)');
            for (const s of stack.splice(0)) await closeQuietly(s.fd);
            queue.unshift(...(below as string[]));
          } else {
            queue.unshift(...target.split('/'));
          }
          continue;
        }
        stack.push({ fd, name: seg });
        if (asDir ? !st.isDirectory() : !st.isFile()) {
          if (queue.length > 0) fail('wrong_kind', 'is not a folder, or a folder on its way is not');
          fail('wrong_kind', asDir ? 'is not a folder' : 'is not a regular file');
        }
      }
      if (stack.length === 0) {
        if (want === 'file') fail('wrong_kind', 'is not a regular file');
        return { fd: await openP(fdPath(this.fd), O_PATH | O_DIRECTORY), route: '' };
      }
      const route = stack.map((s) => s.name).join('/');
      const last = stack.at(-1) as { fd: number };
      if (want === 'directory') {
        stack.pop();
        return { fd: last.fd, route };
      }
      // A regular file, proven by fstat on its O_PATH descriptor: open that very file for reading.
      try {
        return { fd: await openP(fdPath(last.fd), O_RDONLY), route };
      } catch (err) {
        return fail('unreadable', `cannot be read by the worker's user (${errno(err)})`);
      }
    } finally {
      for (const s of stack) await closeQuietly(s.fd);
    }
  }

  /** Segments of an absolute link target below the base, or undefined when it is not below. */
  #below(target: string): string[] | undefined {
    const norm = path.normalize(target);
    for (const base of [this.#real, this.#configured]) {
      if (norm === base) return [];
      const prefix = base.endsWith('/') ? base : `${base}/`;
      if (norm.startsWith(prefix)) return norm.slice(prefix.length).split('/').filter((s) => s !== '');
    }
    return undefined;
  }

  /**
   * Copies the local (trusted, worker-private) file `source` to `relativeDir/name` below the base:
   * the folder is opened (and created) through descriptors, the bytes go to a fresh O_EXCL name in
   * it, which is then renamed over `name`. Throws PathChangedError.
   */
  async writeFile(relativeDir: string, name: string, source: string, shownPath: string): Promise<void> {
    checkName(name, shownPath);
    const dir = await this.open(relativeDir, 'directory', { create: true, shown: shownPath });
    const temp = `.${name.slice(0, 100)}.${randomBytes(6).toString('hex')}.sleap-rtc-part`;
    try {
      try {
        await copyFileP(source, at(dir.fd, temp), constants.COPYFILE_EXCL);
      } catch (err) {
        throw new PathChangedError('unreadable', shownPath, `could not be written on this worker (${errno(err)})`);
      }
      try {
        await renameP(at(dir.fd, temp), at(dir.fd, name));
      } catch (err) {
        await unlinkP(at(dir.fd, temp)).catch(() => {});
        const code = errno(err);
        throw new PathChangedError(code === 'EISDIR' || code === 'ENOTEMPTY' ? 'wrong_kind' : 'unreadable', shownPath, `could not be put in place on this worker (${code})`);
      }
    } finally {
      await closeQuietly(dir.fd);
    }
  }

  /**
   * Copies the worker-private folder `source` into `relativeDir` below the base (created when
   * missing, merged when it exists: same-named files are replaced). Regular files and folders
   * only; anything else in `source` is skipped and returned by name.
   */
  async writeTree(relativeDir: string, source: string, shownPath: string): Promise<{ skipped: string[] }> {
    const skipped: string[] = [];
    const copyDir = async (rel: string, src: string, shown: string): Promise<void> => {
      const fd = (await this.open(rel, 'directory', { create: true, shown })).fd;
      await closeQuietly(fd);
      const entries = await readdirP(src, { withFileTypes: true });
      for (const e of entries) {
        checkName(e.name, `${shown}/${e.name}`);
        const childRel = rel === '' ? e.name : `${rel}/${e.name}`;
        if (e.isDirectory()) await copyDir(childRel, path.join(src, e.name), `${shown}/${e.name}`);
        else if (e.isFile()) await this.writeFile(rel, e.name, path.join(src, e.name), `${shown}/${e.name}`);
        else skipped.push(`${shown}/${e.name}`);
      }
    };
    await copyDir(relativeDir, source, shownPath);
    return { skipped };
  }

  /** Regular-file names directly in an opened folder (links included; the caller opens each confined). */
  async list(dir: Opened): Promise<string[]> {
    return (await readdirP(fdPath(dir.fd))).sort();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await closeQuietly(this.fd);
  }
}

/** A name written into the storage: one segment, no tricks (names come from sleap-nn or the peer). */
function checkName(name: string, shownPath: string): void {
  try {
    if (checkRelativePath(name).length !== 1) throw new Error('not one name');
  } catch {
    throw new PathChangedError('wrong_kind', shownPath, 'is not a name this worker writes into the storage');
  }
}

export async function closeQuietly(fd: number): Promise<void> {
  await closeP(fd).catch(() => {});
}

function errno(err: unknown): string {
  return (err as NodeJS.ErrnoException)?.code ?? 'error';
}

function shown(p: string): string {
  // eslint-disable-next-line no-control-regex
  const clean = String(p).replace(/[\u0000-\u001f\u007f]/g, '?');
  return clean.length > 200 ? `${clean.slice(0, 200)}...` : clean;
}
