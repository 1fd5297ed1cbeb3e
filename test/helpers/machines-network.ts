/**
 * Simulated LAN for integration tests: one network namespace per host, each with an `eth0` veth whose
 * peer sits on a bridge in a separate "switch" namespace. Addresses come from 10.200.0.0/24, which
 * exists only inside these namespaces: nothing is added to the test runner's own network namespace,
 * so parallel networks (even with the same addresses) and the host's routes never interact.
 *
 * Every name starts with `srtcsim-<pid>-<n>`, which makes leftovers of a crashed run recognisable
 * (see cleanupStaleMachines) and keeps concurrent test files apart.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findTool, mustRun, runTool } from './machines-exec.js';

/** Prefix of every netns, temp dir and process name the harness creates. */
export const SIM_PREFIX = 'srtcsim';
/** The private subnet inside the simulated network; host i (0-based) gets .(i + 1). */
export const SIM_SUBNET = '10.200.0';
/** Host names become interface-free labels, /etc/hosts entries and hostnames. */
const HOST_NAME = /^[a-z][a-z0-9]{0,11}$/;
/** Time allowed for a namespace's processes to die after SIGKILL before destroy() gives up. */
const KILL_WAIT_MS = 5_000;

export interface SimNetwork {
  /** Unique prefix of this network's namespaces and temp dir. */
  readonly prefix: string;
  readonly hosts: readonly string[];
  /** IPv4 address of `host` on the simulated LAN. */
  addrOf(host: string): string;
  /** Name of `host`'s network namespace (for `ip -n NAME ...` in tests). */
  netnsOf(host: string): string;
  /** A hosts(5) file naming every host, bind-mounted over /etc/hosts on each machine. */
  readonly hostsFile: string;
  /** Kills every process left in the network's namespaces, deletes them and the temp dir. Safe to call twice. */
  destroy(): Promise<void>;
}

export interface NetworkOptions {
  /**
   * Leave IPv6 on (the default), so each eth0 also carries a link-local fe80:: address as real
   * machines do; false disables IPv6 in every host namespace.
   */
  ipv6?: boolean;
}

let counter = 0;

/** A fresh `srtcsim-<pid>-<n>` prefix, unique within this process. */
export function nextPrefix(): string {
  counter += 1;
  return `${SIM_PREFIX}-${process.pid}-${counter}`;
}

export function ipTool(): string {
  const ip = findTool('ip');
  if (ip === undefined) throw new Error('iproute2 is not installed (no `ip`); apt-get install -y iproute2');
  return ip;
}

type State = 'up' | 'destroying' | 'destroyed';

export class SimNetworkImpl implements SimNetwork {
  readonly hosts: readonly string[];
  readonly hostsFile: string;
  /** Root of this network's temp files (machine roots, homes, hosts file). */
  readonly dir: string;
  readonly switchNs: string;
  private readonly addrs = new Map<string, string>();
  private readonly children = new Set<ChildProcess>();
  private state: State = 'up';
  private destroying: Promise<void> | undefined;
  /** Namespaces actually created so far, so a half-built network can be torn down. */
  private readonly created: string[] = [];

  constructor(
    readonly prefix: string,
    hosts: readonly string[],
  ) {
    this.hosts = [...hosts];
    this.switchNs = `${prefix}_switch`;
    hosts.forEach((h, i) => this.addrs.set(h, `${SIM_SUBNET}.${i + 1}`));
    this.dir = mkdtempSync(join(tmpdir(), `${prefix}-`));
    this.hostsFile = join(this.dir, 'hosts');
    const lines = ['127.0.0.1 localhost', '::1 localhost ip6-localhost ip6-loopback'];
    for (const h of hosts) lines.push(`${this.addrOf(h)} ${h}`);
    writeFileSync(this.hostsFile, lines.join('\n') + '\n');
  }

  addrOf(host: string): string {
    const a = this.addrs.get(host);
    if (a === undefined) throw new Error(`no host "${host}" in network ${this.prefix} (hosts: ${this.hosts.join(', ')})`);
    return a;
  }

  netnsOf(host: string): string {
    this.addrOf(host);
    return `${this.prefix}-${host}`;
  }

  get isUp(): boolean {
    return this.state === 'up';
  }

  /** Processes spawned on this network's machines; destroy() kills any still running. */
  track(child: ChildProcess): void {
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
  }

  async build(ipv6: boolean): Promise<void> {
    const ip = ipTool();
    await this.addNs(this.switchNs);
    await mustRun(ip, ['-n', this.switchNs, 'link', 'set', 'lo', 'up']);
    await mustRun(ip, ['-n', this.switchNs, 'link', 'add', 'br0', 'type', 'bridge']);
    await mustRun(ip, ['-n', this.switchNs, 'link', 'set', 'br0', 'up']);
    for (const [i, host] of this.hosts.entries()) {
      const ns = this.netnsOf(host);
      await this.addNs(ns);
      // Set before eth0 exists, so they apply to it. Without duplicate address detection the
      // link-local address is usable at once, as on a machine that has been up for a while, rather
      // than appearing a second or two into a test.
      const v6 = ipv6 ? ['accept_dad', '0'] : ['disable_ipv6', '1'];
      await mustRun(ip, [
        'netns', 'exec', ns, 'sh', '-c',
        `echo ${v6[1]} > /proc/sys/net/ipv6/conf/all/${v6[0]} && echo ${v6[1]} > /proc/sys/net/ipv6/conf/default/${v6[0]}`,
      ]);
      // Created directly in the switch namespace with its peer in the host's: never in ours.
      const port = `p${i}`;
      await mustRun(ip, ['-n', this.switchNs, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
      await mustRun(ip, ['-n', this.switchNs, 'link', 'set', port, 'master', 'br0', 'up']);
      await mustRun(ip, ['-n', ns, 'link', 'set', 'lo', 'up']);
      await mustRun(ip, ['-n', ns, 'addr', 'add', `${this.addrOf(host)}/24`, 'dev', 'eth0']);
      await mustRun(ip, ['-n', ns, 'link', 'set', 'eth0', 'up']);
    }
  }

  private async addNs(name: string): Promise<void> {
    await mustRun(ipTool(), ['netns', 'add', name]);
    this.created.push(name);
  }

  destroy(): Promise<void> {
    if (this.destroying === undefined) {
      this.state = 'destroying';
      this.destroying = this.teardown().finally(() => {
        this.state = 'destroyed';
      });
    }
    return this.destroying;
  }

  private async teardown(): Promise<void> {
    const problems: string[] = [];
    await Promise.all([...this.children].map((c) => killAndWait(c)));
    for (const ns of [...this.created].reverse()) {
      try {
        await deleteNamespace(ns);
      } catch (e) {
        problems.push((e as Error).message);
      }
    }
    try {
      rmSync(this.dir, { recursive: true, force: true });
    } catch (e) {
      problems.push(`cannot remove ${this.dir}: ${(e as Error).message}`);
    }
    if (problems.length > 0) throw new Error(`simulated network ${this.prefix} teardown: ${problems.join('; ')}`);
  }
}

function killAndWait(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, KILL_WAIT_MS);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGKILL');
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** True unless the process is gone or a zombie. */
export function isRunning(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/s.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/**
 * Kills whatever still runs in `ns` (grandchildren the test never saw) and deletes it. A namespace
 * with live processes would outlive its name, keeping its veth and bridge alive.
 */
export async function deleteNamespace(ns: string): Promise<void> {
  const ip = ipTool();
  const deadline = Date.now() + KILL_WAIT_MS;
  const killed = new Set<number>();
  for (;;) {
    const r = await runTool(ip, ['netns', 'pids', ns]);
    if (r.code !== 0) break; // already gone
    const pids = r.stdout.split(/\s+/).filter(Boolean).map(Number);
    if (pids.length === 0) break;
    for (const pid of pids) {
      killed.add(pid);
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // exited meanwhile
      }
    }
    if (Date.now() > deadline) throw new Error(`processes ${pids.join(' ')} in netns ${ns} survive SIGKILL`);
    await sleep(20);
  }
  // A dying process leaves the namespace before it finishes exiting; wait until each is really gone
  // (or a zombie waiting for init), so callers can rely on "destroyed" meaning "not running".
  for (const pid of killed) {
    while (isRunning(pid)) {
      if (Date.now() > deadline) throw new Error(`process ${pid} from netns ${ns} survives SIGKILL`);
      await sleep(20);
    }
  }
  const del = await runTool(ip, ['netns', 'del', ns]);
  if (del.code !== 0 && !/No such file/.test(del.stderr)) {
    throw new Error(`ip netns del ${ns} failed: ${del.stderr.trim()}`);
  }
}

/** Builds a simulated LAN with one namespace per host. Hosts: 1-250 distinct names like "client". */
export async function createNetwork(hosts: readonly string[], opts: NetworkOptions = {}): Promise<SimNetwork> {
  if (hosts.length === 0 || hosts.length > 250) throw new Error(`a network needs 1-250 hosts, got ${hosts.length}`);
  for (const h of hosts) {
    if (!HOST_NAME.test(h)) throw new Error(`host name "${h}" must match ${HOST_NAME.source} (e.g. "worker1")`);
  }
  if (new Set(hosts).size !== hosts.length) throw new Error(`host names must be distinct: ${hosts.join(', ')}`);
  const net = new SimNetworkImpl(nextPrefix(), hosts);
  try {
    await net.build(opts.ipv6 ?? true);
  } catch (e) {
    await net.destroy().catch(() => undefined);
    throw e;
  }
  return net;
}
