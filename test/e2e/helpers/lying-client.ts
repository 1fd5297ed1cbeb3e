/**
 * A lying client, run as a process of its own: it asks a worker for a transfer training job and,
 * when the worker asks for the labels file (UPLOAD_REQUEST):
 *  - `corrupt`: offers the labels file's true size and SHA-256, then sends other bytes;
 *  - `claim`: offers a size and SHA-256 it was given (another user's file) without having the
 *    bytes, and answers a challenge with the best it can compute from the hash.
 * The config is sent honestly. Prints one JSON line: the message that ended the job, the error
 * its own send ended with, the worker's messages on the labels transfer, and the payload bytes
 * that came back on any channel.
 *
 *   node --import ./scripts/ts-loader.mjs test/e2e/helpers/lying-client.ts SERVER ROOM TOKEN WORKER MODE LABELS CONFIG [SHA256 SIZE]
 */
import { createHash } from 'node:crypto';
import { TERMINAL_JOB_MESSAGE_TYPES, type WorkerToClient } from '../../../src/protocol/job.js';
import type { ChannelMessage } from '../../../src/transport/channel.js';
import { sendFile } from '../../../src/transport/file-send.js';
import { connectToPeer } from '../../../src/transport/peer-connection.js';
import { releaseRtc } from '../../../src/transport/rtc.js';
import { SignalingClient } from '../../../src/transport/signaling-client.js';
import { JobPeer } from '../../worker/helpers/job-peer.js';

const [serverUrl, roomId, token, worker, mode, labels, config, claimSha, claimSize] = process.argv.slice(2);
if (!serverUrl || !roomId || !token || !worker || (mode !== 'corrupt' && mode !== 'claim') || !labels || !config) {
  process.stderr.write('usage: lying-client.ts SERVER ROOM TOKEN WORKER corrupt|claim LABELS CONFIG [SHA256 SIZE]\n');
  process.exit(2);
}

const signaling = await SignalingClient.connect({ serverUrl, roomId, token, role: 'client' });
const pc = await connectToPeer({ signaler: signaling, remotePeerId: worker });
const peer = new JobPeer(pc);
let bytesBack = 0;
pc.onChannel((ch) =>
  ch.onMessage((m: ChannelMessage) => {
    bytesBack += typeof m === 'string' ? 0 : m.byteLength;
  }),
);
const out: { terminal?: WorkerToClient; sendError?: string; replies: unknown[]; bytesBack?: number } = { replies: [] };
try {
  peer.send({ type: 'JOB_REQUEST', job_id: 'lie', job_type: 'train', transfer: 'webrtc', spec: { labels: 'labels.slp', config_file: 'config.yaml', output: 'out', run_name: 'r1', max_epochs: 1 } });
  const up = await peer.next('UPLOAD_REQUEST', () => true, 60_000);
  for (const f of up.files) {
    if (f.field !== 'labels') {
      await sendFile(pc, config, { transferId: f.transfer_id, name: 'config.yaml' }).catch(() => {});
      continue;
    }
    if (mode === 'corrupt') {
      const flip = (c: Uint8Array): Uint8Array => {
        const b = Buffer.from(c);
        b[0] = b[0]! ^ 0xff;
        return b;
      };
      await sendFile(pc, labels, { transferId: f.transfer_id, name: 'labels.slp', transformChunk: flip }).catch((e: { code?: string }) => (out.sendError = e.code ?? String(e)));
      continue;
    }
    const ch = await pc.openChannel(`transfer:${f.transfer_id}`);
    await new Promise<void>((resolve) => {
      ch.onMessage((m) => {
        if (typeof m !== 'string') return;
        const msg = JSON.parse(m) as { type: string; nonce?: string };
        out.replies.push(msg);
        if (msg.type === 'TRANSFER_CHALLENGE') {
          // Without the bytes, the nonce and the hash are all it has.
          const proof = createHash('sha256').update(Buffer.from(msg.nonce ?? '', 'hex')).update(claimSha ?? '').digest('hex');
          ch.send(JSON.stringify({ type: 'TRANSFER_PROOF', transfer_id: f.transfer_id, proof }));
        } else if (msg.type === 'TRANSFER_READY') {
          ch.send(JSON.stringify({ type: 'TRANSFER_CANCEL', transfer_id: f.transfer_id }));
          resolve();
        } else if (msg.type === 'TRANSFER_ACK' || msg.type === 'TRANSFER_ERROR') {
          resolve();
        }
      });
      ch.send(JSON.stringify({ type: 'FILE_META', transfer_id: f.transfer_id, name: 'labels.slp', kind: 'file', size: Number(claimSize), sha256: claimSha }));
    });
  }
  const isEnd = (m: WorkerToClient): boolean => TERMINAL_JOB_MESSAGE_TYPES.has(m.type) && 'job_id' in m && m.job_id === 'lie';
  for (let i = 0; i < 1200 && !peer.received.some(isEnd); i++) await new Promise((r) => setTimeout(r, 100));
  out.terminal = peer.received.find(isEnd);
  // Outputs of a completed job would arrive now: give them a moment to show.
  if (out.terminal?.type === 'JOB_COMPLETE') await new Promise((r) => setTimeout(r, 3000));
  out.bytesBack = bytesBack;
  process.stdout.write(`${JSON.stringify(out)}\n`);
} finally {
  pc.close();
  await signaling.close();
  releaseRtc();
}
