/**
 * One side of a bench:transfer case, run as its own process so that its peak RSS is its own.
 * Joins the room through the real signaling server, connects over WebRTC, and then either
 *  - mode "raw": node-datachannel's W3C polyfill alone, the sender blasting one in-memory buffer
 *    with the same chunk size and bufferedAmount thresholds the project uses (the baseline), or
 *  - mode "file": this project's sendFile -> receiveTransfer, disk to disk, hashed and verified.
 * Prints `{"ready":"<peer id>"}` once registered (receiver), and one JSON result line at the end.
 *
 *   transfer-peer.ts <sender|receiver> <raw|file> <json options>
 */
import { LIMITS } from '../src/limits.js';
import { receiveTransfer } from '../src/transport/file-receive.js';
import { sendFile } from '../src/transport/file-send.js';
import { acceptPeer, connectToPeer } from '../src/transport/peer-connection.js';
import { defaultRtc, type RtcDataChannel, type RtcPeerConnection } from '../src/transport/rtc.js';
import type { SignalMessage } from '../src/transport/signaler.js';
import { SignalingClient } from '../src/transport/signaling-client.js';

export interface PeerArgs {
  serverUrl: string;
  roomId: string;
  token: string;
  /** Sender only: the receiver's peer id. */
  target?: string;
  /** raw: bytes to blast. */
  bytes?: number;
  /** file: the file to send (sender) or the folder to receive into (receiver). */
  path?: string;
  chunkBytes: number;
  highWaterBytes: number;
  lowWaterBytes: number;
  windowBytes: number;
}

const [role, mode, json] = process.argv.slice(2);
const args = JSON.parse(json ?? '{}') as PeerArgs;

function finish(result: Record<string, unknown>): never {
  const maxRssMb = process.resourceUsage().maxRSS / 1024;
  process.stdout.write(`${JSON.stringify({ ...result, max_rss_mb: Math.round(maxRssMb * 10) / 10 })}\n`);
  // node-datachannel's native threads can outlive every JS handle; the result is out, so leave.
  process.exit(0);
}

const signaling = await SignalingClient.connect({ serverUrl: args.serverUrl, roomId: args.roomId, token: args.token, role: 'client' });

if (role === 'receiver') {
  process.stdout.write(`${JSON.stringify({ ready: signaling.peerId })}\n`);
  const from = await new Promise<string>((resolve) => signaling.once('offer', resolve));
  if (mode === 'raw') await rawReceiver(from);
  else await fileReceiver(from);
} else {
  const target = args.target as string;
  if (mode === 'raw') await rawSender(target);
  else await fileSender(target);
}

async function fileSender(target: string): Promise<void> {
  const c0 = performance.now();
  const peer = await connectToPeer({ signaler: signaling, remotePeerId: target });
  const connectMs = performance.now() - c0;
  const t0 = performance.now();
  const result = await sendFile(peer, args.path as string, {
    chunkBytes: args.chunkBytes,
    highWaterBytes: args.highWaterBytes,
    lowWaterBytes: args.lowWaterBytes,
    windowBytes: args.windowBytes,
  });
  const totalMs = performance.now() - t0;
  peer.close();
  finish({ size: result.size, sha256: result.sha256, connect_ms: connectMs, total_ms: totalMs, wire_ms: result.durationMs, hash_ms: totalMs - result.durationMs });
}

async function fileReceiver(from: string): Promise<void> {
  const peer = await acceptPeer({ signaler: signaling, remotePeerId: from });
  const channel = await new Promise<Parameters<typeof receiveTransfer>[0]>((resolve) => {
    const off = peer.onChannel((c) => {
      off();
      resolve(c);
    });
  });
  const result = await receiveTransfer(channel, { destDir: args.path as string, windowBytes: args.windowBytes });
  // The sender closes the connection once it has our TRANSFER_ACK; leaving earlier could lose it.
  await Promise.race([peer.closed, new Promise((resolve) => setTimeout(resolve, LIMITS.transferLingerMs))]);
  finish({ size: result.size, sha256: result.sha256, path: result.path, receive_ms: result.durationMs });
}

/**
 * A bare polyfill connection with one data channel, signalled through the same server. The
 * offerer holds its candidates until the answer is applied, as the project does (a DTLS race
 * on loopback otherwise).
 */
async function rawConnect(remote: string, offerer: boolean): Promise<{ pc: RtcPeerConnection; channel: RtcDataChannel }> {
  const Rtc = await defaultRtc();
  const pc = new Rtc({ iceServers: [] });
  let described = false;
  const held: SignalMessage[] = [];
  pc.addEventListener('icecandidate', (ev) => {
    if (!ev.candidate?.candidate) return;
    const signal: SignalMessage = { type: 'candidate', candidate: ev.candidate.candidate, mid: ev.candidate.sdpMid ?? '0' };
    if (offerer && !described) held.push(signal);
    else signaling.sendSignal(remote, signal);
  });
  const pending: { candidate: string; sdpMid: string }[] = [];
  signaling.onSignal(remote, (signal) => {
    void (async () => {
      if (signal.type === 'candidate') {
        const c = { candidate: signal.candidate, sdpMid: signal.mid };
        if (described) await pc.addIceCandidate(c).catch(() => {});
        else pending.push(c);
        return;
      }
      await pc.setRemoteDescription(signal);
      described = true;
      for (const s of held.splice(0)) signaling.sendSignal(remote, s);
      for (const c of pending.splice(0)) await pc.addIceCandidate(c).catch(() => {});
      if (!offerer) {
        const answer = await pc.createAnswer();
        await pc.setLocalDescription(answer);
        signaling.sendSignal(remote, { type: 'answer', sdp: String(answer.sdp ?? '') });
      }
    })();
  });
  let channel: RtcDataChannel;
  if (offerer) {
    channel = pc.createDataChannel('raw', { ordered: true });
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    signaling.sendSignal(remote, { type: 'offer', sdp: String(offer.sdp ?? '') });
  } else {
    channel = await new Promise<RtcDataChannel>((resolve) => pc.addEventListener('datachannel', (ev) => resolve(ev.channel)));
  }
  channel.binaryType = 'arraybuffer';
  if (channel.readyState !== 'open') await new Promise((resolve) => channel.addEventListener('open', resolve));
  return { pc, channel };
}

async function rawSender(target: string): Promise<void> {
  const c0 = performance.now();
  const { pc, channel } = await rawConnect(target, true);
  const connectMs = performance.now() - c0;
  const total = args.bytes as number;
  // One chunk, sent again and again: the baseline is the channel, not the disk or the allocator.
  const chunk = new Uint8Array(args.chunkBytes).fill(7);
  channel.bufferedAmountLowThreshold = args.lowWaterBytes;
  const done = new Promise<void>((resolve) => channel.addEventListener('message', () => resolve()));
  let wake: (() => void) | null = null;
  channel.addEventListener('bufferedamountlow', () => {
    const w = wake;
    wake = null;
    w?.();
  });
  const t0 = performance.now();
  let sent = 0;
  while (sent < total) {
    if (channel.bufferedAmount > args.highWaterBytes) {
      await new Promise<void>((resolve) => (wake = resolve));
      continue;
    }
    const n = Math.min(chunk.byteLength, total - sent);
    channel.send(n === chunk.byteLength ? chunk : chunk.subarray(0, n));
    sent += n;
  }
  await done;
  const totalMs = performance.now() - t0;
  pc.close();
  finish({ size: sent, connect_ms: connectMs, total_ms: totalMs });
}

async function rawReceiver(from: string): Promise<void> {
  const { pc, channel } = await rawConnect(from, false);
  const total = args.bytes as number;
  let got = 0;
  await new Promise<void>((resolve) => {
    channel.addEventListener('message', (ev) => {
      const data = ev.data;
      got += data instanceof ArrayBuffer ? data.byteLength : ArrayBuffer.isView(data) ? data.byteLength : String(data).length;
      if (got >= total) resolve();
    });
  });
  channel.send('done');
  await new Promise((resolve) => setTimeout(resolve, 500));
  pc.close();
  finish({ size: got });
}
