/** `sleap-rtc track`: run inference on a worker; prints the predictions file. */
import type { Command } from 'commander';
import { addCommonJobOptions, runJobCommand, type CommonJobOptions } from './job-options.js';

interface TrackOptions extends CommonJobOptions {
  data: string;
  model: string[];
  output?: string;
}

export function register(program: Command): void {
  const cmd = program
    .command('track')
    .description('Run inference with trained models on a worker in the room; prints the predictions file.')
    .requiredOption('--data <path>', 'video or labels file to run inference on')
    .requiredOption('--model <dir>', 'trained model folder (holding best.ckpt); repeat for multi-model pipelines', (v: string, prev: string[]) => [...prev, v], [] as string[])
    .option('--output <file>', 'predictions file (default: <data>.predictions.slp beside the data; for files sent by transfer: in the current folder)');
  addCommonJobOptions(cmd).action(async (opts: TrackOptions) => {
    await runJobCommand({ jobType: 'track', data: opts.data, models: opts.model, ...(opts.output !== undefined ? { output: opts.output } : {}) }, opts);
  });
}
