/* events.c - POST /v1/events, POST /v1/events/batch, GET /v1/events,
 * GET /v1/events/{id}: publishing (native and CloudEvents) and browsing. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/api.h"
#include "api/cloudevents.h"
#include "eventbus/err.h"
#include "util/duration.h"
#include "util/xmalloc.h"
#include "util/pct.h"

/* The publish in flight: answers once the bus reports durability. */
typedef struct pub_req {
    eb_api      *api;
    eb_http_req *req;
    bool         batch; /* answer with a list */
    uint64_t     t0_us; /* when the request was handed to the bus */
} pub_req;

static void write_result(eb_jw *w, const eb_pub_result *r)
{
    char t[32];
    size_t tn = eb_time_format(r->ts_us, t);
    eb_jw_obj_open(w);
    EB_JW_KEY(w, "id");
    eb_jw_str(w, r->id);
    EB_JW_KEY(w, "seq");
    eb_jw_uint(w, r->seq);
    EB_JW_KEY(w, "time");
    eb_jw_strn(w, t, tn);
    if (r->key_version) {
        EB_JW_KEY(w, "key_version");
        eb_jw_uint(w, r->key_version);
    }
    if (r->deliver_us)
        eb_time_write(w, "deliver_at", r->deliver_us);
    if (r->duplicate) {
        EB_JW_KEY(w, "duplicate");
        eb_jw_bool(w, true);
    }
    eb_jw_obj_close(w);
}

static void on_published(void *arg, int status, const eb_pub_result *res, size_t n)
{
    pub_req *pr = arg;
    eb_api *api = pr->api;
    if (status) {
        eb__api_write_failed(pr->req, status);
        free(pr);
        return;
    }
    bool all_dup = true;
    for (size_t i = 0; i < n; i++)
        all_dup = all_dup && res[i].duplicate;
    eb_buf_reset(&api->out);
    eb_jw w;
    eb_jw_init(&w, &api->out);
    if (pr->batch) {
        eb_jw_obj_open(&w);
        eb_jw_key(&w, "results");
        eb_jw_arr_open(&w);
        for (size_t i = 0; i < n; i++)
            write_result(&w, &res[i]);
        eb_jw_arr_close(&w);
        eb_jw_obj_close(&w);
    } else {
        write_result(&w, &res[0]);
    }
    eb__api_reply(api, pr->req, all_dup ? 200 : 201);
    uint64_t now = eb__api_now_us();
    eb_bus_observe_publish(api->bus, now > pr->t0_us ? now - pr->t0_us : 0);
    free(pr);
}

/* Status and code for the first fault of a refused publish. */
static void fault_status(eb_pub_fault f, int *status, const char **code)
{
    switch (f) {
    case EB_PUB_SCHEMA:     *status = 422; *code = "schema_violation"; break;
    case EB_PUB_NO_VERSION: *status = 422; *code = "unknown_schema_version"; break;
    case EB_PUB_NO_SCHEMA:  *status = 422; *code = "schema_required"; break;
    case EB_PUB_TOO_BIG:    *status = 413; *code = "payload_too_large"; break;
    case EB_PUB_VERSION_CONFLICT: *status = 409; *code = "version_conflict"; break;
    case EB_PUB_LIMIT:      *status = 409; *code = "limit_exceeded"; break;
    default:                *status = 400; *code = "invalid_request"; break;
    }
}

static void refuse(eb_api *api, eb_http_req *req, bool batch)
{
    int status;
    const char *code;
    fault_status(api->perrs.first, &status, &code);
    char msg[320];
    if (batch)
        snprintf(msg, sizeof msg, "%zu problem(s) in the batch; nothing was written; first: %s",
                 api->perrs.count, api->perrs.summary);
    else
        snprintf(msg, sizeof msg, "%s", api->perrs.summary);
    eb_buf d = EB_BUF_INIT;
    eb_jw w;
    eb_jw_init(&w, &d);
    eb_jw_arr_open(&w);
    for (size_t i = 0; i < api->perrs.kept; i++) {
        eb_pub_error e;
        eb_pub_errors_at(&api->perrs, i, &e);
        eb_jw_obj_open(&w);
        eb_jw_key(&w, "index");
        eb_jw_uint(&w, e.index);
        eb_jw_key(&w, e.kind == EB_PUB_SCHEMA ? "path" : "field"); /* envelope: a field */
        eb_jw_str(&w, e.path);
        if (e.schema_path) {
            eb_jw_key(&w, "schemaPath");
            eb_jw_str(&w, e.schema_path);
        }
        if (e.kind == EB_PUB_VERSION_CONFLICT) {
            eb_jw_key(&w, "current_version");
            eb_jw_uint(&w, e.current_version);
        }
        eb_jw_key(&w, "message");
        eb_jw_str(&w, e.message);
        eb_jw_obj_close(&w);
    }
    eb_jw_arr_close(&w);
    eb__api_error(req, status, code, msg, d.data);
    eb_buf_free(&d);
}

static void reserve_events(eb_api *api, size_t n)
{
    if (n <= api->evs_cap)
        return;
    api->evs = eb_xrealloc(api->evs, n * sizeof *api->evs);
    api->evs_cap = n;
}

static void submit(eb_api *api, eb_http_req *req, size_t n, bool batch)
{
    for (size_t i = 0; api->who && i < n; i++)
        if (!eb__api_may_publish(api, req, &api->evs[i].type, 1))
            return;
    pub_req *pr = eb_xmalloc(sizeof *pr);
    *pr = (pub_req){api, req, batch, eb__api_now_us()};
    int rc = eb_bus_publish(api->bus, api->evs, n, &api->perrs, on_published, pr);
    if (rc == 0)
        return;
    free(pr);
    if (rc == EB_EINVAL && api->perrs.count)
        refuse(api, req, batch);
    else
        eb__api_write_failed(req, rc);
}

/* Answers 400 for an envelope error of event idx (batch) or the event. */
static void envelope_error(eb_http_req *req, bool batch, size_t idx, const eb_field_error *fe)
{
    char field[96], msg[420];
    if (batch)
        snprintf(field, sizeof field, "/%zu%s", idx, fe->field);
    else
        snprintf(field, sizeof field, "%s", fe->field);
    snprintf(msg, sizeof msg, "%s%s%s", field, *field ? ": " : "", fe->message);
    eb_buf d = EB_BUF_INIT;
    eb_jw w;
    eb_jw_init(&w, &d);
    eb_jw_arr_open(&w);
    eb_jw_obj_open(&w);
    if (batch) {
        eb_jw_key(&w, "index");
        eb_jw_uint(&w, idx);
    }
    eb_jw_key(&w, "field");
    eb_jw_str(&w, field);
    eb_jw_key(&w, "message");
    eb_jw_str(&w, fe->message);
    eb_jw_obj_close(&w);
    eb_jw_arr_close(&w);
    eb__api_error(req, 400, "invalid_request", msg, d.data);
    eb_buf_free(&d);
}

/* Maps one envelope (native or structured CloudEvent) into evs[idx]. */
static int map_envelope(eb_api *api, eb_http_req *req, const eb_json *obj, bool ce,
                        bool batch, size_t idx)
{
    eb_field_error fe;
    int rc = ce ? eb_ce_from_json(&api->ce, obj, req->body, &api->evs[idx], &fe)
                : eb_event_from_json(obj, req->body, &api->evs[idx], &fe);
    if (rc)
        envelope_error(req, batch, idx, &fe);
    return rc;
}

void eb__api_publish(eb_api *api, eb_http_req *req, const eb_api_params *p)
{
    (void)p;
    reserve_events(api, 1);
    eb_ce_mode mode = eb_ce_detect(req);
    if (mode == EB_CE_BINARY) {
        eb_field_error fe;
        eb_ce_scratch_reset(&api->ce);
        if (eb_ce_from_binary(&api->ce, req, api->doc, &api->evs[0], &fe) != 0) {
            envelope_error(req, false, 0, &fe);
            return;
        }
        submit(api, req, 1, false);
        return;
    }
    const eb_json *root = eb__api_body(api, req, false);
    if (!root)
        return;
    eb_ce_scratch_reset(&api->ce);
    if (map_envelope(api, req, root, mode == EB_CE_STRUCTURED, false, 0) == 0)
        submit(api, req, 1, false);
}

void eb__api_publish_batch(eb_api *api, eb_http_req *req, const eb_api_params *p)
{
    (void)p;
    eb_ce_mode mode = eb_ce_detect(req);
    const eb_json *root = eb__api_body(api, req, false);
    if (!root)
        return;
    const eb_json *arr = root;
    if (root->type == EB_JSON_OBJECT && mode != EB_CE_BATCH)
        arr = eb_json_get(root, "events");
    if (!eb_json_is(arr, EB_JSON_ARRAY)) {
        eb__api_bad_field(req, "", "a batch is a JSON array of events (or {\"events\":[...]})");
        return;
    }
    if (arr->len == 0 || arr->len > api->opts.max_batch) {
        char msg[96];
        snprintf(msg, sizeof msg, "a batch holds 1 to %zu events, got %u", api->opts.max_batch,
                 arr->len);
        eb__api_bad_field(req, "", msg);
        return;
    }
    reserve_events(api, arr->len);
    size_t i = 0;
    eb_ce_scratch_reset(&api->ce);
    for (const eb_json *e = arr->child; e; e = e->next, i++)
        if (map_envelope(api, req, e, mode == EB_CE_BATCH || mode == EB_CE_STRUCTURED, true, i))
            return;
    submit(api, req, arr->len, true);
}

/* --- browsing ------------------------------------------------------------ */

/* Parses a time bound: RFC 3339, or a duration back from now ("2h", "30m"). */
static int parse_when(eb_str s, uint64_t *ts_us)
{
    if (eb_time_parse(s.ptr, s.len, ts_us) == 0)
        return 0;
    uint64_t back, now = eb__api_now_us();
    int rc = eb_duration_parse(s.ptr, s.len, 0, &back);
    if (rc == EB_ERANGE) /* longer ago than 1970: all */
        back = UINT64_MAX;
    else if (rc)
        return EB_EINVAL;
    *ts_us = back < now ? now - back : 0;
    return 0;
}

static int parse_u64(eb_str s, uint64_t *out)
{
    if (s.len == 0 || s.len > 19)
        return EB_EINVAL;
    uint64_t v = 0;
    for (size_t i = 0; i < s.len; i++) {
        if (s.ptr[i] < '0' || s.ptr[i] > '9')
            return EB_EINVAL;
        v = v * 10 + (uint64_t)(s.ptr[i] - '0');
    }
    *out = v;
    return 0;
}

/* Where events being read out go: native JSON, or CloudEvents. */
typedef struct out_ctx {
    eb_jw        w;
    eb_json_doc *ce_doc; /* non-NULL: write CloudEvents */
} out_ctx;

static void write_event(void *arg, uint64_t seq, uint64_t ts_us, const eb_event_view *v)
{
    out_ctx *c = arg;
    if (!c->ce_doc)
        eb_event_write(&c->w, seq, ts_us, v);
    else if (eb_ce_write(&c->w, c->ce_doc, seq, ts_us, v, NULL) != 0)
        eb_jw_null(&c->w); /* a damaged record: never half an object */
}

/* Starts an answer in api->out: {"events":[ natively, [ for a CloudEvents
 * batch (Accept: application/cloudevents-batch+json). */
static void page_open(eb_api *api, eb_http_req *req, out_ctx *c)
{
    eb_buf_reset(&api->out);
    eb_jw_init(&c->w, &api->out);
    c->ce_doc = eb_ce_accepts(req, EB_CE_BATCH_JSON) ? api->ce_doc : NULL;
    if (!c->ce_doc) {
        eb_jw_obj_open(&c->w);
        eb_jw_key(&c->w, "events");
    }
    eb_jw_arr_open(&c->w);
}

/* Ends a page: the native answer's cursor members, or for a CloudEvents
 * batch the cursor in a header (name, value). */
static bool page_close(eb_api *api, eb_http_req *req, out_ctx *c, const char *header,
                       const char *value)
{
    eb_jw_arr_close(&c->w);
    if (!c->ce_doc)
        return false;
    if (value)
        eb_http_set_header(req, header, value);
    if (eb_buf_failed(&api->out))
        eb__api_error(req, 500, "internal", "out of memory", NULL);
    else
        eb__api_respond(req, 200, EB_CE_BATCH_JSON, api->out.data, api->out.len);
    return true;
}

/* GET /v1/events?key=K[&from_version=N][&limit=L]: one key's stream. */
static void browse_key(eb_api *api, eb_http_req *req, eb_str key)
{
    char fb[32], lb[32];
    bool bad = false;
    eb_str from = eb__api_query(req, "from_version", fb, sizeof fb, &bad);
    eb_str limit = bad ? from : eb__api_query(req, "limit", lb, sizeof lb, &bad);
    if (bad)
        return;
    uint64_t fv = 0, lim = 100;
    if (key.len == 0)
        return eb__api_bad_field(req, "?key", "must be a key (percent-encoded, 1 to 1024 bytes)");
    if (from.ptr && parse_u64(from, &fv))
        return eb__api_bad_field(req, "?from_version", "expected a version (1, 2, ...)");
    if (limit.ptr && (parse_u64(limit, &lim) || lim < 1 || lim > 1000))
        return eb__api_bad_field(req, "?limit", "expected 1 to 1000");
    static const char *const other[] = {"?type", "?since", "?until", "?after_seq"};
    for (size_t i = 0; i < sizeof other / sizeof other[0]; i++)
        if (eb__api_query_has(req, other[i] + 1))
            return eb__api_bad_field(req, other[i], "cannot be combined with key (a key's "
                                     "stream is read by version: from_version, limit)");
    out_ctx c;
    page_open(api, req, &c);
    uint64_t next = 0, cur = 0;
    int rc = eb_bus_key_events(api->bus, key.ptr, key.len, fv, lim, write_event, &c, &next, &cur);
    if (rc)
        return eb__api_read_failed(req, rc);
    char nv[24];
    snprintf(nv, sizeof nv, "%llu", (unsigned long long)next);
    if (page_close(api, req, &c, "Eventbus-Next-From-Version", nv))
        return;
    eb_jw_key(&c.w, "key_version");
    eb_jw_uint(&c.w, cur);
    eb_jw_key(&c.w, "next_from_version");
    eb_jw_uint(&c.w, next);
    eb_jw_obj_close(&c.w);
    eb__api_reply(api, req, 200);
}

void eb__api_browse(eb_api *api, eb_http_req *req, const eb_api_params *p)
{
    (void)p;
    char kb[EB_EVENT_MAX_KEY + 1];
    bool bad = false;
    eb_str key = eb__api_query(req, "key", kb, sizeof kb, &bad);
    if (bad)
        return;
    if (key.ptr)
        return browse_key(api, req, key);
    if (eb__api_query_has(req, "from_version"))
        return eb__api_bad_field(req, "?from_version", "needs key");
    eb_browse q = {.limit = 100};
    char tb[256], sb[64], ub[64], ab[32], lb[32];
    eb_str type = eb__api_query(req, "type", tb, sizeof tb, &bad);
    eb_str since = bad ? type : eb__api_query(req, "since", sb, sizeof sb, &bad);
    eb_str until = bad ? type : eb__api_query(req, "until", ub, sizeof ub, &bad);
    eb_str after = bad ? type : eb__api_query(req, "after_seq", ab, sizeof ab, &bad);
    eb_str limit = bad ? type : eb__api_query(req, "limit", lb, sizeof lb, &bad);
    if (bad)
        return;
    uint64_t lim = 0;
    if (type.ptr && !eb_event_type_valid(type.ptr, type.len))
        return eb__api_bad_field(req, "?type", "not a valid event type name");
    q.type = type;
    if (since.ptr && parse_when(since, &q.since_us))
        return eb__api_bad_field(req, "?since", "expected RFC 3339 time or a duration like 2h");
    if (until.ptr && parse_when(until, &q.until_us))
        return eb__api_bad_field(req, "?until", "expected RFC 3339 time or a duration like 2h");
    if (after.ptr && parse_u64(after, &q.after_seq))
        return eb__api_bad_field(req, "?after_seq", "expected a sequence number");
    if (limit.ptr && (parse_u64(limit, &lim) || lim < 1 || lim > 1000))
        return eb__api_bad_field(req, "?limit", "expected 1 to 1000");
    if (lim)
        q.limit = lim;
    out_ctx c;
    page_open(api, req, &c);
    uint64_t next = 0;
    int rc = eb_bus_browse(api->bus, &q, write_event, &c, &next);
    if (rc)
        return eb__api_read_failed(req, rc);
    char na[24];
    snprintf(na, sizeof na, "%llu", (unsigned long long)next);
    if (page_close(api, req, &c, "Eventbus-Next-After-Seq", next ? na : NULL))
        return;
    eb_jw_key(&c.w, "next_after_seq");
    if (next)
        eb_jw_uint(&c.w, next);
    else
        eb_jw_null(&c.w);
    eb_jw_obj_close(&c.w);
    eb__api_reply(api, req, 200);
}

/* GET /v1/events/{id}[?source=S]: the newest event with the id, or the one
 * from source S (?source= empty: from no source). */
void eb__api_get_event(eb_api *api, eb_http_req *req, const eb_api_params *p)
{
    char sb[EB_EVENT_MAX_ATTR + 1];
    bool bad = false;
    eb_str source = eb__api_query(req, "source", sb, sizeof sb, &bad);
    if (bad)
        return;
    eb_buf_reset(&api->out);
    out_ctx c = {.ce_doc = eb_ce_accepts(req, EB_CE_JSON) ? api->ce_doc : NULL};
    eb_jw_init(&c.w, &api->out);
    int rc = eb_bus_get_event_from(api->bus, source.ptr ? &source : NULL, p->v[0].ptr,
                                   p->v[0].len, write_event, &c);
    if (rc == EB_ENOTFOUND)
        return eb__api_error(req, 404, "not_found",
                             source.ptr ? "no retained event with this id from this source"
                                        : "no retained event with this id",
                             NULL);
    if (rc)
        return eb__api_read_failed(req, rc);
    if (!c.ce_doc)
        return eb__api_reply(api, req, 200);
    if (eb_buf_failed(&api->out))
        return eb__api_error(req, 500, "internal", "out of memory", NULL);
    eb__api_respond(req, 200, EB_CE_JSON, api->out.data, api->out.len);
}
