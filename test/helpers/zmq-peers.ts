/**
 * Real ZMQ sockets playing the other parties of the progress protocol in tests: sleap-nn (a PUB
 * and a SUB that connect, as its ProgressReporterZMQ and TrainingControllerZMQ do) and SLEAP's
 * LossViewer (a SUB and a PUB that bind, as its setup_zmq does). Closed by the test's after hook.
 */
import { Publisher, Subscriber } from 'zeromq';

type Hooks = { after: (fn: () => unknown) => void };

/** Resolves when `socket` has finished the ZMTP handshake with a peer (then a PUB's subscriber is known soon after). */
export function handshake(socket: Publisher | Subscriber, timeoutMs = 10_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no ZMQ handshake in time')), timeoutMs);
    // A wait nobody ends (a socket that never gets a peer) must not keep the test process alive.
    timer.unref();
    socket.events.on('handshake', () => {
      clearTimeout(timer);
      // The subscription travels right after the handshake; give it a moment to be applied.
      setTimeout(resolve, 50);
    });
  });
}

/**
 * sleap-nn's side: `send` publishes frames; `nextCommand` reads what the controller received.
 * With `delivered`, it resolves only once the subscriber really gets frames: it sends harmless
 * `batch_start` probes until `delivered()` is true (a PUB drops what it sends before the
 * subscription has reached it, and on a loaded machine the handshake alone does not say when).
 * The PUB keeps libzmq's send high-water mark (1,000 queued messages, then it drops), as
 * sleap-nn's does (callbacks.py sets none); `sendHighWaterMark: 0` (no limit) makes it lossless.
 */
export async function sleapNnSide(
  t: Hooks,
  publishPort: number,
  controllerPort: number,
  delivered?: () => boolean,
  opts: { sendHighWaterMark?: number } = {},
): Promise<{ send(frame: string): Promise<void>; nextCommand(): Promise<string> }> {
  const pub = new Publisher({ linger: 0, ...(opts.sendHighWaterMark !== undefined ? { sendHighWaterMark: opts.sendHighWaterMark } : {}) });
  const sub = new Subscriber({ linger: 0 });
  t.after(() => {
    pub.close();
    sub.close();
  });
  const ready = handshake(pub);
  pub.connect(`tcp://127.0.0.1:${publishPort}`);
  sub.subscribe();
  sub.connect(`tcp://127.0.0.1:${controllerPort}`);
  const commands = new Inbox(sub);
  await ready;
  while (delivered && !delivered()) {
    await pub.send('{"what": "", "event": "batch_start", "logs": null, "batch": 0}');
    await new Promise((r) => setTimeout(r, 20));
  }
  return { send: (frame) => pub.send(frame), nextCommand: () => commands.next() };
}

/** LossViewer's side: binds a SUB for events and a PUB for commands on free loopback ports. */
export async function lossViewerSide(
  t: Hooks,
): Promise<{ publishAddress: string; controlAddress: string; next(): Promise<string>; send(frame: string): Promise<void>; controlReady(): Promise<void>; publisherReady(): Promise<void> }> {
  const sub = new Subscriber({ linger: 0 });
  const pub = new Publisher({ linger: 0 });
  t.after(() => {
    sub.close();
    pub.close();
  });
  sub.subscribe();
  await sub.bind('tcp://127.0.0.1:0');
  await pub.bind('tcp://127.0.0.1:0');
  const controlReady = handshake(pub, 30_000);
  const publisherReady = handshake(sub, 30_000);
  // A SUB socket only attaches a new peer (and sends it the subscription) while it is being read,
  // as LossViewer's timer reads it: keep a receive pending from the start.
  const inbox = new Inbox(sub);
  // Rejections of a wait nobody asked for must not surface as unhandled.
  controlReady.catch(() => undefined);
  publisherReady.catch(() => undefined);
  return {
    publishAddress: sub.lastEndpoint as string,
    controlAddress: pub.lastEndpoint as string,
    next: () => inbox.next(),
    send: (frame) => pub.send(frame),
    controlReady: () => controlReady,
    publisherReady: () => publisherReady,
  };
}

/** Reads a socket from the start and hands frames out in order. */
class Inbox {
  readonly #frames: string[] = [];
  readonly #waiters: ((frame: string) => void)[] = [];

  constructor(socket: Subscriber) {
    void (async () => {
      try {
        for await (const [m] of socket) {
          const frame = m?.toString('utf8') ?? '';
          const w = this.#waiters.shift();
          if (w) w(frame);
          else this.#frames.push(frame);
        }
      } catch {
        // closed
      }
    })();
  }

  next(): Promise<string> {
    const f = this.#frames.shift();
    return f !== undefined ? Promise.resolve(f) : new Promise((resolve) => this.#waiters.push(resolve));
  }
}
