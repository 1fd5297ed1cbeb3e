import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, writeFile, symlink, realpath, rm, readdir, open } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { checkRelativePath, confinePath, isInside, PathValidationError, type PathRule } from '../../src/storage/confine.js';

/*
 * Tree used by every test (created once, removed in `after`):
 *   root/base/inside/file.txt       root/outside/secret.txt
 *   root/base/link-inside -> inside            (relative, stays in)
 *   root/base/link-inside-abs -> <base>/inside (absolute, stays in)
 *   root/base/link-etc -> /etc
 *   root/base/link-sibling -> ../outside
 *   root/base/chain1 -> chain2 -> chain3 -> ../outside     (escaping chain)
 *   root/base/ok1 -> ok2 -> inside                          (chain that stays in)
 *   root/base/dangling-out -> ../outside/not-yet            (dangling, would create outside)
 *   root/base/dangling-in -> inside/not-yet                 (dangling, stays in)
 *   root/base/loop1 <-> loop2
 *   root/base/inside/up -> ..                               (points at base itself: fine)
 *   root/base/inside/up2 -> ../..                           (points at root: escapes)
 *   root/base-link -> base                                  (symlinked base)
 */
let root = '';
let base = '';
let realRoot = '';
let realBase = '';

before(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'sleap-rtc-confine-'));
  base = path.join(root, 'base');
  await mkdir(path.join(base, 'inside'), { recursive: true });
  await mkdir(path.join(root, 'outside'));
  await writeFile(path.join(base, 'inside', 'file.txt'), 'in');
  await writeFile(path.join(root, 'outside', 'secret.txt'), 'secret');
  await symlink('inside', path.join(base, 'link-inside'));
  await symlink(path.join(base, 'inside'), path.join(base, 'link-inside-abs'));
  await symlink('/etc', path.join(base, 'link-etc'));
  await symlink('../outside', path.join(base, 'link-sibling'));
  await symlink('chain2', path.join(base, 'chain1'));
  await symlink('chain3', path.join(base, 'chain2'));
  await symlink('../outside', path.join(base, 'chain3'));
  await symlink('ok2', path.join(base, 'ok1'));
  await symlink('inside', path.join(base, 'ok2'));
  await symlink('../outside/not-yet', path.join(base, 'dangling-out'));
  await symlink('inside/not-yet', path.join(base, 'dangling-in'));
  await symlink('loop2', path.join(base, 'loop1'));
  await symlink('loop1', path.join(base, 'loop2'));
  await symlink('..', path.join(base, 'inside', 'up'));
  await symlink('../..', path.join(base, 'inside', 'up2'));
  await symlink('base', path.join(root, 'base-link'));
  realRoot = await realpath(root);
  realBase = path.join(realRoot, 'base');
});

after(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

type Row = { input: unknown; rule: PathRule } | { input: string; ok: string };

const TABLE: Row[] = [
  // lexical attacks
  { input: '../../../etc/passwd', rule: 'dotdot' },
  { input: 'a/../../b', rule: 'dotdot' },
  { input: '..', rule: 'dotdot' },
  { input: 'a/..', rule: 'dotdot' },
  { input: 'inside/../..', rule: 'dotdot' },
  { input: '/etc/passwd', rule: 'absolute' },
  { input: '/', rule: 'absolute' },
  { input: '//server/share', rule: 'absolute' },
  { input: 'C:\\x', rule: 'absolute' },
  { input: 'c:/Windows', rule: 'absolute' },
  { input: 'a\\..\\b', rule: 'backslash' },
  { input: '..\\..\\etc', rule: 'backslash' },
  { input: 'a\0b', rule: 'nul' },
  { input: 'file.txt\0.slp', rule: 'nul' },
  { input: 'a//b', rule: 'empty_segment' },
  { input: 'a/', rule: 'empty_segment' },
  { input: './a', rule: 'dot_segment' },
  { input: 'a/./b', rule: 'dot_segment' },
  { input: '.', rule: 'dot_segment' },
  { input: '', rule: 'empty' },
  { input: 'x'.repeat(256), rule: 'too_long' },
  { input: 'é'.repeat(128), rule: 'too_long' }, // 256 UTF-8 bytes in one segment
  { input: 'a/'.repeat(2100) + 'a', rule: 'too_long' },
  { input: 42, rule: 'not_string' },
  { input: null, rule: 'not_string' },
  { input: ['a'], rule: 'not_string' },
  // through symbolic links planted in the base
  { input: 'link-etc', rule: 'escapes_base' },
  { input: 'link-etc/passwd', rule: 'escapes_base' },
  { input: 'link-etc/not/yet/created.txt', rule: 'escapes_base' },
  { input: 'link-sibling', rule: 'escapes_base' },
  { input: 'link-sibling/secret.txt', rule: 'escapes_base' },
  { input: 'link-sibling/new/deep/path.slp', rule: 'escapes_base' },
  { input: 'chain1/secret.txt', rule: 'escapes_base' },
  { input: 'chain1/new/deeper', rule: 'escapes_base' },
  { input: 'dangling-out', rule: 'escapes_base' },
  { input: 'dangling-out/child', rule: 'escapes_base' },
  { input: 'inside/up2', rule: 'escapes_base' },
  { input: 'inside/up2/outside/secret.txt', rule: 'escapes_base' },
  { input: 'loop1', rule: 'escapes_base' },
  { input: 'loop1/x', rule: 'escapes_base' },
  // accepted: harmless literal names and links that stay inside
  { input: 'inside/file.txt', ok: 'inside/file.txt' },
  { input: 'inside', ok: 'inside' },
  { input: 'link-inside/file.txt', ok: 'link-inside/file.txt' },
  { input: 'link-inside-abs/file.txt', ok: 'link-inside-abs/file.txt' },
  { input: 'ok1/file.txt', ok: 'ok1/file.txt' },
  { input: 'dangling-in', ok: 'dangling-in' },
  { input: 'inside/up/inside/file.txt', ok: 'inside/up/inside/file.txt' },
  { input: 'not/yet/created/deep.slp', ok: 'not/yet/created/deep.slp' },
  { input: 'inside/file.txt/below', ok: 'inside/file.txt/below' }, // ENOTDIR later, but inside
  { input: '%2e%2e', ok: '%2e%2e' }, // a literal name, never decoded
  { input: '%2e%2e/%2e%2e/etc/passwd', ok: '%2e%2e/%2e%2e/etc/passwd' },
  { input: '\uFF0E\uFF0E/x', ok: '\uFF0E\uFF0E/x' }, // fullwidth full stops
  { input: '\u2025', ok: '\u2025' }, // two-dot leader
  { input: 'a\u2215..\u2215b', ok: 'a\u2215..\u2215b' }, // division slash
  { input: '...', ok: '...' },
  { input: '..a/.b', ok: '..a/.b' },
  { input: 'x'.repeat(255), ok: 'x'.repeat(255) },
  { input: 'a/'.repeat(2000) + 'a', ok: 'a/'.repeat(2000) + 'a' },
];

for (const row of TABLE) {
  const label = typeof row.input === 'string' ? JSON.stringify(row.input).slice(0, 60) : String(row.input);
  if ('rule' in row) {
    test(`confinePath refuses ${label} (${row.rule})`, async () => {
      await assert.rejects(confinePath(base, row.input as string), (err: unknown) => {
        assert.ok(err instanceof PathValidationError, `expected PathValidationError, got ${String(err)}`);
        assert.equal(err.code, 'PATH_VALIDATION');
        assert.equal(err.rule, row.rule);
        assert.equal(err.details.rule, row.rule);
        assert.match(err.message, /refused/);
        return true;
      });
    });
  } else {
    test(`confinePath accepts ${label}`, async () => {
      assert.equal(await confinePath(base, row.input), path.join(realBase, row.ok));
    });
  }
}

test('checkRelativePath returns the segments and allows "" only when asked', () => {
  assert.deepEqual(checkRelativePath('a/b/c.slp'), ['a', 'b', 'c.slp']);
  assert.deepEqual(checkRelativePath('', { allowEmpty: true }), []);
  assert.throws(() => checkRelativePath(''), (e: unknown) => e instanceof PathValidationError && e.rule === 'empty');
  assert.throws(
    () => checkRelativePath('../x', { allowEmpty: true }),
    (e: unknown) => e instanceof PathValidationError && e.rule === 'dotdot',
  );
});

test('allowEmpty makes "" mean the real base itself', async () => {
  assert.equal(await confinePath(base, '', { allowEmpty: true }), realBase);
});

test('a symlinked base is judged by its real path, and results are built on it', async () => {
  const viaLink = path.join(root, 'base-link');
  assert.equal(await confinePath(viaLink, 'inside/file.txt'), path.join(realBase, 'inside/file.txt'));
  await assert.rejects(confinePath(viaLink, 'link-sibling/secret.txt'), { rule: 'escapes_base' });
});

test('a missing or non-directory base is refused with base_missing', async () => {
  for (const b of [path.join(root, 'no-such-dir'), path.join(base, 'inside', 'file.txt'), '']) {
    await assert.rejects(confinePath(b, 'x'), (e: unknown) => e instanceof PathValidationError && e.rule === 'base_missing');
  }
});

test('error details never echo raw control characters and stay bounded', async () => {
  const err = await confinePath(base, `a\0${'z'.repeat(5000)}`).catch((e: unknown) => e);
  assert.ok(err instanceof PathValidationError);
  assert.equal(err.rule, 'nul');
  assert.ok(!err.message.includes('\0'));
  assert.ok(err.message.length < 600);
  assert.ok(String(err.details.path).length < 300);
});

test('isInside judges already-absolute paths on real paths', async () => {
  const cases: [string, boolean][] = [
    [path.join(base, 'inside', 'file.txt'), true],
    [base, true],
    [path.join(base, 'not', 'yet'), true],
    [path.join(base, 'link-inside', 'file.txt'), true],
    [path.join(base, 'link-sibling', 'secret.txt'), false],
    [path.join(base, 'dangling-out'), false],
    [path.join(base, 'inside', '..', '..', 'outside'), false],
    [path.join(root, 'outside'), false],
    [root + path.sep + 'base-sibling-prefix', false], // "base" is a string prefix of "base-sibling..."
    ['/etc/passwd', false],
    [path.join(base, 'loop1'), false],
  ];
  for (const [candidate, expected] of cases) {
    assert.equal(await isInside(base, candidate), expected, candidate);
  }
  assert.equal(await isInside(path.join(root, 'base-link'), path.join(base, 'inside')), true);
  assert.equal(await isInside(path.join(root, 'missing'), path.join(root, 'missing', 'x')), false);
});

/** Every file name under `dir`, recursively, for spotting writes that escaped. */
async function listing(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true });
  return entries.map(String).sort();
}

test('property: no generated path is ever accepted outside the real base, even when created', async (t) => {
  // A separate tree whose links only point into `outside`, because accepted paths are really
  // created here: a confinement bug would show up as a new file under `outside`.
  const pRoot = await realpath(await mkdtemp(path.join(os.tmpdir(), 'sleap-rtc-confine-prop-')));
  t.after(() => rm(pRoot, { recursive: true, force: true }));
  const pBase = path.join(pRoot, 'base');
  const outside = path.join(pRoot, 'outside');
  await mkdir(path.join(pBase, 'd', 'e'), { recursive: true });
  await mkdir(path.join(outside, 'sub'), { recursive: true });
  await writeFile(path.join(outside, 'sub', 'keep'), '');
  await symlink('../outside', path.join(pBase, 'out'));
  await symlink(path.join(outside, 'sub'), path.join(pBase, 'd', 'outabs'));
  await symlink('../../outside/new', path.join(pBase, 'd', 'dangle'));
  await symlink('e', path.join(pBase, 'd', 'ine'));
  await symlink('../..', path.join(pBase, 'd', 'e', 'upup'));
  await symlink('..', path.join(pBase, 'd', 'up'));
  const before = await listing(outside);

  // Names (planted links above all) are weighted up so most runs pass the lexical rules and
  // exercise the symlink walk; the hostile tokens still appear in about a third of the segments.
  const token = fc.oneof(
    { arbitrary: fc.constantFrom('out', 'outabs', 'dangle', 'ine', 'upup', 'up'), weight: 4 },
    { arbitrary: fc.constantFrom('a', 'd', 'e', 'new', '%2e%2e', '\uFF0E\uFF0E'), weight: 3 },
    { arbitrary: fc.constantFrom('..', '.', '', '/', '\\', '\0', 'x\\y'), weight: 3 },
  );
  const arbPath = fc.tuple(fc.boolean(), fc.array(token, { minLength: 0, maxLength: 7 })).map(
    ([lead, parts]) => (lead ? '/' : '') + parts.join('/'),
  );
  await fc.assert(
    fc.asyncProperty(arbPath, async (input) => {
      let resolved: string;
      try {
        resolved = await confinePath(pBase, input);
      } catch (err) {
        assert.ok(err instanceof PathValidationError, `unexpected ${String(err)} for ${JSON.stringify(input)}`);
        return;
      }
      assert.ok(resolved === pBase || resolved.startsWith(pBase + path.sep), resolved);
      // Create it for real (as a folder chain plus a file), then ask the kernel where it went.
      try {
        await mkdir(path.dirname(resolved), { recursive: true });
        await (await open(resolved, 'a')).close();
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        // ENOTDIR/EISDIR/EEXIST: the name is taken by a file or folder inside the base; harmless.
        assert.ok(code === 'ENOTDIR' || code === 'EISDIR' || code === 'EEXIST', `${code} for ${resolved}`);
        return;
      }
      const real = await realpath(resolved);
      assert.ok(real === pBase || real.startsWith(pBase + path.sep), `${input} landed at ${real}`);
      assert.deepEqual(await listing(outside), before, `${JSON.stringify(input)} wrote outside the base`);
    }),
    // The tree changes as accepted paths are created, so shrinking would replay against a different
    // tree; report the first failing input as it was.
    { numRuns: 500, endOnFailure: true },
  );
});
