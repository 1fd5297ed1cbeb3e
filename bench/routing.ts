/**
 * Routing benchmark: `npm run bench:routing [-- --workers 500 --iterations 1000 --burst 1000 --burst-workers 100]`.
 *
 * The signaling server runs in a child process (so its CPU is not shared with the load
 * generator); this process drives real ws peers over loopback. Figures:
 *   1. time to assignment: one client sends `request_worker` (required_storage "vast") in a room of
 *      500 workers with mixed backends, one request at a time, and gives the reservation back
 *      (`cancel_request`, not timed) so the pool stays whole. Baseline, in the same run and
 *      alternating with it: `discover_peers` with the same condition (available workers with
 *      "vast"), which is what a client would do to pick a worker itself.
 *   2. burst: 100 clients send 10 requests each at once (1,000) against 100 single-slot workers.
 *      Each client tells its worker the reservation id (a peer_message standing in for the
 *      JOB_REQUEST); the worker claims it and releases it at once (a zero-length job), which
 *      frees the slot for the next queued request. Figure: assignments/s until all 1,000 are
 *      served. Each worker counts jobs that arrive while it still holds one: double bookings,
 *      which must be 0.
 * The per-connection rate limit is off in the benchmark server. The last line printed is one
 * JSON object with every figure.
 *
 * `-- --store redis`: the same two phases against two server processes on one real redis-server
 * (workers and clients spread over both, so assignments, relays, claims and releases cross
 * processes) and against one memory-store process, in the same run.
 */
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { startSignalingServer } from '../src/signaling/server.js';
import { startStoreServers } from './lib/store-servers.js';
import { BenchPeer, createRoom, forkServer, quantile } from './lib/ws-bench.js';

interface Endpoint {
  url: string;
  wsUrl: string;
}

/** The server peer i connects to. */
function on(servers: readonly Endpoint[], i: number): string {
  return (servers[i % servers.length] as Endpoint).wsUrl;
}

const BACKEND_MIXES = [['vast'], ['vast', 'scratch'], ['nfs'], ['scratch'], [], ['gdrive', 'vast'], ['nfs', 'gdrive']];
const CONNECT_CONCURRENCY = 100;
const FILTER = { role: 'worker', status: 'available', properties: { 'capabilities.storage_backends': { $contains: 'vast' } } };

// ---- child process -------------------------------------------------------------------------------

async function serveChild(storeUrl: string | undefined): Promise<void> {
  const server = await startSignalingServer({
    host: '127.0.0.1',
    port: 0,
    rateLimit: false,
    maxPeersPerRoom: 100_000,
    ...(storeUrl !== undefined ? { storeSetting: { kind: 'redis' as const, url: storeUrl } } : {}),
  });
  process.send?.({ url: server.url, wsUrl: server.wsUrl });
  process.on('disconnect', () => process.exit(0));
}

function startChild(): ReturnType<typeof forkServer> {
  return forkServer(new URL(import.meta.url).pathname, ['routing']);
}

async function joinAll(count: number, join: (i: number) => Promise<BenchPeer>): Promise<BenchPeer[]> {
  const out: BenchPeer[] = new Array(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(CONNECT_CONCURRENCY, count) }, async () => {
      while (next < count) {
        const i = next++;
        out[i] = await join(i);
      }
    }),
  );
  return out;
}

function workerMeta(i: number, backends: string[]): unknown {
  return {
    name: `gpu-${i}`,
    status: 'available',
    capabilities: { storage_backends: backends, job_types: ['train', 'track'], max_concurrent_jobs: 1, gpu: { name: 'NVIDIA A40', memory_mb: 46068 } },
  };
}


// ---- 1. time to assignment -----------------------------------------------------------------------

async function timeToAssignment(servers: readonly Endpoint[], workers: number, iterations: number) {
  const room = await createRoom((servers[0] as Endpoint).url);
  const pool = await joinAll(workers, (i) => BenchPeer.join(on(servers, i), room, 'worker', workerMeta(i, BACKEND_MIXES[i % BACKEND_MIXES.length] as string[])));
  const client = await BenchPeer.join(on(servers, 0), room, 'client', {});
  const routeMs: number[] = [];
  const discoverMs: number[] = [];
  const hits = new Map<string, number>();
  let matches = 0;
  const route = async (id: string): Promise<number> => {
    const start = performance.now();
    const got = await client.request({ type: 'request_worker', request_id: id, job_type: 'train', required_storage: 'vast' }, 'worker_assigned', (m) => m.request_id === id);
    const ms = performance.now() - start;
    const worker = (got.worker as { peer_id: string }).peer_id;
    hits.set(worker, (hits.get(worker) ?? 0) + 1);
    await client.request({ type: 'cancel_request', request_id: id }, 'request_cancelled', (m) => m.request_id === id);
    return ms;
  };
  const discover = async (id: string): Promise<number> => {
    const start = performance.now();
    const list = await client.request({ type: 'discover_peers', filters: FILTER, request_id: id }, 'peer_list', (m) => m.request_id === id);
    matches = (list.peers as unknown[]).length;
    return performance.now() - start;
  };
  // Warm-up, so JIT compilation is not counted.
  for (let i = 0; i < 50; i++) {
    await discover(`wd${i}`);
    await route(`wr${i}`);
  }
  hits.clear();
  // Alternate, so drift in machine load hits both alike.
  for (let i = 0; i < iterations; i++) {
    discoverMs.push(await discover(`d${i}`));
    routeMs.push(await route(`r${i}`));
  }
  for (const p of [...pool, client]) p.close();
  routeMs.sort((a, b) => a - b);
  discoverMs.sort((a, b) => a - b);
  const counts = [...hits.values()];
  return {
    route: { p50: quantile(routeMs, 0.5), p99: quantile(routeMs, 0.99), max: routeMs.at(-1) ?? Number.NaN },
    discover: { p50: quantile(discoverMs, 0.5), p99: quantile(discoverMs, 0.99), max: discoverMs.at(-1) ?? Number.NaN },
    matches,
    distinctWorkers: hits.size,
    spread: { min: Math.min(...counts), max: Math.max(...counts) },
  };
}

// ---- 2. burst ------------------------------------------------------------------------------------

async function burst(servers: readonly Endpoint[], workerCount: number, requests: number, clientCount: number) {
  const room = await createRoom((servers[0] as Endpoint).url);
  let doubleBookings = 0;
  let claimErrors = 0;
  let jobs = 0;
  const workers = await joinAll(workerCount, async (i) => {
    const w = await BenchPeer.join(on(servers, i), room, 'worker', workerMeta(i, ['vast']), `burst-w${i}`);
    let holding: string | undefined;
    w.onMessage = (m) => {
      if (m.type === 'peer_message') {
        const rid = (m.payload as { reservation_id: string }).reservation_id;
        if (holding !== undefined) doubleBookings += 1;
        holding = rid;
        jobs += 1;
        w.send({ type: 'claim_reservation', reservation_id: rid });
      } else if (m.type === 'reservation_claimed') {
        // A zero-length job: give the slot back at once.
        holding = undefined;
        w.send({ type: 'release_reservation', reservation_id: m.reservation_id });
      } else if (m.type === 'error') {
        claimErrors += 1;
      }
    };
    return w;
  });
  // Clients on the other process from the worker of the same index, so jobs cross processes.
  const clients = await joinAll(clientCount, (i) => BenchPeer.join(on(servers, i + 1), room, 'client', {}, `burst-c${i}`));

  const perClient = Math.ceil(requests / clientCount);
  const reservations = new Set<string>();
  const answered = new Set<string>();
  let assignedCount = 0;
  let positions = 0;
  let reassigned = 0;
  let admittedAt = 0;
  const t0 = performance.now();
  const done = new Promise<number>((resolve, reject) => {
    clients.forEach((c) => {
      c.onMessage = (m) => {
        const key = `${c.peerId}/${String(m.request_id)}`;
        if (m.type === 'worker_assigned') {
          const rid = String(m.reservation_id);
          if (reservations.has(rid)) reject(new Error(`reservation ${rid} handed out twice`));
          reservations.add(rid);
          if (m.reassigned_from !== undefined) reassigned += 1;
          else assignedCount += 1;
          c.send({ type: 'peer_message', to_peer_id: (m.worker as { peer_id: string }).peer_id, payload: { reservation_id: rid } });
        } else if (m.type === 'queue_position') {
          positions += 1;
        } else if (m.type === 'error') {
          reject(new Error(JSON.stringify(m)));
          return;
        } else {
          return;
        }
        if (!answered.has(key)) {
          answered.add(key);
          if (answered.size === requests) admittedAt = performance.now();
        }
        if (assignedCount === requests) resolve(performance.now());
      };
    });
  });
  let sent = 0;
  for (const [ci, c] of clients.entries()) {
    for (let j = 0; j < perClient && sent < requests; j++, sent++) {
      c.send({ type: 'request_worker', request_id: `b${ci}-${j}`, job_type: 'train', required_storage: 'vast' });
    }
  }
  const end = await done;
  // Let the last releases land before counting.
  await new Promise((r) => setTimeout(r, 200));
  for (const p of [...workers, ...clients]) p.close();
  const seconds = (end - t0) / 1000;
  return {
    requests,
    workers: workerCount,
    clients: clientCount,
    seconds,
    assignmentsPerS: requests / seconds,
    admitMs: admittedAt - t0,
    doubleBookings,
    claimErrors,
    jobs,
    reassigned,
    positions,
    distinctReservations: reservations.size,
  };
}

// ---- main ----------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      serve: { type: 'string' },
      store: { type: 'string', default: 'memory' },
      'store-url': { type: 'string' },
      workers: { type: 'string', default: '500' },
      iterations: { type: 'string', default: '1000' },
      burst: { type: 'string', default: '1000' },
      'burst-workers': { type: 'string', default: '100' },
      'burst-clients': { type: 'string', default: '100' },
    },
  });
  if (values.serve !== undefined) return serveChild(values['store-url']);
  const workers = Number(values.workers);
  const iterations = Number(values.iterations);
  const burstRequests = Number(values.burst);
  const burstWorkers = Number(values['burst-workers']);
  const burstClients = Number(values['burst-clients']);

  if (values.store === 'redis') return mainRedis(workers, iterations, burstRequests, burstWorkers, burstClients);
  if (values.store !== 'memory') throw new Error(`--store is memory or redis, not ${values.store}`);
  const server = await startChild();
  try {
    console.log('sleap-rtc routing benchmark (server in a child process, loopback)');
    const t = await timeToAssignment([server], workers, iterations);
    console.log(`time to assignment, ${workers} workers (mixed backends, ${t.matches} with "vast"), ${iterations} requests, one at a time:`);
    console.log(`  request_worker -> worker_assigned   p50 ${t.route.p50.toFixed(2)} ms   p99 ${t.route.p99.toFixed(2)} ms   max ${t.route.max.toFixed(2)} ms`);
    console.log(`  discover_peers (same filter)        p50 ${t.discover.p50.toFixed(2)} ms   p99 ${t.discover.p99.toFixed(2)} ms   max ${t.discover.max.toFixed(2)} ms  (baseline)`);
    console.log(`  ratio route / discover              p50 ${(t.route.p50 / t.discover.p50).toFixed(2)}x   p99 ${(t.route.p99 / t.discover.p99).toFixed(2)}x`);
    console.log(`  spread: ${t.distinctWorkers} distinct workers served, ${t.spread.min}-${t.spread.max} jobs each`);
    const b = await burst([server], burstWorkers, burstRequests, burstClients);
    console.log(`burst: ${b.requests} requests from ${b.clients} clients at once, ${b.workers} single-slot workers, each job claimed and released at once:`);
    console.log(`  all served in ${(b.seconds * 1000).toFixed(0)} ms = ${b.assignmentsPerS.toFixed(0)} assignments/s (every request answered within ${b.admitMs.toFixed(0)} ms)`);
    console.log(`  double bookings ${b.doubleBookings}, claim errors ${b.claimErrors}, jobs seen by workers ${b.jobs}, distinct reservations ${b.distinctReservations}, queue_position messages ${b.positions}`);
    if (b.doubleBookings !== 0 || b.claimErrors !== 0 || b.distinctReservations !== b.requests) {
      console.log('  FAILED: routing handed out a slot twice or lost a job');
      process.exitCode = 1;
    }
    console.log(
      JSON.stringify({
        bench: 'routing',
        server: 'child process',
        workers,
        vast_workers: t.matches,
        iterations,
        request_worker_ms_p50: round2(t.route.p50),
        request_worker_ms_p99: round2(t.route.p99),
        discover_ms_p50: round2(t.discover.p50),
        discover_ms_p99: round2(t.discover.p99),
        route_vs_discover_p50: round2(t.route.p50 / t.discover.p50),
        route_vs_discover_p99: round2(t.route.p99 / t.discover.p99),
        burst_requests: b.requests,
        burst_workers: b.workers,
        burst_clients: b.clients,
        burst_ms: Math.round(b.seconds * 1000),
        burst_assignments_per_s: Math.round(b.assignmentsPerS),
        burst_admit_ms: Math.round(b.admitMs),
        burst_double_bookings: b.doubleBookings,
        burst_claim_errors: b.claimErrors,
        burst_queue_position_messages: b.positions,
      }),
    );
  } finally {
    server.child.disconnect();
  }
}

async function mainRedis(workers: number, iterations: number, burstRequests: number, burstWorkers: number, burstClients: number): Promise<void> {
  const servers = await startStoreServers(new URL(import.meta.url).pathname, 'routing');
  try {
    console.log('sleap-rtc routing benchmark, --store redis: two server processes on one redis-server vs one memory-store process (children, loopback)');
    const out: Record<string, { t: Awaited<ReturnType<typeof timeToAssignment>>; b: Awaited<ReturnType<typeof burst>> }> = {};
    for (const [name, list] of [
      ['memory', [servers.memory]],
      ['redis', servers.redis],
    ] as const) {
      const t = await timeToAssignment(list, workers, iterations);
      console.log(`${name.padEnd(6)} time to assignment, ${workers} workers over ${list.length} process(es): p50 ${t.route.p50.toFixed(2)} ms, p99 ${t.route.p99.toFixed(2)} ms (discover_peers p50 ${t.discover.p50.toFixed(2)} ms, p99 ${t.discover.p99.toFixed(2)} ms)`);
      const b = await burst(list, burstWorkers, burstRequests, burstClients);
      console.log(`${name.padEnd(6)} burst ${b.requests} requests, ${b.workers} single-slot workers: ${b.assignmentsPerS.toFixed(0)} assignments/s (${(b.seconds * 1000).toFixed(0)} ms), double bookings ${b.doubleBookings}, claim errors ${b.claimErrors}, distinct reservations ${b.distinctReservations}`);
      if (b.doubleBookings !== 0 || b.claimErrors !== 0 || b.distinctReservations !== b.requests) {
        console.log(`  FAILED (${name}): routing handed out a slot twice or lost a job`);
        process.exitCode = 1;
      }
      out[name] = { t, b };
    }
    const m = out.memory as NonNullable<(typeof out)['memory']>;
    const x = out.redis as NonNullable<(typeof out)['redis']>;
    console.log(`burst assignments/s, redis / memory: ${(x.b.assignmentsPerS / m.b.assignmentsPerS).toFixed(2)}x`);
    console.log(
      JSON.stringify({
        bench: 'routing',
        store: 'redis',
        server: 'child processes: 2 on one redis-server, 1 memory baseline',
        workers,
        iterations,
        request_worker_ms_p50_redis: round2(x.t.route.p50),
        request_worker_ms_p99_redis: round2(x.t.route.p99),
        request_worker_ms_p50_memory: round2(m.t.route.p50),
        request_worker_ms_p99_memory: round2(m.t.route.p99),
        discover_ms_p99_redis: round2(x.t.discover.p99),
        burst_requests: burstRequests,
        burst_workers: burstWorkers,
        burst_assignments_per_s_redis: Math.round(x.b.assignmentsPerS),
        burst_assignments_per_s_memory: Math.round(m.b.assignmentsPerS),
        burst_redis_vs_memory: round2(x.b.assignmentsPerS / m.b.assignmentsPerS),
        burst_double_bookings_redis: x.b.doubleBookings,
        burst_double_bookings_memory: m.b.doubleBookings,
        burst_claim_errors_redis: x.b.claimErrors,
      }),
    );
  } finally {
    await servers.stop();
  }
}

function round2(n: number): number {
  return Math.round(n * 100) / 100;
}

await main();
