/* push.c - push delivery: the table of pushed groups (reconciled with the
 * bus's groups after each change), leasing through the bus's long polls,
 * building and settling POSTs, and the circuit breaker of each endpoint.
 * ARCHITECTURE.md, "Push delivery", has the design. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "eventbus/err.h"
#include "push/push_int.h"
#include "util/clock.h"
#include "util/xmalloc.h"

#define CONSUMER "push"
#define PULL_WAIT_MS 60000u      /* one long poll; re-armed when it ends empty */
#define RETRY_EMPTY_MS 100u      /* re-pull after an immediate empty answer (flow control) */
#define PROBE_FIRST_MS 1000u     /* first open period; doubles per failed probe */
#define PROBE_MAX_MS 300000u
#define RETRY_AFTER_MAX_S 3600u

static void pump(pgroup *g);

uint64_t eb__push_now_us(void)
{
    return eb_clock_wall_us();
}

void eb__push_handle_gone(eb_push *p)
{
    if (--p->handles == 0 && p->closing) {
        eb_map_free(&p->groups);
        eb_map_free(&p->endpoints);
        eb_map_free(&p->changed);
        free(p);
    }
}

static void handle_closed(uv_handle_t *h)
{
    eb__push_handle_gone(h->data);
}

/* --- endpoints and their circuits ------------------------------------------------- */

static void ep_timer_closed(uv_handle_t *h)
{
    endpoint *ep = h->data;
    eb_push *p = ep->push;
    free(ep->origin);
    free(ep);
    eb__push_handle_gone(p);
}

static endpoint *ep_get(eb_push *p, const char *origin)
{
    endpoint *ep = eb_map_get(&p->endpoints, origin, strlen(origin));
    if (!ep) {
        ep = eb_xcalloc(1, sizeof *ep);
        ep->origin = eb_xstrdup(origin);
        ep->push = p;
        ep->backoff_ms = PROBE_FIRST_MS;
        uv_timer_init(p->loop, &ep->timer);
        ep->timer.data = ep;
        p->handles++;
        eb_map_put(&p->endpoints, origin, strlen(origin), ep, NULL);
    }
    ep->refs++;
    return ep;
}

static void ep_put(endpoint *ep)
{
    if (--ep->refs > 0)
        return;
    eb_push *p = ep->push;
    if (!p->closing)
        eb_map_del(&p->endpoints, ep->origin, strlen(ep->origin));
    uv_timer_stop(&ep->timer);
    uv_close((uv_handle_t *)&ep->timer, ep_timer_closed);
}

/* Whether a POST may go to ep now; *probe: it would be the half-open probe.
 * Moves an open circuit whose time has come to half-open. */
static bool ep_may_send(endpoint *ep, uint64_t now, bool *probe)
{
    *probe = false;
    if (ep->hold_until_us > now)
        return false;
    if (ep->state == EB_CIRCUIT_OPEN && now >= ep->next_probe_us)
        ep->state = EB_CIRCUIT_HALF_OPEN;
    if (ep->state == EB_CIRCUIT_HALF_OPEN) {
        *probe = true;
        return !ep->probing;
    }
    return ep->state == EB_CIRCUIT_CLOSED;
}

static void on_ep_timer(uv_timer_t *t)
{
    endpoint *ep = t->data;
    eb_push *p = ep->push;
    size_t it = 0;
    const eb_map_slot *s;
    while ((s = eb_map_next(&p->groups, &it))) {
        pgroup *g = s->val;
        if (g->ep == ep)
            pump(g); /* may not change the table */
    }
}

/* Arms ep's timer for the next time it may send (hold or probe). */
static void ep_arm(endpoint *ep, uint64_t now)
{
    uint64_t at = ep->hold_until_us > now ? ep->hold_until_us
                : ep->state == EB_CIRCUIT_OPEN ? ep->next_probe_us : 0;
    if (at > now && !ep->push->closing)
        uv_timer_start(&ep->timer, on_ep_timer, (at - now + 999) / 1000, 0);
}

static void ep_success(endpoint *ep)
{
    ep->failures = 0;
    ep->state = EB_CIRCUIT_CLOSED;
    ep->backoff_ms = PROBE_FIRST_MS;
    ep->next_probe_us = 0;
}

static void ep_failure(endpoint *ep, uint32_t threshold, uint64_t now)
{
    ep->failures++;
    if (ep->state == EB_CIRCUIT_HALF_OPEN || ep->state == EB_CIRCUIT_OPEN) {
        if (ep->state == EB_CIRCUIT_HALF_OPEN && ep->backoff_ms < PROBE_MAX_MS)
            ep->backoff_ms = ep->backoff_ms * 2 > PROBE_MAX_MS ? PROBE_MAX_MS : ep->backoff_ms * 2;
        ep->state = EB_CIRCUIT_OPEN;
        ep->next_probe_us = now + (uint64_t)ep->backoff_ms * 1000u;
    } else if (ep->failures >= threshold) {
        ep->state = EB_CIRCUIT_OPEN;
        ep->opened++;
        ep->next_probe_us = now + (uint64_t)ep->backoff_ms * 1000u;
    }
    ep_arm(ep, now);
}

/* --- config copies ----------------------------------------------------------------- */

static void conf_put(pconf *c)
{
    if (!c || --c->refs > 0)
        return;
    free(c->url);
    eb_buf_free(&c->key);
    eb_buf_free(&c->prev_key);
    curl_slist_free_all(c->headers);
    free(c);
}

static pconf *conf_of(const eb_push_cfg *pc)
{
    pconf *c = eb_xcalloc(1, sizeof *c);
    c->refs = 1;
    c->url = eb_xstrdup(pc->url);
    eb_push_secret_key(pc->secret, &c->key);
    if (pc->prev_secret && eb_push_secret_key(pc->prev_secret, &c->prev_key) == 0)
        c->prev_until_us = pc->prev_until_us;
    for (size_t i = 0; i < pc->nheaders; i++)
        c->headers = curl_slist_append(c->headers, pc->headers[i]);
    c->timeout_ms = pc->timeout_ms;
    c->max_in_flight = pc->max_in_flight;
    c->batch = pc->batch;
    c->circuit_failures = pc->circuit_failures;
    c->format = pc->format;
    return c;
}

/* --- the group table --------------------------------------------------------------- */

static void retry_closed(uv_handle_t *h)
{
    pgroup *g = h->data;
    eb_push *p = g->push;
    free(g->name);
    free(g);
    eb__push_handle_gone(p);
}

static void g_put(pgroup *g)
{
    if (--g->refs > 0)
        return;
    conf_put(g->conf);
    if (g->ep)
        ep_put(g->ep);
    uv_timer_stop(&g->retry);
    uv_close((uv_handle_t *)&g->retry, retry_closed);
}

static void g_drop(eb_push *p, pgroup *g)
{
    g->gone = true;
    eb_map_del(&p->groups, g->name, g->nlen);
    g_put(g);
}

static void on_retry(uv_timer_t *t)
{
    pgroup *g = t->data;
    g->retry_armed = false;
    pump(g);
}

/* Makes g's copy of the config cfg (new endpoint if its origin changed). */
static void g_configure(pgroup *g, const eb_group_cfg *cfg)
{
    eb_buf origin = EB_BUF_INIT;
    if (eb__url_origin(cfg->push->url, &origin) != 0) {
        eb_buf_reset(&origin);
        eb_buf_puts(&origin, cfg->push->url);
        eb_buf_append(&origin, "", 1);
    }
    if (!g->ep || strcmp(g->ep->origin, origin.data) != 0) {
        endpoint *old = g->ep;
        g->ep = ep_get(g->push, origin.data);
        if (old)
            ep_put(old);
    }
    eb_buf_free(&origin);
    conf_put(g->conf);
    g->conf = conf_of(cfg->push);
    g->ack_timeout_ms = cfg->ack_timeout_ms;
}

/* Makes pgroup `name` match the bus's group: created or reconfigured while
 * it is pushed, dropped once it is gone or pulled. NULL when dropped. */
static pgroup *sync_name(eb_push *p, const char *name, size_t n)
{
    eb_group_info in;
    pgroup *g = eb_map_get(&p->groups, name, n);
    if (eb_bus_group_info(p->bus, name, n, &in) != 0 || !in.cfg->push) {
        if (g)
            g_drop(p, g);
        return NULL;
    }
    if (!g) {
        g = eb_xcalloc(1, sizeof *g);
        g->name = eb_xstrndup(name, n);
        g->nlen = n;
        g->push = p;
        g->refs = 1;
        uv_timer_init(p->loop, &g->retry);
        g->retry.data = g;
        p->handles++;
        eb_map_put(&p->groups, name, n, g, NULL);
    }
    g_configure(g, in.cfg); /* copies what it needs: in is borrowed */
    return g;
}

static void note_pushed(void *arg, const eb_group_info *in)
{
    eb_push *p = arg;
    if (in->cfg->push)
        eb_map_put(&p->changed, in->name, strlen(in->name), NULL, NULL);
}

/* The groups changed since the last turn (at open: every pushed group)
 * brought in line with the bus, and pumped. Work in the groups changed. */
static void on_sync(uv_timer_t *t)
{
    eb_push *p = t->data;
    if (p->full_sync) {
        p->full_sync = false;
        eb_bus_groups_each(p->bus, note_pushed, p);
    }
    size_t it = 0, k = 0;
    const eb_map_slot *s;
    char **names = eb_xcalloc(p->changed.len + 1, sizeof *names);
    while ((s = eb_map_next(&p->changed, &it)))
        names[k++] = eb_xstrndup(s->key, s->klen);
    eb_map_free(&p->changed);
    eb_map_init(&p->changed);
    for (size_t i = 0; i < k; i++) {
        pgroup *g = sync_name(p, names[i], strlen(names[i]));
        if (g) {
            g->refs++;
            pump(g);
            g_put(g);
        }
        free(names[i]);
    }
    free(names);
}

static void on_group_change(void *arg, const char *group)
{
    eb_push *p = arg;
    if (p->closing)
        return;
    eb_map_put(&p->changed, group, strlen(group), NULL, NULL);
    uv_timer_start(&p->sync_timer, on_sync, 0, 0); /* after this call: the bus is mid-command */
}

/* --- settling --------------------------------------------------------------------- */

static void settle(request *r, eb_settle_op op, const char *error, int64_t delay_ms)
{
    eb_push *p = r->push;
    if (p->closing)
        return;
    eb_str *ids = eb_xmalloc(r->n * sizeof *ids);
    uint8_t *unknown = eb_xcalloc(r->n, 1);
    for (size_t i = 0; i < r->n; i++)
        ids[i] = (eb_str){r->ids[i], strlen(r->ids[i])};
    eb_settle_req q = {.op = op, .ids = ids, .n = r->n, .error = error, .delay_ms = delay_ms,
                       .unknown = unknown};
    size_t settled = 0;
    eb_bus_settle(p->bus, r->g->name, r->g->nlen, &q, &settled, NULL, NULL);
    free(ids);
    free(unknown);
}

int64_t eb__push_retry_after_ms(const char *v, uint64_t now_us)
{
    if (!v)
        return -1;
    while (*v == ' ' || *v == '\t')
        v++;
    size_t len = strlen(v);
    while (len && (v[len - 1] == ' ' || v[len - 1] == '\t'))
        len--;
    if (!len)
        return -1;
    const uint64_t max_ms = (uint64_t)RETRY_AFTER_MAX_S * 1000u;
    size_t digits = strspn(v, "0123456789");
    if (digits == len) { /* delta-seconds = 1*DIGIT (no sign, no fraction) */
        uint64_t s = 0;
        for (size_t i = 0; i < len && s <= RETRY_AFTER_MAX_S; i++)
            s = s * 10 + (uint64_t)(v[i] - '0');
        return (int64_t)(s > RETRY_AFTER_MAX_S ? max_ms : s * 1000u);
    }
    if (digits || len > 64 || !strchr(v, ':')) /* an HTTP-date has a time and starts with a day */
        return -1;
    char date[65];
    memcpy(date, v, len);
    date[len] = '\0';
    time_t t = curl_getdate(date, NULL);
    if (t == (time_t)-1 || t < 0)
        return -1;
    uint64_t at_us = (uint64_t)t * 1000000u;
    if (at_us <= now_us)
        return 0; /* in the past: retry now */
    uint64_t ms = (at_us - now_us + 999u) / 1000u;
    return (int64_t)(ms > max_ms ? max_ms : ms);
}

void eb__push_describe(const request *r, long status, CURLcode cerr, char *out, size_t cap)
{
    if (r->refused) {
        snprintf(out, cap, "refused: %s is a loopback, private or link-local address "
                 "(eventbusd --push-allow-private allows it)", r->refused_ip);
    } else if (status) {
        size_t n = r->answer.len < EB_PUSH_ERROR_EXCERPT ? r->answer.len : EB_PUSH_ERROR_EXCERPT;
        snprintf(out, cap, "HTTP %ld: %.*s", status, (int)n, n ? (const char *)r->answer.data : "");
        for (char *c = out; *c; c++)
            if ((unsigned char)*c < 0x20)
                *c = ' ';
    } else if (cerr == CURLE_OPERATION_TIMEDOUT) {
        snprintf(out, cap, "timeout after %u ms", r->timeout_ms);
    } else {
        snprintf(out, cap, "%s", r->errbuf[0] ? r->errbuf : curl_easy_strerror(cerr));
    }
}

void eb__push_done(request *r, long status, CURLcode cerr, const char *retry_after)
{
    eb_push *p = r->push;
    pgroup *g = r->g;
    endpoint *ep = r->ep;
    uint64_t now = eb__push_now_us();
    if (r->prev)
        r->prev->next = r->next;
    else
        p->reqs = r->next;
    if (r->next)
        r->next->prev = r->prev;
    p->requests--;
    g->in_flight -= (uint32_t)r->n;
    if (r->probe)
        ep->probing = false;
    bool was_closed = ep->state == EB_CIRCUIT_CLOSED;
    bool answered = status >= 100 && (cerr == CURLE_OK || (cerr == CURLE_WRITE_ERROR && r->cut));
    if (answered && status >= 200 && status < 300) {
        g->st.ok++;
        eb_hist_add(&g->latency, now - r->start_us);
        ep_success(ep);
        settle(r, EB_SETTLE_ACK, NULL, 0);
    } else {
        char err[EB_PUSH_ERROR_EXCERPT + 64];
        eb__push_describe(r, answered ? status : 0, cerr, err, sizeof err);
        snprintf(g->last_error, sizeof g->last_error, "%s", err);
        int64_t delay = -1; /* the group's backoff */
        bool counts = true; /* toward the circuit */
        if (r->refused) {
            g->st.refused++;
        } else if (answered && (status == 429 || status == 503)) {
            g->st.throttled++;
            int64_t ra = eb__push_retry_after_ms(retry_after, now);
            if (ra >= 0) { /* absent or unreadable: the group's backoff */
                delay = ra;
                if (ep->hold_until_us < now + (uint64_t)ra * 1000u)
                    ep->hold_until_us = now + (uint64_t)ra * 1000u;
            }
        } else if (answered) {
            g->st.http_error++;
            counts = status >= 500 || status == 408; /* other 4xx: this event, not the endpoint */
        } else if (cerr == CURLE_OPERATION_TIMEDOUT) {
            g->st.timeout++;
        } else {
            g->st.conn_error++;
        }
        if (counts)
            ep_failure(ep, g->conf ? g->conf->circuit_failures : 5, now);
        else
            ep_arm(ep, now);
        settle(r, EB_SETTLE_NACK, err, delay);
    }
    eb__request_free(r);
    if (!g->gone)
        pump(g);
    if (!was_closed && ep->state == EB_CIRCUIT_CLOSED && !p->closing)
        on_ep_timer(&ep->timer); /* closed again: its other groups go too */
    ep_put(ep);
    g_put(g);
}

/* --- leasing and posting ------------------------------------------------------------ */

static int post(pgroup *g, const eb_delivery *dl, size_t n, bool probe, eb_json_doc *doc)
{
    eb_push *p = g->push;
    pconf *c = g->conf;
    request *r = eb_xcalloc(1, sizeof *r);
    r->push = p;
    r->n = n;
    r->ids = eb_xmalloc(n * sizeof *r->ids);
    for (size_t i = 0; i < n; i++)
        memcpy(r->ids[i], dl[i].id, sizeof r->ids[i]);
    if (eb__push_body(&r->body, c, dl, n, doc) != 0) {
        r->g = g; /* never POSTed: retried, then dead-lettered, as a consumer would */
        settle(r, EB_SETTLE_NACK, "push: a stored event could not be read", -1);
        eb__request_free(r);
        return EB_ECORRUPT;
    }
    uint64_t now = eb__push_now_us();
    eb_event_view v;
    char id[EB_EVENT_MAX_ID + 32] = "";
    if (eb_event_decode(dl[0].event, dl[0].len, &v) == 0)
        snprintf(id, sizeof id, n > 1 ? "%.*s+%zu" : "%.*s", (int)v.id.len, v.id.ptr, n);
    eb_buf h = EB_BUF_INIT;
    eb_buf_printf(&h, "webhook-id: %s", id);
    eb_buf_append(&h, "", 1);
    r->headers = curl_slist_append(NULL, h.data);
    eb_buf_reset(&h);
    eb_buf_printf(&h, "webhook-timestamp: %llu", (unsigned long long)(now / 1000000u));
    eb_buf_append(&h, "", 1);
    r->headers = curl_slist_append(r->headers, h.data);
    eb_buf_reset(&h);
    eb_buf_puts(&h, "webhook-signature: ");
    eb__push_signature(&h, c, id, now / 1000000u, (const char *)r->body.data, r->body.len, now);
    eb_buf_append(&h, "", 1);
    r->headers = curl_slist_append(r->headers, h.data);
    eb_buf_free(&h);
    bool many = n > 1 || c->batch > 1;
    const char *ct = c->format != EB_PUSH_CLOUDEVENTS ? "Content-Type: application/json"
                     : many ? "Content-Type: application/cloudevents-batch+json"
                            : "Content-Type: application/cloudevents+json";
    r->headers = curl_slist_append(r->headers, ct);
    r->headers = curl_slist_append(r->headers, "Expect:");
    char att[48];
    snprintf(att, sizeof att, "eventbus-attempt: %u", dl[0].attempt);
    r->headers = curl_slist_append(r->headers, att);
    for (struct curl_slist *s = c->headers; s; s = s->next)
        r->headers = curl_slist_append(r->headers, s->data);
    /* a POST ends before its lease does */
    r->timeout_ms = c->timeout_ms;
    if (g->ack_timeout_ms > 200 && r->timeout_ms > g->ack_timeout_ms - 100)
        r->timeout_ms = g->ack_timeout_ms - 100;
    r->start_us = now;
    r->probe = probe;
    r->g = g;
    r->ep = g->ep;
    g->refs++;
    g->ep->refs++;
    g->in_flight += (uint32_t)n;
    p->requests++;
    r->next = p->reqs;
    if (p->reqs)
        p->reqs->prev = r;
    p->reqs = r;
    if (probe)
        g->ep->probing = true;
    if (eb__http_out_start(r, c->url, p->ca_file) != 0) {
        eb__push_done(r, 0, CURLE_OUT_OF_MEMORY, NULL);
        return EB_ENOMEM;
    }
    return 0;
}

static void on_pulled(void *arg, int status, const eb_delivery *dl, size_t n, uint64_t deadline)
{
    pgroup *g = arg;
    eb_push *p = g->push;
    (void)deadline;
    bool sync = g->in_call, probe = g->probe_pull;
    g->pulling = false;
    if (status == 0 && n && (g->gone || p->closing)) {
        request tmp = {.push = p, .g = g, .n = n}; /* not ours to post any more */
        char (*ids)[48] = eb_xmalloc(n * sizeof *ids);
        for (size_t i = 0; i < n; i++)
            memcpy(ids[i], dl[i].id, sizeof ids[i]);
        tmp.ids = ids;
        settle(&tmp, EB_SETTLE_NACK, "push stopped", 0);
        free(ids);
    } else if (status == 0 && n) {
        eb_json_doc *doc = eb_json_doc_new();
        size_t b = probe ? 1 : (g->conf->batch ? g->conf->batch : 1);
        for (size_t i = 0; i < n; i += b)
            post(g, dl + i, n - i < b ? n - i : b, probe && i == 0, doc);
        eb_json_doc_free(doc);
    }
    if (!g->gone && !p->closing) {
        if (status == 0 && n == 0 && sync) {
            g->retry_armed = true; /* flow control said no just now: look again soon */
            uv_timer_start(&g->retry, on_retry, RETRY_EMPTY_MS, 0);
        } else if (status != EB_ENOTFOUND && !sync) {
            pump(g);
        } else if (status == 0 && sync) {
            g->retry_armed = true; /* the rest next turn: no recursion through the bus */
            uv_timer_start(&g->retry, on_retry, 0, 0);
        }
    }
    g_put(g);
}

/* Whether a parked pull of g may still lease: not once the group stopped
 * being pushed or its endpoint's circuit changed. */
static bool pull_alive(void *arg)
{
    pgroup *g = arg;
    if (g->gone || g->push->closing)
        return false;
    endpoint *ep = g->ep;
    uint64_t now = eb__push_now_us();
    if (ep->hold_until_us > now)
        return false;
    if (g->probe_pull)
        return ep->state == EB_CIRCUIT_HALF_OPEN || ep->state == EB_CIRCUIT_OPEN;
    return ep->state == EB_CIRCUIT_CLOSED;
}

static void pump(pgroup *g)
{
    eb_push *p = g->push;
    if (g->gone || p->closing || g->pulling || g->retry_armed || !g->conf)
        return;
    uint64_t now = eb__push_now_us();
    bool probe;
    if (!ep_may_send(g->ep, now, &probe)) {
        ep_arm(g->ep, now);
        return;
    }
    if (g->in_flight >= g->conf->max_in_flight)
        return;
    size_t max = probe ? 1 : g->conf->max_in_flight - g->in_flight;
    if (max > 1000)
        max = 1000;
    g->pulling = true;
    g->probe_pull = probe;
    g->refs++;
    g->in_call = true;
    int rc = eb_bus_pull(p->bus, g->name, g->nlen, CONSUMER, strlen(CONSUMER), max,
                         PULL_WAIT_MS, on_pulled, pull_alive, g);
    g->in_call = false;
    if (rc) {
        g->pulling = false;
        g_put(g);
    }
}

/* --- the state the views show -------------------------------------------------------- */

static bool state_of(void *arg, const char *group, size_t n, eb_push_state *out)
{
    eb_push *p = arg;
    pgroup *g = eb_map_get(&p->groups, group, n);
    if (!g)
        return false;
    *out = g->st;
    endpoint *ep = g->ep;
    uint64_t now = eb__push_now_us();
    out->circuit = ep->state == EB_CIRCUIT_OPEN && now >= ep->next_probe_us
                       ? EB_CIRCUIT_HALF_OPEN : ep->state;
    out->failures = ep->failures;
    out->next_probe_us = ep->state != EB_CIRCUIT_CLOSED ? ep->next_probe_us : 0;
    out->hold_until_us = ep->hold_until_us > now ? ep->hold_until_us : 0;
    out->opened = ep->opened;
    out->in_flight = g->in_flight;
    out->last_error = g->last_error;
    out->latency = &g->latency;
    return true;
}

/* --- open and close ---------------------------------------------------------------- */

int eb_push_open(uv_loop_t *loop, eb_bus *bus, const eb_push_opts *opts, eb_push **out)
{
    eb_push *p = eb_xcalloc(1, sizeof *p);
    p->loop = loop;
    p->bus = bus;
    p->opts = *opts;
    if (opts->ca_file && *opts->ca_file)
        p->ca_file = eb_xstrdup(opts->ca_file);
    p->opts.ca_file = p->ca_file;
    eb_map_init(&p->groups);
    eb_map_init(&p->endpoints);
    eb_map_init(&p->changed);
    p->full_sync = true;
    int rc = eb__http_out_open(p);
    if (rc) {
        free(p->ca_file);
        free(p);
        return rc;
    }
    uv_timer_init(loop, &p->sync_timer);
    p->sync_timer.data = p;
    p->handles++;
    eb_bus_set_group_observer(bus, on_group_change, p);
    eb_bus_set_push_state(bus, state_of, p);
    uv_timer_start(&p->sync_timer, on_sync, 0, 0);
    *out = p;
    return 0;
}

/* Abandons every POST in flight (its leases expire: delivered again). */
static void abandon_requests(eb_push *p)
{
    while (p->reqs) {
        request *r = p->reqs;
        p->reqs = r->next;
        curl_multi_remove_handle(p->multi, r->easy);
        pgroup *g = r->g;
        endpoint *ep = r->ep;
        eb__request_free(r);
        ep_put(ep);
        g_put(g);
    }
    p->requests = 0;
}

void eb_push_close(eb_push *p)
{
    if (!p || p->closing)
        return;
    p->closing = true;
    eb_bus_set_group_observer(p->bus, NULL, NULL);
    eb_bus_set_push_state(p->bus, NULL, NULL);
    uv_timer_stop(&p->sync_timer);
    uv_close((uv_handle_t *)&p->sync_timer, handle_closed);
    eb_bus_flush_pulls(p->bus); /* our parked pulls end (not alive: nothing leased) */
    abandon_requests(p);
    eb__http_out_drain(p);
    size_t it = 0;
    const eb_map_slot *s;
    size_t k = 0;
    pgroup **all = eb_xcalloc(p->groups.len + 1, sizeof *all);
    while ((s = eb_map_next(&p->groups, &it)))
        all[k++] = s->val;
    for (size_t i = 0; i < k; i++) {
        all[i]->gone = true;
        g_put(all[i]);
    }
    free(all);
    eb__http_out_close(p);
    free(p->ca_file);
    p->ca_file = NULL;
}
