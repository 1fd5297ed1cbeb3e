/**
 * The in-process MessageBus: enough for one server, and for several server instances in one
 * process sharing it (which is how the tests prove the cross-instance seam). Delivery is
 * synchronous, so messages on one channel arrive in publish order.
 */
import type { BusHandler, BusMessage, MessageBus } from '../bus.js';

export function createMemoryBus(): MessageBus {
  const channels = new Map<string, Set<BusHandler>>();

  return {
    async publish(channel: string, message: BusMessage) {
      const handlers = channels.get(channel);
      if (handlers === undefined) return;
      // Copy: a handler may unsubscribe (peer left) while we iterate.
      for (const handler of [...handlers]) {
        try {
          handler(message);
        } catch {
          // One instance's failing handler must not stop delivery to the others.
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

    async close() {
      channels.clear();
    },
  };
}
