/**
 * Is the peer at the other end of a connection still there? The signaling server sees a peer's
 * WebSocket drop at once, but a peer that only lost the server (a restart, a VPN blip) still runs
 * its jobs over the direct connection. So "left the room" is a question, not a verdict: send a
 * ping on the control channel and wait a short while for anything at all to come back.
 */
import { LIMITS } from '../limits.js';

export class PeerLiveness {
  #waiters = new Set<() => void>();
  #probe: Promise<boolean> | null = null;
  #seq = 0;

  /** Call for every frame received from the peer: it proves the peer alive. */
  heard(): void {
    const waiters = [...this.#waiters];
    this.#waiters.clear();
    for (const w of waiters) w();
  }

  /**
   * Sends a ping with `send(nonce)` and resolves true when anything is heard within `timeoutMs`,
   * false otherwise (or when the send throws). Probes asked for while one runs share it.
   */
  probe(send: (nonce: string) => void, timeoutMs: number = LIMITS.peerProbeTimeoutMs): Promise<boolean> {
    this.#probe ??= new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => done(false), timeoutMs);
      const onHeard = (): void => done(true);
      const done = (alive: boolean): void => {
        clearTimeout(timer);
        this.#waiters.delete(onHeard);
        this.#probe = null;
        resolve(alive);
      };
      this.#waiters.add(onHeard);
      try {
        this.#seq += 1;
        send(`p${this.#seq}`);
      } catch {
        done(false);
      }
    });
    return this.#probe;
  }
}
