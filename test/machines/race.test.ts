/**
 * The race harness: real jobs on a worker machine while a racer on the client machine flips the
 * job's input and output folders on the share between the real folder and a symbolic link out
 * of it, as fast as it can, at least 10,000 times in all. Outside the share, on the worker, a
 * folder holds canary files under the same names as the job's files.
 *
 * The job's files are real SLEAP files (../shared/sleap-data): a package labels file, sleap-nn's
 * sample config, a video. Each canary is a file of the same kind that differs in what it says
 * (a labels file with two frames and a marker after its HDF5 data, the other sample config), so
 * a job that read one would complete and show it, not fail on a parse error.
 *
 * Pass: no canary is ever read (the stand-in sleap-nn records the real path of every input it
 * opens, read back from the descriptor, and each must lie in the share or the job folder; the
 * kernel's access time of every canary stays put), nothing appears or changes outside the share,
 * and every job either completes with its outputs inside the share, made from the real inputs, or
 * fails with a clear error (PATH_VALIDATION at the check, PATH_CHANGED at use). The figures go to
 * docs/testing.md. Needs root (simulated machines, docs/testing.md).
 */
import { before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { appendFileSync, chmodSync, mkdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import h5wasm from 'h5wasm/node';
import { readPredictions, readRecords } from '../fixtures/fake-sleap-nn.js';
import { cleanupStaleMachines, createNetwork, exited, jsonLines, machine, machinesSkipReason } from '../helpers/machines.js';
import { copySleapFile, copyTrainingConfig } from '../helpers/sleap-data.js';
import { labelsNaming } from '../helpers/slp-files.js';
import { labelsContent, labelsOnly } from '../helpers/slp-content.js';
import { createRoom, hostDir, startServer, startWorker, tree } from './storage-env.js';

const LAPTOP_VAST = '/Volumes/talmo';
const WORKER_VAST = '/home/jovyan/vast';
/** The worker-only folder the links lead to; its canaries share the job files' names. */
const WORKER_SECRET = '/home/jovyan/secret';
const MIN_FLIPS = 10_000;
const MIN_JOBS = 12;
const BATCH = 6;
const OLD = new Date('2001-01-01T00:00:00Z');
/**
 * Train on the package labels file, or on a labels file naming two external videos (`-videos`);
 * predict on either labels file (read with HDF5) or on the video itself.
 */
/** h5py's reason when HDF5 cannot resolve a linked path's real name (see the stand-in's slp.mjs). */
const HDF5_NAME_MOVED = "can't retrieve real path for file";
const KINDS = ['train', 'track-labels', 'train-videos', 'track-videos', 'track-video', 'train-videos'] as const;
type Kind = (typeof KINDS)[number];

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
  /** sleap-nn (HDF5) could not resolve a pinned labels file's real name the racer had just moved. */
  sleap_nn_name_moved: number;
  escapes: number;
  /** The jobs on a labels file naming external videos (one in a flipped folder, one swapped itself). */
  videos: { jobs: number; completed: number };
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
  return ['labels.slp', 'cams.slp', 'config.yaml', 'video.mp4', 'cam0.mp4', 'cam1.mp4', 'm1/best.ckpt', 'm1/training_config.yaml'].map((n) => path.join(secret, n));
}

/** The laptop's names of the two videos `proj/cams.slp` names (as SLEAP saved them there). */
const CAM_NAMES = [`${LAPTOP_VAST}/alice/vids/cam0.mp4`, `${LAPTOP_VAST}/alice/clips/cam1.mp4`];
/** The request's list of them, as a client makes it: each on the backend, used by one video of the labels file. */
const CAM_VIDEOS = ['vids/cam0.mp4', 'clips/cam1.mp4'].map((p, video) => ({ path: p, storage_backend: 'vast', user_subdir: 'alice', uses: [{ video, image: 0 }] }));

const canaryText = (name: string): string => `CANARY ${name}: the worker must never read this`;

/** The number of labelled frames of a labels file (what the stand-in's predictions report). */
async function labelledFrames(file: string): Promise<number> {
  await h5wasm.ready;
  const f = new h5wasm.File(file, 'r');
  try {
    return (f.get('frames') as InstanceType<typeof h5wasm.Dataset>).shape?.[0] ?? 0;
  } finally {
    f.close();
  }
}

/**
 * The job's real files in `proj` and `models/m1` (the model is a placeholder checkpoint beside
 * sleap-nn's config: no real checkpoint exists in the shared data), `proj/cams.slp` naming two
 * videos by the laptop's paths (`vids/cam0.mp4`, `clips/cam1.mp4`), and a canary of the same kind
 * under each name in `secret`: the labels files with their frames twice (rewritten with Debian's
 * h5py) and a marker after the HDF5 data, the single-instance config where the job's is the
 * centroid one, marked text for the videos and the checkpoint.
 */
async function jobFiles(alice: string, secret: string): Promise<void> {
  await copySleapFile('pkg', path.join(alice, 'proj', 'labels.slp'));
  await copyTrainingConfig(path.join(alice, 'proj', 'config.yaml'), 'centroidConfig');
  await copySleapFile('video', path.join(alice, 'proj', 'video.mp4'));
  await copyTrainingConfig(path.join(alice, 'models', 'm1', 'training_config.yaml'), 'centroidConfig');
  writeFileSync(path.join(alice, 'models', 'm1', 'best.ckpt'), 'real ckpt');
  mkdirSync(path.join(alice, 'out'), { recursive: true });

  // A labels file naming two external videos, one in a folder the racer flips, one it swaps itself.
  await labelsNaming(path.join(alice, 'proj', 'cams.slp'), CAM_NAMES);
  await copySleapFile('video', path.join(alice, 'vids', 'cam0.mp4'));
  await copySleapFile('video', path.join(alice, 'clips', 'cam1.mp4'));

  const twice = "import h5py, numpy, sys\nwith h5py.File(sys.argv[1], 'r+') as f:\n    rows = f['frames'][()]\n    del f['frames']\n    f.create_dataset('frames', data=numpy.concatenate([rows, rows]))";
  for (const [name, labels] of [['labels.slp', await copySleapFile('pkg', path.join(secret, 'labels.slp'))], ['cams.slp', await labelsNaming(path.join(secret, 'cams.slp'), CAM_NAMES)]] as const) {
    chmodSync(labels, 0o644); // copied from the read-only shared folder
    execFileSync('/usr/bin/python3', ['-c', twice, labels]);
    appendFileSync(labels, canaryText(name));
  }
  for (const config of ['config.yaml', 'm1/training_config.yaml']) {
    await copyTrainingConfig(path.join(secret, config), 'singleInstanceConfig');
    appendFileSync(path.join(secret, config), `# ${canaryText(config)}\n`);
  }
  for (const name of ['video.mp4', 'cam0.mp4', 'cam1.mp4', 'm1/best.ckpt']) writeFileSync(path.join(secret, name), canaryText(name));
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
    await jobFiles(alice, secret);
    const real: Record<'labels.slp' | 'cams.slp', { content: ReturnType<typeof labelsOnly>; frames: number }> = {
      'labels.slp': { content: labelsOnly(path.join(alice, 'proj', 'labels.slp')), frames: await labelledFrames(path.join(alice, 'proj', 'labels.slp')) },
      'cams.slp': { content: labelsOnly(path.join(alice, 'proj', 'cams.slp')), frames: await labelledFrames(path.join(alice, 'proj', 'cams.slp')) },
    };
    for (const [name, r] of Object.entries(real)) assert.notEqual(await labelledFrames(path.join(secret, name)), r.frames, `the canary ${name} would show in the predictions`);
    const useAtime = atimeWorks(records);
    for (const c of canaries(secret)) utimesSync(c, OLD, new Date());
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
      // The videos cams.slp names: a folder flipped, and a file swapped for a link itself, which
      // also rests on the link (sleap-nn opens a video seconds after the worker checked it).
      `${LAPTOP_VAST}/alice/clips`,
      `${LAPTOP_VAST}/alice/vids/cam0.mp4:../../..:linger`,
    ]);
    const racerLines = jsonLines(racer);
    let flips = 0;
    let racerDone: Record<string, unknown> | undefined;
    let racerLost = '';
    const reading = (async () => {
      for (;;) {
        const line = await racerLines.next().catch((err: unknown) => {
          racerLost = (err as Error).message;
          return undefined;
        });
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
    const requests: { job_id: string; kind: Kind; run: string }[] = [];
    for (let batch = 0; flips < MIN_FLIPS || replies.length < MIN_JOBS; batch++) {
      assert.ok(batch < 40, `after ${batch} batches only ${flips} flips`);
      const jobs = Array.from({ length: BATCH }, (_, i) => {
        const n = batch * BATCH + i;
        const kind = KINDS[n % KINDS.length] as Kind;
        const run = `r${n}`;
        requests.push({ job_id: `race-${n}`, kind, run });
        const videos = kind.endsWith('-videos') ? { videos: CAM_VIDEOS } : {};
        const labels = kind.endsWith('-videos') ? 'proj/cams.slp' : 'proj/labels.slp';
        return kind.startsWith('train')
          ? {
              type: 'JOB_REQUEST', job_id: `race-${n}`, job_type: 'train', transfer: 'shared',
              storage: { storage_backend: 'vast', user_subdir: 'alice' },
              spec: { labels, config_file: 'proj/config.yaml', output: 'out', run_name: run, max_epochs: 1, ...videos },
            }
          : {
              type: 'JOB_REQUEST', job_id: `race-${n}`, job_type: 'track', transfer: 'shared',
              storage: { storage_backend: 'vast', user_subdir: 'alice' },
              spec: { data: kind === 'track-video' ? 'proj/video.mp4' : labels, models: ['models/m1'], output: `out/${run}.slp`, ...videos },
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
    assert.ok(racerDone, `the racer stopped and put the real folders back: ${racerLost}`);
    assert.equal(racerDone.not_restored, undefined, JSON.stringify(racerDone));
    flips = Number(racerDone.flips);

    // Nothing read outside: the real path of every input the stand-in opened lies in the share or
    // in the job folder (and the canaries' access times, below).
    const figures: RaceFigures = {
      flips, jobs: replies.length, completed: 0, refused: 0, failed: 0, sleap_nn_name_moved: 0, escapes: 0,
      videos: { jobs: requests.filter((r) => r.kind.endsWith('-videos')).length, completed: 0 },
    };
    const runs = await readRecords(record);
    const jobsFolder = `${runai.home}/work/`;
    const escaped: string[] = [];
    for (const run of runs) {
      assert.ok(run.opened.length > 0, `a sleap-nn run recorded no input it opened: ${JSON.stringify(run)}`);
      // (A file the racer swaps is named `<name>.real` while its link is in place.)
      const has = (name: string): boolean => run.opened.some((p) => p.endsWith(`/${name}`) || p.endsWith(`/${name}.real`));
      if (run.argv[0] === 'train') assert.ok(has('config.yaml') && (has('labels.slp') || has('cams.slp')), JSON.stringify(run.opened));
      // A job on cams.slp: sleap-nn opened both videos (the worker pinned them; they resolve into the share).
      if (has('cams.slp')) assert.ok(has('cam0.mp4') && has('cam1.mp4'), JSON.stringify(run.opened));
      escaped.push(...run.opened.filter((p) => !p.startsWith(`${WORKER_VAST}/`) && !p.startsWith(jobsFolder)));
    }
    figures.escapes = escaped.length;
    assert.deepEqual(escaped, [], 'sleap-nn opened files outside the share and its job folder');

    // Every job ended clearly; a completed one has its outputs inside the share, made from the real inputs.
    for (const reply of replies) {
      const last = reply.messages.at(-1);
      const request = requests.find((r) => r.job_id === reply.job_id);
      assert.ok(last && request, JSON.stringify(reply));
      if (last.type === 'JOB_COMPLETE') {
        figures.completed++;
        const labels = request.kind.endsWith('-videos') ? 'cams.slp' : 'labels.slp';
        if (request.kind.endsWith('-videos')) figures.videos.completed++;
        if (request.kind.startsWith('train')) {
          const runDir = path.join(alice, 'out', request.run);
          assert.ok(!readFileSync(path.join(runDir, 'best.ckpt'), 'utf8').includes('CANARY'), reply.job_id);
          // sleap-nn's copy of the labels it trained on (the real labels' frames, instances and points;
          // the canary has twice the frames), its videos named as the laptop knows them, never the
          // job folder; and the config it composed (centroid, as the job's).
          const gt = path.join(runDir, 'labels_gt.train.0.slp');
          assert.deepEqual(labelsOnly(gt), real[labels].content, `${reply.job_id} trained on the real labels`);
          const gtNames = labelsContent(gt);
          assert.deepEqual(gtNames.videos, labels === 'cams.slp' ? CAM_NAMES.map((n) => [n]) : [[`../../proj/${labels}`]], reply.job_id);
          assert.equal(gtNames.provenance.filename, `proj/${labels}`, reply.job_id);
          const config = readFileSync(path.join(runDir, 'training_config.yaml'), 'utf8');
          assert.match(config, /^ {4}single_instance: null$/m, `${reply.job_id} read the real config`);
          assert.doesNotMatch(config, /^ {4}centroid: null$/m, `${reply.job_id} read the real config`);
        } else {
          // What the stand-in writes from the input it read: the labelled frames of the labels file
          // (the canary has twice as many), or its fixed count for a video. cams.slp is predicted
          // on the worker's copy of it (its videos renamed to the pinned ones) in the job folder.
          const predictions = await readPredictions(path.join(alice, 'out', `${request.run}.slp`));
          const video = request.kind === 'track-video';
          assert.equal(predictions.frames, video ? 40 : real[labels].frames, reply.job_id);
          // sleap-nn's provenance names the input by the request's own path, never the job folder.
          assert.equal(predictions.provenance.source_file, video ? 'proj/video.mp4' : `proj/${labels}`, reply.job_id);
          assert.equal(predictions.provenance.model_paths?.length, 1);
          // The videos table: the laptop's names cams.slp holds, or the input as seen from out/;
          // never the worker's job folder.
          const expected = labels === 'cams.slp' ? CAM_NAMES.map((n) => [n]) : [[video ? '../proj/video.mp4' : `../proj/${labels}`]];
          assert.deepEqual(predictions.videos, expected, reply.job_id);
        }
        continue;
      }
      assert.ok(last.type === 'JOB_REJECTED' || last.type === 'JOB_FAILED', `${reply.job_id}: ${JSON.stringify(reply.messages)}`);
      assert.ok((last.message ?? '').length > 20 && !(last.message ?? '').includes(WORKER_VAST) && !(last.message ?? '').includes(WORKER_SECRET), JSON.stringify(last));
      // sleap-nn's HDF5 resolves the pinned link's real name by name, and fails when the racer has
      // just moved it (h5py does the same): the client's own job fails, and nothing is read elsewhere.
      if (last.code === 'SLEAP_NN_FAILED' && (last.message ?? '').includes(HDF5_NAME_MOVED)) {
        figures.sleap_nn_name_moved++;
        continue;
      }
      assert.ok(last.code === 'PATH_VALIDATION' || last.code === 'PATH_CHANGED', `${reply.job_id} ended with a clear path error: ${JSON.stringify(last)}`);
      if (last.type === 'JOB_REJECTED') figures.refused++;
      else figures.failed++;
    }

    // Nothing created or changed outside; no canary's access time moved (when the file system keeps them).
    assert.deepEqual(tree(secret), secretBefore, 'nothing appeared outside the share');
    assert.deepEqual(stamp(), stampBefore, 'no canary was read or changed');
    assert.ok(figures.flips >= MIN_FLIPS, `only ${figures.flips} flips`);
    assert.ok(figures.completed > 0, `no job completed: ${JSON.stringify(figures)}`);
    t.diagnostic(`race figures: ${JSON.stringify({ ...figures, sleap_nn_runs: runs.length, atime_checked: useAtime })}`);
  });
});
