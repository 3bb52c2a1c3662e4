// roundtrip.test.mjs - CloudEvents in and out of a real eventbusd
// ($EVENTBUSD) through the official CloudEvents JS SDK (npm `cloudevents`):
// events made by the SDK are published in structured, binary and batch mode,
// and the answers of GET /v1/events/{id} (application/cloudevents+json),
// browse and pull (application/cloudevents-batch+json) are read back with
// HTTP.toEvent, which validates them as CloudEvents 1.0.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CloudEvent, HTTP } from 'cloudevents';

const daemon = process.env.EVENTBUSD;
let proc, dir, base;

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

before(async () => {
  assert.ok(daemon, 'EVENTBUSD must name the eventbusd binary');
  dir = mkdtempSync(join(tmpdir(), 'eb-ce-'));
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  proc = spawn(daemon, ['--listen', `127.0.0.1:${port}`, '--data', join(dir, 'data'),
    '--fsync', 'never'], { stdio: 'ignore' });
  for (let i = 0; i < 500; i++) {
    try {
      if ((await fetch(`${base}/healthz`)).ok) return;
    } catch { /* not listening yet */ }
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error('eventbusd did not start');
});

after(async () => {
  // A clean stop writes a state snapshot into the data directory: wait for
  // the exit before removing it.
  if (proc && proc.exitCode === null && proc.signalCode === null) {
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGTERM');
    await exited;
  }
  rmSync(dir, { recursive: true, force: true });
});

// Sends an SDK message ({headers, body}) and returns the parsed answer.
async function send(path, message, extraHeaders = {}) {
  const r = await fetch(`${base}${path}`, {
    method: 'POST', headers: { ...message.headers, ...extraHeaders }, body: message.body,
  });
  return { status: r.status, body: await r.json() };
}

// GETs path with an Accept header; the answer as the SDK reads it.
async function receive(path, accept, init = {}) {
  const r = await fetch(`${base}${path}`, { headers: { accept, ...(init.headers ?? {}) }, ...init });
  assert.equal(r.status, 200, await r.clone().text());
  const headers = Object.fromEntries(r.headers.entries());
  const body = await r.text();
  return { events: HTTP.toEvent({ headers, body }), headers };
}

test('structured and binary events come back as the same CloudEvents', async () => {
  const made = [
    new CloudEvent({
      id: 'ce-structured-1', source: '/shop/orders', type: 'com.example.OrderCreated',
      subject: 'order-1', time: '2026-01-02T03:04:05.678Z', datacontenttype: 'application/json',
      partitionkey: 'order-1', tenant: 'acme', priority: 7, urgent: true,
      data: { orderId: 'order-1', amount: 12.5, lines: [1, 2] },
    }),
    new CloudEvent({
      id: 'ce-binary-1', source: '/shop/orders', type: 'Microsoft.Storage.BlobCreated',
      time: '2026-01-02T03:04:06Z', datacontenttype: 'application/json', partitionkey: 'order-1',
      region: 'eu', data: { blob: 'b1' },
    }),
  ];
  let r = await send('/v1/events', HTTP.structured(made[0]));
  assert.equal(r.status, 201, JSON.stringify(r.body));
  assert.equal(r.body.key_version, 1);
  r = await send('/v1/events', HTTP.binary(made[1]));
  assert.equal(r.status, 201, JSON.stringify(r.body));
  assert.equal(r.body.key_version, 2);

  for (const want of made) {
    const { events: got, headers } =
      await receive(`/v1/events/${want.id}`, 'application/cloudevents+json');
    assert.match(headers['content-type'], /^application\/cloudevents\+json/);
    assert.ok(got instanceof CloudEvent, 'one CloudEvent');
    got.validate();
    for (const k of ['id', 'source', 'type', 'subject', 'datacontenttype', 'partitionkey']) {
      assert.equal(got[k], want[k], k);
    }
    assert.equal(new Date(got.time).getTime(), new Date(want.time).getTime(),
      'the time given at publish is the event time');
    assert.deepEqual(got.data, want.data);
    assert.ok(got.ebappendtime && got.ebappendtime !== got.time, 'append time as an extension');
    assert.equal(typeof got.ebseq, 'number');
  }
  const { events: first } = await receive('/v1/events/ce-structured-1', 'application/cloudevents+json');
  assert.equal(first.tenant, 'acme');
  assert.equal(first.priority, 7, 'extension values keep their JSON types');
  assert.equal(first.urgent, true);
  assert.equal(first.ebkeyversion, 1);
});

test('a batch in, a key stream and a pull out as CloudEvents batches', async () => {
  const batch = [1, 2, 3].map((i) => new CloudEvent({
    id: `ce-batch-${i}`, source: '/billing', type: 'com.example.InvoicePaid',
    partitionkey: 'invoice-9', seqno: i, data: { i },
  }));
  const r = await fetch(`${base}/v1/events/batch`, {
    method: 'POST', headers: { 'content-type': 'application/cloudevents-batch+json' },
    body: JSON.stringify(batch.map((e) => e.toJSON())),
  });
  assert.equal(r.status, 201, await r.text());

  const { events: stream, headers } =
    await receive('/v1/events?key=invoice-9', 'application/cloudevents-batch+json');
  assert.match(headers['content-type'], /^application\/cloudevents-batch\+json/);
  assert.ok(Array.isArray(stream));
  assert.deepEqual(stream.map((e) => e.id), ['ce-batch-1', 'ce-batch-2', 'ce-batch-3']);
  assert.deepEqual(stream.map((e) => e.ebkeyversion), [1, 2, 3]);
  assert.deepEqual(stream.map((e) => e.seqno), [1, 2, 3]);
  assert.equal(headers['eventbus-next-from-version'], '4');
  stream.forEach((e) => e.validate());

  const put = await fetch(`${base}/v1/groups/billing`, {
    method: 'PUT', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ types: ['com.example.InvoicePaid'], start: 'earliest' }),
  });
  assert.ok(put.status === 201 || put.status === 200, await put.text());
  const pr = await fetch(`${base}/v1/groups/billing/pull`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/cloudevents-batch+json' },
    body: JSON.stringify({ consumer: 'node', max: 10 }),
  });
  assert.equal(pr.status, 200);
  const pulled = HTTP.toEvent({ headers: Object.fromEntries(pr.headers.entries()), body: await pr.text() });
  assert.deepEqual(pulled.map((e) => e.id), ['ce-batch-1', 'ce-batch-2', 'ce-batch-3']);
  for (const e of pulled) {
    e.validate();
    assert.equal(typeof e.ebdeliveryid, 'string', 'delivery metadata in extensions');
    assert.equal(e.ebattempt, 1);
  }
  const ack = await fetch(`${base}/v1/groups/billing/ack`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ids: pulled.map((e) => e.ebdeliveryid) }),
  });
  assert.equal(ack.status, 200, await ack.text());

  const { events: page } = await receive('/v1/events?type=com.example.InvoicePaid',
    'application/cloudevents-batch+json');
  assert.equal(page.length, 3);
});

test('invalid CloudEvents values are refused at publish, naming the attribute', async () => {
  const bad = [
    [{ time: 'yesterday' }, '/time'],
    [{ 'Bad-Name': 1 }, '/Bad-Name'],
    [{ waytoolongextensionname1: 'x' }, '/waytoolongextensionname1'],
    [{ ratio: 0.5 }, '/ratio'],
  ];
  for (const [extra, field] of bad) {
    const body = { specversion: '1.0', id: 'x', source: '/s', type: 'a.b', ...extra };
    const r = await fetch(`${base}/v1/events`, {
      method: 'POST', headers: { 'content-type': 'application/cloudevents+json' },
      body: JSON.stringify(body),
    });
    const js = await r.json();
    assert.equal(r.status, 400, JSON.stringify(js));
    assert.equal(js.error.details[0].field, field);
  }
});
