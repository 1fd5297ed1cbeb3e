/** SLEAP labels files: list the videos they name, find those files, and write renamed copies. */
export { listVideos, describeVideo } from './videos.js';
export type { SlpVideo, SlpVideoList, VideoKind } from './videos.js';
export { resolveVideoName, resolveVideos, sleapName } from './resolve.js';
export type { FoundHow, ResolvedName, ResolvedVideo } from './resolve.js';
export { readMetadataJson, writeRenamedCopy } from './rewrite.js';
export type { VideoRenames } from './rewrite.js';
export { SlpError } from './errors.js';
export { h5 as loadHdf5 } from './h5.js';
