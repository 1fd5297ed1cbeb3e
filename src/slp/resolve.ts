/**
 * Where a video named in a labels file really is, found the way SLEAP finds it (sleap-io's
 * `make_video`): the name as given (absolute, or relative to the current folder), and when no file
 * is there, a file of the same base name in the labels file's own folder. Names saved on Windows
 * use backslashes; SLEAP reads them as forward slashes, and so does this.
 */
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import path from 'node:path';
import type { SlpVideo, SlpVideoList } from './videos.js';

export type FoundHow = 'as-given' | 'next-to-labels';

export interface ResolvedName {
  /** The name as stored in the labels file. */
  readonly stored: string;
  /** The absolute local path of the file found, or null when neither place has it. */
  readonly path: string | null;
  readonly how: FoundHow | null;
  /** Every absolute path looked at, in order (for a "not found" message). */
  readonly tried: readonly string[];
}

export interface ResolvedVideo extends SlpVideo {
  /** One per name (none for an embedded video). */
  readonly files: readonly ResolvedName[];
}

async function isReadableFile(p: string): Promise<boolean> {
  try {
    if (!(await stat(p)).isFile()) return false;
    await access(p, constants.R_OK);
    return true;
  } catch {
    return false;
  }
}

/** SLEAP's reading of a stored name: backslashes are separators. */
export function sleapName(stored: string): string {
  return stored.replaceAll('\\', '/');
}

export async function resolveVideoName(labelsPath: string, stored: string, cwd: string = process.cwd()): Promise<ResolvedName> {
  const name = sleapName(stored);
  const asGiven = path.resolve(cwd, name);
  const nextToLabels = path.join(path.dirname(path.resolve(cwd, labelsPath)), path.posix.basename(name));
  const tried = asGiven === nextToLabels ? [asGiven] : [asGiven, nextToLabels];
  if (await isReadableFile(asGiven)) return { stored, path: asGiven, how: 'as-given', tried };
  if (tried.length > 1 && (await isReadableFile(nextToLabels))) return { stored, path: nextToLabels, how: 'next-to-labels', tried };
  return { stored, path: null, how: null, tried };
}

/** Resolves every file of every video of a listing. */
export async function resolveVideos(list: SlpVideoList, cwd: string = process.cwd()): Promise<ResolvedVideo[]> {
  const out: ResolvedVideo[] = [];
  for (const video of list.videos) {
    const files: ResolvedName[] = [];
    for (const name of video.names) files.push(await resolveVideoName(list.path, name, cwd));
    out.push({ ...video, files });
  }
  return out;
}
