/**
 * The worker's cache across simulated machines: the laptop and a workstation without the lab's
 * storage are separate processes in their own network and mount namespaces (joined by veth, so
 * WebRTC crosses a real interface). A fallback job's files cross once: the same job sent twice
 * sends nothing the second time. Needs root (docs/testing.md), as the other machine tests.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { cleanupStaleMachines, createNetwork, machine, machinesSkipReason } from '../helpers/machines.js';
import { createRoom, hostDir, lastJson, runClient, startServer, startWorker, writeConfig } from './storage-env.js';
import { copySleapFile, copyTrainingConfig } from '../helpers/sleap-data.js';

const LAPTOP_VAST = '/Volumes/talmo';
const skip = await machinesSkipReason();

test('a fallback job sent twice to a worker with a cache sends nothing the second time', { skip, timeout: 300_000 }, async (t: TestContext) => {
  await cleanupStaleMachines();
  const share = hostDir(t, 'vast');
  mkdirSync(path.join(share, 'alice', 'proj'), { recursive: true });
  await copySleapFile('pkg', path.join(share, 'alice', 'proj', 'labels.pkg.slp'));
  await copyTrainingConfig(path.join(share, 'alice', 'proj', 'config.yaml'));
  const net = await createNetwork(['server', 'laptop', 'workstation']);
  t.after(() => net.destroy());
  const hide = { hide: [share] };
  const server = machine(net, 'server', [], hide);
  const laptop = machine(net, 'laptop', [{ source: share, target: LAPTOP_VAST }], hide);
  const workstation = machine(net, 'workstation', [], hide);
  const room = await createRoom(laptop, await startServer(t, server));
  const cache = path.join(workstation.home, 'cache');
  const worker = await startWorker(t, workstation, room, { name: 'workstation', storageToml: '', record: path.join(workstation.home, 'record.jsonl'), workerToml: `cache_dir = ${JSON.stringify(cache)}\n` });
  const config = writeConfig(laptop, 'client.toml', `[storage.vast]\nbase_path = "${LAPTOP_VAST}"\ntype = "nfs"\nuser_subdir = "alice"\n`);
  const train = (run: string): ReturnType<typeof runClient> =>
    runClient(laptop, room, config, ['train', '--labels', `${LAPTOP_VAST}/alice/proj/labels.pkg.slp`, '--config-file', `${LAPTOP_VAST}/alice/proj/config.yaml`, '--run-name', run, '--max-epochs', '1', '--json']);

  const first = await train('c1');
  assert.equal(first.code, 0, first.stderr);
  const j1 = lastJson(first);
  assert.deepEqual([j1.status, j1.transfer], ['completed', 'webrtc']);
  assert.ok(Number(j1.bytes_sent) > 0, 'the first job sends its files');
  assert.equal(j1.bytes_skipped, 0);

  const second = await train('c2');
  assert.equal(second.code, 0, second.stderr);
  const j2 = lastJson(second);
  assert.deepEqual([j2.status, j2.transfer], ['completed', 'webrtc']);
  assert.equal(j2.bytes_sent, 0, 'nothing crosses the second time');
  assert.equal(j2.bytes_skipped, j1.bytes_sent);
  assert.match(second.stderr, /cached on worker/);
  assert.match(worker.stderr(), /from the cache/);
});
