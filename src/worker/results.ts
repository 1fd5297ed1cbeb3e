/**
 * Results kept until the client has them. A transfer job's outputs are sent after JOB_COMPLETE;
 * if the client is gone before it confirmed every file (laptop lid closed, VPN dropped, Ctrl-C),
 * the job's folder stays, with a record in `<work_dir>/results/<job_id>.json`, for up to
 * `[worker] results_keep_hours` (default 24 h) and across worker restarts, so that
 * `sleap-rtc fetch JOB_ID` can download them. The record is written before JOB_COMPLETE is sent,
 * so a worker killed while sending keeps them too. Once every output was confirmed, or the time
 * is up, the folder and the record go.
 */
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import type { Logger } from '../log.js';
import { JobIdSchema } from '../protocol/job.js';
import type { JobOutput } from './job-runner.js';

const RecordSchema = z.strictObject({
  v: z.literal(1),
  job_id: JobIdSchema,
  /** The job's folder, a direct child of work_dir. */
  job_dir: z.string().min(1),
  outputs: z.array(z.strictObject({ relative_path: z.string().min(1), local: z.string().min(1), kind: z.enum(['file', 'directory']) })).max(1024),
  expires_at: z.number(),
});
export type KeptResults = z.infer<typeof RecordSchema>;

export class ResultsShelf {
  readonly #dir: string;
  readonly #workDir: string;
  readonly #keepMs: number;
  readonly #log: Logger | undefined;

  constructor(opts: { workDir: string; keepMs: number; logger?: Logger }) {
    this.#workDir = path.resolve(opts.workDir);
    this.#dir = path.join(this.#workDir, 'results');
    this.#keepMs = opts.keepMs;
    this.#log = opts.logger;
  }

  get keepMs(): number {
    return this.#keepMs;
  }

  /** Record that `jobDir` holds `outputs` for the client; returns when they expire. */
  async keep(jobId: string, jobDir: string, outputs: readonly JobOutput[]): Promise<number> {
    await mkdir(this.#dir, { recursive: true, mode: 0o700 });
    const record: KeptResults = { v: 1, job_id: jobId, job_dir: jobDir, outputs: outputs.map((o) => ({ ...o })), expires_at: Date.now() + this.#keepMs };
    const file = this.#file(jobId);
    await writeFile(`${file}.tmp`, JSON.stringify(record), { mode: 0o600 });
    await rename(`${file}.tmp`, file);
    return record.expires_at;
  }

  /** The kept results of `jobId`, or null (none, expired, or their folder is gone). */
  async get(jobId: string): Promise<KeptResults | null> {
    if (!JobIdSchema.safeParse(jobId).success) return null;
    const record = await this.#read(jobId);
    if (!record) return null;
    if (record.expires_at < Date.now() || !(await isDir(record.job_dir))) {
      await this.done(jobId, record);
      return null;
    }
    return record;
  }

  /** Every output was confirmed (or the results expired): remove the folder and the record. */
  async done(jobId: string, record?: KeptResults | null): Promise<void> {
    const r = record ?? (await this.#read(jobId));
    if (r) await rm(r.job_dir, { recursive: true, force: true }).catch(() => {});
    await rm(this.#file(jobId), { force: true });
  }

  /** Job folders whose results are still kept (a start-up sweep must leave them). */
  async keptDirs(): Promise<string[]> {
    const out: string[] = [];
    for (const name of await readdir(this.#dir).catch(() => [] as string[])) {
      if (!name.endsWith('.json')) continue;
      const r = await this.#read(name.slice(0, -5));
      if (r) out.push(r.job_dir);
    }
    return out;
  }

  /** Remove what expired; returns how many results were dropped. */
  async sweep(): Promise<number> {
    let dropped = 0;
    for (const name of await readdir(this.#dir).catch(() => [] as string[])) {
      if (name.endsWith('.tmp')) {
        await rm(path.join(this.#dir, name), { force: true });
        continue;
      }
      if (!name.endsWith('.json')) continue;
      const id = name.slice(0, -5);
      const r = await this.#read(id);
      if (!r || r.expires_at < Date.now() || !(await isDir(r.job_dir))) {
        await this.done(id, r);
        dropped += 1;
        this.#log?.info(`results of job ${id} were not fetched in time; removed`);
      }
    }
    return dropped;
  }

  #file(jobId: string): string {
    return path.join(this.#dir, `${jobId}.json`);
  }

  /** A record, if it parses and names a folder directly under work_dir (nothing else is ever removed). */
  async #read(jobId: string): Promise<KeptResults | null> {
    if (!JobIdSchema.safeParse(jobId).success) return null;
    try {
      const parsed = RecordSchema.safeParse(JSON.parse(await readFile(this.#file(jobId), 'utf8')));
      if (!parsed.success || parsed.data.job_id !== jobId) return null;
      const dir = path.resolve(parsed.data.job_dir);
      if (path.dirname(dir) !== this.#workDir || !path.basename(dir).startsWith(`job-${jobId}-`)) return null;
      for (const o of parsed.data.outputs) if (!path.resolve(o.local).startsWith(`${dir}${path.sep}`)) return null;
      return { ...parsed.data, job_dir: dir };
    } catch {
      return null;
    }
  }
}

async function isDir(p: string): Promise<boolean> {
  return (await stat(p).catch(() => null))?.isDirectory() ?? false;
}
