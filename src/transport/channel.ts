/**
 * PeerChannel: one ordered, reliable data channel, wrapped so that
 *  - no message is lost between the channel opening and its consumer attaching (the W3C channel
 *    drops messages nobody listens to; ours queues them, up to a bound, for the first consumer);
 *  - the sender can wait for room in the send buffer (bufferedAmount / bufferedamountlow), which
 *    is the only backpressure a data channel offers;
 *  - close() is safe to call twice and `closed` settles exactly once.
 * Browser-safe: no Node-only APIs.
 */
import { SleapRtcError } from '../errors.js';
import { LIMITS } from '../limits.js';
import type { RtcDataChannel } from './rtc.js';

export type ChannelMessage = string | Uint8Array;

export interface PeerChannelOptions {
  /** bufferedAmountLowThreshold: `whenWritable` waiters wake when the send buffer drains to this. */
  lowWaterBytes?: number;
  /** Bytes queued for a consumer that has not attached yet before the channel is closed. */
  maxQueuedBytes?: number;
}

type State = 'connecting' | 'open' | 'closed';

function closedError(label: string): SleapRtcError {
  return new SleapRtcError('PEER_CLOSED', `The data channel "${label}" is closed.`, { label });
}

function toMessage(data: unknown): ChannelMessage | null {
  if (typeof data === 'string') return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return null;
}

export class PeerChannel {
  readonly label: string;
  /** Resolves when the channel is open; rejects (PEER_CLOSED) if it closes first. */
  readonly opened: Promise<void>;
  /** Resolves once the channel has closed, for whatever reason. */
  readonly closed: Promise<void>;

  readonly #raw: RtcDataChannel;
  readonly #maxQueuedBytes: number;
  #state: State;
  #consumer: ((message: ChannelMessage) => void) | null = null;
  #queue: ChannelMessage[] = [];
  #queuedBytes = 0;
  #draining = false;
  #writableWaiters: { resolve: () => void; reject: (err: Error) => void }[] = [];
  #closeListeners = new Set<() => void>();
  #resolveOpened!: () => void;
  #rejectOpened!: (err: Error) => void;
  #resolveClosed!: () => void;

  constructor(raw: RtcDataChannel, opts: PeerChannelOptions = {}) {
    this.#raw = raw;
    this.label = raw.label;
    this.#maxQueuedBytes = opts.maxQueuedBytes ?? 2 * LIMITS.transferWindowBytes;
    raw.binaryType = 'arraybuffer';
    raw.bufferedAmountLowThreshold = opts.lowWaterBytes ?? LIMITS.transferBufferedLowBytes;
    this.opened = new Promise((resolve, reject) => {
      this.#resolveOpened = resolve;
      this.#rejectOpened = reject;
    });
    // A consumer that only awaits `closed` must not turn an unopened channel into an unhandled rejection.
    this.opened.catch(() => {});
    this.closed = new Promise((resolve) => {
      this.#resolveClosed = resolve;
    });
    this.#state = raw.readyState === 'open' ? 'open' : raw.readyState === 'connecting' ? 'connecting' : 'closed';
    if (this.#state === 'open') this.#resolveOpened();
    raw.addEventListener('open', () => {
      if (this.#state !== 'connecting') return;
      this.#state = 'open';
      this.#resolveOpened();
    });
    raw.addEventListener('close', () => this.markClosed());
    // Errors are followed by a close; the close is what consumers act on.
    raw.addEventListener('error', () => {});
    raw.addEventListener('bufferedamountlow', () => this.#wakeWriters());
    raw.addEventListener('message', (ev) => this.#onMessage(ev.data));
    if (this.#state === 'closed') this.markClosed();
  }

  get isOpen(): boolean {
    return this.#state === 'open';
  }

  get isClosed(): boolean {
    return this.#state === 'closed';
  }

  /** bufferedAmountLowThreshold: the level at which `whenWritable` waiters wake. */
  set lowWaterBytes(bytes: number) {
    this.#raw.bufferedAmountLowThreshold = bytes;
  }

  get bufferedAmount(): number {
    return this.#state === 'closed' ? 0 : this.#raw.bufferedAmount;
  }

  /**
   * Become the consumer of this channel's messages (one at a time). Messages queued before now
   * are delivered first, starting on the next microtask so the caller holds the returned detach
   * function before its consumer runs. Returns that function; later messages queue again.
   * A consumer must not throw: one that does has lost track of the stream, and the channel closes.
   */
  onMessage(consumer: (message: ChannelMessage) => void): () => void {
    this.#consumer = consumer;
    if (this.#queue.length > 0) this.#scheduleDrain();
    return () => {
      if (this.#consumer === consumer) this.#consumer = null;
    };
  }

  /** Called once when the channel closes (immediately if it already has). Returns the remover. */
  onClose(listener: () => void): () => void {
    if (this.#state === 'closed') {
      queueMicrotask(listener);
      return () => {};
    }
    this.#closeListeners.add(listener);
    return () => this.#closeListeners.delete(listener);
  }

  /** Throws PEER_CLOSED when the channel is not open. */
  send(data: ChannelMessage): void {
    if (this.#state !== 'open') throw closedError(this.label);
    try {
      this.#raw.send(data);
    } catch (err) {
      throw new SleapRtcError('PEER_CLOSED', `Could not send on data channel "${this.label}": ${(err as Error).message}`, {
        label: this.label,
      });
    }
  }

  /**
   * Resolves once the send buffer holds at most `highWaterBytes` (at once if it already does);
   * rejects with PEER_CLOSED if the channel closes while waiting.
   */
  whenWritable(highWaterBytes: number): Promise<void> {
    if (this.#state === 'closed') return Promise.reject(closedError(this.label));
    if (this.#raw.bufferedAmount <= highWaterBytes) return Promise.resolve();
    return new Promise((resolve, reject) => this.#writableWaiters.push({ resolve, reject }));
  }

  /** Closes the channel. Safe to call any number of times. */
  close(): void {
    if (this.#state === 'closed') return;
    try {
      this.#raw.close();
    } catch {
      // Already closing underneath; the close event (or markClosed from the peer) settles state.
    }
  }

  /**
   * Settle this wrapper as closed. The channel's own close event calls it; the owning peer
   * connection calls it too when the whole connection goes, in case the event never fires.
   */
  markClosed(): void {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    const err = closedError(this.label);
    this.#rejectOpened(err);
    for (const w of this.#writableWaiters.splice(0)) w.reject(err);
    this.#queue = [];
    this.#queuedBytes = 0;
    this.#resolveClosed();
    for (const listener of [...this.#closeListeners]) {
      try {
        listener();
      } catch {
        // A close listener's failure must not stop the others from running.
      }
    }
    this.#closeListeners.clear();
  }

  #wakeWriters(): void {
    for (const w of this.#writableWaiters.splice(0)) w.resolve();
  }

  /**
   * Called for every message that arrives, before it is queued or consumed (the connection uses it
   * as proof that the peer is alive). Does not consume anything.
   */
  onArrival: (() => void) | null = null;

  #onMessage(data: unknown): void {
    if (this.#state === 'closed') return;
    this.onArrival?.();
    const message = toMessage(data);
    if (message === null) return;
    if (this.#consumer && this.#queue.length === 0) {
      this.#deliver(message);
      return;
    }
    this.#queuedBytes += typeof message === 'string' ? message.length : message.byteLength;
    this.#queue.push(message);
    if (this.#queuedBytes > this.#maxQueuedBytes) {
      // Nobody is reading and the peer keeps sending: refuse to buffer without bound.
      this.close();
      this.markClosed();
    }
  }

  #scheduleDrain(): void {
    if (this.#draining) return;
    this.#draining = true;
    queueMicrotask(() => {
      this.#draining = false;
      while (this.#consumer && this.#queue.length > 0 && this.#state !== 'closed') {
        const next = this.#queue.shift() as ChannelMessage;
        this.#queuedBytes -= typeof next === 'string' ? next.length : next.byteLength;
        this.#deliver(next);
      }
    });
  }

  #deliver(message: ChannelMessage): void {
    try {
      this.#consumer?.(message);
    } catch {
      // A consumer that throws has lost track of the stream; the channel is no longer usable.
      this.close();
      this.markClosed();
    }
  }
}
