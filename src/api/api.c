/* api.c - request dispatch and the shared answer helpers of the HTTP API.
 *
 * Routes are one table: method + path pattern ("{name}" captures one
 * segment). A path that matches no pattern is 404; a path that matches
 * with another method is 405 with an Allow header listing the right ones. */
#include "api/api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "eventbus/err.h"
#include "util/clock.h"
#include "util/pct.h"
#include "util/xmalloc.h"

typedef void (*route_fn)(eb_api *api, eb_http_req *req, const eb_api_params *p);

/* A route: what it answers, and the scope a token needs for it (for
 * consume routes, one whose pattern matches the {group}). Writes of
 * groups, schemas and tokens are audited. The scope-matrix test reads
 * this table (tests/integration/test_auth.py parses it), so a new route
 * cannot escape the check. */
typedef struct route {
    const char *method;  /* "GET", "POST", ... */
    const char *pattern; /* "/v1/schemas/{type}/versions/{n}" */
    route_fn    fn;
    const char *params;  /* the query parameters it reads, ",a,b,"; NULL: none */
    eb_scope    scope;
} route;

/* 200 {"status":"ok"}, or 503 {"status":"degraded","reason":...} while a
 * store refuses writes (full, recovering by itself; or broken). */
static void h_health(eb_api *api, eb_http_req *req, const eb_api_params *p)
{
    (void)p;
    const char *which;
    int rc = eb_bus_storage_error(api->bus, &which);
    eb_buf_reset(&api->out);
    if (rc == 0) {
        eb_buf_puts(&api->out, "{\"status\":\"ok\"}");
        eb__api_reply(api, req, 200);
        return;
    }
    char reason[160];
    if (rc == EB_ENOSPC)
        snprintf(reason, sizeof reason, "storage full (%s log): writes refused until space is "
                 "freed", which);
    else if (rc == EB_ECONNECT)
        snprintf(reason, sizeof reason, "storage unreachable (%s store): writes refused until "
                 "the database answers", which);
    else
        snprintf(reason, sizeof reason, "storage failed (%s log): %s", which, eb_strerror(rc));
    eb_jw w;
    eb_jw_init(&w, &api->out);
    eb_jw_obj_open(&w);
    eb_jw_key(&w, "status");
    eb_jw_str(&w, "degraded");
    eb_jw_key(&w, "reason");
    eb_jw_str(&w, reason);
    eb_jw_key(&w, "code");
    eb_jw_str(&w, rc == EB_ENOSPC     ? "storage_full"
                  : rc == EB_ECONNECT ? "storage_unavailable"
                                      : "storage_failed");
    eb_jw_obj_close(&w);
    if (rc == EB_ENOSPC || rc == EB_ECONNECT)
        eb_http_set_header(req, "Retry-After", "5");
    eb__api_reply(api, req, 503);
}

static const route routes[] = {
    {"GET", "/healthz", h_health, NULL, EB_SCOPE_OPEN},
    {"POST", "/v1/events", eb__api_publish, NULL, EB_SCOPE_PUBLISH},
    {"GET", "/v1/events", eb__api_browse, ",type,since,until,after_seq,limit,key,from_version,", EB_SCOPE_READ},
    {"POST", "/v1/events/batch", eb__api_publish_batch, NULL, EB_SCOPE_PUBLISH},
    {"GET", "/v1/events/{id}", eb__api_get_event, ",source,", EB_SCOPE_READ},
    {"GET", "/v1/schemas", eb__api_schema_list, NULL, EB_SCOPE_READ},
    {"PUT", "/v1/schemas/{type}", eb__api_schema_put, NULL, EB_SCOPE_SCHEMAS_WRITE},
    {"GET", "/v1/schemas/{type}", eb__api_schema_get, NULL, EB_SCOPE_READ},
    {"POST", "/v1/schemas/{type}/check", eb__api_schema_check, NULL, EB_SCOPE_READ},
    {"GET", "/v1/schemas/{type}/versions/{n}", eb__api_schema_version, NULL, EB_SCOPE_READ},
    {"GET", "/v1/groups", eb__api_group_list, NULL, EB_SCOPE_READ},
    {"PUT", "/v1/groups/{group}", eb__api_group_put, NULL, EB_SCOPE_GROUPS_WRITE},
    {"PATCH", "/v1/groups/{group}", eb__api_group_patch, NULL, EB_SCOPE_GROUPS_WRITE},
    {"GET", "/v1/groups/{group}", eb__api_group_get, NULL, EB_SCOPE_READ},
    {"DELETE", "/v1/groups/{group}", eb__api_group_delete, NULL, EB_SCOPE_GROUPS_WRITE},
    {"POST", "/v1/groups/{group}/pause", eb__api_group_pause, NULL, EB_SCOPE_GROUPS_WRITE},
    {"POST", "/v1/groups/{group}/resume", eb__api_group_resume, NULL, EB_SCOPE_GROUPS_WRITE},
    {"POST", "/v1/groups/{group}/pull", eb__api_group_pull, NULL, EB_SCOPE_CONSUME},
    {"POST", "/v1/groups/{group}/ack", eb__api_group_ack, NULL, EB_SCOPE_CONSUME},
    {"POST", "/v1/groups/{group}/nack", eb__api_group_nack, NULL, EB_SCOPE_CONSUME},
    {"POST", "/v1/groups/{group}/extend", eb__api_group_extend, NULL, EB_SCOPE_CONSUME},
    {"POST", "/v1/groups/{group}/replay", eb__api_group_replay, NULL, EB_SCOPE_GROUPS_WRITE},
    {"GET", "/v1/groups/{group}/dlq", eb__api_dlq_list, ",limit,after,", EB_SCOPE_READ},
    {"DELETE", "/v1/groups/{group}/dlq", eb__api_dlq_purge, ",id,", EB_SCOPE_GROUPS_WRITE},
    {"POST", "/v1/groups/{group}/dlq/redrive", eb__api_dlq_redrive, NULL, EB_SCOPE_GROUPS_WRITE},
    {"GET", "/v1/groups/{group}/history", eb__api_group_history, NULL, EB_SCOPE_READ},
    {"GET", "/v1/stats", eb__api_stats, NULL, EB_SCOPE_READ},
    {"GET", "/v1/overview", eb__api_overview, ",limit,offset,q,", EB_SCOPE_READ},
    {"GET", "/metrics", eb__api_metrics, NULL, EB_SCOPE_METRICS},
    {"GET", "/ui", eb__api_ui, NULL, EB_SCOPE_OPEN},  /* the page loads before a token is typed; */
    {"GET", "/ui/", eb__api_ui, NULL, EB_SCOPE_OPEN}, /* it holds no data: every call it makes */
    {"GET", "/ui/{file}", eb__api_ui, NULL, EB_SCOPE_OPEN}, /* carries the user's token */
    {"POST", "/v1/tokens", eb__api_token_post, NULL, EB_SCOPE_ADMIN},
    {"GET", "/v1/tokens", eb__api_token_list, NULL, EB_SCOPE_ADMIN},
    {"DELETE", "/v1/tokens/{name}", eb__api_token_delete, NULL, EB_SCOPE_ADMIN},
    {"GET", "/v1/tokens/self", eb__api_token_self, NULL, EB_SCOPE_TOKEN},
};

_Static_assert(sizeof routes / sizeof routes[0] <= EB_API_MAX_ROUTES, "EB_API_MAX_ROUTES");

const char *eb__api_route_name(unsigned tag, const char **method)
{
    if (tag == 0 || tag > sizeof routes / sizeof routes[0])
        return NULL;
    *method = routes[tag - 1].method;
    return routes[tag - 1].pattern;
}

uint64_t eb__api_now_us(void)
{
    return eb_clock_wall_us();
}

/* --- matching ------------------------------------------------------------ */

/* Percent-decodes a captured segment into the params buffer (strict: a bad
 * escape, a NUL, or no room refuses the match). */
static bool decode_segment(const char *s, size_t n, char *out, size_t cap, size_t *outn)
{
    return eb_pct_decode(s, n, out, cap, outn, EB_PCT_STRICT) == 0;
}

/* Matches path against pattern, capturing {params}. */
static bool match(const char *pattern, const char *path, size_t plen, eb_api_params *p,
                  char *store, size_t store_cap)
{
    const char *pp = pattern, *s = path, *end = path + plen;
    size_t used = 0;
    p->n = 0;
    while (*pp && s < end) {
        if (*pp == '{') {
            const char *close = strchr(pp, '}');
            const char *seg_end = memchr(s, '/', (size_t)(end - s));
            if (!seg_end)
                seg_end = end;
            if (seg_end == s || p->n >= EB_API_MAX_PARAMS)
                return false;
            size_t n;
            if (!decode_segment(s, (size_t)(seg_end - s), store + used, store_cap - used, &n))
                return false;
            p->v[p->n++] = (eb_str){store + used, n};
            used += n + 1;
            pp = close + 1;
            s = seg_end;
            continue;
        }
        if (*pp != *s)
            return false;
        pp++;
        s++;
    }
    return *pp == '\0' && s == end;
}

const char *eb__api_method_name(int m)
{
    switch (m) {
    case EB_HTTP_GET:    return "GET";
    case EB_HTTP_POST:   return "POST";
    case EB_HTTP_PUT:    return "PUT";
    case EB_HTTP_PATCH:  return "PATCH";
    case EB_HTTP_DELETE: return "DELETE";
    case EB_HTTP_HEAD:   return "HEAD";
    default:             return "OTHER";
    }
}

/* Refuses (400 naming it) a query parameter the route does not read: a
 * misspelt or unsupported filter must never be silently ignored. */
static bool params_known(const route *r, eb_http_req *req)
{
    const char *q = req->query, *end = req->query + req->query_len;
    while (q && q < end) {
        const char *amp = memchr(q, '&', (size_t)(end - q)), *pe = amp ? amp : end;
        const char *eq = memchr(q, '=', (size_t)(pe - q));
        size_t n = (size_t)((eq ? eq : pe) - q);
        char name[72];
        snprintf(name, sizeof name, ",%.*s,", n > 64 ? 64 : (int)n, q);
        if (pe > q && (!r->params || n > 64 || !strstr(r->params, name))) {
            char field[72], msg[200], list[120] = "none";
            snprintf(field, sizeof field, "?%.*s", n > 64 ? 64 : (int)n, q);
            if (r->params) { /* ",a,b," -> "a, b" */
                size_t k = 0;
                for (const char *c = r->params + 1; c[1] && k + 3 < sizeof list; c++)
                    if (*c == ',')
                        list[k++] = ',', list[k++] = ' ';
                    else
                        list[k++] = *c;
                list[k] = '\0';
            }
            snprintf(msg, sizeof msg, "unknown query parameter (allowed here: %s)", list);
            eb__api_bad_field(req, field, msg);
            return false;
        }
        q = amp ? amp + 1 : NULL;
    }
    return true;
}

/* The auth check, the audit mark, the query check, then the route. */
static void dispatch(eb_api *api, eb_http_req *req, const route *r, const eb_api_params *p)
{
    eb_scope sc = r->scope;
    if (sc == EB_SCOPE_SCHEMAS_WRITE || sc == EB_SCOPE_GROUPS_WRITE || sc == EB_SCOPE_ADMIN)
        if (req->method != EB_HTTP_GET)
            eb__api_audit_begin(api, req, r->method);
    eb_str subject = {NULL, 0};
    if (sc == EB_SCOPE_CONSUME && p->n)
        subject = p->v[0];
    if (eb__api_authorize(api, req, sc, subject) && params_known(r, req))
        r->fn(api, req, p);
}

void eb_api_handle(eb_api *api, eb_http_req *req)
{
    if (api->stopping) {
        eb__api_error(req, 503, "shutting_down", "the server is stopping", NULL);
        return;
    }
    const char *m = eb__api_method_name(req->method);
    char store[1024];
    eb_api_params p;
    char allow[128] = "";
    size_t plen = req->path_len;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        if (!match(routes[i].pattern, req->path, plen, &p, store, sizeof store))
            continue;
        if (strcmp(routes[i].method, m) == 0) {
            req->tag = (uint16_t)(i + 1);
            dispatch(api, req, &routes[i], &p);
            return;
        }
        if (!strstr(allow, routes[i].method)) {
            if (*allow)
                strcat(allow, ", ");
            strcat(allow, routes[i].method);
        }
    }
    if (*allow) {
        char msg[200];
        snprintf(msg, sizeof msg, "method %s not allowed here (allowed: %s)", m, allow);
        eb_http_set_header(req, "Allow", allow);
        eb__api_error(req, 405, "method_not_allowed", msg, NULL);
        return;
    }
    eb__api_error(req, 404, "not_found", "no such endpoint", NULL);
}

/* --- answers ------------------------------------------------------------- */

void eb__api_begin(eb_api *api, eb_jw *w)
{
    eb_buf_reset(&api->out);
    eb_jw_init(w, &api->out);
}

void eb__api_write_uints(eb_jw *w, const eb_api_kv *kv, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        eb_jw_key(w, kv[i].k);
        eb_jw_uint(w, kv[i].v);
    }
}

void eb__api_error(eb_http_req *req, int status, const char *code, const char *message,
                   const char *details_json)
{
    eb_buf b = EB_BUF_INIT;
    eb_jw w;
    eb_jw_init(&w, &b);
    eb_jw_obj_open(&w);
    eb_jw_key(&w, "error");
    eb_jw_obj_open(&w);
    eb_jw_key(&w, "code");
    eb_jw_str(&w, code);
    eb_jw_key(&w, "message");
    eb_jw_str(&w, message);
    eb_jw_key(&w, "details");
    if (details_json && *details_json)
        eb_jw_raw(&w, details_json, strlen(details_json));
    else
        eb_jw_raw(&w, "[]", 2);
    eb_jw_obj_close(&w);
    eb_jw_obj_close(&w);
    eb__api_respond(req, status, "application/json", b.data, b.len);
    eb_buf_free(&b);
}

void eb__api_write_failed(eb_http_req *req, int rc)
{
    if (rc == EB_ENOSPC) {
        eb_http_set_header(req, "Retry-After", "5");
        eb__api_error(req, 507, "storage_full", "the server's storage is full: nothing was "
                      "written; retry once space is freed", NULL);
    } else if (rc == EB_ECONNECT) {
        eb_http_set_header(req, "Retry-After", "1");
        eb__api_error(req, 503, "storage_unavailable", "the server's database is unreachable: "
                      "nothing was written; retry (the server reconnects by itself)", NULL);
    } else if (rc == EB_ECLOSED) {
        eb__api_error(req, 503, "shutting_down", "the server is stopping", NULL);
    } else {
        eb__api_error(req, 500, "internal", eb_strerror(rc), NULL);
    }
}

void eb__api_read_failed(eb_http_req *req, int rc)
{
    if (rc == EB_ECONNECT) {
        eb_http_set_header(req, "Retry-After", "1");
        eb__api_error(req, 503, "storage_unavailable", "the server's database is unreachable; "
                      "retry (the server reconnects by itself)", NULL);
    } else {
        eb__api_error(req, 500, "internal", eb_strerror(rc), NULL);
    }
}

void eb__api_reply(eb_api *api, eb_http_req *req, int status)
{
    eb__api_respond(req, status, "application/json", api->out.data, api->out.len);
}

void eb__api_bad_field(eb_http_req *req, const char *field, const char *message)
{
    eb_buf d = EB_BUF_INIT;
    eb_jw w;
    eb_jw_init(&w, &d);
    eb_jw_arr_open(&w);
    eb_jw_obj_open(&w);
    eb_jw_key(&w, "field");
    eb_jw_str(&w, field);
    eb_jw_key(&w, "message");
    eb_jw_str(&w, message);
    eb_jw_obj_close(&w);
    eb_jw_arr_close(&w);
    char msg[300];
    snprintf(msg, sizeof msg, "%s%s%s", field, *field ? ": " : "", message);
    eb__api_error(req, 400, "invalid_request", msg, d.data);
    eb_buf_free(&d);
}

/* A body must say it is JSON: application/json, a CloudEvents JSON type or
 * (PATCH) application/merge-patch+json, with parameters allowed. No
 * Content-Type, or curl -d's default application/x-www-form-urlencoded,
 * is 415 (docs/api.md); an empty body without one is left to the caller. */
static bool json_content_type(const eb_http_req *req)
{
    size_t n = 0;
    const char *ct = eb_http_req_header(req, "content-type", &n);
    if (!ct)
        return req->body_len == 0;
    static const char *ok[] = {"application/json", "application/merge-patch+json",
                               "application/cloudevents+json",
                               "application/cloudevents-batch+json"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        size_t l = strlen(ok[i]);
        if (n >= l && strncasecmp(ct, ok[i], l) == 0 && (n == l || ct[l] == ';' || ct[l] == ' '))
            return true;
    }
    return false;
}

const eb_json *eb__api_body(eb_api *api, eb_http_req *req, bool dup_keys_ok)
{
    if (!json_content_type(req)) {
        eb__api_error(req, 415, "unsupported_media_type",
                      "Content-Type must be application/json (or CloudEvents JSON); "
                      "with curl: --json or -H 'Content-Type: application/json'", NULL);
        return NULL;
    }
    if (req->body_len == 0) {
        eb__api_error(req, 400, "malformed_json", "the request body is empty", NULL);
        return NULL;
    }
    eb_json_opts o = {.max_depth = api->opts.max_depth, .reject_dup_keys = !dup_keys_ok};
    eb_json_error e;
    int rc = eb_json_parse(api->doc, req->body, req->body_len, &o, &e);
    if (rc == 0)
        return eb_json_root(api->doc);
    char msg[200];
    snprintf(msg, sizeof msg, "malformed JSON at line %u, column %u: %s", e.line, e.column,
             e.msg);
    if (rc == EB_ETOOBIG)
        eb__api_error(req, 413, "payload_too_large", msg, NULL);
    else
        eb__api_error(req, 400, "malformed_json", msg, NULL);
    return NULL;
}

static eb_str query_raw(const eb_http_req *req, const char *name)
{
    size_t nl = strlen(name);
    const char *q = req->query, *end = req->query + req->query_len;
    while (q && q < end) {
        const char *amp = memchr(q, '&', (size_t)(end - q));
        const char *pe = amp ? amp : end;
        if ((size_t)(pe - q) > nl && !memcmp(q, name, nl) && q[nl] == '=')
            return (eb_str){q + nl + 1, (size_t)(pe - q - (ptrdiff_t)nl - 1)};
        q = amp ? amp + 1 : NULL;
    }
    return (eb_str){NULL, 0};
}

bool eb__api_query_has(const eb_http_req *req, const char *name)
{
    return query_raw(req, name).ptr != NULL;
}

/* Decodes a query value as forms encode it: percent escapes, '+' a space
 * (what URLSearchParams and curl --data-urlencode send). */
static int query_decode(const char *s, size_t n, char *out, size_t cap, size_t *outn)
{
    size_t k = 0;
    for (;;) {
        const char *plus = memchr(s, '+', n);
        size_t seg = plus ? (size_t)(plus - s) : n, m = 0;
        int rc = eb_pct_decode(s, seg, out + k, cap - k, &m, EB_PCT_STRICT);
        if (rc)
            return rc;
        k += m;
        if (!plus)
            break;
        if (k + 1 >= cap)
            return EB_ETOOBIG;
        out[k++] = ' ';
        out[k] = '\0';
        s = plus + 1;
        n -= seg + 1;
    }
    *outn = k;
    return 0;
}

eb_str eb__api_query(eb_http_req *req, const char *name, char *buf, size_t cap, bool *bad)
{
    eb_str raw = query_raw(req, name);
    size_t n = 0;
    *bad = false;
    if (!raw.ptr)
        return raw;
    if (query_decode(raw.ptr, raw.len, buf, cap, &n) != 0) {
        char f[40], msg[120];
        snprintf(f, sizeof f, "?%.30s", name);
        snprintf(msg, sizeof msg, "a bad percent-encoding (%%XX), or over %zu bytes decoded",
                 cap - 1);
        eb__api_bad_field(req, f, msg);
        *bad = true;
        return (eb_str){NULL, 0};
    }
    return (eb_str){buf, n};
}

/* --- lifecycle ----------------------------------------------------------- */

int eb_api_new(eb_bus *bus, const eb_api_opts *o, eb_api **out)
{
    eb_api *api = eb_xcalloc(1, sizeof *api);
    api->bus = bus;
    if (o)
        api->opts = *o;
    if (!api->opts.max_batch)
        api->opts.max_batch = 1000;
    if (!api->opts.metrics_groups)
        api->opts.metrics_groups = 1000;
    if (!api->opts.max_depth)
        api->opts.max_depth = EB_JSON_DEFAULT_DEPTH;
    eb_buf_init(&api->out);
    eb_buf_init(&api->pull_out);
    eb_pub_errors_init(&api->perrs);
    api->doc = eb_json_doc_new();
    api->ce_doc = eb_json_doc_new();
    *out = api;
    return 0;
}

void eb_api_shutdown(eb_api *api)
{
    api->stopping = true;
    eb_bus_flush_pulls(api->bus); /* long polls answer now, with what they have */
}

void eb_api_free(eb_api *api)
{
    if (!api)
        return;
    eb_json_doc_free(api->doc);
    eb_json_doc_free(api->ce_doc);
    eb_buf_free(&api->out);
    eb_buf_free(&api->pull_out);
    eb_pub_errors_free(&api->perrs);
    eb_ce_scratch_free(&api->ce);
    free(api->evs);
    free(api);
}
