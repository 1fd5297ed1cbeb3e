/** Shared set-up for the server tests: a real server on 127.0.0.1:0 and peers that are cleaned up after the test. */
import type { TestContext } from 'node:test';
import { createMemoryBus } from '../../src/signaling/buses/memory.js';
import { startSignalingServer, type SignalingServer, type SignalingServerOptions } from '../../src/signaling/server.js';
import type { SignalingStore } from '../../src/signaling/store.js';
import { createMemoryStore } from '../../src/signaling/stores/memory.js';
import { openPeer, registerPeer, type RegisterOptions, type TestPeer } from '../helpers/ws-peer.js';

export interface Harness {
  server: SignalingServer;
  room: { room_id: string; token: string };
  /** Registers a peer in `room` (or the room given) and closes it after the test. */
  join(opts?: Partial<RegisterOptions>): Promise<TestPeer>;
  /** Opens an unregistered peer, closed after the test. */
  open(): Promise<TestPeer>;
}

/** How a suite gets its servers: one in-process server (startHarness), or several on one store. */
export type HarnessStart = (t: TestContext, opts?: SignalingServerOptions) => Promise<Harness>;

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

/**
 * Two server instances sharing one memory store and one in-process bus (the seam a Redis store
 * and bus will fill), plus a list whose peers are closed after the test along with everything else.
 */
export async function startTwoInstances(t: TestContext): Promise<{ a: SignalingServer; b: SignalingServer; store: SignalingStore; peers: TestPeer[] }> {
  const store = createMemoryStore();
  const bus = createMemoryBus();
  const a = await startSignalingServer({ port: 0, store, bus, nodeId: 'node-a' });
  const b = await startSignalingServer({ port: 0, store, bus, nodeId: 'node-b' });
  const peers: TestPeer[] = [];
  t.after(async () => {
    await Promise.all(peers.map((p) => p.close()));
    await a.close();
    await b.close();
    await store.close();
    await bus.close();
  });
  return { a, b, store, peers };
}
