/**
 * What `sleap-rtc train` and `sleap-rtc track` share: the connection, worker and storage flags,
 * and running the job with Ctrl-C wired to a remote cancel. Results go to stdout (paths, or one
 * JSON object with --json); everything else goes to stderr.
 */
import type { Command } from 'commander';
import { loadConfig, resolveSignaling } from '../../config/index.js';
import { UsageError, type ErrorCode } from '../../errors.js';
import { LIMITS } from '../../limits.js';
import { createLogger } from '../../log.js';
import type { JobArgs } from '../../client/plan.js';
import { createReporter } from '../../client/reporter.js';
import type { LiveJob } from '../../client/live-job.js';
import type { JobResult } from '../../client/run-job.js';
import type { Watchers } from '../../client/watch.js';
import { checkZmqAddress } from '../../client/zmq-address.js';

export interface CommonJobOptions {
  room?: string;
  token?: string;
  server?: string;
  worker?: string;
  queueTimeout?: number;
  storageBackend?: string;
  userSubdir?: string;
  /** commander's --no-fallback sets this false. */
  fallback: boolean;
  json?: boolean;
  config?: string;
  ui?: boolean;
  uiPort?: number;
  uiHost?: string;
  /** train only: SLEAP's LossViewer sockets. */
  zmqPublish?: string;
  zmqControl?: string;
}

export function addCommonJobOptions(cmd: Command): Command {
  return cmd
    .option('--room <id>', 'room to use (default: $SLEAP_RTC_ROOM, else [signaling] room_id in the config)')
    .option('--token <token>', 'the room\'s token (default: $SLEAP_RTC_TOKEN, else [signaling] token)')
    .option('--server <url>', 'signaling server, or several comma-separated (processes on one Redis store), tried in turn (default: $SLEAP_RTC_SERVER, else [signaling] server_url, else http://127.0.0.1:8080)')
    .option('--worker <name>', 'run on this worker (its name or peer id); default: the server picks a free worker that can serve the job')
    .option('--queue-timeout <seconds>', 'give up when no suitable worker is free within this long (default: wait; 0: only if one is free now)', nonNegativeNumber('--queue-timeout', '600'))
    .option('--storage-backend <name>', 'read the inputs in place on this configured backend (default: the backend whose base path holds them)')
    .option('--user-subdir <dir>', 'your folder under the backend\'s base path (default: inferred from the inputs\' location)')
    .option('--no-fallback', 'fail instead of sending the files when the worker cannot read them on shared storage')
    .option('--json', 'print one JSON object with the result as the last line of stdout')
    .option('--config <file>', 'config file with [storage.*] backends and [signaling] settings')
    .option('--ui', 'serve a live page for the job (loss curves, ETA, last log lines, Stop) and print its address')
    .option('--ui-port <port>', 'port of the live page (default: a free one)', portNumber('--ui-port', '8765'))
    .option('--ui-host <host>', 'address the live page listens on (default 127.0.0.1; any other needs the token printed in its URL)');
}

/** `train` only: re-publish progress for SLEAP's LossViewer and take its stop command. */
export function addLossViewerOptions(cmd: Command): Command {
  return cmd
    .option('--zmq-publish <address>', "re-publish sleap-nn's progress events to this ZMQ address, where SLEAP's LossViewer listens (e.g. tcp://127.0.0.1:9001)", (v: string) => checkZmqAddress('--zmq-publish', v))
    .option('--zmq-control <address>', "take LossViewer's stop command from this ZMQ address (e.g. tcp://127.0.0.1:9000)", (v: string) => checkZmqAddress('--zmq-control', v));
}

function portNumber(flag: string, example: string): (text: string) => number {
  return (text) => {
    if (!/^[0-9]{1,5}$/.test(text) || Number(text) > 65535) throw new UsageError(`${flag} must be a port number from 0 to 65535, not "${text}"; e.g. ${flag} ${example}.`);
    return Number(text);
  };
}

/** Parse a whole number flag, >= 1. */
export function positiveInt(flag: string, example: string): (text: string) => number {
  return (text) => {
    if (!/^[1-9][0-9]*$/.test(text) || !Number.isSafeInteger(Number(text))) {
      throw new UsageError(`${flag} must be a whole number of at least 1, not "${text}"; e.g. ${flag} ${example}.`);
    }
    return Number(text);
  };
}

export function nonNegativeNumber(flag: string, example: string): (text: string) => number {
  return (text) => {
    const n = Number(text);
    if (text.trim() === '' || !Number.isFinite(n) || n < 0 || n > LIMITS.routingMaxQueueTimeoutS) {
      throw new UsageError(`${flag} must be a number of seconds from 0 to ${LIMITS.routingMaxQueueTimeoutS} (a week), not "${text}"; e.g. ${flag} ${example}.`);
    }
    return n;
  };
}

export function positiveNumber(flag: string, example: string): (text: string) => number {
  return (text) => {
    const n = Number(text);
    if (text.trim() === '' || !Number.isFinite(n) || n <= 0) throw new UsageError(`${flag} must be a number above 0, not "${text}"; e.g. ${flag} ${example}.`);
    return n;
  };
}

/** Runs the job and sets the exit code: 0 only when it completed. */
export async function runJobCommand(args: Omit<JobArgs, 'cwd' | 'storageBackend' | 'userSubdir'>, opts: CommonJobOptions): Promise<void> {
  const log = createLogger({ name: 'client' });
  const config = await loadConfig({ ...(opts.config !== undefined ? { configPath: opts.config } : {}), logger: log });
  const signaling = resolveSignaling(config, { server_url: opts.server, room_id: opts.room, token: opts.token });
  if (!signaling.room_id || !signaling.token) {
    const missing = [!signaling.room_id && '--room ID (or SLEAP_RTC_ROOM)', !signaling.token && '--token TOKEN (or SLEAP_RTC_TOKEN)'].filter(Boolean);
    throw new UsageError(`sleap-rtc ${args.jobType} needs ${missing.join(' and ')}: the room the workers are in, e.g. \`sleap-rtc ${args.jobType} --room ROOM --token TOKEN ...\`.`);
  }
  if (opts.uiHost !== undefined && !opts.ui) throw new UsageError('--ui-host only goes with --ui.');
  if (opts.uiPort !== undefined && !opts.ui) throw new UsageError('--ui-port only goes with --ui.');
  // Loaded here, not at start, so other commands (and --help) do not load the client.
  const [{ runJob }, { watchJob }] = await Promise.all([import('../../client/run-job.js'), import('../../client/watch.js')]);
  const reporter = createReporter();
  const cancel = new AbortController();
  let live: LiveJob | null = null;
  let watchers: Watchers | null = null;
  // Ctrl-C while sleap-nn trains: stop early (keep the model), then cancel, then quit. Otherwise: cancel, then quit.
  const onInterrupt = (signal: NodeJS.Signals): void => {
    if (signal === 'SIGINT' && !cancel.signal.aborted && live?.canStop) {
      live.requestStop('ctrl-c');
      reporter.info('Ctrl-C: stopping training early; sleap-nn ends the epoch and saves the model (Ctrl-C again cancels the job, a third time quits at once)');
      return;
    }
    if (cancel.signal.aborted) {
      reporter.close();
      process.stderr.write('Interrupted again: quitting without waiting for the worker.\n');
      process.exit(130);
    }
    reporter.info('Ctrl-C: cancelling the job on the worker (press Ctrl-C again to quit at once)');
    cancel.abort();
  };
  process.on('SIGINT', onInterrupt);
  process.on('SIGTERM', onInterrupt);
  try {
    const result = await runJob({
      args: {
        ...args,
        cwd: process.cwd(),
        ...(opts.storageBackend !== undefined ? { storageBackend: opts.storageBackend } : {}),
        ...(opts.userSubdir !== undefined ? { userSubdir: opts.userSubdir } : {}),
      },
      config,
      serverUrl: signaling.server_url,
      roomId: signaling.room_id,
      token: signaling.token,
      ...(opts.worker !== undefined ? { worker: opts.worker } : {}),
      ...(opts.queueTimeout !== undefined ? { queueTimeoutS: opts.queueTimeout } : {}),
      noFallback: !opts.fallback,
      reporter,
      logger: log,
      signal: cancel.signal,
      onLive: async (l) => {
        live = l;
        watchers = watchJob(l, {
          reporter,
          ...(opts.ui ? { ui: { ...(opts.uiHost !== undefined ? { host: opts.uiHost } : {}), ...(opts.uiPort !== undefined ? { port: opts.uiPort } : {}) } } : {}),
          ...(opts.zmqPublish !== undefined || opts.zmqControl !== undefined ? { lossViewer: { ...(opts.zmqPublish !== undefined ? { publish: opts.zmqPublish } : {}), ...(opts.zmqControl !== undefined ? { control: opts.zmqControl } : {}) } } : {}),
        });
        await watchers.ready;
      },
    });
    await (watchers as Watchers | null)?.close();
    reporter.close();
    if (opts.json) process.stdout.write(`${JSON.stringify(result)}\n`);
    else if (result.status === 'completed' || result.status === 'stopped_early') process.stdout.write(result.outputs.map((o) => `${o}\n`).join(''));
    process.exitCode = exitCodeOf(result);
  } finally {
    await (watchers as Watchers | null)?.close();
    reporter.close();
    process.off('SIGINT', onInterrupt);
    process.off('SIGTERM', onInterrupt);
  }
}

/** Errors after planning that the user fixes on this command line (exit 2); anything else the job met is exit 1. */
const FIX_THE_COMMAND: ReadonlySet<ErrorCode> = new Set(['INVALID_TOKEN', 'USAGE']);

/** 0 only when the job completed. A worker's own configuration problem (say SLEAP_NN_NOT_FOUND) is not the client's to fix: 1. */
export function exitCodeOf(result: JobResult): 0 | 1 | 2 {
  if (result.status === 'completed' || result.status === 'stopped_early') return 0;
  return result.error && FIX_THE_COMMAND.has(result.error.code) ? 2 : 1;
}
