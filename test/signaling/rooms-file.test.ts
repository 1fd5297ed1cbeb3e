/** The embedded store's rooms file through the real CLI: a server killed and started again knows its rooms. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openPeer, registerPeer, type Msg } from '../helpers/ws-peer.js';
import { createRoomOn, startCliServer } from './cli-server.js';

test('server --rooms-file: after SIGKILL and a restart the room and its token still work; an unknown room is ROOM_NOT_FOUND (4004)', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'sleap-rtc-roomsfile-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'rooms.json');
  const first = await startCliServer(t, ['--port', '0', '--rooms-file', file]);
  assert.match(first.stderr(), new RegExp(`rooms kept in ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
  const room = await createRoomOn(first.url);
  assert.ok((await readFile(file, 'utf8')).includes(room.room_id), 'on disk before POST /rooms answered');
  assert.ok(!(await readFile(file, 'utf8')).includes(room.token), 'only the token digest is kept');
  first.child.kill('SIGKILL');
  await first.exit;

  const second = await startCliServer(t, ['--port', '0', '--rooms-file', file]);
  const worker = await registerPeer(second.wsUrl, { ...room, role: 'worker', peer_id: 'gpu' });
  t.after(() => worker.close());
  assert.equal(worker.peerId, 'gpu');
  const stranger = await openPeer(second.wsUrl);
  t.after(() => stranger.close());
  stranger.send({ type: 'register', room_id: 'nosuchroom', token: room.token, role: 'worker', metadata: {} });
  assert.equal((await stranger.next<Msg & { code: string }>('error')).code, 'ROOM_NOT_FOUND');
  assert.equal((await stranger.closed).code, 4004);
});
