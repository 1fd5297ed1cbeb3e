/**
 * The embedded store's rooms file: one JSON document with every room (id, token digest, creation
 * time, idle TTL, idle clock), replaced whole on every change by writing a temporary file in the
 * same folder, fsyncing it and renaming it over the old one. A reader (or a restart after a crash
 * at any moment) sees the old file or the new one, never a half-written one.
 *
 * Why a JSON file and not SQLite: the data is a few hundred bytes per room, changes only when a
 * room is created, deleted, emptied or filled, and is read once at start; a rename is atomic on
 * every local file system, needs no native module, and the file can be read and fixed by hand.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { z } from 'zod';
import { SleapRtcError } from '../../errors.js';
import { IdSchema } from '../../protocol/common.js';

export interface SavedRoom {
  readonly room_id: string;
  readonly token_sha256: string;
  readonly created_at_ms: number;
  readonly idle_ttl_ms: number;
  /** When the room last became empty; null: it had peers when written. */
  readonly idle_since_ms: number | null;
}

export interface SavedState {
  rooms: SavedRoom[];
  /** Rooms deleted or expired lately: room id -> when. */
  deleted: Record<string, number>;
}

const FileSchema = z.strictObject({
  version: z.literal(1),
  deleted: z.record(IdSchema, z.number().int().nonnegative()).default({}),
  rooms: z.array(
    z.strictObject({
      room_id: IdSchema,
      token_sha256: z.string().regex(/^[0-9a-f]{64}$/),
      created_at_ms: z.number().int().nonnegative(),
      idle_ttl_ms: z.number().positive(),
      idle_since_ms: z.number().int().nonnegative().nullable(),
    }),
  ),
});

/** The rooms in the file; none when it does not exist yet. A file that is not ours is refused, not overwritten. */
export async function loadRoomsFile(file: string): Promise<SavedState> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { rooms: [], deleted: {} };
    throw new SleapRtcError('STORE_UNAVAILABLE', `Cannot read the rooms file ${file}: ${(err as Error).message}. Fix its permissions, or point [server] rooms_file elsewhere.`, { file }, { cause: err });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  const result = FileSchema.safeParse(parsed);
  if (!result.success) {
    throw new SleapRtcError(
      'STORE_UNAVAILABLE',
      `The rooms file ${file} is not a sleap-rtc rooms file (version 1); the server will not overwrite it. Move it away to start with no rooms, or point [server] rooms_file elsewhere.`,
      { file },
    );
  }
  return { rooms: result.data.rooms, deleted: result.data.deleted };
}

/**
 * Writes snapshots one at a time. A write asked for while one is running waits and then writes
 * the newest state once, so a burst of changes costs two writes, not one per change.
 */
export class RoomsFileWriter {
  private running: Promise<void> | undefined;
  private next: { snapshot: () => SavedState; done: Promise<void>; resolve: () => void; reject: (e: unknown) => void } | undefined;

  constructor(readonly file: string) {}

  /** Settles once a state at least as new as `snapshot()` now is on disk. */
  write(snapshot: () => SavedState): Promise<void> {
    if (this.next !== undefined) {
      this.next.snapshot = snapshot;
      return this.next.done;
    }
    let resolve!: () => void;
    let reject!: (e: unknown) => void;
    const done = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    // Callers that do not wait must not leave an unhandled rejection behind; the error is logged by the server's callers.
    done.catch(() => {});
    this.next = { snapshot, done, resolve, reject };
    if (this.running === undefined) this.pump();
    return done;
  }

  /** Waits for every write asked for so far. */
  async flush(): Promise<void> {
    while (this.running !== undefined) await this.running.catch(() => {});
  }

  private pump(): void {
    const job = this.next;
    if (job === undefined) {
      this.running = undefined;
      return;
    }
    this.next = undefined;
    this.running = writeAtomically(this.file, JSON.stringify({ version: 1, ...job.snapshot() }, null, 1))
      .then(job.resolve, job.reject)
      .finally(() => this.pump());
  }
}

async function writeAtomically(file: string, text: string): Promise<void> {
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    const handle = await open(tmp, 'wx', 0o600);
    try {
      await handle.writeFile(text, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw new SleapRtcError('STORE_UNAVAILABLE', `Cannot write the rooms file ${file}: ${(err as Error).message}.`, { file }, { cause: err });
  }
}
