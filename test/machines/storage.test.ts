/**
 * Storage backends across simulated machines: client and worker are separate processes in their
 * own network namespaces (joined by veth, so WebRTC crosses a real interface) and their own mount
 * namespaces, where ONE lab share is bind-mounted at /Volumes/talmo on the laptop and at
 * /home/jovyan/vast on the worker (a Run:AI container), its host path hidden from both. The
 * signaling server runs on a host of its own. Needs root (docs/testing.md): skipped with the
 * reason elsewhere, a failure instead when SLEAP_RTC_REQUIRE_MACHINES=1 (CI).
 */
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { readPredictions, readRecords, type FakeRecord } from '../fixtures/fake-sleap-nn.js';
import { cleanupStaleMachines, createNetwork, exited, jsonLines, machine, machinesSkipReason, type SimNetwork } from '../helpers/machines.js';
import { runTool } from '../helpers/machines-exec.js';
import { deleteNamespace } from '../helpers/machines-network.js';
import { createRoom, hostDir, lastJson, runClient, startServer, startWorker, tree, writeConfig } from './storage-env.js';
import { copySleapFile, copyTrainingConfig } from '../helpers/sleap-data.js';
import { CLI_ENTRY } from '../helpers/cli.js';
import { labelsContent, labelsOnly } from '../helpers/slp-content.js';

const LAPTOP_VAST = '/Volumes/talmo';
const WORKER_VAST = '/home/jovyan/vast';
const LAPTOP_SCRATCH = '/Volumes/scratch';
const WORKER_SCRATCH = '/scratch/jovyan';
/** A folder only the worker has, beside its mount of the share (what an attacker would want). */
const WORKER_SECRET = '/home/jovyan/secret';

const skip = await machinesSkipReason();
const simTest = (name: string, fn: (t: TestContext) => Promise<void>): void => {
  test(name, { skip, timeout: 180_000 }, fn);
};

async function network(t: TestContext, hosts: string[]): Promise<SimNetwork> {
  const net = await createNetwork(hosts);
  t.after(() => net.destroy());
  return net;
}

/**
 * The lab share on the host: alice's project (real SLEAP files: labels with their video beside
 * them, a package file, sleap-nn's sample config, a clip) and a model.
 */
async function labShare(t: TestContext): Promise<string> {
  const share = hostDir(t, 'vast');
  mkdirSync(path.join(share, 'alice', 'models', 'm1'), { recursive: true });
  // Package files (frames embedded): a raw request without a videos list (the hostile cases below)
  // trains too. External videos across machines: test/machines/videos.test.ts.
  await copySleapFile('pkg', path.join(share, 'alice', 'proj', 'labels.slp'));
  await copySleapFile('pkg', path.join(share, 'alice', 'proj', 'labels.pkg.slp'));
  await copyTrainingConfig(path.join(share, 'alice', 'proj', 'config.yaml'));
  await copySleapFile('video', path.join(share, 'alice', 'proj', 'video.mp4'));
  await copyTrainingConfig(path.join(share, 'alice', 'models', 'm1', 'training_config.yaml'));
  writeFileSync(path.join(share, 'alice', 'models', 'm1', 'best.ckpt'), 'ckpt m1');
  return share;
}

function laptopConfig(m: Parameters<typeof writeConfig>[0], extra = ''): string {
  return writeConfig(m, 'client.toml', `[storage.vast]\nbase_path = "${LAPTOP_VAST}"\ntype = "nfs"\nuser_subdir = "alice"\n${extra}`);
}

const VAST_ON_WORKER = `[storage.vast]\nbase_path = "${WORKER_VAST}"\ntype = "nfs"\n`;

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** What sleap-nn writes in a run folder with checkpoints on (the stand-in writes the same names). */
const RUN_FOLDER_FILES = [
  'best.ckpt', 'initial_config.yaml', 'labels_gt.train.0.slp', 'labels_gt.val.0.slp', 'labels_pr.train.0.slp', 'labels_pr.val.0.slp',
  'metrics.train.0.npz', 'metrics.val.0.npz', 'training_config.yaml', 'training_log.csv',
];

function onlyRecord(records: FakeRecord[]): FakeRecord {
  assert.equal(records.length, 1, `sleap-nn ran ${records.length} times: ${JSON.stringify(records)}`);
  return records[0] as FakeRecord;
}

describe('storage backends across simulated machines', () => {
  before(async () => {
    if (skip !== false) return;
    await cleanupStaleMachines();
  });

  simTest('a worker with two backends serves a job on each, resolving every path under its own mounts', async (t) => {
    const share = await labShare(t);
    const scratch = hostDir(t, 'scratch');
    mkdirSync(path.join(scratch, 'alice', 'clips'), { recursive: true });
    mkdirSync(path.join(scratch, 'alice', 'models', 'm2'), { recursive: true });
    await copySleapFile('video', path.join(scratch, 'alice', 'clips', 'c1.mp4'));
    writeFileSync(path.join(scratch, 'alice', 'models', 'm2', 'best.ckpt'), 'ckpt m2');
    await copyTrainingConfig(path.join(scratch, 'alice', 'models', 'm2', 'training_config.yaml'));
    const records = hostDir(t, 'records');
    const record = path.join(records, 'runai.jsonl');
    const hide = { hide: [share, scratch] };

    const net = await network(t, ['server', 'laptop', 'runai']);
    const server = machine(net, 'server', [], hide);
    const laptop = machine(net, 'laptop', [{ source: share, target: LAPTOP_VAST }, { source: scratch, target: LAPTOP_SCRATCH }], hide);
    const runai = machine(net, 'runai', [{ source: share, target: WORKER_VAST }, { source: scratch, target: WORKER_SCRATCH }], hide);

    const room = await createRoom(laptop, await startServer(t, server));
    await startWorker(t, runai, room, {
      name: 'runai',
      storageToml: `${VAST_ON_WORKER}\n[storage.scratch]\nbase_path = "${WORKER_SCRATCH}"\ntype = "local"\n`,
      record,
    });
    const config = laptopConfig(laptop, `\n[storage.scratch]\nbase_path = "${LAPTOP_SCRATCH}"\n`);

    // The room knows the worker by its backends.
    const listed = await laptop.run(process.execPath, [CLI_ENTRY, 'workers', ...room.flags, '--json']);
    assert.equal(listed.code, 0, listed.stderr);
    const rows = JSON.parse(listed.stdout) as { name: string; storage_backends: string[] }[];
    assert.deepEqual(rows.map((r) => [r.name, [...r.storage_backends].sort()]), [['runai', ['scratch', 'vast']]]);

    // 1. train on vast: the laptop names its files under /Volumes/talmo, the worker reads /home/jovyan/vast.
    const train = await runClient(laptop, room, config, [
      'train', '--labels', `${LAPTOP_VAST}/alice/proj/labels.slp`, '--config-file', `${LAPTOP_VAST}/alice/proj/config.yaml`,
      '--run-name', 'r1', '--max-epochs', '2', '--json',
    ]);
    assert.equal(train.code, 0, train.stderr);
    const trained = lastJson(train);
    assert.deepEqual(
      [trained.status, trained.worker, trained.transfer, trained.storage_backend, trained.user_subdir, trained.outputs],
      ['completed', 'runai', 'shared', 'vast', 'alice', [`${LAPTOP_VAST}/alice/proj/models/r1`]],
    );
    const trainRun = onlyRecord(await readRecords(record));
    // sleap-nn is handed names in the worker's private job folder, each pinned to the file the worker
    // opened under its own mount (docs/storage-backends.md#security-what-a-peer-can-and-cannot-reach).
    const job = `${escapeRe(runai.home)}/work/job-[^/']+`;
    assert.ok(trainRun.argv.some((a) => new RegExp(`^\\+\\+data_config\\.train_labels_path=\\['${job}/inputs/\\d+/labels\\.slp'\\]$`).test(a)), trainRun.argv.join(' '));
    assert.match(trainRun.argv[trainRun.argv.indexOf('--config-dir') + 1] ?? '', new RegExp(`^${job}/inputs/\\d+$`));
    assert.ok(trainRun.argv.some((a) => new RegExp(`^\\+\\+trainer_config\\.ckpt_dir='${job}/out'$`).test(a)), trainRun.argv.join(' '));
    // A package labels file (frames embedded): no video to map, and never a --prefix-map, which would
    // hand sleap-nn names on the share (labels naming laptop paths: test/machines/videos.test.ts).
    assert.ok(!trainRun.argv.includes('--prefix-map') && !trainRun.argv.includes('--video-path-map'), trainRun.argv.join(' '));
    assert.ok(!trainRun.argv.some((a) => a.includes(`${WORKER_VAST}/`)), 'no name on the share reaches sleap-nn');
    assert.ok(!trainRun.argv.some((a) => a.includes('/Volumes/')), 'no laptop path reaches sleap-nn');
    assert.ok(!trainRun.argv.some((a) => a.includes(share)), 'no host path reaches sleap-nn');
    // Written once, in the share; the laptop reads it through its own mount.
    // sleap-nn saves the labels it trained on into the run folder: the share's labels (their frames,
    // instances and points), the package named as the laptop knows it (relative to the run folder)
    // and where sleap-io loaded it in the job's terms, never the worker's job folder.
    const gt = path.join(share, 'alice/proj/models/r1/labels_gt.train.0.slp');
    assert.deepEqual(labelsOnly(gt), labelsOnly(path.join(share, 'alice/proj/labels.slp')));
    assert.deepEqual(labelsContent(gt).videos, [['../../labels.slp']]);
    assert.deepEqual(labelsContent(gt).provenance, { filename: 'proj/labels.slp' });
    assert.match(readFileSync(path.join(share, 'alice/proj/models/r1/best.ckpt'), 'utf8'), /^FAKE-CKPT run=r1 epochs=2 best_epoch=2\n$/);
    const seen = await laptop.run('cat', [`${LAPTOP_VAST}/alice/proj/models/r1/best.ckpt`]);
    assert.equal(seen.code, 0, seen.stderr);
    assert.match(seen.stdout, /FAKE-CKPT run=r1/);

    // 2. track on scratch: a second backend of the same worker, another pair of mount points.
    const track = await runClient(laptop, room, config, [
      'track', '--data', `${LAPTOP_SCRATCH}/alice/clips/c1.mp4`, '--model', `${LAPTOP_SCRATCH}/alice/models/m2`, '--json',
    ]);
    assert.equal(track.code, 0, track.stderr);
    const tracked = lastJson(track);
    assert.deepEqual(
      [tracked.transfer, tracked.storage_backend, tracked.user_subdir, tracked.outputs],
      ['shared', 'scratch', 'alice', [`${LAPTOP_SCRATCH}/alice/clips/c1.mp4.predictions.slp`]],
    );
    const trackRun = (await readRecords(record))[1];
    assert.ok(trackRun);
    assert.deepEqual(trackRun.argv.map((a) => a.replace(new RegExp(`^${job}/`), '<job>/')), [
      'predict',
      '--data_path', '<job>/inputs/0/c1.mp4',
      '--model_paths', '<job>/inputs/1/m2',
      '--output_path', '<job>/out/c1.mp4.predictions.slp',
    ]);
    const predictions = await readPredictions(path.join(scratch, 'alice/clips/c1.mp4.predictions.slp'));
    assert.equal(predictions.provenance.source_file, 'clips/c1.mp4', 'the provenance names no worker path');
    // The video by its name next to the predictions: it opens on the laptop and on the worker alike.
    assert.deepEqual(predictions.videos, [['c1.mp4']]);
  });

  simTest('a worker machine without the share gets the files over WebRTC across the veth; results land on the laptop\'s mount', async (t) => {
    const share = await labShare(t);
    const records = hostDir(t, 'records');
    const record = path.join(records, 'workstation.jsonl');
    const hide = { hide: [share] };

    const net = await network(t, ['server', 'laptop', 'workstation']);
    const server = machine(net, 'server', [], hide);
    const laptop = machine(net, 'laptop', [{ source: share, target: LAPTOP_VAST }], hide);
    const workstation = machine(net, 'workstation', [], hide);
    // The files can reach the workstation only over the network: it has no path to the share.
    for (const p of [`${LAPTOP_VAST}/alice/proj/labels.pkg.slp`, `${WORKER_VAST}/alice/proj/labels.pkg.slp`, path.join(share, 'alice/proj/labels.pkg.slp')]) {
      assert.notEqual((await workstation.run('test', ['-e', p])).code, 0, `the workstation must not see ${p}`);
    }

    const room = await createRoom(laptop, await startServer(t, server));
    await startWorker(t, workstation, room, { name: 'workstation', storageToml: '', record });
    const config = laptopConfig(laptop);

    const train = await runClient(laptop, room, config, [
      // A package file: its frames travel inside it (a labels file's external videos are not sent yet).
      'train', '--labels', `${LAPTOP_VAST}/alice/proj/labels.pkg.slp`, '--config-file', `${LAPTOP_VAST}/alice/proj/config.yaml`,
      '--run-name', 'fb', '--max-epochs', '3', '--json',
    ]);
    assert.equal(train.code, 0, train.stderr);
    const trained = lastJson(train);
    assert.deepEqual(
      [trained.status, trained.worker, trained.transfer, trained.storage_backend, trained.outputs],
      ['completed', 'workstation', 'webrtc', null, [`${LAPTOP_VAST}/alice/proj/models/fb`]],
    );
    assert.match(String(trained.fallback_reason), /no worker in the room has backend vast/);
    assert.match(train.stderr, /transfer: webrtc \(reason: no worker in the room has backend vast/);
    // The model folder came back over the data channel into the share, whole.
    const modelDir = path.join(share, 'alice/proj/models/fb');
    assert.deepEqual(tree(modelDir), RUN_FOLDER_FILES);
    assert.equal(readFileSync(path.join(modelDir, 'best.ckpt'), 'utf8'), 'FAKE-CKPT run=fb epochs=3 best_epoch=3\n');

    const trainRun = onlyRecord(await readRecords(record));
    // sleap-nn read copies in the worker's own staging folder.
    const labelsArg = trainRun.argv.find((a) => a.startsWith('++data_config.train_labels_path='));
    assert.match(labelsArg ?? '', new RegExp(`^\\+\\+data_config\\.train_labels_path=\\['${workstation.home}/work/[^']+/labels\\.pkg\\.slp'\\]$`));
    assert.ok(!trainRun.argv.includes('--prefix-map'));
    assert.ok(!trainRun.argv.some((a) => a.includes('/Volumes/') || a.includes(WORKER_VAST)), trainRun.argv.join(' '));

    const track = await runClient(laptop, room, config, [
      'track', '--data', `${LAPTOP_VAST}/alice/proj/video.mp4`, '--model', `${LAPTOP_VAST}/alice/models/m1`, '--json',
    ]);
    assert.equal(track.code, 0, track.stderr);
    const tracked = lastJson(track);
    assert.deepEqual([tracked.transfer, tracked.outputs], ['webrtc', [`${LAPTOP_VAST}/alice/proj/video.mp4.predictions.slp`]]);
    const predictions = await readPredictions(path.join(share, 'alice/proj/video.mp4.predictions.slp'));
    assert.ok(!JSON.stringify(predictions.provenance).includes(workstation.home), JSON.stringify(predictions.provenance));
    assert.equal(predictions.provenance.model_paths?.length, 1);
    assert.deepEqual(predictions.videos, [['video.mp4']], 'no staging path of the worker in the videos table');
  });

  simTest('traversal and symlink escapes from another machine are refused; nothing is written outside the base', async (t) => {
    const share = await labShare(t);
    const secret = hostDir(t, 'secret');
    writeFileSync(path.join(secret, 'keys.txt'), 'worker-only secret');
    mkdirSync(path.join(secret, 'jobs'));
    // Links planted in the share by someone with write access to it. They point at the worker's own
    // folder beside its mount; on the laptop they dangle.
    symlinkSync(WORKER_SECRET, path.join(share, 'alice', 'escape'));
    symlinkSync('../../../secret/keys.txt', path.join(share, 'alice', 'proj', 'evil.slp'));
    symlinkSync('../secret', path.join(share, 'bob-link'));
    const records = hostDir(t, 'records');
    const record = path.join(records, 'runai.jsonl');
    const hide = { hide: [share, secret] };

    const net = await network(t, ['server', 'laptop', 'runai']);
    const server = machine(net, 'server', [], hide);
    const laptop = machine(net, 'laptop', [{ source: share, target: LAPTOP_VAST }], hide);
    const runai = machine(net, 'runai', [{ source: share, target: WORKER_VAST }, { source: secret, target: WORKER_SECRET }], hide);
    const room = await createRoom(laptop, await startServer(t, server));
    const worker = await startWorker(t, runai, room, { name: 'runai', storageToml: VAST_ON_WORKER, record });
    const before = { share: tree(share), secret: tree(secret) };

    const train = (id: string, user_subdir: string, spec: Partial<{ labels: string; config_file: string; output: string }> = {}): object => ({
      type: 'JOB_REQUEST',
      job_id: id,
      job_type: 'train',
      transfer: 'shared',
      storage: { storage_backend: 'vast', user_subdir, client_base_path: LAPTOP_VAST },
      spec: { labels: 'proj/labels.slp', config_file: 'proj/config.yaml', output: 'proj/models', run_name: 'r', ...spec },
    });
    const attacks: [object, string, string][] = [
      [train('u1', '..'), 'user_subdir', 'outside_base'],
      [train('u2', '../secret'), 'user_subdir', 'outside_base'],
      [train('u3', 'alice/../../secret'), 'user_subdir', 'outside_base'],
      [train('u4', WORKER_SECRET), 'user_subdir', 'outside_base'],
      [train('u5', 'bob-link'), 'user_subdir', 'outside_base'],
      [train('u6', '..\\secret'), 'user_subdir', 'invalid'],
      [train('p1', 'alice', { labels: '../../secret/keys.txt' }), 'labels', 'outside_base'],
      [train('p2', 'alice', { labels: `${WORKER_SECRET}/keys.txt` }), 'labels', 'outside_base'],
      [train('p3', 'alice', { labels: 'escape/keys.txt' }), 'labels', 'outside_base'],
      [train('p4', 'alice', { labels: 'proj/evil.slp' }), 'labels', 'outside_base'],
      [train('p5', 'alice', { config_file: 'proj/../../../secret/keys.txt' }), 'config_file', 'outside_base'],
      [train('p6', 'alice', { output: '../../secret/jobs' }), 'output', 'outside_base'],
      [train('p7', 'alice', { output: 'escape/jobs' }), 'output', 'outside_base'],
      [train('p8', 'alice', { output: `${WORKER_SECRET}/jobs` }), 'output', 'outside_base'],
      [
        { type: 'JOB_REQUEST', job_id: 'k1', job_type: 'track', transfer: 'shared', storage: { storage_backend: 'vast', user_subdir: 'alice' }, spec: { data: 'proj/video.mp4', models: ['escape'], output: 'escape/p.slp' } },
        'models.0',
        'outside_base',
      ],
      // Videos inside the labels file: a reference that climbs out, and one that is absolute.
      [
        { type: 'JOB_REQUEST', job_id: 'v1', job_type: 'train', transfer: 'shared', storage: { storage_backend: 'vast', user_subdir: 'alice' }, spec: { labels: 'proj/labels.slp', config_file: 'proj/config.yaml', output: 'proj/models', run_name: 'rv1', videos: [{ path: '../../secret/keys.txt', storage_backend: 'vast', user_subdir: 'alice', uses: [{ video: 0, image: 0 }] }] } },
        'videos.0',
        'outside_base',
      ],
      [
        { type: 'JOB_REQUEST', job_id: 'v2', job_type: 'track', transfer: 'shared', storage: { storage_backend: 'vast', user_subdir: 'alice' }, spec: { data: 'proj/labels.slp', models: ['models/m1'], output: 'proj/p.slp', videos: [{ path: `${WORKER_SECRET}/keys.txt`, storage_backend: 'vast', user_subdir: 'alice', uses: [{ video: 0, image: 0 }] }] } },
        'videos.0',
        'outside_base',
      ],
      [
        { type: 'JOB_REQUEST', job_id: 'w1', job_type: 'train', transfer: 'webrtc', spec: { labels: `../../../..${WORKER_SECRET}/keys.txt`, config_file: 'c.yaml', output: 'o', run_name: 'r' } },
        'labels',
        'outside_base',
      ],
      [
        { type: 'JOB_REQUEST', job_id: 'w2', job_type: 'train', transfer: 'webrtc', spec: { labels: 'l.slp', config_file: 'c.yaml', output: `${WORKER_SECRET}/jobs`, run_name: 'r' } },
        'output',
        'outside_base',
      ],
    ];
    const honest = train('honest', 'alice', { output: 'proj/models' });
    const garbage: [string, string][] = [
      ['{', 'INVALID_JSON'],
      ['{"type":"JOB_REQUEST"}', 'INVALID_MESSAGE'],
      [JSON.stringify({ type: 'EXEC', cmd: 'cat /home/jovyan/secret/keys.txt' }), 'UNKNOWN_TYPE'],
    ];

    const client = laptop.spawnNode('test/machines/hostile-client.ts', [
      room.url, room.roomId, room.token, 'runai',
      JSON.stringify([...attacks.map(([r]) => r), honest]),
      JSON.stringify(garbage.map(([g]) => g)),
    ]);
    const replies = jsonLines(client);
    for (const [request, field, rule] of attacks) {
      const id = (request as { job_id: string }).job_id;
      const reply = (await replies.next()) as { job_id: string; messages: { type: string; code?: string; field?: string; rule?: string }[] };
      assert.equal(reply.job_id, id);
      const rejected = reply.messages.find((m) => m.type === 'JOB_REJECTED');
      assert.equal(rejected?.code, 'PATH_VALIDATION', `${id}: ${JSON.stringify(reply.messages)}`);
      assert.ok(
        reply.messages.some((m) => m.type === 'PATH_ERROR' && m.field === field && m.rule === rule),
        `${id}: expected PATH_ERROR ${field}/${rule}, got ${JSON.stringify(reply.messages)}`,
      );
      assert.ok(!reply.messages.some((m) => m.type === 'JOB_ACCEPTED'), `${id} was accepted`);
      // Paths the attacker sent may be quoted back; the worker's own paths may not.
      for (const own of [WORKER_VAST, runai.home, share, secret]) {
        assert.ok(!JSON.stringify(reply.messages).includes(own), `${id}: the worker's path ${own} leaked: ${JSON.stringify(reply.messages)}`);
      }
    }
    const honestReply = (await replies.next()) as { messages: { type: string }[] };
    assert.deepEqual(honestReply.messages.at(-1)?.type, 'JOB_COMPLETE', JSON.stringify(honestReply.messages));
    for (const [frame, code] of garbage) {
      const reply = (await replies.next()) as { garbage: string; reply: { code: string } };
      assert.deepEqual([reply.garbage, reply.reply.code], [frame, code]);
    }
    assert.deepEqual(await replies.next(), { done: true });
    assert.deepEqual(await exited(client), { code: 0, signal: null });

    // The real client refuses a user folder that climbs out, before anything is sent.
    const config = laptopConfig(laptop);
    for (const subdir of ['../..', '..', `alice/../..`]) {
      const r = await runClient(laptop, room, config, [
        'train', '--labels', `${LAPTOP_VAST}/alice/proj/labels.slp`, '--config-file', `${LAPTOP_VAST}/alice/proj/config.yaml`,
        '--user-subdir', subdir, '--json',
      ]);
      assert.equal(r.code, 2, `--user-subdir ${subdir}:\n${r.stderr}`);
      assert.match(r.stderr, /error \[USAGE\]: --user-subdir ".*": path '.*' is refused: it contains a "\.\." segment/, r.stderr);
    }

    // Only the honest job ran, with worker-side paths; nothing appeared or changed outside the base.
    const ran = onlyRecord(await readRecords(record));
    assert.ok(ran.argv.some((a) => /^\+\+data_config\.train_labels_path=\['[^']*\/work\/job-[^']*\/inputs\/\d+\/labels\.slp'\]$/.test(a)), ran.argv.join(' '));
    assert.deepEqual(tree(secret), before.secret, 'nothing was written in the worker-only folder');
    assert.equal(readFileSync(path.join(secret, 'keys.txt'), 'utf8'), 'worker-only secret');
    assert.deepEqual(
      tree(share).filter((p) => !before.share.includes(p)),
      ['alice/proj/models', 'alice/proj/models/r', ...RUN_FOLDER_FILES.map((f) => `alice/proj/models/r/${f}`)].sort(),
      'only the honest job wrote to the share',
    );
    assert.equal(worker.child.exitCode, null, 'the worker is still running');
    assert.match(worker.stderr(), /refused job u1/);
  });
});

after(async () => {
  // Anything a failed test of this process did not destroy.
  if (skip !== false) return;
  const list = await runTool('ip', ['netns', 'list']);
  for (const name of list.stdout.split('\n').map((l) => l.split(' ')[0] ?? '')) {
    if (name.startsWith(`srtcsim-${String(process.pid)}-`)) await deleteNamespace(name);
  }
});
