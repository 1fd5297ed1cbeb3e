/**
 * Removes simulated-machine leftovers of crashed test runs (network namespaces, the processes in
 * them, temp dirs). By default only those whose creating process is gone; --all also takes those of
 * live processes, so use it only when no tests are running.
 *
 *   node --import ./scripts/ts-loader.mjs test/helpers/machines-cleanup.ts [--all]
 */
import { cleanupStaleMachines } from './machines.js';

const all = process.argv.includes('--all');
const removed = await cleanupStaleMachines({ all });
for (const ns of removed.namespaces) console.log(`deleted netns ${ns}`);
for (const dir of removed.dirs) console.log(`removed temp dir ${dir}`);
if (removed.namespaces.length + removed.dirs.length === 0) console.log('nothing to clean up');
