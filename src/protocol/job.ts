/**
 * Job messages on the client <-> worker data channel: JSON text frames with a `type`, one strict
 * schema each, one discriminated union per direction. docs/jobs.md describes the conversation.
 *
 * Paths: every path in a job is a relative POSIX path. In a shared-storage job it is relative to
 * `<backend base>/<user_subdir>` on whichever machine reads it; in a transfer job it is relative to
 * the worker's staging folder for the job (the client picks the names, the worker asks for the
 * files). The schema only rejects what is never a path (too long, NUL); confinement under the
 * base is decided when the worker resolves the path, which answers PATH_ERROR naming the field.
 *
 * SHARED_INPUT_PATH / SHARED_OUTPUT_PATH are typed path references, not separate requests: the
 * request already names backend and user_subdir once for all its paths, and the worker echoes
 * each checked path back as one of these inside PATH_VALIDATED, and lists its outputs as
 * SHARED_OUTPUT_PATH in JOB_COMPLETE, so either side can turn them into a path on its own mount.
 */
import { z } from 'zod';
import { LIMITS } from '../limits.js';
import { BackendNameSchema, ErrorCodeSchema, ErrorMessageSchema, IdSchema } from './common.js';
import { decodeMessage, typesOf } from './codec.js';
import { JobStopReplySchema, JobStopSchema, TrainEventSchema } from './progress.js';

// ---- building blocks ------------------------------------------------------------------------

const noNul = (s: string): boolean => !s.includes('\0');
const fitsPathLimit = (s: string): boolean => Buffer.byteLength(s) <= LIMITS.relativePathMaxBytes;

/** A relative POSIX path; lexical and confinement rules are applied at resolution. */
export const RelativePathSchema = z
  .string()
  .min(1)
  .refine(fitsPathLimit, `must be at most ${LIMITS.relativePathMaxBytes} bytes`)
  .refine(noNul, 'must not contain a NUL byte');

/** A relative path that may be "" (the user folder itself): outputs and path references. */
export const MaybeEmptyRelativePathSchema = z
  .string()
  .refine(fitsPathLimit, `must be at most ${LIMITS.relativePathMaxBytes} bytes`)
  .refine(noNul, 'must not contain a NUL byte');

/** The user's folder under a backend base ("" means the base itself). */
export const UserSubdirSchema = MaybeEmptyRelativePathSchema;

/** The client's own base path for the backend; only used to build sleap-nn's --prefix-map. */
export const ClientBasePathSchema = z
  .string()
  .min(1)
  .refine(fitsPathLimit, `must be at most ${LIMITS.relativePathMaxBytes} bytes`)
  .refine((s) => !/[\0\n\r]/.test(s), 'must not contain NUL or line breaks')
  .refine((s) => !s.includes('->'), 'must not contain "->" (the prefix-map separator)');

export const JobIdSchema = IdSchema;

/** A control-channel message about one job: its `type`, the job (`job_id`), then its own fields. */
function jobMessage<const T extends string, F extends z.core.$ZodLooseShape>(type: T, fields: F) {
  return z.strictObject({ type: z.literal(type), job_id: JobIdSchema, ...fields });
}
/** sleap-nn's run name becomes a folder name under the output directory. */
export const RunNameSchema = IdSchema;

export const TransferModeSchema = z.enum(['shared', 'webrtc']);
export type TransferMode = z.infer<typeof TransferModeSchema>;

const Line = z.string().max(LIMITS.jobLogMaxLineChars);
const Sentence = z.string().max(2000);

/**
 * Which part of a request a path check is about: `labels`, `config_file`, `data`, `models.0`,
 * `output`, `user_subdir`, or `videos.N`, the N-th entry of the spec's `videos` list.
 */
export const PathFieldSchema = z
  .string()
  .regex(/^(labels|config_file|data|output|user_subdir|models\.(0|[1-9][0-9]?)|videos\.(0|[1-9][0-9]{0,3}))$/, 'must name a path field of the job');
export type PathField = z.infer<typeof PathFieldSchema>;

export const PathErrorRuleSchema = z.enum(['missing', 'outside_base', 'not_readable', 'not_writable', 'invalid']);
export type PathErrorRule = z.infer<typeof PathErrorRuleSchema>;

const sharedPathFields = {
  storage_backend: BackendNameSchema,
  user_subdir: UserSubdirSchema,
  relative_path: MaybeEmptyRelativePathSchema,
};
export const SharedInputPathSchema = z.strictObject({ type: z.literal('SHARED_INPUT_PATH'), ...sharedPathFields });
export const SharedOutputPathSchema = z.strictObject({ type: z.literal('SHARED_OUTPUT_PATH'), ...sharedPathFields });
export const SharedPathSchema = z.discriminatedUnion('type', [SharedInputPathSchema, SharedOutputPathSchema]);
export type SharedInputPath = z.infer<typeof SharedInputPathSchema>;
export type SharedOutputPath = z.infer<typeof SharedOutputPathSchema>;
export type SharedPath = z.infer<typeof SharedPathSchema>;

/** Where a shared-storage job's paths live. */
export const JobStorageSchema = z.strictObject({
  storage_backend: BackendNameSchema,
  user_subdir: UserSubdirSchema,
  /** Lets sleap-nn rewrite absolute video paths that the client's labels file holds. */
  client_base_path: ClientBasePathSchema.optional(),
});
export type JobStorage = z.infer<typeof JobStorageSchema>;

/**
 * One distinct video file that the labels file (train) or the `.slp` to predict on (track) names.
 * The worker reads the labels file itself for the names SLEAP stored; this says where each such
 * file is for the worker. With `storage_backend` (and `user_subdir`): a file on that backend (it
 * may be another backend than the labels file's), `path` relative to `<base>/<user_subdir>`.
 * Without: the file is sent over the data channel, `path` is its name in the job's staging folder.
 * `uses` lists which videos of the labels file it is: `video` is the index in the labels file's
 * videos table, `image` the file's place in an image sequence (0 for a video file). A file named
 * twice in the labels file is one entry with two uses, and is sent once.
 */
export const VideoFileSchema = z
  .strictObject({
    path: RelativePathSchema,
    storage_backend: BackendNameSchema.optional(),
    user_subdir: UserSubdirSchema.optional(),
    uses: z
      .array(
        z.strictObject({
          video: z.number().int().nonnegative().max(LIMITS.slpMaxVideos - 1),
          image: z.number().int().nonnegative().max(LIMITS.jobMaxVideoFiles - 1),
        }),
      )
      .min(1)
      .max(LIMITS.jobMaxVideoFiles),
  })
  .refine((v) => (v.storage_backend === undefined) === (v.user_subdir === undefined), {
    message: 'storage_backend and user_subdir go together',
    path: ['user_subdir'],
  });
export type VideoFile = z.infer<typeof VideoFileSchema>;

/** Every external video file of the job's labels file; absent from older clients (then nothing is checked or remapped). */
const VideosSchema = z.array(VideoFileSchema).max(LIMITS.jobMaxVideoFiles);

export const TrainSpecSchema = z.strictObject({
  labels: RelativePathSchema,
  config_file: RelativePathSchema,
  /** Directory; sleap-nn writes `<output>/<run_name>/`. "" is the user folder itself. */
  output: MaybeEmptyRelativePathSchema,
  run_name: RunNameSchema,
  max_epochs: z.number().int().positive().max(1_000_000).optional(),
  batch_size: z.number().int().positive().max(65_536).optional(),
  learning_rate: z.number().positive().max(10).optional(),
  videos: VideosSchema.optional(),
});
export type TrainSpec = z.infer<typeof TrainSpecSchema>;

export const TrackSpecSchema = z.strictObject({
  data: RelativePathSchema,
  models: z.array(RelativePathSchema).min(1).max(16),
  /** The predictions file to write. */
  output: RelativePathSchema,
  /** When `data` is a `.slp` labels file. */
  videos: VideosSchema.optional(),
});
export type TrackSpec = z.infer<typeof TrackSpecSchema>;

// ---- client -> worker -----------------------------------------------------------------------

/**
 * `transfer` and `storage` are both optional for legacy clients: see `interpretStorage`.
 * `storage` only goes with a shared-storage job.
 */
const jobRequestFields = {
  transfer: TransferModeSchema.optional(),
  storage: JobStorageSchema.optional(),
  /** From `worker_assigned` when the server routed the job here; the worker claims it before running. */
  reservation_id: IdSchema.optional(),
};
const storageOnlyWhenShared = (m: { transfer?: TransferMode | undefined; storage?: unknown }): boolean =>
  !(m.transfer === 'webrtc' && m.storage !== undefined);
const storageOnlyWhenSharedIssue = { message: 'storage is only sent with transfer "shared"', path: ['storage'] };
/** A transfer job sends every file: none of its videos may sit on a backend. */
const videosSentWhenTransfer = (m: { transfer?: TransferMode | undefined; spec: { videos?: VideoFile[] | undefined } }): boolean =>
  m.transfer !== 'webrtc' || (m.spec.videos ?? []).every((v) => v.storage_backend === undefined);
const videosSentWhenTransferIssue = { message: 'With transfer "webrtc" every video is sent (no storage_backend)', path: ['spec', 'videos'] };

export const TrainJobRequestSchema = jobMessage('JOB_REQUEST', { ...jobRequestFields, job_type: z.literal('train'), spec: TrainSpecSchema })
  .refine(storageOnlyWhenShared, storageOnlyWhenSharedIssue)
  .refine(videosSentWhenTransfer, videosSentWhenTransferIssue);
export const TrackJobRequestSchema = jobMessage('JOB_REQUEST', { ...jobRequestFields, job_type: z.literal('track'), spec: TrackSpecSchema })
  .refine(storageOnlyWhenShared, storageOnlyWhenSharedIssue)
  .refine(videosSentWhenTransfer, videosSentWhenTransferIssue);
export const JobRequestSchema = z.discriminatedUnion('job_type', [TrainJobRequestSchema, TrackJobRequestSchema]);
export type TrainJobRequest = z.infer<typeof TrainJobRequestSchema>;
export type TrackJobRequest = z.infer<typeof TrackJobRequestSchema>;
export type JobRequest = z.infer<typeof JobRequestSchema>;

export const JobCancelSchema = jobMessage('JOB_CANCEL', {});

/**
 * `sleap-rtc fetch`: send the kept outputs of a finished transfer job again (its download was cut).
 * The worker answers a transfer JOB_COMPLETE with new transfer ids and sends them, or JOB_REJECTED
 * with RESULTS_NOT_FOUND.
 */
export const FetchRequestSchema = jobMessage('FETCH_REQUEST', {});

/**
 * "Are you still there?", either way on the control channel. Sent when the signaling server says
 * the other side left the room: a peer that only lost the server answers (its jobs go on), a dead
 * one does not. Any frame heard back counts as an answer, so a peer that predates PING (and
 * answers `error`) is alive too.
 */
export const PingSchema = z.strictObject({ type: z.literal('PING'), nonce: z.string().min(1).max(64) });
/** The answer to PING, echoing its nonce. */
export const PongSchema = z.strictObject({ type: z.literal('PONG'), nonce: z.string().min(1).max(64) });

export const ClientToWorkerSchema = z.discriminatedUnion('type', [JobRequestSchema, JobCancelSchema, JobStopSchema, FetchRequestSchema, PingSchema, PongSchema, ErrorMessageSchema]);
export type ClientToWorker = z.infer<typeof ClientToWorkerSchema>;
export const CLIENT_TO_WORKER_TYPES = typesOf(ClientToWorkerSchema);

// ---- worker -> client -----------------------------------------------------------------------

/** One path of a shared-storage request resolved and passed its check. */
export const PathValidatedSchema = jobMessage('PATH_VALIDATED', {
  field: PathFieldSchema,
  path: SharedPathSchema,
});

/** One path failed its check; a JOB_REJECTED follows once all paths are checked. */
export const PathErrorSchema = jobMessage('PATH_ERROR', {
  field: PathFieldSchema,
  rule: PathErrorRuleSchema,
  message: Sentence,
});

/** The worker has no (healthy) backend of that name; a JOB_REJECTED follows. */
export const BackendNotAvailableSchema = jobMessage('BACKEND_NOT_AVAILABLE', {
  backend: BackendNameSchema,
  available_backends: z.array(BackendNameSchema).max(256),
});

/** The request will not run (busy, bad paths, missing backend, ...). Ends the attempt. */
export const JobRejectedSchema = jobMessage('JOB_REJECTED', {
  code: ErrorCodeSchema,
  message: Sentence,
});

/** The worker takes the job, and says how the files will get there (a legacy request learns it here). */
export const JobAcceptedSchema = jobMessage('JOB_ACCEPTED', {
  transfer: TransferModeSchema,
  storage_backend: BackendNameSchema.optional(),
  user_subdir: UserSubdirSchema.optional(),
});

/** Transfer jobs: send these inputs, each as the file transfer with that id. */
export const UploadRequestSchema = jobMessage('UPLOAD_REQUEST', {
  files: z
    .array(z.strictObject({ field: PathFieldSchema, transfer_id: IdSchema }))
    .min(1)
    .max(32 + LIMITS.jobMaxVideoFiles),
});

export const JobStartedSchema = jobMessage('JOB_STARTED', {
  /** The worker's name in the room. */
  worker: z.string().min(1).max(128),
});

export const JobLogSchema = jobMessage('JOB_LOG', {
  stream: z.enum(['stdout', 'stderr']),
  line: Line,
});

export const JobProgressSchema = jobMessage('JOB_PROGRESS', {
  epoch: z.number().int().nonnegative(),
  total_epochs: z.number().int().positive(),
});

/** Ends both kinds of JOB_COMPLETE. */
const stoppedEarlyField = {
  /** True when training ended on a stop request (JOB_STOP) rather than by running all its epochs. */
  stopped_early: z.boolean().optional(),
};

/** Shared storage: outputs stay where they were written. */
export const SharedJobCompleteSchema = jobMessage('JOB_COMPLETE', {
  transfer: z.literal('shared'),
  outputs: z.array(SharedOutputPathSchema).max(1024),
  ...stoppedEarlyField,
});

/** Transfer: each output comes back as the file transfer with that id, after this message. */
export const TransferJobCompleteSchema = jobMessage('JOB_COMPLETE', {
  transfer: z.literal('webrtc'),
  outputs: z
    .array(
      z.strictObject({
        relative_path: RelativePathSchema,
        transfer_id: IdSchema,
        kind: z.enum(['file', 'directory']),
      }),
    )
    .max(1024),
  ...stoppedEarlyField,
});
export const JobCompleteSchema = z.discriminatedUnion('transfer', [SharedJobCompleteSchema, TransferJobCompleteSchema]);

export const JobFailedSchema = jobMessage('JOB_FAILED', {
  /** sleap-nn's exit status; null when it never ran or died of a signal. */
  exit_code: z.number().int().nullable(),
  signal: z.string().max(16).optional(),
  last_lines: z.array(Line).max(LIMITS.jobLogTailLines),
  code: ErrorCodeSchema,
  message: Sentence,
});

export const JobCancelledSchema = jobMessage('JOB_CANCELLED', {
  /** Why: the client asked, the client went away, or the worker is shutting down. */
  reason: z.enum(['client_request', 'client_disconnected', 'worker_shutdown']),
});

export const WorkerToClientSchema = z.discriminatedUnion('type', [
  PathValidatedSchema,
  PathErrorSchema,
  BackendNotAvailableSchema,
  JobRejectedSchema,
  JobAcceptedSchema,
  UploadRequestSchema,
  JobStartedSchema,
  JobLogSchema,
  JobProgressSchema,
  TrainEventSchema,
  JobStopReplySchema,
  JobCompleteSchema,
  JobFailedSchema,
  JobCancelledSchema,
  PingSchema,
  PongSchema,
  ErrorMessageSchema,
]);
export type WorkerToClient = z.infer<typeof WorkerToClientSchema>;
export const WORKER_TO_CLIENT_TYPES = typesOf(WorkerToClientSchema);

/** Messages after which the worker sends nothing more about the job attempt. */
export const TERMINAL_JOB_MESSAGE_TYPES: ReadonlySet<WorkerToClient['type']> = new Set([
  'JOB_REJECTED',
  'JOB_COMPLETE',
  'JOB_FAILED',
  'JOB_CANCELLED',
] as const);

// ---- decoding -------------------------------------------------------------------------------

/** Validates a frame received by a worker; throws ProtocolError (INVALID_JSON, UNKNOWN_TYPE, ...). */
export function decodeClientToWorker(frame: string): ClientToWorker {
  return decodeMessage(frame, ClientToWorkerSchema, CLIENT_TO_WORKER_TYPES, LIMITS.jobMessageMaxBytes);
}

/** Validates a frame received by a client. */
export function decodeWorkerToClient(frame: string): WorkerToClient {
  return decodeMessage(frame, WorkerToClientSchema, WORKER_TO_CLIENT_TYPES, LIMITS.jobMessageMaxBytes);
}

// ---- meaning --------------------------------------------------------------------------------

/** The backend a legacy worker builds from SHARED_STORAGE_ROOT. */
export const LEGACY_BACKEND = 'default';

export type StoragePlan =
  | { transfer: 'shared'; storage_backend: string; user_subdir: string; client_base_path?: string; legacy: boolean }
  | { transfer: 'webrtc'; legacy: boolean };

/**
 * How a worker serves a request. With `storage`: shared storage on that backend (the worker then
 * checks it has it). Without: `transfer: "webrtc"` means transfer; otherwise it is a legacy request
 * whose paths are relative to SHARED_STORAGE_ROOT, so shared storage on the `default` backend when
 * the worker has one, and a transfer job when it does not.
 */
export function interpretStorage(request: JobRequest, workerHasBackend: (name: string) => boolean): StoragePlan {
  if (request.storage) {
    const { storage_backend, user_subdir, client_base_path } = request.storage;
    return client_base_path === undefined
      ? { transfer: 'shared', storage_backend, user_subdir, legacy: false }
      : { transfer: 'shared', storage_backend, user_subdir, client_base_path, legacy: false };
  }
  if (request.transfer === 'webrtc') return { transfer: 'webrtc', legacy: false };
  return workerHasBackend(LEGACY_BACKEND)
    ? { transfer: 'shared', storage_backend: LEGACY_BACKEND, user_subdir: '', legacy: true }
    : { transfer: 'webrtc', legacy: true };
}

export interface JobPath {
  field: PathField;
  relative_path: string;
  role: 'input' | 'output';
  /** What must exist there: inputs are files except model folders; a train output is a folder. */
  kind: 'file' | 'directory';
}

/** Every path a request names, in a stable order (inputs first). */
export function jobPaths(request: JobRequest): JobPath[] {
  if (request.job_type === 'train') {
    const s = request.spec;
    return [
      { field: 'labels', relative_path: s.labels, role: 'input', kind: 'file' },
      { field: 'config_file', relative_path: s.config_file, role: 'input', kind: 'file' },
      { field: 'output', relative_path: s.output, role: 'output', kind: 'directory' },
    ];
  }
  const s = request.spec;
  return [
    { field: 'data', relative_path: s.data, role: 'input', kind: 'file' },
    ...s.models.map((m, i): JobPath => ({ field: `models.${i}`, relative_path: m, role: 'input', kind: 'directory' })),
    { field: 'output', relative_path: s.output, role: 'output', kind: 'file' },
  ];
}

/**
 * The newest lines that fit in `maxBytes` of JSON, so a JOB_FAILED always stays under the
 * message limit whatever the lines hold (escaping can make a line several times longer).
 */
export function newestLinesWithin(lines: readonly string[], maxBytes: number): string[] {
  const kept: string[] = [];
  let used = 2;
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i] as string;
    const cost = Buffer.byteLength(JSON.stringify(line)) + 1;
    if (used + cost > maxBytes) break;
    used += cost;
    kept.push(line);
  }
  return kept.reverse();
}
