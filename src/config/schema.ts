/**
 * The one schema for sleap-rtc.toml (cf. fastify's initial-config-validation): every key, its type
 * and its default live here and nowhere else. Strict objects everywhere, so a misspelt key is an
 * error with a suggestion rather than a silently ignored setting.
 *
 * Messages written here are complete sentences for the user; src/config/problems.ts turns zod's
 * generic issues (wrong type, unknown key, out of range) into sentences of the same kind.
 */
import path from 'node:path';
import { z } from 'zod';
import { LIMITS } from '../limits.js';
import { BackendNameSchema, IdSchema } from '../protocol/common.js';
import { checkRelativePath, PathValidationError } from '../storage/confine.js';

export const STORAGE_TYPES = ['nfs', 'local', 'google_shared_drive', 'smb', 'other'] as const;
export type StorageType = (typeof STORAGE_TYPES)[number];

export const JOB_TYPES = ['train', 'track'] as const;
export type JobType = (typeof JOB_TYPES)[number];

/** What the schema needs from the machine it runs on. */
export interface SchemaContext {
  homeDir: string;
}

/**
 * `~` and `~/x` expand to `homeDir`; anything else is returned unchanged. `~user` is not
 * expanded (returned as is, and then refused as not absolute).
 */
export function expandHome(p: string, homeDir: string): string {
  if (p === '~') return homeDir;
  if (p.startsWith('~/')) return path.join(homeDir, p.slice(2));
  return p;
}

/** A directory on this machine: `~` expanded, must then be absolute, normalised without a trailing `/`. */
function localDirectory(ctx: SchemaContext, example: string) {
  return z
    .string()
    .min(1, `must not be empty; give the absolute folder, e.g. ${example}`)
    .transform((raw, zctx) => {
      const expanded = expandHome(raw, ctx.homeDir);
      if (!path.isAbsolute(expanded)) {
        const hint = raw.startsWith('~') ? ' (only "~" and "~/..." are expanded)' : '';
        zctx.addIssue({ code: 'custom', input: raw, message: `must be absolute, e.g. ${example}; got '${raw}'${hint}` });
        return z.NEVER;
      }
      const normalised = path.normalize(expanded);
      return normalised.length > 1 && normalised.endsWith(path.sep) ? normalised.slice(0, -1) : normalised;
    });
}

const UserSubdirSchema = z.string().superRefine((value, zctx) => {
  try {
    checkRelativePath(value, { allowEmpty: true });
  } catch (err) {
    if (!(err instanceof PathValidationError)) throw err;
    zctx.addIssue({
      code: 'custom',
      input: value,
      message: `must be a folder relative to base_path, e.g. "alice" or "labs/alice"; ${err.message}`,
    });
  }
});

export function storageBackendSchema(ctx: SchemaContext) {
  return z.strictObject({
    /** Where this storage is mounted on this machine. */
    base_path: localDirectory(ctx, '/mnt/vast'),
    type: z.enum(STORAGE_TYPES).default('local'),
    description: z.string().default(''),
    /** The client's own folder under base_path, used when submitting jobs. */
    user_subdir: UserSubdirSchema.optional(),
  });
}

export function storageSectionSchema(ctx: SchemaContext) {
  return z.record(z.string(), storageBackendSchema(ctx)).check(
    // Checked here rather than as the record's key schema, because zod skips a value whose key
    // fails; this way a bad name and a bad base_path under it are both reported in one pass.
    z.superRefine(
      (table: unknown, zctx) => {
        if (table === null || typeof table !== 'object' || Array.isArray(table)) return;
        for (const name of Object.keys(table)) {
          if (!BackendNameSchema.safeParse(name).success) {
            zctx.addIssue({
              code: 'custom',
              path: [name],
              input: name,
              message: `invalid backend name '${name}': use 1 to 64 letters, digits, "_" or "-", e.g. [storage.vast] or [storage.lab_share]`,
            });
          }
        }
      },
      { when: () => true },
    ),
  );
}

const SIGNALING_URL = /^(https?|wss?):\/\/[^\s/]+/;
const ICE_URL = /^(stun|stuns|turn|turns):\S+$/;

/** "memory" (one process) or redis://HOST:PORT/DB (several processes share rooms, routing and the queue). */
function storeSchema() {
  return z.string().regex(/^(memory|redis:\/\/[^\s/]+(\/\d{1,2})?)$/, 'must be "memory" or a Redis URL, e.g. "redis://127.0.0.1:6379/0"');
}

export function configSchema(ctx: SchemaContext) {
  return z.strictObject({
    storage: storageSectionSchema(ctx).default({}),
    signaling: z
      .strictObject({
        server_url: z
          .string()
          .regex(SIGNALING_URL, 'must be a URL starting with http://, https://, ws:// or wss://, e.g. "https://signal.example.org"')
          .default(`http://${LIMITS.signalingDefaultHost}:${LIMITS.signalingDefaultPort}`),
        room_id: IdSchema.optional(),
        token: z.string().min(1, 'must not be empty; remove the line if the room has no token').optional(),
        /** Where `sleap-rtc server` keeps rooms, peers and the queue: "memory" (one process) or redis://HOST:PORT/DB (shared by several processes). */
        store: storeSchema().optional(),
      })
      .prefault({}),
    server: z
      .strictObject({
        host: z.string().min(1, 'must not be empty, e.g. "127.0.0.1" or "0.0.0.0"').default(LIMITS.signalingDefaultHost),
        port: z.int().min(0).max(65535).default(LIMITS.signalingDefaultPort),
        ping_interval_s: z.number().positive().default(LIMITS.signalingPingIntervalMs / 1000),
        max_payload_bytes: z.int().positive().default(LIMITS.signalingMaxPayloadBytes),
        room_idle_ttl_s: z.number().positive().default(LIMITS.roomIdleTtlMs / 1000),
        /**
         * The older place of [signaling] store, still read. After loading it holds the store in
         * effect (store-key.ts): [signaling] store, else this, else "memory".
         */
        store: storeSchema().optional(),
        /** The memory store's rooms file; absent: the default under the state folder; "": keep rooms in memory only. */
        rooms_file: z.string().optional(),
        max_peers_per_room: z.int().min(1).default(LIMITS.maxPeersPerRoom),
        /** POST /rooms per client address and hour (after a burst of LIMITS.roomCreateBurst); 0: no limit. */
        rooms_per_hour: z.int().min(0).default(LIMITS.roomCreatePerHour),
        /** Count POST /rooms against the last X-Forwarded-For address (set behind nginx or Caddy). */
        trust_proxy: z.boolean().default(false),
      })
      .prefault({}),
    ice: z
      .strictObject({
        servers: z
          .array(
            z.strictObject({
              urls: z
                .array(z.string().regex(ICE_URL, 'must be a STUN or TURN URL, e.g. "stun:stun.example.org:3478"'))
                .min(1),
              username: z.string().optional(),
              credential: z.string().optional(),
            }),
          )
          .default([]),
      })
      .prefault({}),
    worker: z
      .strictObject({
        name: IdSchema.optional(),
        sleap_nn: z.string().min(1, 'must not be empty; the sleap-nn command or its absolute path').default('sleap-nn'),
        max_concurrent_jobs: z.int().min(1).default(LIMITS.workerMaxConcurrentJobs),
        /** On SIGTERM, how long a job's outputs may keep uploading to its client before the upload is cancelled. */
        shutdown_grace_s: z.number().min(0).max(24 * 3600).default(LIMITS.workerShutdownGraceMs / 1000),
        job_types: z.array(z.enum(JOB_TYPES)).min(1).default([...JOB_TYPES]),
        /** Where jobs whose files arrive by transfer are staged. */
        work_dir: localDirectory(ctx, '/scratch/sleap-rtc').optional(),
        /** The cache of files sent to this worker, by SHA-256 (default: $XDG_CACHE_HOME/sleap-rtc/worker-cache). */
        cache_dir: localDirectory(ctx, '/scratch/sleap-rtc-cache').optional(),
        /** Most bytes the cache keeps; least recently used files are evicted first. 0 turns the cache off. */
        cache_max_bytes: z.int().min(0).default(LIMITS.workerCacheMaxBytes),
        /** How long a finished transfer job's outputs wait for the client to take them (`sleap-rtc fetch`). */
        results_keep_hours: z.number().min(0).max(24 * 365).default(LIMITS.workerResultsKeepMs / 3_600_000),
      })
      .prefault({}),
  });
}

export type ConfigSchema = ReturnType<typeof configSchema>;
type ParsedConfig = z.output<ConfigSchema>;
/** The validated file, with every default filled in; `server.store` is the store in effect (store-key.ts). */
export type ConfigData = Omit<ParsedConfig, 'server'> & { server: ParsedConfig['server'] & { store: string } };
export type StorageBackendConfig = z.output<ReturnType<typeof storageBackendSchema>>;
