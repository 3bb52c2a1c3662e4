// inventory.ts - consumer group `inventory`: reserves stock for each order.
import { connect, isMain, shutdownSignal, type Bus } from './contract.js';

export function inventory(bus: Bus, signal: AbortSignal, log = console.log) {
  const reserved = new Map<string, number>();
  const worker = bus.consume('inventory', async (event) => {
    const qty = (event.data.items ?? [{ sku: 'default', qty: 1 }]).reduce((n, i) => n + i.qty, 0);
    reserved.set(event.data.orderId, qty);
    log(`inventory: reserved ${qty} item(s) for ${event.data.orderId}`);
  }, { concurrency: 10, signal, consumer: 'inventory-1' });
  return { worker, reserved };
}

if (isMain(import.meta.url)) {
  const bus = connect();
  await bus.groups.create('inventory', { types: ['order.created'], start: 'earliest' });
  await inventory(bus, shutdownSignal()).worker.closed;
}
