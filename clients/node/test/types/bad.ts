// bad.ts - must NOT compile: each line marked "expect-error" is a type error
// tsc has to report (types.test.mjs checks the lines tsc names).
import { z } from 'zod';
import { EventBus } from '../../dist/index.js';

interface OrderCreated { orderId: string; amount: number; currency: 'EUR' | 'USD' }
type Events = { 'order.created': OrderCreated };

export async function bad() {
  const bus = new EventBus<Events>({ url: 'http://127.0.0.1:8470' });
  await bus.publish('order.typo', { orderId: 'A', amount: 1, currency: 'EUR' }); // expect-error
  await bus.publish('order.created', { orderId: 'A', amount: '1', currency: 'EUR' }); // expect-error
  await bus.publish('order.created', { orderId: 'A', amount: 1, currency: 'GBP' }); // expect-error
  await bus.publishBatch([{ type: 'order.created', data: { orderId: 1 } }]); // expect-error
  bus.consume('g', (e) => { const s: string = e.data.amount; void s; }); // expect-error
  await bus.schemas.register('order.created', z.object({ orderId: z.number() })); // expect-error
  await bus.publish('order.created', { orderId: 'A', amount: 1, currency: 'EUR' }, { key: 'k', expectedVersion: '1' }); // expect-error
  await bus.groups.nack('g', ['d'], { deadLetter: 'yes' }); // expect-error
  const zbus = EventBus.withSchemas({ 'order.created': z.object({ orderId: z.string() }) });
  await zbus.publish('order.created', { orderId: 42 }); // expect-error
}
