/**
 * What the configured sleap-nn is, found once when the worker starts: its version, and which
 * inference command it has. sleap-nn 0.3.x has `predict` (the current pipeline) and `track` (the
 * legacy one, deprecated); older releases only `track`. Jobs then run the command found here.
 *
 * The probe runs `sleap-nn --version` (cli.py: the group's eager `--version` option prints
 * "sleap-nn <version>") and `sleap-nn predict --help` (click exits 0 for a command's help, and 2
 * with "No such command" when the command does not exist), falling back to `track --help`.
 */
import { execFile } from 'node:child_process';
import { SleapRtcError } from '../errors.js';
import { LIMITS } from '../limits.js';
import { SleapNnNotFoundError } from './job-process.js';
import type { InferenceCommand } from './sleap-nn-args.js';

export interface SleapNnInfo {
  executable: string;
  /** As sleap-nn prints it, e.g. "0.3.3". */
  version: string;
  /** The command inference jobs run. */
  inferenceCommand: InferenceCommand;
}

export interface ProbeOptions {
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

const VERSION_LINE = /^sleap-nn (\S+)\s*$/m;

/** Probes `executable`; throws SLEAP_NN_NOT_FOUND (exit 2) or SLEAP_NN_UNUSABLE with a sentence naming the fix. */
export async function probeSleapNn(executable: string, opts: ProbeOptions = {}): Promise<SleapNnInfo> {
  const version = await run(executable, ['--version'], opts);
  if (version.code !== 0) throw unusable(executable, '--version', version, opts);
  const m = VERSION_LINE.exec(version.stdout);
  if (!m?.[1]) {
    throw new SleapNnNotFoundError(executable, `is not sleap-nn (\`${executable} --version\` printed ${JSON.stringify(firstLine(version.stdout))}, not "sleap-nn <version>")`, undefined);
  }
  for (const command of ['predict', 'track'] as const) {
    const help = await run(executable, [command, '--help'], opts);
    if (help.code === 0) return { executable, version: m[1], inferenceCommand: command };
    if (help.timedOut) throw unusable(executable, `${command} --help`, help, opts);
  }
  throw new SleapRtcError(
    'SLEAP_NN_UNUSABLE',
    `sleap-nn ${m[1]} at "${executable}" has neither a \`predict\` nor a \`track\` command, so it cannot run inference. Install sleap-nn 0.3 or later, or set [worker] sleap_nn to one.`,
    { executable, version: m[1] },
  );
}

function run(executable: string, args: string[], opts: ProbeOptions): Promise<Run> {
  return new Promise((resolve, reject) => {
    execFile(
      executable,
      args,
      { timeout: opts.timeoutMs ?? LIMITS.sleapNnProbeTimeoutMs, maxBuffer: 1024 * 1024, env: { ...(opts.env ?? process.env), PYTHONUNBUFFERED: '1' }, windowsHide: true },
      (err, stdout, stderr) => {
        const e = err as (NodeJS.ErrnoException & { killed?: boolean; code?: number | string }) | null;
        if (e && typeof e.code === 'string' && (e.code === 'ENOENT' || e.code === 'EACCES')) {
          reject(new SleapNnNotFoundError(executable, e.code === 'ENOENT' ? 'was not found' : 'is not executable (permission denied)', e));
          return;
        }
        const timedOut = Boolean(e?.killed);
        resolve({ code: e ? (typeof e.code === 'number' ? e.code : null) : 0, stdout: String(stdout), stderr: String(stderr), timedOut });
      },
    );
  });
}

function unusable(executable: string, what: string, r: Run, opts: ProbeOptions): SleapRtcError {
  const why = r.timedOut
    ? `did not answer within ${((opts.timeoutMs ?? LIMITS.sleapNnProbeTimeoutMs) / 1000).toFixed(1)} s`
    : `exited with code ${r.code ?? 'null'}${lastLine(r.stderr) ? `: ${lastLine(r.stderr)}` : ''}`;
  return new SleapRtcError(
    'SLEAP_NN_UNUSABLE',
    `sleap-nn at "${executable}" cannot run: \`${executable} ${what}\` ${why}. Check its installation (run that command yourself), or set [worker] sleap_nn to a working sleap-nn.`,
    { executable },
  );
}

const firstLine = (s: string): string => s.split('\n').find((l) => l.trim() !== '')?.trim().slice(0, 200) ?? '';
const lastLine = (s: string): string =>
  s
    .split('\n')
    .filter((l) => l.trim() !== '')
    .at(-1)
    ?.trim()
    .slice(0, 300) ?? '';
