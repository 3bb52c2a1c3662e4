// bench.mjs - make bench: @eventbus/client beside a hand-written fetch loop
// and the C client (libeventbus), against one eventbusd in one run.
//   publish: N events in batches of 100, one request at a time; events/s and
//            client CPU per published event (process.cpuUsage: user + system)
//   consume: draining M events from a group with a trivial handler; events/s
// The node figures are the best of ROUNDS rounds, run alternately.
// Usage: node bench/node/bench.mjs PATH/TO/eventbusd PATH/TO/bench_node_c [N] [M]
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Server } from '../../clients/node/test/server.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const pkg = join(root, 'clients', 'node');
if (!existsSync(join(pkg, 'dist', 'index.js')))
  execFileSync(process.execPath, [join(pkg, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', pkg], { stdio: 'inherit' });
const { EventBus } = await import('../../clients/node/dist/index.js');

const [daemon, cBench] = process.argv.slice(2, 4);
const N = Number(process.argv[4] ?? 30000);
const M = Number(process.argv[5] ?? 30000);
const ROUNDS = 3;
process.env.EVENTBUSD = daemon;

const data = { orderId: 'A-1001', amount: 129.95, currency: 'EUR', email: 'a@b.cd' };
const batch = () => Array.from({ length: 100 }, () => ({ type: 'order.created', data }));

function measure(fn) {
  return async (n) => {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await fn(n);
    const s = (performance.now() - t0) / 1000;
    const c = process.cpuUsage(c0);
    return { eps: n / s, cpuUs: (c.user + c.system) / n };
  };
}

const srv = await new Server().start();
const url = srv.url;
const bus = new EventBus({ url });
const json = { 'content-type': 'application/json' };

// The hand-written loops, as a service would write them with fetch.
const fetchPublish = measure(async (n) => {
  for (let i = 0; i < n; i += 100) {
    const r = await fetch(`${url}/v1/events/batch`, { method: 'POST', headers: json, body: JSON.stringify(batch()) });
    if (r.status !== 201) throw new Error(`publish: ${r.status}`);
    await r.json();
  }
});
const clientPublish = measure(async (n) => {
  for (let i = 0; i < n; i += 100) await bus.publishBatch(batch());
});

async function fetchConsume(group, m) {
  const t0 = performance.now();
  let seen = 0;
  const handler = (e) => e.data;
  while (seen < m) {
    const r = await fetch(`${url}/v1/groups/${group}/pull`, { method: 'POST', headers: json, body: JSON.stringify({ consumer: 'fetch', max: 100, wait_ms: 1000 }) });
    const { events } = await r.json();
    const ids = [];
    for (const e of events) {
      handler(e);
      ids.push(e.delivery.id);
    }
    if (ids.length) {
      const a = await fetch(`${url}/v1/groups/${group}/ack`, { method: 'POST', headers: json, body: JSON.stringify({ ids }) });
      await a.json();
    }
    seen += events.length;
  }
  return seen / ((performance.now() - t0) / 1000);
}

async function clientConsume(group, m) {
  const t0 = performance.now();
  const ac = new AbortController();
  let acked = 0;
  const w = bus.consume(group, (e) => e.data, {
    concurrency: 100, signal: ac.signal, waitMs: 1000,
    onAck: (evs) => {
      acked += evs.length;
      if (acked >= m) ac.abort();
    },
  });
  await w.closed;
  return acked / ((performance.now() - t0) / 1000);
}

const best = (rs, k) => rs.reduce((a, r) => (k === 'cpuUs' ? Math.min(a, r[k]) : Math.max(a, r[k])), k === 'cpuUs' ? Infinity : 0);

// publish
await fetchPublish(2000);
await clientPublish(2000); // warm-up
const pub = { fetch: [], client: [] };
for (let r = 0; r < ROUNDS; r++) {
  const order = r % 2 ? ['client', 'fetch'] : ['fetch', 'client'];
  for (const k of order) pub[k].push(await (k === 'fetch' ? fetchPublish : clientPublish)(N));
}

// consume: every group drains the same M events of their own type
const groups = ['fetch-0', 'client-0', 'fetch-1', 'client-1', 'c', 'warm'];
for (const g of groups) await bus.groups.create(g, { types: ['consume.me'], start: 'earliest' });
for (let i = 0; i < M; i += 100) await bus.publishBatch(Array.from({ length: 100 }, () => ({ type: 'consume.me', data })));
await clientConsume('warm', 5000);
const con = { fetch: [], client: [] };
con.fetch.push({ eps: await fetchConsume('fetch-0', M) });
con.client.push({ eps: await clientConsume('client-0', M) });
con.client.push({ eps: await clientConsume('client-1', M) });
con.fetch.push({ eps: await fetchConsume('fetch-1', M) });

// the C client, same server, same run
let c = {};
if (cBench && existsSync(cBench)) {
  const out = execFileSync(cBench, [url, String(N), 'c', String(M)], { encoding: 'utf8' });
  const m = out.match(/^RESULT c (.*)$/m);
  if (m) for (const [, k, v] of m[1].matchAll(/(\w+)=([\d.]+)/g)) c[k] = Number(v);
}
await srv.stop();
await srv.cleanup();

const f = {
  pubFetch: best(pub.fetch, 'eps'), pubClient: best(pub.client, 'eps'),
  cpuFetch: best(pub.fetch, 'cpuUs'), cpuClient: best(pub.client, 'cpuUs'),
  conFetch: best(con.fetch, 'eps'), conClient: best(con.client, 'eps'),
};
const n0 = (x) => Math.round(x).toLocaleString('en');
console.log(`node ${process.version}; publish ${N} events in batches of 100 (one request at a time, fsync always), consume ${M} events (trivial handler); best of ${ROUNDS} (publish), 2 (consume)`);
console.log(`  publish   @eventbus/client ${n0(f.pubClient)} events/s, ${f.cpuClient.toFixed(2)} us CPU/event`);
console.log(`            fetch loop       ${n0(f.pubFetch)} events/s, ${f.cpuFetch.toFixed(2)} us CPU/event  (client/fetch CPU ${(f.cpuClient / f.cpuFetch).toFixed(2)}x, target <= 1.5x)`);
console.log(`            C libeventbus    ${n0(c.publish_events_per_s ?? 0)} events/s, ${(c.publish_cpu_us ?? 0).toFixed(2)} us CPU/event`);
console.log(`  consume   @eventbus/client ${n0(f.conClient)} events/s (concurrency 100)  (${((f.conClient / f.conFetch) * 100).toFixed(0)}% of the fetch loop, target >= 80%)`);
console.log(`            fetch loop       ${n0(f.conFetch)} events/s (pull 100, ack, repeat)`);
console.log(`            C eb_consume     ${n0(c.consume_events_per_s ?? 0)} events/s (pull 100)`);
console.log(`RESULT node publish_client_eps=${f.pubClient.toFixed(0)} publish_fetch_eps=${f.pubFetch.toFixed(0)} cpu_client_us=${f.cpuClient.toFixed(3)} cpu_fetch_us=${f.cpuFetch.toFixed(3)} consume_client_eps=${f.conClient.toFixed(0)} consume_fetch_eps=${f.conFetch.toFixed(0)} publish_c_eps=${(c.publish_events_per_s ?? 0).toFixed(0)} cpu_c_us=${(c.publish_cpu_us ?? 0).toFixed(3)} consume_c_eps=${(c.consume_events_per_s ?? 0).toFixed(0)}`);
