// Module hooks registered by ts-loader.mjs, after tsx's, so they run before tsx's (hooks chain
// last-registered first). Only installed ES modules are taken here: Node has already resolved
// them as `module` format and they need no TypeScript transform. Everything else goes on to tsx.
import { readFile } from 'node:fs/promises';

const INSTALLED_JS = /\/node_modules\/.*\.m?js$/;

export async function load(url, context, nextLoad) {
  if (context.format === 'module' && url.startsWith('file:') && INSTALLED_JS.test(url)) {
    return { format: 'module', source: await readFile(new URL(url)), shortCircuit: true };
  }
  return nextLoad(url, context);
}
