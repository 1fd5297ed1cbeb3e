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
