// analytics.ts - consumer group `analytics`: revenue per currency. Added
// later, without a change to the order service.
import { connect, isMain, shutdownSignal, type Bus } from './contract.js';

export function analytics(bus: Bus, signal: AbortSignal, log = console.log) {
  const revenue = new Map<string, number>();
  const seen: string[] = [];
  const worker = bus.consume('analytics', (event) => {
    const { currency, amount, orderId } = event.data;
    revenue.set(currency, (revenue.get(currency) ?? 0) + amount);
    seen.push(orderId);
    log(`analytics: ${orderId} ${amount} ${currency}${event.delivery.id.startsWith('r') ? ' (replayed)' : ''}`);
  }, { concurrency: 10, signal, consumer: 'analytics-1' });
  return { worker, revenue, seen };
}

if (isMain(import.meta.url)) {
  const bus = connect();
  await bus.groups.create('analytics', { types: ['order.created'] });
  await analytics(bus, shutdownSignal()).worker.closed;
}
