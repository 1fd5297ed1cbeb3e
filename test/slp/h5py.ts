/**
 * An independent reader for the tests: Debian's h5py, run as `/usr/bin/python3` (the python3 on
 * PATH may be another installation without it). `describe` returns every object of an HDF5 file:
 * kind, attributes (value and encoded HDF5 type), and for datasets shape, dtype, encoded HDF5
 * type, layout and a SHA-256 of the contents.
 */
import { spawnSync } from 'node:child_process';

export const PYTHON = '/usr/bin/python3';

const DESCRIBE = String.raw`
import hashlib, json, sys
import h5py, numpy as np

def digest(data):
    if isinstance(data, np.ndarray) and data.dtype.kind == 'O':
        items = [x.tobytes() if isinstance(x, np.ndarray) else x for x in data.ravel()]
        return hashlib.sha256(repr(items).encode()).hexdigest()
    if isinstance(data, np.ndarray):
        return hashlib.sha256(data.tobytes()).hexdigest()
    return hashlib.sha256(repr(data).encode()).hexdigest()

def attrs(obj):
    out = {}
    for k in sorted(obj.attrs.keys()):
        aid = h5py.h5a.open(obj.id, k.encode())
        v = obj.attrs[k]
        out[k] = {'type': aid.get_type().encode().hex(), 'value': digest(v) if isinstance(v, np.ndarray) else repr(v)}
    return out

def describe(name, obj):
    d = {'attrs': attrs(obj)}
    if isinstance(obj, h5py.Dataset):
        plist = obj.id.get_create_plist()
        d.update(kind='dataset', shape=list(obj.shape), dtype=str(obj.dtype), type=obj.id.get_type().encode().hex(),
                 chunks=obj.chunks, maxshape=[-1 if m is None else m for m in (obj.maxshape or [])],
                 compression=obj.compression, layout=plist.get_layout(), content=digest(obj[()]))
        if name == 'videos_json':
            d['values'] = [x.decode() if isinstance(x, bytes) else x for x in obj[()]]
    else:
        d['kind'] = 'group'
    return d

with h5py.File(sys.argv[1], 'r') as f:
    out = {'/': describe('/', f)}
    f.visititems(lambda name, obj: out.__setitem__(name, describe(name, obj)))
print(json.dumps(out))
`;

export interface H5Object {
  kind: 'group' | 'dataset';
  attrs: Record<string, { type: string; value: string }>;
  shape?: number[];
  dtype?: string;
  type?: string;
  chunks?: number[] | null;
  maxshape?: number[];
  compression?: string | null;
  layout?: number;
  content?: string;
  values?: string[];
}

export function describe(file: string): Record<string, H5Object> {
  const r = spawnSync(PYTHON, ['-c', DESCRIBE, file], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`h5py could not read ${file}: ${r.stderr || r.error?.message}`);
  return JSON.parse(r.stdout) as Record<string, H5Object>;
}

/** Runs a short h5py script with the given arguments (for building test files). */
export function runH5py(script: string, args: readonly string[]): string {
  const r = spawnSync(PYTHON, ['-c', script, ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`h5py script failed: ${r.stderr || r.error?.message}`);
  return r.stdout;
}
