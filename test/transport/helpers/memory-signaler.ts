/**
 * Two Signalers wired to each other in memory, for peer-connection tests in one process.
 * Signals are delivered asynchronously (like a network) and buffered until the receiving side
 * subscribes, as the real signaling client does.
 */
import type { SignalMessage, Signaler } from '../../../src/transport/signaler.js';

export interface MemorySignalerOptions {
  /** Rewrite or drop (return null) each signal in flight. */
  tamper?: (from: string, signal: SignalMessage) => SignalMessage | null;
}

class MemorySignaler implements Signaler {
  readonly sent: SignalMessage[] = [];
  peer: MemorySignaler | null = null;
  readonly #listeners = new Map<string, (s: SignalMessage) => void>();
  readonly #pending = new Map<string, SignalMessage[]>();

  constructor(
    readonly id: string,
    private readonly opts: MemorySignalerOptions,
  ) {}

  sendSignal(target: string, signal: SignalMessage): void {
    this.sent.push(signal);
    const peer = this.peer;
    if (!peer || peer.id !== target) throw new Error(`no peer ${target}`);
    const delivered = this.opts.tamper ? this.opts.tamper(this.id, signal) : signal;
    if (delivered === null) return;
    setImmediate(() => peer.deliver(this.id, delivered));
  }

  onSignal(from: string, listener: (signal: SignalMessage) => void): () => void {
    this.#listeners.set(from, listener);
    const queued = this.#pending.get(from) ?? [];
    this.#pending.delete(from);
    for (const s of queued) listener(s);
    return () => {
      if (this.#listeners.get(from) === listener) this.#listeners.delete(from);
    };
  }

  deliver(from: string, signal: SignalMessage): void {
    const listener = this.#listeners.get(from);
    if (listener) listener(signal);
    else this.#pending.set(from, [...(this.#pending.get(from) ?? []), signal]);
  }
}

export function createSignalerPair(
  idA = 'peer-a',
  idB = 'peer-b',
  opts: MemorySignalerOptions = {},
): { a: MemorySignaler; b: MemorySignaler } {
  const a = new MemorySignaler(idA, opts);
  const b = new MemorySignaler(idB, opts);
  a.peer = b;
  b.peer = a;
  return { a, b };
}
