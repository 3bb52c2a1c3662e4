// app.js - the eventbus dashboard: plain JavaScript, no dependencies. Every
// figure and action goes through the public HTTP API (same origin) with the
// token from the header field (kept in sessionStorage) as a Bearer token.
// Pages (hash routes): #/ overview, #/groups/G, #/dlq[/G], #/events,
// #/schemas[/T]. Write controls carry class "w" and are disabled when the
// token may not write (see caps below).
'use strict';

const $ = (s, el = document) => el.querySelector(s);
const main = $('#main');
const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'}[c]));
const fmt = (n) => (n == null ? '—' : Number(n).toLocaleString('en'));
const enc = encodeURIComponent;
let timer = null; // the current page's refresh
let gen = 0;      // bumped on each navigation: stale answers are dropped

// --- token and capabilities -------------------------------------------------
// What this token may change: caps.write (groups: pause, resume, config,
// replay, redrive, purge; scope groups:write) and caps.schemas (register;
// scope schemas:write), from GET /v1/tokens/self on load and on each new
// token: {"auth":"none"} (no token checked: everything), or the token's
// name and scopes; 401 (no token, or a refused one): nothing.
// Controls: class "w" (groups), "ws" (schemas).
const caps = {write: true, schemas: true, name: ''};
function token() { return sessionStorage.getItem('eb_token') || ''; }
function applyCaps() {
  document.querySelectorAll('.w').forEach((b) => { b.disabled = !caps.write; });
  document.querySelectorAll('.ws').forEach((b) => { b.disabled = !caps.schemas; });
  $('#mode').textContent = caps.write && caps.schemas ? '' : 'read-only';
  $('#mode').title = caps.name ? 'token ' + caps.name : '';
}
async function learnCaps() {
  caps.write = caps.schemas = true;
  caps.name = '';
  let refused = false;
  try {
    const r = await fetch('/v1/tokens/self', {headers: hdrs()});
    const j = await r.json().catch(() => null);
    if (r.ok && j && j.auth === 'token') {
      caps.write = j.scopes.includes('groups:write');
      caps.schemas = j.scopes.includes('schemas:write');
      caps.name = j.name;
    } else if (!r.ok) {
      caps.write = caps.schemas = false;
      refused = r.status === 401;
    }
  } catch (e) { caps.write = caps.schemas = false; /* unreachable: the reads will say so */ }
  applyCaps();
  if (refused) $('#mode').textContent = token() ? 'token refused' : 'a token is needed';
}
function hdrs(extra) {
  const h = Object.assign({'Accept': 'application/json'}, extra || {});
  if (token()) h['Authorization'] = 'Bearer ' + token();
  return h;
}

// --- API --------------------------------------------------------------------
async function api(method, path, body) {
  const opt = {method, headers: hdrs(body !== undefined ? {'Content-Type': 'application/json'} : {})};
  if (body !== undefined) opt.body = JSON.stringify(body);
  const r = await fetch(path, opt);
  let j = null;
  if (r.status !== 204) { try { j = await r.json(); } catch (e) { j = null; } }
  if (r.status === 401) { $('#mode').textContent = token() ? 'token refused' : 'a token is needed'; $('#token').focus(); }
  if (!r.ok) {
    const err = new Error((j && j.error && j.error.message) || ('HTTP ' + r.status));
    err.status = r.status; err.body = j;
    throw err;
  }
  return j;
}
function toast(msg, bad) {
  const t = $('#toast');
  t.textContent = msg; t.className = 'show ' + (bad ? 'bad' : '');
  clearTimeout(toast.t); toast.t = setTimeout(() => { t.className = ''; }, 5000);
}
async function act(fn, okMsg) {
  try { const r = await fn(); if (okMsg) toast(typeof okMsg === 'function' ? okMsg(r) : okMsg); return r; }
  catch (e) { toast(e.message, true); return null; }
}

// --- small views ------------------------------------------------------------
function age(ms) {
  if (!ms) return '—';
  const s = ms / 1000;
  return s < 60 ? s.toFixed(1) + ' s' : s < 3600 ? (s / 60).toFixed(1) + ' min' : (s / 3600).toFixed(1) + ' h';
}
function bytes(n) {
  const u = ['B', 'KB', 'MB', 'GB', 'TB']; let i = 0;
  while (n >= 1000 && i < u.length - 1) { n /= 1000; i++; }
  return n.toFixed(i ? 1 : 0) + ' ' + u[i];
}
function card(label, value) { return `<div class="card"><b>${value}</b><span>${esc(label)}</span></div>`; }
// A line chart of values (numbers) as inline SVG, with its maximum labelled.
function chart(title, ts, values) {
  const w = 400, h = 120, max = Math.max(1, ...values);
  const n = values.length;
  const pts = values.map((v, i) => `${n > 1 ? (i / (n - 1)) * (w - 30) + 28 : 28},${h - 14 - (v / max) * (h - 24)}`).join(' ');
  const t0 = ts.length ? new Date(ts[0]).toLocaleTimeString() : '', t1 = ts.length ? new Date(ts[n - 1]).toLocaleTimeString() : '';
  return `<figure class="card chart"><figcaption>${esc(title)}</figcaption>
    <svg viewBox="0 0 ${w} ${h}" role="img" aria-label="${esc(title)}: ${n} samples, last ${fmt(values[n - 1])}, max ${fmt(max)}">
    <line x1="28" y1="${h - 14}" x2="${w}" y2="${h - 14}"/><line x1="28" y1="10" x2="28" y2="${h - 14}"/>
    <text x="0" y="14">${fmt(max)}</text><text x="0" y="${h - 14}">0</text>
    <text x="28" y="${h - 2}">${esc(t0)}</text><text x="${w - 60}" y="${h - 2}">${esc(t1)}</text>
    ${n ? `<polyline points="${pts}"/>` : ''}</svg></figure>`;
}
function every(ms, fn) { clearInterval(timer); timer = setInterval(fn, ms); }

// --- overview ---------------------------------------------------------------
// Polls GET /v1/overview: the log's figures, totals over every group and one
// page of groups (sorted, filtered by the server), so the page stays small
// at thousands of groups.
let prev = null; // the previous totals, for rates
const CIRCUIT = {closed: 'ok', half_open: 'warn', open: 'bad'}; // a pushed group's circuit, as a class
const ovState = {page: 0, filter: ''};
const PER_PAGE = 100;
async function overview(g) {
  main.innerHTML = `<h1>Overview</h1><div class="cards" id="cards"></div>
    <h2>Groups</h2><div class="row"><label>Filter groups<input id="gfilter" value="${esc(ovState.filter)}"></label>
    <span id="gcount" class="muted" role="status"></span></div><div id="groups"></div><div class="row" id="pager"></div>`;
  $('#gfilter').addEventListener('input', (e) => {
    ovState.filter = e.target.value; ovState.page = 0;
    clearTimeout(overview.t); overview.t = setTimeout(() => refresh().catch(() => {}), 150);
  });
  function draw(s) {
    const pages = Math.max(1, Math.ceil(s.totals.matching / PER_PAGE));
    const rows = s.groups.map((x) => `<tr>
      <td><a href="#/groups/${enc(x.name)}">${esc(x.name)}</a></td>
      <td class="n">${fmt(x.lag)}</td><td class="n">${age(x.oldest_unacked_age_ms)}</td>
      <td class="n">${fmt(x.consumers)}</td><td class="n">${fmt(x.in_flight)}</td>
      <td class="n ${x.dead_letters ? 'bad' : ''}"><a href="#/dlq/${enc(x.name)}">${fmt(x.dead_letters)}</a></td>
      <td class="${x.paused ? 'warn' : 'ok'}">${x.paused ? 'paused' : 'running'}</td>
      <td class="${CIRCUIT[x.circuit] || 'muted'}">${x.circuit ? 'circuit ' + esc(x.circuit.replace('_', '-')) : 'pull'}</td></tr>`).join('');
    $('#groups').innerHTML = `<table><thead><tr><th>Group</th><th class="n">Lag</th><th class="n">Oldest unacked</th>
      <th class="n">Consumers</th><th class="n">In flight</th><th class="n">Dead letters</th><th>State</th><th>Delivery</th></tr></thead>
      <tbody>${rows || '<tr><td colspan="8" class="muted">no groups</td></tr>'}</tbody></table>`;
    $('#gcount').textContent = `${s.totals.matching} of ${s.totals.groups} groups`;
    $('#pager').innerHTML = pages > 1 ? `<button id="pp" ${ovState.page ? '' : 'disabled'}>Previous</button>
      <span>page ${ovState.page + 1} of ${pages}</span><button id="pn" ${ovState.page + 1 < pages ? '' : 'disabled'}>Next</button>` : '';
    if (pages > 1) {
      $('#pp').onclick = () => { ovState.page--; refresh(); };
      $('#pn').onclick = () => { ovState.page++; refresh(); };
    }
  }
  async function refresh() {
    const p = new URLSearchParams({limit: String(PER_PAGE), offset: String(ovState.page * PER_PAGE)});
    if (ovState.filter) p.set('q', ovState.filter);
    const s = await api('GET', '/v1/overview?' + p);
    if (g !== gen) return;
    const now = Date.now(), t = s.totals;
    let pubRate = '—', dlvRate = '—';
    if (prev && now > prev.t) {
      const dt = (now - prev.t) / 1000;
      pubRate = (Math.max(0, s.events.published - prev.published) / dt).toFixed(1) + '/s';
      dlvRate = (Math.max(0, t.acked - prev.acked) / dt).toFixed(1) + '/s';
    }
    prev = {t: now, published: s.events.published, acked: t.acked};
    $('#cards').innerHTML = card('publish rate', pubRate) + card('delivery rate (acks)', dlvRate) +
      card('total lag', fmt(t.lag)) + card('dead letters', fmt(t.dead_letters)) + card('storage used', bytes(s.events.bytes)) +
      card('events kept', fmt(s.events.head_seq - s.events.first_seq)) + card('groups', fmt(t.groups)) +
      card('paused groups', fmt(t.paused));
    draw(s);
  }
  await refresh();
  every(5000, () => refresh().catch(() => {}));
}

// --- group page ---------------------------------------------------------------
async function groupPage(g, name) {
  main.innerHTML = `<h1>Group <span id="gname"></span> <span id="gstate"></span></h1>
    <div class="row"><button class="w" id="pause">Pause</button><button class="w" id="resume">Resume</button>
    <a href="#/dlq/${enc(name)}">Dead letters</a></div>
    <div class="cards" id="gcards"></div><h2>Last hour</h2><div class="charts" id="charts"></div>
    <h2>Consumers</h2><div id="consumers"></div>
    <h2>Replay</h2><form id="replay" class="row">
      <label>Since<input id="rsince" value="1h" required></label>
      <label>Until (empty: now)<input id="runtil"></label>
      <label>Types (comma-separated, empty: all)<input id="rtypes"></label>
      <button type="button" id="rpreview">Preview</button><button class="w" type="submit" id="rgo">Replay</button>
      <span id="rout" role="status"></span></form>
    <h2>Config</h2><label for="cfg" class="sr">Group config (JSON)</label><textarea id="cfg" rows="12"></textarea>
    <div class="row"><button class="w" id="cfgsave">Save config</button></div>`;
  $('#gname').textContent = name;
  const base = '/v1/groups/' + enc(name);
  const body = () => {
    const b = {since: $('#rsince').value.trim()};
    if ($('#runtil').value.trim()) b.until = $('#runtil').value.trim();
    const t = $('#rtypes').value.split(',').map((x) => x.trim()).filter(Boolean);
    if (t.length) b.types = t;
    return b;
  };
  $('#pause').onclick = () => act(() => api('POST', base + '/pause'), 'paused').then(refresh);
  $('#resume').onclick = () => act(() => api('POST', base + '/resume'), 'resumed').then(refresh);
  $('#rpreview').onclick = async () => {
    const r = await act(() => api('POST', base + '/replay', Object.assign(body(), {dry_run: true})));
    if (r) $('#rout').textContent = `would requeue ${fmt(r.requeued)} events` + (r.expired ? ` (${fmt(r.expired)} expired)` : '');
  };
  $('#replay').onsubmit = async (e) => {
    e.preventDefault();
    const r = await act(() => api('POST', base + '/replay', body()));
    if (r) $('#rout').textContent = `requeued ${fmt(r.requeued)} events`;
  };
  $('#cfgsave').onclick = async () => {
    let c;
    try { c = JSON.parse($('#cfg').value); } catch (e) { toast('config: ' + e.message, true); return; }
    delete c.start; delete c.start_time;
    await act(() => api('PUT', base, c), 'config saved');
  };
  let cfgShown = false;
  async function refresh() {
    const [x, h] = await Promise.all([api('GET', base), api('GET', base + '/history')]);
    if (g !== gen) return;
    $('#gstate').innerHTML = x.paused ? '<span class="warn">(paused)</span>' : '<span class="ok">(running)</span>';
    $('#gcards').innerHTML = card('lag', fmt(x.lag)) + card('in flight', fmt(x.in_flight)) +
      card('ready', fmt(x.ready)) + card('retry scheduled', fmt(x.retry_scheduled)) +
      card('dead letters', fmt(x.dead_letters)) + card('oldest unacked', age(x.oldest_unacked_age_ms)) +
      card('delivered', fmt(x.counters.delivered)) + card('acked', fmt(x.counters.acked));
    const ts = h.samples.map((s) => s.ts), col = (k) => h.samples.map((s) => s[k]);
    const per = (k) => h.samples.map((s) => s[k] / (h.interval_ms / 1000));
    $('#charts').innerHTML = chart('Lag', ts, col('lag')) + chart('Throughput (acks/s)', ts, per('acked')) +
      chart('Nacks per interval', ts, col('nacked')) + chart('Dead letters (depth)', ts, col('dead_letters'));
    const cs = x.consumers || [];
    $('#consumers').innerHTML = cs.length ? `<table><thead><tr><th>Consumer</th><th>Last pull</th><th class="n">Leases held</th></tr></thead>
      <tbody>${cs.map((c) => `<tr><td>${esc(c.name)}</td><td>${esc(c.last_pull)}</td><td class="n">${fmt(c.in_flight)}</td></tr>`).join('')}</tbody></table>`
      : '<p class="muted">no consumer has pulled yet</p>';
    if (!cfgShown) { $('#cfg').value = JSON.stringify(x.config, null, 2); cfgShown = true; }
    applyCaps();
  }
  await refresh();
  every(5000, () => refresh().catch(() => {}));
}

// --- dead letters ---------------------------------------------------------------
async function dlqPage(g, name) {
  const groups = (await api('GET', '/v1/groups')).groups;
  if (g !== gen) return; // navigated away meanwhile
  if (!name && groups.length) name = (groups.find((x) => x.dead_letters) || groups[0]).name;
  main.innerHTML = `<h1>Dead letters</h1><div class="row">
    <label>Group<select id="dg">${groups.map((x) => `<option ${x.name === name ? 'selected' : ''}>${esc(x.name)}</option>`).join('')}</select></label>
    <label>Search error or type<input id="dq"></label>
    <button class="w" id="redsel">Redrive selected</button><button class="w" id="redall">Redrive all</button>
    <button class="w" id="pursel">Purge selected</button><button class="w" id="purall">Purge all</button></div>
    <div id="dl"></div><div class="row"><button id="more" hidden>Load more</button><span id="dcount" class="muted"></span></div>`;
  $('#dg').onchange = (e) => { location.hash = '#/dlq/' + enc(e.target.value); };
  if (!name) { $('#dl').innerHTML = '<p class="muted">no groups</p>'; return; }
  const base = '/v1/groups/' + enc(name) + '/dlq';
  let items = [], next = null;
  const sel = () => [...document.querySelectorAll('#dl input[type=checkbox]:checked')].map((c) => c.value);
  function draw() {
    const q = $('#dq').value.toLowerCase();
    const shown = items.filter((d) => !q || (d.error || '').toLowerCase().includes(q) || (d.event.type || '').toLowerCase().includes(q));
    $('#dl').innerHTML = `<table><thead><tr><th><span class="sr">Select</span></th><th>Type</th><th>Error</th><th class="n">Attempts</th>
      <th>Consumer</th><th>Failed at</th></tr></thead><tbody>${shown.map((d, i) => `<tr>
      <td><input type="checkbox" value="${esc(d.event.id)}" aria-label="select ${esc(d.event.id)}"></td>
      <td>${esc(d.event.type)}</td><td><details><summary class="bad">${esc(d.error)}</summary>
      <p>Last error after ${fmt(d.attempts)} attempts (earlier attempts' errors are not kept).</p>
      <pre tabindex="0" aria-label="event ${esc(d.event.id)}">${esc(JSON.stringify(d.event, null, 2))}</pre></details></td>
      <td class="n">${fmt(d.attempts)}</td><td>${esc(d.consumer)}</td><td>${esc(d.failed_at)}</td></tr>`).join('') ||
      '<tr><td colspan="6" class="muted">no dead letters</td></tr>'}</tbody></table>`;
    $('#dcount').textContent = `${shown.length} shown, ${items.length} loaded`;
    $('#more').hidden = !next;
    applyCaps();
  }
  async function load(reset) {
    if (reset) { items = []; next = null; }
    const r = await api('GET', base + '?limit=500' + (next ? '&after=' + enc(next) : ''));
    if (g !== gen) return;
    items = items.concat(r.dead_letters); next = r.next; draw();
  }
  $('#dq').oninput = draw;
  $('#more').onclick = () => load(false);
  const run = async (fn, msg) => { if (await act(fn, msg)) await load(true); };
  $('#redsel').onclick = () => { const ids = sel(); if (ids.length) run(() => api('POST', base + '/redrive', {ids}), (r) => `redriven: ${r.redriven}`); };
  $('#redall').onclick = () => run(() => api('POST', base + '/redrive', {}), (r) => `redriven: ${r.redriven}`);
  $('#pursel').onclick = async () => {
    const ids = sel(); let n = 0;
    for (const id of ids) { const r = await act(() => api('DELETE', base + '?id=' + enc(id))); if (r) n += r.purged; }
    toast(`purged: ${n}`); await load(true);
  };
  $('#purall').onclick = () => { if (confirm(`Purge every dead letter of ${name}?`)) run(() => api('DELETE', base), (r) => `purged: ${r.purged}`); };
  await load(true);
}

// --- events -----------------------------------------------------------------------
async function eventsPage(g) {
  main.innerHTML = `<h1>Events</h1><form class="row" id="ef">
    <label>Type<input id="et"></label><label>Key contains<input id="ek"></label>
    <label>Since<input id="es" value="1h"></label><label>Until<input id="eu"></label>
    <button type="submit">Search</button><label><span>Follow live</span><input type="checkbox" id="follow"></label></form>
    <div id="ev"></div><div class="row"><button id="emore" hidden>Next page</button></div><pre id="ejson" hidden tabindex="0" aria-label="event JSON"></pre>`;
  let after = 0, rows = [];
  function q(extra) {
    const p = new URLSearchParams({limit: '200'});
    if ($('#et').value.trim()) p.set('type', $('#et').value.trim());
    if ($('#es').value.trim()) p.set('since', $('#es').value.trim());
    if ($('#eu').value.trim()) p.set('until', $('#eu').value.trim());
    if (extra) p.set('after_seq', String(extra));
    return '/v1/events?' + p;
  }
  function draw() {
    const k = $('#ek').value.trim();
    const shown = rows.filter((e) => !k || String(e.key || '').includes(k));
    $('#ev').innerHTML = `<table><thead><tr><th class="n">Seq</th><th>Time</th><th>Type</th><th>Key</th><th>Id</th></tr></thead>
      <tbody>${shown.map((e, i) => `<tr><td class="n">${e.seq}</td><td>${esc(e.time)}</td><td>${esc(e.type)}</td>
      <td>${esc(e.key)}</td><td><a href="#" data-i="${rows.indexOf(e)}">${esc(e.id)}</a></td></tr>`).join('') ||
      '<tr><td colspan="5" class="muted">no events</td></tr>'}</tbody></table>`;
    document.querySelectorAll('#ev a[data-i]').forEach((a) => a.onclick = (ev) => {
      ev.preventDefault(); const pre = $('#ejson');
      pre.hidden = false; pre.textContent = JSON.stringify(rows[+a.dataset.i], null, 2); pre.focus();
    });
  }
  async function search(more) {
    const r = await api('GET', q(more ? after : 0));
    if (g !== gen) return;
    rows = more ? rows.concat(r.events) : r.events;
    after = r.next_after_seq || (rows.length ? rows[rows.length - 1].seq : 0);
    $('#emore').hidden = !r.next_after_seq; draw();
  }
  $('#ef').onsubmit = (e) => { e.preventDefault(); act(() => search(false)); };
  $('#emore').onclick = () => act(() => search(true));
  every(2000, async () => {
    if (!$('#follow') || !$('#follow').checked) return;
    const r = await api('GET', q(after)).catch(() => null);
    if (!r || g !== gen || !r.events.length) return;
    rows = rows.concat(r.events).slice(-2000); after = rows[rows.length - 1].seq; draw();
  });
  await search(false);
}

// --- schemas --------------------------------------------------------------------
function lineDiff(a, b) { // LCS over lines; small schemas only
  const A = a.split('\n'), B = b.split('\n'), n = A.length, m = B.length;
  if (n * m > 4e6) return [A.map((l) => ({l})), B.map((l) => ({l}))];
  const L = Array.from({length: n + 1}, () => new Uint16Array(m + 1));
  for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--)
    L[i][j] = A[i] === B[j] ? L[i + 1][j + 1] + 1 : Math.max(L[i + 1][j], L[i][j + 1]);
  const left = [], right = []; let i = 0, j = 0;
  while (i < n && j < m) {
    if (A[i] === B[j]) { left.push({l: A[i++]}); right.push({l: B[j++]}); }
    else if (L[i + 1][j] >= L[i][j + 1]) left.push({l: A[i++], c: 'del'});
    else right.push({l: B[j++], c: 'add'});
  }
  while (i < n) left.push({l: A[i++], c: 'del'});
  while (j < m) right.push({l: B[j++], c: 'add'});
  return [left, right];
}
const diffPre = (lines, label) => `<pre tabindex="0" aria-label="${label}">${lines.map((x) => `<span class="${x.c || ''}">${esc(x.l) || ' '}</span>`).join('')}</pre>`;
async function schemasPage(g, type) {
  const list = (await api('GET', '/v1/schemas')).schemas;
  if (g !== gen) return;
  if (!type && list.length) type = list[0].type;
  main.innerHTML = `<h1>Schemas</h1><div class="row"><label>Type<select id="st">${list.map((s) =>
    `<option ${s.type === type ? 'selected' : ''}>${esc(s.type)}</option>`).join('')}</select></label></div>
    <table><thead><tr><th>Type</th><th>Compatibility</th><th>Versions</th></tr></thead><tbody>${list.map((s) =>
    `<tr><td><a href="#/schemas/${enc(s.type)}">${esc(s.type)}</a></td><td>${esc(s.compatibility)}</td><td>${s.versions.join(', ')}</td></tr>`).join('') ||
    '<tr><td colspan="3" class="muted">no schemas</td></tr>'}</tbody></table><div id="sd"></div>`;
  $('#st').onchange = (e) => { location.hash = '#/schemas/' + enc(e.target.value); };
  const s = list.find((x) => x.type === type);
  if (!s) return;
  const vs = s.versions, last = vs[vs.length - 1], first = vs.length > 1 ? vs[vs.length - 2] : last;
  const opts = (sel) => vs.map((v) => `<option ${v === sel ? 'selected' : ''}>${v}</option>`).join('');
  $('#sd').innerHTML = `<h2>Compare versions of ${esc(type)}</h2><div class="row">
    <label>Left<select id="va">${opts(first)}</select></label><label>Right<select id="vb">${opts(last)}</select></label></div>
    <div class="diff" id="diff"></div>
    <h2>Check a candidate schema</h2><label for="cand" class="sr">Candidate schema (JSON)</label>
    <textarea id="cand" rows="10" placeholder='{"type": "object", ...}'></textarea>
    <div class="row"><button id="check">Check compatibility</button><button class="ws" id="register">Register</button></div>
    <div id="verdict" role="status"></div>`;
  const base = '/v1/schemas/' + enc(type);
  async function diff() {
    const [a, b] = await Promise.all([api('GET', `${base}/versions/${$('#va').value}`), api('GET', `${base}/versions/${$('#vb').value}`)]);
    if (g !== gen) return;
    const [l, r] = lineDiff(JSON.stringify(a.schema, null, 2), JSON.stringify(b.schema, null, 2));
    $('#diff').innerHTML = diffPre(l, 'version ' + a.version) + diffPre(r, 'version ' + b.version);
    if (!$('#cand').value) $('#cand').value = JSON.stringify(b.schema, null, 2);
  }
  $('#va').onchange = $('#vb').onchange = () => act(diff);
  const cand = () => { try { return {schema: JSON.parse($('#cand').value)}; } catch (e) { toast('schema: ' + e.message, true); return null; } };
  function verdict(ok, mode, changes) {
    $('#verdict').innerHTML = `<p class="${ok ? 'ok' : 'bad'}">${ok ? 'Compatible' : 'Not compatible'} (${esc(mode)})</p>` +
      (changes && changes.length ? `<ul id="breaks">${changes.map((c) => `<li><code>${esc(c.path || '/')}</code> ${esc(c.message)}${c.undecidable ? ' (cannot verify)' : ''}</li>`).join('')}</ul>` : '');
  }
  $('#check').onclick = async () => {
    const b = cand(); if (!b) return;
    const r = await act(() => api('POST', base + '/check', b));
    if (r) verdict(r.compatible, r.compatibility, r.changes);
  };
  $('#register').onclick = async () => {
    const b = cand(); if (!b) return;
    try { const r = await api('PUT', base, b); toast(`registered version ${r.version}`); }
    catch (e) { if (e.body && e.body.error && e.body.error.code === 'incompatible_schema') verdict(false, s.compatibility, e.body.error.details); else toast(e.message, true); }
  };
  await diff();
  applyCaps();
}

// --- router ---------------------------------------------------------------------
async function route() {
  const g = ++gen;
  clearInterval(timer);
  const parts = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  document.querySelectorAll('nav a').forEach((a) => a.removeAttribute('aria-current'));
  const cur = document.querySelector(`nav a[href="#/${parts[0] || ''}"]`);
  if (cur) cur.setAttribute('aria-current', 'page');
  try {
    if (parts[0] === 'groups' && parts[1]) await groupPage(g, parts[1]);
    else if (parts[0] === 'dlq') await dlqPage(g, parts[1]);
    else if (parts[0] === 'events') await eventsPage(g);
    else if (parts[0] === 'schemas') await schemasPage(g, parts[1]);
    else await overview(g);
    if (g !== gen) return;
    document.title = 'eventbus · ' + ($('h1') ? $('h1').textContent : '');
    applyCaps();
    main.dataset.ready = String(g); // for tests: the page has its data
  } catch (e) {
    if (g === gen) main.innerHTML = `<h1>Error</h1><p class="bad">${esc(e.message)}</p>`;
  }
}
$('#token').value = token();
$('#login').onsubmit = async (e) => {
  e.preventDefault();
  sessionStorage.setItem('eb_token', $('#token').value);
  await learnCaps(); route();
};
window.addEventListener('hashchange', route);
learnCaps().then(route);
