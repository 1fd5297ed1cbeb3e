/**
 * Rooms on Redis are kept until deleted: real `sleap-rtc server --store redis://...` processes
 * with a one-second room_idle_ttl_s leave an empty room alone far past it, every process is
 * stopped and new ones started, and the room and its token still work; only DELETE removes it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join as joinPath } from 'node:path';
import { openPeer, workerMetadata } from '../helpers/ws-peer.js';
import { createRoomOn, startCliServer, type RunningServer } from './cli-server.js';
import { join, redisFor } from './scale-out-helpers.js';

test('rooms on Redis outlive their idle TTL and every server process; only DELETE removes them', async (t) => {
  const redis = await redisFor(t);
  const dir = await mkdtemp(joinPath(tmpdir(), 'sleap-rtc-rooms-kept-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const config = joinPath(dir, 'server.toml');
  // The idle TTL applies to the memory store; with Redis it must not remove anything.
  // The store by its [signaling] key (issue 12), the idle TTL in [server].
  await writeFile(config, `[signaling]\nstore = "${redis.url}"\n[server]\nroom_idle_ttl_s = 1\n`);
  const start = (): Promise<RunningServer> => startCliServer(t, ['--port', '0', '--config', config]);

  const [a, b] = await Promise.all([start(), start()]);
  const room = await createRoomOn(a.url);
  const early = await join(t, b, room, { role: 'worker', peer_id: 'gpu', metadata: workerMetadata(['vast']) });
  await early.close();
  // Empty for several idle TTLs, with both processes sweeping (every 0.5 s at this TTL).
  await new Promise((r) => setTimeout(r, 3_500));
  const metrics = (await (await fetch(`${a.url}/metrics`)).json()) as { rooms: number; rooms_expired: number };
  assert.deepEqual([metrics.rooms, metrics.rooms_expired], [1, 0], 'nothing expired');

  // Every server process goes; new ones come up on the same Redis.
  for (const s of [a, b]) {
    s.child.kill('SIGTERM');
    assert.equal((await s.exit).code, 0);
  }
  const [c, d] = await Promise.all([start(), start()]);
  const back = await join(t, d, room, { role: 'worker', peer_id: 'gpu', metadata: workerMetadata(['vast']) });
  assert.equal(back.peerId, 'gpu', 'the room and its token survived every process restarting');
  const client = await join(t, c, room, { role: 'client', peer_id: 'laptop' });
  assert.deepEqual((client.registered?.peers as { peer_id: string }[]).map((p) => p.peer_id), ['gpu']);

  const wrong = await openPeer(c.wsUrl);
  wrong.send({ type: 'register', room_id: room.room_id, token: `${room.token}x`, role: 'client', metadata: {} });
  assert.equal((await wrong.next('error', undefined, 60_000)).code, 'INVALID_TOKEN', 'the token is still checked');
  await wrong.close();

  const del = await fetch(`${c.url}/rooms/${room.room_id}`, { method: 'DELETE', headers: { authorization: `Bearer ${room.token}` } });
  assert.equal(del.status, 200);
  // A member on another process hears it through Redis; its process closes it once its record is gone.
  assert.equal((await back.next('error', undefined, 60_000)).code, 'ROOM_DELETED');
  await back.closed;
  const late = await openPeer(d.wsUrl);
  late.send({ type: 'register', room_id: room.room_id, token: room.token, role: 'client', metadata: {} });
  assert.equal((await late.next('error', undefined, 60_000)).code, 'ROOM_DELETED');
  await late.close();
});
