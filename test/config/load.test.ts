import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { ConfigError, ConfigNotFoundError } from '../../src/config/errors.js';
import { configSearchOrder, loadConfig, parseConfig } from '../../src/config/load.js';
import { LIMITS } from '../../src/limits.js';
import { createLogger } from '../../src/log.js';

const HOME = '/home/alice';
const parse = (text: string, env: NodeJS.ProcessEnv = {}) => parseConfig(text, '/etc/lab.toml', env, HOME);

/** The problems a text raises (fails the test if it raises none). */
function problemsOf(text: string, env: NodeJS.ProcessEnv = {}) {
  try {
    parse(text, env);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    return err.problems;
  }
  assert.fail(`expected problems for:\n${text}`);
}

test('an empty file gives every default, frozen', () => {
  const config = parse('');
  assert.deepEqual(config, {
    storage: {},
    signaling: { server_url: `http://${LIMITS.signalingDefaultHost}:${LIMITS.signalingDefaultPort}` },
    server: {
      host: '127.0.0.1',
      port: 8080,
      ping_interval_s: LIMITS.signalingPingIntervalMs / 1000,
      max_payload_bytes: LIMITS.signalingMaxPayloadBytes,
      room_idle_ttl_s: LIMITS.roomIdleTtlMs / 1000,
      store: 'memory',
      max_peers_per_room: LIMITS.maxPeersPerRoom,
      rooms_per_hour: LIMITS.roomCreatePerHour,
      trust_proxy: false,
    },
    ice: { servers: [] },
    worker: { sleap_nn: 'sleap-nn', max_concurrent_jobs: 1, shutdown_grace_s: 20, job_types: ['train', 'track'], cache_max_bytes: 100 * 1024 ** 3, results_keep_hours: 24 },
    config_file: '/etc/lab.toml',
    storage_origin: 'none',
  });
  assert.ok(Object.isFrozen(config));
  assert.ok(Object.isFrozen(config.server));
  assert.ok(Object.isFrozen(config.worker.job_types));
  assert.throws(() => {
    (config.server as { port: number }).port = 1;
  }, TypeError);
});

test('every key is read, ~ expands, base paths are normalised', () => {
  const config = parse(`
[storage.vast]
base_path = "/mnt/vast/"
type = "nfs"
description = "VAST"
user_subdir = "labs/alice"
[storage.home]
base_path = "~"
[storage.drive]
base_path = "~/Drive/Lab"
type = "google_shared_drive"
[signaling]
server_url = "wss://signal.example.org"
room_id = "lab-room"
token = "t0k"
[server]
host = "0.0.0.0"
port = 0
ping_interval_s = 2.5
max_payload_bytes = 4096
room_idle_ttl_s = 60
store = "redis://10.0.0.5:6379/2"
rooms_file = "/var/lib/sleap-rtc/rooms.json"
max_peers_per_room = 50
rooms_per_hour = 0
trust_proxy = true
[ice]
servers = [{ urls = ["stun:stun.example.org:3478"] }, { urls = ["turn:t.example.org"], username = "u", credential = "c" }]
[worker]
name = "gpu-7"
sleap_nn = "/opt/sleap/bin/sleap-nn"
max_concurrent_jobs = 2
shutdown_grace_s = 5
job_types = ["track"]
work_dir = "~/work"
`);
  assert.deepEqual(config.storage.vast, { base_path: '/mnt/vast', type: 'nfs', description: 'VAST', user_subdir: 'labs/alice' });
  assert.equal(config.storage.home?.base_path, HOME);
  assert.equal(config.storage.drive?.base_path, `${HOME}/Drive/Lab`);
  assert.equal(config.storage_origin, 'config');
  assert.deepEqual(config.signaling, { server_url: 'wss://signal.example.org', room_id: 'lab-room', token: 't0k' });
  assert.deepEqual(config.server, {
    host: '0.0.0.0',
    port: 0,
    ping_interval_s: 2.5,
    max_payload_bytes: 4096,
    room_idle_ttl_s: 60,
    store: 'redis://10.0.0.5:6379/2',
    rooms_file: '/var/lib/sleap-rtc/rooms.json',
    max_peers_per_room: 50,
    rooms_per_hour: 0,
    trust_proxy: true,
  });
  assert.equal(config.ice.servers.length, 2);
  assert.deepEqual(config.ice.servers[1], { urls: ['turn:t.example.org'], username: 'u', credential: 'c' });
  assert.deepEqual(config.worker, { name: 'gpu-7', sleap_nn: '/opt/sleap/bin/sleap-nn', max_concurrent_jobs: 2, shutdown_grace_s: 5, job_types: ['track'], work_dir: `${HOME}/work`, cache_max_bytes: 100 * 1024 ** 3, results_keep_hours: 24 });
});

/** One row per kind of mistake: the text, the key it must name, and what the sentence must say. */
const MISTAKES: [what: string, text: string, key: string, message: RegExp][] = [
  ['TOML syntax error', 'a = 1\n[storage.vast\nbase_path = "/x"\n', '', /TOML syntax error at line 2, column \d+/],
  ['unterminated string', '[server]\nhost = "abc\n', '', /TOML syntax error at line 2/],
  ['missing base_path', '[storage.vast]\ntype = "nfs"\n', 'storage.vast.base_path', /is required; add base_path = "\/mnt\/your-storage"/],
  ['relative base_path', '[storage.vast]\nbase_path = "data/x"\n', 'storage.vast.base_path', /^must be absolute, e.g. \/mnt\/vast; got 'data\/x'$/],
  ['~user base_path', '[storage.vast]\nbase_path = "~bob/x"\n', 'storage.vast.base_path', /must be absolute.*only "~" and "~\/\.\.\." are expanded/],
  ['empty base_path', '[storage.vast]\nbase_path = ""\n', 'storage.vast.base_path', /must not be empty/],
  ['base_path of the wrong type', '[storage.vast]\nbase_path = 5\n', 'storage.vast.base_path', /must be a string in quotes.*got number 5/],
  ['backend that is not a table', '[storage]\nvast = "/mnt/vast"\n', 'storage.vast', /must be a table/],
  ['misspelt key', '[storage.vast]\nbase_pth = "/mnt/vast"\nbase_path = "/mnt/vast"\n', 'storage.vast.base_pth', /unknown key 'base_pth'; did you mean 'base_path'\?/],
  ['unrelated unknown key', '[storage.vast]\nbase_path = "/x"\ncolour = "red"\n', 'storage.vast.colour', /allowed keys here: base_path, type, description, user_subdir/],
  ['unknown storage type', '[storage.vast]\nbase_path = "/x"\ntype = "nsf"\n', 'storage.vast.type', /must be one of "nfs", "local".*got the string 'nsf' \(did you mean "nfs"\?\)/],
  ['user_subdir with ..', '[storage.vast]\nbase_path = "/x"\nuser_subdir = "../bob"\n', 'storage.vast.user_subdir', /relative to base_path.*"\.\."/],
  ['absolute user_subdir', '[storage.vast]\nbase_path = "/x"\nuser_subdir = "/home/alice"\n', 'storage.vast.user_subdir', /absolute/],
  ['backend name with a space', '[storage."my vast"]\nbase_path = "/x"\n', 'storage."my vast"', /invalid backend name 'my vast'.*letters, digits/],
  ['backend name with a dot', '[storage."v.1"]\nbase_path = "/x"\n', 'storage."v.1"', /invalid backend name/],
  ['misspelt section', '[sever]\nport = 1\n', 'sever', /unknown section \[sever\]; did you mean \[server\]\?/],
  ['unrelated section', '[database]\nurl = "x"\n', 'database', /unknown section \[database\]; sections are \[storage\], \[signaling\], \[server\], \[ice\], \[worker\]/],
  ['top-level key', 'port = 8080\n', 'port', /unknown top-level key 'port' \(keys belong inside a \[section\]\)/],
  ['port as a string', '[server]\nport = "8080"\n', 'server.port', /must be a whole number; got the string '8080'/],
  ['port out of range', '[server]\nport = 70000\n', 'server.port', /must be at most 65535; got number 70000/],
  ['fractional port', '[server]\nport = 80.5\n', 'server.port', /whole number/],
  ['negative ping interval', '[server]\nping_interval_s = -1\n', 'server.ping_interval_s', /must be greater than 0/],
  ['bad server_url', '[signaling]\nserver_url = "signal.example.org"\n', 'signaling.server_url', /must be a URL starting with http:\/\//],
  ['empty room_id', '[signaling]\nroom_id = ""\n', 'signaling.room_id', /must not be empty/],
  ['empty token', '[signaling]\ntoken = ""\n', 'signaling.token', /remove the line/],
  ['ice urls not STUN/TURN', '[ice]\nservers = [{ urls = ["http://x"] }]\n', 'ice.servers[0].urls[0]', /STUN or TURN URL/],
  ['ice urls as a string', '[ice]\nservers = [{ urls = "stun:x" }]\n', 'ice.servers[0].urls', /must be a list in brackets/],
  ['ice server without urls', '[ice]\nservers = [{ username = "u" }]\n', 'ice.servers[0].urls', /is required; add urls = \["stun:/],
  ['ice key misspelt', '[ice]\nservers = [{ urls = ["stun:x"], credentail = "c" }]\n', 'ice.servers[0].credentail', /did you mean 'credential'\?/],
  ['zero concurrent jobs', '[worker]\nmax_concurrent_jobs = 0\n', 'worker.max_concurrent_jobs', /must be at least 1/],
  ['a negative shutdown grace', '[worker]\nshutdown_grace_s = -1\n', 'worker.shutdown_grace_s', /0/],
  ['unknown job type', '[worker]\njob_types = ["train", "trak"]\n', 'worker.job_types[1]', /did you mean "track"\?/],
  ['no job types', '[worker]\njob_types = []\n', 'worker.job_types', /must list at least 1 entry/],
  ['relative work_dir', '[worker]\nwork_dir = "stage"\n', 'worker.work_dir', /must be absolute, e.g. \/scratch\/sleap-rtc; got 'stage'/],
  ['section that is a value', 'server = 5\n', 'server', /must be a table/],
];

for (const [what, text, key, message] of MISTAKES) {
  test(`config problem: ${what} names ${key || 'the file'} and the fix`, () => {
    const problems = problemsOf(text);
    assert.equal(problems.length, 1, JSON.stringify(problems));
    const [p] = problems;
    assert.equal(p?.file, '/etc/lab.toml');
    assert.equal(p?.path, key);
    assert.match(p?.message ?? '', message);
  });
}

test('every problem in a file is reported at once, one per line of the message', () => {
  const text = `
[storage.vast]
base_pth = "/mnt/vast"
[storage.scratch]
base_path = "scratch"
[storage."bad name"]
base_path = "/x"
[server]
port = "80"
[sever]
[worker]
job_types = ["trian"]
`;
  let err: ConfigError | undefined;
  try {
    parse(text);
  } catch (e) {
    err = e as ConfigError;
  }
  assert.ok(err instanceof ConfigError);
  assert.equal(err.code, 'CONFIG_INVALID');
  assert.equal(err.exitCode, 2);
  assert.deepEqual(
    err.problems.map((p) => p.path).sort(),
    [
      'server.port',
      'sever',
      'storage."bad name"',
      'storage.scratch.base_path',
      'storage.vast.base_path',
      'storage.vast.base_pth',
      'worker.job_types[0]',
    ],
  );
  const lines = err.message.split('\n');
  assert.equal(lines[0], 'the configuration has 7 problems:');
  assert.equal(lines.length, 8);
  for (const line of lines.slice(1)) assert.match(line, /^ {2}- \/etc\/lab\.toml: \S/);
  assert.deepEqual(err.toJSON().details?.problems, err.problems);
});

test('SHARED_STORAGE_ROOT becomes backend "default" when the file has no storage sections', () => {
  const config = parse('[server]\nport = 9000\n', { SHARED_STORAGE_ROOT: '/srv/shared/' });
  assert.deepEqual(Object.keys(config.storage), ['default']);
  assert.equal(config.storage.default?.base_path, '/srv/shared');
  assert.equal(config.storage.default?.type, 'local');
  assert.equal(config.storage_origin, 'SHARED_STORAGE_ROOT');
  assert.equal(parse('', { SHARED_STORAGE_ROOT: '~/shared' }).storage.default?.base_path, `${HOME}/shared`);
  assert.equal(parse('[storage]\n', { SHARED_STORAGE_ROOT: '/srv' }).storage_origin, 'SHARED_STORAGE_ROOT');
});

test('SHARED_STORAGE_ROOT empty counts as unset', () => {
  const config = parse('', { SHARED_STORAGE_ROOT: '' });
  assert.deepEqual(config.storage, {});
  assert.equal(config.storage_origin, 'none');
});

test('a relative SHARED_STORAGE_ROOT is a problem naming the variable, reported with the file problems', () => {
  const problems = problemsOf('[sever]\n', { SHARED_STORAGE_ROOT: 'data/shared' });
  assert.deepEqual(
    problems.map((p) => [p.file, p.path]),
    [
      ['/etc/lab.toml', 'sever'],
      ['environment', 'SHARED_STORAGE_ROOT'],
    ],
  );
  assert.match(problems[1]?.message ?? '', /must be absolute.*got 'data\/shared'.*\[storage\.<name>\]/);
});

test('[storage.*] sections win over SHARED_STORAGE_ROOT, with one warning', () => {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      done();
    },
  });
  const logger = createLogger({ name: 'config', format: 'json', level: 'info', destination: sink });
  const config = parseConfig('[storage.vast]\nbase_path = "/mnt/vast"\n', '/etc/lab.toml', { SHARED_STORAGE_ROOT: 'relative/is/ignored/too' }, HOME, logger);
  assert.deepEqual(Object.keys(config.storage), ['vast']);
  assert.equal(config.storage_origin, 'config');
  assert.equal(lines.length, 1);
  const record = JSON.parse(lines[0] ?? '{}') as { level: number; msg: string };
  assert.equal(record.level, 40, 'logged as a warning');
  assert.match(record.msg, /SHARED_STORAGE_ROOT is set but \/etc\/lab\.toml defines \[storage\.\*\] sections; the variable is ignored/);
  // Invalid sections still count as sections: the variable is not consulted.
  const problems = problemsOf('[storage.vast]\nbase_pth = "/x"\n', { SHARED_STORAGE_ROOT: 'relative' });
  assert.ok(problems.every((p) => p.file === '/etc/lab.toml'));
});

test('config.example.toml is valid, and so is every commented-out setting in it', async () => {
  const file = new URL('../../config.example.toml', import.meta.url);
  const text = await readFile(file, 'utf8');
  const example = parseConfig(text, 'config.example.toml', {}, HOME);
  assert.deepEqual(Object.keys(example.storage), ['vast', 'scratch']);
  assert.equal(example.storage.vast?.type, 'nfs');
  // Uncomment every line that is a TOML setting, table header or array line, and parse again.
  const uncommented = text
    .split('\n')
    .map((l) => (/^# (\[|[a-z_]+ = |\s+\{|\])/.test(l) ? l.slice(2) : l))
    .join('\n');
  assert.notEqual(uncommented, text);
  const full = parseConfig(uncommented, 'config.example.toml (uncommented)', {}, HOME);
  const defaults = parse('');
  assert.deepEqual(full.server, defaults.server, 'the commented [server] values must be the defaults');
  assert.equal(full.signaling.server_url, defaults.signaling.server_url);
  assert.equal(full.worker.sleap_nn, defaults.worker.sleap_nn);
  assert.equal(full.worker.max_concurrent_jobs, defaults.worker.max_concurrent_jobs);
  assert.deepEqual(full.worker.job_types, defaults.worker.job_types);
  assert.deepEqual(Object.keys(full.storage), ['vast', 'scratch', 'lab_drive', 'dept_smb']);
  assert.equal(full.ice.servers.length, 2);
});

/** A temporary home and working directory, removed after the test. */
async function sandbox(t: { after: (fn: () => Promise<void>) => void }) {
  const root = await mkdtemp(path.join(os.tmpdir(), 'sleap-rtc-config-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  const home = path.join(root, 'home');
  const cwd = path.join(root, 'work');
  await mkdir(path.join(home, '.config', 'sleap-rtc'), { recursive: true });
  await mkdir(cwd);
  const write = async (file: string, port: number) => {
    await writeFile(file, `[server]\nport = ${port}\n`);
    return file;
  };
  return { root, home, cwd, write };
}

test('search order: --config, then SLEAP_RTC_CONFIG, then ./sleap-rtc.toml, then ~/.config/sleap-rtc/config.toml', async (t) => {
  const { root, home, cwd, write } = await sandbox(t);
  const homeFile = await write(path.join(home, '.config', 'sleap-rtc', 'config.toml'), 1004);
  const load = (opts: { configPath?: string; env?: NodeJS.ProcessEnv } = {}) => loadConfig({ env: {}, cwd, homeDir: home, ...opts });

  let c = await load();
  assert.equal(c.config_file, homeFile);
  assert.equal(c.server.port, 1004);

  const cwdFile = await write(path.join(cwd, 'sleap-rtc.toml'), 1003);
  c = await load();
  assert.equal(c.config_file, cwdFile);
  assert.equal(c.server.port, 1003);

  const envFile = await write(path.join(root, 'env.toml'), 1002);
  c = await load({ env: { SLEAP_RTC_CONFIG: envFile } });
  assert.equal(c.server.port, 1002);
  c = await load({ env: { SLEAP_RTC_CONFIG: '' } });
  assert.equal(c.server.port, 1003, 'an empty SLEAP_RTC_CONFIG is unset');

  await write(path.join(cwd, 'explicit.toml'), 1001);
  c = await load({ configPath: 'explicit.toml', env: { SLEAP_RTC_CONFIG: envFile } });
  assert.equal(c.config_file, path.join(cwd, 'explicit.toml'), 'a relative --config is resolved against cwd');
  assert.equal(c.server.port, 1001);

  assert.deepEqual(
    configSearchOrder({ configPath: 'explicit.toml', env: { SLEAP_RTC_CONFIG: '~/x.toml' }, cwd, homeDir: home }).map((o) => o.file),
    [path.join(cwd, 'explicit.toml'), path.join(home, 'x.toml'), cwdFile, homeFile],
  );
});

test('no config file anywhere means defaults, with config_file null', async (t) => {
  const { home, cwd } = await sandbox(t);
  const c = await loadConfig({ env: {}, cwd, homeDir: home });
  assert.equal(c.config_file, null);
  assert.equal(c.server.port, 8080);
  const compat = await loadConfig({ env: { SHARED_STORAGE_ROOT: '/srv/data' }, cwd, homeDir: home });
  assert.equal(compat.storage.default?.base_path, '/srv/data');
});

test('a missing --config or SLEAP_RTC_CONFIG file is CONFIG_NOT_FOUND, not a silent fall-back', async (t) => {
  const { home, cwd, write } = await sandbox(t);
  await write(path.join(cwd, 'sleap-rtc.toml'), 1003);
  await assert.rejects(loadConfig({ configPath: 'nope.toml', env: {}, cwd, homeDir: home }), (err: unknown) => {
    assert.ok(err instanceof ConfigNotFoundError);
    assert.equal(err.code, 'CONFIG_NOT_FOUND');
    assert.equal(err.exitCode, 2);
    assert.match(err.message, new RegExp(`${path.join(cwd, 'nope.toml')} \\(from --config\\) does not exist`));
    return true;
  });
  await assert.rejects(loadConfig({ env: { SLEAP_RTC_CONFIG: '/no/such.toml' }, cwd, homeDir: home }), (err: unknown) => {
    assert.ok(err instanceof ConfigNotFoundError);
    assert.match(err.message, /\/no\/such\.toml \(from SLEAP_RTC_CONFIG\)/);
    return true;
  });
});

test('a config path that is a folder, or unreadable, is a config problem naming it', async (t) => {
  const { root, home, cwd } = await sandbox(t);
  await assert.rejects(loadConfig({ configPath: root, env: {}, cwd, homeDir: home }), (err: unknown) => {
    assert.ok(err instanceof ConfigError);
    assert.equal(err.problems[0]?.file, root);
    assert.match(err.problems[0]?.message ?? '', /not a regular file/);
    return true;
  });
});

test('loadConfig reports the problems of the file it found, under that file name', async (t) => {
  const { home, cwd } = await sandbox(t);
  const file = path.join(cwd, 'sleap-rtc.toml');
  await writeFile(file, '[storage.vast]\nbase_path = "rel"\n');
  await assert.rejects(loadConfig({ env: {}, cwd, homeDir: home }), (err: unknown) => {
    assert.ok(err instanceof ConfigError);
    assert.deepEqual(err.problems.map((p) => [p.file, p.path]), [[file, 'storage.vast.base_path']]);
    return true;
  });
});
