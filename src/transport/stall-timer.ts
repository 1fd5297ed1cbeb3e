/**
 * Fires once when nothing happened for `timeoutMs`. `touch()` is called on every unit of progress,
 * so it only stores a timestamp; the single timer re-arms itself for the remaining time.
 */
export class StallTimer {
  #last = Date.now();
  #timer: ReturnType<typeof setTimeout> | null = null;
  readonly #timeoutMs: number;
  readonly #onStall: () => void;

  constructor(timeoutMs: number, onStall: () => void) {
    this.#timeoutMs = timeoutMs;
    this.#onStall = onStall;
    this.#arm(timeoutMs);
  }

  touch(): void {
    this.#last = Date.now();
  }

  stop(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
  }

  #arm(ms: number): void {
    this.#timer = setTimeout(() => {
      const idle = Date.now() - this.#last;
      if (idle >= this.#timeoutMs) {
        this.#timer = null;
        this.#onStall();
      } else {
        this.#arm(this.#timeoutMs - idle);
      }
    }, ms);
    // A stall timer alone must not keep a process alive.
    (this.#timer as { unref?: () => void }).unref?.();
  }
}
