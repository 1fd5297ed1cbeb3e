/**
 * The signaling store's key. Issue 12 names it `[signaling] store`; it was first read as
 * `[server] store` (documented, so config files carry it). Both are read: `[signaling] store`
 * wins, the old key still works alone, and the two set to different stores is a configuration
 * error naming both (a server must not silently pick one of two databases). The result is
 * `server.store`, which `sleap-rtc server` reads.
 */
import type { ConfigProblem } from './errors.js';

export const DEFAULT_STORE = 'memory';

export function resolveStoreKey(signalingStore: string | undefined, serverStore: string | undefined, source: string | null): { store: string; problems: ConfigProblem[] } {
  if (signalingStore !== undefined && serverStore !== undefined && signalingStore !== serverStore) {
    return {
      store: signalingStore,
      problems: [
        {
          file: source ?? 'defaults',
          path: 'server.store',
          message: `is "${serverStore}" but signaling.store is "${signalingStore}"; keep only [signaling] store (the key's current place) and remove store from [server]`,
        },
      ],
    };
  }
  return { store: signalingStore ?? serverStore ?? DEFAULT_STORE, problems: [] };
}
