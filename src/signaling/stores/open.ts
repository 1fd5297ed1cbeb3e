/**
 * From a store setting (`--store`, `[signaling] store` or the older `[server] store`) to a store and a bus: `memory` (the
 * default; with a rooms file when one is configured) or `redis://[:password@]HOST:PORT/DB`.
 */
import { UsageError } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { MessageBus } from '../bus.js';
import { createMemoryBus } from '../buses/memory.js';
import type { BusCounters } from '../buses/redis.js';
import type { SignalingStore } from '../store.js';
import { createMemoryStore, openMemoryStore } from './memory.js';

export interface StoreBackend {
  store: SignalingStore;
  bus: MessageBus;
  /** Cross-process message counts (a shared bus only). */
  counters: BusCounters | undefined;
  close(): Promise<void>;
}

export type StoreSetting = { kind: 'memory' } | { kind: 'redis'; url: string };

/** Parses a store setting; throws UsageError (exit 2) naming the accepted forms. */
export function parseStoreSetting(text: string): StoreSetting {
  if (text === 'memory') return { kind: 'memory' };
  let url: URL | undefined;
  try {
    url = new URL(text);
  } catch {
    url = undefined;
  }
  const db = url?.pathname.replace(/^\//, '') ?? '';
  if (url === undefined || url.protocol !== 'redis:' || url.hostname === '' || !/^\d{0,2}$/.test(db)) {
    throw new UsageError(`Store "${text.replace(/:[^:@/]*@/, ':***@')}" is not understood; use "memory" or redis://HOST:PORT/DB, e.g. redis://127.0.0.1:6379/0.`);
  }
  return { kind: 'redis', url: text };
}

export async function openStoreBackend(setting: StoreSetting, opts: { nodeId: string; logger: Logger; roomsFile?: string | undefined }): Promise<StoreBackend> {
  if (setting.kind === 'memory') {
    const store = opts.roomsFile !== undefined ? await openMemoryStore({ file: opts.roomsFile }) : createMemoryStore();
    const bus = createMemoryBus({ logger: opts.logger });
    return {
      store,
      bus,
      counters: undefined,
      async close() {
        await bus.close();
        await store.close();
      },
    };
  }
  // Loaded only when asked for: every CLI command starts faster without ioredis.
  const [{ openRedisStore }, { createRedisBus }] = await Promise.all([import('./redis.js'), import('../buses/redis.js')]);
  const store = await openRedisStore({ url: setting.url });
  let bus;
  try {
    bus = await createRedisBus(store.connection.redis, opts.nodeId, opts.logger);
  } catch (err) {
    await store.close();
    throw err;
  }
  const connected = bus;
  const redis = store.connection.redis;
  let down = false;
  redis.on('close', () => {
    if (down) return;
    down = true;
    opts.logger.error(`lost the connection to Redis at ${store.connection.safeUrl}; reconnecting (requests fail with STORE_UNAVAILABLE meanwhile)`);
  });
  redis.on('ready', () => {
    if (!down) return;
    down = false;
    opts.logger.info(`reconnected to Redis at ${store.connection.safeUrl}`);
  });
  return {
    store,
    bus: connected,
    counters: connected.counters,
    async close() {
      await connected.close();
      await store.close();
    },
  };
}
