// order-service.ts - the producer: POST /orders (Hono) validates the order
// with Zod and publishes order.created. It knows nothing of who listens.
//   EVENTBUS_URL=http://127.0.0.1:8470 PORT=3000 node dist/order-service.js
import { Hono } from 'hono';
import { serve } from '@hono/node-server';
import { SchemaViolationError, EventBusError } from '@eventbus/client';
import { OrderCreated, connect, isMain, type Bus } from './contract.js';

export function orderApp(bus: Bus): Hono {
  const app = new Hono();
  app.post('/orders', async (c) => {
    const body = await c.req.json().catch(() => null);
    const parsed = OrderCreated.safeParse(body);
    if (!parsed.success) return c.json({ error: 'invalid order', issues: parsed.error.issues }, 400);
    const order = parsed.data;
    try {
      // The order id makes the publish idempotent: a retried request is a duplicate, not a second order.
      const r = await bus.publish('order.created', order, { id: `order-${order.orderId}`, key: order.email, source: 'order-service' });
      return c.json({ orderId: order.orderId, eventId: r.id, seq: r.seq, duplicate: r.duplicate ?? false }, 201);
    } catch (err) {
      if (err instanceof SchemaViolationError) return c.json({ error: err.message, details: err.details }, 422);
      if (err instanceof EventBusError) return c.json({ error: err.message }, 503);
      throw err;
    }
  });
  return app;
}

if (isMain(import.meta.url)) {
  const bus = connect();
  await bus.registerSchemas();
  const port = Number(process.env.PORT ?? 3000);
  serve({ fetch: orderApp(bus).fetch, port }, () => console.log(`order-service on :${port}`));
}
