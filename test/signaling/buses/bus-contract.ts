/** What every MessageBus must do (the memory bus and the Redis bus both run it). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { BusMessage, MessageBus } from '../../../src/signaling/bus.js';
import type { Logger } from '../../../src/log.js';
import { waitFor } from '../../helpers/ws-peer.js';
import { captureLogger } from '../log-capture.js';

export type BusFactory = (logger: Logger) => Promise<MessageBus>;

export function runBusContract(name: string, factory: BusFactory): void {
  async function fresh(t: { after: (fn: () => Promise<void>) => void }, logger = captureLogger().logger): Promise<MessageBus> {
    const bus = await factory(logger);
    t.after(() => bus.close());
    return bus;
  }

  test(`${name}: delivers to every subscriber of the channel, in publish order, and only to them`, async (t) => {
    const bus = await fresh(t);
    const a: string[] = [];
    const b: string[] = [];
    const other: string[] = [];
    bus.subscribe('room:1', (m) => a.push(m.frame));
    bus.subscribe('room:1', (m) => b.push(m.frame));
    bus.subscribe('room:2', (m) => other.push(m.frame));
    await bus.settled();
    for (const frame of ['1', '2', '3']) await bus.publish('room:1', { frame });
    await waitFor(() => a.length === 3 && b.length === 3, 5000, 'delivery');
    assert.deepEqual(a, ['1', '2', '3']);
    assert.deepEqual(b, ['1', '2', '3']);
    await bus.publish('nobody', { frame: 'x' });
    await bus.publish('room:2', { frame: 'marker' });
    await waitFor(() => other.length === 1, 5000, 'the marker');
    assert.deepEqual(other, ['marker']);
  });

  test(`${name}: unsubscribe stops delivery, is safe twice, and only ends its own subscription`, async (t) => {
    const bus = await fresh(t);
    const got: BusMessage[] = [];
    const handler = (m: BusMessage): void => {
      got.push(m);
    };
    const first = bus.subscribe('peer:x', handler);
    bus.subscribe('peer:x', handler);
    first();
    first();
    await bus.settled();
    await bus.publish('peer:x', { frame: 'f', except: 'y' });
    await waitFor(() => got.length > 0, 5000, 'delivery');
    await bus.publish('peer:x', { frame: 'end' });
    await waitFor(() => got.length > 1, 5000, 'the end marker');
    assert.deepEqual(got, [{ frame: 'f', except: 'y' }, { frame: 'end' }]);
  });

  test(`${name}: a throwing handler does not stop the others and is logged; a handler may unsubscribe mid-delivery`, async (t) => {
    const log = captureLogger();
    const bus = await fresh(t, log.logger);
    const got: string[] = [];
    bus.subscribe('c', () => {
      throw new Error('boom');
    });
    const off = bus.subscribe('c', (m) => {
      got.push(`second:${m.frame}`);
      off();
    });
    bus.subscribe('c', (m) => got.push(`third:${m.frame}`));
    await bus.settled();
    await bus.publish('c', { frame: '1' });
    await bus.publish('c', { frame: '2' });
    await waitFor(() => got.length === 3, 5000, 'delivery');
    assert.deepEqual(got, ['second:1', 'third:1', 'third:2']);
    const errors = log.lines.filter((l) => l.level >= 50);
    assert.equal(errors.length, 2, 'one error line per throw');
    assert.match(String((errors[0]?.err as { message?: string } | undefined)?.message), /boom/);
  });
}
