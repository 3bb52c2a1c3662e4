// notification.ts - consumer group `notification`: e-mails the customer.
// Its first version throws on a malformed address (the poison event ends in
// the DLQ); `fixed` is the repaired one, which skips such addresses.
import { connect, isMain, shutdownSignal, type Bus } from './contract.js';

export function notification(bus: Bus, signal: AbortSignal, o: { fixed: boolean }, log = console.log) {
  const sent: string[] = [];
  const worker = bus.consume('notification', (event) => {
    const { email, orderId } = event.data;
    if (!/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(email)) {
      if (!o.fixed) throw new Error(`invalid email: ${email}`);
      log(`notification: ${orderId} has no usable address (${email}); flagged for support`);
      sent.push(orderId);
      return;
    }
    log(`notification: mailed ${email} about ${orderId} (attempt ${event.delivery.attempt})`);
    sent.push(orderId);
  }, { concurrency: 5, signal, consumer: o.fixed ? 'notification-fixed' : 'notification-1' });
  return { worker, sent };
}

if (isMain(import.meta.url)) {
  const bus = connect();
  await bus.groups.create('notification', { types: ['order.created'], start: 'earliest', maxAttempts: 4, backoff: { initialMs: 200, multiplier: 2 } });
  await notification(bus, shutdownSignal(), { fixed: process.argv.includes('--fixed') }).worker.closed;
}
