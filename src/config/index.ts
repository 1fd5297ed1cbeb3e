/** The configuration layer: find, read and validate sleap-rtc.toml. */
export { loadConfig, parseConfig, parseStorageSection, findConfigFile, configSearchOrder, CONFIG_ENV_VAR, CWD_CONFIG_NAME } from './load.js';
export type { SleapRtcConfig, LoadConfigOptions, ConfigLocation, StorageSectionOptions } from './load.js';
export { ConfigError, ConfigNotFoundError, formatProblem } from './errors.js';
export type { ConfigProblem } from './errors.js';
export { STORAGE_TYPES, JOB_TYPES, expandHome } from './schema.js';
export type { StorageType, JobType, StorageBackendConfig, ConfigData } from './schema.js';
export { SHARED_STORAGE_ROOT, COMPAT_BACKEND_NAME } from './compat.js';
export type { StorageOrigin } from './compat.js';
export { resolveSignaling, SIGNALING_ENV } from './signaling.js';
export type { SignalingSettings } from './signaling.js';
