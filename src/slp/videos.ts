/**
 * The videos a SLEAP labels file names. SLEAP keeps them in the `videos_json` dataset: one JSON
 * object per video, in video-index order. A video's file is `backend.filename` (or the top-level
 * `filename` of older files); `"."` means its frames are embedded in this same file, under the
 * HDF5 dataset `backend.dataset` (a `.pkg.slp`); an image sequence lists `backend.filenames`.
 *
 * Listing opens the file with HDF5 and reads only this table and the format attribute, so it
 * costs the same for a 10 KiB labels file and a 10 GiB package.
 */
import { stat } from 'node:fs/promises';
import h5wasm from 'h5wasm/node';
import type { File as H5File } from 'h5wasm/node';
import { SleapRtcError } from '../errors.js';
import { LIMITS } from '../limits.js';
import { noVideosTable, notHdf5, videosInvalid } from './errors.js';
import { closeH5, h5, openH5, quietly, readStrings, stringDatasetInfo } from './h5.js';
import type { H5Module, OpenMode, StringDatasetInfo } from './h5.js';
import { parsePythonJson } from './json.js';

export type VideoKind = 'embedded' | 'file' | 'images';

export interface SlpVideo {
  readonly index: number;
  /** `embedded`: frames inside the labels file; `file`: one media file; `images`: an image sequence. */
  readonly kind: VideoKind;
  /** File names exactly as stored: one for `file`, one per image for `images`, none for `embedded`. */
  readonly names: readonly string[];
  /** The HDF5 dataset that holds the frames of an embedded video. */
  readonly dataset?: string;
}

export interface SlpVideoList {
  readonly path: string;
  /** `metadata` group's `format_id` attribute, when present (1.0 to 1.x). */
  readonly formatId?: number;
  readonly videos: readonly SlpVideo[];
}

/** Longest single file name accepted from a labels file (Linux PATH_MAX). */
const MAX_NAME_CHARS = 4096;

/** The raw `videos_json` table of an open file, with each entry parsed. */
export interface VideosTable {
  readonly info: StringDatasetInfo;
  readonly raw: readonly string[];
  readonly entries: readonly Record<string, unknown>[];
  readonly videos: readonly SlpVideo[];
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function checkName(path: string, index: number, name: unknown, what: string): string {
  if (typeof name !== 'string' || name.length === 0) throw videosInvalid(path, `has ${what} that is not a non-empty string`, index);
  if (name.includes('\u0000')) throw videosInvalid(path, `has ${what} with a NUL character`, index);
  if (name.length > MAX_NAME_CHARS) throw videosInvalid(path, `has ${what} longer than ${MAX_NAME_CHARS} characters`, index);
  return name;
}

/** One parsed `videos_json` entry -> what kind of video it is and which files it names. */
export function describeVideo(path: string, index: number, entry: unknown): SlpVideo {
  if (!isObject(entry) || !isObject(entry.backend)) throw videosInvalid(path, 'is not a video description (a JSON object with a "backend" object)', index);
  const backend = entry.backend;
  if (backend.filenames !== undefined) {
    const list = backend.filenames;
    if (!Array.isArray(list) || list.length === 0) throw videosInvalid(path, 'has "backend.filenames" that is not a non-empty list', index);
    return { index, kind: 'images', names: list.map((n) => checkName(path, index, n, 'an image file name')) };
  }
  const filename = backend.filename ?? entry.filename;
  const name = checkName(path, index, filename, 'a "filename"');
  if (name === '.') {
    const dataset = backend.dataset;
    if (typeof dataset !== 'string' || dataset.length === 0) throw videosInvalid(path, 'is embedded ("filename" ".") but names no "backend.dataset"', index);
    return { index, kind: 'embedded', names: [], dataset };
  }
  return { index, kind: 'file', names: [name] };
}

/** Reads and checks `videos_json` from an open file. */
export function readVideosTable(lib: H5Module, file: H5File, path: string): VideosTable {
  const found = quietly(() => file.get('videos_json'));
  const ds = found.value;
  if (!(ds instanceof h5wasm.Dataset)) throw noVideosTable(path);
  const meta = quietly(() => stringDatasetInfo(ds));
  const info = meta.value;
  if (!info || !info.isString || info.rank !== 1) throw videosInvalid(path, 'is not a one-dimensional dataset of strings');
  if (info.length > LIMITS.slpMaxVideos) throw videosInvalid(path, `names ${info.length} videos, more than the ${LIMITS.slpMaxVideos} accepted`);
  if (!info.vlen && info.size * info.length > LIMITS.slpMaxVideosJsonBytes) throw videosInvalid(path, `is larger than ${LIMITS.slpMaxVideosJsonBytes} bytes`);
  const read = quietly(() => readStrings(lib, file, 'videos_json', info));
  if (!read.value) {
    const why = read.error instanceof TypeError ? 'holds text that is not UTF-8' : 'could not be read';
    throw videosInvalid(path, why);
  }
  const raw = read.value;
  const total = raw.reduce((n, s) => n + s.length, 0);
  if (total > LIMITS.slpMaxVideosJsonBytes) throw videosInvalid(path, `is larger than ${LIMITS.slpMaxVideosJsonBytes} bytes`);
  const entries = raw.map((text, index) => {
    let parsed: unknown;
    try {
      parsed = parsePythonJson(text);
    } catch {
      throw videosInvalid(path, 'is not JSON', index);
    }
    if (!isObject(parsed)) throw videosInvalid(path, 'is not a video description (a JSON object with a "backend" object)', index);
    return parsed;
  });
  return { info, raw, entries, videos: entries.map((e, i) => describeVideo(path, i, e)) };
}

function readFormatId(file: H5File): number | undefined {
  const r = quietly(() => {
    const group = file.get('metadata');
    if (!(group instanceof h5wasm.Group) && !(group instanceof h5wasm.Dataset)) return undefined;
    const v = group.attrs.format_id?.value;
    return typeof v === 'number' ? v : undefined;
  });
  return r.value;
}

/** Opens a labels file with HDF5, or throws the coded error that says what the file really is. */
export async function openLabels(path: string, mode: OpenMode): Promise<{ lib: H5Module; file: H5File }> {
  let st;
  try {
    st = await stat(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new SleapRtcError('USAGE', `${path} cannot be read (${code ?? 'error'}); check the labels file path`, { path });
  }
  if (!st.isFile()) throw notHdf5(path, 'it is a folder or a special file, not a regular file');
  const lib = await h5();
  const opened = await openH5(path, mode);
  if (!opened.file) throw notHdf5(path, opened.reason);
  return { lib, file: opened.file };
}

/** Lists the videos a labels file names, reading only its videos table. */
export async function listVideos(path: string): Promise<SlpVideoList> {
  const { lib, file } = await openLabels(path, 'r');
  try {
    const table = readVideosTable(lib, file, path);
    const formatId = readFormatId(file);
    return { path, ...(formatId === undefined ? {} : { formatId }), videos: table.videos };
  } finally {
    closeH5(file);
  }
}
