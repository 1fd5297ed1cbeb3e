/**
 * The run folder of a training job, through a real WorkerSession and the sleap-nn stand-in: its
 * labels files leave naming the client's videos (test/worker/predictions.test.ts covers the
 * renaming itself), and a `.slp` in it that is no labels file fails the job with
 * RUN_FOLDER_LABELS_UNREADABLE, naming the file in the client's terms, and the run folder is not
 * put in place.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { FAKE_SLEAP_NN, tempDir } from '../fixtures/fake-sleap-nn.js';
import { sessionEnv, sharedTrain } from './helpers/session-env.js';
import { labelsContent } from '../helpers/slp-content.js';

/** The stand-in, then `content` written as `<run folder>/<name>` (the folder that holds best.ckpt below sleap-nn's cwd). */
async function sleapNnLeaving(t: TestContext, name: string, content: string): Promise<string> {
  const dir = await tempDir(t, 'sleap-rtc-leaves-');
  const executable = path.join(dir, 'sleap-nn');
  const script = [
    '#!/bin/sh',
    `'${FAKE_SLEAP_NN}' "$@" || exit $?`,
    '[ "$1" = train ] || exit 0',
    `find "$PWD" -name best.ckpt | while read -r f; do printf '%s' '${content}' > "$(dirname "$f")/${name}"; done`,
  ].join('\n');
  await writeFile(executable, `${script}\n`, { mode: 0o755 });
  return executable;
}

test('a run folder .slp that is no labels file: RUN_FOLDER_LABELS_UNREADABLE naming it; the run folder is not delivered', async (t) => {
  const env = await sessionEnv(t, { executable: await sleapNnLeaving(t, 'labels_pr.extra.0.slp', 'not HDF5') });
  env.client.send(sharedTrain('j1'));
  const failed = await env.client.next('JOB_FAILED', () => true, 60_000);
  assert.equal(failed.code, 'RUN_FOLDER_LABELS_UNREADABLE', failed.message);
  assert.match(failed.message, /'out\/r1\/labels_pr\.extra\.0\.slp'/);
  assert.match(failed.message, /SLP_NOT_HDF5/);
  for (const p of [env.workDir, env.share, env.root]) assert.ok(!failed.message.includes(p), `no worker path in: ${failed.message}`);
  assert.deepEqual(await readdir(path.join(env.share, 'alice', 'out', 'r1')).catch(() => []), [], 'nothing of the run folder was put in place');
});

test('a run folder whose labels files are all readable is delivered whole, every .slp naming no worker path', async (t) => {
  const env = await sessionEnv(t, { executable: await sleapNnLeaving(t, 'notes.txt', 'a note') });
  env.client.send(sharedTrain('j2'));
  const done = await env.client.next('JOB_COMPLETE', () => true, 60_000);
  assert.equal(done.transfer, 'shared');
  const run = path.join(env.share, 'alice', 'out', 'r1');
  const files = (await readdir(run)).sort();
  assert.ok(files.includes('notes.txt') && files.includes('labels_gt.train.0.slp') && files.includes('labels_pr.val.0.slp'), files.join(' '));
  for (const f of files.filter((n) => n.endsWith('.slp'))) {
    const text = JSON.stringify(labelsContent(path.join(run, f)));
    for (const p of [env.workDir, env.root]) assert.ok(!text.includes(p), `${f} names a worker path: ${text}`);
  }
});
