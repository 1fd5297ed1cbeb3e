/**
 * Backward compatibility with the single-root setup: SHARED_STORAGE_ROOT=/path used to be the only
 * way to name shared storage. It still works, as a backend called `default`, but only while the
 * file defines no [storage.*] section: once it does, the file is the whole truth.
 */
import type { Logger } from '../log.js';
import type { ConfigProblem } from './errors.js';
import { issuesToProblems } from './problems.js';
import { storageBackendSchema, type SchemaContext, type StorageBackendConfig } from './schema.js';

export const SHARED_STORAGE_ROOT = 'SHARED_STORAGE_ROOT';
export const COMPAT_BACKEND_NAME = 'default';

export type StorageOrigin = 'config' | 'SHARED_STORAGE_ROOT' | 'none';

export interface CompatResult {
  storage: Record<string, StorageBackendConfig>;
  origin: StorageOrigin;
  problems: ConfigProblem[];
}

/**
 * `hasSections` is decided from the raw file, so the rule holds even when the sections themselves
 * are invalid (their problems are reported, and the variable is still not consulted).
 */
export function applySharedStorageRoot(
  storage: Record<string, StorageBackendConfig>,
  hasSections: boolean,
  ctx: SchemaContext & { env: NodeJS.ProcessEnv; source: string | null; logger: Logger },
): CompatResult {
  const root = ctx.env[SHARED_STORAGE_ROOT];
  if (hasSections) {
    if (root) {
      ctx.logger.warn(
        `${SHARED_STORAGE_ROOT} is set but ${ctx.source ?? 'the configuration'} defines [storage.*] sections; the variable is ignored`,
      );
    }
    return { storage, origin: 'config', problems: [] };
  }
  if (!root) return { storage, origin: 'none', problems: [] };
  const schema = storageBackendSchema(ctx);
  const parsed = schema.safeParse(
    { base_path: root, type: 'local', description: `from the ${SHARED_STORAGE_ROOT} environment variable` },
    { reportInput: true },
  );
  if (!parsed.success) {
    const problems = issuesToProblems(parsed.error.issues, 'environment', schema, root).map((p) => ({
      file: 'environment',
      path: SHARED_STORAGE_ROOT,
      message: `${p.message} (or define [storage.<name>] sections in the config file instead)`,
    }));
    return { storage, origin: 'none', problems };
  }
  return { storage: { [COMPAT_BACKEND_NAME]: parsed.data }, origin: 'SHARED_STORAGE_ROOT', problems: [] };
}
