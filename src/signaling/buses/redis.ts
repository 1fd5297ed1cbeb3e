/**
 * The MessageBus over Redis pub/sub: PUBLISH on the store's connection, one extra connection for
 * SUBSCRIBE. A channel is subscribed in Redis while this process has at least one handler for it.
 * Each message carries the publishing node's id, so `/metrics` can count what crossed processes.
 * On the wire a message is `<node>\n<except>\n<frame>`: the frame is already JSON, and wrapping
 * it in another JSON document would escape every quote in it.
 * ioredis re-subscribes by itself after a reconnect; what was published while the link was down
 * is lost (pub/sub does not queue), which peers see as a missed room event at worst.
 */
import type { Redis } from 'ioredis';
import type { Logger } from '../../log.js';
import type { BusHandler, BusMessage, MessageBus } from '../bus.js';
import { StoreUnavailableError } from '../store.js';

const PREFIX = 'srtc:bus:';

export interface BusCounters {
  /** Messages this process published to Redis. */
  published: number;
  /** Messages that arrived from Redis published by another process. */
  received_remote: number;
}

export interface RedisBus extends MessageBus {
  readonly counters: BusCounters;
}

export async function createRedisBus(publisher: Redis, nodeId: string, logger: Logger): Promise<RedisBus> {
  const subscriber = publisher.duplicate({ connectionName: 'sleap-rtc-bus', enableOfflineQueue: true });
  subscriber.on('error', () => {});
  await subscriber.connect();
  const channels = new Map<string, Set<BusHandler>>();
  const counters: BusCounters = { published: 0, received_remote: 0 };
  /** SUBSCRIBE / UNSUBSCRIBE calls not yet answered. */
  let pending: Promise<unknown> = Promise.resolve();
  let closed = false;

  subscriber.on('messageBuffer', (channelBuf: Buffer, payload: Buffer) => {
    const channel = channelBuf.toString().slice(PREFIX.length);
    const handlers = channels.get(channel);
    if (handlers === undefined) return;
    const text = payload.toString();
    const first = text.indexOf('\n');
    const second = first < 0 ? -1 : text.indexOf('\n', first + 1);
    if (second < 0) {
      logger.error({ channel }, 'a bus message in an unknown format; dropped');
      return;
    }
    if (text.slice(0, first) !== nodeId) counters.received_remote += 1;
    const except = text.slice(first + 1, second);
    const frame = text.slice(second + 1);
    const delivered: BusMessage = except !== '' ? { frame, except } : { frame };
    for (const handler of [...handlers]) {
      try {
        handler(delivered);
      } catch (err) {
        logger.error({ err, channel }, 'a bus handler threw; the other handlers still get the message');
      }
    }
  });

  function track(p: Promise<unknown>, what: string, channel: string): void {
    const settled = p.catch((err: unknown) => {
      if (!closed) logger.warn({ err, channel }, `Redis ${what} failed; ioredis retries it on reconnect`);
    });
    pending = Promise.all([pending, settled]);
  }

  return {
    counters,

    async publish(channel, message) {
      const payload = `${nodeId}\n${message.except ?? ''}\n${message.frame}`;
      try {
        await publisher.publish(PREFIX + channel, payload);
      } catch (err) {
        throw new StoreUnavailableError(`Could not publish to Redis (${(err as Error).message})`, { cause: err });
      }
      counters.published += 1;
    },

    subscribe(channel, handler) {
      let set = channels.get(channel);
      if (set === undefined) {
        set = new Set();
        channels.set(channel, set);
        track(subscriber.subscribe(PREFIX + channel), 'SUBSCRIBE', channel);
      }
      const entry: BusHandler = (m) => handler(m);
      set.add(entry);
      let done = false;
      return () => {
        if (done) return;
        done = true;
        const current = channels.get(channel);
        if (current === undefined) return;
        current.delete(entry);
        if (current.size === 0) {
          channels.delete(channel);
          if (!closed) track(subscriber.unsubscribe(PREFIX + channel), 'UNSUBSCRIBE', channel);
        }
      };
    },

    async settled() {
      await pending;
    },

    async close() {
      if (closed) return;
      closed = true;
      channels.clear();
      subscriber.disconnect();
    },
  };
}
