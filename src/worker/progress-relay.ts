/**
 * The worker's end of sleap-nn's ZMQ progress and control sockets, for one training job.
 *
 * sleap-nn connects (sleap_nn/training/callbacks.py): its ProgressReporterZMQ is a PUB socket
 * connected to tcp://127.0.0.1:<publish_port>, its TrainingControllerZMQ a SUB socket connected to
 * tcp://127.0.0.1:<controller_port>. So this side binds: a SUB socket for the events and an XPUB
 * socket for the commands, both on free loopback ports. XPUB (wire-compatible with PUB) tells us
 * when sleap-nn's controller has subscribed, so a stop is never sent into the void: a stop asked
 * for earlier waits for the subscription.
 *
 * Events are decoded and checked (`decodeSleapNnEvent`); a malformed one is dropped with a log
 * line. `batch_end` events are thinned to one per `LIMITS.progressBatchEventIntervalMs` (the
 * newest wins, with a count of those left out), and a pending one is flushed before the next
 * epoch event, so the order is kept and no `epoch_end` that arrives is held back or lost here.
 *
 * ZMQ itself may lose events before they arrive: sleap-nn's PUB sets no send high-water mark
 * (callbacks.py sets only LINGER, to 0, at close), so it keeps libzmq's default of 1,000 queued
 * messages and drops what it cannot queue; it also drops what it sends before our subscription has
 * reached it, and what is still queued when it closes. The relay sees such a loss as a gap in
 * sleap-nn's counters (`batch` within an epoch, `epoch` between epoch_end events), counts it in
 * `lost` and says so in a note: the curves miss those points; the job itself is not affected.
 */
import { Subscriber, XPublisher } from 'zeromq';
import { LIMITS } from '../limits.js';
import { ProtocolError } from '../protocol/codec.js';
import { decodeSleapNnEvent, SLEAP_NN_STOP_COMMAND, type SleapNnEvent, type TrainEvent } from '../protocol/progress.js';

export type TrainEventBody = Omit<TrainEvent, 'type' | 'job_id' | 'seq'>;

export interface ProgressRelayOptions {
  /** Receives each event to relay, in order. */
  send(event: TrainEventBody): void;
  /** A line for the worker's log and the client: an event was dropped, or the controller appeared. */
  note(line: string): void;
  /** The epoch count sleap-nn was asked for, when known; added to every event. */
  totalEpochs?: number;
  batchIntervalMs?: number;
}

type State = 'open' | 'closing' | 'closed';

/** Per sleap-nn event name: how many arrived (`received`) or were seen missing by a gap (`lost`). */
export type EventCounts = Record<SleapNnEvent['event'], number>;
const zeroCounts = (): EventCounts => ({ train_begin: 0, train_end: 0, epoch_begin: 0, epoch_end: 0, batch_start: 0, batch_end: 0 });

export class ProgressRelay {
  readonly publishPort: number;
  readonly controllerPort: number;
  readonly #events: Subscriber;
  readonly #control: XPublisher;
  readonly #opts: ProgressRelayOptions;
  readonly #throttle: BatchThrottle;
  #state: State = 'open';
  #received = 0;
  #dropped = 0;
  #lastDropNote = -Infinity;
  readonly #counts = zeroCounts();
  readonly #lost = zeroCounts();
  #lostSinceNote = 0;
  #lastLostNote = -Infinity;
  #lastEpochEnd: number | null = null;
  #lastBatch: { epoch: number; batch: number } | null = null;
  #controllerListening = false;
  #stopRequested = false;
  #stopSent = false;
  #loops: Promise<void>[] = [];
  #lastFrameAt = performance.now();
  #ended = false;

  private constructor(events: Subscriber, control: XPublisher, opts: ProgressRelayOptions) {
    this.#events = events;
    this.#control = control;
    this.#opts = opts;
    this.publishPort = portOf(events.lastEndpoint);
    this.controllerPort = portOf(control.lastEndpoint);
    this.#throttle = new BatchThrottle(opts.batchIntervalMs ?? LIMITS.progressBatchEventIntervalMs, (e) => this.#forward(e));
    this.#loops = [this.#readEvents(), this.#watchSubscriptions()];
  }

  /** Binds both sockets on free loopback ports. */
  static async open(opts: ProgressRelayOptions): Promise<ProgressRelay> {
    // No receive limit: a full pipe makes sleap-nn's PUB drop messages, epoch_end among them; the
    // relay reads far faster than a GPU produces batches, so the queue stays short.
    const events = new Subscriber({ linger: 0, receiveHighWaterMark: 0 });
    const control = new XPublisher({ linger: 0 });
    try {
      events.subscribe();
      await events.bind('tcp://127.0.0.1:0');
      await control.bind('tcp://127.0.0.1:0');
    } catch (err) {
      events.close();
      control.close();
      throw err;
    }
    return new ProgressRelay(events, control, opts);
  }

  /** Valid events received from sleap-nn so far (0 means: fall back to log-line progress). */
  get received(): number {
    return this.#received;
  }

  /** Valid events received so far, per event name. */
  get counts(): Readonly<EventCounts> {
    return this.#counts;
  }

  /** Events seen missing (lost by ZMQ on the way) so far, per event name; only gaps can be seen. */
  get lost(): Readonly<EventCounts> {
    return this.#lost;
  }

  get stopRequested(): boolean {
    return this.#stopRequested;
  }

  /** Whether sleap-nn's TrainingControllerZMQ has subscribed to our command socket. */
  get controllerListening(): boolean {
    return this.#controllerListening;
  }

  /** Ask sleap-nn to stop after the current batch. `pending` until its controller has subscribed. */
  requestStop(): 'stopping' | 'pending' {
    this.#stopRequested = true;
    if (this.#controllerListening) this.#sendStop();
    return this.#controllerListening ? 'stopping' : 'pending';
  }

  /**
   * After sleap-nn has exited: read what is still queued (its last events can trail its exit)
   * until train_end, or until nothing has come for `LIMITS.progressDrainQuietMs`, at most
   * `LIMITS.progressDrainMaxMs`. `finished`: sleap-nn exited 0, so a train_end was sent. When it
   * never came, the tail was lost where no gap shows it: sleap-nn closes its PUB with LINGER 0,
   * which discards what is still queued when a busy receiver lags behind, and the user is told.
   */
  async drain(finished = false): Promise<void> {
    const deadline = performance.now() + LIMITS.progressDrainMaxMs;
    while (this.#state === 'open' && !this.#ended && this.#received > 0 && performance.now() < deadline) {
      if (performance.now() - this.#lastFrameAt >= LIMITS.progressDrainQuietMs) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    if (finished && this.#state === 'open' && !this.#ended && this.#received > 0) {
      const last = this.#lastEpochEnd === null ? 'no epoch_end arrived' : `the last epoch_end that arrived was epoch ${this.#lastEpochEnd + 1}`;
      this.#opts.note(
        `[sleap-rtc: sleap-nn's last progress events did not arrive (no train_end; ${last}): sleap-nn drops what its ZMQ queue still holds when it exits; the curves miss the last points, the training is not affected]`,
      );
    }
  }

  /** Flushes a pending batch event and closes both sockets. Safe to call twice. */
  async close(): Promise<void> {
    if (this.#state !== 'open') return;
    this.#state = 'closing';
    this.#throttle.flush();
    this.#throttle.dispose();
    this.#events.close();
    this.#control.close();
    await Promise.allSettled(this.#loops);
    this.#state = 'closed';
  }

  async #readEvents(): Promise<void> {
    try {
      for await (const [frame] of this.#events) {
        if (this.#state !== 'open') break;
        this.#onFrame(frame?.toString('utf8') ?? '');
      }
    } catch {
      // Closed under the loop.
    }
  }

  async #watchSubscriptions(): Promise<void> {
    try {
      for await (const [frame] of this.#control) {
        if (this.#state !== 'open') break;
        // XPUB delivers (un)subscriptions as frames: 1 = subscribe, 0 = unsubscribe, then the topic.
        if (frame?.[0] !== 1 || this.#controllerListening) continue;
        this.#controllerListening = true;
        if (this.#stopRequested) this.#sendStop();
      }
    } catch {
      // Closed under the loop.
    }
  }

  #sendStop(): void {
    if (this.#stopSent || this.#state !== 'open') return;
    this.#stopSent = true;
    this.#control.send(SLEAP_NN_STOP_COMMAND).catch(() => {
      this.#stopSent = false;
    });
    this.#opts.note('[sleap-rtc: asked sleap-nn to stop training early; it ends the epoch and saves the model]');
  }

  #onFrame(text: string): void {
    this.#lastFrameAt = performance.now();
    let event: SleapNnEvent;
    try {
      event = decodeSleapNnEvent(text);
    } catch (err) {
      this.#drop(err instanceof ProtocolError ? err.message : String(err));
      return;
    }
    this.#received += 1;
    this.#counts[event.event] += 1;
    this.#findGap(event);
    if (event.event === 'train_end') this.#ended = true;
    if (event.event === 'batch_start') return;
    const body: TrainEventBody = {
      event: event.event,
      what: event.what,
      ...(event.epoch !== undefined ? { epoch: event.epoch } : {}),
      ...(event.batch !== undefined ? { batch: event.batch } : {}),
      ...(event.logs !== undefined ? { logs: event.logs } : {}),
      ...(event.event === 'train_begin' && event.wandb_url !== undefined ? { wandb_url: event.wandb_url } : {}),
      ...(this.#opts.totalEpochs !== undefined ? { total_epochs: this.#opts.totalEpochs } : {}),
    };
    if (body.event === 'batch_end') this.#throttle.batch(body);
    else {
      this.#throttle.flush();
      this.#forward(body);
    }
  }

  #forward(body: TrainEventBody): void {
    this.#opts.send(body);
  }

  /**
   * Lightning counts batches from 0 in each epoch and epochs one by one, so a jump is a loss. The
   * first epoch_end sets the start (a resumed run does not begin at 0); a batch counter that goes
   * back (never expected) is taken as a new start.
   */
  #findGap(e: SleapNnEvent): void {
    if (e.event === 'epoch_end' && e.epoch !== undefined) {
      if (this.#lastEpochEnd !== null && e.epoch > this.#lastEpochEnd + 1) this.#noteLost('epoch_end', e.epoch - this.#lastEpochEnd - 1);
      this.#lastEpochEnd = e.epoch;
    } else if (e.event === 'batch_end' && e.epoch !== undefined && e.batch !== undefined) {
      const prev = this.#lastBatch;
      const expected = prev === null ? e.batch : prev.epoch === e.epoch ? prev.batch + 1 : e.epoch > prev.epoch ? 0 : e.batch;
      if (e.batch > expected) this.#noteLost('batch_end', e.batch - expected);
      this.#lastBatch = { epoch: e.epoch, batch: e.batch };
    }
  }

  /** The first loss is told at once; later ones at most once per interval, with their count. */
  #noteLost(event: 'epoch_end' | 'batch_end', n: number): void {
    this.#lost[event] += n;
    this.#lostSinceNote += n;
    const now = performance.now();
    if (now - this.#lastLostNote < LIMITS.progressDropLogIntervalMs) return;
    this.#lastLostNote = now;
    const total = this.#lostSinceNote;
    this.#lostSinceNote = 0;
    this.#opts.note(
      `[sleap-rtc: ${total} progress event(s) from sleap-nn were lost on the way (${this.#lost.epoch_end} epoch_end so far; ZMQ drops what its queue cannot hold); the curves miss those points, the training is not affected]`,
    );
  }

  /** The first drop is told at once; later ones at most once per interval, with their count. */
  #drop(reason: string): void {
    this.#dropped += 1;
    const now = performance.now();
    if (now - this.#lastDropNote < LIMITS.progressDropLogIntervalMs) return;
    this.#lastDropNote = now;
    const n = this.#dropped;
    this.#dropped = 0;
    this.#opts.note(`[sleap-rtc: dropped ${n} malformed progress event(s) from sleap-nn: ${reason.slice(0, 300)}]`);
  }
}

/**
 * At most one batch_end per interval: the first goes at once, later ones within the interval
 * replace each other and the newest goes when the interval is over (with the count it replaced).
 */
export class BatchThrottle {
  #pending: TrainEventBody | null = null;
  #skipped = 0;
  #lastSent = -Infinity;
  #timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly intervalMs: number,
    private readonly out: (event: TrainEventBody) => void,
  ) {}

  batch(event: TrainEventBody): void {
    const now = performance.now();
    if (this.#pending === null && now - this.#lastSent >= this.intervalMs) {
      this.#emit(event, now);
      return;
    }
    if (this.#pending !== null) this.#skipped += 1;
    this.#pending = event;
    this.#timer ??= setTimeout(() => {
      this.#timer = null;
      this.flush();
    }, Math.max(0, this.intervalMs - (now - this.#lastSent)));
  }

  /** Sends the pending batch event now (before an epoch event, or at the end). */
  flush(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    const e = this.#pending;
    if (e === null) return;
    this.#pending = null;
    this.#emit(e, performance.now());
  }

  dispose(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    this.#pending = null;
  }

  #emit(event: TrainEventBody, now: number): void {
    const skipped = this.#skipped;
    this.#skipped = 0;
    this.#lastSent = now;
    this.out(skipped > 0 ? { ...event, skipped } : event);
  }
}

function portOf(endpoint: string | null): number {
  const m = endpoint ? /:(\d+)$/.exec(endpoint) : null;
  if (!m) throw new Error(`no port in ZMQ endpoint ${String(endpoint)}`);
  return Number(m[1]);
}
