/**
 * The sentences and details of the errors that end a routing request: each says what no worker
 * had, or how long was waited, and what to do about it.
 */
import type { NoMatchReason } from '../protocol/routing.js';
import type { RouteFailure, RouteRequest } from './routing-store.js';

export function describeFailure(
  request: RouteRequest,
  failure: RouteFailure,
  reservationTimeoutMs: number,
  now: number,
): { message: string; details: Record<string, unknown> } {
  const req = request.requirements;
  switch (failure.code) {
    case 'NO_MATCHING_WORKER': {
      const details: Record<string, unknown> = {
        reason: failure.reason,
        job_type: req.job_type,
        required_storage: req.required_storage,
        available_backends: [...failure.available_backends],
        ...(req.worker !== undefined ? { worker: req.worker } : {}),
        ...(req.min_gpu_memory_mb !== undefined ? { min_gpu_memory_mb: req.min_gpu_memory_mb } : {}),
        ...(failure.missing !== undefined ? { missing: failure.missing } : {}),
      };
      return { message: noMatchSentence(failure.reason, req, failure.available_backends, failure.missing), details };
    }
    case 'QUEUE_TIMEOUT': {
      const waited = Math.max(0, now - request.requested_at_ms);
      const limit = request.deadline_ms === null ? 0 : request.deadline_ms - request.requested_at_ms;
      return {
        message: `No matching worker became free within ${formatSeconds(limit)}; try again later, or wait longer with a larger --queue-timeout.`,
        details: { waited_ms: waited, queue_timeout_ms: limit },
      };
    }
    case 'RESERVATION_EXPIRED':
      return {
        message: `Worker "${failure.worker_peer_id}" did not take the job within ${formatSeconds(reservationTimeoutMs)}, and no other worker in the room can serve it.`,
        details: { worker_peer_id: failure.worker_peer_id },
      };
  }
}

function noMatchSentence(reason: NoMatchReason, req: RouteRequest['requirements'], backends: readonly string[], missing: string | undefined): string {
  const have = backends.length > 0 ? backends.map((b) => `"${b}"`).join(', ') : 'none';
  const storage = req.required_storage;
  switch (reason) {
    case 'no_workers':
      return 'The room has no worker that advertises what it can do; start one with `sleap-rtc worker`.';
    case 'no_backend':
      return `No worker in the room has storage backend "${storage ?? ''}" (backends in the room: ${have}). Run it as a transfer job (files sent over the data channel), or start a worker with [storage.${storage ?? ''}].`;
    case 'no_job_type':
      return storage === null ? `No worker in the room runs "${req.job_type}" jobs.` : `No worker with storage backend "${storage}" runs "${req.job_type}" jobs.`;
    case 'gpu_too_small':
      return `No worker that could run this job has a GPU with at least ${req.min_gpu_memory_mb ?? 0} MB of memory.`;
    case 'worker_not_found':
      return `No worker "${req.worker ?? ''}" (peer id or name) is in the room; list them with \`sleap-rtc workers\`.`;
    case 'worker_cannot_serve':
      return `Worker "${req.worker ?? ''}" cannot serve this job: ${missingSentence(missing, req)}.`;
  }
}

function missingSentence(missing: string | undefined, req: RouteRequest['requirements']): string {
  switch (missing) {
    case 'storage':
      return `it has no storage backend "${req.required_storage ?? ''}"`;
    case 'job_type':
      return `it does not run "${req.job_type}" jobs`;
    case 'gpu':
      return `its GPU has less than ${req.min_gpu_memory_mb ?? 0} MB of memory (or it reports none)`;
    default:
      return 'it advertises no capabilities';
  }
}

function formatSeconds(ms: number): string {
  const s = ms / 1000;
  return `${Number.isInteger(s) ? s : s.toFixed(1)} s`;
}
