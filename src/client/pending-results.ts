/**
 * The client's note of a transfer job whose results it has not all received yet:
 * `$XDG_STATE_HOME/sleap-rtc/pending/<job_id>.json` (else `~/.local/state/...`), written when the
 * worker reports JOB_COMPLETE and removed once every output is in place. `sleap-rtc fetch JOB_ID`
 * reads it to know the worker and where the results go; a new job aimed at the same place is
 * told to fetch them first.
 */
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { xdgStateDir } from '../content/xdg.js';
import { JobIdSchema } from '../protocol/job.js';

const PendingSchema = z.strictObject({
  v: z.literal(1),
  job_id: JobIdSchema,
  worker: z.string().min(1),
  server_url: z.string(),
  room_id: z.string(),
  job_type: z.enum(['train', 'track']),
  destination: z.string().min(1),
  created: z.number(),
});
export type PendingResults = z.infer<typeof PendingSchema>;

export function pendingDir(): string {
  return path.join(xdgStateDir(), 'pending');
}

export async function notePending(p: Omit<PendingResults, 'v' | 'created'>): Promise<void> {
  const dir = pendingDir();
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const file = path.join(dir, `${p.job_id}.json`);
  await writeFile(`${file}.tmp`, JSON.stringify({ v: 1, ...p, created: Date.now() }), { mode: 0o600 });
  await rename(`${file}.tmp`, file);
}

export async function readPending(jobId: string): Promise<PendingResults | null> {
  if (!JobIdSchema.safeParse(jobId).success) return null;
  try {
    const parsed = PendingSchema.safeParse(JSON.parse(await readFile(path.join(pendingDir(), `${jobId}.json`), 'utf8')));
    return parsed.success && parsed.data.job_id === jobId ? parsed.data : null;
  } catch {
    return null;
  }
}

export async function clearPending(jobId: string): Promise<void> {
  if (!JobIdSchema.safeParse(jobId).success) return;
  await rm(path.join(pendingDir(), `${jobId}.json`), { force: true });
}

/** Pending results that were going to `destination` (newest first). */
export async function pendingFor(destination: string): Promise<PendingResults[]> {
  const out: PendingResults[] = [];
  for (const name of await readdir(pendingDir()).catch(() => [] as string[])) {
    if (!name.endsWith('.json')) continue;
    const p = await readPending(name.slice(0, -5));
    if (p && path.resolve(p.destination) === path.resolve(destination)) out.push(p);
  }
  return out.sort((a, b) => b.created - a.created);
}
