/**
 * The files of one job as sleap-nn sees them: confinement at the moment of use.
 *
 * The request check (request-check.ts) judges paths by their names when the job arrives. In a
 * shared-storage job the client mounts the same share read-write and can swap a checked folder or
 * file for a symbolic link a second, or ten hours, later. So sleap-nn is never handed a name on
 * the share:
 *
 *  - Inputs. The worker opens each input itself, through descriptors below the backend's base
 *    (storage/beneath.ts: links followed only while they stay inside, regular files only), and
 *    holds it open for the whole job. sleap-nn gets a path in the job's private folder,
 *    `<job folder>/inputs/<n>/<original name>`: a symbolic link to `/proc/<worker pid>/fd/<fd>`,
 *    which the kernel resolves to the very file the worker opened, whatever the share's names say
 *    by then. The original name is kept because sleap-nn decides by extension (`.slp` or a video).
 *    An input folder (a model folder) becomes a private folder of such links, one per regular
 *    file directly inside it (sleap-nn reads best.ckpt and training_config.yaml/json from there:
 *    inference/predictors.py), so a link planted inside the folder is judged too.
 *  - Outputs. sleap-nn writes into `<job folder>/out`, which no client can reach. When it ends,
 *    the worker copies the results into the share through descriptors (folders created by mkdir
 *    relative to their verified parent, each file written under a fresh O_EXCL name and renamed
 *    into place), so a swapped output folder is refused instead of written through.
 *
 * Transfer jobs need none of this: every file is already in the job's private staging folder,
 * which only the worker writes.
 *
 * `input()` is the one function every path handed to sleap-nn goes through, including paths the
 * worker finds inside the labels file (videos), and `read()` is how the worker itself reads one.
 */
import { mkdir, symlink } from 'node:fs/promises';
import path from 'node:path';
import { SleapRtcError } from '../errors.js';
import { LIMITS } from '../limits.js';
import { ConfinedRoot, closeQuietly, fdPath, PathChangedError } from '../storage/index.js';

export type InputKind = 'file' | 'directory';

/** What sleap-nn is given for one job, and where its results go. */
export interface JobFiles {
  /**
   * A path sleap-nn may open for the input at `relativeToBase` (below the backend base, e.g.
   * "alice/proj/labels.slp"), proven to lie inside the base at the moment it is opened and
   * pinned to that file for the rest of the job. `shown` is how errors name it: the path as the
   * client sent it (e.g. "proj/labels.slp"), never a path of this machine. Throws PathChangedError.
   */
  input(relativeToBase: string, kind: InputKind, shown: string): Promise<string>;
  /** A path THIS process can read the file at `relativeToBase` through (valid until close()). */
  read(relativeToBase: string, shown: string): Promise<string>;
  /** The private folder sleap-nn writes its outputs into (created on first use). */
  outputDir(): Promise<string>;
  /**
   * Puts an output sleap-nn wrote under outputDir() in place below the base: a folder is merged
   * into `destRelative` (created when missing), a file replaces `destRelative`. A no-op for a
   * transfer job (outputs are sent from where they are). Throws PathChangedError.
   */
  publish(produced: string, destRelative: string, kind: InputKind, shown: string): Promise<void>;
  /** Closes every descriptor the job held. Safe to call twice. */
  close(): Promise<void>;
}

/** Shared storage: inputs opened by the worker, outputs staged privately and copied in. */
export async function sharedJobFiles(opts: { basePath: string; jobDir: string; pid?: number }): Promise<JobFiles> {
  const root = await ConfinedRoot.open(opts.basePath);
  return new SharedJobFiles(root, opts.jobDir, opts.pid ?? process.pid);
}

/** Transfer jobs: everything is already in the job's private staging folder. */
export function stagedJobFiles(stagingDir: string): JobFiles {
  const inside = (rel: string): string => path.join(stagingDir, ...rel.split('/'));
  return {
    input: async (rel) => inside(rel),
    read: async (rel) => inside(rel),
    outputDir: async () => stagingDir,
    publish: async () => {},
    close: async () => {},
  };
}

class SharedJobFiles implements JobFiles {
  readonly #root: ConfinedRoot;
  readonly #jobDir: string;
  readonly #pid: number;
  readonly #held: number[] = [];
  #count = 0;
  #closed = false;

  constructor(root: ConfinedRoot, jobDir: string, pid: number) {
    this.#root = root;
    this.#jobDir = jobDir;
    this.#pid = pid;
  }

  async input(relativeToBase: string, kind: InputKind, shown: string): Promise<string> {
    this.#open();
    const slot = path.join(this.#jobDir, 'inputs', String(this.#count++));
    await mkdir(slot, { recursive: true });
    if (kind === 'file') return this.#pinFile(relativeToBase, slot, shown);
    const dir = await this.#root.open(relativeToBase, 'directory', { shown });
    try {
      const mirror = path.join(slot, safeName(dir.route));
      await mkdir(mirror);
      const names = await this.#root.list(dir);
      let files = 0;
      for (const name of names) {
        const rel = dir.route === '' ? name : `${dir.route}/${name}`;
        let pinned: string;
        try {
          pinned = await this.#pinFile(rel, mirror, `${shown}/${name}`, name);
        } catch (err) {
          // Sub-folders are not shown to sleap-nn (it reads only files directly in a model folder);
          // anything else that is not a regular file inside the storage stops the job.
          if (err instanceof PathChangedError && err.reason === 'wrong_kind' && (await this.#isFolder(rel))) continue;
          throw err;
        }
        void pinned;
        if (++files > LIMITS.jobInputFolderMaxFiles) {
          throw new PathChangedError('wrong_kind', shown, `holds more than ${LIMITS.jobInputFolderMaxFiles} files; a model folder needs only best.ckpt and its training config`);
        }
      }
      return mirror;
    } finally {
      await closeQuietly(dir.fd);
    }
  }

  async read(relativeToBase: string, shown: string): Promise<string> {
    this.#open();
    const opened = await this.#root.open(relativeToBase, 'file', { shown });
    this.#held.push(opened.fd);
    return fdPath(opened.fd);
  }

  async outputDir(): Promise<string> {
    const dir = path.join(this.#jobDir, 'out');
    await mkdir(dir, { recursive: true });
    return dir;
  }

  async publish(produced: string, destRelative: string, kind: InputKind, shown: string): Promise<void> {
    this.#open();
    if (kind === 'directory') {
      await this.#root.writeTree(destRelative, produced, shown);
      return;
    }
    const parent = path.posix.dirname(destRelative);
    await this.#root.writeFile(parent === '.' ? '' : parent, path.posix.basename(destRelative), produced, shown);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const fd of this.#held.splice(0)) await closeQuietly(fd);
    await this.#root.close();
  }

  /** Opens a regular file and links `<dir>/<name>` to the worker's descriptor of it. */
  async #pinFile(relativeToBase: string, dir: string, shown: string, name?: string): Promise<string> {
    const opened = await this.#root.open(relativeToBase, 'file', { shown });
    this.#held.push(opened.fd);
    const link = path.join(dir, name ?? safeName(opened.route));
    await symlink(`/proc/${this.#pid}/fd/${opened.fd}`, link);
    return link;
  }

  async #isFolder(relativeToBase: string): Promise<boolean> {
    try {
      const d = await this.#root.open(relativeToBase, 'directory');
      await closeQuietly(d.fd);
      return true;
    } catch {
      return false;
    }
  }

  #open(): void {
    if (this.#closed) throw new SleapRtcError('INTERNAL', 'job files used after close()');
  }
}

/** The last name of a route, as a private file name ("" for the base itself). */
function safeName(route: string): string {
  return path.posix.basename(route) || 'base';
}
