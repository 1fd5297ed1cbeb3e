// How this project runs TypeScript from source: `node --import ./scripts/ts-loader.mjs file.ts`.
// It registers tsx, then one hook (ts-loader-hooks.mjs) that loads installed ES modules
// (node_modules) as Node itself would, without tsx's rewrite of their dynamic imports. That rewrite
// builds a source map over the whole file on every start: for h5wasm's 4 MB module it cost ~5 s
// of CPU per process, which every test file, demo and spawned CLI paid.
import 'tsx';
import { register } from 'node:module';

register('./ts-loader-hooks.mjs', import.meta.url);
