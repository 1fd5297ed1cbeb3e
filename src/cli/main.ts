/**
 * The `sleap-rtc` command: parse arguments, call the library, print. Each subcommand lives in its
 * own file under src/cli/commands and registers itself on the program here.
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { SleapRtcError, exitCodeFor } from '../errors.js';
import { registerCommands } from './commands/index.js';

export function buildProgram(): Command {
  const program = new Command('sleap-rtc')
    .description('Train and run SLEAP models on remote GPUs over WebRTC, reading lab storage in place.')
    .version(VERSION)
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  registerCommands(program);
  return program;
}

const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** Runs the CLI and returns the process exit code: 0 success, 2 usage/configuration, 1 anything else. */
export async function main(argv: readonly string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync([...argv]);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // commander already printed its message; help/version are successes.
      // --help and --version exit 0; help shown because a subcommand is missing is a usage error.
      return err.exitCode === 0 ? 0 : 2;
    }
    printError(err);
    return exitCodeFor(err);
  }
}

export function printError(err: unknown): void {
  if (err instanceof SleapRtcError) {
    process.stderr.write(`sleap-rtc: error [${err.code}]: ${err.message}\n`);
  } else {
    const e = err as Error;
    process.stderr.write(`sleap-rtc: unexpected error: ${e?.stack ?? String(err)}\n`);
  }
}
