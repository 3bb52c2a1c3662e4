// auth.test.mjs - https and tokens against a real eventbusd started with
// --tls-listen/--tls-cert/--tls-key and --auth token: the `ca` option (a
// path, PEM text, $EVENTBUS_CACERT), a wrong CA and the default store
// refused (CertificateError), `token` and $EVENTBUS_TOKEN, and the classes
// of 401 (UnauthorizedError), 403 (ForbiddenError naming the scope) and 429
// (RateLimitedError with retryAfter). Certificates are made with the
// openssl CLI, as tests/integration/test_tls.py does.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  EventBus, UnauthorizedError, ForbiddenError, RateLimitedError, CertificateError, ConnectionError, EventBusError,
} from '../dist/index.js';
import { Server, freePort } from './server.mjs';

const openssl = (dir, ...args) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
function makeCa(dir, name) {
  openssl(dir, 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', `${name}.key`, '-out', `${name}.pem`, '-days', '2', '-subj', `/CN=${name}`);
  return join(dir, `${name}.pem`);
}
function makeCert(dir, ca, name) {
  openssl(dir, 'req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`,
    '-out', `${name}.csr`, '-subj', '/CN=localhost');
  execFileSync('sh', ['-c', `printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > ${name}.ext`], { cwd: dir });
  openssl(dir, 'x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.pem`, '-CAkey', `${ca}.key`, '-CAcreateserial',
    '-out', `${name}.pem`, '-days', '2', '-extfile', `${name}.ext`);
  return [join(dir, `${name}.pem`), join(dir, `${name}.key`)];
}

let srv, tlsUrl, ca, otherCa, admin;
before(async () => {
  srv = new Server();
  ca = makeCa(srv.dir, 'ca');
  otherCa = makeCa(srv.dir, 'other');
  const [cert, key] = makeCert(srv.dir, 'ca', 'srv');
  const tlsPort = await freePort();
  const tokenFile = join(srv.dir, 'admin.token');
  srv.args = ['--tls-listen', `127.0.0.1:${tlsPort}`, '--tls-cert', cert, '--tls-key', key,
    '--auth', 'token', '--admin-token-file', tokenFile, '--auth-fail-limit', '0'];
  await srv.start();
  for (let i = 0; i < 250 && !existsSync(tokenFile); i++) await new Promise((r) => setTimeout(r, 20));
  admin = readFileSync(tokenFile, 'utf8').trim();
  tlsUrl = `https://localhost:${tlsPort}`;
});
after(async () => {
  await srv.stop();
  await srv.cleanup();
});

/** A client with the given options, $EVENTBUS_TOKEN and $EVENTBUS_CACERT set for its making only. */
function withEnv(env, make) {
  const saved = {};
  for (const k of Object.keys(env)) {
    saved[k] = process.env[k];
    if (env[k] === undefined) delete process.env[k];
    else process.env[k] = env[k];
  }
  try {
    return make();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}
const clean = { EVENTBUS_TOKEN: undefined, EVENTBUS_CACERT: undefined, EVENTBUS_URL: undefined };

test('https with ca as a path: publish, read back, many requests over keep-alive', async () => {
  const bus = withEnv(clean, () => new EventBus({ url: tlsUrl, ca, token: admin }));
  const r = await bus.publish('t.tls', { n: 1 }, { id: 'tls-1' });
  assert.ok(r.seq >= 1);
  assert.equal((await bus.event('tls-1')).data.n, 1);
  const many = await Promise.all(Array.from({ length: 50 }, (_, i) => bus.publish('t.tls', { n: i })));
  assert.equal(new Set(many.map((x) => x.seq)).size, 50);
  const me = await bus.tokenSelf();
  assert.equal(me.auth, 'token');
  assert.equal(me.name, 'admin');
  assert.ok(me.scopes.includes('admin'));
});

test('https with ca as PEM text, and from $EVENTBUS_CACERT / $EVENTBUS_TOKEN', async () => {
  const pem = readFileSync(ca, 'utf8');
  const a = withEnv(clean, () => new EventBus({ url: tlsUrl, ca: pem, token: admin }));
  assert.equal((await a.stats()).events.head_seq >= 1, true);
  const b = withEnv({ ...clean, EVENTBUS_CACERT: ca, EVENTBUS_TOKEN: admin, EVENTBUS_URL: tlsUrl }, () => new EventBus());
  assert.equal((await b.tokenSelf()).name, 'admin');
  // token '' sends none even with the variable set
  const c = withEnv({ ...clean, EVENTBUS_TOKEN: admin }, () => new EventBus({ url: tlsUrl, ca, token: '' }));
  await assert.rejects(c.stats(), UnauthorizedError);
});

test('a wrong CA, and the default store, refuse the server: CertificateError, not retryable', async () => {
  for (const opts of [{ ca: otherCa }, {}]) {
    const bus = withEnv(clean, () => new EventBus({ url: tlsUrl, token: admin, ...opts }));
    const err = await bus.stats().then(() => null, (e) => e);
    assert.ok(err instanceof CertificateError, String(err));
    assert.ok(err instanceof ConnectionError);
    assert.equal(err.status, 0);
    assert.equal(err.retryable, false);
    assert.match(err.message, /certificate/);
  }
  assert.throws(() => withEnv(clean, () => new EventBus({ url: tlsUrl, ca: join(srv.dir, 'no-such.pem') })), /cannot read the CA file/);
});

test('401: no token, an unknown one, a revoked one', async () => {
  const admBus = withEnv(clean, () => new EventBus({ url: tlsUrl, ca, token: admin }));
  const made = await admBus.transport.request('POST', '/v1/tokens', { name: 'gone', scopes: ['read'] });
  for (const token of ['', 'ebt_unknown', made.body.token]) {
    if (token === made.body.token) await admBus.transport.request('DELETE', '/v1/tokens/gone');
    const bus = withEnv(clean, () => new EventBus({ url: tlsUrl, ca, token }));
    const err = await bus.groups.list().then(() => null, (e) => e);
    assert.ok(err instanceof UnauthorizedError, String(err));
    assert.equal(err.status, 401);
    assert.equal(err.code, 'unauthorized');
    assert.equal(err.retryable, false);
  }
});

test('403: ForbiddenError names the missing scope', async () => {
  const admBus = withEnv(clean, () => new EventBus({ url: tlsUrl, ca, token: admin }));
  const made = await admBus.transport.request('POST', '/v1/tokens', { name: 'orders', scopes: ['read', 'publish:orders.*'] });
  const bus = withEnv(clean, () => new EventBus({ url: tlsUrl, ca, token: made.body.token }));
  assert.ok((await bus.publish('orders.created', {})).seq >= 1);
  let err = await bus.publish('users.created', {}).then(() => null, (e) => e);
  assert.ok(err instanceof ForbiddenError, String(err));
  assert.equal(err.status, 403);
  assert.equal(err.scope, 'publish:users.created');
  err = await bus.groups.create('billing', { types: ['orders.*'] }).then(() => null, (e) => e);
  assert.ok(err instanceof ForbiddenError);
  assert.equal(err.scope, 'groups:write');
  assert.ok(Array.isArray(await bus.groups.list())); // read is allowed
  const me = await bus.tokenSelf();
  assert.deepEqual(me.scopes, ['read', 'publish:orders.*']);
});

test('429: RateLimitedError with retryAfter after repeated 401s (a server of its own)', async () => {
  const s = await new Server(['--auth', 'token', '--auth-fail-limit', '2']).start();
  try {
    const bad = withEnv(clean, () => new EventBus({ url: s.url, token: 'ebt_wrong' }));
    for (let i = 0; i < 2; i++) await assert.rejects(bad.stats(), UnauthorizedError);
    const err = await bad.stats().then(() => null, (e) => e);
    assert.ok(err instanceof RateLimitedError, String(err));
    assert.ok(err instanceof EventBusError);
    assert.equal(err.status, 429);
    assert.equal(err.code, 'auth_backoff');
    assert.equal(err.retryAfter, 1);
    assert.equal(err.retryable, true);
  } finally {
    await s.stop();
    await s.cleanup();
  }
});

test('the worker consumes over https with a token', async () => {
  const bus = withEnv(clean, () => new EventBus({ url: tlsUrl, ca, token: admin }));
  await bus.groups.create('tls-workers', { types: ['t.work'], start: 'earliest' });
  await bus.publishBatch(Array.from({ length: 20 }, (_, i) => ({ type: 't.work', data: { i } })));
  const seen = new Set();
  const ac = new AbortController();
  const w = bus.consume('tls-workers', async (e) => {
    seen.add(e.data.i);
    if (seen.size === 20) ac.abort();
  }, { signal: ac.signal, waitMs: 200 });
  await w.closed;
  assert.equal(seen.size, 20);
  assert.equal((await bus.groups.get('tls-workers')).lag, 0);
});
