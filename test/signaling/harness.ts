/** Shared set-up for the server tests: a real server on 127.0.0.1:0 and peers that are cleaned up after the test. */
import type { TestContext } from 'node:test';
import { startSignalingServer, type SignalingServer, type SignalingServerOptions } from '../../src/signaling/server.js';
import { openPeer, registerPeer, type RegisterOptions, type TestPeer } from '../helpers/ws-peer.js';

export interface Harness {
  server: SignalingServer;
  room: { room_id: string; token: string };
  /** Registers a peer in `room` (or the room given) and closes it after the test. */
  join(opts?: Partial<RegisterOptions>): Promise<TestPeer>;
  /** Opens an unregistered peer, closed after the test. */
  open(): Promise<TestPeer>;
}

export async function startHarness(t: TestContext, opts: SignalingServerOptions = {}): Promise<Harness> {
  const server = await startSignalingServer({ host: '127.0.0.1', port: 0, ...opts });
  const peers: TestPeer[] = [];
  t.after(async () => {
    await Promise.all(peers.map((p) => p.close()));
    await server.close();
  });
  const room = await server.createRoom();
  return {
    server,
    room,
    async join(o = {}) {
      const peer = await registerPeer(server.wsUrl, { room_id: room.room_id, token: room.token, ...o });
      peers.push(peer);
      return peer;
    },
    async open() {
      const peer = await openPeer(server.wsUrl);
      peers.push(peer);
      return peer;
    },
  };
}
