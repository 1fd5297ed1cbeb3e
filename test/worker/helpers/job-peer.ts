/** The hand-written client side of a job conversation: raw frames out, decoded messages in. */
import type { WorkerToClient } from '../../../src/protocol/job.js';
import { decodeWorkerToClient } from '../../../src/protocol/job.js';
import type { PeerConnection } from '../../../src/transport/peer-connection.js';

export class JobPeer {
  readonly received: WorkerToClient[] = [];
  readonly #waiters: { pred: (m: WorkerToClient) => boolean; resolve: (m: WorkerToClient) => void }[] = [];

  constructor(readonly peer: PeerConnection) {
    peer.control.onMessage((frame) => {
      // The worker must only ever send valid messages; decoding throws (and fails the test) otherwise.
      const m = decodeWorkerToClient(String(frame));
      this.received.push(m);
      for (const w of [...this.#waiters]) {
        if (w.pred(m)) {
          this.#waiters.splice(this.#waiters.indexOf(w), 1);
          w.resolve(m);
        }
      }
    });
  }

  send(message: unknown): void {
    this.peer.control.send(typeof message === 'string' || message instanceof Uint8Array ? message : JSON.stringify(message));
  }

  /** The first message (already received or still to come) matching `pred`. */
  next<T extends WorkerToClient['type']>(type: T, pred: (m: Extract<WorkerToClient, { type: T }>) => boolean = () => true, timeoutMs = 20_000): Promise<Extract<WorkerToClient, { type: T }>> {
    const match = (m: WorkerToClient): m is Extract<WorkerToClient, { type: T }> => m.type === type && pred(m as Extract<WorkerToClient, { type: T }>);
    const seen = this.received.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${type} within ${timeoutMs} ms; got ${this.received.map((m) => m.type).join(', ')}`)), timeoutMs);
      this.#waiters.push({
        pred: match,
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m as Extract<WorkerToClient, { type: T }>);
        },
      });
    });
  }

  /** Messages about one job, in arrival order. */
  of(jobId: string): WorkerToClient[] {
    return this.received.filter((m) => 'job_id' in m && m.job_id === jobId);
  }
}
