import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ERROR_CODES } from '../src/errors.js';

test('every error code is documented in docs/errors.md and every documented code exists', () => {
  const doc = readFileSync(new URL('../docs/errors.md', import.meta.url), 'utf8');
  const documented = new Set([...doc.matchAll(/^\|\s*`([A-Z0-9_]+)`\s*\|/gm)].map((m) => m[1]));
  const defined = new Set(Object.keys(ERROR_CODES));
  const undocumented = [...defined].filter((c) => !documented.has(c));
  const stale = [...documented].filter((c) => !defined.has(c as string));
  assert.deepEqual(undocumented, [], `codes missing from docs/errors.md: ${undocumented.join(', ')}`);
  assert.deepEqual(stale, [], `docs/errors.md lists codes that no longer exist: ${stale.join(', ')}`);
});

test('the exit code documented for each error matches the registry', () => {
  const doc = readFileSync(new URL('../docs/errors.md', import.meta.url), 'utf8');
  for (const m of doc.matchAll(/^\|\s*`([A-Z0-9_]+)`\s*\|\s*(\d)\s*\|/gm)) {
    const code = m[1] as keyof typeof ERROR_CODES;
    assert.equal(String(ERROR_CODES[code].exit), m[2], `exit code of ${code}`);
  }
});
