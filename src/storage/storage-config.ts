/** The set of storage backends configured on this machine, by name. */
import type { SleapRtcConfig, StorageSectionOptions } from '../config/load.js';
import { parseStorageSection } from '../config/load.js';
import type { StorageBackendConfig } from '../config/schema.js';
import { createStorageBackend, type StorageBackend } from './backend.js';
import { StorageBackendNotFound } from './errors.js';

export class StorageConfig {
  readonly #backends: ReadonlyMap<string, StorageBackend>;

  constructor(backends: Iterable<StorageBackend>) {
    const map = new Map<string, StorageBackend>();
    for (const b of backends) {
      if (map.has(b.name)) throw new TypeError(`duplicate storage backend name ${JSON.stringify(b.name)}`);
      map.set(b.name, b);
    }
    this.#backends = map;
    Object.freeze(this);
  }

  /**
   * From a raw `[storage]` table as parsed from TOML (`{ vast: { base_path: "/mnt/vast" } }`),
   * validated by the same schema as the config file; `opts.env` enables the SHARED_STORAGE_ROOT
   * fallback. Throws ConfigError.
   */
  static fromToml(storageSection: unknown, opts: StorageSectionOptions = {}): StorageConfig {
    return StorageConfig.fromEntries(parseStorageSection(storageSection, opts).backends);
  }

  /** From a configuration loaded by loadConfig (already validated, fallback already applied). */
  static fromConfig(config: Pick<SleapRtcConfig, 'storage'>): StorageConfig {
    return StorageConfig.fromEntries(config.storage);
  }

  private static fromEntries(storage: Readonly<Record<string, Readonly<StorageBackendConfig>>>): StorageConfig {
    return new StorageConfig(
      Object.entries(storage).map(([name, b]) =>
        createStorageBackend({
          name,
          basePath: b.base_path,
          type: b.type,
          description: b.description,
          ...(b.user_subdir !== undefined ? { userSubdir: b.user_subdir } : {}),
        }),
      ),
    );
  }

  hasBackend(name: string): boolean {
    return this.#backends.has(name);
  }

  /** Throws StorageBackendNotFound naming the configured backends. */
  getBackend(name: string): StorageBackend {
    const backend = this.#backends.get(name);
    if (!backend) throw new StorageBackendNotFound(name, this.listBackends());
    return backend;
  }

  /** Names in configuration order. */
  listBackends(): string[] {
    return [...this.#backends.keys()];
  }

  backends(): StorageBackend[] {
    return [...this.#backends.values()];
  }

  /** See StorageBackendApi.resolvePath. Throws StorageBackendNotFound or PathValidationError. */
  resolvePath(backend: string, userSubdir: string, relativePath: string, opts?: { allowEmpty?: boolean }): Promise<string> {
    // getBackend throws synchronously; keep the promise contract for callers that only .catch().
    return Promise.resolve().then(() => this.getBackend(backend).resolvePath(userSubdir, relativePath, opts));
  }
}
