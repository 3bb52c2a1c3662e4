// client.test.mjs - every method of EventBus against a real eventbusd.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import {
  EventBus, SchemaViolationError, IncompatibleSchemaError, ConflictError, NotFoundError, InvalidRequestError,
  InvalidSchemaError, ConnectionError, EventBusError, MalformedJsonError, VersionConflictError, LimitExceededError, UnsupportedSchemaError, toCloudEvent, toJsonSchema,
} from '../dist/index.js';
import { Server } from './server.mjs';

let srv, bus;
before(async () => {
  srv = await new Server().start();
  bus = new EventBus({ url: srv.url, token: 'ignored-by-the-server' });
});
after(async () => {
  await srv.stop();
  await srv.cleanup();
});

const OrderCreated = z.object({
  orderId: z.string(),
  amount: z.number().min(0),
  currency: z.enum(['EUR', 'USD']),
});

test('health and metrics', async () => {
  assert.equal(await bus.health(), true);
  assert.match(await bus.metrics(), /eventbus_log_head_seq/);
});

test('publish: answer, duplicate id, all envelope fields stored', async () => {
  const r = await bus.publish('t.pub', { a: 1 }, { id: 'p-1', key: 'k', source: 'svc', subject: 's', correlationId: 'c', causationId: 'x' });
  assert.equal(r.id, 'p-1');
  assert.ok(r.seq >= 1);
  assert.match(r.time, /Z$/);
  const dup = await bus.publish('t.pub', { a: 1 }, { id: 'p-1', source: 'svc' }); // same source + id
  assert.equal(dup.duplicate, true);
  assert.equal(dup.seq, r.seq);
  const e = await bus.event('p-1');
  assert.deepEqual(
    { type: e.type, data: e.data, key: e.key, source: e.source, subject: e.subject, correlationId: e.correlationId, causationId: e.causationId },
    { type: 't.pub', data: { a: 1 }, key: 'k', source: 'svc', subject: 's', correlationId: 'c', causationId: 'x' },
  );
});

test('publishBatch is atomic: one bad event writes nothing, every fault by index', async () => {
  await bus.schemas.register('t.batch', { type: 'object', required: ['n'] });
  const before = (await bus.stats()).events.head_seq;
  await assert.rejects(
    bus.publishBatch([{ type: 't.batch', data: { n: 1 } }, { type: 't.batch', data: {} }, { type: 't.batch', data: { m: 1 } }]),
    (err) => err instanceof SchemaViolationError && err.status === 422 && err.details.map((d) => d.index).join() === '1,2',
  );
  assert.equal((await bus.stats()).events.head_seq, before);
  const rs = await bus.publishBatch([{ type: 't.batch', data: { n: 1 } }, { type: 't.batch', data: { n: 2 }, id: 'b-2' }]);
  assert.equal(rs.length, 2);
  assert.equal(rs[1].id, 'b-2');
  assert.equal(rs[1].seq, rs[0].seq + 1);
});

test('CloudEvents in (structured, batch) and out (toCloudEvent)', async () => {
  const [r] = await bus.publishCloudEvents({ specversion: '1.0', id: 'ce-1', source: '/inv', type: 't.ce', partitionkey: 'sku-1', data: { q: 2 } });
  assert.equal(r.id, 'ce-1');
  const rs = await bus.publishCloudEvents([
    { specversion: '1.0', id: 'ce-2', source: '/inv', type: 't.ce', data: {} },
    { specversion: '1.0', id: 'ce-3', source: '/inv', type: 't.ce', data: {} },
  ]);
  assert.equal(rs.length, 2);
  const e = await bus.event('ce-1');
  assert.equal(e.key, 'sku-1');
  const ce = toCloudEvent(e);
  assert.equal(ce.specversion, '1.0');
  assert.equal(ce.partitionkey, 'sku-1');
  assert.equal(ce.source, '/inv');
  assert.deepEqual(ce.data, { q: 2 });
  await assert.rejects(bus.publishCloudEvents({ specversion: '1.0', id: 'x', type: 't.ce' }), InvalidRequestError);
});

test('events and browse page through the log', async () => {
  for (let i = 0; i < 5; i++) await bus.publish('t.browse', { i });
  const page = await bus.events({ type: 't.browse', limit: 2 });
  assert.equal(page.events.length, 2);
  assert.notEqual(page.next_after_seq, null);
  const all = [];
  for await (const e of bus.browse({ type: 't.browse', limit: 2, since: new Date(Date.now() - 3600e3) })) all.push(e.data.i);
  assert.deepEqual(all, [0, 1, 2, 3, 4]);
  await assert.rejects(bus.events({ limit: 5000 }), (e) => e instanceof InvalidRequestError && e.details[0].field === '?limit');
  await assert.rejects(bus.event('no-such-id'), NotFoundError);
});

test('event by (source, id): the same id from several sources', async () => {
  const a = await bus.publish('t.src', { n: 1 }, { id: 'shared-1', source: 'a+b/c' });
  const b = await bus.publish('t.src', { n: 2 }, { id: 'shared-1', source: 'b' });
  const none = await bus.publish('t.src', { n: 3 }, { id: 'shared-1' });
  assert.equal((await bus.event('shared-1', { source: 'a+b/c' })).seq, a.seq);
  assert.equal((await bus.event('shared-1', { source: 'b' })).seq, b.seq);
  assert.equal((await bus.event('shared-1', { source: '' })).seq, none.seq);
  assert.equal((await bus.event('shared-1')).seq, none.seq); // the newest
  await assert.rejects(bus.event('shared-1', { source: 'a b/c' }), NotFoundError);
});

test('schemas: a Zod 4 schema registers and validates like Zod', async () => {
  const r = await bus.schemas.register('order.created', OrderCreated);
  assert.deepEqual([r.version, r.compatibility], [1, 'backward']);
  const again = await bus.schemas.register('order.created', OrderCreated);
  assert.equal(again.existing, true);
  await bus.publish('order.created', { orderId: 'A-1', amount: 5, currency: 'EUR' });
  for (const bad of [{ orderId: 'A-2', amount: 5 }, { orderId: 'A-3', amount: -1, currency: 'EUR' }, { orderId: 'A-4', amount: 1, currency: 'GBP' }]) {
    assert.equal(OrderCreated.safeParse(bad).success, false);
    await assert.rejects(bus.publish('order.created', bad), (e) => e instanceof SchemaViolationError && e.code === 'schema_violation' && e.details.length >= 1);
  }
  await assert.rejects(bus.publish('order.created', { orderId: 'A-2', amount: 5 }), (e) => e.details.some((d) => d.path === '/data/currency'));
  const js = await toJsonSchema(OrderCreated);
  assert.equal(js.$schema, 'https://json-schema.org/draft/2020-12/schema');
  assert.deepEqual(js.required, ['orderId', 'amount', 'currency']);
});

test('schemas: check, list, get, version; incompatible and invalid schemas', async () => {
  await bus.schemas.register('t.schema', { type: 'object', properties: { a: { type: 'number' } } }, { compatibility: 'backward' });
  const c = await bus.schemas.check('t.schema', { type: 'object', required: ['b'] });
  assert.equal(c.compatible, false);
  assert.ok(c.changes.length >= 1);
  await assert.rejects(
    bus.schemas.register('t.schema', { type: 'object', required: ['b'] }),
    (e) => e instanceof IncompatibleSchemaError && e instanceof ConflictError && e.status === 409 && e.details.length >= 1,
  );
  await assert.rejects(bus.schemas.register('t.schema', { type: 'object', minimum: 'x' }), InvalidSchemaError);
  await assert.rejects(bus.schemas.register('t.schema', 42), TypeError);
  const list = await bus.schemas.list();
  assert.ok(list.some((s) => s.type === 't.schema' && s.versions.join() === '1'));
  const got = await bus.schemas.get('t.schema');
  assert.equal(got.latest.version, 1);
  const v = await bus.schemas.version('t.schema', 'latest');
  assert.deepEqual(v.schema, { type: 'object', properties: { a: { type: 'number' } } });
  await assert.rejects(bus.schemas.version('t.schema', 7), NotFoundError);
  await assert.rejects(bus.schemas.get('t.none'), NotFoundError);
});

test('groups: create, update, list, get, pause, resume, delete', async () => {
  const c = await bus.groups.create('g-admin', { types: ['t.admin', 'x.*'], start: 'earliest', maxAttempts: 3, ackTimeoutMs: 5000, ordering: 'key', backoff: { initialMs: 10, multiplier: 3, maxMs: 100, jitter: 0 } });
  assert.equal(c.created, true);
  assert.deepEqual(c.config.backoff, { initial_ms: 10, multiplier: 3, max_ms: 100, jitter: 0 });
  const u = await bus.groups.update('g-admin', { types: ['t.admin'], maxAttempts: 5 });
  assert.equal(u.created, false);
  assert.equal(u.config.max_attempts, 5);
  assert.ok((await bus.groups.list()).some((g) => g.name === 'g-admin'));
  assert.equal((await bus.groups.pause('g-admin')).paused, true);
  assert.equal((await bus.groups.get('g-admin')).paused, true);
  assert.equal((await bus.groups.resume('g-admin')).paused, false);
  await assert.rejects(bus.groups.create('g-admin', { types: [] }), (e) => e instanceof InvalidRequestError && e.details[0].field.startsWith('/types'));
  await bus.groups.delete('g-admin');
  await assert.rejects(bus.groups.get('g-admin'), (e) => e instanceof NotFoundError && e.status === 404 && e.code === 'not_found');
});

test('pull, ack, nack, extend by hand', async () => {
  await bus.groups.create('g-raw', { types: ['t.raw'], start: 'earliest', maxAttempts: 1 });
  await bus.publishBatch([{ type: 't.raw', data: 1 }, { type: 't.raw', data: 2 }, { type: 't.raw', data: 3 }]);
  const evs = await bus.groups.pull('g-raw', { consumer: 'c1', max: 3, waitMs: 1000 });
  assert.equal(evs.length, 3);
  assert.equal(evs[0].delivery.attempt, 1);
  const ex = await bus.groups.extend('g-raw', [evs[2].delivery.id], 60000);
  assert.equal(ex.extended, 1);
  const a = await bus.groups.ack('g-raw', [evs[0].delivery.id, 'm999.1']);
  assert.deepEqual(a, { acked: 1, unknown: ['m999.1'] });
  const n = await bus.groups.nack('g-raw', [evs[1].delivery.id], { error: 'boom', delayMs: 0 });
  assert.equal(n.nacked, 1);
  const dl = await bus.dlq.list('g-raw');
  assert.equal(dl.dead_letters.length, 1);
  assert.equal(dl.dead_letters[0].error, 'boom');
  assert.equal(dl.dead_letters[0].event.data, 2);
  await bus.groups.ack('g-raw', [evs[2].delivery.id]);
});

test('dlq: list pages, redrive, purge; replay', async () => {
  await bus.groups.create('g-dlq', { types: ['t.dlq'], start: 'earliest', maxAttempts: 1 });
  const ids = (await bus.publishBatch([1, 2, 3].map((i) => ({ type: 't.dlq', data: i, id: `dlq-${i}` })))).map((r) => r.id);
  const evs = await bus.groups.pull('g-dlq', { consumer: 'c', max: 10, waitMs: 1000 });
  await bus.groups.nack('g-dlq', evs.map((e) => e.delivery.id), { error: 'nope' });
  const p1 = await bus.dlq.list('g-dlq', { limit: 2 });
  assert.equal(p1.dead_letters.length, 2);
  const p2 = await bus.dlq.list('g-dlq', { after: p1.next });
  assert.equal(p2.dead_letters.length, 1);
  assert.equal(await bus.dlq.redrive('g-dlq', [ids[0]]), 1);
  const again = await bus.groups.pull('g-dlq', { consumer: 'c', max: 10, waitMs: 1000 });
  assert.equal(again.length, 1);
  assert.match(again[0].delivery.id, /^d/);
  await bus.groups.ack('g-dlq', [again[0].delivery.id]);
  assert.equal(await bus.dlq.purge('g-dlq', ids[1]), 1);
  assert.equal(await bus.dlq.purge('g-dlq'), 1);
  assert.equal((await bus.dlq.list('g-dlq')).dead_letters.length, 0);
  const rp = await bus.replay('g-dlq', { since: '1h' });
  assert.equal(rp.requeued, 3);
  const re = await bus.groups.pull('g-dlq', { consumer: 'c', max: 10, waitMs: 1000 });
  assert.equal(re.length, 3);
  assert.ok(re.every((e) => e.delivery.id.startsWith('r')));
  await bus.groups.ack('g-dlq', re.map((e) => e.delivery.id));
  assert.equal((await bus.replay('g-dlq', { since: { seq: 1 }, until: new Date(), types: ['t.dlq'] })).requeued, 3);
  await assert.rejects(bus.replay('g-dlq', { since: 'yesterday' }), (e) => e instanceof InvalidRequestError && e.details[0].field === '/since');
});

test('stats', async () => {
  const s = await bus.stats();
  assert.ok(s.events.published > 0);
  assert.ok(Array.isArray(s.groups));
});

test('errors: classes carry code, status, details; no server is a ConnectionError', async () => {
  const raw = await bus.transport.request('POST', '/v1/events', undefined, { raw: { body: '{"type":', contentType: 'application/json' } }).catch((e) => e);
  assert.ok(raw instanceof MalformedJsonError && raw instanceof EventBusError);
  assert.equal(raw.status, 400);
  const e = await bus.publish('t.err', {}, { corelationId: 'typo' }).catch((x) => x);
  assert.ok(e instanceof InvalidRequestError);
  assert.equal(e.details[0].field, '/corelationId');
  const dead = new EventBus({ url: 'http://127.0.0.1:1', timeoutMs: 2000 });
  const c = await dead.publish('t.err', {}).catch((x) => x);
  assert.ok(c instanceof ConnectionError);
  assert.equal(c.status, 0);
  assert.equal(c.retryable, true);
  assert.equal(await dead.health(), false);
});

test('expectedVersion: success, keyVersion in the receipt, 409 VersionConflictError with the current version', async () => {
  const key = 'acct-1 +/&=é'; // a key that needs percent-encoding in the stream query
  const a = await bus.publish('t.acct', { n: 1 }, { key, expectedVersion: 0 });
  assert.equal(a.keyVersion, 1);
  assert.equal('key_version' in a, false);
  const b = await bus.publish('t.acct', { n: 2 }, { key, expectedVersion: 1 });
  assert.equal(b.keyVersion, 2);
  const c = await bus.publish('t.acct', { n: 3 }, { key }); // no check
  assert.equal(c.keyVersion, 3);
  const err = await bus.publish('t.acct', { n: 4 }, { key, expectedVersion: 2 }).catch((e) => e);
  assert.ok(err instanceof VersionConflictError, String(err));
  assert.ok(err instanceof ConflictError);
  assert.deepEqual([err.status, err.code, err.currentVersion], [409, 'version_conflict', 3]);
  const fresh = await bus.publish('t.acct', {}, { key, expectedVersion: 0 }).catch((e) => e);
  assert.equal(fresh.currentVersion, 3);
  // A batch: the second event of the key expects the version the first one gets; one conflict refuses all.
  const rs = await bus.publishBatch([
    { type: 't.acct', data: { n: 4 }, key, expectedVersion: 3 },
    { type: 't.acct', data: { n: 5 }, key, expectedVersion: 4 },
    { type: 't.other', data: {} },
  ]);
  assert.deepEqual(rs.map((r) => r.keyVersion), [4, 5, undefined]);
  const bad = await bus.publishBatch([
    { type: 't.acct', data: { n: 6 }, key, expectedVersion: 5 },
    { type: 't.acct', data: { n: 7 }, key, expectedVersion: 5 },
  ]).catch((e) => e);
  assert.ok(bad instanceof VersionConflictError);
  assert.equal(bad.details[0].index, 1);
  assert.equal(bad.currentVersion, 6);
  const page = await bus.keyStream(key);
  assert.equal(page.key_version, 5); // the refused batch wrote nothing
  assert.deepEqual(page.events.map((e) => [e.key_version, e.data.n, e.key]), [1, 2, 3, 4, 5].map((n) => [n, n, key]));
  assert.equal((await bus.event(a.id)).key_version, 1);
});

test('delayed delivery: deliverAt/delay, the receipt, the event when due, bad values name the field', async () => {
  await bus.groups.create('later', { types: ['t.later'] });
  const t0 = Date.now();
  const r = await bus.publish('t.later', { n: 1 }, { delay: '600ms' });
  assert.match(r.deliverAt, /Z$/);
  assert.equal('deliver_at' in r, false);
  const r2 = await bus.publish('t.later', { n: 2 }, { deliverAt: new Date(t0 + 300) });
  assert.ok(r2.deliverAt);
  assert.deepEqual(await bus.groups.pull('later', { consumer: 'c', max: 10 }), []);
  assert.equal((await bus.groups.get('later')).delayed, 2);
  const got = [];
  while (got.length < 2) {
    const evs = await bus.groups.pull('later', { consumer: 'c', max: 10, waitMs: 2000 });
    got.push(...evs);
    if (evs.length) await bus.groups.ack('later', evs.map((e) => e.delivery.id));
  }
  assert.ok(Date.now() - t0 >= 550);
  assert.deepEqual(got.map((e) => e.data.n), [2, 1]);
  assert.equal(got[1].deliver_at, r.deliverAt);
  assert.equal(got[1].published_seq, r.seq);
  const bad = await bus.publish('t.later', {}, { delay: 'soon' }).catch((e) => e);
  assert.ok(bad instanceof InvalidRequestError, String(bad));
  assert.equal(bad.details[0].field, '/delay');
});

test('8 concurrent publishers on one key with expected versions: exactly one winner per version', async () => {
  const key = 'race-1';
  const N = 8, VERSIONS = 10;
  const wins = [];
  let conflicts = 0;
  await Promise.all(Array.from({ length: N }, async (_, w) => {
    let expected = 0;
    while (expected < VERSIONS) {
      try {
        const r = await bus.publish('t.race', { w, expected }, { key, expectedVersion: expected });
        assert.equal(r.keyVersion, expected + 1);
        wins.push(r.keyVersion);
        expected = r.keyVersion;
      } catch (e) {
        if (!(e instanceof VersionConflictError)) throw e;
        assert.ok(e.currentVersion > expected, `${e.currentVersion} > ${expected}`);
        conflicts++;
        expected = e.currentVersion;
      }
    }
  }));
  assert.deepEqual(wins.sort((x, y) => x - y), Array.from({ length: VERSIONS }, (_, i) => i + 1));
  assert.ok(conflicts >= N - 1, `conflicts ${conflicts}`); // version 1 alone has N-1 losers
  // The stream reads back in version order, page by page, each event the one its winner wrote.
  const pages = [];
  for await (const p of bus.stream(key, { limit: 3 })) pages.push(p);
  assert.deepEqual(pages.map((p) => p.events.length), [3, 3, 3, 1]);
  const events = pages.flatMap((p) => p.events);
  assert.deepEqual(events.map((e) => e.key_version), Array.from({ length: VERSIONS }, (_, i) => i + 1));
  assert.deepEqual(events.map((e) => e.data.expected), Array.from({ length: VERSIONS }, (_, i) => i));
  for (let i = 1; i < events.length; i++) assert.ok(events[i].seq > events[i - 1].seq);
  const tail = [];
  for await (const p of bus.stream(key, { fromVersion: 9 })) tail.push(...p.events.map((e) => e.key_version));
  assert.deepEqual(tail, [9, 10]);
  assert.deepEqual((await bus.keyStream('no-such-key')).key_version, 0);
});

test('limit_exceeded and unsupported_schema have their classes', async () => {
  const s = await new Server(['--max-groups', '1']).start();
  try {
    const b = new EventBus({ url: s.url });
    await b.groups.create('g1', { types: ['t'] });
    const e = await b.groups.create('g2', { types: ['t'] }).catch((x) => x);
    assert.ok(e instanceof LimitExceededError && e instanceof ConflictError, String(e));
    assert.equal(e.status, 409);
    await b.groups.create('g1', { types: ['t', 'u'] }); // updates still work
    const u = await b.schemas.register('t', { $schema: 'http://json-schema.org/draft-04/schema#', type: 'object' }).catch((x) => x);
    assert.ok(u instanceof UnsupportedSchemaError, String(u));
    assert.equal(u.status, 422);
  } finally {
    await s.stop();
    await s.cleanup();
  }
});
