/**
 * SLEAP's LossViewer, watching and steering a remote run as if sleap-nn ran locally.
 *
 * LossViewer (sleap/gui/widgets/monitor.py) binds a SUB socket for progress (default port 9001) and
 * a PUB socket for commands (default 9000); sleap-nn connects to both. Here the client takes
 * sleap-nn's place: a PUB connected to `--zmq-publish` re-publishes every relayed event in
 * sleap-nn's own format (`encodeSleapNnEvent`), and a SUB connected to `--zmq-control` turns
 * `{"command": "stop"}` into a stop request for the job.
 */
import { Publisher, Subscriber } from 'zeromq';
import { decodeSleapNnCommand, encodeSleapNnEvent, type TrainEvent } from '../protocol/progress.js';
import type { LiveJob } from './live-job.js';

export interface LossViewerOptions {
  /** Where LossViewer's SUB socket listens, e.g. tcp://127.0.0.1:9001. */
  publish?: string;
  /** Where LossViewer's PUB socket sends commands, e.g. tcp://127.0.0.1:9000. */
  control?: string;
  live: LiveJob;
  /** A line for the user (a stop request arrived, an unknown command was ignored). */
  note(message: string): void;
}

export class LossViewerBridge {
  readonly #pub: Publisher | null;
  readonly #sub: Subscriber | null;
  readonly #opts: LossViewerOptions;
  readonly #queue: string[] = [];
  #sending = false;
  #closed = false;
  readonly #onEvent = (e: TrainEvent): void => this.#publish(e);
  #reading: Promise<void> = Promise.resolve();

  private constructor(pub: Publisher | null, sub: Subscriber | null, opts: LossViewerOptions) {
    this.#pub = pub;
    this.#sub = sub;
    this.#opts = opts;
    if (pub) opts.live.on('train_event', this.#onEvent);
    if (sub) this.#reading = this.#readCommands(sub);
  }

  static open(opts: LossViewerOptions): LossViewerBridge {
    let pub: Publisher | null = null;
    let sub: Subscriber | null = null;
    if (opts.publish !== undefined) {
      pub = new Publisher({ linger: 1000, sendHighWaterMark: 10_000 });
      pub.connect(opts.publish);
    }
    if (opts.control !== undefined) {
      sub = new Subscriber({ linger: 0 });
      sub.subscribe();
      sub.connect(opts.control);
    }
    return new LossViewerBridge(pub, sub, opts);
  }

  /** Sends what is queued (up to a second), then closes both sockets. Safe to call twice. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#opts.live.off('train_event', this.#onEvent);
    const deadline = Date.now() + 1000;
    while ((this.#sending || this.#queue.length > 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    this.#pub?.close();
    this.#sub?.close();
    await this.#reading;
  }

  #publish(e: TrainEvent): void {
    if (this.#closed) return;
    this.#queue.push(
      encodeSleapNnEvent({
        what: e.what,
        event: e.event,
        ...(e.logs !== undefined ? { logs: e.logs } : {}),
        ...(e.epoch !== undefined ? { epoch: e.epoch } : {}),
        ...(e.batch !== undefined ? { batch: e.batch } : {}),
        ...(e.wandb_url !== undefined ? { wandb_url: e.wandb_url } : {}),
      }),
    );
    void this.#drain();
  }

  /** zeromq.js allows one send at a time; frames go out in order. */
  async #drain(): Promise<void> {
    if (this.#sending || !this.#pub) return;
    this.#sending = true;
    try {
      while (this.#queue.length > 0) {
        const frame = this.#queue.shift() as string;
        await this.#pub.send(frame).catch(() => undefined);
      }
    } finally {
      this.#sending = false;
    }
  }

  async #readCommands(sub: Subscriber): Promise<void> {
    try {
      for await (const [frame] of sub) {
        const command = decodeSleapNnCommand(frame?.toString('utf8') ?? '');
        if (command === 'stop') {
          const answer = this.#opts.live.requestStop('lossviewer');
          this.#opts.note(answer === 'stopping' ? 'LossViewer: stop requested; training ends after the current epoch' : `LossViewer asked to stop (${answer.replace('_', ' ')})`);
        } else {
          this.#opts.note(`LossViewer: ignored a controller message${command ? ` (command "${command}")` : ''}`);
        }
      }
    } catch {
      // Closed under the loop.
    }
  }
}
