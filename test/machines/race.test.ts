/**
 * The race harness: real jobs on a worker machine while a racer on the client machine flips the
 * job's input and output folders on the share between the real folder and a symbolic link out
 * of it, as fast as it can, at least 10,000 times in all. Outside the share, on the worker, a
 * folder holds canary files under the same names as the job's files.
 *
 * Pass: no canary is ever read (the stand-in sleap-nn records the real path of everything it
 * opens, and the kernel's access time of every canary stays put), nothing appears or changes
 * outside the share, and every job either completes with its outputs inside the share or fails
 * with a clear error (PATH_VALIDATION at the check, PATH_CHANGED at use). The figures go to
 * docs/testing.md. Needs root (simulated machines, docs/testing.md).
 */
import { before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { readRecords } from '../fixtures/fake-sleap-nn.js';
import { cleanupStaleMachines, createNetwork, exited, jsonLines, machine, machinesSkipReason } from '../helpers/machines.js';
import { createRoom, hostDir, startServer, startWorker, tree } from './storage-env.js';

const LAPTOP_VAST = '/Volumes/talmo';
const WORKER_VAST = '/home/jovyan/vast';
/** The worker-only folder the links lead to; its canaries share the job files' names. */
const WORKER_SECRET = '/home/jovyan/secret';
const MIN_FLIPS = 10_000;
const MIN_JOBS = 12;
const BATCH = 6;
const OLD = new Date('2001-01-01T00:00:00Z');

const skip = await machinesSkipReason();

interface JobReply {
  job_id: string;
  messages: { type: string; code?: string; message?: string; outputs?: { relative_path: string }[] }[];
}

export interface RaceFigures {
  flips: number;
  jobs: number;
  completed: number;
  refused: number;
  failed: number;
  escapes: number;
}

/** Whether reading a file on this file system moves its access time (relatime, strictatime). */
function atimeWorks(dir: string): boolean {
  const probe = path.join(dir, 'atime-probe');
  writeFileSync(probe, 'probe');
  utimesSync(probe, OLD, new Date());
  readFileSync(probe);
  return statSync(probe).atimeMs > OLD.getTime() + 1000;
}

function canaries(secret: string): string[] {
  return ['labels.slp', 'config.yaml', 'video.mp4', 'm1/best.ckpt', 'm1/training_config.yaml'].map((n) => path.join(secret, n));
}

describe('the race: a client flips the job folders on the share while real jobs run', () => {
  before(async () => {
    if (skip !== false) return;
    await cleanupStaleMachines();
  });

  test('no canary read, nothing written outside, every job completes inside the share or fails clearly', { skip, timeout: 900_000 }, async (t: TestContext) => {
    const share = hostDir(t, 'race-vast');
    const secret = hostDir(t, 'race-secret');
    const records = hostDir(t, 'race-records');
    const record = path.join(records, 'worker.jsonl');
    const alice = path.join(share, 'alice');
    mkdirSync(path.join(alice, 'proj'), { recursive: true });
    mkdirSync(path.join(alice, 'models', 'm1'), { recursive: true });
    mkdirSync(path.join(alice, 'out'), { recursive: true });
    writeFileSync(path.join(alice, 'proj', 'labels.slp'), 'real labels '.repeat(100));
    writeFileSync(path.join(alice, 'proj', 'config.yaml'), 'trainer_config:\n  max_epochs: 1\n');
    writeFileSync(path.join(alice, 'proj', 'video.mp4'), 'real frames '.repeat(100));
    writeFileSync(path.join(alice, 'models', 'm1', 'best.ckpt'), 'real ckpt');
    writeFileSync(path.join(alice, 'models', 'm1', 'training_config.yaml'), 'model: real\n');
    mkdirSync(path.join(secret, 'm1'));
    const useAtime = atimeWorks(records);
    for (const c of canaries(secret)) {
      writeFileSync(c, `CANARY ${path.basename(c)}: the worker must never read this`);
      utimesSync(c, OLD, new Date());
    }
    const secretBefore = tree(secret);
    const stamp = (): string[] => canaries(secret).map((c) => `${c}:${statSync(c).mtimeMs}:${useAtime ? statSync(c).atimeMs : '-'}`);
    const stampBefore = stamp();

    const hide = { hide: [share, secret, records] };
    const net = await createNetwork(['server', 'laptop', 'runai']);
    t.after(() => net.destroy());
    const server = machine(net, 'server', [], hide);
    const laptop = machine(net, 'laptop', [{ source: share, target: LAPTOP_VAST }], hide);
    const runai = machine(
      net,
      'runai',
      [
        { source: share, target: WORKER_VAST },
        { source: secret, target: WORKER_SECRET },
        { source: records, target: '/srtc-records' },
      ],
      hide,
    );
    const room = await createRoom(laptop, await startServer(t, server));
    await startWorker(t, runai, room, {
      name: 'runai',
      storageToml: `[storage.vast]\nbase_path = "${WORKER_VAST}"\ntype = "nfs"\n`,
      record: '/srtc-records/worker.jsonl',
      // Jobs follow each other at once; a slot still being given back must not refuse the next one.
      workerToml: 'max_concurrent_jobs = 4\n',
    });

    // The racer, on the laptop, against the laptop's own mount of the share.
    const racer = laptop.spawnNode('test/machines/racer.ts', [
      WORKER_SECRET,
      '../..',
      `${LAPTOP_VAST}/alice/proj`,
      `${LAPTOP_VAST}/alice/models`,
      `${LAPTOP_VAST}/alice/out`,
    ]);
    const racerLines = jsonLines(racer);
    let flips = 0;
    let racerDone: Record<string, unknown> | undefined;
    const reading = (async () => {
      for (;;) {
        const line = await racerLines.next().catch(() => undefined);
        if (line === undefined) return;
        flips = Number(line.flips);
        if (line.done === true) {
          racerDone = line;
          return;
        }
      }
    })();
    t.after(() => {
      if (racer.exitCode === null) racer.kill('SIGKILL');
    });

    const replies: JobReply[] = [];
    const requests: { job_id: string; kind: 'train' | 'track'; run: string }[] = [];
    for (let batch = 0; flips < MIN_FLIPS || replies.length < MIN_JOBS; batch++) {
      assert.ok(batch < 40, `after ${batch} batches only ${flips} flips`);
      const jobs = Array.from({ length: BATCH }, (_, i) => {
        const n = batch * BATCH + i;
        const kind: 'train' | 'track' = n % 2 === 0 ? 'train' : 'track';
        const run = `r${n}`;
        requests.push({ job_id: `race-${n}`, kind, run });
        return kind === 'train'
          ? {
              type: 'JOB_REQUEST', job_id: `race-${n}`, job_type: 'train', transfer: 'shared',
              storage: { storage_backend: 'vast', user_subdir: 'alice' },
              spec: { labels: 'proj/labels.slp', config_file: 'proj/config.yaml', output: 'out', run_name: run, max_epochs: 1 },
            }
          : {
              type: 'JOB_REQUEST', job_id: `race-${n}`, job_type: 'track', transfer: 'shared',
              storage: { storage_backend: 'vast', user_subdir: 'alice' },
              spec: { data: 'proj/video.mp4', models: ['models/m1'], output: `out/${run}.slp` },
            };
      });
      const client = laptop.spawnNode('test/machines/hostile-client.ts', [room.url, room.roomId, room.token, 'runai', JSON.stringify(jobs)]);
      const lines = jsonLines(client);
      for (let i = 0; i < BATCH; i++) {
        const reply = (await lines.next()) as unknown as JobReply;
        replies.push(reply);
        t.diagnostic(`${reply.job_id}: ${reply.messages.at(-1)?.type ?? '?'} ${reply.messages.at(-1)?.code ?? ''} (flips so far: ${flips})`);
      }
      assert.deepEqual(await lines.next(), { done: true });
      await exited(client);
    }
    racer.kill('SIGTERM');
    await reading;
    assert.ok(racerDone, 'the racer stopped and put the real folders back');
    flips = Number(racerDone.flips);

    // Every job ended clearly; a completed one has its outputs inside the share.
    const figures: RaceFigures = { flips, jobs: replies.length, completed: 0, refused: 0, failed: 0, escapes: 0 };
    for (const reply of replies) {
      const last = reply.messages.at(-1);
      const request = requests.find((r) => r.job_id === reply.job_id);
      assert.ok(last && request, JSON.stringify(reply));
      if (last.type === 'JOB_COMPLETE') {
        figures.completed++;
        const out = request.kind === 'train' ? path.join(alice, 'out', request.run, 'best.ckpt') : path.join(alice, 'out', `${request.run}.slp`);
        const text = readFileSync(out, 'utf8');
        assert.ok(!text.includes('CANARY'), `${reply.job_id}: ${text}`);
        if (request.kind === 'train') assert.match(text, new RegExp(`labels_bytes=${'real labels '.length * 100}\\b`), `${reply.job_id} read the real labels`);
        continue;
      }
      assert.ok(last.type === 'JOB_REJECTED' || last.type === 'JOB_FAILED', `${reply.job_id}: ${JSON.stringify(reply.messages)}`);
      assert.ok(last.code === 'PATH_VALIDATION' || last.code === 'PATH_CHANGED', `${reply.job_id} ended with a clear path error: ${JSON.stringify(last)}`);
      assert.ok((last.message ?? '').length > 20 && !(last.message ?? '').includes(WORKER_VAST) && !(last.message ?? '').includes(WORKER_SECRET), JSON.stringify(last));
      if (last.type === 'JOB_REJECTED') figures.refused++;
      else figures.failed++;
    }

    // Nothing read outside: what the stand-in opened (real paths), and the canaries' access times.
    const runs = await readRecords(record);
    const jobs = `${runai.home}/work/`;
    for (const run of runs) {
      for (const p of (run as { opened?: string[] }).opened ?? []) {
        if (!p.startsWith(`${WORKER_VAST}/`) && !p.startsWith(jobs)) figures.escapes++;
        assert.ok(!p.startsWith(WORKER_SECRET), `sleap-nn opened the canary ${p}`);
      }
    }
    // Nothing created or changed outside; no canary's access time moved (when the file system keeps them).
    assert.deepEqual(tree(secret), secretBefore, 'nothing appeared outside the share');
    assert.deepEqual(stamp(), stampBefore, 'no canary was read or changed');
    assert.equal(figures.escapes, 0);
    assert.ok(figures.flips >= MIN_FLIPS, `only ${figures.flips} flips`);
    assert.ok(figures.completed > 0, `no job completed: ${JSON.stringify(figures)}`);
    t.diagnostic(`race figures: ${JSON.stringify({ ...figures, sleap_nn_runs: runs.length, atime_checked: useAtime })}`);
  });
});
