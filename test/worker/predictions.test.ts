/**
 * The predictions file leaves the worker naming videos as the client knows them
 * (src/worker/predictions.ts), on real labels files from ../shared/sleap-data whose videos table
 * and provenance name worker paths, as sleap-nn's would; read back by h5wasm and by h5py.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { listVideos } from '../../src/slp/index.js';
import { nameVideos, relativeTo } from '../../src/worker/predictions.js';
import { tempDir } from '../fixtures/fake-sleap-nn.js';
import { labelsNaming } from '../helpers/slp-files.js';

const JOB = '/home/jovyan/.sleap-rtc/work/job-abc123-XyZ';

/** h5py's view: every video name, and sleap-nn's provenance in metadata's json. */
function h5pyRead(file: string): { videos: string[]; provenance: Record<string, unknown> } {
  const script = String.raw`
import json, sys, h5py
with h5py.File(sys.argv[1], 'r') as f:
    videos = [json.loads(v)['backend']['filename'] for v in f['videos_json'][:]]
    md = f['metadata'].attrs['json']
    md = json.loads(md if isinstance(md, str) else md.decode())
    print(json.dumps({'videos': videos, 'provenance': md.get('provenance', {})}))
`;
  const r = spawnSync('/usr/bin/python3', ['-c', script, file], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as { videos: string[]; provenance: Record<string, unknown> };
}

/** Sets sleap-nn's provenance in the file's metadata json (as sleap-io stores Labels.provenance). */
function setProvenance(file: string, provenance: Record<string, unknown>): void {
  const script = String.raw`
import json, sys, h5py
with h5py.File(sys.argv[1], 'a') as f:
    md = json.loads(f['metadata'].attrs['json'])
    md['provenance'] = json.loads(sys.argv[2])
    f['metadata'].attrs['json'] = json.dumps(md)
`;
  const r = spawnSync('/usr/bin/python3', ['-c', script, file, JSON.stringify(provenance)], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
}

const redact = (text: string): string => text.split(`${JOB}/inputs/0/`).join('proj/').split(JOB).join('<job folder>');

test('videos named by worker paths get the client names; other absolute names their base name; provenance redacted', async (t) => {
  const dir = await tempDir(t);
  const file = await labelsNaming(path.join(dir, 'p.slp'), [`${JOB}/inputs/2/cam0.mp4`, `${JOB}/labels-1/cam1.mp4`, '/somewhere/else/cam2.mp4', 'rel/cam3.mp4']);
  setProvenance(file, { source_file: `${JOB}/inputs/0/labels.slp`, model_paths: [`${JOB}/inputs/1/m1`], sleap_nn_version: '0.3.3' });
  const names = new Map([
    [`${JOB}/inputs/2/cam0.mp4`, '/Volumes/talmo/alice/videos/cam0.mp4'],
    [`${JOB}/labels-1/cam1.mp4`, 'C:\\lab\\cam1.mp4'],
  ]);
  assert.equal(await nameVideos(file, names, redact), 3, 'three videos renamed: two by the map, one to its base name');
  assert.deepEqual((await listVideos(file)).videos.map((v) => v.names), [['/Volumes/talmo/alice/videos/cam0.mp4'], ['C:\\lab\\cam1.mp4'], ['cam2.mp4'], ['rel/cam3.mp4']]);
  const read = h5pyRead(file);
  assert.deepEqual(read.videos, ['/Volumes/talmo/alice/videos/cam0.mp4', 'C:\\lab\\cam1.mp4', 'cam2.mp4', 'rel/cam3.mp4']);
  assert.deepEqual(read.provenance, { source_file: 'proj/labels.slp', model_paths: ['<job folder>/inputs/1/m1'], sleap_nn_version: '0.3.3' });
  assert.deepEqual((await readdir(dir)).sort(), ['p.slp'], 'no temporary file left beside it');
});

test('a name longer than the fixed-length table is written as its base name', async (t) => {
  const dir = await tempDir(t);
  const file = await labelsNaming(path.join(dir, 'p.slp'), [`${JOB}/inputs/2/cam0.mp4`]);
  const long = `/Volumes/talmo/${'a-very-long-folder/'.repeat(12)}cam0.mp4`;
  await nameVideos(file, new Map([[`${JOB}/inputs/2/cam0.mp4`, long]]), redact);
  assert.deepEqual((await listVideos(file)).videos[0]?.names, ['cam0.mp4']);
});

test('a file that is not a labels file is refused with its code, and left as it was', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'p.slp');
  await writeFile(file, 'not HDF5');
  await assert.rejects(nameVideos(file, new Map(), redact), (e: Error & { code?: string }) => e.code === 'SLP_NOT_HDF5');
  assert.deepEqual(await readdir(dir), ['p.slp']);
});

test('relativeTo: the input as seen from the predictions file, both in the job\'s own terms', () => {
  const table: [string, string, string][] = [
    ['proj/video.mp4.predictions.slp', 'proj/video.mp4', 'video.mp4'],
    ['out/run.slp', 'proj/video.mp4', '../proj/video.mp4'],
    ['p.slp', 'clips/c 1.mp4', 'clips/c 1.mp4'],
    ['a/b/c/p.slp', 'a/x.slp', '../../x.slp'],
  ];
  for (const [output, data, want] of table) assert.equal(relativeTo(output, data), want, `${output} → ${data}`);
});
