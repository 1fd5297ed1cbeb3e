import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { LineSplitter, parseEpochProgress } from '../../src/worker/log-lines.js';

function split(chunks: readonly string[], max = 100): string[] {
  const lines: string[] = [];
  const s = new LineSplitter(max, (l) => lines.push(l));
  for (const c of chunks) s.push(c);
  s.end();
  return lines;
}

test('line endings: \\n, \\r\\n and progress-bar \\r redraws', () => {
  const table: [string[], string[]][] = [
    [['a\nb\n'], ['a', 'b']],
    [['a\r\nb\r\n'], ['a', 'b']],
    [['a\r', '\nb'], ['a', 'b']],
    [['10%\r20%\r30%\n'], ['10%', '20%', '30%']],
    [['\r10%|#  |\r20%|## |'], ['10%|#  |', '20%|## |']],
    [['no newline at end'], ['no newline at end']],
    [['x\n\ny\n'], ['x', '', 'y']],
    [['', 'a', '', 'b\n'], ['ab']],
    [[], []],
  ];
  for (const [chunks, expected] of table) assert.deepEqual(split(chunks), expected, JSON.stringify(chunks));
});

test('ANSI colour and cursor escapes are removed', () => {
  assert.deepEqual(split(['\u001b[32mEpoch 3/10\u001b[0m \u001b[2K done\n']), ['Epoch 3/10  done']);
});

test('a long line is cut to the bound and the rest dropped as it streams', () => {
  const lines = split(['x'.repeat(50), 'y'.repeat(10_000), '\nnext\n'], 40);
  assert.equal(lines.length, 2);
  assert.ok((lines[0] ?? '').length <= 40);
  assert.match(lines[0] ?? '', /^x+ …\[truncated\]$/);
  assert.equal(lines[1], 'next');
  const huge = split(['z'.repeat(1_000_000)], 40);
  assert.equal(huge.length, 1);
  assert.ok((huge[0] ?? '').length <= 40);
});

test('property: how the text is chunked never changes the lines', () => {
  fc.assert(
    fc.property(
      fc.string({ unit: fc.constantFrom('a', 'b', '\n', '\r', ' ', '\u001b', '[', '3', 'm'), maxLength: 200 }),
      fc.array(fc.nat(200), { maxLength: 10 }),
      (text, cuts) => {
        const points = [...new Set(cuts.map((c) => c % (text.length + 1)))].sort((a, b) => a - b);
        const chunks: string[] = [];
        let prev = 0;
        for (const p of points) {
          chunks.push(text.slice(prev, p));
          prev = p;
        }
        chunks.push(text.slice(prev));
        assert.deepEqual(split(chunks, 30), split([text], 30));
        for (const l of split(chunks, 30)) assert.ok(l.length <= 30);
      },
    ),
  );
});

test('epoch progress is read from "Epoch N/M" and nothing else', () => {
  const table: [string, { epoch: number; totalEpochs: number } | undefined][] = [
    ['Epoch 3/100', { epoch: 3, totalEpochs: 100 }],
    ['Epoch 3/100: train_loss=0.2', { epoch: 3, totalEpochs: 100 }],
    ['Epoch 0/99 ━━━━━━━━ 12/50 0:00:03', { epoch: 0, totalEpochs: 99 }],
    ['2025-01-01 | INFO | Epoch 12 / 40', { epoch: 12, totalEpochs: 40 }],
    ['Epoch 100/100', { epoch: 100, totalEpochs: 100 }],
    ['Epoch 5/3', undefined],
    ['Epoch 1/0', undefined],
    ['epoch 3/100', undefined],
    ['MyEpoch 3/100', undefined],
    ['Epoch 3', undefined],
    ['Batch 3/100', undefined],
    ['', undefined],
  ];
  for (const [line, expected] of table) assert.deepEqual(parseEpochProgress(line), expected, line);
});
