/** Storage backends: named mounts, path confinement, and reference <-> local path translation. */
export { canAccess } from './access.js';
export { checkRelativePath, confinePath, isInside, realPathOf, PathValidationError } from './confine.js';
export type { PathRule } from './confine.js';
export { StorageBackend, createStorageBackend } from './backend.js';
export type { StorageBackendApi, StorageBackendOptions, BackendHealth, StorageType } from './backend.js';
export { StorageConfig } from './storage-config.js';
export { StorageResolver } from './resolver.js';
export type { StorageLocation } from './resolver.js';
export { StorageBackendNotFound, PathNotInBackendError } from './errors.js';
export { ConfinedRoot, PathChangedError, closeQuietly, fdPath } from './beneath.js';
export type { Opened, PathChangedReason, Want } from './beneath.js';
