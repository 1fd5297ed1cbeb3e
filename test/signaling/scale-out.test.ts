/**
 * Several real `sleap-rtc server --store redis://...` processes on one real redis-server: peers on
 * different processes find each other, relay, and are routed as one pool; a process killed with
 * SIGKILL loses its peers within a bounded time and they come back elsewhere under the same ids
 * without a request being lost or served twice; Redis restarted; Redis unreachable.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { runCli } from '../helpers/cli.js';
import { registerPeer, waitFor, workerMetadata, type Msg, type TestPeer } from '../helpers/ws-peer.js';
import { createRoomOn, startCliServer, type RunningServer } from './cli-server.js';
import { freePort, startRedisServer, type RedisServer } from './redis-server.js';

async function redisFor(t: TestContext, appendonly = false): Promise<RedisServer> {
  const redis = await startRedisServer({ appendonly });
  t.after(() => redis.stop());
  return redis;
}

function servers(t: TestContext, redis: RedisServer, n: number): Promise<RunningServer[]> {
  return Promise.all(Array.from({ length: n }, () => startCliServer(t, ['--port', '0', '--store', redis.url])));
}

async function join(t: TestContext, server: RunningServer, room: { room_id: string; token: string }, opts: { role: 'worker' | 'client'; peer_id: string; metadata?: Record<string, unknown> }): Promise<TestPeer> {
  const peer = await registerPeer(server.wsUrl, { ...room, ...opts });
  t.after(() => peer.close());
  return peer;
}

async function json(url: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

test('two processes on one Redis: rooms, discovery, relay and departures cross processes; /health and /metrics report it', async (t) => {
  const redis = await redisFor(t);
  const [a, b] = (await servers(t, redis, 2)) as [RunningServer, RunningServer];
  const room = await createRoomOn(a.url);
  const worker = await join(t, a, room, { role: 'worker', peer_id: 'gpu', metadata: workerMetadata(['vast']) });
  const client = await join(t, b, room, { role: 'client', peer_id: 'laptop' });
  assert.deepEqual((client.registered?.peers as { peer_id: string }[]).map((p) => p.peer_id), ['gpu'], 'B lists the worker registered on A');
  assert.equal(((await worker.next('peer_joined')).peer as { peer_id: string }).peer_id, 'laptop');

  client.send({ type: 'discover_peers', request_id: 'd', filters: { role: 'worker', properties: { 'capabilities.storage_backends': { $contains: 'vast' } } } });
  assert.deepEqual((await client.next<Msg & { peers: { peer_id: string }[] }>('peer_list')).peers.map((p) => p.peer_id), ['gpu']);

  client.send({ type: 'peer_message', to_peer_id: 'gpu', payload: { n: 1 } });
  assert.deepEqual(await worker.next('peer_message'), { type: 'peer_message', from_peer_id: 'laptop', payload: { n: 1 } });
  for (let i = 0; i < 20; i++) worker.send({ type: 'candidate', target: 'laptop', candidate: `c${i}`, mid: '0' });
  const got: unknown[] = [];
  for (let i = 0; i < 20; i++) got.push((await client.next('candidate')).candidate);
  assert.deepEqual(got, Array.from({ length: 20 }, (_, i) => `c${i}`), 'order kept across processes');

  // The same id on the other process, while its holder is alive, is a different peer.
  const twin = await join(t, b, room, { role: 'worker', peer_id: 'gpu' });
  assert.equal(twin.peerId, 'gpu-2');

  const health = await json(`${b.url}/health`);
  assert.equal(health.status, 200);
  assert.deepEqual(health.body.store, { kind: 'redis', connected: true, location: redis.url.replace(/\/0$/, '/0') });
  const metrics = (await json(`${a.url}/metrics`)).body as { store: string; cross_process: { sent: number; received: number }; rooms: number };
  assert.equal(metrics.store, 'redis');
  assert.ok(metrics.cross_process.received >= 1, JSON.stringify(metrics.cross_process));
  assert.ok(metrics.cross_process.sent >= 20, JSON.stringify(metrics.cross_process));
  assert.equal(metrics.rooms, 1);

  await client.close();
  assert.deepEqual(await worker.next('peer_left', (m) => m.peer_id === 'laptop'), { type: 'peer_left', peer_id: 'laptop' });
});

test('three processes on one Redis: a burst of requests is routed over every worker without double booking', async (t) => {
  const redis = await redisFor(t);
  const procs = await servers(t, redis, 3);
  const room = await createRoomOn((procs[0] as RunningServer).url);
  const WORKERS = 12;
  const REQUESTS = 60;
  const busy = new Map<string, string | undefined>();
  const served: string[] = [];
  let doubleBooked = 0;
  const workers: TestPeer[] = [];
  for (let i = 0; i < WORKERS; i++) {
    const w = await join(t, procs[i % 3] as RunningServer, room, { role: 'worker', peer_id: `w${i}`, metadata: workerMetadata(['vast']) });
    workers.push(w);
    busy.set(w.peerId, undefined);
    // A worker takes each job it is told of: claim, then release at once (like a job that ends).
    w.ws.on('message', (data) => {
      const m = JSON.parse(String(data)) as Msg;
      if (m.type === 'peer_message') {
        const job = (m.payload as { reservation_id: string }).reservation_id;
        if (busy.get(w.peerId) !== undefined) doubleBooked += 1;
        busy.set(w.peerId, job);
        w.send({ type: 'claim_reservation', reservation_id: job });
      } else if (m.type === 'reservation_claimed') {
        busy.set(w.peerId, undefined);
        w.send({ type: 'release_reservation', reservation_id: m.reservation_id });
      }
    });
  }
  const clients: TestPeer[] = [];
  for (let i = 0; i < 6; i++) clients.push(await join(t, procs[(i + 1) % 3] as RunningServer, room, { role: 'client', peer_id: `c${i}` }));
  for (const c of clients) {
    c.ws.on('message', (data) => {
      const m = JSON.parse(String(data)) as Msg & { worker?: { peer_id: string } };
      if (m.type !== 'worker_assigned') return;
      served.push(`${c.peerId}/${String(m.request_id)}`);
      c.send({ type: 'peer_message', to_peer_id: m.worker?.peer_id, payload: { reservation_id: m.reservation_id } });
    });
  }
  for (let i = 0; i < REQUESTS; i++) (clients[i % clients.length] as TestPeer).send({ type: 'request_worker', request_id: `r${i}`, job_type: 'train', required_storage: 'vast' });
  await waitFor(() => served.length >= REQUESTS, 120_000, `all ${REQUESTS} requests served (got ${served.length})`);
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(served.length, REQUESTS, 'no request served twice');
  assert.equal(new Set(served).size, REQUESTS);
  assert.equal(doubleBooked, 0, 'no worker got a job while holding one');
  const errors = clients.flatMap((c) => c.received.filter((m) => m.type === 'error'));
  assert.deepEqual(errors, []);
});

test('a process killed with SIGKILL: its peers leave their rooms within the presence bound, come back elsewhere under the same ids, and no queued request is lost or served twice', async (t) => {
  const redis = await redisFor(t);
  const [a, b] = (await servers(t, redis, 2)) as [RunningServer, RunningServer];
  const room = await createRoomOn(b.url);
  const worker = await join(t, b, room, { role: 'worker', peer_id: 'w', metadata: workerMetadata(['vast']) });
  const holder = await join(t, b, room, { role: 'client', peer_id: 'holder' });
  const doomed = await join(t, a, room, { role: 'client', peer_id: 'doomed' });
  const watcher = await join(t, b, room, { role: 'client', peer_id: 'watcher' });
  await join(t, a, room, { role: 'worker', peer_id: 'gone-worker', metadata: workerMetadata(['scratch']) });
  // The only vast worker is held; the doomed client and the watcher queue behind it.
  holder.send({ type: 'request_worker', request_id: 'h', job_type: 'train', required_storage: 'vast' });
  const held = await holder.next<Msg & { reservation_id: string }>('worker_assigned');
  doomed.send({ type: 'request_worker', request_id: 'r1', job_type: 'train', required_storage: 'vast' });
  await doomed.next('queue_position');
  watcher.send({ type: 'request_worker', request_id: 'q1', job_type: 'train', required_storage: 'vast' });
  await watcher.next('queue_position');

  const killedAt = Date.now();
  a.child.kill('SIGKILL');
  await a.exit;
  // The client reconnects to B at once under its old id (A's presence has not run out yet: B asks
  // A, which does not answer, so the stale record is removed and the id handed back).
  const back = await join(t, b, room, { role: 'client', peer_id: 'doomed' });
  assert.equal(back.peerId, 'doomed', 'the same peer id, not doomed-2');
  // Presence: the worker on B hears the killed process's worker leave (nothing closed its socket politely).
  await worker.next('peer_left', (m) => m.peer_id === 'gone-worker', 30_000);
  t.diagnostic(`peers of the killed process were removed after ${Date.now() - killedAt} ms`);
  // ... and asks again (what the routing client does after a reconnect).
  back.send({ type: 'request_worker', request_id: 'r1', job_type: 'train', required_storage: 'vast', wait_for_match: true });
  const first = await back.next(['queue_position', 'error', 'worker_assigned']);
  assert.equal(first.type, 'queue_position', JSON.stringify(first));

  // The held job ends: the watcher (queued before the client came back) goes first, then the client.
  worker.send({ type: 'release_reservation', reservation_id: held.reservation_id });
  const toWatcher = await watcher.next<Msg & { reservation_id: string }>('worker_assigned');
  worker.send({ type: 'release_reservation', reservation_id: toWatcher.reservation_id });
  const toBack = await back.next<Msg & { request_id: string }>('worker_assigned');
  assert.equal(toBack.request_id, 'r1');
  await back.barrier();
  await watcher.barrier();
  assert.equal(back.received.filter((m) => m.type === 'worker_assigned').length, 1, 'served once');
  assert.equal(watcher.received.filter((m) => m.type === 'worker_assigned').length, 1, 'served once');
  assert.equal(back.received.filter((m) => m.type === 'error').length, 0);
});

test('Redis restarted: requests fail with STORE_UNAVAILABLE while it is down, the processes stay up, and resume with their rooms (AOF)', async (t) => {
  const redis = await redisFor(t, true);
  const [a, b] = (await servers(t, redis, 2)) as [RunningServer, RunningServer];
  const room = await createRoomOn(a.url);
  const worker = await join(t, a, room, { role: 'worker', peer_id: 'gpu', metadata: workerMetadata(['vast']) });
  const client = await join(t, b, room, { role: 'client', peer_id: 'laptop' });

  await redis.kill();
  // Down: a request that needs the store fails with a stable code; the process answers.
  await waitFor(async () => (await fetch(`${b.url}/health`)).status === 503, 30_000, '/health to report the store down');
  client.send({ type: 'discover_peers', request_id: 'while-down', filters: {} });
  const err = await client.next<Msg & { code: string }>('error', (m) => m.request_id === 'while-down', 30_000);
  assert.equal(err.code, 'STORE_UNAVAILABLE');
  assert.equal(b.child.exitCode, null, 'still running');

  await redis.start();
  await waitFor(async () => (await fetch(`${a.url}/health`)).status === 200 && (await fetch(`${b.url}/health`)).status === 200, 60_000, 'both processes to reach Redis again');
  // The room survived (AOF), the peers kept their connections, and relay crosses processes again.
  const late = await join(t, a, room, { role: 'client', peer_id: 'late' });
  assert.deepEqual((late.registered?.peers as { peer_id: string }[]).map((p) => p.peer_id).sort(), ['gpu', 'laptop']);
  await waitFor(
    async () => {
      client.send({ type: 'peer_message', to_peer_id: 'gpu', payload: 'after restart' });
      await client.barrier();
      return worker.received.some((m) => m.type === 'peer_message' && m.payload === 'after restart');
    },
    30_000,
    'relay B -> A after the restart',
  );
  assert.equal(a.child.exitCode, null);
  assert.equal(b.child.exitCode, null);
});

test('Redis unreachable at start: a clear error naming the URL, exit 1', async () => {
  const port = await freePort();
  const r = await runCli(['server', '--port', '0', '--store', `redis://127.0.0.1:${port}/0`], { timeoutMs: 120_000 });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /STORE_UNAVAILABLE/);
  assert.match(r.stderr, new RegExp(`Cannot reach Redis at redis://127\\.0\\.0\\.1:${port}/0`));
});

test('a --store that is not memory or a Redis URL is a usage error (exit 2)', async () => {
  const r = await runCli(['server', '--port', '0', '--store', 'mongodb://x'], { timeoutMs: 120_000 });
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /redis:\/\/HOST:PORT\/DB/);
});
