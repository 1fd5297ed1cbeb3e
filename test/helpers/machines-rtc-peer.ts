/**
 * Throwaway WebRTC peer used to prove that node-datachannel connects across simulated machines
 * (src/transport did not exist when the harness was written). The offer/answer exchange is one JSON
 * line each way over plain TCP; the data channel then carries random bytes whose SHA-256 the answerer
 * sends back. Progress and results are JSON lines on stdout.
 *
 *   answer LISTEN_ADDR            -> {"event":"listening","port":N} ... {"event":"done",...}
 *   offer ADDR PORT BYTES         -> {"event":"done","ok":true,"sha256":...,"selected":{...}}
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer, connect, type Socket } from 'node:net';
import nodeDataChannel, { type DataChannel, type PeerConnection } from 'node-datachannel';
import { LIMITS } from '../../src/limits.js';

const CHUNK = 16 * 1024;
const HIGH_WATER = 1024 * 1024;

function emit(obj: Record<string, unknown>): void {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

function fail(message: string): never {
  emit({ event: 'error', message });
  process.exit(1);
}

// A peer that never connects must not outlive the test that started it.
setTimeout(() => fail('timed out'), LIMITS.peerConnectTimeoutMs + 10_000).unref();

function readLine(sock: Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const onData = (d: string): void => {
      buf += d;
      const i = buf.indexOf('\n');
      if (i >= 0) {
        sock.off('data', onData);
        resolve(buf.slice(0, i));
      }
    };
    sock.setEncoding('utf8').on('data', onData);
    sock.once('error', reject);
    sock.once('end', () => reject(new Error('signaling socket closed early')));
  });
}

/** Resolves with the full local description once every host candidate is in it (no trickle). */
function gathered(pc: PeerConnection): Promise<{ sdp: string; type: string }> {
  return new Promise((resolve) => {
    pc.onGatheringStateChange((state) => {
      if (state !== 'complete') return;
      const d = pc.localDescription();
      if (d === null) fail('gathering completed without a local description');
      resolve(d);
    });
  });
}

function candidatesOf(sdp: string): string[] {
  return sdp.split(/\r?\n/).filter((l) => l.startsWith('a=candidate:')).map((l) => l.slice(2));
}

function finish(pc: PeerConnection, code: number): void {
  pc.close();
  nodeDataChannel.cleanup();
  process.exit(code);
}

async function answer(listenAddr: string): Promise<void> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, listenAddr, r));
  const addr = server.address();
  if (addr === null || typeof addr === 'string') fail('no TCP address');
  emit({ event: 'listening', port: addr.port });
  const sock = await new Promise<Socket>((r) => server.once('connection', r));
  server.close();
  const offer = JSON.parse(await readLine(sock)) as { sdp: string; type: string };
  const pc = new nodeDataChannel.PeerConnection('answerer', { iceServers: [] });
  const local = gathered(pc);
  const hash = createHash('sha256');
  let bytes = 0;
  pc.onDataChannel((dc: DataChannel) => {
    dc.onMessage((msg) => {
      if (typeof msg === 'string') {
        dc.sendMessage(JSON.stringify({ bytes, sha256: hash.digest('hex') }));
        return;
      }
      const b = Buffer.from(msg as ArrayBuffer);
      bytes += b.length;
      hash.update(b);
    });
    // The offerer closes after it has the digest, so nothing is cut off mid-send.
    dc.onClosed(() => {
      emit({ event: 'done', bytes, selected: pc.getSelectedCandidatePair() });
      finish(pc, 0);
    });
  });
  pc.setRemoteDescription(offer.sdp, 'offer');
  const d = await local;
  sock.end(JSON.stringify(d) + '\n');
}

async function offer(host: string, port: number, total: number): Promise<void> {
  const sock = connect(port, host);
  await new Promise<void>((r, j) => sock.once('connect', r).once('error', j));
  const pc = new nodeDataChannel.PeerConnection('offerer', { iceServers: [] });
  const local = gathered(pc);
  const dc = pc.createDataChannel('probe');
  const d = await local;
  sock.write(JSON.stringify(d) + '\n');
  const remote = JSON.parse(await readLine(sock)) as { sdp: string; type: string };
  sock.destroy();
  pc.setRemoteDescription(remote.sdp, 'answer');

  const payload = randomBytes(total);
  const sha256 = createHash('sha256').update(payload).digest('hex');
  dc.setBufferedAmountLowThreshold(HIGH_WATER / 4);
  dc.onOpen(() => {
    let off = 0;
    const pump = (): void => {
      while (off < total && dc.bufferedAmount() < HIGH_WATER) {
        dc.sendMessageBinary(payload.subarray(off, Math.min(off + CHUNK, total)));
        off += CHUNK;
      }
      if (off >= total) dc.sendMessage('end');
    };
    dc.onBufferedAmountLow(() => {
      if (off < total) pump();
    });
    pump();
  });
  dc.onMessage((msg) => {
    const got = JSON.parse(String(msg)) as { bytes: number; sha256: string };
    const ok = got.bytes === total && got.sha256 === sha256;
    emit({
      event: 'done',
      ok,
      bytes: got.bytes,
      sha256,
      remoteSha256: got.sha256,
      selected: pc.getSelectedCandidatePair(),
      localCandidates: candidatesOf(d.sdp),
      remoteCandidates: candidatesOf(remote.sdp),
    });
    dc.close();
    // Give the close a moment to reach the answerer before the process (and its SCTP stack) goes.
    setTimeout(() => finish(pc, ok ? 0 : 1), 200);
  });
}

const [mode, ...rest] = process.argv.slice(2);
if (mode === 'answer' && rest[0] !== undefined) {
  await answer(rest[0]);
} else if (mode === 'offer' && rest.length === 3) {
  await offer(rest[0] ?? '', Number(rest[1]), Number(rest[2]));
} else {
  fail('usage: answer LISTEN_ADDR | offer ADDR PORT BYTES');
}
