/** The client's transfer-job files over a real WebRTC pair: inputs under their staged names, outputs under the client's. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { silentReporter } from '../../src/client/reporter.js';
import { HashIndex } from '../../src/content/hash-index.js';
import { receiveOutputs, sendInputs } from '../../src/client/transfers.js';
import { receiveTransfer } from '../../src/transport/file-receive.js';
import { sendPath } from '../../src/transport/file-send.js';
import { TransferInbox } from '../../src/worker/transfers.js';
import { tempDir } from '../fixtures/fake-sleap-nn.js';
import { connectedPair } from '../transport/helpers/peers.js';

test('inputs go under the names the plan gave them; a field the job does not have is refused', async (t) => {
  const { offerer: client, answerer: worker } = await connectedPair(t);
  const src = await tempDir(t);
  const dst = await tempDir(t);
  await writeFile(path.join(src, 'labels.slp'), 'L');
  await mkdir(path.join(src, 'm1'));
  await writeFile(path.join(src, 'm1', 'best.ckpt'), 'C');
  const inputs = [
    { field: 'data' as const, local: path.join(src, 'labels.slp'), kind: 'file' as const, staged: 'video.slp' },
    { field: 'models.0' as const, local: path.join(src, 'm1'), kind: 'directory' as const, staged: 'm1' },
  ];
  // The worker's side as the worker routes it: a folder input's files arrive on channels of their own.
  const inbox = new TransferInbox(worker);
  t.after(() => inbox.close());
  const files = inbox.expectFolder('t2');
  const never = new AbortController().signal;
  const got = [
    inbox.expect('t1', 30_000, never).then((ch) => receiveTransfer(ch, { destDir: dst })),
    inbox.expect('t2', 30_000, never).then((ch) => receiveTransfer(ch, { destDir: dst, subChannel: files.take })),
  ];
  await sendInputs({
    peer: client,
    request: { type: 'UPLOAD_REQUEST', job_id: 'j', files: [{ field: 'data', transfer_id: 't1' }, { field: 'models.0', transfer_id: 't2' }] },
    inputs,
    reporter: silentReporter(),
    signal: new AbortController().signal,
    hashIndex: new HashIndex(path.join(src, 'hash-index.json')),
  });
  const [, folder] = await Promise.all(got);
  assert.equal(folder?.kind, 'folder', 'a model folder is offered file by file');
  assert.equal(await readFile(path.join(dst, 'video.slp'), 'utf8'), 'L');
  assert.equal(await readFile(path.join(dst, 'm1', 'best.ckpt'), 'utf8'), 'C');
  await assert.rejects(
    sendInputs({ peer: client, request: { type: 'UPLOAD_REQUEST', job_id: 'j', files: [{ field: 'labels', transfer_id: 't3' }] }, inputs, reporter: silentReporter(), signal: new AbortController().signal }),
    (e: { code?: string }) => e.code === 'INVALID_MESSAGE',
  );
});

test('outputs whose channels opened before JOB_COMPLETE was read are still received; a wrong name is refused', async (t) => {
  const { offerer: client, answerer: worker } = await connectedPair(t);
  const src = await tempDir(t);
  const dest = await tempDir(t);
  await mkdir(path.join(src, 'run1'));
  await writeFile(path.join(src, 'run1', 'best.ckpt'), 'CKPT');
  const sending = sendPath(worker, path.join(src, 'run1'), { transferId: 'out-1', name: 'run1' });
  // Let the channel reach the client before anyone there listens for it (the peer connection holds it).
  await new Promise((r) => setTimeout(r, 300));
  const outputs = await receiveOutputs({
    peer: client,
    complete: { type: 'JOB_COMPLETE', job_id: 'j', transfer: 'webrtc', outputs: [{ relative_path: 'output/run1', transfer_id: 'out-1', kind: 'directory' }] },
    jobType: 'train',
    destination: path.join(dest, 'models'),
    reporter: silentReporter(),
    signal: new AbortController().signal,
  });
  await sending;
  assert.deepEqual(outputs, [path.join(dest, 'models', 'run1')]);
  assert.equal(await readFile(path.join(dest, 'models', 'run1', 'best.ckpt'), 'utf8'), 'CKPT');

  await writeFile(path.join(src, 'evil.slp'), 'x');
  const evil = sendPath(worker, path.join(src, 'evil.slp'), { transferId: 'out-2', name: '../evil.slp' });
  await assert.rejects(
    receiveOutputs({
      peer: client,
      complete: { type: 'JOB_COMPLETE', job_id: 'j', transfer: 'webrtc', outputs: [{ relative_path: 'p.slp', transfer_id: 'out-2', kind: 'file' }] },
      jobType: 'track',
      destination: path.join(dest, 'p.slp'),
      reporter: silentReporter(),
      signal: new AbortController().signal,
    }),
    (e: { code?: string }) => e.code === 'TRANSFER_PROTOCOL',
  );
  await assert.rejects(evil);
  await assert.rejects(readFile(path.join(path.dirname(dest), 'evil.slp')));
});
