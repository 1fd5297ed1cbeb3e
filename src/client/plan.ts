/**
 * Planning a job on the client, before any network: which local files it needs, whether they can
 * be read in place on shared storage (and as which backend + user folder + relative paths), where
 * the results will appear on this machine, and the file names a transfer job would use instead.
 *
 * Shared storage is chosen when every input lies under one backend (toRelative): `--storage-backend`
 * names it (and then it must hold every input), otherwise the backend whose base contains the
 * inputs is found. Outputs of a shared job stay on the same backend.
 */
import { randomBytes } from 'node:crypto';
import { lstat, stat } from 'node:fs/promises';
import path from 'node:path';
import { SleapRtcError, UsageError } from '../errors.js';
import { IdSchema, type JobType } from '../protocol/common.js';
import type { JobRequest, PathField, VideoFile } from '../protocol/job.js';
import { checkRelativePath, PathNotInBackendError, PathValidationError, type StorageConfig, StorageResolver } from '../storage/index.js';
import { isLabelsFile, planVideos, videoRefs, type PlannedVideo } from './videos.js';

export interface JobArgs {
  jobType: JobType;
  labels?: string;
  configFile?: string;
  data?: string;
  models?: string[];
  output?: string;
  maxEpochs?: number;
  batchSize?: number;
  learningRate?: number;
  runName?: string;
  storageBackend?: string;
  userSubdir?: string;
  /** Relative paths on the command line are taken from here. */
  cwd: string;
}

export interface LocalInput {
  field: PathField;
  /** Absolute path on this machine. */
  local: string;
  kind: 'file' | 'directory';
  /** Its name in the worker's staging folder if the files are sent. */
  staged: string;
}

export interface SharedPlan {
  backend: string;
  userSubdir: string;
  /** This machine's base path of the backend (the worker's --prefix-map source). */
  basePath: string;
  request: JobRequest;
}

export interface JobPlan {
  jobId: string;
  jobType: JobType;
  runName: string | undefined;
  inputs: LocalInput[];
  /** Null when the files must be sent; `transferReason` then says why. */
  shared: SharedPlan | null;
  transferReason: string | null;
  /** Where a transfer job's results are written here: a folder (train, gets `<run>/`) or a file (track). */
  transferDestination(fellBack: boolean): string;
  /** The request of a transfer job (names in the worker's staging folder). */
  transferRequest: JobRequest;
  /** The external video files of the labels file (train) or of a `.slp` to predict on (track). */
  videos: PlannedVideo[];
  /** The same videos as inputs to send when a worker asks for them (`videos.N`). */
  videoInputs: LocalInput[];
}

const TRANSFER_TRAIN_OUTPUT = 'output';

export async function planJob(args: JobArgs, storage: StorageConfig): Promise<JobPlan> {
  const abs = (p: string): string => path.resolve(args.cwd, p);
  const jobId = `job-${randomBytes(6).toString('hex')}`;
  const inputs = await localInputs(args, abs);
  const runName = args.jobType === 'train' ? checkedRunName(args.runName) : undefined;
  const first = inputs[0] as LocalInput;
  // Where a shared job writes (and where a fallen-back job's results go): --output, else beside the input.
  const sharedOutput = args.output !== undefined ? abs(args.output) : args.jobType === 'train' ? path.join(path.dirname(first.local), 'models') : `${first.local}.predictions.slp`;

  const transferOutputName = args.jobType === 'track' ? safeName(path.basename(sharedOutput)) : TRANSFER_TRAIN_OUTPUT;
  assignStagedNames(inputs, transferOutputName);
  // The labels file's videos: listed and found now, so a bad labels file stops the job here (exit 2).
  const labelsInput = inputs.find((i) => i.field === 'labels' || (i.field === 'data' && isLabelsFile(i.local)));
  const videos = labelsInput ? await planVideos(labelsInput.local, args.cwd, storage, new Set([transferOutputName, ...inputs.map((i) => i.staged)])) : [];
  const videoInputs: LocalInput[] = videos.map((v) => ({ field: v.field, local: v.local, kind: 'file', staged: v.staged }));
  const videosPart = (shared: boolean): { videos?: VideoFile[] } => (labelsInput ? { videos: videoRefs(videos, shared) } : {});
  const spec = (paths: Map<PathField, string>, output: string, shared: boolean): JobRequest['spec'] =>
    args.jobType === 'train'
      ? {
          labels: paths.get('labels') as string,
          config_file: paths.get('config_file') as string,
          output,
          run_name: runName as string,
          ...(args.maxEpochs !== undefined ? { max_epochs: args.maxEpochs } : {}),
          ...(args.batchSize !== undefined ? { batch_size: args.batchSize } : {}),
          ...(args.learningRate !== undefined ? { learning_rate: args.learningRate } : {}),
          ...videosPart(shared),
        }
      : {
          data: paths.get('data') as string,
          models: inputs.filter((i) => i.field.startsWith('models.')).map((i) => paths.get(i.field) as string),
          output,
          ...videosPart(shared),
        };
  const request = (transfer: 'shared' | 'webrtc', paths: Map<PathField, string>, output: string, storagePart?: JobRequest['storage']): JobRequest =>
    ({ type: 'JOB_REQUEST', job_id: jobId, job_type: args.jobType, spec: spec(paths, output, transfer === 'shared'), transfer, ...(storagePart ? { storage: storagePart } : {}) }) as JobRequest;

  const transferRequest = request('webrtc', new Map(inputs.map((i) => [i.field, i.staged])), transferOutputName);
  const transferDestination = (fellBack: boolean): string => {
    if (args.output !== undefined || fellBack) return sharedOutput;
    return args.jobType === 'train' ? args.cwd : path.join(args.cwd, transferOutputName);
  };

  const placed = await placeOnBackend(args, storage, inputs, sharedOutput);
  // The run folder must be new where the results will land (the worker refuses an existing one on
  // shared storage too; here the user hears it before anything is sent or queued).
  if (runName !== undefined) await refuseExistingRunFolder(path.join('reason' in placed ? transferDestination(false) : sharedOutput, runName));
  if ('reason' in placed) {
    return { jobId, jobType: args.jobType, runName, inputs, shared: null, transferReason: placed.reason, transferDestination, transferRequest, videos, videoInputs };
  }
  const { backend, userSubdir, below } = placed;
  const relative = (p: string): string => {
    const b = below.get(p) as string;
    return userSubdir === '' ? b : b === userSubdir ? '' : b.slice(userSubdir.length + 1);
  };
  const shared: SharedPlan = {
    backend: backend.name,
    userSubdir,
    basePath: backend.basePath,
    request: request(
      'shared',
      new Map(inputs.map((i) => [i.field, relative(i.local)])),
      relative(sharedOutput),
      { storage_backend: backend.name, user_subdir: userSubdir, client_base_path: backend.basePath },
    ),
  };
  return { jobId, jobType: args.jobType, runName, inputs, shared, transferReason: null, transferDestination, transferRequest, videos, videoInputs };
}

// ---- inputs -----------------------------------------------------------------------------------

async function localInputs(args: JobArgs, abs: (p: string) => string): Promise<LocalInput[]> {
  const wanted: { field: PathField; flag: string; value: string | undefined; kind: 'file' | 'directory' }[] =
    args.jobType === 'train'
      ? [
          { field: 'labels', flag: '--labels', value: args.labels, kind: 'file' },
          { field: 'config_file', flag: '--config-file', value: args.configFile, kind: 'file' },
        ]
      : [
          { field: 'data', flag: '--data', value: args.data, kind: 'file' },
          ...(args.models ?? []).map((m, i) => ({ field: `models.${i}` as PathField, flag: '--model', value: m, kind: 'directory' as const })),
        ];
  if (args.jobType === 'track' && !args.models?.length) throw new UsageError('track needs at least one --model DIR (a trained model folder holding best.ckpt).');
  if (wanted.length > 17) throw new UsageError('track takes at most 16 --model folders.');
  const out: LocalInput[] = [];
  for (const w of wanted) {
    if (w.value === undefined || w.value === '') throw new UsageError(`${args.jobType} needs ${w.flag} PATH.`);
    const local = abs(w.value);
    const st = await stat(local).catch(() => undefined);
    if (!st) throw new UsageError(`${w.flag} ${w.value}: no such ${w.kind === 'file' ? 'file' : 'folder'} (looked for ${local}).`);
    if (w.kind === 'file' && !st.isFile()) throw new UsageError(`${w.flag} ${w.value} is ${st.isDirectory() ? 'a folder' : 'not a regular file'}; give a file.`);
    if (w.kind === 'directory' && !st.isDirectory()) throw new UsageError(`${w.flag} ${w.value} is not a folder; give the model folder (the one holding best.ckpt).`);
    out.push({ field: w.field, local, kind: w.kind, staged: '' });
  }
  return out;
}

async function refuseExistingRunFolder(runFolder: string): Promise<void> {
  const st = await lstat(runFolder).catch(() => undefined);
  if (!st) return;
  throw new SleapRtcError(
    'RUN_FOLDER_EXISTS',
    `The run folder ${runFolder} already exists; sleap-rtc does not train into an existing run folder. Choose another --run-name, or move that folder away.`,
    { path: runFolder },
  );
}

function checkedRunName(runName: string | undefined): string {
  if (runName === undefined) {
    const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('T', '_').slice(0, 15);
    return `run_${stamp}_${randomBytes(2).toString('hex')}`;
  }
  if (!IdSchema.safeParse(runName).success) {
    throw new UsageError(`--run-name "${runName}" is not usable as a folder name: use letters, digits, ".", "_" or "-", starting with a letter or digit, e.g. --run-name centroid_v2.`);
  }
  return runName;
}

/** One plain, distinct name per input in the staging folder, none equal to the output's. */
function assignStagedNames(inputs: LocalInput[], outputName: string): void {
  const used = new Set([outputName]);
  inputs.forEach((input, i) => {
    let name = safeName(path.basename(input.local));
    if (used.has(name)) name = `${i + 1}-${name}`;
    used.add(name);
    input.staged = name;
  });
}

/** A base name the worker's lexical path rules accept. */
function safeName(name: string): string {
  const cleaned = name.replace(/[\\\0]/g, '_');
  return cleaned === '' || cleaned === '.' || cleaned === '..' ? 'file' : cleaned;
}

// ---- shared storage ---------------------------------------------------------------------------

type Placement =
  | { backend: { name: string; basePath: string }; userSubdir: string; below: Map<string, string> }
  | { reason: string };

/**
 * The backend and user folder every input (and the output) lies under, with each path below the
 * base; or why the files must be sent instead. Throws for what the user must fix (exit 2).
 */
async function placeOnBackend(args: JobArgs, storage: StorageConfig, inputs: LocalInput[], output: string): Promise<Placement> {
  const resolver = new StorageResolver(storage);
  const named = args.storageBackend;
  if (named !== undefined) storage.getBackend(named); // StorageBackendNotFound lists the configured ones
  const below = new Map<string, string>();
  const locations: { local: string; backend: string; userSubdir: string }[] = [];
  for (const input of inputs) {
    let loc;
    try {
      loc = await resolver.toRelative(input.local, named);
    } catch (err) {
      if (named !== undefined) throw err;
      if (err instanceof PathNotInBackendError) {
        return { reason: storage.listBackends().length ? `${input.field} is not under any storage backend` : 'no storage backends are configured' };
      }
      if (err instanceof PathValidationError) return { reason: `${input.field} has a name shared storage cannot carry (${err.rule})` };
      throw err;
    }
    locations.push({ local: input.local, backend: loc.backend, userSubdir: loc.userSubdir });
    below.set(input.local, [loc.userSubdir, loc.relativePath].filter((s) => s !== '').join('/'));
  }
  const backends = [...new Set(locations.map((l) => l.backend))];
  if (backends.length > 1) return { reason: `the inputs lie on different storage backends (${backends.join(', ')})` };
  const backend = storage.getBackend(backends[0] as string);

  try {
    const loc = await resolver.toRelative(output, backend.name);
    below.set(output, [loc.userSubdir, loc.relativePath].filter((s) => s !== '').join('/'));
  } catch (err) {
    if (!(err instanceof PathNotInBackendError || err instanceof PathValidationError)) throw err;
    const flag = args.output !== undefined ? `--output ${args.output}` : `the default output ${output}`;
    throw new UsageError(
      `${flag} is not under storage backend '${backend.name}' (${backend.basePath}), where the inputs are: a shared-storage job writes its results on the same backend. ` +
        `Give an --output under ${backend.basePath}, or leave --output out.`,
    );
  }

  let userSubdir: string;
  if (args.userSubdir !== undefined) {
    try {
      checkRelativePath(args.userSubdir, { allowEmpty: true });
    } catch (err) {
      throw new UsageError(`--user-subdir ${JSON.stringify(args.userSubdir)}: ${(err as Error).message}`);
    }
    userSubdir = args.userSubdir;
    for (const [local, b] of below) {
      if (!isUnder(userSubdir, b)) {
        throw new UsageError(`${local} is not under ${path.join(backend.basePath, userSubdir)}: with --user-subdir ${userSubdir}, every input and the output must lie in that folder of backend '${backend.name}'.`);
      }
    }
  } else {
    const inferred = locations[0]?.userSubdir ?? '';
    userSubdir = [...below.values()].every((b) => isUnder(inferred, b)) ? inferred : commonFolder([...below.values()]);
  }
  return { backend, userSubdir, below };
}

function isUnder(folder: string, p: string): boolean {
  return folder === '' || p === folder || p.startsWith(`${folder}/`);
}

/** The deepest folder (POSIX, relative) holding every path; a path's own last segment is never used. */
function commonFolder(paths: readonly string[]): string {
  const split = paths.map((p) => p.split('/').slice(0, -1));
  const first = split[0] ?? [];
  let n = 0;
  while (n < first.length && split.every((s) => s[n] === first[n])) n++;
  return first.slice(0, n).join('/');
}
