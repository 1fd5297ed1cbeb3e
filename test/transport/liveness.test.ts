/**
 * The PING check of a peer over a real WebRTC pair: a peer that is busy sending a file (its PONG
 * would wait behind the file's data) is alive because its data arrives; a peer that sends nothing
 * and answers nothing is gone.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PeerLiveness } from '../../src/transport/liveness.js';
import { connectedPair } from './helpers/peers.js';

test('a peer that sends data but never answers the PING is alive: every frame on any channel counts', async (t) => {
  const { offerer, answerer } = await connectedPair(t);
  const liveness = new PeerLiveness();
  answerer.onActivity(() => liveness.heard());
  const held: unknown[] = [];
  answerer.onChannel((c) => c.onMessage((m) => held.push(m)));
  // The offerer reads nothing on control (so no PONG ever), and streams on a channel of its own.
  const data = await offerer.openChannel('transfer:busy');
  const chunk = new Uint8Array(64 * 1024);
  const pump = setInterval(() => {
    if (data.isOpen && data.bufferedAmount < 1024 * 1024) data.send(chunk);
  }, 20);
  t.after(() => clearInterval(pump));
  const pings: string[] = [];
  const alive = await liveness.probe((nonce) => {
    pings.push(nonce);
    answerer.control.send(JSON.stringify({ type: 'PING', nonce }));
  }, 2_000);
  assert.equal(alive, true);
  assert.equal(pings.length, 1);
  assert.ok(held.length > 0);
});

test('a peer that sends nothing and answers nothing is gone after the window', async (t) => {
  const { offerer, answerer } = await connectedPair(t);
  const liveness = new PeerLiveness();
  answerer.onActivity(() => liveness.heard());
  offerer.control.onMessage(() => {});
  const started = Date.now();
  const alive = await liveness.probe((nonce) => answerer.control.send(JSON.stringify({ type: 'PING', nonce })), 500);
  assert.equal(alive, false);
  assert.ok(Date.now() - started >= 450);
});
