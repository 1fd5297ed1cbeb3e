import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, realpath, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCli, type CliResult } from '../../helpers/cli.js';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));

/*
 * One sandbox for the file: a fake home, a working directory and the storage folders the rewritten
 * example points at. The CLI's loader is an absolute path, so any working directory will do.
 */
let root = '';
let home = '';
let cwd = '';
let vast = '';

before(async () => {
  root = await realpath(await mkdtemp(path.join(os.tmpdir(), 'sleap-rtc-cli-config-')));
  home = path.join(root, 'home');
  cwd = path.join(root, 'work');
  vast = path.join(root, 'mnt', 'vast');
  await mkdir(home);
  await mkdir(cwd);
  await mkdir(vast, { recursive: true });
});

after(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

function cli(args: string[], env: NodeJS.ProcessEnv = {}, dir = cwd): Promise<CliResult> {
  return runCli(['config', 'check', ...args], { cwd: dir, env: { HOME: home, SHARED_STORAGE_ROOT: '', SLEAP_RTC_LOG_LEVEL: 'warn', ...env } });
}

async function writeConfig(name: string, text: string): Promise<string> {
  const file = path.join(root, name);
  await writeFile(file, text);
  return file;
}

/** config.example.toml with /mnt/vast pointed at a real folder and /scratch at a missing one. */
async function rewrittenExample(): Promise<string> {
  const text = await readFile(path.join(REPO, 'config.example.toml'), 'utf8');
  const rewritten = text.replaceAll('"/mnt/vast"', JSON.stringify(vast)).replaceAll('"/scratch"', JSON.stringify(path.join(root, 'no-scratch')));
  assert.notEqual(rewritten, text);
  return writeConfig('example.toml', rewritten);
}

test('config check on the example: each backend with its path, type and health; exit 0', async () => {
  const file = await rewrittenExample();
  const r = await cli(['--config', file]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`^config file: ${file}$`, 'm'));
  assert.match(r.stdout, new RegExp(`^  vast +${vast} +\\(nfs\\) +ok$`, 'm'));
  assert.match(r.stdout, new RegExp(`^  scratch +${path.join(root, 'no-scratch')} +\\(local\\) +missing: directory does not exist$`, 'm'));
  assert.match(r.stdout, /user folder: alice/);
  assert.match(r.stdout, /configuration is valid; 1 backend is not usable as is/);
});

test('config check --json prints one object with the same facts', async () => {
  const file = await rewrittenExample();
  const r = await cli(['--config', file, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const report = JSON.parse(r.stdout) as {
    config_file: string;
    valid: boolean;
    problems: unknown[];
    backends: { name: string; base_path: string; type: string; description: string; user_subdir: string | null; health: Record<string, unknown> }[];
  };
  assert.equal(report.config_file, file);
  assert.equal(report.valid, true);
  assert.deepEqual(report.problems, []);
  assert.deepEqual(
    report.backends.map((b) => [b.name, b.base_path, b.type, b.user_subdir]),
    [
      ['vast', vast, 'nfs', 'alice'],
      ['scratch', path.join(root, 'no-scratch'), 'local', null],
    ],
  );
  assert.deepEqual(report.backends[0]?.health, { exists: true, isDirectory: true, readable: true, writable: true });
  assert.equal(report.backends[1]?.health.exists, false);
  assert.match(String(report.backends[0]?.description), /VAST/);
});

const BROKEN: [what: string, text: string, expected: RegExp][] = [
  ['syntax error', '[storage.vast\nbase_path = "/x"\n', /TOML syntax error at line 1/],
  ['missing base_path', '[storage.vast]\ntype = "nfs"\n', /storage\.vast\.base_path: is required; add base_path = /],
  ['relative base_path', '[storage.vast]\nbase_path = "data/x"\n', /storage\.vast\.base_path: must be absolute, e.g. \/mnt\/vast; got 'data\/x'/],
  ['wrong type', '[server]\nport = "80"\n', /server\.port: must be a whole number; got the string '80'/],
  ['misspelt key', '[storage.vast]\nbase_pth = "/x"\nbase_path = "/x"\n', /storage\.vast\.base_pth: unknown key 'base_pth'; did you mean 'base_path'\?/],
  ['bad backend name', '[storage."v a s t"]\nbase_path = "/x"\n', /storage\."v a s t": invalid backend name/],
  ['unknown section', '[sever]\n', /sever: unknown section \[sever\]; did you mean \[server\]\?/],
];

for (const [what, text, expected] of BROKEN) {
  test(`config check on a file with a ${what}: exit 2, CONFIG_INVALID, names file, key and fix`, async () => {
    const file = await writeConfig(`broken-${what.replaceAll(' ', '-')}.toml`, text);
    const r = await cli(['--config', file]);
    assert.equal(r.code, 2);
    assert.match(r.stdout, new RegExp(`config file: ${file}`));
    assert.match(r.stderr, /error \[CONFIG_INVALID\]: the configuration has 1 problem:/);
    assert.match(r.stderr, new RegExp(`- ${file}: `));
    assert.match(r.stderr, expected);
  });
}

test('config check lists every problem of a file with several, in text and in --json', async () => {
  const file = await writeConfig('several.toml', '[storage.vast]\nbase_pth = "/x"\n[storage.s]\nbase_path = "rel"\n[sever]\n[server]\nport = 99999\n');
  const text = await cli(['--config', file]);
  assert.equal(text.code, 2);
  assert.match(text.stderr, /the configuration has 5 problems:/);
  assert.equal(text.stderr.split('\n').filter((l) => l.startsWith(`  - ${file}: `)).length, 5);

  const json = await cli(['--config', file, '--json']);
  assert.equal(json.code, 2);
  const report = JSON.parse(json.stdout) as { config_file: string; valid: boolean; problems: { file: string; path: string; message: string }[] };
  assert.equal(report.valid, false);
  assert.equal(report.config_file, file);
  assert.deepEqual(report.problems.map((p) => p.path).sort(), ['server.port', 'sever', 'storage.s.base_path', 'storage.vast.base_path', 'storage.vast.base_pth']);
});

test('config check --config with a missing file: exit 2, CONFIG_NOT_FOUND, says what to do', async () => {
  const missing = path.join(root, 'nope.toml');
  const r = await cli(['--config', missing]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, new RegExp(`error \\[CONFIG_NOT_FOUND\\]: config file ${missing} \\(from --config\\) does not exist; check the path, or leave --config out`));
  const json = await cli(['--config', missing, '--json']);
  assert.equal(json.code, 2);
  const report = JSON.parse(json.stdout) as { valid: boolean; problems: { message: string }[] };
  assert.equal(report.valid, false);
  assert.match(report.problems[0]?.message ?? '', /does not exist/);
});

test('SHARED_STORAGE_ROOT alone gives a "default" backend', async () => {
  const r = await cli([], { SHARED_STORAGE_ROOT: vast });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /no config file found; using defaults/);
  assert.match(r.stdout, /storage backends \(from SHARED_STORAGE_ROOT\):/);
  assert.match(r.stdout, new RegExp(`^  default +${vast} +\\(local\\) +ok$`, 'm'));
});

test('SHARED_STORAGE_ROOT is ignored, with a warning, when the file has [storage.*]', async () => {
  const file = await writeConfig('with-storage.toml', `[storage.vast]\nbase_path = ${JSON.stringify(vast)}\n`);
  const r = await cli(['--config', file, '--json'], { SHARED_STORAGE_ROOT: '/somewhere/else' });
  assert.equal(r.code, 0, r.stderr);
  const report = JSON.parse(r.stdout) as { backends: { name: string }[] };
  assert.deepEqual(report.backends.map((b) => b.name), ['vast']);
  assert.match(r.stderr, /SHARED_STORAGE_ROOT is set but .* defines \[storage\.\*\] sections; the variable is ignored/);
});

test('a relative SHARED_STORAGE_ROOT is a configuration problem naming the variable', async () => {
  const r = await cli([], { SHARED_STORAGE_ROOT: 'data/shared' });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /environment: SHARED_STORAGE_ROOT: must be absolute/);
});

test('search order: ./sleap-rtc.toml is found, SLEAP_RTC_CONFIG beats it, --config beats both', async () => {
  const dir = path.join(root, 'search');
  await mkdir(dir);
  const none = await cli(['--json'], {}, dir);
  assert.equal((JSON.parse(none.stdout) as { config_file: unknown }).config_file, null);
  const plain = await cli([], {}, dir);
  assert.match(plain.stdout, /no config file found; using defaults/);
  assert.match(plain.stdout, new RegExp(`\\./sleap-rtc\\.toml +${path.join(dir, 'sleap-rtc.toml')}`));
  assert.match(plain.stdout, new RegExp(`~/\\.config/sleap-rtc/config\\.toml +${path.join(home, '.config/sleap-rtc/config.toml')}`));

  const inCwd = path.join(dir, 'sleap-rtc.toml');
  await writeFile(inCwd, '');
  const fromEnv = await writeConfig('from-env.toml', '');
  const explicit = await writeConfig('explicit.toml', '');
  const fileOf = async (args: string[], env: NodeJS.ProcessEnv = {}) => {
    const r = await cli([...args, '--json'], env, dir);
    assert.equal(r.code, 0, r.stderr);
    return (JSON.parse(r.stdout) as { config_file: string }).config_file;
  };
  assert.equal(await fileOf([]), inCwd);
  assert.equal(await fileOf([], { SLEAP_RTC_CONFIG: fromEnv }), fromEnv);
  assert.equal(await fileOf(['--config', explicit], { SLEAP_RTC_CONFIG: fromEnv }), explicit);
  const missingEnv = await cli([], { SLEAP_RTC_CONFIG: path.join(root, 'gone.toml') }, dir);
  assert.equal(missingEnv.code, 2);
  assert.match(missingEnv.stderr, /CONFIG_NOT_FOUND.*from SLEAP_RTC_CONFIG/);
});
