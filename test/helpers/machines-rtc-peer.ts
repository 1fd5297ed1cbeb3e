/**
 * Throwaway WebRTC peer used to prove that node-datachannel connects across simulated machines
 * (src/transport did not exist when the harness was written). Signaling is JSON lines over plain
 * TCP; the data channel then carries random bytes whose SHA-256 the answerer sends back. Progress and
 * results are JSON lines on stdout, connection states on stderr (RTC_PEER_DEBUG=1: library log too).
 *
 *   answer LISTEN_ADDR            -> {"event":"listening","port":N} ... {"event":"done",...}
 *   offer ADDR PORT BYTES         -> {"event":"done","ok":true,"sha256":...,"selected":{...}}
 *
 * Signaling order matters. If the offer carries the offerer's candidates, the answerer can finish ICE
 * and start its DTLS handshake (it takes the client role) before the offerer has applied the answer;
 * the offerer then cannot check the answerer's certificate fingerprint, rejects it ("unknown CA") and
 * the connection fails. On a zero-latency link that happened in about 1 run in 10. So the offerer
 * withholds its candidates until it has applied the answer:
 *   offerer -> {sdp (no candidates), type}   answerer -> {sdp, type}   offerer -> {candidates, mid}
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer, connect, type Socket } from 'node:net';
import { createInterface } from 'node:readline';
import nodeDataChannel, { type DataChannel, type PeerConnection } from 'node-datachannel';
import { LIMITS } from '../../src/limits.js';

if (process.env.RTC_PEER_DEBUG === '1') nodeDataChannel.initLogger('Debug', (l, m) => process.stderr.write(`[${l}] ${m}\n`));
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

/** Reads a socket as JSON lines, one object per call. */
function jsonLinesOf(sock: Socket): () => Promise<unknown> {
  const lines = createInterface({ input: sock })[Symbol.asyncIterator]();
  return async () => {
    const r = await lines.next();
    if (r.done === true) fail('signaling socket closed early');
    return JSON.parse(r.value as string) as unknown;
  };
}

/** Connection progress goes to stderr, so a failing test can show how far the peers got. */
function trace(pc: PeerConnection, who: string): void {
  const t0 = Date.now();
  const log = (what: string, v: string): void => {
    process.stderr.write(`${who} +${Date.now() - t0}ms ${what} ${v}\n`);
  };
  pc.onStateChange((v) => log('state', v));
  pc.onIceStateChange((v) => log('ice', v));
  pc.onSignalingStateChange((v) => log('signaling', v));
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

function withoutCandidates(sdp: string): string {
  return sdp
    .split('\r\n')
    .filter((l) => !l.startsWith('a=candidate:') && l !== 'a=end-of-candidates')
    .join('\r\n');
}

function midOf(sdp: string): string {
  return /^a=mid:(\S+)/m.exec(sdp)?.[1] ?? '0';
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
  const next = jsonLinesOf(sock);
  const offer = (await next()) as { sdp: string; type: string };
  const pc = new nodeDataChannel.PeerConnection('answerer', { iceServers: [] });
  trace(pc, 'answerer');
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
  sock.write(JSON.stringify(d) + '\n');
  const late = (await next()) as { candidates: string[]; mid: string };
  for (const c of late.candidates) pc.addRemoteCandidate(c, late.mid);
  sock.end();
}

async function offer(host: string, port: number, total: number): Promise<void> {
  const sock = connect(port, host);
  await new Promise<void>((r, j) => sock.once('connect', r).once('error', j));
  const pc = new nodeDataChannel.PeerConnection('offerer', { iceServers: [] });
  trace(pc, 'offerer');
  const local = gathered(pc);
  const dc = pc.createDataChannel('probe');
  const d = await local;
  const next = jsonLinesOf(sock);
  sock.write(JSON.stringify({ sdp: withoutCandidates(d.sdp), type: d.type }) + '\n');
  const remote = (await next()) as { sdp: string; type: string };
  pc.setRemoteDescription(remote.sdp, 'answer');
  sock.end(JSON.stringify({ candidates: candidatesOf(d.sdp), mid: midOf(d.sdp) }) + '\n');

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
