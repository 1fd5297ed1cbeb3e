/**
 * Running the system tools the simulated machines are built from (iproute2, util-linux, coreutils).
 * Tools are looked up once by absolute path, because the sbin directories are often missing from a
 * non-login PATH and because the child environments the harness builds are deliberately minimal.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';
import { outputUntilClose, type ChildResult } from './child-output.js';

/** Where the harness looks for tools, after the caller's own PATH. */
const SYSTEM_DIRS = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

/** The PATH every simulated-machine child gets (its environment is not inherited from the test). */
export const MACHINE_PATH = SYSTEM_DIRS.join(':');

/** Absolute path of an executable, or undefined when it is not installed. */
export function findTool(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(':').filter((d) => d.startsWith('/')), ...SYSTEM_DIRS];
  for (const dir of dirs) {
    const p = join(dir, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not here; try the next directory
    }
  }
  return undefined;
}

export type ToolResult = ChildResult;

/** Runs a command to completion, collecting its output. Rejects only if it cannot be started. */
export async function runTool(
  cmd: string,
  args: readonly string[],
  opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<ToolResult> {
  // A hung tool must not hang a test run; being killed shows up as signal SIGKILL.
  return outputUntilClose(spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: opts.env ?? process.env }), opts.timeoutMs ?? 30_000);
}

/** Runs a command and throws an error quoting it and its stderr unless it exits 0. */
export async function mustRun(cmd: string, args: readonly string[]): Promise<string> {
  const r = await runTool(cmd, args);
  if (r.code !== 0) {
    const how = r.signal === null ? `exit ${String(r.code)}` : `signal ${r.signal}`;
    throw new Error(`\`${[cmd, ...args].join(' ')}\` failed (${how}): ${r.stderr.trim() || r.stdout.trim()}`);
  }
  return r.stdout;
}
