/**
 * A real WebRTC connection negotiated between two peers on different `sleap-rtc server` processes
 * on one real redis-server: every offer, answer and ICE candidate crosses Redis pub/sub, and the
 * data channel that opens carries bytes both ways.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { acceptPeer, connectToPeer } from '../../src/transport/peer-connection.js';
import { releaseRtc } from '../../src/transport/rtc.js';
import { SignalingClient } from '../../src/transport/signaling-client.js';
import type { ChannelMessage, PeerChannel } from '../../src/transport/channel.js';
import { createRoomOn, type RunningServer } from './cli-server.js';
import { json, redisFor, servers } from './scale-out-helpers.js';

after(() => releaseRtc());

function nextMessage(channel: PeerChannel): Promise<ChannelMessage> {
  return new Promise((resolve) => {
    const off = channel.onMessage((m) => {
      off();
      resolve(m);
    });
  });
}

test('two processes on one Redis: a client on one and a worker on the other open a real WebRTC data channel (offer, answer, candidates through Redis)', async (t) => {
  const redis = await redisFor(t);
  const [a, b] = (await servers(t, redis, 2)) as [RunningServer, RunningServer];
  const room = await createRoomOn(a.url);
  const connect = (server: RunningServer, role: 'worker' | 'client', peerId: string): Promise<SignalingClient> =>
    SignalingClient.connect({ serverUrl: server.url, roomId: room.room_id, token: room.token, role, peerId });
  const worker = await connect(a, 'worker', 'gpu');
  t.after(() => worker.close());
  const client = await connect(b, 'client', 'laptop');
  t.after(() => client.close());

  const [offerer, answerer] = await Promise.all([
    connectToPeer({ signaler: client, remotePeerId: 'gpu', timeoutMs: 60_000 }),
    acceptPeer({ signaler: worker, remotePeerId: 'laptop', timeoutMs: 60_000 }),
  ]);
  t.after(() => {
    offerer.close();
    answerer.close();
  });
  offerer.control.send('over a channel negotiated through two processes');
  assert.equal(await nextMessage(answerer.control), 'over a channel negotiated through two processes');
  answerer.control.send(new Uint8Array([1, 2, 3]));
  assert.deepEqual(await nextMessage(offerer.control), new Uint8Array([1, 2, 3]));

  // The negotiation crossed processes: each relayed what its own peer sent to the other.
  for (const s of [a, b]) {
    const m = (await json(`${s.url}/metrics`)).body as { messages_relayed: number; cross_process: { sent: number; received: number } };
    assert.ok(m.messages_relayed >= 1 && m.cross_process.sent >= 1 && m.cross_process.received >= 1, JSON.stringify(m));
  }
});
