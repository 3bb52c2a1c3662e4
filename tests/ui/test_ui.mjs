// test_ui.mjs - browser tests of the dashboard (/ui/) for meson's `ui`
// suite: a real eventbusd ($EVENTBUSD) on a free port with data (schemas,
// 1,000 groups, events, dead letters), Debian's chromium driven headless by
// playwright-core. Loads every page, pauses and resumes a group, previews
// and runs a replay, redrives a dead letter and pulls it again, pastes an
// incompatible schema and reads the breaks, checks the token handling
// against a second eventbusd with --auth token (a real read-only token
// finds the write controls disabled and its reads working), scans
// every page with axe-core (no serious or critical violation), saves a
// screenshot of each page into docs/screenshots/, and prints the figures
// (first-load bytes, time to interactive at 1,000 groups). Ends with the
// project's "N passed, N failed, N skipped".
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, readFileSync, mkdirSync, openSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const daemon = process.env.EVENTBUSD || join(root, 'bin', 'eventbusd');
const browserPath = process.env.CHROMIUM || '/usr/bin/chromium';
const shots = join(root, 'docs', 'screenshots');
const GROUPS = Number(process.env.UI_GROUPS || 1000);

function missing(what) {
  console.log(`FAIL setup: ${what}: run scripts/deps.sh (it installs chromium and runs npm ci in tests/ui)`);
  console.log('0 passed, 1 failed, 0 skipped');
  process.exit(1);
}
let chromium;
try { ({chromium} = await import('playwright-core')); } catch (e) { missing('playwright-core is not installed'); }
if (!existsSync(browserPath)) missing(`no browser at ${browserPath}`);

let passed = 0, failed = 0, skipped = 0;
const figures = [];
async function test(name, fn) {
  const t0 = Date.now();
  try { await fn(); passed++; console.log(`ok ${name} (${Date.now() - t0} ms)`); }
  catch (e) { failed++; console.log(`FAIL ${name}: ${e.stack || e}`); }
}
function assert(c, msg) { if (!c) throw new Error('assertion failed: ' + msg); }

function freePort() {
  return new Promise((res) => { const s = createServer(); s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => res(p)); }); });
}

// --- the server and its data ---------------------------------------------------
const dir = mkdtempSync(join(tmpdir(), 'eb-ui-'));
const port = await freePort();
const base = `http://127.0.0.1:${port}`;
const log = openSync(join(dir, 'server.log'), 'a');
const srv = spawn(daemon, ['--listen', `127.0.0.1:${port}`, '--data', join(dir, 'data'), '--fsync', 'interval',
  '--history-interval', '1s', '--push-allow-private'], {stdio: ['ignore', log, log]});
const servers = [srv];
// A request to the server at url (default: the open one), with a token or none.
async function callAt(url, tok, method, path, body) {
  const headers = {'Content-Type': 'application/json'};
  if (tok) headers.Authorization = 'Bearer ' + tok;
  const r = await fetch(url + path, {method, headers, body: body === undefined ? undefined : JSON.stringify(body)});
  const text = await r.text();
  return {status: r.status, body: text ? JSON.parse(text) : null};
}
const call = (method, path, body) => callAt(base, null, method, path, body);
async function ready(url = base, logName = 'server.log') {
  for (let i = 0; i < 500; i++) {
    try { if ((await fetch(url + '/healthz')).ok) return; } catch (e) { /* not yet */ }
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error('eventbusd did not start: ' + readFileSync(join(dir, logName), 'utf8'));
}
// A second eventbusd with --auth token (its admin token written to a file):
// {url, admin}.
async function startWithAuth() {
  const p = await freePort(), url = `http://127.0.0.1:${p}`, file = join(dir, 'admin.token');
  const out = openSync(join(dir, 'auth-server.log'), 'a');
  servers.push(spawn(daemon, ['--listen', `127.0.0.1:${p}`, '--data', join(dir, 'data-auth'), '--fsync', 'interval',
    '--auth', 'token', '--admin-token-file', file], {stdio: ['ignore', out, out]}));
  await ready(url, 'auth-server.log');
  for (let i = 0; i < 500 && !existsSync(file); i++) await sleep(20);
  return {url, admin: readFileSync(file, 'utf8').trim()};
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let browser = null;
try {
  await ready();
  const schema1 = {type: 'object', required: ['orderId', 'amount'],
    properties: {orderId: {type: 'string'}, amount: {type: 'number', minimum: 0}}};
  assert((await call('PUT', '/v1/schemas/order.created', {schema: schema1})).status === 201, 'schema v1');
  const schema2 = {type: 'object', description: 'an order was placed', required: ['orderId', 'amount'],
    properties: {orderId: {type: 'string'}, amount: {type: 'number'}}};
  assert((await call('PUT', '/v1/schemas/order.created', {schema: schema2})).status === 201, 'schema v2');
  assert((await call('PUT', '/v1/groups/billing', {types: ['order.*'], start: 'earliest', max_attempts: 1})).status === 201, 'group billing');
  for (let i = 1; i < GROUPS; i += 50) // the rest, for the 1,000-group figure
    await Promise.all(Array.from({length: Math.min(50, GROUPS - i)}, (_, k) =>
      call('PUT', `/v1/groups/svc-${String(i + k).padStart(4, '0')}`, {types: ['order.*']})));
  // svc-0001 is pushed, to a port nobody listens on: its circuit opens (the overview shows it).
  const deadPort = await freePort();
  assert((await call('PATCH', '/v1/groups/svc-0001', {max_attempts: 100, push: {url: `http://127.0.0.1:${deadPort}/hook`,
    secret: 'whsec_' + Buffer.from('0123456789abcdef0123456789abcdef').toString('base64'), circuit_failures: 1}})).status === 200, 'pushed group');
  const evs = Array.from({length: 40}, (_, i) => ({type: 'order.created', key: `cust-${i % 5}`, data: {orderId: `A-${i}`, amount: i}}));
  assert((await call('POST', '/v1/events/batch', {events: evs})).status === 201, 'publish');
  // billing: 30 acked, 5 nacked into the DLQ (max_attempts 1), 5 left
  const pulled = (await call('POST', '/v1/groups/billing/pull', {consumer: 'billing-1', max: 35})).body.events;
  assert(pulled.length === 35, 'pulled 35');
  await call('POST', '/v1/groups/billing/ack', {ids: pulled.slice(0, 30).map((e) => e.delivery.id)});
  await call('POST', '/v1/groups/billing/nack', {ids: pulled.slice(30).map((e) => e.delivery.id), error: 'card declined: insufficient funds'});
  assert((await call('GET', '/v1/groups/billing')).body.dead_letters === 5, '5 dead letters');
  await sleep(2500); // a few history samples

  mkdirSync(shots, {recursive: true});
  const profile = mkdtempSync(join(tmpdir(), 'eb-ui-chromium-'));
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: browserPath, headless: true, viewport: {width: 1280, height: 860},
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync']});
  browser = {ctx, profile};
  const page = ctx.pages()[0] || await ctx.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  // console errors: a CSP violation, a failed request the page did not expect
  // (a 4xx the page handles, such as probing GET /v1/tokens/self, is logged by the browser: not an error)
  page.on('console', (m) => { if (m.type() === 'error' && !/status of 4\d\d/.test(m.text())) errors.push('console: ' + m.text()); });
  const axeSrc = readFileSync(join(here, 'node_modules', 'axe-core', 'axe.min.js'), 'utf8');
  async function settled() { await page.waitForSelector('main[data-ready]', {timeout: 15000}); }
  async function axe(name) {
    // (evaluated over the DevTools protocol: the page's CSP forbids inline scripts)
    await page.evaluate(axeSrc);
    const r = await page.evaluate(async () => (await window.axe.run(document, {resultTypes: ['violations']})).violations
      .map((v) => ({id: v.id, impact: v.impact, n: v.nodes.length, help: v.help})));
    const bad = r.filter((v) => v.impact === 'serious' || v.impact === 'critical');
    assert(bad.length === 0, `${name}: axe: ${JSON.stringify(bad)}`);
  }
  async function go(hash) {
    await page.evaluate((h) => {
      delete document.querySelector('main').dataset.ready;
      if (location.hash === h) window.dispatchEvent(new HashChangeEvent('hashchange')); // same page: load again
      else location.hash = h;
    }, hash);
    await settled();
  }

  await test('overview: first load and time to interactive at 1,000 groups', async () => {
    const t0 = Date.now();
    await page.goto(base + '/ui/');
    await settled();
    const tti = Date.now() - t0;
    const size = await page.evaluate(() => {
      const all = [...performance.getEntriesByType('navigation'), ...performance.getEntriesByType('resource')];
      const ui = all.filter((e) => new URL(e.name).pathname.startsWith('/ui/'));
      return {ui: ui.reduce((a, e) => a + e.transferSize, 0), all: all.reduce((a, e) => a + e.transferSize, 0)};
    });
    figures.push(`first load: ${size.ui} bytes transferred for the dashboard's files, ${size.all} with the API answers (${GROUPS} groups)`);
    figures.push(`time to interactive (goto to the overview table drawn) at ${GROUPS} groups: ${tti} ms`);
    assert(size.ui > 0 && size.ui < 200 * 1024, `first load ${size.ui} bytes`);
    const rows = await page.locator('#groups tbody tr').count();
    assert(rows === Math.min(100, GROUPS), `a page of groups (${rows})`);
    assert((await page.textContent('#gcount')).includes(`of ${GROUPS} groups`), 'group count');
    if (GROUPS > 100) {
      await page.click('#pn');
      await page.waitForFunction(() => /page 2 of/.test(document.querySelector('#pager').textContent));
      assert((await page.locator('#groups tbody tr').first().textContent()).includes('svc-0100'), 'page 2 starts at the 101st');
      await page.click('#pp');
      await page.waitForFunction(() => /page 1 of/.test(document.querySelector('#pager').textContent));
    }
    await page.fill('#gfilter', 'billing');
    await page.waitForFunction(() => document.querySelectorAll('#groups tbody tr').length === 1);
    assert((await page.textContent('#gcount')).includes(`1 of ${GROUPS} groups`), 'filtered on the server');
    if (GROUPS > 1) { // a pushed group shows its endpoint's circuit; a pulled one says pull
      await page.fill('#gfilter', 'svc-0001');
      await page.waitForFunction(() => /circuit (open|half-open)/.test(document.querySelector('#groups tbody')?.textContent || ''),
        null, {timeout: 20000});
      await page.fill('#gfilter', 'billing');
      await page.waitForFunction(() => /\bpull\b/.test(document.querySelector('#groups tbody')?.textContent || ''));
    }
    await page.fill('#gfilter', '');
    await page.waitForFunction((n) => document.querySelectorAll('#groups tbody tr').length === n, Math.min(100, GROUPS));
    await page.screenshot({path: join(shots, 'overview.png')});
    await axe('overview');
  });

  await test('group page: charts, pause and resume, replay preview and replay', async () => {
    await go('#/groups/billing');
    assert(await page.locator('#charts svg').count() === 4, 'four charts');
    await page.click('#pause');
    await page.waitForSelector('#gstate .warn', {timeout: 10000});
    assert((await call('GET', '/v1/groups/billing')).body.paused === true, 'paused on the server');
    await page.click('#resume');
    await page.waitForSelector('#gstate .ok', {timeout: 10000});
    assert((await call('GET', '/v1/groups/billing')).body.paused === false, 'resumed on the server');
    await page.fill('#rsince', '1h');
    await page.click('#rpreview');
    await page.waitForFunction(() => /would requeue 40 events/.test(document.querySelector('#rout').textContent));
    assert((await call('GET', '/v1/groups/billing')).body.counters.replayed === 0, 'preview changed nothing');
    await page.click('#rgo');
    await page.waitForFunction(() => /requeued 40 events/.test(document.querySelector('#rout').textContent));
    assert((await call('GET', '/v1/groups/billing')).body.counters.replayed === 40, 'replayed 40 on the server');
    await page.screenshot({path: join(shots, 'group.png'), fullPage: true});
    await axe('group');
  });

  await test('dead letters: list, search, redrive one and see it delivered', async () => {
    await go('#/dlq/billing');
    assert(await page.locator('#dl tbody input[type=checkbox]').count() === 5, 'five dead letters');
    await page.fill('#dq', 'declined');
    assert(await page.locator('#dl tbody input[type=checkbox]').count() === 5, 'search by error');
    await page.fill('#dq', 'no-such-error');
    assert(await page.locator('#dl tbody input[type=checkbox]').count() === 0, 'search excludes');
    await page.fill('#dq', '');
    const id = await page.locator('#dl tbody input[type=checkbox]').first().getAttribute('value');
    await page.locator('#dl tbody input[type=checkbox]').first().check();
    await page.click('#redsel');
    await page.waitForFunction(() => document.querySelectorAll('#dl tbody input[type=checkbox]').length === 4);
    // drain the replayed copies; the redriven one comes with a "d" delivery id
    let seen = false;
    for (let i = 0; i < 20 && !seen; i++) {
      const got = (await call('POST', '/v1/groups/billing/pull', {consumer: 'billing-2', max: 100})).body.events;
      if (!got.length) break;
      seen = got.some((e) => e.id === id && e.delivery.id.startsWith('d'));
      await call('POST', '/v1/groups/billing/ack', {ids: got.map((e) => e.delivery.id)});
    }
    assert(seen, 'the redriven dead letter was delivered again');
    await page.locator('#dl details summary').first().click();
    await page.screenshot({path: join(shots, 'dead-letters.png'), fullPage: true});
    await axe('dead letters');
  });

  await test('events: browse, open one, follow live', async () => {
    await go('#/events');
    // the 40 orders and the 5 eventbus.dead_letter notices of billing's dead letters
    assert(await page.locator('#ev tbody tr').count() === 45, 'forty-five events');
    await page.locator('#ev a[data-i]').first().click();
    assert((await page.textContent('#ejson')).includes('"orderId"'), 'event JSON shown');
    await page.check('#follow');
    await call('POST', '/v1/events', {type: 'order.created', key: 'live', data: {orderId: 'LIVE-1', amount: 1}});
    await page.waitForFunction(() => document.querySelectorAll('#ev tbody tr').length === 46, null, {timeout: 10000});
    await page.uncheck('#follow');
    await page.screenshot({path: join(shots, 'events.png')});
    await axe('events');
  });

  await test('schemas: diff of two versions, an incompatible candidate lists its breaks', async () => {
    await go('#/schemas/order.created');
    assert(await page.locator('#diff span.add').count() > 0, 'the diff shows the added lines');
    await page.fill('#cand', JSON.stringify({type: 'object', required: ['orderId', 'amount', 'customerId'],
      properties: {orderId: {type: 'string'}, amount: {type: 'string'}, customerId: {type: 'string'}}}, null, 2));
    await page.click('#check');
    await page.waitForSelector('#breaks li');
    const breaks = await page.locator('#breaks li').allTextContents();
    assert(breaks.length >= 2, 'breaks listed: ' + breaks.join(' | '));
    assert(breaks.some((b) => b.includes('customerId')) && breaks.some((b) => b.includes('amount')), 'both breaks named');
    assert((await page.textContent('#verdict')).includes('Not compatible'), 'verdict');
    await page.screenshot({path: join(shots, 'schemas.png'), fullPage: true});
    await axe('schemas');
  });

  await test('dark mode: readable (axe contrast) and shot', async () => {
    await page.emulateMedia({colorScheme: 'dark'});
    await go('#/');
    const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    assert(bg === 'rgb(13, 17, 23)', 'dark background: ' + bg);
    await page.screenshot({path: join(shots, 'overview-dark.png')});
    await axe('overview (dark)');
    await go('#/groups/billing');
    await axe('group (dark)');
    await page.emulateMedia({colorScheme: 'light'});
  });

  // Tokens, against a second eventbusd with --auth token and real tokens:
  // the page learns what its token may do from GET /v1/tokens/self. A
  // read-only token (scope read) finds every write control disabled and
  // still reads (the group, its dead letters, a schema); the admin token
  // finds them enabled and its pause works; no token is asked for one.
  await test('token: a read-only token on a server with auth disables write actions, reads work', async () => {
    const a = await startWithAuth();
    const adm = (m, path, body) => callAt(a.url, a.admin, m, path, body);
    assert((await adm('PUT', '/v1/schemas/order.created', {schema: {type: 'object'}})).status === 201, 'schema');
    assert((await adm('PUT', '/v1/groups/billing', {types: ['order.*'], start: 'earliest', max_attempts: 1})).status === 201, 'group');
    assert((await adm('POST', '/v1/events/batch', {events: [1, 2, 3].map((i) => ({type: 'order.created', data: {n: i}}))})).status === 201, 'publish');
    const got = (await adm('POST', '/v1/groups/billing/pull', {consumer: 'c', max: 1})).body.events;
    await adm('POST', '/v1/groups/billing/nack', {ids: got.map((e) => e.delivery.id), error: 'card declined'});
    const made = await adm('POST', '/v1/tokens', {name: 'viewer', scopes: ['read']});
    assert(made.status === 201, 'read-only token made');
    const ro = made.body.token;
    const auth = [];
    page.on('request', (r) => { if (r.url().startsWith(a.url + '/v1/')) auth.push(r.headers()['authorization']); });

    await page.goto(a.url + '/ui/#/groups/billing');
    await page.waitForFunction(() => document.querySelector('#mode').textContent === 'a token is needed');
    await page.fill('#token', ro);
    await page.click('#login button');
    await page.waitForFunction(() => document.querySelector('#mode').textContent === 'read-only');
    await settled();
    assert(auth.includes('Bearer ' + ro), 'Authorization: Bearer sent');
    assert(await page.getAttribute('#mode', 'title') === 'token viewer', 'the token named');
    assert((await page.textContent('main')).includes('billing'), 'the group page reads');
    for (const sel of ['#pause', '#resume', '#rgo', '#cfgsave'])
      assert(await page.locator(sel).isDisabled(), sel + ' disabled');
    assert(!(await page.locator('#rpreview').isDisabled()), 'preview stays enabled');
    await page.screenshot({path: join(shots, 'read-only.png')});
    await go('#/dlq/billing');
    assert((await page.textContent('main')).includes('card declined'), 'the dead letter reads');
    for (const sel of ['#redsel', '#redall', '#pursel', '#purall'])
      assert(await page.locator(sel).isDisabled(), sel + ' disabled');
    await go('#/schemas/order.created');
    assert(await page.locator('#register').isDisabled(), 'register disabled');
    assert(!(await page.locator('#check').isDisabled()), 'check stays enabled');

    // the admin token: everything enabled, and a write goes through
    await page.fill('#token', a.admin);
    await page.click('#login button');
    await page.waitForFunction(() => document.querySelector('#mode').textContent === '');
    await go('#/groups/billing');
    assert(!(await page.locator('#pause').isDisabled()), 'writable with groups:write');
    await page.click('#pause');
    for (let i = 0; i < 250 && !(await adm('GET', '/v1/groups/billing')).body.paused; i++) await sleep(20);
    assert((await adm('GET', '/v1/groups/billing')).body.paused === true, 'paused by the admin token');
    await page.evaluate(() => sessionStorage.removeItem('eb_token'));
  });

  await test('no script errors', async () => {
    assert(errors.length === 0, errors.join('\n'));
  });
} catch (e) {
  failed++;
  console.log('FAIL setup: ' + (e.stack || e));
} finally {
  if (browser) { await browser.ctx.close().catch(() => {}); rmSync(browser.profile, {recursive: true, force: true}); }
  for (const s of servers) {
    s.kill('SIGTERM');
    await new Promise((r) => (s.exitCode !== null ? r() : s.once('exit', r)));
  }
  rmSync(dir, {recursive: true, force: true});
}
for (const f of figures) console.log('# ' + f);
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed ? 1 : 0);
