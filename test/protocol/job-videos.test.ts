import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeClientToWorker, decodeWorkerToClient } from '../../src/protocol/job.js';
import { ProtocolError } from '../../src/protocol/codec.js';
import { LIMITS } from '../../src/limits.js';

const base = {
  type: 'JOB_REQUEST',
  job_id: 'job-1',
  job_type: 'train',
  transfer: 'shared',
  storage: { storage_backend: 'vast', user_subdir: 'alice' },
  spec: { labels: 'proj/labels.slp', config_file: 'proj/c.yaml', output: 'models', run_name: 'r1' },
};
const cam = { path: 'videos/cam0.mp4', storage_backend: 'vast', user_subdir: 'alice', uses: [{ video: 0, image: 0 }] };
const withVideos = (videos: unknown, over: Record<string, unknown> = {}) => JSON.stringify({ ...base, ...over, spec: { ...base.spec, videos } });

test('a request may list its videos: on a backend (any), or sent', () => {
  const m = decodeClientToWorker(withVideos([cam, { path: 'v3.mp4', uses: [{ video: 1, image: 0 }, { video: 2, image: 0 }] }]));
  assert.equal(m.type === 'JOB_REQUEST' && m.spec.videos?.length, 2);
});

const refused: [string, string][] = [
  ['storage_backend without user_subdir', withVideos([{ path: 'a.mp4', storage_backend: 'vast', uses: [{ video: 0, image: 0 }] }])],
  ['a video on a backend in a transfer job', withVideos([cam], { transfer: 'webrtc', storage: undefined })],
  ['no uses', withVideos([{ ...cam, uses: [] }])],
  ['a negative video index', withVideos([{ ...cam, uses: [{ video: -1, image: 0 }] }])],
  ['a video index past the limit', withVideos([{ ...cam, uses: [{ video: LIMITS.slpMaxVideos, image: 0 }] }])],
  ['a use with an extra key', withVideos([{ ...cam, uses: [{ video: 0, image: 0, path: '/etc/passwd' }] }])],
  ['a NUL in a path', withVideos([{ ...cam, path: 'a\u0000.mp4' }])],
  ['an empty path', withVideos([{ ...cam, path: '' }])],
  ['more videos than a job may carry', withVideos(Array.from({ length: LIMITS.jobMaxVideoFiles + 1 }, (_, i) => ({ path: `v${i}.mp4`, uses: [{ video: i, image: 0 }] })))],
];
for (const [name, frame] of refused) {
  test(`refused by the schema: ${name}`, () => {
    assert.throws(() => decodeClientToWorker(frame), (e: unknown) => e instanceof ProtocolError && e.code === 'INVALID_MESSAGE');
  });
}

test('a path error may name a video field; a made-up field is refused', () => {
  const err = (field: string) => JSON.stringify({ type: 'PATH_ERROR', job_id: 'job-1', field, rule: 'missing', message: 'm' });
  assert.equal(decodeWorkerToClient(err('videos.12')).type, 'PATH_ERROR');
  for (const bad of ['videos.01', 'videos.', 'videos.12345', 'video.1']) assert.throws(() => decodeWorkerToClient(err(bad)), ProtocolError, bad);
});
