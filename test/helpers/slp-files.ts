/**
 * Real labels files naming the videos a test needs: the real `small_robot_minimal.slp` (from
 * ../shared/sleap-data) with its videos table replaced by Debian's h5py (`/usr/bin/python3`), one
 * entry per name, each the real entry with only its file name changed. Everything else (frames,
 * instances, skeleton metadata, format_id) stays the real file's.
 */
import { spawnSync } from 'node:child_process';
import { chmod, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { copySleapFile } from './sleap-data.js';

const SET_VIDEOS = String.raw`
import json, sys, h5py, numpy as np
path, names = sys.argv[1], json.loads(sys.argv[2])
with h5py.File(path, 'a') as f:
    entry = json.loads(f['videos_json'][0])
    rows = []
    for name in names:
        e = json.loads(json.dumps(entry))
        e['backend']['filename'] = name
        rows.append(json.dumps(e, separators=(',', ':')).encode())
    del f['videos_json']
    f.create_dataset('videos_json', data=np.array(rows, dtype='S%d' % max(len(r) for r in rows)), maxshape=(None,))
`;

/** Writes `dest`: the real labels file, its videos named `names` (in video-index order). */
export async function labelsNaming(dest: string, names: readonly string[]): Promise<string> {
  await mkdir(path.dirname(dest), { recursive: true });
  await copySleapFile('labels', dest);
  await chmod(dest, 0o644); // the shared copy is read-only
  const r = spawnSync('/usr/bin/python3', ['-c', SET_VIDEOS, dest, JSON.stringify(names)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`h5py could not set the videos of ${dest}: ${r.stderr || r.error?.message}`);
  return dest;
}
