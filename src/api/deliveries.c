/* deliveries.c - the delivery routes of a consumer group: pull (long
 * poll; JSON or a CloudEvents batch) and ack, nack and extend of leased
 * deliveries. Each calls the bus's command API and renders its plain
 * results; settling answers when its records are durable (the deferred
 * answer of groups.c, group_routes.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/group_routes.h"
#include "eventbus/err.h"
#include "util/xmalloc.h"

#define MAX_IDS 10000
#define MAX_ERROR_LEN 4096

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
    bool g = eb__api_find_group(api, req, p);
    const eb_json *b = g ? eb__api_body_object(api, req, false) : NULL;
    static const char *const allowed[] = {"consumer", "max", "wait_ms", NULL};
    if (!b || !eb__api_only_fields(req, b, allowed))
        return;
    const eb_json *c = eb_json_get(b, "consumer");
    if (!eb_json_is(c, EB_JSON_STRING) || c->len < 1 || c->len > 128 ||
        memchr(c->str, '\0', c->len)) {
        eb__api_bad_field(req, "/consumer", "required: the consumer's name (1 to 128 "
                          "characters)");
        return;
    }
    int64_t max = 100, wait = 0;
    if (!eb__api_int_field(req, b, "max", 1, 1000, &max) ||
        !eb__api_int_field(req, b, "wait_ms", 0, 60000, &wait))
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
const eb_json *eb__api_ids_field(eb_http_req *req, const eb_json *b, const char *what)
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
    deferred *d = eb__api_defer(req);
    size_t i = 0;
    for (const eb_json *e = ids->child; e; e = e->next)
        v[i++] = (eb_str){e->str, e->len};
    static const eb_settle_op ops[] = {EB_SETTLE_ACK, EB_SETTLE_NACK, EB_SETTLE_EXTEND};
    eb_settle_req sr = {ops[op], v, n, err, delay, ms, unknown, dead_letter};
    size_t ok = 0;
    int rc = eb_bus_settle(api->bus, p->v[0].ptr, p->v[0].len, &sr, &ok,
                           eb__api_on_durable_answer, d);
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
    eb__api_change_made(api, req, d, rc, 200);
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
    bool g = eb__api_find_group(api, req, p);
    const eb_json *b = g ? eb__api_body_object(api, req, false) : NULL;
    if (!b || !eb__api_only_fields(req, b, allowed[op]))
        return;
    const eb_json *ids = eb__api_ids_field(req, b, "delivery");
    int64_t delay = -1, ms = 0;
    const eb_json *err = eb_json_get(b, "error");
    if (!ids || !eb__api_int_field(req, b, "delay_ms", 0, 86400000, &delay) ||
        !eb__api_int_field(req, b, "ms", 100, 43200000, &ms))
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
