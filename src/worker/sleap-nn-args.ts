/**
 * Argument arrays for the sleap-nn command line. Pure functions; the result goes straight to
 * `spawn(file, args, { shell: false })`, so no element is ever interpreted by a shell.
 *
 * Two grammars still apply after the shell is gone, and both are handled here (the facts behind
 * every argument are listed in docs/jobs.md, "sleap-nn command lines"):
 * - sleap-nn's click parser (sleap_nn/cli.py): `--prefix-map` and `--video-path-map` take exactly
 *   two values each, `--config-name`/`--config-dir` one; every path is absolute, so no value can
 *   start with "-"; everything that is not an option goes to Hydra as an override.
 * - Hydra's override grammar for `key=value` arguments: every override the worker sets is written
 *   `++key=value` (set whether or not the config has the key; a plain `key=` fails in struct mode
 *   when the key is absent). A value like `a,b` or `[x]` or `${y}` would be split or interpolated
 *   by Hydra, letting a file name smuggle in a second labels path, so string values are always
 *   written as Hydra single-quoted strings (see `hydraQuote`).
 */
import { basename, dirname, isAbsolute, posix, win32 } from 'node:path';
import { SleapRtcError } from '../errors.js';

/** One path rewrite: `from` as the labels file names it (the client's side), `to` on this worker. */
export interface PathMapping {
  from: string;
  to: string;
}

interface TrainArgsBase {
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
  /**
   * sleap-nn's ZMQ callbacks: it connects its progress PUB to 127.0.0.1:`publishPort` and its
   * stop-command SUB to 127.0.0.1:`controllerPort`, where the worker's relay has bound.
   */
  zmq?: ZmqPorts;
}

/** The loopback ports of the worker's progress relay (progress-relay.ts); each is set only when given. */
export interface ZmqPorts {
  publishPort?: number;
  controllerPort?: number;
}

/**
 * How the videos named inside the labels file are found on this worker: at most one of
 * - `prefixMap`: one backend holds every video; the client's base path becomes the worker's
 *   (`--prefix-map OLD/ NEW/`, trailing separators added so `/Volumes/talmo` cannot match
 *   `/Volumes/talmo2/...`);
 * - `videoPathMap`: each video's own path as the labels file names it → its worker path
 *   (`--video-path-map OLD NEW`, once per video).
 */
export type TrainArgsInput = TrainArgsBase &
  (
    | { prefixMap?: PathMapping; videoPathMap?: undefined }
    | { prefixMap?: undefined; videoPathMap?: readonly PathMapping[] }
  );

/** sleap-nn's inference commands: `predict` (current pipeline) or `track` (legacy, for old installs). */
export type InferenceCommand = 'predict' | 'track';

export interface InferenceArgsInput {
  /** Found once at worker start (`probeSleapNn`). */
  command: InferenceCommand;
  /** Absolute path of the video or labels file to run inference on. */
  data: string;
  /** Absolute model directories (each holding best.ckpt and training_config.yaml). */
  models: readonly string[];
  /** Absolute path of the predictions file to write. */
  output: string;
}

/**
 * `train --config-name N --config-dir D [--prefix-map OLD/ NEW/ | --video-path-map OLD NEW ...]
 *  ++overrides...` (without the executable), the ZMQ ports included when given.
 */
export function buildTrainArgs(input: TrainArgsInput): string[] {
  const configFile = absolutePath(input.configFile, 'configFile');
  const args = ['train', '--config-name', basename(configFile), '--config-dir', dirname(configFile)];
  if (input.prefixMap !== undefined && input.videoPathMap !== undefined) {
    invalid('prefixMap', 'and videoPathMap were both given; sleap-nn accepts only one path replacement option per call');
  }
  if (input.prefixMap !== undefined) {
    const from = withTrailingSeparator(clientPath(input.prefixMap.from, 'prefixMap.from'));
    const to = withTrailingSeparator(absolutePath(input.prefixMap.to, 'prefixMap.to'));
    args.push('--prefix-map', from, to);
  }
  if (input.videoPathMap !== undefined) {
    if (input.videoPathMap.length === 0) invalid('videoPathMap', 'is empty; leave it out instead');
    const seen = new Set<string>();
    input.videoPathMap.forEach((m, i) => {
      const from = nonEmpty(m.from, `videoPathMap[${i}].from`);
      if (seen.has(from)) invalid(`videoPathMap[${i}].from`, `repeats ${JSON.stringify(from)}`);
      seen.add(from);
      args.push('--video-path-map', from, absolutePath(m.to, `videoPathMap[${i}].to`));
    });
  }
  args.push(
    `++data_config.train_labels_path=[${hydraQuote(absolutePath(input.labels, 'labels'))}]`,
    `++trainer_config.ckpt_dir=${hydraQuote(absolutePath(input.outputDir, 'outputDir'))}`,
    `++trainer_config.run_name=${hydraQuote(runName(input.runName))}`,
    // A remote training job exists to bring back a model: without this, sleap-nn's default
    // (false) writes no best.ckpt, no training_log.csv and runs no evaluation.
    '++trainer_config.save_ckpt=true',
  );
  if (input.maxEpochs !== undefined) args.push(`++trainer_config.max_epochs=${positiveInt(input.maxEpochs, 'maxEpochs')}`);
  if (input.batchSize !== undefined) {
    const n = positiveInt(input.batchSize, 'batchSize');
    args.push(`++trainer_config.train_data_loader.batch_size=${n}`, `++trainer_config.val_data_loader.batch_size=${n}`);
  }
  if (input.learningRate !== undefined) args.push(`++trainer_config.optimizer.lr=${hydraFloat(input.learningRate, 'learningRate')}`);
  if (input.zmq?.publishPort !== undefined) args.push(`++trainer_config.zmq.publish_port=${port(input.zmq.publishPort, 'zmq.publishPort')}`);
  if (input.zmq?.controllerPort !== undefined) args.push(`++trainer_config.zmq.controller_port=${port(input.zmq.controllerPort, 'zmq.controllerPort')}`);
  return args;
}

/** `predict|track --data_path D --model_paths M [--model_paths M ...] --output_path O` (without the executable). */
export function buildInferenceArgs(input: InferenceArgsInput): string[] {
  if (input.command !== 'predict' && input.command !== 'track') invalid('command', `must be predict or track, got ${JSON.stringify(input.command)}`);
  if (input.models.length === 0) invalid('models', 'at least one model directory is required');
  const args = [input.command, '--data_path', absolutePath(input.data, 'data')];
  input.models.forEach((m, i) => args.push('--model_paths', absolutePath(m, `models[${i}]`)));
  args.push('--output_path', absolutePath(input.output, 'output'));
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

/**
 * `p` ending in its own separator. sleap-io matches prefixes as plain strings, so without it
 * `/Volumes/talmo` would also rewrite `/Volumes/talmo2/...`. A Windows client path gets `\`
 * (sleap-io compares names with `\` turned into `/`, so either matches).
 */
export function withTrailingSeparator(p: string): string {
  if (p.endsWith('/') || p.endsWith('\\')) return p;
  return isWindowsAbsolute(p) && !p.includes('/') ? `${p}\\` : `${p}/`;
}

function isWindowsAbsolute(p: string): boolean {
  return /^[A-Za-z]:[\\/]/.test(p) || /^\\\\[^\\]/.test(p);
}

/** A path on the client: POSIX absolute, or Windows absolute (drive or UNC), as SLEAP saved it. */
function clientPath(value: string, field: string): string {
  if (typeof value !== 'string' || !(posix.isAbsolute(value) || (isWindowsAbsolute(value) && win32.isAbsolute(value)))) {
    invalid(field, `must be an absolute path, got ${JSON.stringify(value)}`);
  }
  if (value.includes('\0')) invalid(field, 'must not contain a NUL byte');
  return value;
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

function port(value: number, field: string): number {
  if (!Number.isSafeInteger(value) || value <= 0 || value > 65_535) invalid(field, `must be a TCP port (1 to 65535), got ${value}`);
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

/** A run name is one folder name: sleap-nn joins it under ckpt_dir. */
function runName(value: string): string {
  nonEmpty(value, 'runName');
  if (value === '.' || value === '..' || value.includes('/')) invalid('runName', `must be a single folder name, got ${JSON.stringify(value)}`);
  return value;
}

// The job layer validates requests before it builds arguments, so reaching this is a bug.
function invalid(field: string, message: string): never {
  throw new SleapRtcError('INTERNAL', `sleap-nn arguments: ${field} ${message}`, { field });
}
