/** What the user sees on stderr without a terminal: readable lines, transfers every tenth of the way. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { createReporter, formatBytes } from '../../src/client/reporter.js';

function capture(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  let out = '';
  stream.setEncoding('utf8').on('data', (d: string) => (out += d));
  return { stream, text: () => out };
}

test('plain lines: status, warnings, sleap-nn lines tagged with the worker, no epoch duplicates', () => {
  const c = capture();
  const r = createReporter({ stream: c.stream, tty: false });
  r.info('transfer: shared storage (backend vast, user amick)');
  r.warn('worker gpu-1: labels missing');
  r.workerLine('gpu-1', 'stdout', 'Epoch 3/100: loss=0.1');
  r.epoch(3, 100);
  r.close();
  r.close();
  const lines = c.text().trimEnd().split('\n');
  assert.equal(lines.length, 3);
  assert.match(lines[0] ?? '', /^\[\d\d:\d\d:\d\d\] transfer: shared storage \(backend vast, user amick\)$/);
  assert.match(lines[1] ?? '', /^\[\d\d:\d\d:\d\d\] warning: worker gpu-1: labels missing$/);
  assert.equal(lines[2], '  gpu-1 | Epoch 3/100: loss=0.1');
});

test('plain transfer progress: one line per tenth reached, per transfer, never backwards', () => {
  const c = capture();
  const r = createReporter({ stream: c.stream, tty: false });
  const total = 1000;
  for (const bytes of [0, 50, 99, 100, 150, 420, 420, 990, 1000]) {
    r.transfer('upload', { transferId: 'a', name: 'labels.slp', bytes, total, rateBytesPerSec: 0 });
  }
  r.transfer('download', { transferId: 'b', name: 'run1', bytes: 500, total, rateBytesPerSec: 2048 });
  const percents = [...c.text().matchAll(/upload labels\.slp: (\d+)%/g)].map((m) => Number(m[1]));
  assert.deepEqual(percents, [0, 10, 40, 90, 100]);
  assert.match(c.text(), /download run1: 50% \(500 B of 1000 B, 2\.0 KiB\/s\)/);
});

test('byte sizes read naturally', () => {
  assert.deepEqual([0, 1023, 1024, 1536, 1024 ** 3, 5 * 1024 ** 4].map(formatBytes), ['0 B', '1023 B', '1.0 KiB', '1.5 KiB', '1.0 GiB', '5.0 TiB']);
});

test('on a terminal: bars for uploads and epochs, with status and sleap-nn lines printed above them', () => {
  const c = capture();
  Object.assign(c.stream, { isTTY: true, columns: 120 });
  const r = createReporter({ stream: c.stream });
  r.info('transfer: webrtc (reason: labels is not under any storage backend)');
  r.transfer('upload', { transferId: 'a', name: 'labels.slp', bytes: 512, total: 1024, rateBytesPerSec: 1024 });
  r.workerLine('gpu-1', 'stdout', 'Epoch 3/10: loss=0.2');
  r.epoch(3, 10);
  r.close();
  r.info('after the bars are gone');
  // eslint-disable-next-line no-control-regex
  const text = c.text().replace(/\u001b\[[0-9;?]*[A-Za-z]/g, '');
  assert.match(text, /transfer: webrtc \(reason: labels is not under any storage backend\)\n/);
  assert.match(text, / {2}gpu-1 \| Epoch 3\/10: loss=0\.2\n/);
  assert.match(text, /upload labels\.slp .*50% \| 512 B of 1\.0 KiB, 1\.0 KiB\/s/);
  assert.match(text, /training .*30% \| epoch 3\/10/);
  assert.match(text, /after the bars are gone\n$/);
  assert.ok(text.indexOf('transfer: webrtc') < text.indexOf('upload labels.slp'), 'a line written before any bar comes first');
});
