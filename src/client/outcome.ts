/**
 * Reading what a worker (or the router) answered: whether a refused shared-storage job should be
 * retried by sending the files, and where a shared job's outputs are on this machine.
 */
import path from 'node:path';
import { SleapRtcError } from '../errors.js';
import { StorageResolver, type StorageConfig } from '../storage/index.js';
import type { JobPlan } from './plan.js';
import type { AttemptOutcome } from './session.js';

/** Why a refused shared-storage attempt should be retried by sending the files, or null when it should not. */
export function fallbackReason(outcome: Extract<AttemptOutcome, { kind: 'rejected' }>, backend: string): string | null {
  if (outcome.backendMissing) return `worker lacks backend ${outcome.backendMissing.backend}`;
  const errors = outcome.pathErrors;
  if (errors.length > 0 && errors.every((e) => e.rule === 'missing' && e.field !== 'output' && e.field !== 'user_subdir')) {
    return `worker cannot find ${errors.map((e) => e.field).join(', ')} on its mount of backend ${backend}`;
  }
  return null;
}

/** The router found no worker with the backend (or the pinned worker lacks it). */
export function noBackendReason(backend: string, available: readonly string[], pinned?: string): string {
  if (pinned !== undefined) return `worker ${pinned} lacks backend ${backend}`;
  return `no worker in the room has backend ${backend}${available.length ? ` (available: ${available.join(', ')})` : ''}`;
}

/**
 * The worker's output references as paths on this machine's mount of the same backend: confined
 * like any path from a peer, and spelled the way this machine names its mount.
 */
export async function sharedOutputsHere(
  refs: readonly { storage_backend: string; user_subdir: string; relative_path: string }[],
  storage: StorageConfig,
  plan: JobPlan,
): Promise<string[]> {
  const resolver = new StorageResolver(storage);
  const out: string[] = [];
  for (const ref of refs) {
    if (ref.storage_backend !== plan.shared?.backend || ref.user_subdir !== plan.shared.userSubdir) {
      throw new SleapRtcError('INVALID_MESSAGE', `The worker reported an output on ${ref.storage_backend}/${ref.user_subdir}, not where the job asked.`);
    }
    await resolver.resolve(ref.storage_backend, ref.user_subdir, ref.relative_path, { allowEmpty: true });
    out.push(path.join(storage.getBackend(ref.storage_backend).basePath, ...[ref.user_subdir, ref.relative_path].filter((s) => s !== '')));
  }
  return out;
}
