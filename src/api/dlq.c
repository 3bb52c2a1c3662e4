/* dlq.c - a consumer group's dead letters (list, redrive, purge) and
 * replay routes. Each calls the bus's command API and renders its plain
 * results; changes answer when their records are durable (the deferred
 * answer of groups.c, group_routes.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/group_routes.h"
#include "eventbus/err.h"
#include "util/duration.h"
#include "util/xmalloc.h"

/* --- dead letters ---------------------------------------------------------------------- */

bool eb__api_query_u64(eb_http_req *req, const char *name, uint64_t lo, uint64_t hi,
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
    if (!eb__api_find_group(api, req, p) || !eb__api_query_u64(req, "limit", 1, 1000, &limit) ||
        !eb__api_query_u64(req, "after", 0, UINT64_MAX - 1, &after))
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
        eb__api_change_failed(req, rc);
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
    bool g = eb__api_find_group(api, req, p);
    const eb_json *b = g ? eb__api_body_object(api, req, true) : NULL;
    if (!b || !eb__api_only_fields(req, b, allowed))
        return;
    const eb_json *ids = eb_json_get(b, "ids") ? eb__api_ids_field(req, b, "event") : NULL;
    if (eb_json_get(b, "ids") && !ids)
        return;
    size_t n, k = 0;
    eb_str *v = event_ids(ids, &n);
    deferred *d = eb__api_defer(req);
    int rc = eb_bus_dlq_redrive(api->bus, p->v[0].ptr, p->v[0].len, v, n, &k,
                                eb__api_on_durable_answer, d);
    free(v);
    eb__api_answer_count(api, req, d, rc, "redriven", k);
}

void eb__api_dlq_purge(eb_api *api, eb_http_req *req, const eb_api_params *p)
{
    if (!eb__api_find_group(api, req, p))
        return;
    char dec[EB_EVENT_MAX_ID + 1];
    bool bad;
    eb_str id = eb__api_query(req, "id", dec, sizeof dec, &bad);
    if (bad)
        return;
    eb_str one = id;
    deferred *d = eb__api_defer(req);
    size_t k = 0;
    int rc = eb_bus_dlq_purge(api->bus, p->v[0].ptr, p->v[0].len, id.ptr ? &one : NULL,
                              id.ptr ? 1 : 0, &k, eb__api_on_durable_answer, d);
    eb__api_answer_count(api, req, d, rc, "purged", k);
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
    bool g = eb__api_find_group(api, req, p);
    const eb_json *b = g ? eb__api_body_object(api, req, false) : NULL;
    if (!b || !eb__api_only_fields(req, b, allowed))
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
    deferred *d = eb__api_defer(req);
    uint64_t requeued = 0, expired = 0;
    int rc = eb_bus_replay(api->bus, p->v[0].ptr, p->v[0].len, &rr, &requeued, &expired,
                           eb__api_on_durable_answer, d);
    if (rc < 0) { /* the replay could not be made */
        eb__api_deferred_free(d);
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
    eb__api_change_made(api, req, d, rc, 200);
}
