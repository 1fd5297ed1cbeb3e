/**
 * A hand-written, hostile client, run as a process on a simulated machine: it joins the room,
 * opens a WebRTC connection to one worker and sends raw JOB_REQUEST frames (and garbage), never
 * going through sleap-rtc's own client checks. For each request it prints one JSON line
 * `{ "job_id", "messages": [...] }` with everything the worker said about it, until the message
 * that ends the attempt. For each garbage frame: `{ "garbage", "reply" }`. Last: `{ "done": true }`.
 *
 *   node --import ./scripts/ts-loader.mjs test/machines/hostile-client.ts SERVER_URL ROOM TOKEN WORKER 'REQUESTS_JSON' ['GARBAGE_JSON']
 */
import { TERMINAL_JOB_MESSAGE_TYPES } from '../../src/protocol/job.js';
import { connectToPeer } from '../../src/transport/peer-connection.js';
import { SignalingClient } from '../../src/transport/signaling-client.js';
import { JobPeer } from '../worker/helpers/job-peer.js';

const [serverUrl, roomId, token, worker, requestsJson, garbageJson] = process.argv.slice(2);
if (serverUrl === undefined || roomId === undefined || token === undefined || worker === undefined || requestsJson === undefined) {
  process.stderr.write('usage: hostile-client.ts SERVER_URL ROOM TOKEN WORKER REQUESTS_JSON [GARBAGE_JSON]\n');
  process.exit(2);
}
const requests = JSON.parse(requestsJson) as { job_id: string }[];
const garbage = JSON.parse(garbageJson ?? '[]') as string[];
const print = (o: unknown): void => void process.stdout.write(`${JSON.stringify(o)}\n`);

/** Resolves once `ready()` is true (checked as messages arrive); rejects after 30 s. */
function until(ready: () => boolean, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const deadline = setTimeout(() => {
      clearInterval(poll);
      reject(new Error(`nothing from the worker for ${what} within 30 s`));
    }, 30_000);
    const poll = setInterval(() => {
      if (!ready()) return;
      clearTimeout(deadline);
      clearInterval(poll);
      resolve();
    }, 10);
  });
}

const signaling = await SignalingClient.connect({ serverUrl, roomId, token, role: 'client' });
const pc = await connectToPeer({ signaler: signaling, remotePeerId: worker });
const peer = new JobPeer(pc);
try {
  for (const request of requests) {
    peer.send(request);
    await until(() => peer.of(request.job_id).some((m) => TERMINAL_JOB_MESSAGE_TYPES.has(m.type)), request.job_id);
    print({ job_id: request.job_id, messages: peer.of(request.job_id) });
  }
  for (const frame of garbage) {
    const before = peer.received.length;
    peer.send(frame);
    await until(() => peer.received.slice(before).some((m) => m.type === 'error'), `garbage ${frame.slice(0, 40)}`);
    print({ garbage: frame, reply: peer.received.slice(before).find((m) => m.type === 'error') });
  }
  print({ done: true });
} finally {
  pc.close();
  await signaling.close();
}
