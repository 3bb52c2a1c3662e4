/* groups.c - the consumer-group routes of the HTTP API: group admin, pull
 * (long poll), ack/nack/extend, dead letters and replay. Every route calls
 * the bus's command API (bus.h) and renders the plain results; the group
 * views and monitoring endpoints are rendered in monitor.c.
 *
 * A change is answered when its meta records are durable: the answer body
 * is made as soon as the call returns; when the bus says the change is
 * durable already (1) it is sent at once, otherwise it is kept in a
 * `deferred` until the bus calls back. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "eventbus/err.h"
#include "util/duration.h"
#include "util/pct.h"
#include "util/xmalloc.h"

#define MAX_IDS 10000
#define MAX_ERROR_LEN 4096

/* An answer waiting for durability: the cb arg of a bus change. */
typedef struct deferred {
    eb_http_req *req;
    int          status; /* HTTP status on success */
    size_t       len;
    char        *body;   /* small, or allocated */
    char         small[64];
} deferred;

static void deferred_free(deferred *d)
{
    if (d->body != d->small)
        free(d->body);
    free(d);
}

static void on_durable_answer(void *arg, int status)
{
    deferred *d = arg;
    if (status)
        eb__api_write_failed(d->req, status);
    else if (d->status == 204)
        eb__api_respond(d->req, 204, NULL, NULL, 0);
    else
        eb__api_respond(d->req, d->status, "application/json", d->body, d->len);
    deferred_free(d);
}

/* The cb arg for a change answered on req. */
static deferred *defer(eb_http_req *req)
{
    deferred *d = eb_xcalloc(1, sizeof *d);
    d->req = req;
    d->body = d->small;
    return d;
}

/* Answers the outcome of a bus change call that returned rc < 0. */
static void change_failed(eb_http_req *req, int rc)
{
    if (rc == EB_ENOTFOUND)
        eb__api_error(req, 404, "not_found", "no such consumer group", NULL);
    else if (rc == EB_ERANGE) /* only a new group past --max-groups */
        eb__api_error(req, 409, "limit_exceeded", "the server holds its maximum number of "
                      "consumer groups (--max-groups): delete one first", NULL);
    else
        eb__api_write_failed(req, rc);
}

/* A bus change called with d returned rc, and api->out holds its answer:
 * sends it now (rc 1: durable already), keeps it in d for the bus's
 * callback (rc 0), or answers the error (rc < 0). */
static void change_made(eb_api *api, eb_http_req *req, deferred *d, int rc, int status)
{
    if (rc != 0) {
        deferred_free(d);
        if (rc < 0)
            change_failed(req, rc);
        else if (status == 204)
            eb__api_respond(req, 204, NULL, NULL, 0);
        else
            eb__api_reply(api, req, status);
        return;
    }
    size_t n = api->out.len;
    if (n > sizeof d->small)
        d->body = eb_xmalloc(n);
    d->status = status;
    d->len = n;
    if (n)
        memcpy(d->body, api->out.data, n);
}

/* Answers {"<key>": n} (after a change call returned rc on d). */
static void answer_count(eb_api *api, eb_http_req *req, deferred *d, int rc, const char *key,
                         size_t n)
{
    eb_jw w;
    eb__api_begin(api, &w);
    eb_jw_obj_open(&w);
    eb_jw_key(&w, key);
    eb_jw_uint(&w, n);
    eb_jw_obj_close(&w);
    change_made(api, req, d, rc, 200);
}

/* --- names and lookups -------------------------------------------------------- */

/* 1-128 of A-Z a-z 0-9 . _ -, but not "." or "..": a URL cannot address
 * those (clients and proxies resolve them as path segments). */
static bool name_ok(const eb_str *s)
{
    if (s->len < 1 || s->len > EB_GROUP_MAX_NAME)
        return false;
    if ((s->len == 1 && s->ptr[0] == '.') || (s->len == 2 && !memcmp(s->ptr, "..", 2)))
        return false;
    for (size_t i = 0; i < s->len; i++) {
        char c = s->ptr[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* Whether the group named by the path exists; answers 404 if not. */
static bool find_group(eb_api *api, eb_http_req *req, const eb_api_params *p)
{
    if (name_ok(&p->v[0]) && eb_bus_group_exists(api->bus, p->v[0].ptr, p->v[0].len))
        return true;
    char msg[200];
    snprintf(msg, sizeof msg, "no consumer group named \"%.*s\"",
             (int)(p->v[0].len > 128 ? 128 : p->v[0].len), p->v[0].ptr);
    eb__api_error(req, 404, "not_found", msg, NULL);
    return false;
}

bool eb__api_find_group(eb_api *api, eb_http_req *req, const eb_api_params *p)
{
    return find_group(api, req, p);
}

static bool query_u64(eb_http_req *req, const char *name, uint64_t lo, uint64_t hi,
                      uint64_t *out);
bool eb__api_query_u64(eb_http_req *req, const char *name, uint64_t lo, uint64_t hi,
                       uint64_t *out)
{
    return query_u64(req, name, lo, hi, out);
}

/* Checks that every member of obj is one of `allowed` (NULL-terminated). */
static bool only_fields(eb_http_req *req, const eb_json *obj, const char *const *allowed)
{
    for (const eb_json *m = obj->child; m; m = m->next) {
        bool ok = false;
        for (size_t i = 0; allowed[i] && !ok; i++)
            ok = strcmp(m->key, allowed[i]) == 0;
        if (!ok) {
            char f[80], msg[256], list[160] = "";
            snprintf(f, sizeof f, "/%.60s", m->key);
            for (size_t i = 0; allowed[i]; i++)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "",
                         allowed[i]);
            snprintf(msg, sizeof msg, "unknown field (allowed: %s)", list);
            eb__api_bad_field(req, f, msg);
            return false;
        }
    }
    return true;
}

/* An optional integer member in [lo, hi]; *out keeps its default if absent. */
static bool int_field(eb_http_req *req, const eb_json *obj, const char *key, int64_t lo,
                      int64_t hi, int64_t *out)
{
    const eb_json *v = eb_json_get(obj, key);
    if (!v)
        return true;
    if (v->type != EB_JSON_NUMBER || !(v->flags & EB_JSON_F_INT) || v->i64 < lo || v->i64 > hi) {
        char f[40], msg[96];
        snprintf(f, sizeof f, "/%s", key);
        snprintf(msg, sizeof msg, "must be an integer from %lld to %lld", (long long)lo,
                 (long long)hi);
        eb__api_bad_field(req, f, msg);
        return false;
    }
    *out = v->i64;
    return true;
}

/* The body as an object, or answers and returns NULL. */
static const eb_json *body_object(eb_api *api, eb_http_req *req, bool empty_ok)
{
    if (empty_ok && req->body_len == 0) {
        static const eb_json empty = {.type = EB_JSON_OBJECT};
        return &empty;
    }
    const eb_json *b = eb__api_body(api, req, false);
    if (b && b->type != EB_JSON_OBJECT) {
        eb__api_bad_field(req, "", "the body must be a JSON object");
        return NULL;
    }
    return b;
}

/* --- admin --------------------------------------------------------------------- */

/* Makes cfg_obj the group's config (created if new): the one path of PUT
 * and PATCH. */
static void put_config(eb_api *api, eb_http_req *req, const eb_str *gname, const eb_json *cfg_obj)
{
    eb_group_cfg cfg;
    eb_field_error fe;
    if (eb_group_cfg_parse(cfg_obj, &cfg, &fe) != 0) {
        eb__api_bad_field(req, fe.field, fe.message);
        return;
    }
    char name[EB_GROUP_MAX_NAME + 1];
    memcpy(name, gname->ptr, gname->len);
    name[gname->len] = '\0';
    eb_group_info in;
    bool old = eb_bus_group_info(api->bus, name, gname->len, &in) == 0;
    if (old) { /* where a group started is history: an update keeps it */
        cfg.start = in.cfg->start;
        cfg.start_us = in.cfg->start_us;
    }
    if (cfg.push && eb_push_cfg_resolve(cfg.push, old ? in.cfg->push : NULL, eb__api_now_us(),
                                        &fe) != 0) { /* the bus settles it again, the same */
        eb_group_cfg_free(&cfg);
        eb__api_bad_field(req, fe.field, fe.message);
        return;
    }
    eb_jw w;
    eb__api_begin(api, &w);
    eb_jw_obj_open(&w);
    eb_jw_key(&w, "group");
    eb_jw_str(&w, name);
    eb_jw_key(&w, "created");
    eb_jw_bool(&w, !old);
    eb_jw_key(&w, "config");
    eb_group_cfg_write(&w, &cfg);
    eb_jw_obj_close(&w);
    deferred *d = defer(req);
    bool created;
    int rc = eb_bus_group_put(api->bus, name, &cfg, &created, on_durable_answer, d);
    eb_group_cfg_free(&cfg); /* empty unless the put failed */
    change_made(api, req, d, rc, old ? 200 : 201);
}

static bool group_name_ok(eb_http_req *req, const eb_str *name)
{
    if (name_ok(name))
        return true;
    eb__api_bad_field(req, "/group", "group names are 1 to 128 characters of "
                      "A-Z a-z 0-9 . _ -, and not \".\" or \"..\"");
    return false;
}

void eb__api_group_put(eb_api *api, eb_http_req *req, const eb_api_params *p)
{
    if (!group_name_ok(req, &p->v[0]))
        return;
    const eb_json *b = body_object(api, req, false);
    if (b)
        put_config(api, req, &p->v[0], b);
}

/* PATCH: a JSON merge patch (RFC 7396) on the group's config as GET shows
 * it; the result is checked and made durable as a PUT of it would be. */
void eb__api_group_patch(eb_api *api, eb_http_req *req, const eb_api_params *p)
{
    if (!group_name_ok(req, &p->v[0]) || !find_group(api, req, p))
        return;
    const eb_json *patch = body_object(api, req, false);
    if (!patch)
        return;
    eb_group_info in;
    if (eb_bus_group_info(api->bus, p->v[0].ptr, p->v[0].len, &in) != 0) {
        eb__api_error(req, 500, "internal", "the group went away", NULL);
        return;
    }
    eb_buf cur = EB_BUF_INIT, merged = EB_BUF_INIT;
    eb_jw w;
    eb_jw_init(&w, &cur);
    eb_group_cfg_write(&w, in.cfg);
    eb_json_doc *doc = eb_json_doc_new();
    int rc = eb_json_parse(doc, cur.data, cur.len, NULL, NULL);
    if (rc == 0) {
        eb_jw_init(&w, &merged);
        eb_json_merge_patch(&w, eb_json_root(doc), patch); /* patch lives in api->doc */
        rc = eb_json_parse(doc, merged.data, merged.len, NULL, NULL);
    }
    if (rc == 0)
        put_config(api, req, &p->v[0], eb_json_root(doc));
    else
        eb__api_error(req, 500, "internal", eb_strerror(rc), NULL);
    eb_json_doc_free(doc);
    eb_buf_free(&cur);
    eb_buf_free(&merged);
}

void eb__api_group_list(eb_api *api, eb_http_req *req, const eb_api_params *p)
{
    (void)p;
    eb__api_render_groups(api);
    eb__api_reply(api, req, 200);
}

void eb__api_group_get(eb_api *api, eb_http_req *req, const eb_api_params *p)
{
    eb_group_info in;
    if (!find_group(api, req, p))
        return;
    eb_bus_group_info(api->bus, p->v[0].ptr, p->v[0].len, &in); /* it exists: 0 */
    eb__api_render_group(api, &in);
    eb__api_reply(api, req, 200);
}

/* For a change of the group named by the path: its name into name[] and
 * the cb arg, or NULL (answered: no such group). */
static deferred *begin_change(eb_api *api, eb_http_req *req, const eb_api_params *p,
                              char name[EB_GROUP_MAX_NAME + 1])
{
    if (!find_group(api, req, p))
        return NULL;
    memcpy(name, p->v[0].ptr, p->v[0].len);
    name[p->v[0].len] = '\0';
    return defer(req);
}

void eb__api_group_delete(eb_api *api, eb_http_req *req, const eb_api_params *p)
{
    char name[EB_GROUP_MAX_NAME + 1];
    deferred *d = begin_change(api, req, p, name);
    if (!d)
        return;
    int rc = eb_bus_group_delete(api->bus, name, on_durable_answer, d);
    eb_buf_reset(&api->out);
    change_made(api, req, d, rc, 204);
}

static void pause_resume(eb_api *api, eb_http_req *req, const eb_api_params *p, bool paused)
{
    char name[EB_GROUP_MAX_NAME + 1];
    deferred *d = begin_change(api, req, p, name);
    if (!d)
        return;
    int rc = eb_bus_group_pause(api->bus, name, paused, on_durable_answer, d);
    eb_jw w;
    eb__api_begin(api, &w);
    eb_jw_obj_open(&w);
    eb_jw_key(&w, "group");
    eb_jw_str(&w, name);
    eb_jw_key(&w, "paused");
    eb_jw_bool(&w, paused);
    eb_jw_obj_close(&w);
    change_made(api, req, d, rc, 200);
}

void eb__api_group_pause(eb_api *api, eb_http_req *req, const eb_api_params *p)
{
    pause_resume(api, req, p, true);
}

void eb__api_group_resume(eb_api *api, eb_http_req *req, const eb_api_params *p)
{
    pause_resume(api, req, p, false);
}

/* --- pull ------------------------------------------------------------------------ */

/* A pull in progress: where its answer goes. */
typedef struct pull_ctx {
    eb_api      *api;
    eb_http_req *req;
    bool         ce; /* Accept: application/cloudevents-batch+json */
} pull_ctx;

/* A CloudEvents batch: [<CloudEvent with the delivery as extensions>...]. */
static void render_pull_ce(eb_buf *o, eb_json_doc *doc, const eb_delivery *dl, size_t n,
                           const char *deadline, size_t dn)
{
    eb_jw w;
    eb_jw_init(&w, o);
    eb_jw_arr_open(&w);
    for (size_t i = 0; i < n; i++) {
        eb_event_view v;
        eb_ce_delivery d = {dl[i].id, dl[i].attempt, deadline, dn};
        if (eb_event_decode(dl[i].event, dl[i].len, &v) == 0)
            eb_ce_write(&w, doc, dl[i].seq, dl[i].ts_us, &v, &d);
    }
    eb_jw_arr_close(&w);
}

/* {"events":[<event + "delivery">...]} from the bus's borrowed views (a
 * CloudEvents batch when doc is given). */
static void render_pull(eb_buf *o, eb_json_doc *doc, const eb_delivery *dl, size_t n,
                        uint64_t deadline_us)
{
    char deadline[32];
    size_t dn = eb_time_format(deadline_us, deadline);
    eb_buf_reset(o);
    if (doc)
        return render_pull_ce(o, doc, dl, n, deadline, dn);
    eb_jw w;
    eb_jw_init(&w, o);
    eb_jw_obj_open(&w);
    eb_jw_key(&w, "events");
    eb_jw_arr_open(&w);
    for (size_t i = 0; i < n; i++) {
        eb_event_view v;
        if (eb_event_decode(dl[i].event, dl[i].len, &v) != 0)
            continue;
        eb_jw_obj_open(&w);
        eb_event_write_members(&w, dl[i].seq, dl[i].ts_us, &v);
        eb_jw_key(&w, "delivery");
        eb_jw_obj_open(&w);
        eb_jw_key(&w, "id");
        eb_jw_str(&w, dl[i].id);
        eb_jw_key(&w, "attempt");
        eb_jw_uint(&w, dl[i].attempt);
        eb_jw_key(&w, "deadline");
        eb_jw_strn(&w, deadline, dn);
        eb_jw_obj_close(&w);
        eb_jw_obj_close(&w);
    }
    eb_jw_arr_close(&w);
    eb_jw_obj_close(&w);
}

static void pull_failed(eb_http_req *req, int status)
{
    if (status == EB_ENOTFOUND)
        eb__api_error(req, 404, "not_found", "the consumer group was deleted", NULL);
    else if (status == EB_ECLOSED)
        eb__api_error(req, 503, "shutting_down", "the server is stopping", NULL);
    else
        eb__api_error(req, 500, "internal", eb_strerror(status), NULL);
}

static void on_pulled(void *arg, int status, const eb_delivery *dl, size_t n,
                      uint64_t deadline_us)
{
    pull_ctx *c = arg;
    eb_buf *o = &c->api->pull_out;
    if (status == 0) {
        render_pull(o, c->ce ? c->api->ce_doc : NULL, dl, n, deadline_us);
        eb__api_respond(c->req, 200, c->ce ? EB_CE_BATCH_JSON : "application/json", o->data,
                        o->len);
    } else {
        pull_failed(c->req, status);
    }
    free(c);
}

static bool req_alive(void *arg)
{
    const pull_ctx *c = arg;
    return !eb_http_req_client_gone(c->req); /* a closed long poll gets no leases */
}

void eb__api_group_pull(eb_api *api, eb_http_req *req, const eb_api_params *p)
{
    bool g = find_group(api, req, p);
    const eb_json *b = g ? body_object(api, req, false) : NULL;
    static const char *const allowed[] = {"consumer", "max", "wait_ms", NULL};
    if (!b || !only_fields(req, b, allowed))
        return;
    const eb_json *c = eb_json_get(b, "consumer");
    if (!eb_json_is(c, EB_JSON_STRING) || c->len < 1 || c->len > 128 ||
        memchr(c->str, '\0', c->len)) {
        eb__api_bad_field(req, "/consumer", "required: the consumer's name (1 to 128 "
                          "characters)");
        return;
    }
    int64_t max = 100, wait = 0;
    if (!int_field(req, b, "max", 1, 1000, &max) || !int_field(req, b, "wait_ms", 0, 60000, &wait))
        return;
    eb_group_info in;
    if (eb_bus_group_info(api->bus, p->v[0].ptr, p->v[0].len, &in) == 0 && in.cfg->push) {
        eb__api_error(req, 409, "push_group", "this group is pushed to its push.url by the "
                      "server: it cannot be pulled (remove \"push\" to pull it)", NULL);
        return;
    }
    pull_ctx *pc = eb_xmalloc(sizeof *pc);
    *pc = (pull_ctx){api, req, eb_ce_accepts(req, EB_CE_BATCH_JSON)};
    int rc = eb_bus_pull(api->bus, p->v[0].ptr, p->v[0].len, c->str, c->len, (size_t)max,
                         (uint32_t)wait, on_pulled, req_alive, pc);
    if (rc) {
        free(pc);
        pull_failed(req, rc);
    }
}

/* --- ack, nack, extend ------------------------------------------------------------- */

typedef enum { OP_ACK, OP_NACK, OP_EXTEND } dlv_op;

/* The "ids" member: a non-empty array of strings. */
static const eb_json *ids_field(eb_http_req *req, const eb_json *b, const char *what)
{
    const eb_json *ids = eb_json_get(b, "ids");
    if (!eb_json_is(ids, EB_JSON_ARRAY) || ids->len == 0 || ids->len > MAX_IDS) {
        char msg[128];
        snprintf(msg, sizeof msg, "required: an array of 1 to %d %s ids", MAX_IDS, what);
        eb__api_bad_field(req, "/ids", msg);
        return NULL;
    }
    size_t i = 0;
    for (const eb_json *e = ids->child; e; e = e->next, i++) {
        if (e->type != EB_JSON_STRING) {
            char f[32];
            snprintf(f, sizeof f, "/ids/%zu", i);
            eb__api_bad_field(req, f, "must be a string");
            return NULL;
        }
    }
    return ids;
}

/* Makes the bus settle the ids and answers {"<op>ed":n,"unknown":[ids]}. */
static void settle(eb_api *api, eb_http_req *req, const eb_api_params *p, dlv_op op,
                   const eb_json *ids, const char *err, int64_t delay, uint32_t ms,
                   bool dead_letter)
{
    eb_str small_ids[64];
    uint8_t small_unknown[64];
    size_t n = ids->len;
    eb_str *v = n <= 64 ? small_ids : eb_xmalloc(n * sizeof *v);
    uint8_t *unknown = n <= 64 ? small_unknown : eb_xmalloc(n);
    deferred *d = defer(req);
    size_t i = 0;
    for (const eb_json *e = ids->child; e; e = e->next)
        v[i++] = (eb_str){e->str, e->len};
    static const eb_settle_op ops[] = {EB_SETTLE_ACK, EB_SETTLE_NACK, EB_SETTLE_EXTEND};
    eb_settle_req sr = {ops[op], v, n, err, delay, ms, unknown, dead_letter};
    size_t ok = 0;
    int rc = eb_bus_settle(api->bus, p->v[0].ptr, p->v[0].len, &sr, &ok, on_durable_answer, d);
    eb_jw w;
    eb__api_begin(api, &w);
    eb_jw_obj_open(&w);
    eb_jw_key(&w, op == OP_ACK ? "acked" : op == OP_NACK ? "nacked" : "extended");
    eb_jw_uint(&w, ok);
    eb_jw_key(&w, "unknown");
    eb_jw_arr_open(&w);
    for (i = 0; rc >= 0 && i < n; i++)
        if (unknown[i])
            eb_jw_strn(&w, v[i].ptr, v[i].len);
    eb_jw_arr_close(&w);
    eb_jw_obj_close(&w);
    change_made(api, req, d, rc, 200);
    if (v != small_ids)
        free(v);
    if (unknown != small_unknown)
        free(unknown);
}

static void delivery_op(eb_api *api, eb_http_req *req, const eb_api_params *p, dlv_op op)
{
    static const char *const allowed[3][5] = {{"ids", NULL},
                                              {"ids", "error", "delay_ms", "dead_letter", NULL},
                                              {"ids", "ms", NULL}};
    bool g = find_group(api, req, p);
    const eb_json *b = g ? body_object(api, req, false) : NULL;
    if (!b || !only_fields(req, b, allowed[op]))
        return;
    const eb_json *ids = ids_field(req, b, "delivery");
    int64_t delay = -1, ms = 0;
    const eb_json *err = eb_json_get(b, "error");
    if (!ids || !int_field(req, b, "delay_ms", 0, 86400000, &delay) ||
        !int_field(req, b, "ms", 100, 43200000, &ms))
        return;
    if (err && (err->type != EB_JSON_STRING || err->len > MAX_ERROR_LEN)) {
        eb__api_bad_field(req, "/error", "must be a string of at most 4096 bytes");
        return;
    }
    const eb_json *dl = eb_json_get(b, "dead_letter");
    if (dl && dl->type != EB_JSON_TRUE && dl->type != EB_JSON_FALSE) {
        eb__api_bad_field(req, "/dead_letter", "must be true or false");
        return;
    }
    settle(api, req, p, op, ids, err ? err->str : NULL, delay, (uint32_t)ms,
           dl && dl->type == EB_JSON_TRUE);
}

void eb__api_group_ack(eb_api *api, eb_http_req *req, const eb_api_params *p)
{
    delivery_op(api, req, p, OP_ACK);
}

void eb__api_group_nack(eb_api *api, eb_http_req *req, const eb_api_params *p)
{
    delivery_op(api, req, p, OP_NACK);
}

void eb__api_group_extend(eb_api *api, eb_http_req *req, const eb_api_params *p)
{
    delivery_op(api, req, p, OP_EXTEND);
}

/* --- dead letters ---------------------------------------------------------------------- */

static bool query_u64(eb_http_req *req, const char *name, uint64_t lo, uint64_t hi,
                      uint64_t *out)
{
    char buf[32];
    bool bad;
    eb_str v = eb__api_query(req, name, buf, sizeof buf, &bad);
    if (bad)
        return false;
    if (!v.ptr)
        return true;
    uint64_t x = 0;
    size_t i = 0;
    for (; i < v.len && v.ptr[i] >= '0' && v.ptr[i] <= '9' && x < UINT64_MAX / 10; i++)
        x = x * 10 + (uint64_t)(v.ptr[i] - '0');
    if (i == 0 || i != v.len || x < lo || x > hi) {
        char f[40], msg[96];
        snprintf(f, sizeof f, "?%s", name);
        snprintf(msg, sizeof msg, "must be an integer from %llu to %llu", (unsigned long long)lo,
                 (unsigned long long)hi);
        eb__api_bad_field(req, f, msg);
        return false;
    }
    *out = x;
    return true;
}

static void write_dead_letter(void *arg, const eb_dead_letter *dl)
{
    eb_jw *w = arg;
    eb_event_view v;
    if (eb_event_decode(dl->event, dl->len, &v) != 0)
        return;
    char at[40];
    eb_time_format(dl->failed_at_us, at);
    eb_jw_obj_open(w);
    eb_jw_key(w, "event");
    eb_event_write(w, dl->seq, dl->ts_us, &v);
    eb_jw_key(w, "error");
    eb_jw_str(w, dl->error);
    eb_jw_key(w, "attempts");
    eb_jw_uint(w, dl->attempts);
    eb_jw_key(w, "consumer");
    eb_jw_str(w, dl->consumer);
    eb_jw_key(w, "failed_at");
    eb_jw_str(w, at);
    eb_jw_key(w, "last_failed_at");
    eb_jw_str(w, at);
    eb_time_format(dl->first_failed_at_us, at);
    eb_jw_key(w, "first_failed_at");
    eb_jw_str(w, at);
    eb_jw_key(w, "errors");
    eb_jw_arr_open(w);
    for (size_t i = 0; i < dl->nerrors; i++) {
        const eb_failure *f = &dl->errors[i];
        eb_time_format(f->at_us, at);
        eb_jw_obj_open(w);
        eb_jw_key(w, "attempt");
        eb_jw_uint(w, f->attempt);
        eb_jw_key(w, "at");
        eb_jw_str(w, at);
        eb_jw_key(w, "consumer");
        eb_jw_str(w, f->consumer);
        eb_jw_key(w, "error");
        eb_jw_str(w, f->error);
        eb_jw_obj_close(w);
    }
    eb_jw_arr_close(w);
    eb_jw_obj_close(w);
}

void eb__api_dlq_list(eb_api *api, eb_http_req *req, const eb_api_params *p)
{
    uint64_t limit = 100, after = 0;
    if (!find_group(api, req, p) || !query_u64(req, "limit", 1, 1000, &limit) ||
        !query_u64(req, "after", 0, UINT64_MAX - 1, &after))
        return;
    eb_jw w;
    eb__api_begin(api, &w);
    eb_jw_obj_open(&w);
    eb_jw_key(&w, "dead_letters");
    eb_jw_arr_open(&w);
    uint64_t next = 0;
    int rc = eb_bus_dlq_list(api->bus, p->v[0].ptr, p->v[0].len, after, (size_t)limit,
                             write_dead_letter, &w, &next);
    if (rc) {
        change_failed(req, rc);
        return;
    }
    eb_jw_arr_close(&w);
    eb_jw_key(&w, "next");
    if (next) {
        char s[24];
        snprintf(s, sizeof s, "%llu", (unsigned long long)next);
        eb_jw_str(&w, s);
    } else {
        eb_jw_null(&w);
    }
    eb_jw_obj_close(&w);
    eb__api_reply(api, req, 200);
}

/* Event ids from a JSON array (borrowed). NULL + *n = 0 when absent. */
static eb_str *event_ids(const eb_json *ids, size_t *n)
{
    *n = 0;
    if (!ids)
        return NULL;
    eb_str *v = eb_xmalloc(ids->len * sizeof *v);
    for (const eb_json *e = ids->child; e; e = e->next)
        v[(*n)++] = (eb_str){e->str, e->len};
    return v;
}

void eb__api_dlq_redrive(eb_api *api, eb_http_req *req, const eb_api_params *p)
{
    static const char *const allowed[] = {"ids", NULL};
    bool g = find_group(api, req, p);
    const eb_json *b = g ? body_object(api, req, true) : NULL;
    if (!b || !only_fields(req, b, allowed))
        return;
    const eb_json *ids = eb_json_get(b, "ids") ? ids_field(req, b, "event") : NULL;
    if (eb_json_get(b, "ids") && !ids)
        return;
    size_t n, k = 0;
    eb_str *v = event_ids(ids, &n);
    deferred *d = defer(req);
    int rc = eb_bus_dlq_redrive(api->bus, p->v[0].ptr, p->v[0].len, v, n, &k, on_durable_answer,
                                d);
    free(v);
    answer_count(api, req, d, rc, "redriven", k);
}

void eb__api_dlq_purge(eb_api *api, eb_http_req *req, const eb_api_params *p)
{
    if (!find_group(api, req, p))
        return;
    char dec[EB_EVENT_MAX_ID + 1];
    bool bad;
    eb_str id = eb__api_query(req, "id", dec, sizeof dec, &bad);
    if (bad)
        return;
    eb_str one = id;
    deferred *d = defer(req);
    size_t k = 0;
    int rc = eb_bus_dlq_purge(api->bus, p->v[0].ptr, p->v[0].len, id.ptr ? &one : NULL,
                              id.ptr ? 1 : 0, &k, on_durable_answer, d);
    answer_count(api, req, d, rc, "purged", k);
}

/* --- replay ------------------------------------------------------------------------------ */

/* A replay bound: "2h" (ago), RFC 3339, or {"seq":N}. */
static bool replay_bound(eb_http_req *req, const eb_json *v, const char *field,
                         eb_replay_bound *out)
{
    uint64_t ts;
    if (eb_json_is(v, EB_JSON_OBJECT)) {
        const eb_json *s = eb_json_get(v, "seq");
        if (v->len == 1 && s && s->type == EB_JSON_NUMBER && (s->flags & EB_JSON_F_INT) &&
            s->i64 >= 0) {
            *out = (eb_replay_bound){true, (uint64_t)s->i64};
            return true;
        }
    } else if (eb_json_is(v, EB_JSON_STRING)) {
        uint64_t ago;
        if (eb_duration_parse(v->str, v->len, 0, &ago) == 0) {
            uint64_t now = eb__api_now_us();
            ts = now > ago ? now - ago : 0;
        } else if (eb_time_parse(v->str, v->len, &ts) != 0) {
            ts = UINT64_MAX;
        }
        if (ts != UINT64_MAX) {
            *out = (eb_replay_bound){false, ts};
            return true;
        }
    }
    eb__api_bad_field(req, field, "must be a duration ago (\"2h\", \"30m\", \"90s\", \"1d\"), "
                      "an RFC 3339 time, or {\"seq\": N}");
    return false;
}

static bool replay_types(eb_http_req *req, const eb_json *t, char **types, size_t *n)
{
    *n = 0;
    if (!t)
        return true;
    if (!eb_json_is(t, EB_JSON_ARRAY) || t->len == 0 || t->len > EB_GROUP_MAX_TYPES) {
        eb__api_bad_field(req, "/types", "must be an array of 1 to 64 type names or patterns");
        return false;
    }
    for (const eb_json *e = t->child; e; e = e->next) {
        if (e->type != EB_JSON_STRING || !eb_group_pattern_valid(e->str, e->len)) {
            char f[32];
            snprintf(f, sizeof f, "/types/%zu", *n);
            eb__api_bad_field(req, f, "not a valid type name or pattern");
            return false;
        }
        types[(*n)++] = (char *)e->str;
    }
    return true;
}

void eb__api_group_replay(eb_api *api, eb_http_req *req, const eb_api_params *p)
{
    static const char *const allowed[] = {"since", "until", "types", "dry_run", NULL};
    bool g = find_group(api, req, p);
    const eb_json *b = g ? body_object(api, req, false) : NULL;
    if (!b || !only_fields(req, b, allowed))
        return;
    const eb_json *since = eb_json_get(b, "since"), *until = eb_json_get(b, "until");
    if (!since) {
        eb__api_bad_field(req, "/since", "required: where the replay starts (\"2h\", an RFC "
                          "3339 time, or {\"seq\": N})");
        return;
    }
    char *types[EB_GROUP_MAX_TYPES];
    eb_replay_req rr = {.types = types, .has_until = until != NULL};
    if (!replay_bound(req, since, "/since", &rr.since) ||
        (until && !replay_bound(req, until, "/until", &rr.until)) ||
        !replay_types(req, eb_json_get(b, "types"), types, &rr.ntypes))
        return;
    const eb_json *dry = eb_json_get(b, "dry_run");
    if (dry && !eb_json_is_bool(dry)) {
        eb__api_bad_field(req, "/dry_run", "expected true (only count) or false");
        return;
    }
    rr.dry_run = dry && dry->type == EB_JSON_TRUE;
    deferred *d = defer(req);
    uint64_t requeued = 0, expired = 0;
    int rc = eb_bus_replay(api->bus, p->v[0].ptr, p->v[0].len, &rr, &requeued, &expired,
                           on_durable_answer, d);
    if (rc < 0) { /* the replay could not be made */
        deferred_free(d);
        eb__api_write_failed(req, rc);
        return;
    }
    eb_jw w;
    eb__api_begin(api, &w);
    eb_jw_obj_open(&w);
    eb_jw_key(&w, "requeued");
    eb_jw_uint(&w, requeued);
    eb_jw_key(&w, "expired");
    eb_jw_uint(&w, expired);
    eb_jw_obj_close(&w);
    change_made(api, req, d, rc, 200);
}
