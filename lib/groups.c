/* groups.c - libeventbus: consumer-group management (put, patch, delete,
 * pause, resume, list, get), dead letters (list, redrive, purge) and
 * replay (the schema registry and stats: admin.c). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "events.h"

/* The strings of the array o[key] into a result-owned array. */
static bool read_strs(void *res, const eb_json *o, const char *key, const char *const **out,
                      size_t *n)
{
    const eb_json *a = eb_json_get(o, key);
    size_t len = eb__arr_len(o, key), i = 0;
    const char **v = eb__result_alloc(res, len * sizeof *v);
    if (!v)
        return false;
    for (const eb_json *e = len ? a->child : NULL; e; e = e->next)
        if (e->type == EB_JSON_STRING)
            v[i++] = e->str;
    *out = v;
    *n = i;
    return true;
}

/* Reads the boolean member `key` of the answer into *out (may be NULL). */
static int read_flag(eb_client *c, const eb_json *root, const char *key, bool *out)
{
    bool v;
    if (!eb__get_bool(root, key, &v)) {
        char what[64];
        snprintf(what, sizeof what, "no \"%s\" flag", key);
        return eb__bad_answer(c, what);
    }
    if (out)
        *out = v;
    return 0;
}

/* --- groups ------------------------------------------------------------------ */

static void kv_u32(eb_jw *w, const char *k, uint32_t v)
{
    if (v) {
        eb_jw_key(w, k);
        eb_jw_uint(w, v);
    }
}

static void write_backoff(eb_jw *w, const eb_groups_config *g)
{
    if (!g->backoff_initial_ms && !g->backoff_max_ms && g->backoff_multiplier <= 0 &&
        !g->has_jitter)
        return;
    eb_jw_key(w, "backoff");
    eb_jw_obj_open(w);
    kv_u32(w, "initial_ms", g->backoff_initial_ms);
    if (g->backoff_multiplier > 0) {
        eb_jw_key(w, "multiplier");
        eb_jw_double(w, g->backoff_multiplier);
    }
    kv_u32(w, "max_ms", g->backoff_max_ms);
    if (g->has_jitter) {
        eb_jw_key(w, "jitter");
        eb_jw_double(w, g->backoff_jitter);
    }
    eb_jw_obj_close(w);
}

/* "push": {...} when a push member is set; null to remove it (a patch). */
static void write_push(eb_jw *w, const eb_groups_config *g)
{
    if (g->push_remove) {
        eb_jw_key(w, "push");
        eb_jw_null(w);
        return;
    }
    if (!g->push_url && !g->push_secret && !g->npush_headers && !g->push_timeout_ms &&
        !g->push_max_in_flight && !g->push_batch && !g->push_format)
        return;
    eb_jw_key(w, "push");
    eb_jw_obj_open(w);
    if (g->push_url) {
        eb_jw_key(w, "url");
        eb_jw_str(w, g->push_url);
    }
    if (g->push_secret) {
        eb_jw_key(w, "secret");
        eb_jw_str(w, g->push_secret);
    }
    if (g->npush_headers) {
        eb_jw_key(w, "headers");
        eb_jw_obj_open(w);
        for (size_t i = 0; i < g->npush_headers; i++) {
            const char *h = g->push_headers[i], *colon = strchr(h, ':');
            const char *v = colon ? colon + 1 : "";
            while (*v == ' ' || *v == '\t')
                v++;
            eb_jw_keyn(w, h, colon ? (size_t)(colon - h) : strlen(h));
            eb_jw_str(w, v);
        }
        eb_jw_obj_close(w);
    }
    kv_u32(w, "timeout_ms", g->push_timeout_ms);
    kv_u32(w, "max_in_flight", g->push_max_in_flight);
    kv_u32(w, "batch", g->push_batch);
    if (g->push_format) {
        eb_jw_key(w, "format");
        eb_jw_str(w, g->push_format);
    }
    eb_jw_obj_close(w);
}

static void write_config(eb_jw *w, const eb_groups_config *g)
{
    eb_jw_obj_open(w);
    if (g->ntypes) /* always for a put (checked); a patch may leave types alone */
        eb__write_strs(w, "types", g->types, g->ntypes);
    if (g->start) {
        eb_jw_key(w, "start");
        eb_jw_str(w, g->start);
    }
    kv_u32(w, "max_attempts", g->max_attempts);
    write_backoff(w, g);
    kv_u32(w, "ack_timeout_ms", g->ack_timeout_ms);
    if (g->ordering) {
        eb_jw_key(w, "ordering");
        eb_jw_str(w, g->ordering);
    }
    if (g->has_max_in_flight) {
        eb_jw_key(w, "max_in_flight");
        eb_jw_uint(w, g->max_in_flight);
    } else {
        kv_u32(w, "max_in_flight", g->max_in_flight);
    }
    if (g->rate_limit > 0 || g->has_rate_limit) {
        eb_jw_key(w, "rate_limit");
        eb_jw_double(w, g->rate_limit);
    }
    if (g->filter) { /* checked as JSON by eb_groups_put */
        eb_jw_key(w, "filter");
        eb_jw_raw(w, g->filter, strlen(g->filter));
    }
    write_push(w, g);
    eb_jw_obj_close(w);
}

/* --- reading groups ------------------------------------------------------------ */

static bool read_consumers(void *res, const eb_json *o, eb_groups_info *g)
{
    const eb_json *arr = eb_json_get(o, "consumers");
    size_t n = eb__arr_len(o, "consumers"), i = 0;
    eb_groups_consumer **v = eb__result_alloc(res, n * sizeof *v);
    if (!v)
        return false;
    for (const eb_json *e = n ? arr->child : NULL; e; e = e->next) {
        eb_groups_consumer *x = eb__result_alloc(res, sizeof *x);
        if (!x)
            return false;
        x->name = eb__str(e, "name");
        x->last_pull = eb__str(e, "last_pull");
        x->in_flight = eb__u64_of(e, "in_flight");
        if (x->name)
            v[i++] = x;
    }
    g->nconsumers = i;
    g->consumers = (const eb_groups_consumer *const *)v;
    return true;
}

/* The detail members of GET /v1/groups/{group} (and of stats). */
static bool read_detail(void *res, const eb_json *o, eb_groups_info *g)
{
    const eb_json *pos = eb_json_get(o, "position"), *cnt = eb_json_get(o, "counters");
    if (!pos)
        return true;
    g->has_detail = true;
    g->cursor = eb__u64_of(pos, "cursor");
    g->head = eb__u64_of(pos, "head");
    g->blocked_by_key = eb__u64_of(o, "blocked_by_key");
    g->oldest_unacked_age_ms = eb__u64_of(o, "oldest_unacked_age_ms");
    g->counters.delivered = eb__u64_of(cnt, "delivered");
    g->counters.acked = eb__u64_of(cnt, "acked");
    g->counters.nacked = eb__u64_of(cnt, "nacked");
    g->counters.expired = eb__u64_of(cnt, "expired");
    g->counters.redelivered = eb__u64_of(cnt, "redelivered");
    g->counters.dead_lettered = eb__u64_of(cnt, "dead_lettered");
    g->counters.redriven = eb__u64_of(cnt, "redriven");
    g->counters.replayed = eb__u64_of(cnt, "replayed");
    g->counters.purged = eb__u64_of(cnt, "purged");
    g->counters.retention_skipped = eb__u64_of(cnt, "retention_skipped");
    g->throttled = eb__u64_of(cnt, "throttled");
    return read_consumers(res, o, g);
}

/* v as compact JSON text, owned by the result. */
static const char *json_text(void *res, const eb_json *v)
{
    eb_buf b = EB_BUF_INIT;
    eb_jw w;
    eb_jw_init(&w, &b);
    eb_jw_value(&w, v);
    char *s = eb_buf_failed(&b) ? NULL : eb__result_alloc(res, b.len + 1);
    if (s) {
        memcpy(s, b.data, b.len);
        s[b.len] = '\0';
    }
    eb_buf_free(&b);
    return s;
}

/* The "config" member, when there is one. */
static bool read_config(void *res, const eb_json *cfg, eb_groups_info *g)
{
    if (!eb_json_is(cfg, EB_JSON_OBJECT))
        return true;
    const eb_json *bo = eb_json_get(cfg, "backoff");
    g->has_config = true;
    g->start = eb__str(cfg, "start");
    g->ordering = eb__str(cfg, "ordering");
    g->max_attempts = (uint32_t)eb__u64_of(cfg, "max_attempts");
    g->ack_timeout_ms = (uint32_t)eb__u64_of(cfg, "ack_timeout_ms");
    g->backoff_initial_ms = (uint32_t)eb__u64_of(bo, "initial_ms");
    g->backoff_max_ms = (uint32_t)eb__u64_of(bo, "max_ms");
    g->backoff_multiplier = eb_json_num(eb_json_get(bo, "multiplier"));
    g->backoff_jitter = eb_json_num(eb_json_get(bo, "jitter"));
    g->max_in_flight = (uint32_t)eb__u64_of(cfg, "max_in_flight");
    g->rate_limit = eb_json_num(eb_json_get(cfg, "rate_limit"));
    const eb_json *flt = eb_json_get(cfg, "filter");
    if (flt && !(g->filter = json_text(res, flt)))
        return false;
    const eb_json *push = eb_json_get(cfg, "push");
    if (eb_json_is(push, EB_JSON_OBJECT)) {
        g->has_push = true;
        g->push_url = eb__str(push, "url");
        g->push_secret = eb__str(push, "secret");
        g->push_timeout_ms = (uint32_t)eb__u64_of(push, "timeout_ms");
        g->push_max_in_flight = (uint32_t)eb__u64_of(push, "max_in_flight");
        g->push_batch = (uint32_t)eb__u64_of(push, "batch");
        g->push_format = eb__str(push, "format");
    }
    return read_strs(res, cfg, "types", &g->types, &g->ntypes);
}

/* The "push" state member of a pushed group's view. */
static void read_push_state(const eb_json *o, eb_groups_info *g)
{
    const eb_json *st = eb_json_get(o, "push");
    if (!eb_json_is(st, EB_JSON_OBJECT))
        return;
    g->push_circuit = eb__str(st, "circuit");
    g->push_failures = (uint32_t)eb__u64_of(st, "consecutive_failures");
    g->push_in_flight = eb__u64_of(st, "in_flight");
}

int eb__group_info(eb_client *c, void *res, const eb_json *o, eb_groups_info *g)
{
    g->name = eb__str(o, "name");
    if (!g->name)
        g->name = eb__str(o, "group"); /* the answer of a PUT */
    if (!g->name)
        return eb__bad_answer(c, "a group without its name");
    eb__get_bool(o, "paused", &g->paused);
    g->lag = eb__u64_of(o, "lag");
    eb__get_bool(o, "lag_counting", &g->lag_counting);
    g->delayed = eb__u64_of(o, "delayed");
    g->in_flight = eb__u64_of(o, "in_flight");
    g->retry_scheduled = eb__u64_of(o, "retry_scheduled");
    g->dead_letters = eb__u64_of(o, "dead_letters");
    g->ready = eb__u64_of(o, "ready");
    read_push_state(o, g);
    if (!read_detail(res, o, g) || !read_config(res, eb_json_get(o, "config"), g))
        return eb__fail(c, EB_ENOMEM, "out of memory");
    return 0;
}

/* A result holding one group read from root. */
static int one_group(eb_client *c, const eb_json *root, eb_groups_info **out)
{
    eb_groups_info *g = eb__result_new(c, sizeof *g);
    if (!g)
        return eb__no_memory(c, NULL);
    int rc = eb__group_info(c, g, root, g);
    if (rc) {
        eb_result_free(g);
        return rc;
    }
    *out = g;
    return 0;
}

/* A list of the groups of root[key] (GET /v1/groups, stats) into *ng, *out. */
int eb__group_array(eb_client *c, void *res, const eb_json *arr, size_t *ng,
                    const eb_groups_info *const **out)
{
    eb_groups_info **v = eb__result_alloc(res, arr->len * sizeof *v);
    if (!v)
        return eb__fail(c, EB_ENOMEM, "out of memory");
    size_t i = 0;
    for (const eb_json *e = arr->child; e; e = e->next) {
        eb_groups_info *g = eb__result_alloc(res, sizeof *g);
        int rc = g ? eb__group_info(c, res, e, g) : eb__fail(c, EB_ENOMEM, "out of memory");
        if (rc)
            return rc;
        v[i++] = g;
    }
    *ng = i;
    *out = (const eb_groups_info *const *)v;
    return 0;
}

int eb_groups_put(eb_client *c, const char *group, const eb_groups_config *cfg, bool *created,
                  eb_groups_info **out)
{
    if (out)
        *out = NULL;
    eb_groups_config g;
    int rc = EB__OPTS_IN(c, eb_groups_config, ordering, cfg, &g);
    if (rc)
        return rc;
    if (!cfg || !g.ntypes || !g.types)
        return eb__fail(c, EB_EINVAL, "a group needs at least one event type");
    char why[96];
    if (g.filter && eb_json_check(g.filter, strlen(g.filter), NULL, NULL, why, sizeof why))
        return eb__fail(c, EB_EINVAL, "the filter is not JSON: %s", why);
    rc = eb__group_path(c, group, "");
    const eb_json *root;
    if (rc)
        return rc;
    eb_jw w;
    write_config(eb__body(c, &w), &g);
    if ((rc = eb__call(c, "PUT", true, 0, &root)))
        return rc;
    rc = read_flag(c, root, "created", created);
    return rc || !out ? rc : one_group(c, root, out);
}

int eb_groups_patch(eb_client *c, const char *group, const eb_groups_config *changes,
                    eb_groups_info **out)
{
    if (out)
        *out = NULL;
    eb_groups_config g;
    int rc = EB__OPTS_IN(c, eb_groups_config, ordering, changes, &g);
    if (rc)
        return rc;
    if (!changes)
        return eb__fail(c, EB_EINVAL, "no change given");
    if (g.start)
        return eb__fail(c, EB_EINVAL, "start only applies when a group is created");
    if ((rc = eb__group_path(c, group, "")))
        return rc;
    const eb_json *root;
    eb_jw w;
    write_config(eb__body(c, &w), &g);
    if ((rc = eb__call(c, "PATCH", true, 0, &root)))
        return rc;
    return out ? one_group(c, root, out) : 0;
}

int eb_groups_delete(eb_client *c, const char *group)
{
    int rc = eb__group_path(c, group, "");
    return rc ? rc : eb__call(c, "DELETE", false, 0, NULL);
}

static int set_paused(eb_client *c, const char *group, bool pause)
{
    int rc = eb__group_path(c, group, pause ? "/pause" : "/resume");
    if (rc)
        return rc;
    eb_buf_reset(&c->body);
    eb_buf_puts(&c->body, "{}");
    return eb__call(c, "POST", true, 0, NULL);
}

int eb_groups_pause(eb_client *c, const char *group)
{
    return set_paused(c, group, true);
}

int eb_groups_resume(eb_client *c, const char *group)
{
    return set_paused(c, group, false);
}

int eb_groups_list(eb_client *c, eb_groups_all **out)
{
    if (out)
        *out = NULL;
    const eb_json *arr;
    int rc = eb__get_list(c, "/v1/groups", "groups", &arr);
    if (rc || !out)
        return rc;
    eb_groups_all *l = eb__result_new(c, sizeof *l);
    if (!l)
        return eb__no_memory(c, NULL);
    if ((rc = eb__group_array(c, l, arr, &l->n, &l->groups))) {
        eb_result_free(l);
        return rc;
    }
    *out = l;
    return 0;
}

int eb_groups_get(eb_client *c, const char *group, eb_groups_info **out)
{
    if (out)
        *out = NULL;
    int rc = eb__group_path(c, group, "");
    const eb_json *root;
    if (rc || (rc = eb__call(c, "GET", false, 0, &root)))
        return rc;
    if (!eb_json_is(eb_json_get(root, "lag"), EB_JSON_NUMBER) ||
        !eb_json_is_bool(eb_json_get(root, "paused")))
        return eb__bad_answer(c, "no \"paused\" or \"lag\" in the group");
    return out ? one_group(c, root, out) : 0;
}

/* --- dead letters ------------------------------------------------------------ */

int eb_dlq_list(eb_client *c, const char *group, uint32_t limit, const char *after,
                eb_events **out)
{
    *out = NULL;
    int rc = eb__group_path(c, group, "/dlq");
    const eb_json *root;
    if (rc)
        return rc;
    if (limit) {
        char num[16];
        snprintf(num, sizeof num, "%u", limit);
        eb__path_query(c, "limit", num);
    }
    if (after)
        eb__path_query(c, "after", after);
    if ((rc = eb__call(c, "GET", false, 0, &root)))
        return rc;
    return eb__events_from(c, root, "dead_letters", "next", EB__EVENTS_DLQ, out);
}

/* Reads the count member `key` of the answer into *out (may be NULL). */
static int read_count(eb_client *c, const eb_json *root, const char *key, uint64_t *out)
{
    uint64_t v;
    if (!eb__get_u64(root, key, &v)) {
        char what[64];
        snprintf(what, sizeof what, "no \"%s\" count", key);
        return eb__bad_answer(c, what);
    }
    if (out)
        *out = v;
    return 0;
}

int eb_dlq_redrive(eb_client *c, const char *group, const char *const *event_ids, size_t n,
                   uint64_t *redriven)
{
    eb_jw w;
    const eb_json *root;
    int rc = eb__group_body(c, group, "/dlq/redrive", &w);
    if (rc)
        return rc;
    if (n)
        eb__write_strs(&w, "ids", event_ids, n);
    eb_jw_obj_close(&w);
    rc = eb__call(c, "POST", true, 0, &root);
    return rc ? rc : read_count(c, root, "redriven", redriven);
}

int eb_dlq_purge(eb_client *c, const char *group, const char *event_id, uint64_t *purged)
{
    int rc = eb__group_path(c, group, "/dlq");
    const eb_json *root;
    if (rc)
        return rc;
    if (event_id)
        eb__path_query(c, "id", event_id);
    rc = eb__call(c, "DELETE", false, 0, &root);
    return rc ? rc : read_count(c, root, "purged", purged);
}

/* --- replay ---------------------------------------------------------------- */

/* "since"/"until": a time or duration string, or {"seq":N}. */
static void write_when(eb_jw *w, const char *key, const char *s, uint64_t seq)
{
    if (!s && !seq)
        return;
    eb_jw_key(w, key);
    if (s) {
        eb_jw_str(w, s);
        return;
    }
    eb_jw_obj_open(w);
    eb_jw_key(w, "seq");
    eb_jw_uint(w, seq);
    eb_jw_obj_close(w);
}

int eb_replay(eb_client *c, const char *group, const eb_replay_opts *opts, uint64_t *requeued,
              uint64_t *expired)
{
    eb_replay_opts q, *o = &q;
    int rc = EB__OPTS_IN(c, eb_replay_opts, ntypes, opts, &q);
    if (rc)
        return rc;
    if (!o->since && !o->since_seq)
        return eb__fail(c, EB_EINVAL, "a replay needs a start (since or since_seq)");
    eb_jw w;
    const eb_json *root;
    rc = eb__group_body(c, group, "/replay", &w);
    if (rc)
        return rc;
    write_when(&w, "since", o->since, o->since_seq);
    write_when(&w, "until", o->until, o->until_seq);
    if (o->ntypes)
        eb__write_strs(&w, "types", o->types, o->ntypes);
    if (o->dry_run) {
        eb_jw_key(&w, "dry_run");
        eb_jw_bool(&w, true);
    }
    eb_jw_obj_close(&w);
    if ((rc = eb__call(c, "POST", true, 0, &root)) ||
        (rc = read_count(c, root, "requeued", requeued)))
        return rc;
    uint64_t ex = 0;
    eb__get_u64(root, "expired", &ex);
    if (expired)
        *expired = ex;
    return 0;
}
