/**
 * The live page in a real browser (Chromium through playwright-core) during a real training job:
 * the curve has one point per finished epoch, Stop ends the run, and the job comes back with its
 * model. Set SLEAP_RTC_SCREENSHOT=<file.png> to keep a screenshot of the page during the job
 * (docs/live-page.png is made this way).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';

// Browser-side code (page.waitForFunction) sees the DOM; these are its globals as far as this file uses them.
declare const document: { getElementById(id: string): { dataset: Record<string, string | undefined>; textContent: string | null } | null };
declare const window: unknown;
import { labShare, lastJson, serverForFile, spawnTracked, startWorker } from './helpers/jobs-env.js';

const CHROMIUM = '/usr/bin/chromium';
let browser: Browser;
const server = serverForFile(async (suite) => {
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
  suite.after(() => browser.close());
});

test('the page follows a training job epoch by epoch, and its Stop button ends the run with the model kept', { skip: !existsSync(CHROMIUM) && 'no /usr/bin/chromium (scripts/ci-setup.sh installs it)' }, async (t) => {
  const lab = await labShare(t);
  const room = await server.newRoom();
  await startWorker(t, room, lab.dir, { name: 'gpu-ui', toml: lab.workerToml, env: { FAKE_SLEAP_NN_EPOCH_DELAY_MS: '400', FAKE_SLEAP_NN_BATCHES_PER_EPOCH: '8' } });
  const client = spawnTracked(
    t,
    ['train', '--labels', path.join(lab.mount, 'alice/proj/labels.slp'), '--config-file', path.join(lab.mount, 'alice/proj/config.yaml'), '--run-name', 'paged', '--max-epochs', '500', '--json', '--ui', '--config', lab.clientToml, ...room.flags],
    { env: { HOME: lab.dir } },
  );
  const url = (await client.waitFor(/live page: (http:\/\/127\.0\.0\.1:\d+\/)\n/))[1] as string;
  const page = await browser.newPage({ viewport: { width: 1200, height: 860 } });
  t.after(() => page.close());
  await page.goto(url);
  await page.waitForFunction(() => Number(document.getElementById('chart')?.dataset.points) >= 3, undefined, { timeout: 60_000 });
  // One point per finished epoch: the curve's x values are exactly 1..N, N the epochs the page counts.
  const seen = await page.waitForFunction(
    () => {
      const w = window as { __sleapRtc: { chart(): { data: number[][] } } };
      const xs = [...(w.__sleapRtc.chart().data[0] ?? [])];
      const done = Number((document.getElementById('epoch')?.textContent ?? '').split('/')[0]);
      return xs.length === done ? { xs, done, train: [...(w.__sleapRtc.chart().data[1] ?? [])] } : null;
    },
    undefined,
    { timeout: 30_000 },
  );
  const { xs, done, train } = (await seen.jsonValue()) as { xs: number[]; done: number; train: number[] };
  assert.ok(done >= 3);
  assert.deepEqual(xs, Array.from({ length: done }, (_, i) => i + 1));
  assert.equal(train[0], 0.5, 'the first epoch train loss of the stand-in');
  assert.equal(await page.textContent('#worker'), 'gpu-ui');
  assert.equal(await page.textContent('#backend'), 'vast');
  assert.equal(await page.textContent('#transfer'), 'shared storage');
  assert.match((await page.textContent('#logs')) ?? '', /Epoch \d+\/500/);
  assert.notEqual(await page.textContent('#eta'), '-');
  if (process.env.SLEAP_RTC_SCREENSHOT) await page.screenshot({ path: process.env.SLEAP_RTC_SCREENSHOT, fullPage: true });

  await page.click('#stop');
  const { code } = await client.exit;
  assert.equal(code, 0, client.stderr());
  const result = lastJson<{ status: string; outputs: string[] }>(client);
  assert.equal(result.status, 'stopped_early');
  assert.deepEqual(result.outputs, [path.join(lab.mount, 'alice/proj/models/paged')]);
  assert.match(await readFile(path.join(lab.share, 'alice/proj/models/paged/best.ckpt'), 'utf8'), /run=paged/);
  assert.match(client.stderr(), /stop requested \(live page\)/);
  await page.waitForFunction(() => document.getElementById('status')?.textContent === 'stopped early', undefined, { timeout: 10_000 });
});
