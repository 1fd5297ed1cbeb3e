/**
 * Argument arrays for the sleap-nn command line. Pure functions; the result goes straight to
 * `spawn(file, args, { shell: false })`, so no element is ever interpreted by a shell.
 *
 * Two grammars still apply after the shell is gone, and both are handled here:
 * - sleap-nn's own option parser: every path is required to be absolute, so no value can start
 *   with "-" and be taken for an option.
 * - Hydra's override grammar for `key=value` arguments: a value like `a,b` or `[x]` or `${y}` would
 *   be split or interpolated by Hydra, letting a file name smuggle in a second labels path. String
 *   values are therefore always written as Hydra single-quoted strings (see `hydraQuote`).
 */
import { basename, dirname, isAbsolute } from 'node:path';
import { SleapRtcError } from '../errors.js';

export interface TrainArgsInput {
  /** Absolute path of the training config (YAML); passed as --config-dir + --config-name. */
  configFile: string;
  /** Absolute path of the labels file. */
  labels: string;
  /** Absolute directory under which sleap-nn creates `<runName>/`. */
  outputDir: string;
  runName: string;
  maxEpochs?: number;
  /** Applied to both the training and the validation data loader. */
  batchSize?: number;
  learningRate?: number;
  /** Shared-storage jobs: rewrite video paths stored in the labels file from the client's mount to ours. */
  prefixMap?: { from: string; to: string };
}

export interface TrackArgsInput {
  /** Absolute path of the video or labels file to run inference on. */
  data: string;
  /** Absolute model directories (each holding best.ckpt and training_config.yaml). */
  models: readonly string[];
  /** Absolute path of the predictions file to write. */
  output: string;
}

/** `train --config-name ... --config-dir ... [--prefix-map A->B] overrides...` (without the executable). */
export function buildTrainArgs(input: TrainArgsInput): string[] {
  const configFile = absolutePath(input.configFile, 'configFile');
  const args = [
    'train',
    '--config-name',
    basename(configFile),
    '--config-dir',
    dirname(configFile),
  ];
  if (input.prefixMap) {
    const from = absolutePath(input.prefixMap.from, 'prefixMap.from');
    const to = absolutePath(input.prefixMap.to, 'prefixMap.to');
    for (const side of [from, to]) {
      if (side.includes('->')) invalid('prefixMap', `a prefix-map side may not contain "->": ${JSON.stringify(side)}`);
    }
    args.push('--prefix-map', `${from}->${to}`);
  }
  args.push(
    `data_config.train_labels_path=[${hydraQuote(absolutePath(input.labels, 'labels'))}]`,
    `trainer_config.ckpt_dir=${hydraQuote(absolutePath(input.outputDir, 'outputDir'))}`,
    `trainer_config.run_name=${hydraQuote(nonEmpty(input.runName, 'runName'))}`,
  );
  if (input.maxEpochs !== undefined) args.push(`trainer_config.max_epochs=${positiveInt(input.maxEpochs, 'maxEpochs')}`);
  if (input.batchSize !== undefined) {
    const n = positiveInt(input.batchSize, 'batchSize');
    args.push(`trainer_config.train_data_loader.batch_size=${n}`, `trainer_config.val_data_loader.batch_size=${n}`);
  }
  if (input.learningRate !== undefined) args.push(`trainer_config.optimizer.lr=${hydraFloat(input.learningRate, 'learningRate')}`);
  return args;
}

/** `track --data_path ... --model_paths ... [--model_paths ...] -o ...` (without the executable). */
export function buildTrackArgs(input: TrackArgsInput): string[] {
  if (input.models.length === 0) invalid('models', 'at least one model directory is required');
  const args = ['track', '--data_path', absolutePath(input.data, 'data')];
  input.models.forEach((m, i) => args.push('--model_paths', absolutePath(m, `models[${i}]`)));
  args.push('-o', absolutePath(input.output, 'output'));
  return args;
}

/**
 * A Hydra single-quoted string holding exactly `value`. Inside quotes Hydra treats a backslash
 * as an escape only before a quote, before `${` or at the very end; such backslash runs are
 * doubled, the quote and `${` themselves get one more backslash. Everything else is literal.
 */
export function hydraQuote(value: string): string {
  let out = "'";
  let i = 0;
  while (i < value.length) {
    let run = 0;
    while (value[i + run] === '\\') run++;
    const next = value[i + run];
    const atQuote = next === "'";
    const atInterp = next === '$' && value[i + run + 1] === '{';
    const atEnd = next === undefined;
    if (run > 0) out += '\\'.repeat(atQuote || atInterp || atEnd ? run * 2 : run);
    i += run;
    if (atEnd) break;
    if (atQuote) {
      out += "\\'";
      i += 1;
    } else if (atInterp) {
      out += '\\${';
      i += 2;
    } else {
      out += next;
      i += 1;
    }
  }
  return out + "'";
}

/** A number Hydra parses as a float (an integer value keeps a ".0" so it is not read as int). */
function hydraFloat(value: number, field: string): string {
  if (!Number.isFinite(value) || value <= 0) invalid(field, `must be a positive number, got ${value}`);
  return Number.isInteger(value) ? value.toFixed(1) : String(value);
}

function positiveInt(value: number, field: string): number {
  if (!Number.isSafeInteger(value) || value <= 0) invalid(field, `must be a positive integer, got ${value}`);
  return value;
}

function absolutePath(value: string, field: string): string {
  if (typeof value !== 'string' || !isAbsolute(value)) invalid(field, `must be an absolute path, got ${JSON.stringify(value)}`);
  if (value.includes('\0')) invalid(field, 'must not contain a NUL byte');
  return value;
}

function nonEmpty(value: string, field: string): string {
  if (typeof value !== 'string' || value.length === 0 || value.includes('\0')) invalid(field, 'must be a non-empty string');
  return value;
}

// The job layer validates requests before it builds arguments, so reaching this is a bug.
function invalid(field: string, message: string): never {
  throw new SleapRtcError('INTERNAL', `sleap-nn arguments: ${field} ${message}`, { field });
}
