// Runs every test/**/*.test.ts through node's own test runner, TypeScript loaded by scripts/ts-loader.mjs.
// Node 20 does not expand globs for --test, so the file list is built here.
// Usage: node scripts/run-tests.js [path-prefix ...]   (e.g. test/storage)
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

function collect(dir, out) {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (name === 'fixtures' || name === 'node_modules') continue;
    if (statSync(p).isDirectory()) collect(p, out);
    else if (name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

const prefixes = process.argv.slice(2);
const all = collect('test', []);
const files = prefixes.length ? all.filter((f) => prefixes.some((p) => f.startsWith(p))) : all;
if (files.length === 0) {
  console.error(`no test files match ${prefixes.join(' ')}`);
  process.exit(2);
}
// Tests run the compiled CLI (dist/), as users do: bring it up to date with src/ first. The build
// is incremental, so with nothing changed since `npm ci` built it this takes a few seconds.
const build = spawnSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
if (build.status !== 0) {
  console.error('the build failed (tsc -p tsconfig.build.json): the tests run the compiled CLI, so fix the errors above first');
  process.exit(1);
}

const concurrency = process.env.TEST_CONCURRENCY ?? '2';
const r = spawnSync(
  process.execPath,
  [
    '--import',
    './scripts/ts-loader.mjs',
    '--test',
    `--test-concurrency=${concurrency}`,
    // Releases node-datachannel after each file's last test so its process can exit.
    '--import',
    './test/setup.ts',
    // A test that never settles fails after this instead of hanging the run (and CI).
    `--test-timeout=${process.env.TEST_TIMEOUT_MS ?? '600000'}`,
    '--test-reporter=spec',
    ...files,
  ],
  // The whole run is bounded too: a process that never exits fails the run instead of hanging CI.
  // (--test-force-exit would bound it as well, but it can drop a file's last results unreported.)
  { stdio: 'inherit', timeout: Number(process.env.TEST_RUN_TIMEOUT_MS ?? 60 * 60 * 1000), killSignal: 'SIGKILL' },
);
if (r.error) console.error(`test run stopped: ${r.error.message}`);
process.exit(r.status ?? 1);
