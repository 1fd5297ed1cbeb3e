/**
 * Simulated machines for integration tests: processes that see different filesystems and talk over
 * a real (virtual) network interface, as a laptop client and a cluster worker do. Linux + root only;
 * see docs/testing.md. Typical use:
 *
 *   const skip = await machinesSkipReason();             // false, or why not (node:test `skip`)
 *   const net = await createNetwork(['server', 'client', 'worker']);
 *   t.after(() => net.destroy());
 *   const worker = machine(net, 'worker', [{ source: shared, target: '/home/jovyan/vast' }]);
 *   const child = worker.spawnNode('test/machines/racer.ts', [...]);
 */
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findTool, runTool } from './machines-exec.js';
import { createNetwork, deleteNamespace, SIM_PREFIX } from './machines-network.js';
import { machine } from './machines-machine.js';

export { createNetwork, SIM_SUBNET, type NetworkOptions, type SimNetwork } from './machines-network.js';
export { exited, jsonLines, type JsonLines } from './machines-io.js';
export { machine, REPO_ROOT, type Bind, type MachineOptions, type MachineSpawnOptions, type RunResult, type SimMachine } from './machines-machine.js';

export type Support = { ok: true } | { ok: false; reason: string };

/** Set to 1 (CI does) to make missing namespace support a test failure instead of a skip. */
export const REQUIRE_ENV = 'SLEAP_RTC_REQUIRE_MACHINES';

const TOOLS: readonly (readonly [string, string])[] = [
  ['ip', 'iproute2'],
  ['unshare', 'util-linux'],
  ['mount', 'mount'],
  ['chroot', 'coreutils'],
];

let support: Promise<Support> | undefined;

/**
 * Whether simulated machines work here, found by building a one-host network and reading a file
 * through a bind mount on it (the real thing, not a guess from uid or kernel version). Cached.
 */
export function machinesSupported(): Promise<Support> {
  support ??= probe();
  return support;
}

async function probe(): Promise<Support> {
  if (process.platform !== 'linux') return { ok: false, reason: `needs Linux namespaces, this is ${process.platform}` };
  if (process.getuid?.() !== 0) return { ok: false, reason: 'needs root for network and mount namespaces (CI runs as root)' };
  for (const [tool, pkg] of TOOLS) {
    if (findTool(tool) === undefined) return { ok: false, reason: `\`${tool}\` is not installed (apt-get install -y ${pkg})` };
  }
  const shared = mkdtempSync(join(tmpdir(), `${SIM_PREFIX}-${process.pid}-probe-`));
  try {
    writeFileSync(join(shared, 'probe'), 'seen through the bind mount');
    const net = await createNetwork(['probe']);
    try {
      const r = await machine(net, 'probe', [{ source: shared, target: '/srtcsim-probe' }]).run('cat', ['/srtcsim-probe/probe']);
      if (r.code !== 0 || r.stdout !== 'seen through the bind mount') {
        return { ok: false, reason: `a process in a mount namespace could not read its bind mount: ${r.stderr.trim() || `exit ${String(r.code)}`}` };
      }
    } finally {
      await net.destroy();
    }
    return { ok: true };
  } catch (e) {
    return { ok: false, reason: (e as Error).message };
  } finally {
    rmSync(shared, { recursive: true, force: true });
  }
}

/**
 * For node:test's `skip` option: false when simulated machines work, otherwise the reason. Throws
 * instead when SLEAP_RTC_REQUIRE_MACHINES=1, so CI cannot silently lose these tests.
 */
export async function machinesSkipReason(): Promise<string | false> {
  const s = await machinesSupported();
  if (s.ok) return false;
  if (process.env[REQUIRE_ENV] === '1') {
    throw new Error(`simulated machines are required (${REQUIRE_ENV}=1) but unavailable: ${s.reason}`);
  }
  return `simulated machines unavailable: ${s.reason}`;
}


function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export interface StaleCleanup {
  namespaces: string[];
  dirs: string[];
}

/**
 * Deletes leftovers of crashed runs: network namespaces (with any processes still in them) and temp
 * dirs named `srtcsim-<pid>-...` whose creating process is gone. With `all`, also those of live
 * processes other than this one — only for manual use when no tests are running. `prefix` replaces
 * "srtcsim" (the harness's own test uses it to stay clear of concurrent runs).
 */
export async function cleanupStaleMachines(opts: { all?: boolean; prefix?: string } = {}): Promise<StaleCleanup> {
  const prefix = opts.prefix ?? SIM_PREFIX;
  if (!/^[a-z0-9]+$/.test(prefix)) throw new Error(`cleanup prefix "${prefix}" must be [a-z0-9]+`);
  const ours = new RegExp(`^${prefix}-(\\d+)-`);
  const stale = (name: string): boolean => {
    const m = ours.exec(name);
    if (m === null) return false;
    const pid = Number(m[1]);
    return pid !== process.pid && (opts.all === true || !isAlive(pid));
  };
  const out: StaleCleanup = { namespaces: [], dirs: [] };
  const ip = findTool('ip');
  if (ip !== undefined) {
    const list = await runTool(ip, ['netns', 'list']);
    for (const line of list.stdout.split('\n')) {
      const name = line.split(' ')[0] ?? '';
      if (!stale(name)) continue;
      await deleteNamespace(name);
      out.namespaces.push(name);
    }
  }
  for (const name of readdirSync(tmpdir())) {
    if (!stale(name)) continue;
    rmSync(join(tmpdir(), name), { recursive: true, force: true });
    out.dirs.push(name);
  }
  return out;
}
