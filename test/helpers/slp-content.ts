/**
 * What a labels file holds, as Debian's h5py (`/usr/bin/python3`, an HDF5 reader independent of
 * this project's code) reads it: each video's file name(s), the rows of `frames`, `instances` and
 * `points` (values, NaN as null, booleans as numbers), and the provenance in `metadata`. Tests
 * compare two files with it when sleap-nn (or its stand-in) wrote one from the other: the same
 * labels, whatever the bytes.
 */
import { spawnSync } from 'node:child_process';

export interface LabelsContent {
  /** Per video: `backend.filenames` for an image sequence, else `[backend.filename]`. */
  videos: string[][];
  frames: unknown[][];
  instances: unknown[][];
  points: unknown[][];
  provenance: Record<string, unknown>;
}

const READ = String.raw`
import json, math, sys, h5py

def cell(v):
    v = v.item() if hasattr(v, 'item') else v
    if isinstance(v, float) and math.isnan(v):
        return None
    return int(v) if isinstance(v, bool) else v

def rows(f, name):
    if name not in f:
        return []
    data = f[name][()]
    if data.dtype.names is None:
        return [[cell(r)] for r in data]
    return [[cell(x) for x in r] for r in data]

with h5py.File(sys.argv[1], 'r') as f:
    videos = []
    for v in f['videos_json'][()]:
        b = json.loads(v)['backend']
        videos.append(list(b['filenames']) if 'filenames' in b else [b['filename']])
    md = f['metadata'].attrs.get('json', '{}')
    md = json.loads(md if isinstance(md, str) else md.decode())
    print(json.dumps({'videos': videos, 'frames': rows(f, 'frames'), 'instances': rows(f, 'instances'),
                      'points': rows(f, 'points'), 'provenance': md.get('provenance', {})}))
`;

/** The labels in `file`, read by h5py. */
export function labelsContent(file: string): LabelsContent {
  const r = spawnSync('/usr/bin/python3', ['-c', READ, file], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`h5py could not read ${file}: ${r.stderr || r.error?.message}`);
  return JSON.parse(r.stdout) as LabelsContent;
}

/** The labels of `file` without its video names and provenance: what training read from it. */
export function labelsOnly(file: string): Pick<LabelsContent, 'frames' | 'instances' | 'points'> {
  const { frames, instances, points } = labelsContent(file);
  return { frames, instances, points };
}
