/**
 * The server-level routing suites (routing-suite.ts, routing-failover-suite.ts) on the Redis store: two server instances,
 * each with its own Redis connections (store and bus), on one real redis-server on a free
 * loopback port; peers join the two in turn, so workers and clients of one room sit on different
 * instances and every decision, relay and queue report crosses Redis. (Separate OS processes are
 * in scale-out*.test.ts; here the suite needs the library's options, e.g. short claim windows.)
 */
import { after, before } from 'node:test';
import { Redis } from 'ioredis';
import { startSignalingServer } from '../../src/signaling/server.js';
import { openPeer, registerPeer, type TestPeer } from '../helpers/ws-peer.js';
import type { HarnessStart } from './harness.js';
import { startRedisServer, type RedisServer } from './redis-server.js';
import { runFailoverSuite } from './routing-failover-suite.js';
import { runRoutingSuite } from './routing-suite.js';

let redis: RedisServer;
before(async () => {
  redis = await startRedisServer();
});
after(async () => {
  await redis.stop();
});

const twoInstancesOnRedis: HarnessStart = async (t, opts = {}) => {
  // Peer ids are unique across a store: each test starts from an empty database.
  const admin = new Redis(redis.url);
  await admin.flushdb();
  admin.disconnect();
  const servers = await Promise.all(
    ['node-a', 'node-b'].map((nodeId) => startSignalingServer({ host: '127.0.0.1', port: 0, ...opts, nodeId, storeSetting: { kind: 'redis', url: redis.url } })),
  );
  const peers: TestPeer[] = [];
  t.after(async () => {
    await Promise.all(peers.map((p) => p.close()));
    for (const s of servers) await s.close();
  });
  const [a] = servers as [(typeof servers)[0]];
  const room = await a.createRoom();
  let turn = 0;
  const nextServer = (): (typeof servers)[0] => servers[turn++ % servers.length] as (typeof servers)[0];
  return {
    server: a,
    room,
    async join(o = {}) {
      const peer = await registerPeer(nextServer().wsUrl, { room_id: room.room_id, token: room.token, ...o });
      peers.push(peer);
      return peer;
    },
    async open() {
      const peer = await openPeer(nextServer().wsUrl);
      peers.push(peer);
      return peer;
    },
  };
};

runRoutingSuite('routing (redis store, two instances)', twoInstancesOnRedis);
runFailoverSuite('failover (redis store, two instances)', twoInstancesOnRedis);
