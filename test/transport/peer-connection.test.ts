import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SleapRtcError } from '../../src/errors.js';
import { acceptPeer, connectToPeer, CONTROL_CHANNEL_LABEL, type PeerConnection } from '../../src/transport/peer-connection.js';
import type { ChannelMessage, PeerChannel } from '../../src/transport/channel.js';
import type { SignalMessage } from '../../src/transport/signaler.js';
import { createSignalerPair } from './helpers/memory-signaler.js';
import { connectedPair } from './helpers/peers.js';

function nextMessage(channel: PeerChannel): Promise<ChannelMessage> {
  return new Promise((resolve) => {
    const off = channel.onMessage((m) => {
      off();
      resolve(m);
    });
  });
}

function collect(channel: PeerChannel, count: number): Promise<ChannelMessage[]> {
  const got: ChannelMessage[] = [];
  return new Promise((resolve) => {
    const off = channel.onMessage((m) => {
      got.push(m);
      if (got.length === count) {
        off();
        resolve(got);
      }
    });
  });
}

function isCode(code: string) {
  return (err: unknown) => err instanceof SleapRtcError && err.code === code;
}

test('offerer and answerer get an open control channel that carries text and binary both ways', async (t) => {
  const { offerer, answerer } = await connectedPair(t);
  assert.equal(offerer.control.label, CONTROL_CHANNEL_LABEL);
  assert.equal(answerer.control.label, CONTROL_CHANNEL_LABEL);
  assert.ok(offerer.isOpen && answerer.isOpen);
  assert.equal(offerer.role, 'offerer');
  assert.equal(answerer.remotePeerId, 'peer-a');

  offerer.control.send('hello');
  offerer.control.send(new Uint8Array([1, 2, 3]));
  const [text, bin] = await collect(answerer.control, 2);
  assert.equal(text, 'hello');
  assert.deepEqual(bin, new Uint8Array([1, 2, 3]));

  answerer.control.send('back');
  assert.equal(await nextMessage(offerer.control), 'back');
});

test('messages that arrive before a consumer attaches are queued, not lost, and keep their order', async (t) => {
  const { offerer, answerer } = await connectedPair(t);
  for (let i = 0; i < 20; i++) offerer.control.send(`m${i}`);
  offerer.control.send('last');
  // Nobody listens on the answerer while these arrive; a round trip on another channel shows they have.
  const probe = await offerer.openChannel('probe');
  const probeSeen = new Promise<PeerChannel>((resolve) => answerer.onChannel(resolve));
  probe.send('ping');
  assert.equal(await nextMessage(await probeSeen), 'ping');
  const got = await collect(answerer.control, 21);
  assert.deepEqual(got, [...Array.from({ length: 20 }, (_, i) => `m${i}`), 'last']);
});

test('either side opens more channels; the other receives them by label, even before it listens', async (t) => {
  const { offerer, answerer } = await connectedPair(t);
  const early = await offerer.openChannel('transfer:early');
  early.send('first words');

  const fromAnswerer = answerer.openChannel('transfer:reverse');
  const seenByOfferer = new Promise<PeerChannel>((resolve) => offerer.onChannel(resolve));
  const [mine, theirs] = await Promise.all([fromAnswerer, seenByOfferer]);
  assert.equal(theirs.label, 'transfer:reverse');
  mine.send('x');
  assert.equal(await nextMessage(theirs), 'x');

  const seenByAnswerer = await new Promise<PeerChannel>((resolve) => answerer.onChannel(resolve));
  assert.equal(seenByAnswerer.label, 'transfer:early');
  assert.equal(await nextMessage(seenByAnswerer), 'first words');

  early.close();
  await seenByAnswerer.closed;
  assert.ok(seenByAnswerer.isClosed);
});

test('close() is idempotent, settles `closed`, closes channels, and the remote side notices', async (t) => {
  const { offerer, answerer } = await connectedPair(t);
  const extra = await offerer.openChannel('extra');
  const reasons: string[] = [];
  offerer.onClose((r) => reasons.push(r.code));
  offerer.close();
  offerer.close();
  const reason = await offerer.closed;
  assert.equal(reason.code, 'PEER_CLOSED');
  assert.deepEqual(reasons, ['PEER_CLOSED']);
  assert.ok(extra.isClosed && offerer.control.isClosed);
  assert.throws(() => offerer.control.send('late'), isCode('PEER_CLOSED'));
  await assert.rejects(offerer.openChannel('after-close'), isCode('PEER_CLOSED'));
  await answerer.control.closed;
  assert.ok(answerer.control.isClosed);
});

test('set-up that never completes fails with PEER_CONNECT_TIMEOUT and a sentence about the network', async () => {
  const { a, b } = createSignalerPair('peer-a', 'peer-b', { tamper: () => null });
  const results = await Promise.allSettled([
    connectToPeer({ signaler: a, remotePeerId: 'peer-b', timeoutMs: 400 }),
    acceptPeer({ signaler: b, remotePeerId: 'peer-a', timeoutMs: 400 }),
  ]);
  for (const r of results) {
    assert.equal(r.status, 'rejected');
    const err = (r as PromiseRejectedResult).reason as SleapRtcError;
    assert.equal(err.code, 'PEER_CONNECT_TIMEOUT');
    assert.match(err.message, /TURN/);
  }
});

test('an offer that is not SDP fails the answerer with PEER_CONNECT_FAILED', async () => {
  const tamper = (_from: string, s: SignalMessage): SignalMessage | null => (s.type === 'offer' ? { type: 'offer', sdp: 'v=0 this is not sdp' } : s);
  const { a, b } = createSignalerPair('peer-a', 'peer-b', { tamper });
  const [off, ans] = await Promise.allSettled([
    connectToPeer({ signaler: a, remotePeerId: 'peer-b', timeoutMs: 1500 }),
    acceptPeer({ signaler: b, remotePeerId: 'peer-a', timeoutMs: 1500 }),
  ]);
  assert.equal(ans.status, 'rejected');
  assert.equal(((ans as PromiseRejectedResult).reason as SleapRtcError).code, 'PEER_CONNECT_FAILED');
  assert.equal(off.status, 'rejected');
});

test('candidates that arrive before the answer are held, not dropped', async (t) => {
  let heldAnswer: SignalMessage | null = null;
  const pair = createSignalerPair('peer-a', 'peer-b', {
    tamper: (from, s) => {
      if (from === 'peer-b' && s.type === 'answer') {
        heldAnswer = s;
        return null;
      }
      return s;
    },
  });
  const offering = connectToPeer({ signaler: pair.a, remotePeerId: 'peer-b' });
  const answering = acceptPeer({ signaler: pair.b, remotePeerId: 'peer-a' });
  // Wait until the answerer has produced its answer and candidates, then release the answer last.
  while (heldAnswer === null || !pair.b.sent.some((s) => s.type === 'candidate')) {
    await new Promise((r) => setTimeout(r, 10));
  }
  pair.a.deliver('peer-b', heldAnswer);
  const [offerer, answerer] = await Promise.all([offering, answering]);
  t.after(() => {
    offerer.close();
    answerer.close();
  });
  offerer.control.send('ok');
  assert.equal(await nextMessage(answerer.control), 'ok');
});

test('an AbortSignal cancels set-up', async () => {
  const { a } = createSignalerPair('peer-a', 'peer-b', { tamper: () => null });
  const ac = new AbortController();
  const p = connectToPeer({ signaler: a, remotePeerId: 'peer-b', signal: ac.signal, timeoutMs: 10_000 });
  setImmediate(() => ac.abort());
  await assert.rejects(p, (err: unknown) => err instanceof SleapRtcError && err.code === 'PEER_CONNECT_FAILED' && /cancelled/.test(err.message));
});

test('malformed ICE server entries are refused with a sentence naming the expected form', async () => {
  const { a } = createSignalerPair();
  for (const urls of ['http://example.org', 'turn:relay.example.org:3478']) {
    await assert.rejects(
      connectToPeer({ signaler: a, remotePeerId: 'peer-b', iceServers: [{ urls }] }),
      (err: unknown) => err instanceof SleapRtcError && err.code === 'PEER_CONNECT_FAILED' && /\[ice\] servers/.test(err.message),
    );
  }
});

test('a peer whose remote side closes settles closed on both ends', async (t) => {
  const { offerer, answerer } = await connectedPair(t);
  const channel: PeerConnection = answerer;
  offerer.close();
  await channel.control.closed;
  assert.ok(channel.control.isClosed);
});

test('the offerer sends no ICE candidate before the answer has come back (DTLS fingerprint race)', async (t) => {
  // Sent early, offerer candidates let the answerer start DTLS before the offerer can verify it.
  const order: string[] = [];
  await connectedPair(t, {
    tamper: (from, signal) => {
      order.push(`${from}:${signal.type}`);
      return signal;
    },
  });
  const answerAt = order.indexOf('peer-b:answer');
  const firstOffererCandidate = order.indexOf('peer-a:candidate');
  assert.ok(answerAt >= 0, 'the answer was signalled');
  assert.ok(firstOffererCandidate > answerAt, `offerer candidates came after the answer: ${order.join(', ')}`);
});
