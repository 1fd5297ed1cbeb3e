import { test } from 'node:test';
import assert from 'node:assert/strict';
import { jsonDepthExceeds } from '../../src/signaling/json-depth.js';

// [text, limit, exceeds]
const CASES: [string, number, boolean][] = [
  ['{}', 1, false],
  ['{}', 0, true],
  ['{"a":[1,{"b":2}]}', 3, false],
  ['{"a":[1,{"b":2}]}', 2, true],
  ['[[[]]]', 3, false],
  ['[[[]]]', 2, true],
  // Brackets inside strings do not count, including after escaped quotes and backslashes.
  ['{"a":"[[[[[[[["}', 1, false],
  ['{"a":"\\"[[[[[["}', 1, false],
  ['{"a":"\\\\","b":"[[[["}', 1, false],
  ['{"a":"\\\\"}[[', 1, true],
  // Siblings do not add up.
  ['[[],[],[],[],[]]', 2, false],
  ['', 0, false],
];

for (const [text, limit, exceeds] of CASES) {
  test(`json depth: ${JSON.stringify(text)} with limit ${limit} -> ${exceeds}`, () => {
    assert.equal(jsonDepthExceeds(Buffer.from(text), limit), exceeds);
  });
}

test('json depth: agrees with a parse-based count on generated nesting', () => {
  for (let depth = 0; depth < 100; depth += 7) {
    const text = `${'{"k":['.repeat(depth)}"]}"${']}'.repeat(depth)}`;
    JSON.parse(text);
    assert.equal(jsonDepthExceeds(Buffer.from(text), depth * 2), false, `depth ${depth}`);
    if (depth > 0) assert.equal(jsonDepthExceeds(Buffer.from(text), depth * 2 - 1), true, `depth ${depth}`);
  }
});
