import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { GpuInfoSchema } from '../../src/protocol/signaling.js';
import { detectGpu, parseNvidiaSmiCsv } from '../../src/worker/gpu.js';
import { tempDir } from '../fixtures/fake-sleap-nn.js';

test('nvidia-smi CSV output becomes the advertised GPU facts', () => {
  const table: [string, string, unknown][] = [
    ['one GPU', 'NVIDIA A100-SXM4-80GB, 81920, 535.104.05\n', { name: 'NVIDIA A100-SXM4-80GB', count: 1, memory_mb: 81920, driver: '535.104.05' }],
    [
      'four identical GPUs',
      'NVIDIA RTX A6000, 49140, 550.54.15\nNVIDIA RTX A6000, 49140, 550.54.15\nNVIDIA RTX A6000, 49140, 550.54.15\nNVIDIA RTX A6000, 49140, 550.54.15\n',
      { name: 'NVIDIA RTX A6000', count: 4, memory_mb: 49140, driver: '550.54.15' },
    ],
    [
      'mixed GPUs: names joined, smallest memory',
      'NVIDIA GeForce RTX 4090, 24564, 560.35.03\r\nNVIDIA GeForce RTX 3090, 24576, 560.35.03\r\nNVIDIA T400, 2048, 560.35.03\r\n',
      { name: 'NVIDIA GeForce RTX 4090 + NVIDIA GeForce RTX 3090 + NVIDIA T400', count: 3, memory_mb: 2048, driver: '560.35.03' },
    ],
    ['memory not reported', 'NVIDIA GH200 480GB, [N/A], 565.57.01\n', { name: 'NVIDIA GH200 480GB', count: 1, driver: '565.57.01' }],
    ['odd spacing, no trailing newline', '  Tesla V100-SXM2-32GB ,32768 ,  470.57.02  ', { name: 'Tesla V100-SXM2-32GB', count: 1, memory_mb: 32768, driver: '470.57.02' }],
    ['a comma in the name', 'Weird, GPU, 1024, 1.2\n', { name: 'Weird, GPU', count: 1, memory_mb: 1024, driver: '1.2' }],
    ['empty output', '', undefined],
    ['driver error text', "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.\n", undefined],
    ['no devices line', 'No devices were found\n', undefined],
    ['a sentence with commas', 'Unable to determine the device handle for GPU0, 0000:3B:00.0, Unknown Error\n', undefined],
    ['driver not reported', 'NVIDIA L4, 23034, [N/A]\n', { name: 'NVIDIA L4', count: 1, memory_mb: 23034 }],
  ];
  for (const [name, text, expected] of table) {
    const info = parseNvidiaSmiCsv(text);
    assert.deepEqual(info, expected, name);
    if (info) assert.ok(GpuInfoSchema.safeParse(info).success, `${name}: fits the capabilities schema`);
  }
});

test('no nvidia-smi, or one that fails, means no GPU and no error', async (t) => {
  const root = await tempDir(t);
  assert.equal(await detectGpu({ executable: path.join(root, 'nvidia-smi') }), undefined);
  assert.equal(await detectGpu({ executable: 'nvidia-smi-not-installed-here' }), undefined);
  // A real program that rejects the query options and exits non-zero.
  assert.equal(await detectGpu({ executable: process.execPath }), undefined);
});
