/**
 * What path confinement costs. Each job resolves a handful of paths, so this is not a hot path. The
 * point is to show that the safety checks stay within a small factor of the least any real-path check
 * can cost: one fs.realpath of the same file (the baseline, measured in the same run).
 *
 *   npm run bench:resolve
 *
 * The last line of output is one JSON object with every figure.
 */
import { mkdir, mkdtemp, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { checkRelativePath, confinePath } from '../src/storage/confine.js';
import { StorageResolver } from '../src/storage/resolver.js';
import { StorageConfig } from '../src/storage/storage-config.js';

const DURATION_MS = Number(process.env.BENCH_DURATION_MS ?? 1500);

/** Calls per second of `fn`, after a short warm-up; runs sequentially, as callers do. */
async function rate(fn: () => unknown): Promise<number> {
  const warmUntil = performance.now() + 200;
  while (performance.now() < warmUntil) await fn();
  let n = 0;
  const start = performance.now();
  let now = start;
  while (now - start < DURATION_MS) {
    for (let i = 0; i < 50; i++) await fn();
    n += 50;
    now = performance.now();
  }
  return n / ((now - start) / 1000);
}

const root = await mkdtemp(path.join(os.tmpdir(), 'sleap-rtc-bench-resolve-'));
try {
  const base = path.join(root, 'vast');
  const deep = ['alice', 'projects', 'mice', 'session-01', 'labels'];
  await mkdir(path.join(base, ...deep), { recursive: true });
  await writeFile(path.join(base, ...deep, 'labels.v001.slp'), '');
  await mkdir(path.join(base, 'shared', 'videos'), { recursive: true });
  await symlink('../shared/videos', path.join(base, 'alice', 'videos'));
  await writeFile(path.join(base, 'shared', 'videos', 'cam0.mp4'), '');

  const existing = `${deep.slice(1).join('/')}/labels.v001.slp`;
  const absExisting = path.join(base, 'alice', existing);
  const notYet = 'projects/mice/session-02/models/run-1/best.ckpt';
  const storage = StorageConfig.fromToml({ vast: { base_path: base, user_subdir: 'alice' } });
  const backend = storage.getBackend('vast');
  const resolver = new StorageResolver(storage);

  const baseline = await rate(() => realpath(absExisting));
  const rows: [string, number][] = [
    ['fs.realpath (baseline)', baseline],
    ['checkRelativePath (lexical only)', await rate(() => checkRelativePath(existing))],
    ['confinePath, existing file', await rate(() => confinePath(base, `alice/${existing}`))],
    ['confinePath, through a symlink', await rate(() => confinePath(base, 'alice/videos/cam0.mp4'))],
    ['confinePath, not yet created (walk)', await rate(() => confinePath(base, `alice/${notYet}`))],
    ['backend.resolvePath (user folder + path)', await rate(() => backend.resolvePath('alice', existing))],
    ['resolver.toRelative', await rate(() => resolver.toRelative(absExisting))],
  ];

  console.log(`path confinement, ${os.cpus().length} cores, ${DURATION_MS} ms per row, sequential calls\n`);
  console.log(`${'operation'.padEnd(42)} ${'calls/s'.padStart(12)}  ${'cost vs baseline'.padStart(16)}`);
  for (const [name, perSecond] of rows) {
    console.log(`${name.padEnd(42)} ${Math.round(perSecond).toLocaleString('en-US').padStart(12)}  ${`${(baseline / perSecond).toFixed(2)}x`.padStart(16)}`);
  }
  const figures: Record<string, number> = { baseline_realpath_per_s: Math.round(baseline) };
  for (const [name, perSecond] of rows.slice(1)) {
    const key = name.replace(/[^a-z]+/gi, '_').replace(/^_|_$/g, '').toLowerCase();
    figures[`${key}_per_s`] = Math.round(perSecond);
    figures[`${key}_cost_ratio`] = Number((baseline / perSecond).toFixed(3));
  }
  console.log(`\n(a cost ratio of 2.00x means the operation takes twice as long as one fs.realpath of the same file)`);
  console.log(JSON.stringify({ bench: 'resolve', duration_ms: DURATION_MS, ...figures }));
} finally {
  await rm(root, { recursive: true, force: true });
}
