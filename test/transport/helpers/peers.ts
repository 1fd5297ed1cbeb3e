/** A connected pair of real WebRTC peer connections in this process, closed by the test's after hook. */
import { after, type TestContext } from 'node:test';
import { releaseRtc } from '../../../src/transport/rtc.js';
import { acceptPeer, connectToPeer, type PeerConnection } from '../../../src/transport/peer-connection.js';
import { createSignalerPair, type MemorySignalerOptions } from './memory-signaler.js';

export async function connectedPair(
  t: TestContext | { after: (fn: () => void) => void },
  signaling: MemorySignalerOptions = {},
): Promise<{ offerer: PeerConnection; answerer: PeerConnection }> {
  const { a, b } = createSignalerPair('peer-a', 'peer-b', signaling);
  const [offerer, answerer] = await Promise.all([
    connectToPeer({ signaler: a, remotePeerId: 'peer-b' }),
    acceptPeer({ signaler: b, remotePeerId: 'peer-a' }),
  ]);
  t.after(() => {
    offerer.close();
    answerer.close();
  });
  return { offerer, answerer };
}

// After the last test of a file: release node-datachannel so the test process can exit.
after(() => releaseRtc());
