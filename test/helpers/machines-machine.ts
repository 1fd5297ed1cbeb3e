/**
 * A simulated machine: a host of a SimNetwork plus a filesystem view. Each process spawned on it
 * runs in the host's network namespace and in its own private mount + UTS namespace, where the
 * machine's bind mounts are set up by machines-enter.sh before the command is exec-ed (so the
 * returned ChildProcess *is* the command, not a wrapper shell).
 */
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { lstatSync, mkdirSync, mkdtempSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join, posix } from 'node:path';
import { outputUntilClose } from './child-output.js';
import { findTool, MACHINE_PATH, type ToolResult } from './machines-exec.js';
import { ipTool, SimNetworkImpl, type SimNetwork } from './machines-network.js';

export interface Bind {
  /** Host directory to expose. */
  source: string;
  /** Absolute path where the machine sees it; created in the machine's view (never on the host). */
  target: string;
  readOnly?: boolean;
}

export interface MachineOptions {
  /** Host directories to cover with an empty tmpfs in the machine's view, e.g. the bind sources. */
  hide?: readonly string[];
}

export interface MachineSpawnOptions {
  /** Working directory inside the machine (default: the repository root). */
  cwd?: string;
  /**
   * Added to the machine's base environment: PATH (system dirs), HOME (a per-machine temp dir),
   * LANG=C.UTF-8, TMPDIR=/tmp. Nothing is inherited from the test process; undefined removes a key.
   */
  env?: Record<string, string | undefined>;
  stdio?: StdioOptions;
}

export type RunResult = ToolResult;

export interface SimMachine {
  /** `<network prefix>-<host>`; also the machine's hostname is just `host`. */
  readonly name: string;
  readonly host: string;
  /** The machine's address on the simulated LAN. */
  readonly address: string;
  /** Per-machine HOME directory (a host temp dir, visible inside at the same path). */
  readonly home: string;
  spawn(cmd: string, args: readonly string[], opts?: MachineSpawnOptions): ChildProcess;
  /** Runs `node --import ./scripts/ts-loader.mjs script ...args` inside the machine. */
  spawnNode(script: string, args?: readonly string[], opts?: MachineSpawnOptions): ChildProcess;
  /** Runs a command to completion (SIGKILL after timeoutMs, default 30 s) and collects its output. */
  run(cmd: string, args: readonly string[], opts?: MachineSpawnOptions & { timeoutMs?: number }): Promise<RunResult>;
}

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url)).replace(/\/$/, '');
const ENTER_SCRIPT = fileURLToPath(new URL('./machines-enter.sh', import.meta.url));
/** Absolute loader URL (scripts/ts-loader.mjs), so children may start in any directory. */
const TS_LOADER = new URL('../../scripts/ts-loader.mjs', import.meta.url).href;
/** Safe characters for in-machine paths; the enter script splits paths on "/" and nothing else. */
const MACHINE_PATH_CHARS = /^(\/[A-Za-z0-9._-]+)+$/;
/** Trees whose shadowing would break the machine (kernel filesystems, the netns registry). */
const RESERVED = ['/proc', '/sys', '/dev', '/run'];

function isUnder(p: string, dir: string): boolean {
  return p === dir || p.startsWith(dir === '/' ? '/' : `${dir}/`);
}

function checkMachinePath(p: string, what: string): void {
  if (!MACHINE_PATH_CHARS.test(p) || posix.normalize(p) !== p || p.split('/').some((c) => c === '..' || c === '.')) {
    throw new Error(`${what} "${p}" must be an absolute, normalised path of [A-Za-z0-9._-] parts, e.g. /Volumes/talmo`);
  }
  const reserved = RESERVED.find((r) => isUnder(p, r));
  if (reserved !== undefined) throw new Error(`${what} "${p}" is under ${reserved}, which machines share with the host`);
}

/** Rejects targets the enter script would have to follow a host symlink for, or that are not dirs. */
function checkTargetOnHost(target: string): void {
  let p = '';
  for (const part of target.split('/').slice(1)) {
    p = `${p}/${part}`;
    let st;
    try {
      st = lstatSync(p);
    } catch {
      return; // missing from here on: will be created in tmpfs
    }
    if (st.isSymbolicLink()) throw new Error(`bind target "${target}" passes through host symlink ${p}; use the real path`);
    if (!st.isDirectory()) throw new Error(`bind target "${target}": ${p} exists on the host and is not a directory`);
  }
}

function checkBinds(binds: readonly Bind[]): void {
  for (const b of binds) {
    checkMachinePath(b.target, 'bind target');
    checkTargetOnHost(b.target);
    if (!b.source.startsWith('/') || !statSync(b.source, { throwIfNoEntry: false })?.isDirectory()) {
      throw new Error(`bind source "${b.source}" must be an existing absolute directory`);
    }
  }
  for (const a of binds) {
    for (const b of binds) {
      if (a !== b && isUnder(b.target, a.target)) {
        throw new Error(`bind targets may not nest: "${b.target}" is inside "${a.target}"`);
      }
    }
  }
}

class Machine implements SimMachine {
  readonly name: string;
  readonly address: string;
  readonly home: string;
  private readonly root: string;
  private readonly ops: string[];

  constructor(
    private readonly net: SimNetworkImpl,
    readonly host: string,
    binds: readonly Bind[],
    opts: MachineOptions,
  ) {
    this.name = net.netnsOf(host);
    this.address = net.addrOf(host);
    checkBinds(binds);
    for (const h of opts.hide ?? []) {
      checkMachinePath(h, 'hidden path');
      if (!statSync(h, { throwIfNoEntry: false })?.isDirectory()) throw new Error(`hidden path "${h}" must be an existing directory`);
    }
    const dir = mkdtempSync(join(net.dir, `${host}-`));
    this.root = join(dir, 'root');
    this.home = join(dir, 'home');
    mkdirSync(this.root);
    mkdirSync(this.home);
    this.ops = [
      ...binds.flatMap((b) => [b.readOnly === true ? 'robind' : 'bind', b.source, b.target]),
      'file', net.hostsFile, '/etc/hosts',
      // Hidden last, so a bind whose source is hidden still shows the original directory.
      ...(opts.hide ?? []).flatMap((h) => ['hide', h, '-']),
    ];
  }

  spawn(cmd: string, args: readonly string[], opts: MachineSpawnOptions = {}): ChildProcess {
    if (!this.net.isUp) throw new Error(`network ${this.net.prefix} is destroyed; cannot spawn on ${this.host}`);
    const unshare = findTool('unshare');
    if (unshare === undefined) throw new Error('util-linux is not installed (no `unshare`); apt-get install -y util-linux');
    const env: Record<string, string> = {};
    const merged = { PATH: MACHINE_PATH, HOME: this.home, LANG: 'C.UTF-8', TMPDIR: '/tmp', ...opts.env };
    for (const [k, v] of Object.entries(merged)) if (v !== undefined) env[k] = v;
    const child = spawn(
      ipTool(),
      [
        'netns', 'exec', this.name,
        unshare, '--mount', '--uts', '--propagation', 'private',
        '/bin/sh', ENTER_SCRIPT, this.host, this.root, opts.cwd ?? REPO_ROOT, ...this.ops, '--',
        cmd, ...args,
      ],
      { env, stdio: opts.stdio ?? ['ignore', 'pipe', 'pipe'] },
    );
    this.net.track(child);
    return child;
  }

  spawnNode(script: string, args: readonly string[] = [], opts: MachineSpawnOptions = {}): ChildProcess {
    return this.spawn(process.execPath, ['--import', TS_LOADER, script, ...args], opts);
  }

  async run(cmd: string, args: readonly string[], opts: MachineSpawnOptions & { timeoutMs?: number } = {}): Promise<RunResult> {
    // A hang guard: a loaded 2-core machine takes tens of seconds to start a CLI.
    return outputUntilClose(this.spawn(cmd, args, { ...opts, stdio: ['ignore', 'pipe', 'pipe'] }), opts.timeoutMs ?? 180_000);
  }
}

/**
 * A machine on `host` of `net` whose processes see the host filesystem plus `binds`, e.g.
 * `machine(net, 'worker', [{ source: shared, target: '/home/jovyan/vast' }])`.
 */
export function machine(net: SimNetwork, host: string, binds: readonly Bind[] = [], opts: MachineOptions = {}): SimMachine {
  if (!(net instanceof SimNetworkImpl)) throw new Error('machine() needs a network made by createNetwork()');
  return new Machine(net, host, binds, opts);
}
