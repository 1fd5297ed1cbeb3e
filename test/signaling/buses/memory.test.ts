import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createMemoryBus } from '../../../src/signaling/buses/memory.js';
import type { BusMessage } from '../../../src/signaling/bus.js';

test('memory bus: delivers to every subscriber of the channel, in publish order, and only to them', async () => {
  const bus = createMemoryBus();
  const a: string[] = [];
  const b: string[] = [];
  const other: string[] = [];
  bus.subscribe('room:1', (m) => a.push(m.frame));
  bus.subscribe('room:1', (m) => b.push(m.frame));
  bus.subscribe('room:2', (m) => other.push(m.frame));
  for (const frame of ['1', '2', '3']) await bus.publish('room:1', { frame });
  assert.deepEqual(a, ['1', '2', '3']);
  assert.deepEqual(b, ['1', '2', '3']);
  assert.deepEqual(other, []);
  await bus.publish('nobody', { frame: 'x' });
  await bus.close();
});

test('memory bus: unsubscribe stops delivery, is safe twice, and only ends its own subscription', async () => {
  const bus = createMemoryBus();
  const got: BusMessage[] = [];
  const handler = (m: BusMessage): void => {
    got.push(m);
  };
  const first = bus.subscribe('peer:x', handler);
  bus.subscribe('peer:x', handler);
  first();
  first();
  await bus.publish('peer:x', { frame: 'f', except: 'y' });
  assert.deepEqual(got, [{ frame: 'f', except: 'y' }]);
  await bus.close();
});

test('memory bus: a throwing handler does not stop the others, and a handler may unsubscribe mid-delivery', async () => {
  const bus = createMemoryBus();
  const got: string[] = [];
  bus.subscribe('c', () => {
    throw new Error('boom');
  });
  const off = bus.subscribe('c', (m) => {
    got.push(`second:${m.frame}`);
    off();
  });
  bus.subscribe('c', (m) => got.push(`third:${m.frame}`));
  await bus.publish('c', { frame: '1' });
  await bus.publish('c', { frame: '2' });
  assert.deepEqual(got, ['second:1', 'third:1', 'third:2']);
  await bus.close();
});
