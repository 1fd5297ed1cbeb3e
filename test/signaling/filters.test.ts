import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileFilters, matchesFilters } from '../../src/signaling/filters.js';
import { DiscoverFiltersSchema, type DiscoverFilters, type PeerInfo } from '../../src/protocol/signaling.js';

const gpuWorker: Pick<PeerInfo, 'role' | 'metadata'> = {
  role: 'worker',
  metadata: {
    name: 'lab-a100',
    status: 'available',
    capabilities: {
      storage_backends: ['vast', 'scratch'],
      job_types: ['train', 'track'],
      max_concurrent_jobs: 2,
      gpu: { name: 'NVIDIA A100', memory_mb: 40960, count: 1 },
    },
    site: 'salk',
    tags: ['fast', 3, null],
    empty: null,
  },
};

const bareWorker: Pick<PeerInfo, 'role' | 'metadata'> = {
  role: 'worker',
  metadata: { status: 'busy', capabilities: { storage_backends: [], job_types: ['track'], max_concurrent_jobs: 1 } },
};

const client: Pick<PeerInfo, 'role' | 'metadata'> = { role: 'client', metadata: {} };

// [description, filters, matches gpuWorker, matches bareWorker, matches client]
const CASES: [string, DiscoverFilters, boolean, boolean, boolean][] = [
  ['no filters match everyone', {}, true, true, true],
  ['role worker', { role: 'worker' }, true, true, false],
  ['role client', { role: 'client' }, false, false, true],
  ['status available', { status: 'available' }, true, false, false],
  ['status busy', { status: 'busy' }, false, true, false],
  ['status on a peer without status', { status: 'reserved' }, false, false, false],
  ['equality on a string', { properties: { name: 'lab-a100' } }, true, false, false],
  ['equality is strict (no number/string coercion)', { properties: { 'capabilities.max_concurrent_jobs': '2' } }, false, false, false],
  ['equality on a number', { properties: { 'capabilities.max_concurrent_jobs': 2 } }, true, false, false],
  ['equality with null matches a stored null', { properties: { empty: null } }, true, false, false],
  ['equality with null does not match a missing key', { properties: { nothing: null } }, false, false, false],
  ['equality against an array is not membership', { properties: { 'capabilities.storage_backends': 'vast' } }, false, false, false],
  ['$gte on a nested number', { properties: { 'capabilities.gpu.memory_mb': { $gte: 40960 } } }, true, false, false],
  ['$gte above the value', { properties: { 'capabilities.gpu.memory_mb': { $gte: 40961 } } }, false, false, false],
  ['$lte', { properties: { 'capabilities.max_concurrent_jobs': { $lte: 1 } } }, false, true, false],
  ['$lte on a string is no match', { properties: { name: { $lte: 100 } } }, false, false, false],
  ['$in with a member', { properties: { site: { $in: ['salk', 'janelia'] } } }, true, false, false],
  ['$in without a member', { properties: { site: { $in: ['janelia'] } } }, false, false, false],
  ['$in on a missing path', { properties: { missing: { $in: [null] } } }, false, false, false],
  ['$contains in an array (storage filter)', { properties: { 'capabilities.storage_backends': { $contains: 'vast' } } }, true, false, false],
  ['$contains absent from the array', { properties: { 'capabilities.storage_backends': { $contains: 'nfs' } } }, false, false, false],
  ['$contains on an empty array', { properties: { 'capabilities.storage_backends': { $contains: '' } } }, false, false, false],
  ['$contains is strict in arrays', { properties: { tags: { $contains: '3' } } }, false, false, false],
  ['$contains a number in a mixed array', { properties: { tags: { $contains: 3 } } }, true, false, false],
  ['$contains a substring', { properties: { 'capabilities.gpu.name': { $contains: 'A100' } } }, true, false, false],
  ['$contains substring is case-sensitive', { properties: { 'capabilities.gpu.name': { $contains: 'a100' } } }, false, false, false],
  ['$contains a non-string in a string', { properties: { name: { $contains: 1 } } }, false, false, false],
  ['array index path', { properties: { 'capabilities.storage_backends.0': 'vast' } }, true, false, false],
  ['all conditions must hold', { role: 'worker', status: 'available', properties: { site: 'salk', 'capabilities.gpu.count': 2 } }, false, false, false],
  ['combination that holds', { role: 'worker', status: 'available', properties: { site: 'salk', 'capabilities.gpu.count': 1 } }, true, false, false],
  // Paths must not reach into prototypes: these would otherwise match every object.
  ['__proto__ path', { properties: { '__proto__.constructor.name': 'Object' } }, false, false, false],
  ['constructor path', { properties: { 'constructor.name': 'Object' } }, false, false, false],
  ['toString path', { properties: { 'name.length': 8 } }, false, false, false],
  ['hasOwnProperty path', { properties: { hasOwnProperty: { $contains: 'x' } } }, false, false, false],
  ['empty segment', { properties: { 'capabilities..gpu': { $in: [undefined] } } }, false, false, false],
  ['path through a primitive', { properties: { 'name.x': 'y' } }, false, false, false],
];

for (const [name, filters, gpu, bare, cli] of CASES) {
  test(`filters: ${name}`, () => {
    const predicate = compileFilters(filters);
    assert.equal(predicate(gpuWorker), gpu, 'gpu worker');
    assert.equal(predicate(bareWorker), bare, 'bare worker');
    assert.equal(predicate(client), cli, 'client');
    assert.equal(matchesFilters(gpuWorker, filters), gpu);
  });
}

test('filters: every table case except the undefined one is a valid wire filter', () => {
  for (const [name, filters] of CASES) {
    if (name === 'empty segment') continue;
    assert.equal(DiscoverFiltersSchema.safeParse(filters).success, true, name);
  }
});

test('filters: the wire schema refuses unknown operators and mixed operator objects', () => {
  for (const bad of [
    { properties: { x: { $regex: '.*' } } },
    { properties: { x: { $gte: 1, $lte: 2 } } },
    { properties: { x: { $gte: '1' } } },
    { properties: { x: [1, 2] } },
    { properties: { '': 1 } },
    { role: 'admin' },
    { status: 'sleeping' },
    { other: 1 },
  ]) {
    assert.equal(DiscoverFiltersSchema.safeParse(bad).success, false, JSON.stringify(bad));
  }
});
