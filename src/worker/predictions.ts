/**
 * The names the labels files sleap-nn writes give their videos: the predictions file of an
 * inference job, and every `.slp` in a training run folder (`labels_gt.*.slp`, `labels_pr.*.slp`). sleap-nn (through sleap-io) saves each video under
 * the name inference opened it by, and on this worker those are paths in the job's own folder: the
 * pinned links of job-files.ts, the rewritten labels copy, the staged files. Such a file would tell
 * the client this worker's paths, and would not open on the client's machine. Before the file
 * leaves the job folder, every video is renamed to what the client knows it by:
 *
 * - a video named in the job's labels file: the name that labels file stored (the client's own);
 * - the input itself (a video file, or a `.pkg.slp` whose frames are embedded): its path relative
 *   to the predictions file's folder, in the job's own terms (both below the user folder of a
 *   shared job, or both in the staging folder of a sent one), which SLEAP resolves next to the
 *   predictions file;
 * - any other absolute name: its base name, so no path of this worker is left in the file.
 *
 * SLEAP's videos table holds fixed-length strings; when a name does not fit, its base name is
 * written instead (SLEAP also looks for a video by base name next to the labels file).
 *
 * sleap-nn's provenance in `metadata` (model paths, source file, command line) names this
 * worker's paths too (sleap-io also records the path it loaded the labels from, `filename`): every
 * string in that JSON goes through `redact`, the job's own redaction of its paths into the
 * client's words (the same as for sleap-nn's log lines).
 *
 * A file whose names and metadata need no change is left as it is (not rewritten).
 */
import { readdir, rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import { SleapRtcError } from '../errors.js';
import { listVideos, readMetadataJson, writeRenamedCopy, type SlpVideo } from '../slp/index.js';
import { parsePythonJson, stringifyPythonJson } from '../slp/json.js';

/** What sleap-nn was given (an absolute path on this worker) → the name the client knows it by. */
export type VideoNames = ReadonlyMap<string, string>;

/** The new names of the videos whose names change, by video index. */
function renamesFor(videos: readonly SlpVideo[], names: VideoNames, shorten: boolean): Map<number, string[]> {
  const renames = new Map<number, string[]>();
  for (const v of videos) {
    if (v.kind === 'embedded') continue;
    const next = v.names.map((n) => {
      const known = names.get(n) ?? names.get(path.normalize(n));
      const name = known ?? (path.isAbsolute(n) ? path.basename(n) : n);
      return shorten ? path.posix.basename(name.replace(/\\/g, '/')) : name;
    });
    if (next.some((n, i) => n !== v.names[i])) renames.set(v.index, next);
  }
  return renames;
}

/**
 * Renames the videos of the labels file `file` (in this worker's job folder) in place, as a
 * whole: a renamed copy is written, checked and renamed over it. Returns how many were renamed.
 * When no name and nothing in the metadata changes, the file is not touched.
 */
export async function nameVideos(file: string, names: VideoNames, redact: (text: string) => string): Promise<number> {
  const { videos } = await listVideos(file);
  const edit = redactJson(redact);
  const metadata = await readMetadataJson(file);
  const metadataChanges = metadata !== undefined && edit(metadata) !== metadata;
  const tmp = path.join(path.dirname(file), `.named-${path.basename(file)}`);
  for (const shorten of [false, true]) {
    const renames = renamesFor(videos, names, shorten);
    if (renames.size === 0 && !metadataChanges) return 0;
    try {
      await writeRenamedCopy(file, tmp, renames, edit);
      await rename(tmp, file);
      return renames.size;
    } catch (err) {
      await unlink(tmp).catch(() => undefined);
      if (!(err instanceof SleapRtcError) || err.code !== 'SLP_VIDEO_NAME_TOO_LONG' || shorten) throw err;
    }
  }
  return 0;
}

/** A labels file of a run folder that could not be named (`file` relative to the run folder, POSIX). */
export class RunFolderLabelsError extends Error {
  constructor(
    readonly file: string,
    cause: unknown,
  ) {
    super(`${file}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = 'RunFolderLabelsError';
  }
}

/** Every regular `.slp` file below `dir`, relative to it (POSIX), in a stable order. */
async function labelsFilesBelow(dir: string, below = ''): Promise<string[]> {
  const found: string[] = [];
  const entries = (await readdir(path.join(dir, below), { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1));
  for (const e of entries) {
    const rel = below === '' ? e.name : `${below}/${e.name}`;
    if (e.isDirectory()) found.push(...(await labelsFilesBelow(dir, rel)));
    else if (e.isFile() && e.name.toLowerCase().endsWith('.slp')) found.push(rel);
  }
  return found;
}

/**
 * `nameVideos` for every `.slp` file in the training run folder `dir` (sleap-nn's
 * `labels_gt.*.slp` and `labels_pr.*.slp`). Returns each file's count of renamed videos; the
 * first file that is no labels file throws a RunFolderLabelsError naming it.
 */
export async function nameRunFolderVideos(dir: string, names: VideoNames, redact: (text: string) => string): Promise<Map<string, number>> {
  const renamed = new Map<string, number>();
  for (const rel of await labelsFilesBelow(dir)) {
    try {
      renamed.set(rel, await nameVideos(path.join(dir, rel), names, redact));
    } catch (err) {
      throw new RunFolderLabelsError(rel, err);
    }
  }
  return renamed;
}

/** The metadata JSON with `redact` applied to every string in it (keys included). */
function redactJson(redact: (text: string) => string): (json: string) => string {
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') return redact(v);
    if (Array.isArray(v)) return v.map(walk);
    if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [redact(k), walk(x)]));
    return v;
  };
  return (json) => {
    const before = parsePythonJson(json);
    const after = walk(before);
    return JSON.stringify(after) === JSON.stringify(before) ? json : stringifyPythonJson(after);
  };
}

/** The path of `target` as seen from the folder of `from`, both relative to the same base (POSIX). */
export function relativeTo(from: string, target: string): string {
  return path.posix.relative(path.posix.dirname(from), target) || path.posix.basename(target);
}
