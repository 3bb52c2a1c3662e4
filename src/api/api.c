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

typedef void (*route_fn)(eb_api *api, eb_http_req *req, const eb_api_params *p);

typedef struct route {
    const char *method;  /* "GET", "POST", ... */
    const char *pattern; /* "/v1/schemas/{type}/versions/{n}" */
    route_fn    fn;
} route;

static void h_health(eb_api *api, eb_http_req *req, const eb_api_params *p)
{
    (void)p;
    eb_buf_reset(&api->out);
    eb_buf_puts(&api->out, "{\"status\":\"ok\"}");
    eb__api_reply(api, req, 200);
}

static const route routes[] = {
    {"GET", "/healthz", h_health},
    {"POST", "/v1/events", eb__api_publish},
    {"GET", "/v1/events", eb__api_browse},
    {"POST", "/v1/events/batch", eb__api_publish_batch},
    {"GET", "/v1/events/{id}", eb__api_get_event},
    {"GET", "/v1/schemas", eb__api_schema_list},
    {"PUT", "/v1/schemas/{type}", eb__api_schema_put},
    {"GET", "/v1/schemas/{type}", eb__api_schema_get},
    {"POST", "/v1/schemas/{type}/check", eb__api_schema_check},
    {"GET", "/v1/schemas/{type}/versions/{n}", eb__api_schema_version},
    {"GET", "/v1/groups", eb__api_group_list},
    {"PUT", "/v1/groups/{group}", eb__api_group_put},
    {"GET", "/v1/groups/{group}", eb__api_group_get},
    {"DELETE", "/v1/groups/{group}", eb__api_group_delete},
    {"POST", "/v1/groups/{group}/pause", eb__api_group_pause},
    {"POST", "/v1/groups/{group}/resume", eb__api_group_resume},
    {"POST", "/v1/groups/{group}/pull", eb__api_group_pull},
    {"POST", "/v1/groups/{group}/ack", eb__api_group_ack},
    {"POST", "/v1/groups/{group}/nack", eb__api_group_nack},
    {"POST", "/v1/groups/{group}/extend", eb__api_group_extend},
    {"POST", "/v1/groups/{group}/replay", eb__api_group_replay},
    {"GET", "/v1/groups/{group}/dlq", eb__api_dlq_list},
    {"DELETE", "/v1/groups/{group}/dlq", eb__api_dlq_purge},
    {"POST", "/v1/groups/{group}/dlq/redrive", eb__api_dlq_redrive},
    {"GET", "/v1/groups/{group}/history", eb__api_group_history},
    {"GET", "/v1/stats", eb__api_stats},
    {"GET", "/v1/overview", eb__api_overview},
    {"GET", "/metrics", eb__api_metrics},
    {"GET", "/ui", eb__api_ui},
    {"GET", "/ui/", eb__api_ui},
    {"GET", "/ui/{file}", eb__api_ui},
};

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

static const char *method_name(int m)
{
    switch (m) {
    case EB_HTTP_GET:    return "GET";
    case EB_HTTP_POST:   return "POST";
    case EB_HTTP_PUT:    return "PUT";
    case EB_HTTP_DELETE: return "DELETE";
    case EB_HTTP_HEAD:   return "HEAD";
    default:             return "OTHER";
    }
}

void eb_api_handle(eb_api *api, eb_http_req *req)
{
    if (api->stopping) {
        eb__api_error(req, 503, "shutting_down", "the server is stopping", NULL);
        return;
    }
    const char *m = method_name(req->method);
    char store[1024];
    eb_api_params p;
    char allow[128] = "";
    size_t plen = req->path_len;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        if (!match(routes[i].pattern, req->path, plen, &p, store, sizeof store))
            continue;
        if (strcmp(routes[i].method, m) == 0) {
            routes[i].fn(api, req, &p);
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
    eb_http_respond(req, status, "application/json", b.data, b.len);
    eb_buf_free(&b);
}

void eb__api_reply(eb_api *api, eb_http_req *req, int status)
{
    if (eb_buf_failed(&api->out)) {
        eb_buf_reset(&api->out);
        eb__api_error(req, 500, "internal", "out of memory", NULL);
        return;
    }
    eb_http_respond(req, status, "application/json", api->out.data, api->out.len);
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

static bool json_content_type(const eb_http_req *req)
{
    size_t n = 0;
    const char *ct = eb_http_req_header(req, "content-type", &n);
    if (!ct)
        return true; /* be lenient: curl -d without -H */
    static const char *ok[] = {"application/json", "application/cloudevents+json",
                               "application/cloudevents-batch+json"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        size_t l = strlen(ok[i]);
        if (n >= l && strncasecmp(ct, ok[i], l) == 0 && (n == l || ct[l] == ';' || ct[l] == ' '))
            return true;
    }
    /* application/x-www-form-urlencoded is what curl -d sends by default. */
    return n >= 33 && strncasecmp(ct, "application/x-www-form-urlencoded", 33) == 0;
}

const eb_json *eb__api_body(eb_api *api, eb_http_req *req, bool dup_keys_ok)
{
    if (!json_content_type(req)) {
        eb__api_error(req, 415, "unsupported_media_type",
                      "Content-Type must be application/json (or CloudEvents JSON)", NULL);
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
    else if (rc == EB_ENOMEM)
        eb__api_error(req, 500, "internal", "out of memory", NULL);
    else
        eb__api_error(req, 400, "malformed_json", msg, NULL);
    return NULL;
}

eb_str eb__api_query(const eb_http_req *req, const char *name)
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

/* --- lifecycle ----------------------------------------------------------- */

int eb_api_new(eb_bus *bus, const eb_api_opts *o, eb_api **out)
{
    eb_api *api = calloc(1, sizeof *api);
    if (!api)
        return EB_ENOMEM;
    api->bus = bus;
    if (o)
        api->opts = *o;
    if (!api->opts.max_batch)
        api->opts.max_batch = 1000;
    if (!api->opts.max_depth)
        api->opts.max_depth = EB_JSON_DEFAULT_DEPTH;
    eb_buf_init(&api->out);
    eb_buf_init(&api->pull_out);
    eb_pub_errors_init(&api->perrs);
    if (!(api->doc = eb_json_doc_new())) {
        free(api);
        return EB_ENOMEM;
    }
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
    eb_buf_free(&api->out);
    eb_buf_free(&api->pull_out);
    eb_pub_errors_free(&api->perrs);
    eb_ce_scratch_free(&api->ce);
    free(api->evs);
    free(api);
}
