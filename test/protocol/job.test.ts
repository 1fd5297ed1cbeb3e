import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { encodeMessage, ProtocolError } from '../../src/protocol/codec.js';
import {
  CLIENT_TO_WORKER_TYPES,
  WORKER_TO_CLIENT_TYPES,
  decodeClientToWorker,
  decodeWorkerToClient,
  interpretStorage,
  jobPaths,
  newestLinesWithin,
  type JobRequest,
} from '../../src/protocol/job.js';
import { LIMITS } from '../../src/limits.js';

const train = {
  type: 'JOB_REQUEST',
  job_id: 'job-1',
  job_type: 'train',
  spec: { labels: 'proj/labels.slp', config_file: 'proj/config.yaml', output: 'proj/models', run_name: 'run-1' },
  transfer: 'shared',
  storage: { storage_backend: 'vast', user_subdir: 'amick', client_base_path: '/Volumes/vast' },
} as const;
const track = {
  type: 'JOB_REQUEST',
  job_id: 'job-2',
  job_type: 'track',
  spec: { data: 'v.mp4', models: ['models/a', 'models/b'], output: 'v.predictions.slp' },
  transfer: 'webrtc',
} as const;
const ref = { storage_backend: 'vast', user_subdir: 'amick', relative_path: 'proj/labels.slp' };

const validClientToWorker: object[] = [
  train,
  { ...train, spec: { ...train.spec, max_epochs: 100, batch_size: 4, learning_rate: 0.0001, output: '' } },
  { ...train, storage: { storage_backend: 'vast', user_subdir: '' } },
  { ...train, transfer: undefined },
  { ...train, reservation_id: 'res-4f2a' },
  track,
  { type: 'JOB_REQUEST', job_id: 'legacy', job_type: 'track', spec: { data: 'd.mp4', models: ['m'], output: 'o.slp' } },
  { type: 'JOB_CANCEL', job_id: 'job-1' },
  { type: 'FETCH_REQUEST', job_id: 'job-1' },
  { type: 'error', code: 'INVALID_MESSAGE', message: 'bad' },
];

const validWorkerToClient: object[] = [
  { type: 'PATH_VALIDATED', job_id: 'j', field: 'labels', path: { type: 'SHARED_INPUT_PATH', ...ref } },
  { type: 'PATH_VALIDATED', job_id: 'j', field: 'output', path: { type: 'SHARED_OUTPUT_PATH', ...ref, relative_path: '' } },
  { type: 'PATH_VALIDATED', job_id: 'j', field: 'models.12', path: { type: 'SHARED_INPUT_PATH', ...ref } },
  { type: 'PATH_ERROR', job_id: 'j', field: 'user_subdir', rule: 'outside_base', message: 'no' },
  { type: 'BACKEND_NOT_AVAILABLE', job_id: 'j', backend: 'vast', available_backends: ['default', 'scratch'] },
  { type: 'JOB_REJECTED', job_id: 'j', code: 'PATH_VALIDATION', message: '2 paths were refused' },
  { type: 'JOB_ACCEPTED', job_id: 'j', transfer: 'shared', storage_backend: 'default', user_subdir: '' },
  { type: 'JOB_ACCEPTED', job_id: 'j', transfer: 'webrtc' },
  { type: 'UPLOAD_REQUEST', job_id: 'j', files: [{ field: 'labels', transfer_id: 't1' }, { field: 'config_file', transfer_id: 't2' }] },
  { type: 'JOB_STARTED', job_id: 'j', worker: 'gpu-1' },
  { type: 'JOB_LOG', job_id: 'j', stream: 'stderr', line: 'Epoch 1/3' },
  { type: 'JOB_PROGRESS', job_id: 'j', epoch: 1, total_epochs: 3 },
  { type: 'JOB_COMPLETE', job_id: 'j', transfer: 'shared', outputs: [{ type: 'SHARED_OUTPUT_PATH', ...ref, relative_path: 'proj/models/r' }] },
  { type: 'JOB_COMPLETE', job_id: 'j', transfer: 'webrtc', outputs: [{ relative_path: 'models/r', transfer_id: 't3', kind: 'directory' }] },
  { type: 'JOB_FAILED', job_id: 'j', exit_code: 3, last_lines: ['Traceback', 'boom'], code: 'SLEAP_NN_NOT_FOUND', message: 'x' },
  { type: 'JOB_FAILED', job_id: 'j', exit_code: null, signal: 'SIGKILL', last_lines: [], code: 'INTERNAL', message: 'x' },
  { type: 'JOB_CANCELLED', job_id: 'j', reason: 'client_disconnected' },
];

test('every valid message decodes to itself, in its own direction only', () => {
  for (const m of validClientToWorker) {
    const frame = encodeMessage(m as { type: string });
    assert.deepEqual(decodeClientToWorker(frame), JSON.parse(frame), frame);
  }
  for (const m of validWorkerToClient) {
    const frame = encodeMessage(m as { type: string });
    assert.deepEqual(decodeWorkerToClient(frame), JSON.parse(frame), frame);
    const type = (m as { type: string }).type;
    if (type !== 'error') {
      assert.throws(() => decodeClientToWorker(frame), (e: unknown) => e instanceof ProtocolError && e.code === 'UNKNOWN_TYPE');
    }
  }
  assert.throws(() => decodeWorkerToClient(JSON.stringify(train)), (e: unknown) => e instanceof ProtocolError && e.code === 'UNKNOWN_TYPE');
});

test('each direction knows exactly its types', () => {
  assert.deepEqual([...CLIENT_TO_WORKER_TYPES].sort(), ['FETCH_REQUEST', 'JOB_CANCEL', 'JOB_REQUEST', 'JOB_STOP', 'PING', 'PONG', 'error']);
  assert.deepEqual(
    [...WORKER_TO_CLIENT_TYPES].sort(),
    [
      'BACKEND_NOT_AVAILABLE',
      'JOB_ACCEPTED',
      'JOB_CANCELLED',
      'JOB_COMPLETE',
      'JOB_FAILED',
      'JOB_LOG',
      'JOB_PROGRESS',
      'JOB_REJECTED',
      'JOB_STARTED',
      'JOB_STOP_REPLY',
      'PATH_ERROR',
      'PATH_VALIDATED',
      'PING',
      'PONG',
      'TRAIN_EVENT',
      'UPLOAD_REQUEST',
      'error',
    ],
  );
});

const long = 'a/'.repeat(LIMITS.relativePathMaxBytes);

test('hostile or malformed client messages: stable code, and a sentence naming the field', () => {
  const cases: [string, string, string, RegExp][] = [
    ['not JSON', '{"type":', 'INVALID_JSON', /not valid JSON/],
    ['not an object', '[1,2]', 'INVALID_MESSAGE', /JSON object/],
    ['no type', '{"job_id":"x"}', 'INVALID_MESSAGE', /"type"/],
    ['unknown type', '{"type":"RUN_SHELL","cmd":"rm -rf /"}', 'UNKNOWN_TYPE', /RUN_SHELL/],
    ['worker message sent by a client', JSON.stringify({ type: 'JOB_COMPLETE', job_id: 'j' }), 'UNKNOWN_TYPE', /JOB_COMPLETE/],
    ['missing job_id', JSON.stringify({ ...train, job_id: undefined }), 'INVALID_MESSAGE', /job_id/],
    ['job_id with a slash', JSON.stringify({ ...train, job_id: '../x' }), 'INVALID_MESSAGE', /job_id/],
    ['unknown job type', JSON.stringify({ ...train, job_type: 'shell' }), 'INVALID_MESSAGE', /job_type/],
    ['extra top-level field', JSON.stringify({ ...train, exec: 'sh' }), 'INVALID_MESSAGE', /exec/],
    ['extra spec field', JSON.stringify({ ...train, spec: { ...train.spec, extra_args: ['--x'] } }), 'INVALID_MESSAGE', /extra_args/],
    ['track spec under train', JSON.stringify({ ...train, spec: track.spec }), 'INVALID_MESSAGE', /spec/],
    ['NUL in labels', JSON.stringify({ ...train, spec: { ...train.spec, labels: 'a\0b' } }), 'INVALID_MESSAGE', /spec\.labels.*NUL/],
    ['empty labels', JSON.stringify({ ...train, spec: { ...train.spec, labels: '' } }), 'INVALID_MESSAGE', /spec\.labels/],
    ['labels not a string', JSON.stringify({ ...train, spec: { ...train.spec, labels: ['a'] } }), 'INVALID_MESSAGE', /spec\.labels/],
    ['path too long', JSON.stringify({ ...train, spec: { ...train.spec, config_file: long } }), 'INVALID_MESSAGE', /spec\.config_file.*bytes/],
    ['NUL in user_subdir', JSON.stringify({ ...train, storage: { ...train.storage, user_subdir: 'x\0' } }), 'INVALID_MESSAGE', /storage\.user_subdir/],
    ['backend name with a slash', JSON.stringify({ ...train, storage: { ...train.storage, storage_backend: '../vast' } }), 'INVALID_MESSAGE', /storage_backend/],
    ['prefix-map separator in client base', JSON.stringify({ ...train, storage: { ...train.storage, client_base_path: '/a->/etc' } }), 'INVALID_MESSAGE', /client_base_path/],
    ['newline in client base', JSON.stringify({ ...train, storage: { ...train.storage, client_base_path: '/a\n/b' } }), 'INVALID_MESSAGE', /client_base_path/],
    ['storage with transfer webrtc', JSON.stringify({ ...train, transfer: 'webrtc' }), 'INVALID_MESSAGE', /storage.*shared/],
    ['unknown transfer', JSON.stringify({ ...train, transfer: 'ftp' }), 'INVALID_MESSAGE', /transfer/],
    ['zero epochs', JSON.stringify({ ...train, spec: { ...train.spec, max_epochs: 0 } }), 'INVALID_MESSAGE', /max_epochs/],
    ['fractional batch', JSON.stringify({ ...train, spec: { ...train.spec, batch_size: 2.5 } }), 'INVALID_MESSAGE', /batch_size/],
    ['string lr', JSON.stringify({ ...train, spec: { ...train.spec, learning_rate: '1e-3' } }), 'INVALID_MESSAGE', /learning_rate/],
    ['reservation id with a slash', JSON.stringify({ ...train, reservation_id: '../r' }), 'INVALID_MESSAGE', /reservation_id/],
    ['empty reservation id', JSON.stringify({ ...train, reservation_id: '' }), 'INVALID_MESSAGE', /reservation_id/],
    ['run name with a slash', JSON.stringify({ ...train, spec: { ...train.spec, run_name: '../../x' } }), 'INVALID_MESSAGE', /run_name/],
    ['run name starting with a dash', JSON.stringify({ ...train, spec: { ...train.spec, run_name: '-rf' } }), 'INVALID_MESSAGE', /run_name/],
    ['no models', JSON.stringify({ ...track, spec: { ...track.spec, models: [] } }), 'INVALID_MESSAGE', /models/],
    ['too many models', JSON.stringify({ ...track, spec: { ...track.spec, models: Array(17).fill('m') } }), 'INVALID_MESSAGE', /models/],
    ['cancel without id', '{"type":"JOB_CANCEL"}', 'INVALID_MESSAGE', /job_id/],
    ['frame too large', JSON.stringify({ ...train, pad: 'x'.repeat(LIMITS.jobMessageMaxBytes) }), 'FRAME_TOO_LARGE', /limit/],
  ];
  for (const [name, frame, code, message] of cases) {
    assert.throws(
      () => decodeClientToWorker(frame),
      (e: unknown) => {
        assert.ok(e instanceof ProtocolError, `${name}: ${String(e)}`);
        assert.equal(e.code, code, `${name}: ${e.message}`);
        assert.match(e.message, message, name);
        return true;
      },
      name,
    );
  }
});

test('malformed worker messages are refused too', () => {
  const cases: [string, object][] = [
    ['bad path field', { type: 'PATH_ERROR', job_id: 'j', field: 'spec', rule: 'missing', message: 'm' }],
    ['models index too large', { type: 'PATH_ERROR', job_id: 'j', field: 'models.100', rule: 'missing', message: 'm' }],
    ['bad rule', { type: 'PATH_ERROR', job_id: 'j', field: 'labels', rule: 'nope', message: 'm' }],
    ['untyped path reference', { type: 'PATH_VALIDATED', job_id: 'j', field: 'labels', path: ref }],
    ['bad error code', { type: 'JOB_REJECTED', job_id: 'j', code: 'E_NOPE', message: 'm' }],
    ['log line too long', { type: 'JOB_LOG', job_id: 'j', stream: 'stdout', line: 'x'.repeat(LIMITS.jobLogMaxLineChars + 1) }],
    ['bad stream', { type: 'JOB_LOG', job_id: 'j', stream: 'stdin', line: 'x' }],
    ['too many last lines', { type: 'JOB_FAILED', job_id: 'j', exit_code: 1, last_lines: Array(LIMITS.jobLogTailLines + 1).fill('x'), code: 'INTERNAL', message: 'm' }],
    ['shared completion with transfer outputs', { type: 'JOB_COMPLETE', job_id: 'j', transfer: 'shared', outputs: [{ relative_path: 'a', transfer_id: 't', kind: 'file' }] }],
    ['completion without transfer', { type: 'JOB_COMPLETE', job_id: 'j', outputs: [] }],
    ['empty upload request', { type: 'UPLOAD_REQUEST', job_id: 'j', files: [] }],
    ['negative epoch', { type: 'JOB_PROGRESS', job_id: 'j', epoch: -1, total_epochs: 3 }],
    ['unknown cancel reason', { type: 'JOB_CANCELLED', job_id: 'j', reason: 'bored' }],
  ];
  for (const [name, m] of cases) {
    assert.throws(
      () => decodeWorkerToClient(JSON.stringify(m)),
      (e: unknown) => e instanceof ProtocolError && e.code === 'INVALID_MESSAGE',
      name,
    );
  }
});

test('property: any train request with arbitrary path strings survives encode/decode unchanged', () => {
  const path = fc.string({ minLength: 1, maxLength: 60 }).filter((s) => !s.includes('\0'));
  fc.assert(
    fc.property(path, path, fc.string({ maxLength: 40 }).filter((s) => !s.includes('\0')), (labels, config, subdir) => {
      const m = { ...train, spec: { ...train.spec, labels, config_file: config }, storage: { storage_backend: 'vast', user_subdir: subdir } };
      assert.deepEqual(decodeClientToWorker(JSON.stringify(m)), m);
    }),
  );
});

test('interpretStorage: explicit storage, explicit transfer, and the legacy rule', () => {
  const has = (names: string[]) => (n: string) => names.includes(n);
  const req = (patch: Partial<JobRequest>): JobRequest => decodeClientToWorker(JSON.stringify({ ...train, ...patch })) as JobRequest;
  assert.deepEqual(interpretStorage(req({}), has([])), {
    transfer: 'shared',
    storage_backend: 'vast',
    user_subdir: 'amick',
    client_base_path: '/Volumes/vast',
    legacy: false,
  });
  assert.deepEqual(interpretStorage(req({ storage: undefined, transfer: 'webrtc' }), has(['default'])), { transfer: 'webrtc', legacy: false });
  // Legacy: no storage fields at all.
  const legacy = req({ storage: undefined, transfer: undefined });
  assert.deepEqual(interpretStorage(legacy, has(['default', 'vast'])), { transfer: 'shared', storage_backend: 'default', user_subdir: '', legacy: true });
  assert.deepEqual(interpretStorage(legacy, has(['vast'])), { transfer: 'webrtc', legacy: true });
  assert.deepEqual(interpretStorage(req({ storage: undefined, transfer: 'shared' }), has(['default'])).transfer, 'shared');
});

test('jobPaths lists every path once, inputs first, with its field name', () => {
  assert.deepEqual(
    jobPaths(train as unknown as JobRequest).map((p) => [p.field, p.relative_path, p.role, p.kind]),
    [
      ['labels', 'proj/labels.slp', 'input', 'file'],
      ['config_file', 'proj/config.yaml', 'input', 'file'],
      ['output', 'proj/models', 'output', 'directory'],
    ],
  );
  assert.deepEqual(
    jobPaths(track as unknown as JobRequest).map((p) => [p.field, p.role, p.kind]),
    [
      ['data', 'input', 'file'],
      ['models.0', 'input', 'directory'],
      ['models.1', 'input', 'directory'],
      ['output', 'output', 'file'],
    ],
  );
});

test('newestLinesWithin keeps a JOB_FAILED under the message limit whatever the lines hold', () => {
  fc.assert(
    fc.property(fc.array(fc.string({ maxLength: LIMITS.jobLogMaxLineChars }), { maxLength: LIMITS.jobLogTailLines }), (lines) => {
      const kept = newestLinesWithin(lines, 4096);
      assert.ok(Buffer.byteLength(JSON.stringify(kept)) <= 4096);
      assert.deepEqual(kept, lines.slice(lines.length - kept.length));
    }),
  );
  // Worst case: 50 lines of control characters (6 bytes each in JSON) still make a valid frame.
  const nasty = Array(LIMITS.jobLogTailLines).fill('\u0001'.repeat(LIMITS.jobLogMaxLineChars));
  const lastLines = newestLinesWithin(nasty, LIMITS.jobMessageMaxBytes - 1024);
  const frame = JSON.stringify({ type: 'JOB_FAILED', job_id: 'j', exit_code: 1, last_lines: lastLines, code: 'INTERNAL', message: 'm' });
  assert.ok(lastLines.length > 0);
  assert.equal(decodeWorkerToClient(frame).type, 'JOB_FAILED');
});
