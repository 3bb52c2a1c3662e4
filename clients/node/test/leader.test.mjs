// leader.test.mjs - the client prefers the leader among its URLs: real
// eventbusd nodes on one PostgreSQL database (a throwaway cluster,
// tests/tools/pgcluster.py; skipped without PostgreSQL). A follower relays
// a request to the leader and names it in the answer (Eventbus-Leader); a
// client given [follower, leader] sends its next requests to the leader:
// the follower's `forwarded` count (GET /v1/cluster) stops growing while the
// client goes on publishing, pulling and acking. A leader not in the list is
// never contacted. When the leader is SIGKILLed the client fails over and,
// once a new leader is named, talks to it directly.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { EventBus } from '../dist/index.js';
import { urlKey } from '../dist/http.js';
import { freePort, Server, startPostgres } from './server.mjs';

let pg;
before(async () => {
  pg = await startPostgres();
});
after(async () => {
  await pg?.stop();
});

async function cluster(url) {
  const r = await fetch(`${url}/v1/cluster`);
  assert.equal(r.status, 200);
  return r.json();
}
const forwarded = async (url) => (await cluster(url)).forwarded;

/** Nodes on the test's database, started in order (the first leads). */
async function nodes(n) {
  const list = [];
  for (let i = 0; i < n; i++) list.push(await new Server([], { store: pg.uri }).start());
  return list;
}

async function consume(bus, group, n) {
  let got = 0;
  for (let round = 0; got < n && round < 200; round++) {
    const evs = await bus.groups.pull(group, { consumer: 'c1', max: 10, waitMs: 1000 });
    if (evs.length) assert.equal((await bus.groups.ack(group, evs.map((e) => e.delivery.id))).acked, evs.length);
    got += evs.length;
  }
  assert.equal(got, n);
}

test('urlKey: scheme, host in lower case, port (the default written), path without a trailing slash', () => {
  assert.equal(urlKey('http://Node-1.Example:8470/'), 'http://node-1.example:8470');
  assert.equal(urlKey('https://a/x/'), 'https://a:443/x');
  assert.equal(urlKey('http://[::1]:9'), 'http://[::1]:9');
  assert.equal(urlKey('ftp://a'), undefined);
  assert.equal(urlKey('not a url'), undefined);
});

test('a client given [follower, leader] talks to the leader after the first answer', async (t) => {
  if (!pg) return t.skip('PostgreSQL is not installed');
  const [a, b] = await nodes(2);
  try {
    const bus = new EventBus({ url: [b.url, a.url], timeoutMs: 10000 });
    assert.equal(bus.url, b.url);
    const f0 = await forwarded(b.url);
    await bus.publish('lead.one', { n: 0 }); // relayed by b, which names a
    assert.equal(await forwarded(b.url), f0 + 1);
    assert.equal(bus.url, a.url);
    for (let i = 1; i <= 40; i++) await bus.publish('lead.one', { n: i });
    await bus.groups.create('lead-g', { types: ['lead.one'], start: 'earliest' });
    await consume(bus, 'lead-g', 41);
    assert.equal(await forwarded(b.url), f0 + 1); // nothing more went through b
    assert.equal(bus.url, a.url);
  } finally {
    await b.stop();
    await a.stop();
  }
});

test('a leader that is not in the list is never contacted', async (t) => {
  if (!pg) return t.skip('PostgreSQL is not installed');
  const [a, b] = await nodes(2);
  try {
    const f0 = await forwarded(b.url);
    const bus = new EventBus({ url: [b.url, `http://127.0.0.1:${await freePort()}`], timeoutMs: 10000 });
    for (let i = 0; i < 20; i++) await bus.publish('lead.two', { n: i });
    assert.equal(await forwarded(b.url), f0 + 20);
    assert.equal(bus.url, b.url);
    // the leader spelled otherwise (localhost, not the 127.0.0.1 it advertises) is not the URL it names
    const other = new EventBus({ url: [b.url, `http://localhost:${a.port}`], timeoutMs: 10000 });
    for (let i = 0; i < 3; i++) await other.publish('lead.two', { n: i });
    assert.equal(await forwarded(b.url), f0 + 23);
    assert.equal(other.url, b.url);
  } finally {
    await b.stop();
    await a.stop();
  }
});

test('the leader SIGKILLed: the client fails over, then follows the new leader', async (t) => {
  if (!pg) return t.skip('PostgreSQL is not installed');
  const [a, b, c] = await nodes(3);
  try {
    const bus = new EventBus({ url: [b.url, a.url, c.url], timeoutMs: 10000 });
    await bus.publish('lead.three', { n: 0 });
    assert.equal(bus.url, a.url);
    await bus.groups.create('lead-k', { types: ['lead.three'], start: 'earliest' });
    await a.kill9();
    // both survivors name the same new leader (b, almost always: it waited for the lock the longest)
    let leader;
    for (let i = 0; i < 300; i++) {
      const [cb, cc] = [await cluster(b.url), await cluster(c.url)];
      if (cb.leader && cb.leader === cc.leader && cb.leader !== a.url) {
        leader = cb.leader;
        break;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(leader, 'a new leader named by both survivors');
    const fc0 = await forwarded(c.url);
    // a refuses the connection; the next of the list, c, answers (relaying to b and naming it, when b leads)
    let tries = 0;
    for (;;) {
      tries++;
      try {
        await bus.publish('lead.three', { n: 1 });
        break;
      } catch (err) {
        if (tries >= 300) throw err;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    assert.equal(bus.url, leader);
    if (leader === b.url) assert.equal(await forwarded(c.url), fc0 + tries);
    const [fb, fc] = [await forwarded(b.url), await forwarded(c.url)];
    for (let i = 2; i < 32; i++) await bus.publish('lead.three', { n: i });
    await consume(bus, 'lead-k', 32);
    assert.deepEqual([await forwarded(b.url), await forwarded(c.url)], [fb, fc]);
    assert.equal(bus.url, leader);
  } finally {
    await a.kill9();
    await b.stop();
    await c.stop();
  }
});
