/**
 * Several real `sleap-rtc server --store redis://...` processes on one real redis-server: peers on
 * different processes find each other, relay, and are routed as one pool. Faults are in
 * scale-out-faults.test.ts, start-up errors in scale-out-start.test.ts (one file each keeps every
 * file inside the runner's per-file time limit on a loaded machine).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { waitFor, workerMetadata, type Msg, type TestPeer } from '../helpers/ws-peer.js';
import { createRoomOn, type RunningServer } from './cli-server.js';
import { join, json, redisFor, servers } from './scale-out-helpers.js';

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
