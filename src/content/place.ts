/**
 * Putting a finished file or folder under its final name, all or nothing:
 *
 * - `moveFileIntoPlace` without overwrite hard-links the part file to the final name (link(2)
 *   fails if the name exists, atomically: no check-then-rename race) and then removes the part
 *   name; on a filesystem without hard links it falls back to check + rename. With overwrite it
 *   renames, which replaces a file atomically.
 * - `moveDirIntoPlace` renames a folder onto a free name; replacing an existing folder moves the
 *   old one aside first and, if the second rename fails, moves it back, so the final name always
 *   holds either the old folder or the new one.
 * - `cloneInto` gives a job its own name for a cached file: a reflink where the filesystem has
 *   them, else a hard link, else a copy, made under a temporary name and renamed into place.
 */
import { randomBytes } from 'node:crypto';
import { chmod, constants, copyFile, link, rename, rm, stat, unlink } from 'node:fs/promises';

export type CloneMethod = 'reflink' | 'hardlink' | 'copy';

export class DestinationExistsError extends Error {
  readonly path: string;
  constructor(p: string) {
    super(`${p} already exists`);
    this.path = p;
  }
}

function aside(p: string, tag: string): string {
  return `${p}.${tag}-${randomBytes(4).toString('hex')}`;
}

export async function moveFileIntoPlace(part: string, final: string, overwrite: boolean): Promise<void> {
  if (overwrite) {
    await rename(part, final);
    return;
  }
  try {
    await link(part, final);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw new DestinationExistsError(final);
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'EXDEV' && code !== 'EMLINK') throw err;
    // No hard links here: the best available is a check right before the rename.
    if (await exists(final)) throw new DestinationExistsError(final);
    await rename(part, final);
    return;
  }
  await unlink(part);
}

export async function moveDirIntoPlace(part: string, final: string, overwrite: boolean): Promise<void> {
  const taken = await exists(final);
  if (taken && !overwrite) throw new DestinationExistsError(final);
  if (!taken) {
    try {
      await rename(part, final);
      return;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOTEMPTY' || code === 'EEXIST' || code === 'ENOTDIR') {
        if (!overwrite) throw new DestinationExistsError(final);
      } else {
        throw err;
      }
    }
  }
  const old = aside(part, 'old');
  await rename(final, old);
  try {
    await rename(part, final);
  } catch (err) {
    // Put the old folder back: the final name never ends up empty.
    await rename(old, final).catch(() => {});
    throw err;
  }
  await rm(old, { recursive: true, force: true });
}

/** Give `dest` the content of `src` (a cached entry), replacing `dest` only if `overwrite`. */
export async function cloneInto(src: string, dest: string, overwrite: boolean): Promise<CloneMethod> {
  const tmp = aside(dest, 'clone');
  let method: CloneMethod;
  try {
    try {
      await copyFile(src, tmp, constants.COPYFILE_FICLONE_FORCE);
      method = 'reflink';
    } catch {
      try {
        await link(src, tmp);
        method = 'hardlink';
      } catch {
        await copyFile(src, tmp);
        method = 'copy';
      }
    }
    // A job's own copy is writable; a hard link shares the cache entry's read-only inode.
    if (method !== 'hardlink') await chmod(tmp, 0o644);
    await moveFileIntoPlace(tmp, dest, overwrite);
    return method;
  } finally {
    await rm(tmp, { force: true }).catch(() => {});
  }
}

export async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}
