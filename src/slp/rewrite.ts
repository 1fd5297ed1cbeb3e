/**
 * A copy of a labels file whose videos table names other files. The copy is byte for byte the
 * original (every dataset, attribute and the `format_id` unchanged) except `videos_json`, whose
 * entries for the renamed videos are rewritten in place by HDF5. It is written under a temporary
 * name in the destination folder, read back and checked, and only then renamed into place, so a
 * failure leaves no file that looks whole.
 *
 * SLEAP stores `videos_json` as fixed-length strings sized to its longest entry; an entry that
 * would not fit is refused with SLP_VIDEO_NAME_TOO_LONG (HDF5 cannot change a dataset's type in
 * place), and the caller picks shorter names.
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { chmod, copyFile, rename, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { SleapRtcError } from '../errors.js';
import { notHdf5, SlpError } from './errors.js';
import { closeH5, diagnosticReason, quietly, writeStrings } from './h5.js';
import h5wasm, { type File as H5File } from 'h5wasm/node';
import { stringifyPythonJson } from './json.js';
import { openLabels, readVideosTable } from './videos.js';
import type { SlpVideo } from './videos.js';

/** New file names per video index: one for a media file, the list for an image sequence. */
export type VideoRenames = ReadonlyMap<number, readonly string[]>;

/** A change to the JSON text SLEAP keeps in `metadata`'s `json` attribute (skeletons, provenance). */
export type MetadataEdit = (json: string) => string;

/** The text of `metadata`'s `json` attribute (as `editMetadata` sees it), or undefined when the file has none. */
function metadataText(file: H5File): string | undefined {
  const group = file.get('metadata');
  if (!(group instanceof h5wasm.Group)) return undefined;
  const value = group.attrs.json?.value;
  if (value === undefined) return undefined;
  return typeof value === 'string' ? value : Buffer.from(value as Uint8Array).toString('utf8');
}

/**
 * Reads the JSON text SLEAP keeps in `metadata`'s `json` attribute of the labels file `src`
 * (skeletons, provenance); undefined when it has none.
 */
export async function readMetadataJson(src: string): Promise<string | undefined> {
  const { file } = await openLabels(src, 'r');
  try {
    const r = quietly(() => metadataText(file));
    if (r.error) throw notHdf5(src, `its metadata could not be read${r.diagnostics ? `: ${diagnosticReason(r.diagnostics) ?? ''}` : ''}`);
    return r.value;
  } finally {
    closeH5(file);
  }
}

/** Applies `edit` to `metadata`'s `json` attribute, when the file has one (written back as a string). */
function editMetadata(file: H5File, src: string, edit: MetadataEdit): void {
  const r = quietly(() => {
    const text = metadataText(file);
    if (text === undefined) return;
    const group = file.get('metadata') as InstanceType<typeof h5wasm.Group>;
    const next = edit(text);
    if (next === text) return;
    group.delete_attribute('json');
    group.create_attribute('json', next);
  });
  if (r.error) throw new SlpError('SLP_WRITE_FAILED', `the metadata of ${src} could not be rewritten`, { path: src });
}

function renamedEntry(src: string, video: SlpVideo, entry: Record<string, unknown>, names: readonly string[]): string {
  if (video.kind === 'embedded') {
    throw new SleapRtcError('INTERNAL', `${src}: video ${video.index} is embedded in the labels file and has no file name to rewrite`);
  }
  if (names.length === 0 || (video.kind === 'file' && names.length !== 1)) {
    throw new SleapRtcError('INTERNAL', `${src}: video ${video.index} needs ${video.kind === 'file' ? 'one name' : 'at least one name'}, got ${names.length}`);
  }
  const backend = { ...(entry.backend as Record<string, unknown>) };
  const out: Record<string, unknown> = { ...entry, backend };
  if (video.kind === 'images') {
    backend.filenames = [...names];
    if (typeof backend.filename === 'string') backend.filename = names[0];
    if (Array.isArray(out.filename)) out.filename = [...names];
    else if (typeof out.filename === 'string') out.filename = names[0];
  } else {
    if (typeof backend.filename === 'string') backend.filename = names[0];
    if (typeof out.filename === 'string' || backend.filename === undefined) out.filename = names[0];
  }
  return stringifyPythonJson(out);
}

/** The new `videos_json` strings: renamed entries re-serialized, all others byte for byte as read. */
function newTable(src: string, raw: readonly string[], entries: readonly Record<string, unknown>[], videos: readonly SlpVideo[], renames: VideoRenames): string[] {
  for (const index of renames.keys()) {
    if (!Number.isInteger(index) || index < 0 || index >= videos.length) {
      throw new SleapRtcError('INTERNAL', `${src} has ${videos.length} videos; there is no video ${index} to rewrite`);
    }
  }
  return raw.map((text, i) => {
    const names = renames.get(i);
    return names ? renamedEntry(src, videos[i]!, entries[i]!, names) : text;
  });
}

async function writeTable(tmp: string, values: readonly string[], src: string, metadata?: MetadataEdit): Promise<void> {
  const { lib, file } = await openLabels(tmp, 'a');
  try {
    if (metadata) editMetadata(file, src, metadata);
    const table = readVideosTable(lib, file, src);
    if (!table.info.vlen) {
      values.forEach((v, index) => {
        const needed = Buffer.byteLength(v, 'utf8');
        if (needed > table.info.size) {
          throw new SlpError(
            'SLP_VIDEO_NAME_TOO_LONG',
            `${src}: the new entry for video ${index} needs ${needed} bytes and the file's videos table holds ${table.info.size} per video`,
            { path: src, index, needed, available: table.info.size },
          );
        }
      });
    }
    const r = quietly(() => writeStrings(lib, file, 'videos_json', table.info, values));
    if (r.error) throw r.error;
  } finally {
    closeH5(file);
  }
}

async function checkWritten(tmp: string, values: readonly string[], src: string): Promise<void> {
  const { lib, file } = await openLabels(tmp, 'r');
  try {
    const back = readVideosTable(lib, file, src).raw;
    if (back.length !== values.length || back.some((v, i) => v !== values[i])) {
      throw new SlpError('SLP_WRITE_FAILED', `the rewritten copy of ${src} did not read back as written`, { path: src });
    }
  } finally {
    closeH5(file);
  }
}

/**
 * Writes `dest`, a copy of the labels file `src` with the videos in `renames` renamed. `src` is
 * only read. `dest` must not be `src`; an existing `dest` is replaced only once the copy is whole.
 */
export async function writeRenamedCopy(src: string, dest: string, renames: VideoRenames, metadata?: MetadataEdit): Promise<void> {
  if (path.resolve(src) === path.resolve(dest)) throw new SleapRtcError('INTERNAL', `refusing to rewrite ${src} in place`);
  const { lib, file } = await openLabels(src, 'r');
  let values: string[];
  try {
    const table = readVideosTable(lib, file, src);
    values = newTable(src, table.raw, table.entries, table.videos, renames);
  } finally {
    closeH5(file);
  }
  const tmp = path.join(path.dirname(dest), `.${path.basename(dest)}.${randomBytes(6).toString('hex')}.part`);
  try {
    await copyFile(src, tmp, constants.COPYFILE_EXCL | constants.COPYFILE_FICLONE);
    // copyFile keeps the source's mode; a read-only labels file still gives a copy we may write.
    await chmod(tmp, ((await stat(tmp)).mode & 0o777) | 0o600);
    await writeTable(tmp, values, src, metadata);
    await checkWritten(tmp, values, src);
    await rename(tmp, dest);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    if (err instanceof SleapRtcError) throw err;
    const reason = err instanceof Error ? err.message : String(err);
    throw new SlpError('SLP_WRITE_FAILED', `could not write a copy of ${src} at ${dest}: ${reason}`, { path: src, dest, reason }, { cause: err });
  }
}
