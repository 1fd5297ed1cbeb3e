/**
 * What a worker tells the room it can do: the storage backends it can really use right now, the
 * job types, how many jobs at once, and GPU facts. Only healthy backends are advertised, so a
 * client is never routed to a worker whose mount is gone.
 */
import type { Capabilities, GpuInfo, JobType } from '../protocol/common.js';
import type { BackendHealth, StorageConfig } from '../storage/index.js';

export interface BackendReport {
  name: string;
  basePath: string;
  type: string;
  health: BackendHealth;
  /** Usable for jobs: an existing folder this worker can read and write. */
  healthy: boolean;
}

/** Health of every configured backend, in configuration order. */
export async function checkBackends(storage: StorageConfig): Promise<BackendReport[]> {
  return Promise.all(
    storage.backends().map(async (b) => {
      const health = await b.health();
      return { name: b.name, basePath: b.basePath, type: b.type, health, healthy: health.error === undefined };
    }),
  );
}

/** One log line per backend: `storage backend 'vast' -> /home/jovyan/vast (nfs): ok`. */
export function describeBackend(report: BackendReport): string {
  const state = report.healthy ? 'ok' : `not advertised: ${report.health.error ?? 'unusable'}`;
  return `storage backend '${report.name}' -> ${report.basePath} (${report.type}): ${state}`;
}

export function buildCapabilities(opts: {
  backends: readonly BackendReport[];
  jobTypes: readonly JobType[];
  maxConcurrentJobs: number;
  gpu: GpuInfo | undefined;
}): Capabilities {
  const caps: Capabilities = {
    storage_backends: opts.backends.filter((b) => b.healthy).map((b) => b.name),
    job_types: [...opts.jobTypes],
    max_concurrent_jobs: opts.maxConcurrentJobs,
  };
  if (opts.gpu) caps.gpu = opts.gpu;
  return caps;
}
