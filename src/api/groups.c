/* groups.c - the consumer-group routes of the HTTP API: group admin, pull
 * (long poll), ack/nack/extend, dead letters, replay, and the monitoring
 * endpoints /v1/stats and /metrics.
 *
 * A change is answered when its meta records are durable: the answer body
 * is made at once and kept in a `deferred` until the bus calls back. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "eventbus.h"

#define MAX_IDS 10000
#define MAX_ERROR_LEN 4096

/* An answer waiting for durability. */
typedef struct deferred {
    eb_http_req *req;
    int          status; /* HTTP status on success */
    size_t       len;
    char         body[];
} deferred;

static void on_durable_answer(void *arg, int status)
{
    deferred *d = arg;
    if (status)
        eb__api_error(d->req, 500, "internal", eb_strerror(status), NULL);
    else if (d->status == 204)
        eb_http_respond(d->req, 204, NULL, NULL, 0);
    else
        eb_http_respond(d->req, d->status, "application/json", d->body, d->len);
    free(d);
}

/* Keeps api->out as the answer to send once durable. */
static deferred *defer(eb_api *api, eb_http_req *req, int status)
{
    deferred *d = malloc(sizeof *d + api->out.len + 1);
    if (!d) {
        eb__api_error(req, 500, "internal", "out of memory", NULL);
        return NULL;
    }
    d->req = req;
    d->status = status;
    d->len = api->out.len;
    memcpy(d->body, api->out.data ? api->out.data : "", api->out.len);
    return d;
}

/* Answers the outcome of a bus change call that took `d`. */
static void change_failed(eb_http_req *req, deferred *d, int rc)
{
    free(d);
    if (rc == EB_ENOTFOUND)
        eb__api_error(req, 404, "not_found", "no such consumer group", NULL);
    else if (rc == EB_ECLOSED)
        eb__api_error(req, 503, "shutting_down", "the server is stopping", NULL);
    else
        eb__api_error(req, 500, "internal", eb_strerror(rc), NULL);
}

/* Commits the group's gathered records, answering api->out when durable. */
static void commit(eb_api *api, eb_http_req *req, eb_group *g, int status)
{
    if (eb_buf_failed(&api->out)) {
        eb__api_error(req, 500, "internal", "out of memory", NULL);
        return;
    }
    deferred *d = defer(api, req, status);
    if (!d)
        return;
    int rc = eb_bus_group_commit(api->bus, g, on_durable_answer, d);
    if (rc)
        change_failed(req, d, rc);
}

static void start_answer(eb_api *api, eb_jw *w)
{
    eb_buf_reset(&api->out);
    eb_jw_init(w, &api->out);
}

/* Answers {"<key>": n} once g's records are durable. */
static void answer_count(eb_api *api, eb_http_req *req, eb_group *g, const char *key, size_t n)
{
    eb_jw w;
    start_answer(api, &w);
    eb_jw_obj_open(&w);
    eb_jw_key(&w, key);
    eb_jw_uint(&w, n);
    eb_jw_obj_close(&w);
    commit(api, req, g, 200);
}

/* --- names and lookups -------------------------------------------------------- */

static bool name_ok(const eb_str *s)
{
    if (s->len < 1 || s->len > EB_GROUP_MAX_NAME)
        return false;
    for (size_t i = 0; i < s->len; i++) {
        char c = s->ptr[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* The group named by the path, or answers 404 and returns NULL. */
static eb_group *find_group(eb_api *api, eb_http_req *req, const eb_api_params *p)
{
    eb_group *g = name_ok(&p->v[0]) ? eb_bus_group(api->bus, p->v[0].ptr, p->v[0].len) : NULL;
    if (!g) {
        char msg[200];
        snprintf(msg, sizeof msg, "no consumer group named \"%.*s\"",
                 (int)(p->v[0].len > 128 ? 128 : p->v[0].len), p->v[0].ptr);
        eb__api_error(req, 404, "not_found", msg, NULL);
    }
    return g;
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

void eb__api_group_put(eb_api *api, eb_http_req *req, const eb_api_params *p)
{
    if (!name_ok(&p->v[0])) {
        eb__api_bad_field(req, "/group", "group names are 1 to 128 characters of "
                          "A-Z a-z 0-9 . _ -");
        return;
    }
    const eb_json *b = body_object(api, req, false);
    if (!b)
        return;
    eb_group_cfg cfg;
    eb_field_error fe;
    if (eb_group_cfg_parse(b, &cfg, &fe) != 0) {
        eb__api_bad_field(req, fe.field, fe.message);
        return;
    }
    char name[EB_GROUP_MAX_NAME + 1];
    memcpy(name, p->v[0].ptr, p->v[0].len);
    name[p->v[0].len] = '\0';
    eb_group *old = eb_bus_group(api->bus, name, p->v[0].len);
    if (old) { /* where a group started is history: an update keeps it */
        cfg.start = eb_group_config(old)->start;
        cfg.start_us = eb_group_config(old)->start_us;
    }
    eb_jw w;
    start_answer(api, &w);
    eb_jw_obj_open(&w);
    eb_jw_key(&w, "group");
    eb_jw_str(&w, name);
    eb_jw_key(&w, "created");
    eb_jw_bool(&w, !old);
    eb_jw_key(&w, "config");
    eb_group_cfg_write(&w, &cfg);
    eb_jw_obj_close(&w);
    deferred *d = eb_buf_failed(&api->out) ? NULL : defer(api, req, old ? 200 : 201);
    if (!d) {
        eb_group_cfg_free(&cfg);
        if (eb_buf_failed(&api->out))
            eb__api_error(req, 500, "internal", "out of memory", NULL);
        return;
    }
    bool created;
    int rc = eb_bus_group_put(api->bus, name, &cfg, &created, on_durable_answer, d);
    eb_group_cfg_free(&cfg); /* empty unless the put failed */
    if (rc)
        change_failed(req, d, rc);
}

void eb__api_group_list(eb_api *api, eb_http_req *req, const eb_api_params *p)
{
    (void)p;
    eb_jw w;
    start_answer(api, &w);
    eb_jw_obj_open(&w);
    eb_jw_key(&w, "groups");
    eb_jw_arr_open(&w);
    size_t it = 0;
    eb_group *g;
    while ((g = eb_bus_group_next(api->bus, &it))) {
        eb_jw_obj_open(&w);
        eb_bus_group_summary(api->bus, g, &w, false);
        eb_jw_obj_close(&w);
    }
    eb_jw_arr_close(&w);
    eb_jw_obj_close(&w);
    eb__api_reply(api, req, 200);
}

void eb__api_group_get(eb_api *api, eb_http_req *req, const eb_api_params *p)
{
    eb_group *g = find_group(api, req, p);
    if (!g)
        return;
    eb_jw w;
    start_answer(api, &w);
    eb_jw_obj_open(&w);
    eb_bus_group_summary(api->bus, g, &w, true);
    eb_jw_obj_close(&w);
    eb__api_reply(api, req, 200);
}

void eb__api_group_delete(eb_api *api, eb_http_req *req, const eb_api_params *p)
{
    if (!find_group(api, req, p))
        return;
    char name[EB_GROUP_MAX_NAME + 1];
    memcpy(name, p->v[0].ptr, p->v[0].len);
    name[p->v[0].len] = '\0';
    eb_buf_reset(&api->out);
    deferred *d = defer(api, req, 204);
    if (!d)
        return;
    int rc = eb_bus_group_delete(api->bus, name, on_durable_answer, d);
    if (rc)
        change_failed(req, d, rc);
}

static void pause_resume(eb_api *api, eb_http_req *req, const eb_api_params *p, bool paused)
{
    eb_group *g = find_group(api, req, p);
    if (!g)
        return;
    eb_jw w;
    start_answer(api, &w);
    eb_jw_obj_open(&w);
    eb_jw_key(&w, "group");
    eb_jw_str(&w, eb_group_name(g));
    eb_jw_key(&w, "paused");
    eb_jw_bool(&w, paused);
    eb_jw_obj_close(&w);
    deferred *d = defer(api, req, 200);
    if (!d)
        return;
    int rc = eb_bus_group_pause(api->bus, eb_group_name(g), paused, on_durable_answer, d);
    if (rc)
        change_failed(req, d, rc);
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

static void on_pulled(void *arg, int status, const char *json, size_t len)
{
    eb_http_req *req = arg;
    if (status == 0)
        eb_http_respond(req, 200, "application/json", json, len);
    else if (status == EB_ENOTFOUND)
        eb__api_error(req, 404, "not_found", "the consumer group was deleted", NULL);
    else if (status == EB_ECLOSED)
        eb__api_error(req, 503, "shutting_down", "the server is stopping", NULL);
    else
        eb__api_error(req, 500, "internal", eb_strerror(status), NULL);
}

static bool req_alive(void *arg)
{
    const eb_http_req *req = arg;
    return req->conn != NULL;
}

void eb__api_group_pull(eb_api *api, eb_http_req *req, const eb_api_params *p)
{
    eb_group *g = find_group(api, req, p);
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
    int rc = eb_bus_pull(api->bus, g, c->str, c->len, (size_t)max, (uint32_t)wait, on_pulled,
                         req_alive, req);
    if (rc)
        on_pulled(req, rc, NULL, 0);
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

static void delivery_op(eb_api *api, eb_http_req *req, const eb_api_params *p, dlv_op op)
{
    static const char *const allowed[3][4] = {{"ids", NULL},
                                              {"ids", "error", "delay_ms", NULL},
                                              {"ids", "ms", NULL}};
    eb_group *g = find_group(api, req, p);
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
    eb_outbox *ob = eb_bus_outbox(api->bus);
    eb_jw w;
    start_answer(api, &w);
    eb_jw_obj_open(&w);
    size_t ok = 0;
    eb_buf unknown = EB_BUF_INIT;
    eb_jw uw;
    eb_jw_init(&uw, &unknown);
    eb_jw_arr_open(&uw);
    for (const eb_json *e = ids->child; e; e = e->next) {
        eb_dlv_outcome o =
            op == OP_ACK    ? eb_group_ack(g, e->str, e->len)
            : op == OP_NACK ? eb_group_nack(g, e->str, e->len, err ? err->str : NULL, delay, ob)
                            : eb_group_extend(g, e->str, e->len, (uint32_t)ms);
        if (o == EB_DLV_OK)
            ok++;
        else
            eb_jw_strn(&uw, e->str, e->len);
    }
    eb_jw_arr_close(&uw);
    eb_jw_key(&w, op == OP_ACK ? "acked" : op == OP_NACK ? "nacked" : "extended");
    eb_jw_uint(&w, ok);
    eb_jw_key(&w, "unknown");
    eb_jw_raw(&w, unknown.data, unknown.len);
    eb_jw_obj_close(&w);
    eb_buf_free(&unknown);
    commit(api, req, g, 200);
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
    eb_str v = eb__api_query(req, name);
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

void eb__api_dlq_list(eb_api *api, eb_http_req *req, const eb_api_params *p)
{
    eb_group *g = find_group(api, req, p);
    uint64_t limit = 100, after = 0;
    if (!g || !query_u64(req, "limit", 1, 1000, &limit) ||
        !query_u64(req, "after", 0, UINT64_MAX - 1, &after))
        return;
    eb_jw w;
    start_answer(api, &w);
    eb_jw_obj_open(&w);
    eb_jw_key(&w, "dead_letters");
    eb_jw_arr_open(&w);
    uint64_t next = 0;
    eb_group_dlq_list(g, after, (size_t)limit, &w, &next);
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
    eb_str *v = malloc((ids->len ? ids->len : 1) * sizeof *v);
    for (const eb_json *e = v ? ids->child : NULL; e; e = e->next)
        v[(*n)++] = (eb_str){e->str, e->len};
    return v;
}

void eb__api_dlq_redrive(eb_api *api, eb_http_req *req, const eb_api_params *p)
{
    static const char *const allowed[] = {"ids", NULL};
    eb_group *g = find_group(api, req, p);
    const eb_json *b = g ? body_object(api, req, true) : NULL;
    if (!b || !only_fields(req, b, allowed))
        return;
    const eb_json *ids = eb_json_get(b, "ids") ? ids_field(req, b, "event") : NULL;
    if (eb_json_get(b, "ids") && !ids)
        return;
    size_t n;
    eb_str *v = event_ids(ids, &n);
    size_t k = eb_group_dlq_redrive(g, v, n, eb_bus_outbox(api->bus));
    free(v);
    answer_count(api, req, g, "redriven", k);
}

void eb__api_dlq_purge(eb_api *api, eb_http_req *req, const eb_api_params *p)
{
    eb_group *g = find_group(api, req, p);
    if (!g)
        return;
    eb_str id = eb__api_query(req, "id");
    char dec[EB_EVENT_MAX_ID + 1];
    size_t dn = 0;
    if (id.ptr) { /* percent-decoding is not needed for ids of [!-~] but is cheap */
        for (size_t i = 0; i < id.len && dn < EB_EVENT_MAX_ID; i++) {
            if (id.ptr[i] == '%' && i + 2 < id.len) {
                char hx[3] = {id.ptr[i + 1], id.ptr[i + 2], 0};
                dec[dn++] = (char)strtol(hx, NULL, 16);
                i += 2;
            } else {
                dec[dn++] = id.ptr[i];
            }
        }
    }
    eb_str one = {dec, dn};
    size_t k = eb_group_dlq_purge(g, id.ptr ? &one : NULL, id.ptr ? 1 : 0,
                                  eb_bus_outbox(api->bus));
    answer_count(api, req, g, "purged", k);
}

/* --- replay ------------------------------------------------------------------------------ */

/* "2h", "30m", "45s", "1d", "500ms" -> µs; 0 on success. */
static int parse_duration(const char *s, size_t n, uint64_t *us)
{
    uint64_t v = 0;
    size_t i = 0;
    for (; i < n && s[i] >= '0' && s[i] <= '9' && v < 1000000000000ull; i++)
        v = v * 10 + (uint64_t)(s[i] - '0');
    if (i == 0)
        return EB_EINVAL;
    const char *u = s + i;
    size_t ul = n - i;
    uint64_t mult = ul == 2 && !memcmp(u, "ms", 2) ? 1000u
                    : ul == 1 && *u == 's'         ? 1000000u
                    : ul == 1 && *u == 'm'         ? 60000000u
                    : ul == 1 && *u == 'h'         ? 3600000000u
                    : ul == 1 && *u == 'd'         ? 86400000000u
                                                   : 0;
    if (!mult)
        return EB_EINVAL;
    *us = v * mult;
    return 0;
}

/* A replay bound: "2h" (ago), RFC 3339, or {"seq":N}; into a seq. */
static bool replay_bound(eb_api *api, eb_http_req *req, const eb_json *v, const char *field,
                         uint64_t *seq, bool *by_time)
{
    eb_log *log = eb_bus_events_log(api->bus);
    uint64_t ts;
    *by_time = true;
    if (eb_json_is(v, EB_JSON_OBJECT)) {
        const eb_json *s = eb_json_get(v, "seq");
        if (v->len == 1 && s && s->type == EB_JSON_NUMBER && (s->flags & EB_JSON_F_INT) &&
            s->i64 >= 0) {
            *seq = (uint64_t)s->i64;
            *by_time = false;
            return true;
        }
    } else if (eb_json_is(v, EB_JSON_STRING)) {
        uint64_t ago;
        if (parse_duration(v->str, v->len, &ago) == 0) {
            uint64_t now = eb__api_now_us();
            ts = now > ago ? now - ago : 0;
        } else if (eb_time_parse(v->str, v->len, &ts) != 0) {
            ts = UINT64_MAX;
        }
        if (ts != UINT64_MAX) {
            if (eb_log_seek_time(log, ts, seq) != 0)
                *seq = eb_log_durable_seq(log);
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
    static const char *const allowed[] = {"since", "until", "types", NULL};
    eb_group *g = find_group(api, req, p);
    const eb_json *b = g ? body_object(api, req, false) : NULL;
    if (!b || !only_fields(req, b, allowed))
        return;
    const eb_json *since = eb_json_get(b, "since"), *until = eb_json_get(b, "until");
    if (!since) {
        eb__api_bad_field(req, "/since", "required: where the replay starts (\"2h\", an RFC "
                          "3339 time, or {\"seq\": N})");
        return;
    }
    uint64_t from, to = UINT64_MAX;
    bool from_time, to_time;
    char *types[EB_GROUP_MAX_TYPES];
    size_t nt;
    if (!replay_bound(api, req, since, "/since", &from, &from_time) ||
        (until && !replay_bound(api, req, until, "/until", &to, &to_time)) ||
        !replay_types(req, eb_json_get(b, "types"), types, &nt))
        return;
    uint64_t requeued = 0, expired = 0;
    int rc = eb_group_replay(g, from, to, types, nt, &requeued, &expired,
                             eb_bus_outbox(api->bus));
    if (rc) {
        eb__api_error(req, 500, "internal", eb_strerror(rc), NULL);
        return;
    }
    eb_jw w;
    start_answer(api, &w);
    eb_jw_obj_open(&w);
    eb_jw_key(&w, "requeued");
    eb_jw_uint(&w, requeued);
    eb_jw_key(&w, "expired");
    eb_jw_uint(&w, expired);
    eb_jw_obj_close(&w);
    commit(api, req, g, 200);
}

/* --- monitoring ----------------------------------------------------------------------------- */

void eb__api_stats(eb_api *api, eb_http_req *req, const eb_api_params *p)
{
    (void)p;
    eb_jw w;
    start_answer(api, &w);
    eb_bus_stats_json(api->bus, &w);
    eb__api_reply(api, req, 200);
}

void eb__api_metrics(eb_api *api, eb_http_req *req, const eb_api_params *p)
{
    (void)p;
    eb_buf_reset(&api->out);
    eb_bus_metrics(api->bus, &api->out);
    if (eb_buf_failed(&api->out)) {
        eb__api_error(req, 500, "internal", "out of memory", NULL);
        return;
    }
    eb_http_respond(req, 200, "text/plain; version=0.0.4", api->out.data, api->out.len);
}
