import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parsePythonJson, stringifyPythonJson } from '../../src/slp/json.js';

test('property: any JSON value survives parse and stringify unchanged', () => {
  fc.assert(
    fc.property(fc.jsonValue(), (v) => {
      const text = JSON.stringify(v);
      assert.deepEqual(parsePythonJson(text), JSON.parse(text));
      assert.equal(stringifyPythonJson(parsePythonJson(text)), text);
    }),
  );
});

test("property: Python's NaN, Infinity and -Infinity tokens come back where they were, strings untouched", () => {
  const special = fc.constantFrom('NaN', 'Infinity', '-Infinity');
  fc.assert(
    fc.property(fc.array(fc.oneof(special, fc.string().map((s) => JSON.stringify(s)), fc.integer().map(String)), { maxLength: 8 }), (items) => {
      const text = `[${items.join(',')}]`;
      const isSpecial = (i: string) => ['NaN', 'Infinity', '-Infinity'].includes(i);
      const expected = `[${items.map((i) => (isSpecial(i) ? i : JSON.stringify(JSON.parse(i)))).join(',')}]`;
      assert.equal(stringifyPythonJson(parsePythonJson(text)), expected);
    }),
  );
});

test('text that is not JSON is still refused', () => {
  for (const bad of ['{', 'NaN NaN', '{"a": nan}', "{'a': 1}", '']) assert.throws(() => parsePythonJson(bad), SyntaxError, bad);
});
