// shop.ts - the whole story in one command (`npm start`): starts eventbusd
// (unless EVENTBUS_URL names one), the order service and the three workers
// in this process, and shows the five results, checking each:
//   1. inventory is down while orders succeed; it catches up when back
//   2. analytics is added without touching the producer
//   3. an order with a missing field is refused at once
//   4. a replay delivers the past to analytics again
//   5. a poison event goes to the DLQ, is redriven after the fix and handled
// Ends with "N passed, N failed" (make test runs it: meson suite node).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { SchemaViolationError } from '@eventbus/client';
import { connect, type Bus } from './contract.js';
import { orderApp } from './order-service.js';
import { inventory } from './inventory.js';
import { notification } from './notification.js';
import { analytics } from './analytics.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const say = (s: string) => console.log(s);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let passed = 0, failed = 0;

function result(n: number, what: string, ok: boolean, detail: string) {
  if (ok) passed++;
  else failed++;
  say(`${ok ? 'ok  ' : 'FAIL'} ${n}. ${what}: ${detail}\n`);
}

async function until(cond: () => boolean | Promise<boolean>, ms = 15000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return true;
    await sleep(25);
  }
  return false;
}

async function startDaemon(): Promise<{ url: string; proc: ChildProcess; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'shop-ts-'));
  const probe = createServer().listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const port = (probe.address() as AddressInfo).port;
  probe.close();
  const bin = process.env.EVENTBUSD ?? join(root, 'bin', 'eventbusd');
  const log = join(dir, 'eventbusd.log');
  const proc = spawn(bin, ['--listen', `127.0.0.1:${port}`, '--data', join(dir, 'data')], { stdio: ['ignore', openSync(log, 'a'), openSync(log, 'a')] });
  const url = `http://127.0.0.1:${port}`;
  const up = await until(async () => (await fetch(`${url}/healthz`).catch(() => null))?.ok === true, 10000);
  if (!up) throw new Error(`${bin} did not start:\n${readFileSync(log, 'utf8')}`);
  return { url, proc, dir };
}

async function story(bus: Bus, orderUrl: string) {
  const stop = new AbortController();
  const post = async (order: unknown) => {
    const r = await fetch(`${orderUrl}/orders`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(order) });
    return { status: r.status, body: (await r.json()) as Record<string, unknown> };
  };
  const order = (id: string, amount: number, email: string, currency = 'EUR') => ({ orderId: id, amount, currency, email, items: [{ sku: 'mug', qty: 2 }] });

  say('== the contract: order.created registered from its Zod schema');
  const [reg] = await bus.registerSchemas();
  say(`   order.created v${reg.version} (${reg.compatibility})`);
  await bus.groups.create('inventory', { types: ['order.created'], start: 'earliest' });
  await bus.groups.create('notification', { types: ['order.created'], start: 'earliest', maxAttempts: 4, backoff: { initialMs: 100, multiplier: 2, maxMs: 400, jitter: 0 } });
  const notify = notification(bus, stop.signal, { fixed: false }, (s) => say(`   ${s}`));

  say('== 1. inventory is down; three orders are placed');
  const placed = [await post(order('A-1001', 129.95, 'ann@example.com')), await post(order('A-1002', 15, 'bob@')), await post(order('A-1003', 42, 'cy@example.com', 'USD'))];
  for (const p of placed) say(`   POST /orders -> ${p.status} ${JSON.stringify(p.body)}`);
  const lag = (await bus.groups.get('inventory')).lag;
  say(`   inventory lag while down: ${lag}`);
  const inv = inventory(bus, stop.signal, (s) => say(`   ${s}`));
  const caughtUp = await until(async () => inv.reserved.size === 3 && (await bus.groups.get('inventory')).lag === 0);
  result(1, 'inventory down while orders succeed', placed.every((p) => p.status === 201) && lag === 3 && caughtUp,
    `3 orders accepted (201) while inventory was down (lag ${lag}); back up, it reserved stock for ${inv.reserved.size}`);

  say('== 2. analytics joins: a new group, the order service untouched');
  await bus.groups.create('analytics', { types: ['order.created'] });
  const ana = analytics(bus, stop.signal, (s) => say(`   ${s}`));
  const p4 = await post(order('A-1004', 7.5, 'dee@example.com'));
  const sawNew = await until(() => ana.seen.includes('A-1004'));
  result(2, 'analytics added without touching the producer', p4.status === 201 && sawNew && ana.seen.length === 1,
    `analytics sees the orders from now on (${ana.seen.join(', ')})`);

  say('== 3. a buggy producer forgets the currency');
  const head = (await bus.stats()).events.head_seq;
  const viaService = await post({ orderId: 'A-1005', amount: 5, email: 'eve@example.com' });
  say(`   via the order service (Zod): ${viaService.status} ${JSON.stringify(viaService.body).slice(0, 120)}...`);
  let refused: SchemaViolationError | null = null;
  try {
    // a producer without the Zod check (another team, another language): the bus itself refuses it
    await bus.publish('order.created', { orderId: 'A-1005', amount: 5, email: 'eve@example.com' } as never);
  } catch (err) {
    if (err instanceof SchemaViolationError) refused = err;
  }
  say(`   straight to the bus: ${refused ? `${refused.status} ${refused.code}: ${refused.message}` : 'accepted!'}`);
  const written = (await bus.stats()).events.head_seq - head;
  result(3, 'a missing field refused at once', viaService.status === 400 && !!refused && refused.details.some((d) => d.path === '/data/currency') && written === 0,
    `422 schema_violation at /data/currency, nothing written, no consumer sees it`);

  say('== 4. replay: analytics had a bug; the last 2 hours again');
  const rp = await bus.replay('analytics', { since: '2h' });
  say(`   replay -> ${JSON.stringify(rp)}`);
  const replayed = await until(() => ['A-1001', 'A-1002', 'A-1003'].every((id) => ana.seen.includes(id)));
  result(4, 'a replay', rp.requeued === 4 && replayed,
    `${rp.requeued} orders delivered to analytics again, including the ${3} from before it existed; revenue ${JSON.stringify(Object.fromEntries(ana.revenue))}`);

  say('== 5. the poison order: A-1002 has the address "bob@"');
  const dead = await until(async () => (await bus.groups.get('notification')).dead_letters === 1);
  const dl = (await bus.dlq.list('notification')).dead_letters[0];
  say(`   dead letter: ${dl?.event.data.orderId}, ${dl?.attempts} attempts, error "${dl?.error}"`);
  say(`   the others went through meanwhile: ${notify.sent.join(', ')}`);
  notify.worker.close();
  await notify.worker.closed;
  say('   notification fixed and restarted; the dead letter redriven');
  const fixed = notification(bus, stop.signal, { fixed: true }, (s) => say(`   ${s}`));
  const n = await bus.dlq.redrive('notification');
  const handled = await until(async () => fixed.sent.includes('A-1002') && (await bus.groups.get('notification')).dead_letters === 0);
  result(5, 'a poison event to the DLQ and redriven', dead && dl?.error === 'invalid email: bob@' && dl.attempts === 4 && n === 1 && handled,
    'retried 4 times with backoff, dead-lettered with its error, redriven after the fix and handled; DLQ empty');

  const st = await bus.stats();
  say(`== where things stand: ${st.events.published} events published; ` +
    st.groups.map((g) => `${g.name} lag ${g.lag}, dlq ${g.dead_letters}`).join('; '));
  stop.abort();
  await Promise.all([inv.worker.closed, ana.worker.closed, fixed.worker.closed]);
}

const own = process.env.EVENTBUS_URL ? null : await startDaemon();
const bus = connect(own?.url ?? process.env.EVENTBUS_URL);
const http = serve({ fetch: orderApp(bus).fetch, port: 0, hostname: '127.0.0.1' });
await new Promise((r) => http.once('listening', r));
const orderUrl = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
say(`eventbusd at ${own?.url ?? process.env.EVENTBUS_URL}, order service at ${orderUrl}\n`);
try {
  await story(bus, orderUrl);
} catch (err) {
  failed++;
  console.error(err);
} finally {
  http.close();
  if (own) {
    own.proc.kill('SIGTERM');
    await new Promise((r) => own.proc.once('exit', r));
    rmSync(own.dir, { recursive: true, force: true });
  }
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
