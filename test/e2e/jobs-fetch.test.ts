/**
 * Results are kept until the client has them (issue 15): a client killed with SIGKILL while a
 * train job's model downloads leaves the worker holding the job's folder; re-running the command
 * says how to fetch; `sleap-rtc fetch JOB_ID` then gets a byte-identical model, removes the
 * client's part folder, and the worker removes its copy once every file was confirmed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { tempDir } from '../fixtures/fake-sleap-nn.js';
import { runCli } from '../helpers/cli.js';
import { lastJson, runClient, serverForFile, spawnTracked, startWorker } from './helpers/jobs-env.js';
import { copySleapFile, copyTrainingConfig } from '../helpers/sleap-data.js';

const server = serverForFile();

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const CKPT = 128 * 1024 * 1024;

test('client killed during the download: the worker keeps the results; fetch gets a byte-identical model; nothing is left on either side', async (t) => {
  const dir = await tempDir(t);
  const laptop = path.join(dir, 'laptop');
  await mkdir(laptop);
  // Real SLEAP files: a package labels file (frames embedded) and sleap-nn's sample config.
  await copySleapFile('pkg', path.join(laptop, 'labels.slp'));
  await copyTrainingConfig(path.join(laptop, 'config.yaml'));
  const room = await server.newRoom();
  const worker = await startWorker(t, room, dir, { name: 'keeper', workerToml: `cache_dir = ${JSON.stringify(path.join(dir, 'cache'))}`, env: { FAKE_SLEAP_NN_CKPT_BYTES: String(CKPT) } });
  const work = path.join(dir, 'work-keeper');
  const args = ['train', '--labels', 'labels.slp', '--config-file', 'config.yaml', '--run-name', 'r1', '--max-epochs', '1', '--json'];
  const client = spawnTracked(t, [...args, ...room.flags], { env: { HOME: dir }, cwd: laptop });
  const jobId = (await client.waitFor(/\bjob (job-[0-9a-f]+)\n/))[1] as string;
  await client.waitFor(/download r1: [1-9]0%/, 120_000);
  client.child.kill('SIGKILL');
  await client.exit;
  await worker.waitFor(new RegExp(`job ${jobId} completed but sending its outputs failed: .*kept for 24 h for \`sleap-rtc fetch ${jobId}\``), 60_000);

  // Worker: the job's folder and its record stay. Client: a part folder, no result.
  const record = JSON.parse(await readFile(path.join(work, 'results', `${jobId}.json`), 'utf8')) as { job_dir: string };
  const kept = path.join(record.job_dir, 'output', 'r1', 'best.ckpt');
  const model = await readFile(kept);
  assert.equal(model.length, CKPT);
  const left = await readdir(laptop);
  assert.ok(!left.includes('r1'), 'no result in place');
  assert.ok(left.some((n) => /^r1\.[0-9a-f-]{36}\.part$/.test(n)), `a part folder is left: ${left.join(', ')}`);

  // Running the command again says how to get the results (and runs a new job).
  const again = await runClient(room, dir, ['train', '--labels', 'labels.slp', '--config-file', 'config.yaml', '--run-name', 'r2', '--max-epochs', '1', '--json'], { cwd: laptop });
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stderr, new RegExp(`results of an earlier job ${jobId} \\(worker keeper\\) .* were not all received; get them with: sleap-rtc fetch ${jobId}`));

  const fetched = await runCli(['fetch', jobId, '--json', ...room.flags], { env: { HOME: dir }, cwd: laptop, timeoutMs: 180_000 });
  assert.equal(fetched.code, 0, fetched.stderr);
  const result = lastJson(fetched);
  assert.equal(result.status, 'completed');
  assert.deepEqual(result.outputs, [path.join(laptop, 'r1')]);
  assert.equal(sha(await readFile(path.join(laptop, 'r1', 'best.ckpt'))), sha(model), 'byte-identical model');
  assert.deepEqual((await readdir(laptop)).filter((n) => n.includes('.part')), [], 'no part file or folder left on the client');
  // The worker let go once every file was confirmed.
  await assert.rejects(stat(record.job_dir));
  await assert.rejects(stat(path.join(work, 'results', `${jobId}.json`)));

  const twice = await runCli(['fetch', jobId, '--json', ...room.flags], { env: { HOME: dir }, cwd: laptop, timeoutMs: 60_000 });
  assert.equal(twice.code, 2, 'no note of the job any more: say where from');
  const forced = await runCli(['fetch', jobId, '--worker', 'keeper', '--output', laptop, '--json', ...room.flags], { env: { HOME: dir }, cwd: laptop, timeoutMs: 60_000 });
  assert.equal(forced.code, 1);
  assert.equal((lastJson(forced).error as { code: string }).code, 'RESULTS_NOT_FOUND');
});
