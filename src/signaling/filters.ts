/**
 * The `discover_peers` matcher. Filters are compiled once per request into a predicate, then run
 * over every peer of the room.
 *
 * Semantics (all conditions must hold):
 * - `role`: the peer's role; `status`: `metadata.status`.
 * - `properties`: keys are dotted paths into metadata (`capabilities.storage_backends`,
 *   `capabilities.gpu.memory_mb`); only own properties are followed, so `__proto__` or
 *   `constructor` never reach Object.prototype. A missing path matches nothing.
 *   Values: a plain string/number/boolean/null means strict equality; `{$gte: n}` / `{$lte: n}`
 *   need a number; `{$in: [...]}` means equal to one of the list; `{$contains: x}` means an array
 *   holding x (strict equality) or a string holding the substring x.
 */
import type { DiscoverFilters, PeerInfo, PropertyFilter } from '../protocol/signaling.js';

export type PeerPredicate = (peer: Pick<PeerInfo, 'role' | 'metadata'>) => boolean;

type ValueTest = (value: unknown) => boolean;

/** Marks a path that does not exist, distinct from a stored `null`. */
const MISSING = Symbol('missing');

export function compileFilters(filters: DiscoverFilters): PeerPredicate {
  const tests: PeerPredicate[] = [];
  if (filters.role !== undefined) {
    const role = filters.role;
    tests.push((p) => p.role === role);
  }
  if (filters.status !== undefined) {
    const status = filters.status;
    tests.push((p) => readPath(p.metadata, ['status']) === status);
  }
  for (const [path, condition] of Object.entries(filters.properties ?? {})) {
    const segments = path.split('.');
    const test = compileCondition(condition);
    tests.push((p) => {
      const value = readPath(p.metadata, segments);
      return value !== MISSING && test(value);
    });
  }
  return (peer) => tests.every((t) => t(peer));
}

/** Convenience for one-off checks: compiles and applies. */
export function matchesFilters(peer: Pick<PeerInfo, 'role' | 'metadata'>, filters: DiscoverFilters): boolean {
  return compileFilters(filters)(peer);
}

function compileCondition(condition: PropertyFilter): ValueTest {
  if (condition === null || typeof condition !== 'object') {
    return (v) => v === condition;
  }
  if ('$gte' in condition) {
    const bound = condition.$gte;
    return (v) => typeof v === 'number' && v >= bound;
  }
  if ('$lte' in condition) {
    const bound = condition.$lte;
    return (v) => typeof v === 'number' && v <= bound;
  }
  if ('$in' in condition) {
    const options = condition.$in;
    return (v) => options.some((o) => o === v);
  }
  const needle = condition.$contains;
  return (v) => {
    if (Array.isArray(v)) return v.some((item) => item === needle);
    if (typeof v === 'string' && typeof needle === 'string') return v.includes(needle);
    return false;
  };
}

function readPath(root: unknown, segments: readonly string[]): unknown {
  let current: unknown = root;
  for (const key of segments) {
    if (typeof current !== 'object' || current === null || !Object.hasOwn(current, key)) return MISSING;
    current = (current as Record<string, unknown>)[key];
  }
  return current;
}
