/**
 * Small HDF5 files for the hostile-input tables, written with h5wasm: a labels file whose
 * `videos_json` holds exactly the given entries, or an HDF5 file shaped however a test needs.
 * (The well-formed cases use the real SLEAP files; these exist for what no real file holds.)
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import h5wasm from 'h5wasm/node';

export async function writeH5(file: string, build: (f: InstanceType<typeof h5wasm.File>) => void): Promise<void> {
  await h5wasm.ready;
  const f = new h5wasm.File(file, 'w');
  try {
    build(f);
  } finally {
    f.close();
  }
}

/**
 * A labels-shaped file: a `metadata` group with `format_id`, a `frames` dataset, and
 * `videos_json` with these entries (fixed-length ASCII like SLEAP writes, or variable-length).
 */
export async function writeLabels(file: string, entries: readonly string[], opts: { vlen?: boolean } = {}): Promise<void> {
  await writeH5(file, (f) => {
    const meta = f.create_group('metadata');
    meta.create_attribute('format_id', 1.2, null, '<f8');
    f.create_dataset({ name: 'frames', data: new Float64Array([1, 2, 3]) });
    if (opts.vlen) {
      f.create_dataset({ name: 'videos_json', data: [...entries], dtype: 'S' });
    } else {
      const size = Math.max(1, ...entries.map((e) => Buffer.byteLength(e)));
      f.create_dataset({ name: 'videos_json', data: [...entries], dtype: `A${size}`, maxshape: [null], chunks: [1] });
    }
  });
}

export function mediaEntry(filename: string): string {
  return JSON.stringify({ backend: { filename, grayscale: false, bgr: true, dataset: '', input_format: '' } });
}

/** A fresh temporary folder, removed after the test. */
export async function tempDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sleap-rtc-slp-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}
