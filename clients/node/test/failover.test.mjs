// failover.test.mjs - a client with several URLs against real eventbusd
// processes (each on its own data directory: this is about the client
// moving, not shared state): a node SIGKILLed mid-stream, a node answering
// 503 (--max-connections reached), a hung node, and an ambiguous failure made
// deterministic by a loopback proxy that forwards a request and drops the
// connection once the server's answer (the event durable) came back: the
// copy sent again carries the same id and is answered as a duplicate.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer } from 'node:net';
import { EventBus, ConnectionError, EventBusError } from '../dist/index.js';
import { ulid } from '../dist/ulid.js';
import { Server } from './server.mjs';

/** How many events with this id (undefined: all) a node holds. */
async function count(url, id) {
  const page = await new EventBus({ url }).events({ limit: 1000 });
  return page.events.filter((e) => id === undefined || e.id === id).length;
}

test('ulid: 26 characters, time first, strictly increasing within a ms and when the clock steps back', () => {
  const t = Date.now() + 1e9; // ahead of any id this process made
  const ids = [t, t, t, t + 1, t - 5000, t + 2].map((ms) => ulid(ms));
  for (let i = 1; i < ids.length; i++) assert.ok(ids[i - 1] < ids[i], `${ids[i - 1]} < ${ids[i]}`);
  for (const id of ids) assert.match(id, /^[0-7][0-9A-HJKMNP-TV-Z]{25}$/);
  const ms = [...ids.at(-1).slice(0, 10)].reduce((n, c) => n * 32 + '0123456789ABCDEFGHJKMNPQRSTVWXYZ'.indexOf(c), 0);
  assert.equal(ms, t + 2);
});

test('url lists: a string with commas or an array, up to 16, checked', () => {
  assert.deepEqual(new EventBus({ url: ' http://a:1/ ,https://b:2' }).transport.urls, ['http://a:1', 'https://b:2']);
  assert.equal(new EventBus({ url: ['http://a:1', 'http://b:2'] }).url, 'http://a:1');
  const many = Array.from({ length: 17 }, (_, i) => `http://a:${i + 1}`);
  assert.equal(new EventBus({ url: many.slice(0, 16) }).transport.urls.length, 16);
  for (const bad of [many, 'http://a:1,,http://b:2', [], 'a:1'])
    assert.throws(() => new EventBus({ url: bad }), TypeError);
});

test('a node SIGKILLed mid-stream: publishes go on on the next, which the client keeps', async () => {
  const a = await new Server().start();
  const b = await new Server().start();
  try {
    const bus = new EventBus({ url: [a.url, b.url], timeoutMs: 10000 });
    const ids = new Set();
    for (let i = 0; i < 30; i++) {
      if (i === 10) await a.kill9();
      if (i === 20) await a.start({ samePort: true }); // back, but the client stays on b
      const r = await bus.publish('order.created', { n: i });
      assert.equal(r.duplicate, undefined);
      assert.match(r.id, /^[0-9A-HJKMNP-TV-Z]{26}$/); // the client's ULID
      ids.add(r.id);
      assert.equal(bus.url, i < 10 ? a.url : b.url);
    }
    assert.equal(ids.size, 30);
    await b.kill9();
    const batch = await bus.publishBatch([{ type: 'order.created', data: 1 }, { type: 'order.created', data: 2 }]);
    assert.equal(batch.length, 2);
    assert.equal(bus.url, a.url); // round robin: back to a
    assert.equal(await count(a.url), 12);
    await b.start({ samePort: true });
    assert.equal(await count(b.url), 20);
  } finally {
    await a.cleanup();
    await b.cleanup();
  }
});

/** A connection to port that the server has counted: one request on it answered 200 (held open). */
async function holdConnection(port) {
  for (let i = 0; i < 200; i++) {
    const sock = connect(port, '127.0.0.1');
    sock.on('error', () => {});
    const got = await new Promise((resolve) => {
      sock.once('data', (d) => resolve(d.toString()));
      sock.once('close', () => resolve(''));
      sock.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    });
    if (got.startsWith('HTTP/1.1 200')) return sock;
    sock.destroy(); // the start's own keep-alive connection may still hold the slot
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('no connection slot came free');
}

test('a node answering 503 (out of connections): the request moves on; alone, the 503 is the answer', async () => {
  const a = await new Server(['--max-connections', '1']).start();
  const b = await new Server().start();
  let held;
  try {
    held = await holdConnection(a.port);
    const only = await new EventBus({ url: a.url }).publish('order.created', {}).catch((e) => e);
    assert.ok(only instanceof EventBusError, String(only));
    assert.equal(only.status, 503);
    assert.equal(only.code, 'too_many_connections');
    const bus = new EventBus({ url: `${a.url},${b.url}` });
    const r = await bus.publish('order.created', { n: 1 });
    assert.equal(bus.url, b.url);
    assert.equal(await count(b.url, r.id), 1);
  } finally {
    held?.destroy();
    await a.cleanup();
    await b.cleanup();
  }
});

test('a hung node: the request times out there and moves on', async () => {
  const a = await new Server().start();
  const held = [];
  const silent = createServer((sock) => held.push(sock.on('error', () => {}))); // accepts, never answers
  await new Promise((r) => silent.listen(0, '127.0.0.1', r));
  try {
    const bus = new EventBus({ url: [`http://127.0.0.1:${silent.address().port}`, a.url], timeoutMs: 300 });
    const st = await bus.stats();
    assert.equal(typeof st.events.published_since_start, 'number');
    assert.equal(bus.url, a.url);
  } finally {
    held.forEach((sock) => sock.destroy());
    silent.close();
    await a.cleanup();
  }
});

/** Reads one HTTP message (head + Content-Length body) from a socket. */
function readMessage(sock) {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const onData = (d) => {
      buf = Buffer.concat([buf, d]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const m = /content-length:\s*(\d+)/i.exec(buf.subarray(0, end).toString());
      if (buf.length >= end + 4 + (m ? Number(m[1]) : 0)) {
        sock.off('data', onData);
        resolve(buf);
      }
    };
    sock.on('data', onData);
    sock.once('error', reject);
  });
}

/** Forwards each request to port and drops the connection once the answer came, without passing it on. */
async function lossyProxy(port) {
  const p = { forwarded: 0 };
  p.server = createServer(async (client) => {
    client.on('error', () => {});
    const req = await readMessage(client);
    const up = connect(port, '127.0.0.1');
    up.write(req);
    await readMessage(up);
    p.forwarded++;
    up.destroy();
    client.destroy(); // the answer is lost: the client sees the connection close
  });
  await new Promise((r) => p.server.listen(0, '127.0.0.1', r));
  p.url = `http://127.0.0.1:${p.server.address().port}`;
  return p;
}

test('an ambiguous failure: the publish is sent again with the same id, a duplicate; once: not sent again', async () => {
  const a = await new Server().start();
  const px = await lossyProxy(a.port);
  try {
    const urls = [px.url, a.url];
    let bus = new EventBus({ url: urls });
    const r = await bus.publish('order.created', { n: 1 });
    assert.equal(px.forwarded, 1); // the first copy reached the server...
    assert.equal(r.duplicate, true); // ...so the second is a duplicate
    assert.equal(bus.url, a.url);
    assert.equal(await count(a.url, r.id), 1);

    bus = new EventBus({ url: urls });
    const rs = await bus.publishBatch([{ type: 'order.created', data: 2 }, { type: 'order.created', data: 3, id: 'mine-3' }]);
    assert.equal(px.forwarded, 2);
    assert.deepEqual(rs.map((x) => x.duplicate), [true, true]);
    assert.equal(rs[1].id, 'mine-3');
    for (const x of rs) assert.equal(await count(a.url, x.id), 1);
    assert.equal(await count(a.url), 3);

    bus = new EventBus({ url: urls });
    const e = await bus.transport.request('POST', '/v1/events', { type: 'order.created', data: 4 }, { once: true }).catch((x) => x);
    assert.ok(e instanceof ConnectionError, String(e));
    assert.equal(px.forwarded, 3);
    assert.equal(await count(a.url), 4); // once, by the proxy; not again
    assert.equal(bus.url, px.url);
    assert.equal((await bus.stats()).events.published_since_start, 4); // a GET moves on
    assert.equal(px.forwarded, 4);
    assert.equal(bus.url, a.url);
  } finally {
    px.server.close();
    await a.cleanup();
  }
});
