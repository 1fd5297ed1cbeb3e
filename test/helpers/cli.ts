/**
 * Runs the real CLI as a child process: the compiled one in dist/, as users run it, which starts
 * about three times faster than from source. scripts/run-tests.js builds it from src/ before every
 * run; running a test file some other way needs `npm run build` first.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { outputUntilClose, type ChildResult } from './child-output.js';

export const CLI_ENTRY = fileURLToPath(new URL('../../dist/cli/entry.js', import.meta.url));
/** How TypeScript run from source is loaded (absolute, so children may run in any working directory). */
export const TS_LOADER = new URL('../../scripts/ts-loader.mjs', import.meta.url).href;

export type CliResult = ChildResult;

let stateHome: string | undefined;

/**
 * One state folder per test process for the CLIs it starts (`sleap-rtc server` keeps its rooms
 * file under $XDG_STATE_HOME), so tests never write into the user's home; removed at exit.
 */
function testStateHome(): string {
  if (stateHome === undefined) {
    const dir = mkdtempSync(join(tmpdir(), 'sleap-rtc-state-'));
    stateHome = dir;
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  }
  return stateHome;
}

/** Spawns `sleap-rtc ...args` without waiting; the caller owns the process. */
export function spawnCli(args: readonly string[], opts: SpawnOptions = {}): ChildProcess {
  if (!existsSync(CLI_ENTRY)) throw new Error(`${CLI_ENTRY} is missing: run \`npm run build\` (scripts/run-tests.js builds it for you)`);
  return spawn(process.execPath, [CLI_ENTRY, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    ...opts,
    env: { ...process.env, SLEAP_RTC_CONFIG: '', XDG_STATE_HOME: testStateHome(), ...opts.env },
  });
}

/** Runs `sleap-rtc ...args` to completion (killed after timeoutMs, 3 min by default: a hang guard, a loaded 2-core machine takes tens of seconds to start a CLI) and collects its output. */
export async function runCli(
  args: readonly string[],
  opts: SpawnOptions & { timeoutMs?: number; input?: string } = {},
): Promise<CliResult> {
  const child = spawnCli(args, { ...opts, stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
  const result = outputUntilClose(child, opts.timeoutMs ?? 180_000);
  if (opts.input !== undefined) child.stdin?.end(opts.input);
  return result;
}
