/** `sleap-rtc fetch JOB_ID`: download the results a worker kept because their download was cut. */
import type { Command } from 'commander';
import { loadConfig, resolveSignaling } from '../../config/index.js';
import { UsageError } from '../../errors.js';
import { createLogger } from '../../log.js';
import { readPending } from '../../client/pending-results.js';
import { createReporter } from '../../client/reporter.js';
import { JobIdSchema } from '../../protocol/job.js';

interface FetchCliOptions {
  room?: string;
  token?: string;
  server?: string;
  worker?: string;
  output?: string;
  json?: boolean;
  config?: string;
}

export function register(program: Command): void {
  program
    .command('fetch')
    .description('Download the results of a finished job whose download was cut (the worker keeps them for 24 h by default); resumes part files.')
    .argument('<job-id>', 'the job id printed when the job started (and in --json)')
    .option('--room <id>', 'room of the worker (default: the room the job ran in, else $SLEAP_RTC_ROOM, else [signaling] room_id)')
    .option('--token <token>', 'the room\'s token (default: $SLEAP_RTC_TOKEN, else [signaling] token)')
    .option('--server <url>', 'signaling server (default: the job\'s, else $SLEAP_RTC_SERVER, else [signaling] server_url)')
    .option('--worker <name>', 'the worker that ran the job (default: from this machine\'s note of the job)')
    .option('--output <path>', 'where the results go: the folder for a training run, the predictions file for tracking (default: where the job would have put them)')
    .option('--json', 'print one JSON object with the result as the last line of stdout')
    .option('--config <file>', 'config file with [signaling] settings')
    .action(async (jobId: string, opts: FetchCliOptions) => {
      if (!JobIdSchema.safeParse(jobId).success) throw new UsageError(`"${jobId}" is not a job id; it looks like job-3f9a1c2b7d4e (printed when the job started).`);
      const log = createLogger({ name: 'client' });
      const config = await loadConfig({ ...(opts.config !== undefined ? { configPath: opts.config } : {}), logger: log });
      const note = await readPending(jobId);
      const signaling = resolveSignaling(config, { server_url: opts.server ?? note?.server_url, room_id: opts.room ?? note?.room_id, token: opts.token });
      if (!signaling.room_id || !signaling.token) {
        throw new UsageError(`sleap-rtc fetch needs the room's ${!signaling.room_id ? '--room ID and ' : ''}--token TOKEN (or SLEAP_RTC_ROOM / SLEAP_RTC_TOKEN).`);
      }
      const { fetchResults } = await import('../../client/fetch.js');
      const reporter = createReporter();
      const cancel = new AbortController();
      const onInterrupt = (): void => cancel.abort();
      process.on('SIGINT', onInterrupt);
      process.on('SIGTERM', onInterrupt);
      try {
        const result = await fetchResults({
          jobId,
          config,
          serverUrl: signaling.server_url,
          roomId: signaling.room_id,
          token: signaling.token,
          ...(opts.worker !== undefined ? { worker: opts.worker } : {}),
          ...(opts.output !== undefined ? { output: opts.output } : {}),
          reporter,
          logger: log,
          signal: cancel.signal,
        });
        reporter.close();
        if (opts.json) process.stdout.write(`${JSON.stringify(result)}\n`);
        else if (result.status === 'completed') process.stdout.write(result.outputs.map((o) => `${o}\n`).join(''));
        process.exitCode = result.status === 'completed' ? 0 : 1;
      } finally {
        reporter.close();
        process.off('SIGINT', onInterrupt);
        process.off('SIGTERM', onInterrupt);
      }
    });
}
