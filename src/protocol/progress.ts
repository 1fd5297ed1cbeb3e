/**
 * Training progress and steering, in two formats.
 *
 * 1. sleap-nn's own ZMQ messages (`SleapNnEventSchema`). With `trainer_config.zmq.publish_port`
 *    set, sleap-nn's `ProgressReporterZMQ` (sleap_nn/training/callbacks.py) sends one
 *    jsonpickle-encoded dict per event: `{what, event, logs, ...}` with `epoch` on
 *    `epoch_begin` / `epoch_end`, `epoch` and `batch` on `batch_end`, `batch` on `batch_start`,
 *    `wandb_url` on `train_begin`. `logs` holds Lightning's `callback_metrics` as floats
 *    (`train/loss`, `val/loss`, `train/lr`, ...). With `trainer_config.zmq.controller_port` set,
 *    `TrainingControllerZMQ` reads jsonpickle-encoded `{"command": "stop"}` after each batch.
 *    Python's json writes a non-finite float as a bare `NaN` / `Infinity`, which JSON.parse
 *    refuses, so `decodeSleapNnEvent` reads them (as null). `encodeSleapNnEvent` writes the same
 *    format back, for SLEAP's LossViewer.
 * 2. Our data-channel messages (`TRAIN_EVENT`, `JOB_STOP`, `JOB_STOP_REPLY`), which join the job
 *    unions in job.ts.
 */
import { z } from 'zod';
import { LIMITS } from '../limits.js';
import { describeIssues, ProtocolError, refuseProtoKeys } from './codec.js';
import { IdSchema } from './common.js';

// ---- sleap-nn's ZMQ events ------------------------------------------------------------------

export const SLEAP_NN_EVENT_NAMES = ['train_begin', 'train_end', 'epoch_begin', 'epoch_end', 'batch_start', 'batch_end'] as const;

/** Metric name -> value; null stands for NaN or an infinity (a diverging loss). */
export const TrainLogsSchema = z
  .record(z.string().min(1).max(256), z.number().nullable())
  .refine((r) => Object.keys(r).length <= LIMITS.progressMaxLogKeys, `must hold at most ${LIMITS.progressMaxLogKeys} metrics`);
export type TrainLogs = z.infer<typeof TrainLogsSchema>;

const EpochSchema = z.number().int().nonnegative().max(100_000_000);
const BatchSchema = z.number().int().nonnegative().max(1_000_000_000);

/**
 * One event as sleap-nn sends it. Loose: a newer sleap-nn may add keys; only these are read.
 * `epoch` is Lightning's `trainer.current_epoch` (0-based), `batch` the batch index in the epoch.
 */
export const SleapNnEventSchema = z
  .looseObject({
    what: z.string().max(256),
    event: z.enum(SLEAP_NN_EVENT_NAMES),
    logs: TrainLogsSchema.nullable().optional(),
    epoch: EpochSchema.optional(),
    batch: BatchSchema.optional(),
    wandb_url: z.string().max(2048).nullable().optional(),
  })
  .superRefine((m, ctx) => {
    const needs = (key: 'epoch' | 'batch'): void => {
      if (m[key] === undefined) ctx.addIssue({ code: 'custom', path: [key], message: `is required for ${m.event}` });
    };
    if (m.event === 'epoch_begin' || m.event === 'epoch_end' || m.event === 'batch_end') needs('epoch');
    if (m.event === 'batch_start' || m.event === 'batch_end') needs('batch');
  });
export type SleapNnEvent = z.infer<typeof SleapNnEventSchema>;

/**
 * Python's `json.loads` accepts the bare tokens NaN, Infinity and -Infinity; JSON.parse does not.
 * Outside strings they become null (the schema's "not a finite number").
 */
export function parsePythonJson(text: string): unknown {
  let out = '';
  let i = 0;
  let last = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === '"') {
      i++;
      while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
      i++;
      continue;
    }
    const rest = c === 'N' || c === 'I' || c === '-' ? /^(?:NaN|-?Infinity)/.exec(text.slice(i, i + 9)) : null;
    if (rest) {
      out += `${text.slice(last, i)}null`;
      i += rest[0].length;
      last = i;
      continue;
    }
    i++;
  }
  return JSON.parse(out + text.slice(last));
}

/** One ZMQ frame from sleap-nn to a validated event; throws ProtocolError (FRAME_TOO_LARGE, INVALID_JSON, INVALID_MESSAGE). */
export function decodeSleapNnEvent(frame: string): SleapNnEvent {
  const bytes = Buffer.byteLength(frame);
  if (bytes > LIMITS.progressEventMaxBytes) {
    throw new ProtocolError('FRAME_TOO_LARGE', `A sleap-nn progress event of ${bytes} bytes exceeds the ${LIMITS.progressEventMaxBytes}-byte limit.`);
  }
  let raw: unknown;
  try {
    // Plain JSON first (the common case, and much faster); Python's NaN tokens need the slow path.
    try {
      raw = JSON.parse(frame);
    } catch {
      raw = parsePythonJson(frame);
    }
  } catch (err) {
    throw new ProtocolError('INVALID_JSON', `A sleap-nn progress event is not JSON: ${(err as Error).message}`);
  }
  refuseProtoKeys(frame, raw, 'A sleap-nn progress event');
  const parsed = SleapNnEventSchema.safeParse(raw);
  if (!parsed.success) throw new ProtocolError('INVALID_MESSAGE', `Invalid sleap-nn progress event: ${describeIssues(parsed.error)}`);
  return parsed.data;
}

/** A float the way Python's json writes it: whole numbers keep ".0", non-finite values are NaN. */
function pythonFloat(v: number | null): string {
  if (v === null || !Number.isFinite(v)) return 'NaN';
  const text = String(v);
  return /^-?\d+$/.test(text) ? `${text}.0` : text;
}

/**
 * jsonpickle.encode of the dict sleap-nn's ProgressReporterZMQ.send builds: keys in its order
 * (what, event, logs, then the keyword arguments), Python's separators, floats in `logs`.
 */
export function encodeSleapNnEvent(e: Pick<SleapNnEvent, 'what' | 'event' | 'logs' | 'epoch' | 'batch' | 'wandb_url'>): string {
  const parts = [`"what": ${JSON.stringify(e.what)}`, `"event": ${JSON.stringify(e.event)}`];
  const logs = e.logs ?? null;
  parts.push(`"logs": ${logs === null ? 'null' : `{${Object.entries(logs).map(([k, v]) => `${JSON.stringify(k)}: ${pythonFloat(v)}`).join(', ')}}`}`);
  if (e.event === 'train_begin') parts.push(`"wandb_url": ${e.wandb_url ? JSON.stringify(e.wandb_url) : 'null'}`);
  if (e.epoch !== undefined) parts.push(`"epoch": ${e.epoch}`);
  if (e.batch !== undefined) parts.push(`"batch": ${e.batch}`);
  return `{${parts.join(', ')}}`;
}

/** What TrainingControllerZMQ acts on, as SLEAP's LossViewer encodes it. */
export const SLEAP_NN_STOP_COMMAND = '{"command": "stop"}';

/** A controller message (`{"command": ...}`) as sleap-nn's TrainingControllerZMQ reads it. */
export const SleapNnCommandSchema = z.looseObject({ command: z.string().max(64) });

/** A controller frame to its command; undefined for anything that is not a `{"command": ...}` object. */
export function decodeSleapNnCommand(frame: string): string | undefined {
  if (Buffer.byteLength(frame) > LIMITS.progressEventMaxBytes) return undefined;
  try {
    const parsed = SleapNnCommandSchema.safeParse(parsePythonJson(frame));
    return parsed.success ? parsed.data.command : undefined;
  } catch {
    return undefined;
  }
}

// ---- data-channel messages ------------------------------------------------------------------

/** The sleap-nn events a worker relays (`batch_start` is not: nothing reads it). */
export const RelayedEventSchema = z.enum(['train_begin', 'train_end', 'epoch_begin', 'epoch_end', 'batch_end']);
export type RelayedEvent = z.infer<typeof RelayedEventSchema>;

/**
 * worker -> client: one training event from sleap-nn, decoded and checked. `batch_end` events are
 * thinned to at most one per `LIMITS.progressBatchEventIntervalMs`; every other event is sent.
 */
export const TrainEventSchema = z.strictObject({
  type: z.literal('TRAIN_EVENT'),
  job_id: IdSchema,
  /** Counts this job's TRAIN_EVENTs from 0, so a client can tell it missed none. */
  seq: z.number().int().nonnegative(),
  event: RelayedEventSchema,
  /** sleap-nn's `what` tag (the model type being trained; often ""). */
  what: z.string().max(256),
  epoch: EpochSchema.optional(),
  batch: BatchSchema.optional(),
  logs: TrainLogsSchema.nullable().optional(),
  wandb_url: z.string().max(2048).nullable().optional(),
  /** `batch_end` only: how many batch_end events were left out since the previous one sent. */
  skipped: z.number().int().nonnegative().optional(),
  /** From the worker's job: the epoch count sleap-nn was asked for, when it is known. */
  total_epochs: z.number().int().positive().max(100_000_000).optional(),
});
export type TrainEvent = z.infer<typeof TrainEventSchema>;

/** client -> worker: stop training early; sleap-nn ends the epoch and saves, the job completes. */
export const JobStopSchema = z.strictObject({ type: z.literal('JOB_STOP'), job_id: IdSchema });

/**
 * worker -> client: the answer to JOB_STOP. `stopping`: the stop command went to sleap-nn;
 * `pending`: sleap-nn's training controller is not listening yet, the command goes out when it
 * is; `unsupported`: this job cannot stop early (not a training job, or no controller).
 */
export const JobStopReplySchema = z.strictObject({
  type: z.literal('JOB_STOP_REPLY'),
  job_id: IdSchema,
  outcome: z.enum(['stopping', 'pending', 'unsupported']),
  message: z.string().max(2000),
});
