/**
 * The real SLEAP files in `<repo root>/../shared/sleap-data` (see its README.md): labels files,
 * a video and sleap-nn's sample training configs. That folder is read-only and shared, so tests
 * copy what they need into their own temporary folders first; this module is the one place that
 * knows where it is.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** `<repo root>/../shared/sleap-data` (in /work/main, in a worktree through its `shared` link, and in CI). */
export const SLEAP_DATA = path.resolve(fileURLToPath(new URL('../../', import.meta.url)), '..', 'shared', 'sleap-data');

export const SLEAP_FILES = {
  /** HDF5 labels file; `videos_json[0].backend.filename` is the relative `tests/data/videos/small_robot.mp4`. */
  labels: 'small_robot_minimal.slp',
  /** The video `labels` names (found next to the labels file, by its base name, as SLEAP resolves it). */
  video: 'small_robot.mp4',
  /** Package file: frames embedded (`filename` "."), no external video. */
  pkg: 'minimal_instance.pkg.slp',
  /** sleap-nn sample configs: every key present, save_ckpt true, ckpt_dir/run_name empty. */
  centroidConfig: 'config_centroid_unet.yaml',
  singleInstanceConfig: 'config_single_instance_unet_medium_rf.yaml',
} as const;

export type SleapFile = keyof typeof SLEAP_FILES;

/** Absolute path of a file in the shared folder (read it, never write it). */
export function sleapDataPath(file: SleapFile): string {
  return path.join(SLEAP_DATA, SLEAP_FILES[file]);
}

/**
 * Copies one real file to `dest` (a full path; its folder is created). Fails with a clear message
 * when the shared folder is missing, so a wrong checkout is not mistaken for a bug.
 */
export async function copySleapFile(file: SleapFile, dest: string): Promise<string> {
  const src = sleapDataPath(file);
  await stat(src).catch(() => {
    throw new Error(`real SLEAP test file ${src} is missing: tests expect ../shared/sleap-data beside the repository (see HELPERS.md)`);
  });
  await mkdir(path.dirname(dest), { recursive: true });
  await copyFile(src, dest);
  return dest;
}

/**
 * A labels file with its video in `dir`: `<dir>/<labelsName>` (small_robot_minimal.slp) and
 * `<dir>/small_robot.mp4`, where sleap-io finds it (next to the labels file). Returns both paths.
 */
export async function copyLabelsWithVideo(dir: string, labelsName = 'labels.slp'): Promise<{ labels: string; video: string }> {
  const labels = await copySleapFile('labels', path.join(dir, labelsName));
  const video = await copySleapFile('video', path.join(dir, SLEAP_FILES.video));
  return { labels, video };
}

/** A real training config at `dest` (default: the centroid sample). */
export function copyTrainingConfig(dest: string, which: 'centroidConfig' | 'singleInstanceConfig' = 'centroidConfig'): Promise<string> {
  return copySleapFile(which, dest);
}

/**
 * A copy of the real labels file at `dest` whose videos are exactly `filenames` (as SLEAP would
 * have saved them on the labelling machine, e.g. `/Volumes/talmo/alice/session1.mp4`). Written
 * with Debian's h5py (`/usr/bin/python3`), an HDF5 writer independent of this project's code:
 * only `videos_json` changes, each row keeping the real row's other backend fields.
 */
export async function writeLabelsNamingVideos(dest: string, filenames: readonly string[]): Promise<string> {
  await copySleapFile('labels', dest);
  const script = [
    'import h5py, json, sys, numpy',
    'path, names = sys.argv[1], json.loads(sys.argv[2])',
    "with h5py.File(path, 'r+') as f:",
    "    row = json.loads(f['videos_json'][0])",
    '    rows = []',
    '    for n in names:',
    "        row['backend']['filename'] = n",
    "        rows.append(json.dumps(row).encode('utf-8'))",
    "    del f['videos_json']",
    "    f.create_dataset('videos_json', data=numpy.array(rows))",
  ].join('\n');
  await new Promise<void>((resolve, reject) => {
    execFile('/usr/bin/python3', ['-c', script, dest, JSON.stringify(filenames)], (err, _out, stderr) =>
      err ? reject(new Error(`h5py could not rewrite ${dest}: ${stderr || err.message}`)) : resolve(),
    );
  });
  return dest;
}

/**
 * The bytes of a real labels file (the package file) grown to `size` with random bytes after its
 * HDF5 data, which HDF5 readers ignore: a valid labels file with content of its own, for tests
 * that need distinct or large inputs (caching, resuming).
 */
export async function uniqueLabelsBytes(size: number): Promise<Buffer> {
  const pkg = await readFile(sleapDataPath('pkg'));
  return size > pkg.length ? Buffer.concat([pkg, randomBytes(size - pkg.length)]) : pkg;
}
