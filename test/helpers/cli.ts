/** Runs the real CLI entry point (TypeScript source via tsx) as a child process. */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const CLI_ENTRY = fileURLToPath(new URL('../../src/cli/entry.ts', import.meta.url));
/** Absolute loader URL, so children may run with any working directory. */
export const TSX_LOADER = import.meta.resolve('tsx');

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Spawns `sleap-rtc ...args` without waiting; the caller owns the process. */
export function spawnCli(args: readonly string[], opts: SpawnOptions = {}): ChildProcess {
  return spawn(process.execPath, ['--import', TSX_LOADER, CLI_ENTRY, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    ...opts,
    env: { ...process.env, SLEAP_RTC_CONFIG: '', ...opts.env },
  });
}

/** Runs `sleap-rtc ...args` to completion (killed after timeoutMs) and collects its output. */
export function runCli(
  args: readonly string[],
  opts: SpawnOptions & { timeoutMs?: number; input?: string } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawnCli(args, { ...opts, stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    if (opts.input !== undefined) child.stdin?.end(opts.input);
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}
