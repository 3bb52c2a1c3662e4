// contract.ts - the shop's one event, as a Zod 4 schema: the order service
// validates with it, the bus gets its JSON Schema (Zod's own conversion),
// and every service is typed by it (z.infer).
import { z } from 'zod';
import { EventBus } from '@eventbus/client';

export const OrderCreated = z.object({
  orderId: z.string().min(1),
  amount: z.number().min(0),
  currency: z.enum(['EUR', 'USD', 'GBP']),
  email: z.string(),
  items: z.array(z.object({ sku: z.string(), qty: z.number().int().min(1) })).optional(),
});
export type OrderCreated = z.infer<typeof OrderCreated>;

export const schemas = { 'order.created': OrderCreated };

export function connect(url = process.env.EVENTBUS_URL ?? 'http://127.0.0.1:8470') {
  return EventBus.withSchemas(schemas, { url });
}
export type Bus = ReturnType<typeof connect>;

/** True when this module is the program node was started with. */
export function isMain(metaUrl: string): boolean {
  return !!process.argv[1] && new URL(metaUrl).pathname === process.argv[1];
}

/** An AbortSignal raised by SIGTERM or SIGINT: workers finish what they hold, then stop. */
export function shutdownSignal(): AbortSignal {
  const ac = new AbortController();
  for (const s of ['SIGTERM', 'SIGINT'] as const) process.once(s, () => ac.abort());
  return ac.signal;
}
