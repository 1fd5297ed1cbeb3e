/**
 * Videos inside a labels file across simulated machines (network and mount namespaces, as in
 * storage.test.ts): one lab share is /Volumes/talmo on the laptop and /home/jovyan/vast on the
 * worker, and the real labels file names its videos by the laptop's paths. Needs root
 * (docs/testing.md): skipped with the reason elsewhere, a failure when SLEAP_RTC_REQUIRE_MACHINES=1.
 */
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { readRecords } from '../fixtures/fake-sleap-nn.js';
import { cleanupStaleMachines, createNetwork, machine, machinesSkipReason, type SimMachine, type SimNetwork } from '../helpers/machines.js';
import { runTool } from '../helpers/machines-exec.js';
import { deleteNamespace } from '../helpers/machines-network.js';
import { copySleapFile, copyTrainingConfig } from '../helpers/sleap-data.js';
import { labelsNaming } from '../helpers/slp-files.js';
import { createRoom, hostDir, lastJson, runClient, startServer, startWorker, tree, writeConfig } from './storage-env.js';

const LAPTOP_VAST = '/Volumes/talmo';
const WORKER_VAST = '/home/jovyan/vast';

const skip = await machinesSkipReason();
const simTest = (name: string, fn: (t: TestContext) => Promise<void>): void => {
  test(name, { skip, timeout: 600_000 }, fn);
};

async function network(t: TestContext, hosts: string[]): Promise<SimNetwork> {
  const net = await createNetwork(hosts);
  t.after(() => net.destroy());
  return net;
}

/** The share: alice/proj/{cams.slp, config.yaml}, alice/videos/{cam0,cam1}.mp4, alice/models/m1. */
async function labShare(t: TestContext): Promise<string> {
  const share = hostDir(t, 'vast');
  await copySleapFile('video', path.join(share, 'alice/videos/cam0.mp4'));
  await copySleapFile('video', path.join(share, 'alice/videos/cam1.mp4'));
  await copyTrainingConfig(path.join(share, 'alice/proj/config.yaml'));
  await copyTrainingConfig(path.join(share, 'alice/models/m1/training_config.yaml'));
  writeFileSync(path.join(share, 'alice/models/m1/best.ckpt'), 'ckpt m1');
  // Saved on the laptop: the videos are named by the laptop's paths (cam0 twice).
  await labelsNaming(path.join(share, 'alice/proj/cams.slp'), [`${LAPTOP_VAST}/alice/videos/cam0.mp4`, `${LAPTOP_VAST}/alice/videos/cam1.mp4`, `${LAPTOP_VAST}/alice/videos/cam0.mp4`]);
  return share;
}

function laptopConfig(m: SimMachine): string {
  return writeConfig(m, 'client.toml', `[storage.vast]\nbase_path = "${LAPTOP_VAST}"\ntype = "nfs"\nuser_subdir = "alice"\n`);
}

const labelsArgs = ['--labels', `${LAPTOP_VAST}/alice/proj/cams.slp`, '--config-file', `${LAPTOP_VAST}/alice/proj/config.yaml`, '--max-epochs', '1', '--json'];

describe('videos inside a labels file across simulated machines', () => {
  before(async () => {
    if (skip !== false) return;
    await cleanupStaleMachines();
  });

  simTest('shared training and inference across /Volumes/talmo and /home/jovyan/vast, with the videos at laptop paths', async (t) => {
    const share = await labShare(t);
    const record = path.join(hostDir(t, 'records'), 'runai.jsonl');
    const hide = { hide: [share] };
    const net = await network(t, ['server', 'laptop', 'runai']);
    const laptop = machine(net, 'laptop', [{ source: share, target: LAPTOP_VAST }], hide);
    const runai = machine(net, 'runai', [{ source: share, target: WORKER_VAST }], hide);
    const room = await createRoom(laptop, await startServer(t, machine(net, 'server', [], hide)));
    await startWorker(t, runai, room, { name: 'runai', storageToml: `[storage.vast]\nbase_path = "${WORKER_VAST}"\n`, record });
    const config = laptopConfig(laptop);

    const train = await runClient(laptop, room, config, ['train', ...labelsArgs, '--run-name', 'cams']);
    assert.equal(train.code, 0, train.stderr);
    assert.deepEqual([lastJson(train).status, lastJson(train).transfer], ['completed', 'shared']);
    const [run] = await readRecords(record);
    assert.ok(run);
    // One --video-path-map per laptop name, to the file the worker pinned in its job folder; never
    // a --prefix-map (it would hand sleap-nn names on the share).
    assert.ok(!run.argv.includes('--prefix-map'), run.argv.join(' '));
    const maps = run.argv.flatMap((a, i) => (a === '--video-path-map' ? [[run.argv[i + 1], run.argv[i + 2]]] : []));
    assert.ok(maps.length > 0 && maps.every(([from]) => String(from).startsWith(`${LAPTOP_VAST}/`)), run.argv.join(' '));
    for (const [, to] of maps) assert.match(String(to), new RegExp(`^${runai.home}/work/job-[^/]+/inputs/\\d+/[^/]+$`));
    assert.ok(!run.argv.some((a) => a.includes(`${WORKER_VAST}/`)), 'no name on the share reaches sleap-nn');

    const before = tree(share);
    const track = await runClient(laptop, room, config, ['track', '--data', `${LAPTOP_VAST}/alice/proj/cams.slp`, '--model', `${LAPTOP_VAST}/alice/models/m1`, '--json']);
    assert.equal(track.code, 0, track.stderr);
    assert.deepEqual(lastJson(track).outputs, [`${LAPTOP_VAST}/alice/proj/cams.slp.predictions.slp`]);
    const predict = (await readRecords(record))[1];
    assert.ok(predict);
    const data = predict.argv[predict.argv.indexOf('--data_path') + 1] as string;
    assert.match(data, new RegExp(`^${runai.home}/work/job-[^/]+/labels-[^/]+/cams\\.slp$`), 'inference ran on the worker\'s rewritten copy');
    assert.deepEqual(tree(share).filter((p) => !before.includes(p)), ['alice/proj/cams.slp.predictions.slp'], 'only the predictions were written to the share');
  });

  simTest('a video missing on the worker\'s mount is refused before sleap-nn starts; a worker without the share gets both videos sent', async (t) => {
    const share = await labShare(t);
    // The worker's copy of the share has not received cam1 yet.
    const stale = hostDir(t, 'stale');
    cpSync(path.join(share, 'alice'), path.join(stale, 'alice'), { recursive: true });
    rmSync(path.join(stale, 'alice/videos/cam1.mp4'));
    const records = hostDir(t, 'records');
    const hide = { hide: [share, stale] };
    const net = await network(t, ['server', 'laptop', 'stale', 'workstation']);
    const laptop = machine(net, 'laptop', [{ source: share, target: LAPTOP_VAST }], hide);
    const staleWorker = machine(net, 'stale', [{ source: stale, target: WORKER_VAST }], hide);
    const workstation = machine(net, 'workstation', [], hide);
    const room = await createRoom(laptop, await startServer(t, machine(net, 'server', [], hide)));
    await startWorker(t, staleWorker, room, { name: 'stale', storageToml: `[storage.vast]\nbase_path = "${WORKER_VAST}"\n`, record: path.join(records, 'stale.jsonl') });
    const config = laptopConfig(laptop);

    const refused = await runClient(laptop, room, config, ['train', ...labelsArgs, '--run-name', 'r1', '--no-fallback', '--worker', 'stale']);
    assert.equal(refused.code, 1, refused.stderr);
    const error = lastJson(refused).error as { code: string; message: string };
    assert.equal(error.code, 'PATH_VALIDATION');
    assert.ok(error.message.includes(`Videos refused: ${LAPTOP_VAST}/alice/videos/cam1.mp4 (missing; video 1 of the labels file)`), error.message);
    assert.ok(!refused.stderr.includes(WORKER_VAST) && !refused.stdout.includes(WORKER_VAST), 'no worker path is shown');
    assert.deepEqual(await readRecords(path.join(records, 'stale.jsonl')), [], 'sleap-nn never started');

    // A worker with no share: the labels file and its two videos travel, each once.
    await startWorker(t, workstation, room, { name: 'workstation', storageToml: '', record: path.join(records, 'ws.jsonl') });
    const sent = await runClient(laptop, room, config, ['train', ...labelsArgs, '--run-name', 'r2', '--worker', 'workstation']);
    assert.equal(sent.code, 0, sent.stderr);
    const result = lastJson(sent);
    assert.equal(result.transfer, 'webrtc');
    assert.deepEqual([...(result.files_sent as string[])].sort(), [
      `${LAPTOP_VAST}/alice/proj/cams.slp`, `${LAPTOP_VAST}/alice/proj/config.yaml`, `${LAPTOP_VAST}/alice/videos/cam0.mp4`, `${LAPTOP_VAST}/alice/videos/cam1.mp4`,
    ]);
    const [run] = await readRecords(path.join(records, 'ws.jsonl'));
    assert.ok(run);
    const maps = run.argv.flatMap((a, i) => (a === '--video-path-map' ? [[run.argv[i + 1], run.argv[i + 2]]] : []));
    assert.deepEqual(maps.map(([from]) => from), [`${LAPTOP_VAST}/alice/videos/cam0.mp4`, `${LAPTOP_VAST}/alice/videos/cam1.mp4`]);
    for (const [, to] of maps) assert.ok(String(to).startsWith(`${workstation.home}/work/`), String(to));
  });
});

after(async () => {
  if (skip !== false) return;
  const list = await runTool('ip', ['netns', 'list']);
  for (const name of list.stdout.split('\n').map((l) => l.split(' ')[0] ?? '')) {
    if (name.startsWith(`srtcsim-${String(process.pid)}-`)) await deleteNamespace(name);
  }
});
