/** Shared set-up for the routing tests: a room with three differently equipped workers, and request helpers. */
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { ServerToPeerSchema } from '../../src/protocol/signaling.js';
import type { SignalingServerOptions } from '../../src/signaling/server.js';
import { workerMetadata, type Msg, type TestPeer } from '../helpers/ws-peer.js';
import { startHarness, type Harness, type HarnessStart } from './harness.js';

export interface Assigned extends Msg {
  request_id: string;
  reservation_id: string;
  worker: { peer_id: string; metadata: Record<string, unknown> };
  claim_timeout_ms: number;
  reassigned_from?: { peer_id: string; reason: string };
}

export interface Position extends Msg {
  request_id: string;
  position: number;
  queue_length: number;
  matching_workers: number;
}

export interface ErrorMsg extends Msg {
  code: string;
  message: string;
  details?: Record<string, unknown>;
  request_id?: string;
}

export interface ThreeWorkers {
  h: Harness;
  /** Backend `vast`, named "vast-box". */
  vast: TestPeer;
  /** Backends `vast` and `scratch`. */
  both: TestPeer;
  /** No backend: transfer jobs only. */
  none: TestPeer;
  client(peerId?: string): Promise<TestPeer>;
}

export async function threeWorkers(t: TestContext, opts: SignalingServerOptions = {}, start: HarnessStart = startHarness): Promise<ThreeWorkers> {
  const h = await start(t, opts);
  const vast = await h.join({ role: 'worker', peer_id: 'w-vast', metadata: workerMetadata(['vast'], { name: 'vast-box' }) });
  const both = await h.join({ role: 'worker', peer_id: 'w-both', metadata: workerMetadata(['vast', 'scratch'], { name: 'both-box' }) });
  const none = await h.join({ role: 'worker', peer_id: 'w-none', metadata: workerMetadata([], { name: 'plain-box' }) });
  return { h, vast, both, none, client: (peer_id) => h.join({ role: 'client', ...(peer_id !== undefined ? { peer_id } : {}) }) };
}

export function ask(client: TestPeer, requestId: string, fields: Record<string, unknown> = {}): void {
  client.send({ type: 'request_worker', request_id: requestId, job_type: 'train', ...fields });
}

/** The next routing answer for this request: an assignment, a queue position or an error. */
export function answer(client: TestPeer, requestId: string): Promise<Assigned | Position | ErrorMsg> {
  return client.next(['worker_assigned', 'queue_position', 'error'], (m) => m.request_id === requestId);
}

export function assigned(client: TestPeer, requestId: string, timeoutMs?: number): Promise<Assigned> {
  return client.next<Assigned>('worker_assigned', (m) => m.request_id === requestId, timeoutMs);
}

export function position(client: TestPeer, requestId: string, where?: (m: Position) => boolean): Promise<Position> {
  return client.next<Position>('queue_position', (m) => m.request_id === requestId && (where === undefined || where(m)));
}

export function errorFor(client: TestPeer, requestId: string): Promise<ErrorMsg> {
  return client.next<ErrorMsg>('error', (m) => m.request_id === requestId);
}

/** Asks and expects an assignment (fails the test with whatever came instead). */
export async function askAssigned(client: TestPeer, requestId: string, fields: Record<string, unknown> = {}): Promise<Assigned> {
  ask(client, requestId, fields);
  const reply = await answer(client, requestId);
  assert.equal(reply.type, 'worker_assigned', JSON.stringify(reply));
  return reply as Assigned;
}

export async function askQueued(client: TestPeer, requestId: string, fields: Record<string, unknown> = {}): Promise<Position> {
  ask(client, requestId, fields);
  const reply = await answer(client, requestId);
  assert.equal(reply.type, 'queue_position', JSON.stringify(reply));
  return reply as Position;
}

/** The last queue_position this peer got for the request, after a round trip. */
export async function lastPosition(client: TestPeer, requestId: string): Promise<Position | undefined> {
  await client.barrier();
  return client.received.filter((m): m is Position => m.type === 'queue_position' && m.request_id === requestId).at(-1);
}

/** Every frame the server sent must be a valid server -> peer message. */
export function assertAllValid(...peers: TestPeer[]): void {
  for (const p of peers) {
    for (const m of p.received) assert.equal(ServerToPeerSchema.safeParse(m).success, true, JSON.stringify(m));
  }
}
