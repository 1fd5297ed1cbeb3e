/**
 * The videos named inside a job's labels file, on this worker. The request lists each distinct
 * external video file once (`spec.videos`), as a reference the request check has resolved and
 * checked (or as a file that was sent); this module reads the labels file itself, here, and makes
 * sure the two agree: every external video the labels file names is covered exactly once, and
 * nothing else is. Then it tells sleap-nn where the videos are:
 *
 * - training: one `--video-path-map` per stored name (sleap-nn 0.3 `train`, sleap-io
 *   `Labels.replace_filenames`), each to the path the job files gave for that video. Never a
 *   `--prefix-map`: that would hand sleap-nn names on the share, which a client mounting the share
 *   read-write can swap for links after the check (job-files.ts: confinement at use time);
 * - inference on a `.slp`: sleap-nn's `predict`/`track` remap nothing, so a copy of the labels file
 *   with the videos table rewritten to this worker's paths is written into the job folder, and
 *   sleap-nn runs on the copy. The user's file is only read.
 *
 * Names the labels file holds are never opened here: only the paths the caller gives are, and the
 * job runner gives the ones job-files.ts pinned (descriptors below the backend base) for a shared
 * job, and the labels file as the worker's own descriptor of it.
 */
import { mkdtemp, symlink } from 'node:fs/promises';
import path from 'node:path';
import { SleapRtcError } from '../errors.js';
import type { JobRequest } from '../protocol/job.js';
import { listVideos, writeRenamedCopy } from '../slp/index.js';
import type { CheckedPath } from './request-check.js';
import type { PathMapping } from './sleap-nn-args.js';

export type VideoSetup =
  /** The request carries no videos list (an older client): nothing is checked or remapped. */
  | { kind: 'none' }
  | { kind: 'train'; videoPathMap?: PathMapping[] }
  /** `names`: each path sleap-nn may open a video by → the name the labels file stored for it (predictions.ts). */
  | { kind: 'track'; data: string; names: Map<string, string> };

interface VideoUse {
  video: number;
  image: number;
  stored: string;
  local: string;
  checked: CheckedPath;
}

function videosOf(request: JobRequest) {
  return request.spec.videos;
}

/** The labels file of the job: train's labels, or track's data when it is a labels file. */
function labelsPath(request: JobRequest, paths: readonly CheckedPath[]): string | undefined {
  const field = request.job_type === 'train' ? 'labels' : 'data';
  return paths.find((p) => p.field === field)?.local;
}

/**
 * Reads the labels file here and pairs each external video file it names with the checked path
 * the request gave for it. Throws SLP_VIDEOS_MISMATCH (or the labels file's own SLP_* error).
 */
export async function matchVideos(request: JobRequest, paths: readonly CheckedPath[], labelsRead?: string): Promise<VideoUse[] | null> {
  const refs = videosOf(request);
  if (refs === undefined) return null;
  const labels = labelsRead ?? labelsPath(request, paths);
  if (labels === undefined) throw new SleapRtcError('INTERNAL', `job ${request.job_id}: no checked labels path`);
  const list = await listVideos(labels);
  const byUse = new Map<string, CheckedPath>();
  refs.forEach((ref, i) => {
    const checked = paths.find((p) => p.field === `videos.${i}`);
    if (!checked) throw new SleapRtcError('INTERNAL', `job ${request.job_id}: videos.${i} was not checked`);
    for (const u of ref.uses) {
      const key = `${u.video}:${u.image}`;
      if (byUse.has(key)) throw mismatch(`video ${u.video}${u.image ? ` image ${u.image}` : ''} is listed twice (videos.${i})`);
      byUse.set(key, checked);
    }
  });
  const uses: VideoUse[] = [];
  for (const video of list.videos) {
    video.names.forEach((stored, image) => {
      const key = `${video.index}:${image}`;
      const checked = byUse.get(key);
      if (!checked) throw mismatch(`the labels file names video ${video.index}${video.kind === 'images' ? ` image ${image}` : ''} ('${stored}'), which the request does not list`);
      byUse.delete(key);
      uses.push({ video: video.index, image, stored, local: checked.local, checked });
    });
  }
  const extra = [...byUse.keys()][0];
  if (extra !== undefined) {
    const [v, image] = extra.split(':');
    throw mismatch(`the request lists video ${v}${image !== '0' ? ` image ${image}` : ''}, which is not an external video of the labels file`);
  }
  return uses;
}

function mismatch(what: string): SleapRtcError {
  return new SleapRtcError('SLP_VIDEOS_MISMATCH', `The job's videos do not match its labels file: ${what}. Nothing was run; submit the job again from the labels file as it is now.`);
}

/**
 * Everything sleap-nn needs to find the videos. `paths` carry, for each `videos.N`, the path
 * sleap-nn may open (pinned by the job files); `labels.read` is where this process reads the labels
 * file, `labels.given` the path sleap-nn is given for it (its base name ends in `.slp`); `jobDir`
 * receives the rewritten copy for inference.
 */
export async function setUpVideos(
  request: JobRequest,
  paths: readonly CheckedPath[],
  labels: { read: string; given: string },
  jobDir: string,
): Promise<VideoSetup> {
  const uses = await matchVideos(request, paths, labels.read);
  if (uses === null) return { kind: 'none' };
  if (request.job_type === 'train') return { kind: 'train', ...trainMaps(uses) };
  const names = new Map(uses.map((u) => [u.local, u.stored]));
  if (uses.length === 0) return { kind: 'track', data: labels.given, names };
  return { kind: 'track', data: await rewrittenCopy(labels.read, path.basename(labels.given), uses, jobDir, names), names };
}

/** One `--video-path-map` per stored name, to the path given for it. */
function trainMaps(uses: readonly VideoUse[]): { videoPathMap?: PathMapping[] } {
  if (uses.length === 0) return {};
  const seen = new Map<string, string>();
  for (const u of uses) if (!seen.has(u.stored)) seen.set(u.stored, u.local);
  return { videoPathMap: [...seen].map(([from, to]) => ({ from, to })) };
}

/**
 * A copy of the labels file naming this worker's paths. SLEAP's videos table is fixed-length:
 * when a path does not fit, the copy names short links next to it instead (SLEAP finds a video by
 * its base name next to the labels file), each link leading to the checked path.
 */
async function rewrittenCopy(data: string, name: string, uses: readonly VideoUse[], jobDir: string, names: Map<string, string>): Promise<string> {
  const dir = await mkdtemp(path.join(jobDir, 'labels-'));
  const copy = path.join(dir, name);
  const renames = (nameOf: (u: VideoUse) => string): Map<number, string[]> => {
    const m = new Map<number, string[]>();
    for (const u of uses) {
      const names = m.get(u.video) ?? [];
      names[u.image] = nameOf(u);
      m.set(u.video, names);
    }
    return m;
  };
  try {
    await writeRenamedCopy(data, copy, renames((u) => u.local));
    return copy;
  } catch (err) {
    if (!(err instanceof SleapRtcError) || err.code !== 'SLP_VIDEO_NAME_TOO_LONG') throw err;
  }
  const links = new Map<string, string>();
  const used = new Set([name]);
  for (const u of uses) {
    if (links.has(u.local)) continue;
    const base = path.basename(u.local);
    let name = base;
    for (let i = 2; used.has(name); i++) name = `${i}-${base}`;
    used.add(name);
    await symlink(u.local, path.join(dir, name));
    links.set(u.local, name);
    names.set(path.join(dir, name), u.stored);
  }
  await writeRenamedCopy(data, copy, renames((u) => links.get(u.local) as string));
  return copy;
}
