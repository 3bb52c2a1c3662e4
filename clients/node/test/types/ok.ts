// ok.ts - must compile (tsc --noEmit): the typed surface as a user writes it.
import { z } from 'zod';
import { EventBus, NonRetryableError, SchemaViolationError, VersionConflictError, type EventOf } from '../../dist/index.js';

interface OrderCreated { orderId: string; amount: number; currency: 'EUR' | 'USD' }
interface PaymentFailed { orderId: string; reason: string }
type Events = { 'order.created': OrderCreated; 'payment.failed': PaymentFailed };

export async function typed(signal: AbortSignal) {
  const bus = new EventBus<Events>({ url: 'http://127.0.0.1:8470' });
  const r = await bus.publish('order.created', { orderId: 'A-1', amount: 5, currency: 'EUR' }, { id: 'x', key: 'c-1' });
  const seq: number = r.seq;
  await bus.publishBatch([
    { type: 'order.created', data: { orderId: 'A-2', amount: 1, currency: 'USD' } },
    { type: 'payment.failed', data: { orderId: 'A-2', reason: 'card' }, key: 'A-2' },
  ]);
  await bus.groups.create('inventory', { types: ['order.created'], start: 'earliest', maxAttempts: 4 });
  const w = bus.consume('inventory', async (event) => {
    if (event.type === 'order.created') {
      const amount: number = event.data.amount; // narrowed by type
      void amount;
    } else {
      const reason: string = event.data.reason;
      void reason;
    }
    const attempt: number = event.delivery.attempt;
    void attempt;
  }, { concurrency: 10, signal });
  const only = bus.consume('inventory', (e) => { const c: 'EUR' | 'USD' = e.data.currency; void c; }, { types: ['order.created'] });
  await Promise.all([w.closed, only.closed]);
  const all: EventOf<Events>[] = [];
  void all;
  try {
    await bus.publish('order.created', { orderId: 'A-3', amount: 1, currency: 'EUR' });
  } catch (e) {
    if (e instanceof SchemaViolationError) console.log(e.code, e.status, e.details[0]?.path);
  }
  try {
    const v = await bus.publish('order.created', { orderId: 'A-4', amount: 1, currency: 'EUR' }, { key: 'c-1', expectedVersion: 0 });
    const kv: number | undefined = v.keyVersion;
    void kv;
  } catch (e) {
    if (e instanceof VersionConflictError) { const cur: number = e.currentVersion; void cur; }
  }
  await bus.publishBatch([{ type: 'payment.failed', data: { orderId: 'A', reason: 'r' }, key: 'A', expectedVersion: 3 }]);
  for await (const page of bus.stream('c-1', { fromVersion: 1, limit: 10 }))
    for (const e of page.events) { const v: number | undefined = e.key_version; void v; }
  const next: number = (await bus.keyStream('c-1')).next_from_version;
  void next;
  bus.consume('inventory', () => { throw new NonRetryableError('never'); });
  await bus.groups.nack('inventory', ['d1'], { error: 'bad', deadLetter: true });
  const dl = (await bus.dlq.list('inventory')).dead_letters[0];
  const first: string = dl.first_failed_at;
  const attempt: number = dl.errors[0].attempt;
  void first; void attempt;
  return seq;
}

const OrderCreatedZ = z.object({ orderId: z.string(), amount: z.number().min(0), currency: z.enum(['EUR', 'USD']) });

export async function zodTyped() {
  const bus = EventBus.withSchemas({ 'order.created': OrderCreatedZ });
  await bus.registerSchemas({ compatibility: 'backward' });
  await bus.schemas.register('order.created', OrderCreatedZ);
  await bus.publish('order.created', { orderId: 'A', amount: 1, currency: 'USD' });
  bus.consume('x', (e) => { const id: string = e.data.orderId; void id; });
  const untyped = new EventBus();
  await untyped.publish('anything.at.all', { free: 'form' });
  await untyped.schemas.register('anything.at.all', { type: 'object' });
}
