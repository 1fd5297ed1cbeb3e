/**
 * The videos a job's labels file names, as the job carries them. The client lists the labels file
 * (src/slp), finds each external video as SLEAP would on this machine, and makes each distinct file
 * a reference like the labels file's: backend + user folder + relative path when it lies under a
 * storage backend (any backend, not only the labels file's), else a name in the worker's staging
 * folder, to be sent over the data channel. Embedded videos (a `.pkg.slp`) need nothing.
 */
import { realpath } from 'node:fs/promises';
import path from 'node:path';
import { SleapRtcError } from '../errors.js';
import { LIMITS } from '../limits.js';
import type { PathField, VideoFile } from '../protocol/job.js';
import { listVideos, resolveVideos } from '../slp/index.js';
import { PathNotInBackendError, PathValidationError, type StorageConfig, StorageResolver } from '../storage/index.js';

export interface PlannedVideo {
  /** `videos.N`: the N-th entry of the request's `videos` list. */
  field: PathField;
  /** Absolute path of the file on this machine (where SLEAP would open it). */
  local: string;
  /** The names the labels file holds for it (one per use). */
  stored: string[];
  uses: { video: number; image: number }[];
  /** Where a worker with the backend reads it in place; null when it lies under no backend. */
  shared: { backend: string; userSubdir: string; path: string } | null;
  /** Its name in the worker's staging folder when it is sent. */
  staged: string;
}

/** Whether a job input is a SLEAP labels file whose videos travel with the job. */
export function isLabelsFile(file: string): boolean {
  return /\.slp$/i.test(file);
}

/**
 * Lists and finds the labels file's videos. Throws (exit 2, before anything is sent or started)
 * for a file that is not a labels file and for a video SLEAP would not find here.
 */
export async function planVideos(labels: string, cwd: string, storage: StorageConfig, usedNames: Set<string>): Promise<PlannedVideo[]> {
  const list = await listVideos(labels);
  const resolved = await resolveVideos(list, cwd);
  const byFile = new Map<string, PlannedVideo>();
  for (const video of resolved) {
    for (const [image, file] of video.files.entries()) {
      if (file.path === null) {
        throw new SleapRtcError(
          'SLP_VIDEO_NOT_FOUND',
          `${labels} names video ${video.index} as '${file.stored}', which is not on this machine (looked at ${file.tried.join(' and ')}). ` +
            'SLEAP looks for a video where the labels file says, then by its name next to the labels file: move the video there, or fix its path in SLEAP and save the labels again.',
          { labels, video: video.index, stored: file.stored, tried: [...file.tried] },
        );
      }
      const key = await realpath(file.path).catch(() => file.path as string);
      const known = byFile.get(key);
      if (known) {
        known.uses.push({ video: video.index, image });
        known.stored.push(file.stored);
        continue;
      }
      byFile.set(key, { field: `videos.${byFile.size}` as PathField, local: file.path, stored: [file.stored], uses: [{ video: video.index, image }], shared: null, staged: '' });
    }
  }
  const planned = [...byFile.values()];
  if (planned.length > LIMITS.jobMaxVideoFiles) {
    throw new SleapRtcError('USAGE', `${labels} names ${planned.length} video files; a job carries at most ${LIMITS.jobMaxVideoFiles}. Split the labels file, or embed the frames (a .pkg.slp).`);
  }
  const resolver = new StorageResolver(storage);
  for (const v of planned) {
    v.shared = await onBackend(resolver, v.local);
    v.staged = stagedName(path.basename(v.local), usedNames);
  }
  return planned;
}

async function onBackend(resolver: StorageResolver, local: string): Promise<PlannedVideo['shared']> {
  try {
    const loc = await resolver.toRelative(local);
    if (loc.relativePath === '') return null;
    return { backend: loc.backend, userSubdir: loc.userSubdir, path: loc.relativePath };
  } catch (err) {
    if (err instanceof PathNotInBackendError || err instanceof PathValidationError) return null;
    throw err;
  }
}

function stagedName(base: string, used: Set<string>): string {
  const clean = base.replace(/[\\\0]/g, '_');
  let name = clean === '' || clean === '.' || clean === '..' ? 'video' : clean;
  for (let i = 2; used.has(name); i++) name = `${i}-${clean}`;
  used.add(name);
  return name;
}

/** The request's `videos`: in place where a backend holds a file (when `shared`), sent otherwise. */
export function videoRefs(videos: readonly PlannedVideo[], shared: boolean): VideoFile[] {
  return videos.map((v) =>
    shared && v.shared
      ? { path: v.shared.path, storage_backend: v.shared.backend, user_subdir: v.shared.userSubdir, uses: v.uses.map((u) => ({ ...u })) }
      : { path: v.staged, uses: v.uses.map((u) => ({ ...u })) },
  );
}
