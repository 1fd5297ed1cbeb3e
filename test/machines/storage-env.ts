/**
 * Real sleap-rtc processes on simulated machines (test/helpers/machines.ts): the signaling server
 * on its own host, workers and clients on theirs, each seeing its own filesystem. The test process
 * cannot reach the simulated LAN, so everything it learns comes through the processes' stdio.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FAKE_SLEAP_NN } from '../fixtures/fake-sleap-nn.js';
import type { RunResult, SimMachine } from '../helpers/machines.js';
import { CLI_ENTRY } from '../helpers/cli.js';

type Hooks = { after: (fn: () => unknown) => void };

/** The stand-in for sleap-nn starts with `#!/usr/bin/env node`: the machine's PATH must hold this node. */
export const MACHINE_PATH_WITH_NODE = `${path.dirname(process.execPath)}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`;

export interface MachineProcess {
  child: ChildProcess;
  stderr(): string;
  /** Resolves with the first match on stderr; rejects on timeout or if the process exits first. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
}

/** `sleap-rtc ...args` running on `m`; stopped (SIGINT, then SIGKILL) when the test ends. */
export function spawnCli(t: Hooks, m: SimMachine, args: readonly string[], env: Record<string, string> = {}): MachineProcess {
  const child = m.spawn(process.execPath, [CLI_ENTRY, ...args], { env });
  let err = '';
  const watchers = new Set<() => void>();
  child.stdout?.resume();
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    err += d;
    for (const w of [...watchers]) w();
  });
  const exit = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  t.after(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGINT');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await exit;
    clearTimeout(timer);
  });
  return {
    child,
    stderr: () => err,
    waitFor(pattern, timeoutMs = 120_000) {
      return new Promise((resolve, reject) => {
        const done = (): void => {
          clearTimeout(timer);
          watchers.delete(check);
        };
        const check = (): void => {
          const found = pattern.exec(err);
          if (!found) return;
          done();
          resolve(found);
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`${m.host}: no ${String(pattern)} on stderr within ${timeoutMs} ms:\n${err}`));
        }, timeoutMs);
        void exit.then((code) => {
          if (!watchers.has(check)) return;
          done();
          reject(new Error(`${m.host}: exited (${String(code)}) before ${String(pattern)}:\n${err}`));
        });
        watchers.add(check);
        check();
      });
    },
  };
}

export interface Room {
  url: string;
  flags: string[];
  roomId: string;
  token: string;
}

/** The signaling server on `m`, listening on all its interfaces; returns its URL as other hosts name it. */
export async function startServer(t: Hooks, m: SimMachine): Promise<string> {
  const server = spawnCli(t, m, ['server', '--host', '0.0.0.0', '--port', '0']);
  const found = await server.waitFor(/listening on http:\/\/\S+:(\d+) \(WebSocket/);
  return `http://${m.host}:${found[1] as string}`;
}

/** `sleap-rtc room create --json`, run on `m`. */
export async function createRoom(m: SimMachine, url: string): Promise<Room> {
  const r = await m.run(process.execPath, [CLI_ENTRY, 'room', 'create', '--server', url, '--json']);
  if (r.code !== 0) throw new Error(`room create on ${m.host} failed: ${r.stderr}`);
  const room = JSON.parse(r.stdout) as { room_id: string; token: string };
  return { url, roomId: room.room_id, token: room.token, flags: ['--server', url, '--room', room.room_id, '--token', room.token] };
}

/** Writes a config file into the machine's own home; returns its path. */
export function writeConfig(m: SimMachine, name: string, toml: string): string {
  const file = path.join(m.home, name);
  writeFileSync(file, toml);
  return file;
}

/**
 * A worker on `m` with `storageToml` and the sleap-nn stand-in (recording every run to `record`);
 * resolves once it is in the room.
 */
export async function startWorker(
  t: Hooks,
  m: SimMachine,
  room: Room,
  opts: { name: string; storageToml: string; record: string; workerToml?: string },
): Promise<MachineProcess> {
  const config = writeConfig(
    m,
    'worker.toml',
    `${opts.storageToml}\n[worker]\nsleap_nn = ${JSON.stringify(FAKE_SLEAP_NN)}\nwork_dir = ${JSON.stringify(path.join(m.home, 'work'))}\n${opts.workerToml ?? ''}`,
  );
  const worker = spawnCli(t, m, ['worker', ...room.flags, '--config', config, '--name', opts.name], {
    PATH: MACHINE_PATH_WITH_NODE,
    FAKE_SLEAP_NN_RECORD: opts.record,
  });
  await worker.waitFor(new RegExp(`worker ${opts.name} ready in room`));
  return worker;
}

/** A client command (`train ...` / `track ...`) run to completion on `m` in the room. */
export function runClient(m: SimMachine, room: Room, config: string, args: readonly string[]): Promise<RunResult> {
  return m.run(process.execPath, [CLI_ENTRY, ...args, ...room.flags, '--config', config], { timeoutMs: 180_000 });
}

/** The last stdout line as JSON (what `--json` promises). */
export function lastJson(r: RunResult): Record<string, unknown> {
  return JSON.parse(r.stdout.trimEnd().split('\n').at(-1) ?? '') as Record<string, unknown>;
}

/** A host temp dir (the source of a bind mount, or a place for records), removed after the test. */
export function hostDir(t: Hooks, label: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), `sleap-rtc-machines-${label}-`));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Every entry below `dir`, symlinks not followed (to prove nothing was created or changed). */
export function tree(dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string): void => {
    for (const d of readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${d.name}` : d.name;
      out.push(d.isSymbolicLink() ? `${r}@` : r);
      if (d.isDirectory()) walk(r);
    }
  };
  walk('');
  return out.sort();
}
