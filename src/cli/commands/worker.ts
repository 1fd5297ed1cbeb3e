/** `sleap-rtc worker`: join a room as a GPU worker and run jobs until SIGINT/SIGTERM. */
import type { Command } from 'commander';
import { loadConfig, resolveSignaling } from '../../config/index.js';
import { UsageError, type SleapRtcError } from '../../errors.js';
import { createLogger } from '../../log.js';
import { IdSchema } from '../../protocol/common.js';

interface WorkerCliOptions {
  room?: string;
  token?: string;
  server?: string;
  config?: string;
  name?: string;
}

export function register(program: Command): void {
  program
    .command('worker')
    .description('Join a room as a worker: advertise this machine\'s storage backends and GPU, and run the jobs clients send.')
    .option('--room <id>', 'room to join (default: $SLEAP_RTC_ROOM, else [signaling] room_id in the config)')
    .option('--token <token>', 'the room\'s token (default: $SLEAP_RTC_TOKEN, else [signaling] token)')
    .option('--server <url>', 'signaling server, or several comma-separated (processes on one Redis store), tried in turn (default: $SLEAP_RTC_SERVER, else [signaling] server_url, else http://127.0.0.1:8080)')
    .option('--config <file>', 'config file with [storage.*] backends and the [worker] section')
    .option('--name <name>', 'this worker\'s name in the room (default: [worker] name, else the host name)')
    .action(async (opts: WorkerCliOptions) => {
      await runWorker(opts);
    });
}

async function runWorker(opts: WorkerCliOptions): Promise<void> {
  const log = createLogger({ name: 'worker' });
  const config = await loadConfig({ ...(opts.config !== undefined ? { configPath: opts.config } : {}), logger: log });
  const signaling = resolveSignaling(config, { server_url: opts.server, room_id: opts.room, token: opts.token });
  if (!signaling.room_id || !signaling.token) {
    const missing = [!signaling.room_id && '--room ID (or SLEAP_RTC_ROOM)', !signaling.token && '--token TOKEN (or SLEAP_RTC_TOKEN)'].filter(Boolean);
    throw new UsageError(
      `The worker needs ${missing.join(' and ')}. Create a room with \`sleap-rtc room create\`, then run e.g. \`sleap-rtc worker --room ROOM --token TOKEN\`.`,
    );
  }
  if (opts.name !== undefined && !IdSchema.safeParse(opts.name).success) {
    throw new UsageError(`--name "${opts.name}" is not a usable name: use letters, digits, ".", "_" or "-" (at most 128, starting with a letter or digit), e.g. --name gpu-1.`);
  }
  // Loaded here, not at start, so other commands (and --help) do not load the worker.
  const { startWorker } = await import('../../worker/worker.js');
  const worker = await startWorker({
    config,
    serverUrl: signaling.server_url,
    roomId: signaling.room_id,
    token: signaling.token,
    ...(opts.name !== undefined ? { name: opts.name } : {}),
    logger: log,
  });
  const backends = worker.capabilities.storage_backends;
  // Tests and scripts wait for this exact line.
  log.info(
    `worker ${worker.name} ready in room ${signaling.room_id} as peer ${worker.peerId}; ` +
      `backends: ${backends.length ? backends.join(', ') : '(none)'}; jobs: ${worker.capabilities.job_types.join(', ')}`,
  );

  let stops = 0;
  const stopped = new Promise<NodeJS.Signals>((resolve) => {
    const onSignal = (sig: NodeJS.Signals): void => {
      stops += 1;
      if (stops > 1) {
        log.warn(`${sig} again: exiting without waiting for jobs to stop`);
        process.exit(1);
      }
      resolve(sig);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
  const gone = new Promise<SleapRtcError | null>((resolve) => worker.signaling.once('closed', (reason) => resolve(reason)));
  const why = await Promise.race([stopped, gone]);
  if (typeof why !== 'string') {
    // Closed for good: the server says the room was deleted. Nothing new can reach this worker,
    // but running jobs talk to their clients directly, so they are finished, not cancelled.
    const running = worker.runningJobs;
    log.error(
      `${why?.message ?? 'The signaling connection closed for good.'} This worker takes no new jobs` +
        (running ? `; it finishes its ${running} running job(s) first, then exits (SIGTERM to cancel them).` : ' and exits.'),
    );
    const stop = await Promise.race([worker.whenIdle().then(() => null), stopped]);
    if (stop !== null) log.info(`${stop} received; cancelling ${worker.runningJobs} running job(s)`);
    await worker.close();
    process.exitCode = 1;
    return;
  }
  log.info(`${why} received; ${worker.runningJobs ? `cancelling ${worker.runningJobs} running job(s) and ` : ''}leaving the room (press Ctrl-C again to exit at once)`);
  await worker.close();
}
