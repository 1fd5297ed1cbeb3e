import { test } from 'node:test';
import assert from 'node:assert/strict';
import { didYouMean, editDistance } from '../../src/config/suggest.js';

test('editDistance counts insertions, deletions, substitutions and swaps as one edit each', () => {
  const cases: [string, string, number][] = [
    ['', '', 0],
    ['base_path', 'base_path', 0],
    ['base_pth', 'base_path', 1],
    ['base_ptah', 'base_path', 1],
    ['basepath', 'base_path', 1],
    ['bsae_path', 'base_path', 1],
    ['', 'port', 4],
    ['sever', 'server', 1],
    ['kitten', 'sitting', 3],
  ];
  for (const [a, b, d] of cases) {
    assert.equal(editDistance(a, b), d, `${a} -> ${b}`);
    assert.equal(editDistance(b, a), d, `${b} -> ${a}`);
  }
});

test('didYouMean suggests close keys and stays quiet for unrelated words', () => {
  const keys = ['base_path', 'type', 'description', 'user_subdir'];
  assert.equal(didYouMean('base_pth', keys), 'base_path');
  assert.equal(didYouMean('BASE_PATH', keys), 'base_path');
  assert.equal(didYouMean('typ', keys), 'type');
  assert.equal(didYouMean('descripton', keys), 'description');
  assert.equal(didYouMean('usersubdir', keys), 'user_subdir');
  assert.equal(didYouMean('colour', keys), undefined);
  assert.equal(didYouMean('x', keys), undefined);
  assert.equal(didYouMean('anything', []), undefined);
});
