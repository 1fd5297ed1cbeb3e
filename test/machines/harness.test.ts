/**
 * The simulated-machine harness itself: separate filesystems, separate network stacks, WebRTC across
 * them, and nothing left behind. Needs root (see docs/testing.md); skipped with the reason otherwise,
 * and a failure instead of a skip when SLEAP_RTC_REQUIRE_MACHINES=1 (CI).
 */
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  cleanupStaleMachines,
  createNetwork,
  machine,
  machinesSkipReason,
  SIM_SUBNET,
  type SimNetwork,
} from '../helpers/machines.js';
import { runTool } from '../helpers/machines-exec.js';
import { exited, jsonLines } from '../helpers/machines-io.js';
import { deleteNamespace, isRunning } from '../helpers/machines-network.js';
import { TS_LOADER } from '../helpers/cli.js';

const RTC_PEER = 'test/helpers/machines-rtc-peer.ts';
const CLIENT_PATH = '/Volumes/talmo';
const WORKER_PATH = '/home/jovyan/vast';

const skip = await machinesSkipReason();
/** Each test is skipped on its own (so the run's summary counts them) and can never hang the run. */
const simTest = (name: string, fn: (t: TestContext) => Promise<void>): void => {
  test(name, { skip, timeout: 120_000 }, fn);
};

function tempDir(t: { after: (fn: () => void) => void }, label: string): string {
  const dir = mkdtempSync(join(tmpdir(), `sleap-rtc-${label}-`));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function network(t: { after: (fn: () => Promise<void>) => void }, hosts: string[]): Promise<SimNetwork> {
  const net = await createNetwork(hosts);
  t.after(() => net.destroy());
  return net;
}

async function netnsNames(): Promise<string[]> {
  const r = await runTool('ip', ['netns', 'list']);
  return r.stdout.split('\n').map((l) => l.split(' ')[0] ?? '').filter(Boolean);
}

async function rootLinks(): Promise<string[]> {
  const r = await runTool('ip', ['-o', 'link', 'show']);
  return r.stdout.split('\n').map((l) => l.split(':')[1]?.trim() ?? '').filter(Boolean).sort();
}

describe('input checks (no root needed)', () => {
  const badHosts: [string, string[]][] = [
    ['no hosts', []],
    ['empty name', ['']],
    ['upper case', ['Client']],
    ['underscore (reserved for the switch)', ['a_b']],
    ['hyphen', ['gpu-1']],
    ['leading digit', ['1worker']],
    ['too long', ['w'.repeat(13)]],
    ['duplicate', ['client', 'client']],
    ['shell metacharacters', ['a;rm']],
  ];
  for (const [label, hosts] of badHosts) {
    test(`createNetwork rejects host names: ${label}`, async () => {
      await assert.rejects(createNetwork(hosts), /host|hosts/);
    });
  }
});

describe('simulated machines', () => {
  before(async () => {
    if (skip !== false) return;
    // Leftovers of earlier crashed runs (dead creator pid only; concurrent runs are untouched).
    await cleanupStaleMachines();
  });

  simTest('two machines see one folder at two different absolute paths', async (t) => {
    const shared = tempDir(t, 'shared');
    const hostHad = { volumes: existsSync('/Volumes'), jovyan: existsSync('/home/jovyan') };
    const net = await network(t, ['client', 'worker']);
    // The host path of the folder is hidden too, so neither machine can reach it by accident.
    const client = machine(net, 'client', [{ source: shared, target: CLIENT_PATH }], { hide: [shared] });
    const worker = machine(net, 'worker', [{ source: shared, target: WORKER_PATH }], { hide: [shared] });

    const write = await client.run(process.execPath, [
      '-e',
      `require('fs').writeFileSync('${CLIENT_PATH}/labels.slp', 'frames 0-99 from ' + require('os').hostname())`,
    ]);
    assert.equal(write.code, 0, write.stderr);

    const read = await worker.run('cat', [`${WORKER_PATH}/labels.slp`]);
    assert.equal(read.code, 0, read.stderr);
    assert.equal(read.stdout, 'frames 0-99 from client');
    assert.equal(readFileSync(join(shared, 'labels.slp'), 'utf8'), 'frames 0-99 from client');

    // Each machine sees only its own path; the host sees neither and gained no directories.
    const views: [typeof client, string, boolean][] = [
      [client, `${CLIENT_PATH}/labels.slp`, true],
      [client, `${WORKER_PATH}/labels.slp`, false],
      [client, `${shared}/labels.slp`, false],
      [worker, `${WORKER_PATH}/labels.slp`, true],
      [worker, `${CLIENT_PATH}/labels.slp`, false],
      [worker, `${shared}/labels.slp`, false],
    ];
    for (const [m, path, visible] of views) {
      const r = await m.run('test', ['-e', path]);
      assert.equal(r.code === 0, visible, `${m.host} ${visible ? 'should' : 'should not'} see ${path}`);
    }
    assert.equal(existsSync(`${CLIENT_PATH}/labels.slp`), false);
    assert.equal(existsSync(`${WORKER_PATH}/labels.slp`), false);
    assert.equal(existsSync('/Volumes'), hostHad.volumes);
    assert.equal(existsSync('/home/jovyan'), hostHad.jovyan);
  });

  simTest('a read-only bind refuses writes; other binds stay writable', async (t) => {
    const data = tempDir(t, 'ro');
    const scratch = tempDir(t, 'rw');
    writeFileSync(join(data, 'video.mp4'), 'not really a video');
    const net = await network(t, ['worker']);
    const worker = machine(net, 'worker', [
      { source: data, target: '/mnt/lab/data', readOnly: true },
      { source: scratch, target: '/scratch/job' },
    ]);
    const ro = await worker.run('sh', ['-c', 'echo x > /mnt/lab/data/new']);
    assert.notEqual(ro.code, 0);
    assert.match(ro.stderr, /Read-only file system/);
    const rw = await worker.run('sh', ['-c', 'cat /mnt/lab/data/video.mp4 > /scratch/job/copy']);
    assert.equal(rw.code, 0, rw.stderr);
    assert.equal(readFileSync(join(scratch, 'copy'), 'utf8'), 'not really a video');
    assert.equal(existsSync(join(data, 'new')), false);
  });

  simTest('bad binds and hidden paths are refused before anything runs', async (t) => {
    const src = tempDir(t, 'src');
    const link = join(tempDir(t, 'link'), 'to-src');
    symlinkSync(src, link);
    const file = join(src, 'plain');
    writeFileSync(file, '');
    const net = await network(t, ['worker']);
    const cases: [string, Parameters<typeof machine>[2], Parameters<typeof machine>[3], RegExp][] = [
      ['relative target', [{ source: src, target: 'Volumes/talmo' }], {}, /absolute/],
      ['dot-dot target', [{ source: src, target: '/Volumes/../etc' }], {}, /normalised/],
      ['root target', [{ source: src, target: '/' }], {}, /absolute/],
      ['trailing slash', [{ source: src, target: '/Volumes/talmo/' }], {}, /normalised|absolute/],
      ['space in target', [{ source: src, target: '/Volumes/my lab' }], {}, /A-Za-z0-9/],
      ['newline in target', [{ source: src, target: '/Volumes/a\nb' }], {}, /A-Za-z0-9/],
      ['kernel filesystem', [{ source: src, target: '/proc/lab' }], {}, /under \/proc/],
      ['netns registry', [{ source: src, target: '/run/netns/x' }], {}, /under \/run/],
      ['through a host symlink', [{ source: src, target: `${link}/x` }], {}, /symlink/],
      ['onto a host file', [{ source: src, target: `${file}/x` }], {}, /not a directory/],
      ['missing source', [{ source: join(src, 'nope'), target: '/Volumes/x' }], {}, /existing absolute directory/],
      ['relative source', [{ source: 'shared', target: '/Volumes/x' }], {}, /existing absolute directory/],
      [
        'nested targets',
        [
          { source: src, target: '/Volumes/talmo' },
          { source: src, target: '/Volumes/talmo/sub' },
        ],
        {},
        /may not nest/,
      ],
      ['hidden path missing', [], { hide: ['/no/such/dir'] }, /existing directory/],
      ['hidden kernel filesystem', [], { hide: ['/sys'] }, /under \/sys/],
    ];
    for (const [label, binds, opts, expected] of cases) {
      assert.throws(() => machine(net, 'worker', binds, opts), expected, label);
    }
    assert.throws(() => machine(net, 'nobody'), /no host "nobody"/);
  });

  simTest('a machine process is the real node process, with tsx, its own hostname and a minimal env', async (t) => {
    const dir = tempDir(t, 'script');
    const script = join(dir, 'probe.ts');
    // Type annotations prove tsx is loaded; the interval keeps it alive until killed.
    writeFileSync(
      script,
      [
        "import { hostname } from 'node:os';",
        'const info: Record<string, unknown> = { pid: process.pid, hostname: hostname(), cwd: process.cwd(), env: process.env };',
        'console.log(JSON.stringify(info));',
        'setInterval(() => undefined, 1000);',
      ].join('\n'),
    );
    const net = await network(t, ['client']);
    const client = machine(net, 'client');
    const child = client.spawnNode(script, [], { cwd: dir, env: { SLEAP_RTC_ROLE: 'client' } });
    const info = await jsonLines(child).next();
    assert.equal(info.pid, child.pid);
    assert.equal(info.hostname, 'client');
    assert.equal(info.cwd, dir);
    const env = info.env as Record<string, string>;
    assert.deepEqual(Object.keys(env).sort(), ['HOME', 'LANG', 'PATH', 'SLEAP_RTC_ROLE', 'TMPDIR']);
    assert.equal(env.HOME, client.home);

    child.kill('SIGTERM');
    const end = await exited(child);
    assert.equal(end.signal, 'SIGTERM');
    assert.equal(isRunning(info.pid as number), false);
    const left = await runTool('ip', ['netns', 'pids', client.name]);
    assert.equal(left.stdout.trim(), '');
  });

  simTest('harness failures exit 125 with a sim-machine message', async (t) => {
    const net = await network(t, ['client']);
    const r = await machine(net, 'client').run('true', [], { cwd: '/no/such/dir' });
    assert.equal(r.code, 125);
    assert.match(r.stderr, /sim-machine: no directory \/no\/such\/dir/);
  });

  simTest('hosts reach each other over the simulated LAN but not the host loopback', async (t) => {
    const net = await network(t, ['server', 'client', 'worker']);
    const worker = machine(net, 'worker');
    const client = machine(net, 'client');
    assert.deepEqual(
      ['server', 'client', 'worker'].map((h) => net.addrOf(h)),
      [`${SIM_SUBNET}.1`, `${SIM_SUBNET}.2`, `${SIM_SUBNET}.3`],
    );

    const echo = worker.spawn(process.execPath, [
      '-e',
      `const s = require('net').createServer((c) => c.pipe(c)).listen(0, '${net.addrOf('worker')}', () => console.log(JSON.stringify({ port: s.address().port })));`,
    ]);
    const { port } = (await jsonLines(echo).next()) as { port: number };

    const hostServer = createServer((c) => c.end('host loopback'));
    await new Promise<void>((r) => hostServer.listen(0, '127.0.0.1', r));
    t.after(() => new Promise<void>((r) => hostServer.close(() => r())));
    const hostPort = (hostServer.address() as { port: number }).port;
    const hostIp = Object.values(networkInterfaces())
      .flat()
      .find((i) => i !== undefined && i.family === 'IPv4' && !i.internal)?.address;

    // Prints, for each host:port, what a TCP connect + one echo round trip gives.
    const probe = `
      const net = require('net');
      const tryOne = (host, port) => new Promise((resolve) => {
        const s = net.connect({ host, port });
        s.setEncoding('utf8');
        s.on('connect', () => s.write('ping'));
        s.on('data', (d) => { s.destroy(); resolve('data:' + d); });
        s.on('error', (e) => resolve('error:' + e.code));
      });
      (async () => {
        const out = [];
        for (const [h, p] of JSON.parse(process.argv[1])) out.push(await tryOne(h, p));
        console.log(JSON.stringify(out));
      })();`;
    const targets: [string, number][] = [
      [net.addrOf('worker'), port],
      ['worker', port],
      ['127.0.0.1', hostPort],
      ...(hostIp === undefined ? [] : [[hostIp, hostPort] as [string, number]]),
    ];
    const r = await client.run(process.execPath, ['-e', probe, JSON.stringify(targets)]);
    assert.equal(r.code, 0, r.stderr);
    const results = JSON.parse(r.stdout) as string[];
    assert.equal(results[0], 'data:ping', 'worker by address');
    assert.equal(results[1], 'data:ping', 'worker by name, from the machine /etc/hosts');
    assert.equal(results[2], 'error:ECONNREFUSED', 'the client loopback is its own, not the host one');
    if (hostIp !== undefined) assert.equal(results[3], 'error:ENETUNREACH', `the host address ${hostIp} has no route`);
  });

  simTest('a WebRTC data channel opens between two namespaces and carries bytes', async (t) => {
    const net = await network(t, ['client', 'worker']);
    const worker = machine(net, 'worker');
    const client = machine(net, 'client');
    // Real machines carry IPv6 link-local addresses next to their IPv4 ones; these do too.
    const v6 = await runTool('ip', ['-n', client.name, '-6', 'addr', 'show', 'dev', 'eth0']);
    assert.match(v6.stdout, /inet6 fe80::/);
    assert.doesNotMatch(v6.stdout, /tentative/);

    const answerer = worker.spawnNode(RTC_PEER, ['answer', net.addrOf('worker')]);
    const fromAnswerer = jsonLines(answerer);
    const listening = await fromAnswerer.next();
    assert.equal(listening.event, 'listening');

    const bytes = 4 * 1024 * 1024;
    const r = await client.run(process.execPath, [
      '--import', TS_LOADER, RTC_PEER, 'offer', net.addrOf('worker'), String(listening.port), String(bytes),
    ], { timeoutMs: 60_000 });
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const result = JSON.parse(r.stdout) as {
      ok: boolean; bytes: number; sha256: string; remoteSha256: string;
      selected: { local: { address: string; type: string }; remote: { address: string; type: string } };
      localCandidates: string[]; remoteCandidates: string[];
    };
    assert.equal(result.ok, true);
    assert.equal(result.bytes, bytes);
    assert.equal(result.remoteSha256, result.sha256);
    assert.equal(result.selected.local.address, net.addrOf('client'));
    assert.equal(result.selected.remote.address, net.addrOf('worker'));
    assert.equal(result.selected.local.type, 'host');
    // Only the veth addresses: no mDNS names, no link-local or host-namespace addresses.
    for (const c of [...result.localCandidates, ...result.remoteCandidates]) {
      assert.match(c, new RegExp(` ${SIM_SUBNET.replaceAll('.', '\\.')}\\.\\d+ \\d+ typ host`), c);
    }

    const done = (await fromAnswerer.next()) as { event: string; bytes: number; selected: { local: { address: string } } };
    assert.equal(done.event, 'done');
    assert.equal(done.bytes, bytes);
    assert.equal(done.selected.local.address, net.addrOf('worker'));
    assert.deepEqual(await exited(answerer), { code: 0, signal: null });
  });

  simTest('destroy() leaves no namespace, link, mount, process or temp dir, and is safe twice', async (t) => {
    const shared = tempDir(t, 'teardown');
    const linksBefore = await rootLinks();
    const net = await createNetwork(['client', 'worker']);
    t.after(() => net.destroy());
    const worker = machine(net, 'worker', [{ source: shared, target: WORKER_PATH }]);
    // A grandchild the test never sees: destroy() must find it through the namespace.
    const parent = worker.spawn(process.execPath, [
      '-e',
      `const c = require('child_process').spawn('sleep', ['1000'], { stdio: 'ignore' }); console.log(JSON.stringify({ grandchild: c.pid })); setInterval(() => undefined, 1000);`,
    ]);
    const { grandchild } = (await jsonLines(parent).next()) as { grandchild: number };
    const ours = (await netnsNames()).filter((n) => n.startsWith(net.prefix));
    assert.deepEqual(ours.sort(), [net.netnsOf('client'), net.netnsOf('worker'), `${net.prefix}_switch`].sort());
    assert.equal(isRunning(grandchild), true);
    const machineMounts = readFileSync(`/proc/${String(parent.pid)}/mountinfo`, 'utf8');
    assert.match(machineMounts, new RegExp(` ${WORKER_PATH} `));

    await net.destroy();
    await net.destroy();

    assert.deepEqual((await netnsNames()).filter((n) => n.startsWith(net.prefix)), []);
    assert.deepEqual(await rootLinks(), linksBefore);
    assert.equal(isRunning(grandchild), false);
    assert.notEqual(parent.exitCode ?? parent.signalCode, null);
    const hostMounts = readFileSync('/proc/self/mountinfo', 'utf8');
    assert.equal(hostMounts.includes(net.prefix), false);
    assert.equal(hostMounts.includes(` ${WORKER_PATH} `), false);
    assert.deepEqual(readdirSync(tmpdir()).filter((n) => n.startsWith(`${net.prefix}-`)), []);
    assert.throws(() => worker.spawn('true', []), /destroyed/);
  });

  simTest('stale cleanup removes leftovers of dead runs only', async (t) => {
    // A private prefix, so concurrent runs (whose own cleanup would also see a dead pid) stay out.
    const prefix = `srtcsimtest${String(process.pid)}`;
    const dead = spawnSync('true').pid;
    assert.ok(dead !== undefined && !isRunning(dead));
    const sleeper = spawn('sleep', ['1000'], { stdio: 'ignore' });
    t.after(() => sleeper.kill('SIGKILL'));
    const alive = sleeper.pid;
    assert.ok(alive !== undefined);
    const entry = (pid: number) => ({ ns: `${prefix}-${String(pid)}-1_switch`, dir: `${prefix}-${String(pid)}-1-leftover` });
    const stale = entry(dead);
    const live = entry(alive);
    for (const e of [stale, live]) {
      const add = await runTool('ip', ['netns', 'add', e.ns]);
      assert.equal(add.code, 0, add.stderr);
      mkdirSync(join(tmpdir(), e.dir, 'root'), { recursive: true });
      t.after(async () => {
        await deleteNamespace(e.ns);
        rmSync(join(tmpdir(), e.dir), { recursive: true, force: true });
      });
    }

    const removed = await cleanupStaleMachines({ prefix });
    assert.deepEqual(removed, { namespaces: [stale.ns], dirs: [stale.dir] });
    const names = await netnsNames();
    assert.equal(names.includes(stale.ns), false);
    assert.equal(existsSync(join(tmpdir(), stale.dir)), false);
    assert.equal(names.includes(live.ns), true, 'a live run is left alone');
    assert.equal(existsSync(join(tmpdir(), live.dir)), true);

    const all = await cleanupStaleMachines({ prefix, all: true });
    assert.deepEqual(all, { namespaces: [live.ns], dirs: [live.dir] });
    assert.equal((await netnsNames()).includes(live.ns), false);
    await assert.rejects(cleanupStaleMachines({ prefix: 'a-b' }), /must be/);
  });
});

after(async () => {
  // Belt and braces: anything this process created and a failed test did not destroy.
  if (skip !== false) return;
  const mine = (await netnsNames()).filter((n) => n.startsWith(`srtcsim-${String(process.pid)}-`));
  for (const n of mine) await deleteNamespace(n);
});
