import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Redis } from 'ioredis';
import { createRedisBus } from '../../../src/signaling/buses/redis.js';
import { connectRedis } from '../../../src/signaling/stores/redis.js';
import { waitFor } from '../../helpers/ws-peer.js';
import { captureLogger } from '../log-capture.js';
import { startRedisServer, type RedisServer } from '../redis-server.js';
import { runBusContract } from './bus-contract.js';

let server: RedisServer;
const connections: Redis[] = [];

before(async () => {
  server = await startRedisServer();
});
after(async () => {
  for (const c of connections) c.disconnect();
  await server.stop();
});

async function bus(nodeId: string, logger = captureLogger().logger): Promise<Awaited<ReturnType<typeof createRedisBus>>> {
  const { redis } = await connectRedis(server.url, 'test');
  connections.push(redis);
  return createRedisBus(redis, nodeId, logger);
}

runBusContract('redis bus', (logger) => bus('node-x', logger));

test('redis bus: messages cross processes (two connections) and are counted as remote only on the receiving side', async (t) => {
  const a = await bus('node-a');
  const b = await bus('node-b');
  t.after(async () => {
    await a.close();
    await b.close();
  });
  const got: string[] = [];
  b.subscribe('peer:p', (m) => got.push(m.frame));
  await b.settled();
  await a.publish('peer:p', { frame: 'hello' });
  await waitFor(() => got.length === 1, 5000, 'the message on b');
  assert.deepEqual(got, ['hello']);
  assert.equal(a.counters.published, 1);
  assert.equal(b.counters.received_remote, 1);
  assert.equal(a.counters.received_remote, 0);
});
