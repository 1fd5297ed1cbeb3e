/**
 * The live page's server over real HTTP: files served offline (uPlot from node_modules), server-sent
 * events that carry each finished epoch, the token and Host rules, and Stop.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { LiveJob } from '../../../src/client/live-job.js';
import { isLoopbackHost, startLivePage } from '../../../src/client/ui/server.js';
import type { TrainEvent } from '../../../src/protocol/progress.js';

type Hooks = { after: (fn: () => unknown) => void };

function get(url: string, opts: { method?: string; headers?: Record<string, string> } = {}): Promise<{ status: number; body: string; type: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: opts.method ?? 'GET', headers: opts.headers ?? {} }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, type: String(res.headers['content-type']) }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function page(t: Hooks, host?: string) {
  const live = new LiveJob({ jobId: 'job-ui', jobType: 'train', transfer: 'shared', storageBackend: 'vast', runName: 'r1', totalEpochs: 5 });
  const p = await startLivePage({ live, ...(host ? { host } : {}) });
  t.after(() => p.close());
  const html = await get(p.url);
  const token = /name="sleap-rtc-token" content="([^"]+)"/.exec(html.body)?.[1] ?? '';
  return { live, url: p.url, base: p.url.replace(/\/(\?.*)?$/, ''), token, html, close: () => p.close() };
}

let seq = 0;
const ev = (event: TrainEvent['event'], extra: Partial<TrainEvent> = {}): TrainEvent => ({ type: 'TRAIN_EVENT', job_id: 'job-ui', seq: seq++, event, what: '', ...extra });

test('the page and its files are served from this process, uPlot included; no address outside it', async (t) => {
  const { url, base, html, token } = await page(t);
  assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
  assert.equal(html.status, 200);
  assert.ok(token.length >= 20);
  assert.doesNotMatch(html.body, /https?:\/\//, 'no CDN');
  for (const [p, type] of [['/assets/page.js', 'javascript'], ['/assets/page.css', 'css'], ['/assets/uPlot.iife.min.js', 'javascript'], ['/assets/uPlot.min.css', 'css']] as const) {
    const r = await get(`${base}${p}`);
    assert.equal(r.status, 200, p);
    assert.match(r.type, new RegExp(type));
  }
  assert.match((await get(`${base}/assets/uPlot.iife.min.js`)).body, /uPlot/);
  for (const p of ['/assets/../../package.json', '/assets/%2e%2e/package.json', '/package.json', '/assets/index.html']) {
    assert.equal((await get(`${base}${p}?token=${token}`)).status, 404, p);
  }
});

test('server-sent events: init with the history so far, then one epoch event per finished epoch and the state', async (t) => {
  const { live, base, token } = await page(t);
  live.setStatus('running');
  live.trainEvent(ev('epoch_end', { epoch: 0, logs: { 'train/loss': 0.5, 'val/loss': 0.6 } }));
  const ctl = new AbortController();
  t.after(() => ctl.abort());
  const res = await fetch(`${base}/api/events`, { headers: { 'X-Sleap-Rtc-Token': token }, signal: ctl.signal });
  assert.equal(res.headers.get('content-type'), 'text/event-stream; charset=utf-8');
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  let text = '';
  const until = async (re: RegExp): Promise<void> => {
    while (!re.test(text)) text += new TextDecoder().decode((await reader.read()).value);
  };
  await until(/event: init\ndata: .*\n\n/);
  const init = JSON.parse(/event: init\ndata: (.*)\n/.exec(text)?.[1] ?? '') as { state: { history: unknown[]; worker: unknown } };
  assert.equal(init.state.history.length, 1);
  live.log('Epoch 2/5');
  live.trainEvent(ev('epoch_end', { epoch: 1, logs: { 'train/loss': 0.4, 'val/loss': 0.45 } }));
  await until(/event: state\ndata: .*"epochs_done":2/);
  assert.match(text, /event: log\ndata: "Epoch 2\/5"/);
  assert.match(text, /event: epoch\ndata: \{"epoch":2,"train_loss":0\.4,"val_loss":0\.45/);
  assert.ok(text.indexOf('event: epoch') < text.lastIndexOf('event: state'), 'the epoch comes before the state that counts it');
});

test('Stop needs the token in a header, and stops a running training job once', async (t) => {
  const { live, base, token } = await page(t);
  let stops = 0;
  live.setStatus('running');
  live.setStopper(() => (stops += 1));
  live.trainEvent(ev('train_begin'));
  assert.equal((await get(`${base}/api/stop`, { method: 'POST' })).status, 403);
  assert.equal((await get(`${base}/api/stop?token=${token}`, { method: 'POST' })).status, 403, 'a token in the URL is not enough: a form can send that');
  assert.equal((await get(`${base}/api/stop`, { headers: { 'X-Sleap-Rtc-Token': token } })).status, 405);
  const r = await get(`${base}/api/stop`, { method: 'POST', headers: { 'X-Sleap-Rtc-Token': token } });
  assert.equal(r.status, 202);
  assert.deepEqual(JSON.parse(r.body), { answer: 'stopping', status: 'stopping' });
  const again = await get(`${base}/api/stop`, { method: 'POST', headers: { 'X-Sleap-Rtc-Token': token } });
  assert.equal(again.status, 409);
  assert.equal(stops, 1);
});

test('on loopback a foreign Host header is refused (DNS rebinding); state needs the token', async (t) => {
  const { base, token } = await page(t);
  assert.equal((await get(`${base}/`, { headers: { Host: 'evil.example:80' } })).status, 421);
  assert.equal((await get(`${base}/api/state`)).status, 403);
  assert.equal((await get(`${base}/api/state?token=${token}`)).status, 200);
  assert.equal((await get(`${base}/api/state?token=${token.slice(1)}x`)).status, 403);
});

test('off loopback everything needs the token, and the printed URL carries it', async (t) => {
  const { url, base, html } = await page(t, '0.0.0.0');
  assert.match(url, /^http:\/\/0\.0\.0\.0:\d+\/\?token=[A-Za-z0-9_-]{20,}$/);
  assert.equal(html.status, 200, 'the printed URL opens the page');
  assert.equal((await get(`${base}/`)).status, 403);
  assert.equal((await get(`${base}/assets/page.js`)).status, 403);
});

test('loopback host names', () => {
  for (const h of ['127.0.0.1', '127.1.2.3', 'localhost', '::1', '[::1]']) assert.equal(isLoopbackHost(h), true, h);
  for (const h of ['0.0.0.0', '10.0.0.1', 'example.org', '::']) assert.equal(isLoopbackHost(h), false, h);
});
