/** `sleap-rtc train`: train a model on a worker, reading the data in place when the storage allows. */
import type { Command } from 'commander';
import { addCommonJobOptions, addLossViewerOptions, positiveInt, positiveNumber, runJobCommand, type CommonJobOptions } from './job-options.js';

interface TrainOptions extends CommonJobOptions {
  labels: string;
  configFile: string;
  output?: string;
  maxEpochs?: number;
  batchSize?: number;
  learningRate?: number;
  runName?: string;
}

export function register(program: Command): void {
  const cmd = program
    .command('train')
    .description('Train a SLEAP model on a worker in the room; prints the trained model folder.')
    .requiredOption('--labels <path>', 'labels file (.slp) to train on')
    .requiredOption('--config-file <path>', 'sleap-nn training config (.yaml)')
    .option('--output <dir>', 'folder that receives <run-name>/ (default: models/ beside the labels file; for files sent by transfer: the current folder)')
    .option('--max-epochs <n>', 'stop after this many epochs', positiveInt('--max-epochs', '100'))
    .option('--batch-size <n>', 'training and validation batch size', positiveInt('--batch-size', '4'))
    .option('--learning-rate <x>', 'optimizer learning rate', positiveNumber('--learning-rate', '0.0001'))
    .option('--run-name <name>', 'name of the run folder (default: run_<date>_<time>_<random>)');
  addLossViewerOptions(addCommonJobOptions(cmd)).action(async (opts: TrainOptions) => {
    await runJobCommand(
      {
        jobType: 'train',
        labels: opts.labels,
        configFile: opts.configFile,
        ...(opts.output !== undefined ? { output: opts.output } : {}),
        ...(opts.maxEpochs !== undefined ? { maxEpochs: opts.maxEpochs } : {}),
        ...(opts.batchSize !== undefined ? { batchSize: opts.batchSize } : {}),
        ...(opts.learningRate !== undefined ? { learningRate: opts.learningRate } : {}),
        ...(opts.runName !== undefined ? { runName: opts.runName } : {}),
      },
      opts,
    );
  });
}
