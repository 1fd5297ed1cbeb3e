/**
 * One registry of coded errors for the whole project (cf. fastify's lib/errors.js).
 *
 * Every error that can reach a user, a log or the wire carries a stable `code` from ERROR_CODES.
 * docs/errors.md documents each code; test/errors.test.ts keeps the two in step, so adding a code
 * here without documenting it fails the tests.
 */

/** `exit` is the CLI exit code when the error ends a command: 2 usage/configuration, 1 anything else. */
export const ERROR_CODES = {
  // configuration
  CONFIG_NOT_FOUND: { exit: 2, summary: 'The named configuration file does not exist.' },
  CONFIG_INVALID: { exit: 2, summary: 'The configuration file has one or more problems.' },
  USAGE: { exit: 2, summary: 'The command line is wrong.' },
  // storage
  STORAGE_BACKEND_NOT_FOUND: { exit: 2, summary: 'A storage backend name is not configured here.' },
  PATH_VALIDATION: { exit: 1, summary: 'A path was refused by the confinement rules.' },
  PATH_NOT_IN_BACKEND: { exit: 2, summary: 'A local path lies under no configured backend.' },
  PATH_CHANGED: { exit: 1, summary: 'A checked path no longer led inside its backend, or was no longer the same kind of file, when the worker used it.' },
  // protocol (wire)
  INVALID_JSON: { exit: 1, summary: 'A frame was not valid JSON.' },
  INVALID_MESSAGE: { exit: 1, summary: 'A message failed schema validation.' },
  UNKNOWN_TYPE: { exit: 1, summary: 'A message has an unknown `type`.' },
  FRAME_TOO_LARGE: { exit: 1, summary: 'A frame exceeded the size limit.' },
  // signaling
  NOT_REGISTERED: { exit: 1, summary: 'A message other than `register` arrived before registration.' },
  ALREADY_REGISTERED: { exit: 1, summary: 'A second `register` on one connection.' },
  ROOM_NOT_FOUND: { exit: 1, summary: 'The room does not exist or has expired.' },
  INVALID_TOKEN: { exit: 2, summary: 'The room token is wrong.' },
  PEER_NOT_FOUND: { exit: 1, summary: 'The target peer is not connected.' },
  NOT_IN_ROOM: { exit: 1, summary: 'The target peer is in another room.' },
  RATE_LIMITED: { exit: 1, summary: 'Too many messages in too short a time.' },
  SIGNALING_UNREACHABLE: { exit: 1, summary: 'The signaling server could not be reached.' },
  SIGNALING_CLOSED: { exit: 1, summary: 'The signaling connection closed.' },
  SIGNALING_TIMEOUT: { exit: 1, summary: 'The signaling server did not answer a request in time.' },
  ROUTE_NOT_FOUND: { exit: 1, summary: 'No such HTTP route on the signaling server.' },
  METHOD_NOT_ALLOWED: { exit: 1, summary: 'The HTTP route exists but not for this method.' },
  UPGRADE_REQUIRED: { exit: 1, summary: 'The /ws endpoint only speaks WebSocket.' },
  ADDRESS_IN_USE: { exit: 1, summary: 'The host and port the server should listen on are taken.' },
  // peer connections and file transfer (src/transport)
  PEER_CONNECT_TIMEOUT: { exit: 1, summary: 'The WebRTC connection to a peer was not set up in time.' },
  PEER_CONNECT_FAILED: { exit: 1, summary: 'The WebRTC connection to a peer failed or closed while being set up.' },
  PEER_CLOSED: { exit: 1, summary: 'The WebRTC connection to the peer is closed.' },
  TRANSFER_SIZE_MISMATCH: { exit: 1, summary: 'A received file does not have the announced size.' },
  TRANSFER_HASH_MISMATCH: { exit: 1, summary: 'A received file does not have the announced SHA-256.' },
  TRANSFER_CANCELLED: { exit: 1, summary: 'A file transfer was cancelled by one side.' },
  TRANSFER_ABORTED: { exit: 1, summary: 'A file transfer stopped because the channel or peer went away.' },
  TRANSFER_STALLED: { exit: 1, summary: 'A file transfer made no progress for too long.' },
  TRANSFER_PROTOCOL: { exit: 1, summary: 'A file transfer message arrived out of order.' },
  TRANSFER_TOO_LARGE: { exit: 1, summary: 'A file transfer exceeds the size or entry limit of the receiver.' },
  TRANSFER_ENTRY_REFUSED: { exit: 1, summary: 'An archive entry of a refused kind (link, device, fifo, compressed data).' },
  TRANSFER_ARCHIVE_INVALID: { exit: 1, summary: 'A received folder archive is malformed or ends early.' },
  TRANSFER_DEST_EXISTS: { exit: 1, summary: 'The destination of a file transfer already exists.' },
  TRANSFER_SOURCE_INVALID: { exit: 1, summary: 'The file or folder to send cannot be sent as it is.' },
  TRANSFER_IO: { exit: 1, summary: 'A file could not be read or written during a transfer.' },
  TRANSFER_DISK_FULL: { exit: 1, summary: 'The receiving disk filled up during a transfer; nothing of it was kept.' },
  TRANSFER_PROOF_FAILED: { exit: 1, summary: 'A sender offered content the receiver has but could not prove it holds the bytes; nothing was placed.' },
  CACHE_UNAVAILABLE: { exit: 1, summary: "The worker's cache folder cannot be used (another worker holds it, or it is not writable)." },
  RESULTS_NOT_FOUND: { exit: 1, summary: 'No results of that job are kept on the worker (never a transfer job there, already fetched, or expired).' },
  // routing (src/signaling/routing*.ts, docs/routing.md)
  NO_MATCHING_WORKER: { exit: 1, summary: 'No worker in the room can serve the job (backend, job type, GPU or pinned worker).' },
  QUEUE_TIMEOUT: { exit: 1, summary: 'No matching worker became free within the queue timeout.' },
  QUEUE_FULL: { exit: 1, summary: 'Too many requests queued (for this client or this room).' },
  RESERVATION_EXPIRED: { exit: 1, summary: 'The reserved worker did not take the job in time and no other worker can serve it.' },
  RESERVATION_NOT_FOUND: { exit: 1, summary: 'No such reservation for this peer (expired, released, or never existed).' },
  WRONG_ROLE: { exit: 1, summary: 'The message is only accepted from the other role (worker or client).' },
  REQUEST_CANCELLED: { exit: 1, summary: 'The request for a worker was cancelled before one was assigned.' },
  // jobs (src/worker, src/client)
  SLEAP_NN_NOT_FOUND: { exit: 2, summary: 'The configured sleap-nn executable could not be started.' },
  SLEAP_NN_FAILED: { exit: 1, summary: 'sleap-nn exited with an error.' },
  SLEAP_NN_UNUSABLE: { exit: 1, summary: 'The configured sleap-nn starts but fails its start-up probe (`--version`, `predict`/`track`).' },
  RUN_FOLDER_EXISTS: { exit: 2, summary: 'The run folder of a training job already exists; sleap-rtc never trains into an existing one.' },
  JOB_OUTPUT_MISSING: { exit: 1, summary: 'sleap-nn reported success but an expected output is missing.' },
  JOB_CANCELLED: { exit: 1, summary: 'The job was cancelled before it finished.' },
  BACKEND_NOT_AVAILABLE: { exit: 1, summary: 'The worker has no healthy storage backend of the name the job asked for.' },
  WORKER_BUSY: { exit: 1, summary: 'The worker already runs as many jobs as it may.' },
  PEER_GONE: { exit: 1, summary: 'The job\'s peer left the room and did not answer over the direct connection.' },
  INTERNAL: { exit: 1, summary: 'An unexpected internal error.' },
  // signaling store (src/signaling/stores, docs/signaling.md)
  STORE_UNAVAILABLE: { exit: 1, summary: 'The signaling server cannot reach its store (Redis down, rooms file unreadable); transient, retry.' },
  ROOM_FULL: { exit: 1, summary: 'The room already has as many peers as the server allows.' },
  ROOM_DELETED: { exit: 1, summary: 'The room was deleted (or expired after sitting idle); it will not come back.' },
  // SLEAP labels files (src/slp)
  SLP_NOT_HDF5: { exit: 2, summary: 'A labels file is not an HDF5 file, or is truncated or damaged.' },
  SLP_NO_VIDEOS_TABLE: { exit: 2, summary: 'A labels file has no `videos_json` dataset.' },
  SLP_VIDEOS_INVALID: { exit: 2, summary: 'A labels file\'s `videos_json` is not a list of JSON video descriptions.' },
  SLP_VIDEO_NAME_TOO_LONG: { exit: 1, summary: 'A new video name does not fit the labels file\'s fixed-length videos table.' },
  SLP_WRITE_FAILED: { exit: 1, summary: 'A rewritten copy of a labels file could not be written.' },
  SLP_VIDEO_NOT_FOUND: { exit: 2, summary: 'A video the labels file names is not where SLEAP would look for it on this machine.' },
  SLP_VIDEOS_MISMATCH: { exit: 1, summary: 'The videos a job request lists do not match the videos its labels file names.' },
  PREDICTIONS_UNREADABLE: { exit: 1, summary: 'sleap-nn wrote a predictions file whose videos could not be given the client\'s names; it was not delivered.' },
  RUN_FOLDER_LABELS_UNREADABLE: { exit: 1, summary: 'sleap-nn wrote a .slp file into the training run folder whose videos could not be given the client\'s names; the run folder was not delivered.' },
} as const satisfies Record<string, { exit: 1 | 2; summary: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERROR_CODES, value);
}

export class SleapRtcError extends Error {
  readonly code: ErrorCode;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: ErrorCode, message: string, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.details = Object.freeze({ ...details });
  }

  get exitCode(): 1 | 2 {
    return ERROR_CODES[this.code].exit;
  }

  /** Shape used on the wire and in --json output. */
  toJSON(): { code: ErrorCode; message: string; details?: Record<string, unknown> } {
    return Object.keys(this.details).length
      ? { code: this.code, message: this.message, details: { ...this.details } }
      : { code: this.code, message: this.message };
  }
}

export class UsageError extends SleapRtcError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super('USAGE', message, details);
  }
}

/** Exit code for anything thrown out of a command. */
export function exitCodeFor(err: unknown): 1 | 2 {
  return err instanceof SleapRtcError ? err.exitCode : 1;
}
