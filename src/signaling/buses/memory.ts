/**
 * The in-process MessageBus: enough for one server, and for several server instances in one
 * process sharing it (which is how the tests prove the cross-instance seam). Delivery is
 * synchronous, so messages on one channel arrive in publish order.
 */
import { silentLogger, type Logger } from '../../log.js';
import type { BusHandler, BusMessage, MessageBus } from '../bus.js';

export interface MemoryBusOptions {
  /** Where a throwing handler is reported (the other handlers still get the message). */
  logger?: Logger;
}

export function createMemoryBus(opts: MemoryBusOptions = {}): MessageBus {
  const logger = opts.logger ?? silentLogger();
  const channels = new Map<string, Set<BusHandler>>();

  return {
    async publish(channel: string, message: BusMessage) {
      const handlers = channels.get(channel);
      if (handlers === undefined) return;
      // Copy: a handler may unsubscribe (peer left) while we iterate.
      for (const handler of [...handlers]) {
        try {
          handler(message);
        } catch (err) {
          // One instance's failing handler must not stop delivery to the others, nor go unseen.
          logger.error({ err, channel }, 'a bus handler threw; the other handlers still get the message');
        }
      }
    },

    subscribe(channel: string, handler: BusHandler) {
      let set = channels.get(channel);
      if (set === undefined) {
        set = new Set();
        channels.set(channel, set);
      }
      // Wrap so the same function subscribed twice yields two independent subscriptions.
      const entry: BusHandler = (m) => handler(m);
      set.add(entry);
      return () => {
        const current = channels.get(channel);
        if (current === undefined) return;
        current.delete(entry);
        if (current.size === 0) channels.delete(channel);
      };
    },

    async settled() {},

    async close() {
      channels.clear();
    },
  };
}
