/* admin.c - libeventbus: the schema registry, consumer-group management,
 * dead letters, replay and stats. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "events.h"

/* Copies the last answer for the caller (answer may be NULL: nothing). */
static int copy_answer(eb_client *c, char **answer)
{
    if (!answer)
        return 0;
    *answer = strndup(c->answer.data ? c->answer.data : "", c->answer.len);
    return *answer ? 0 : eb__fail(c, EB_ENOMEM, "out of memory");
}

/* Sends the request built in c and hands the answer text to the caller. */
static int call_text(eb_client *c, const char *method, bool has_body, char **answer)
{
    if (answer)
        *answer = NULL;
    int rc = eb__call(c, method, has_body, 0, NULL);
    return rc ? rc : copy_answer(c, answer);
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

static int need(eb_client *c, const char *v, const char *what)
{
    return v && *v ? 0 : eb__fail(c, EB_EINVAL, "%s is required", what);
}

/* --- schema registry ------------------------------------------------------ */

static int schema_body(eb_client *c, const char *type, const char *schema, const char *compat)
{
    int rc = need(c, type, "an event type");
    if (rc || (rc = need(c, schema, "a schema")) ||
        (rc = eb__check_json(c, "schema", schema, strlen(schema))))
        return rc;
    eb_jw w;
    eb__body(c, &w);
    eb_jw_obj_open(&w);
    eb_jw_key(&w, "schema");
    eb_jw_raw(&w, schema, strlen(schema));
    if (compat) {
        eb_jw_key(&w, "compatibility");
        eb_jw_str(&w, compat);
    }
    eb_jw_obj_close(&w);
    eb__path(c, "/v1/schemas/");
    eb__path_seg(c, type);
    return 0;
}

int eb_schemas_register(eb_client *c, const char *type, const char *schema, const char *compat,
                        eb_schemas_result *res)
{
    int rc = schema_body(c, type, schema, compat);
    const eb_json *root;
    if (rc || (rc = eb__call(c, "PUT", true, 0, &root)))
        return rc;
    eb_schemas_result tmp, *r = res ? res : &tmp;
    memset(r, 0, sizeof *r);
    uint64_t v = 0;
    const eb_json *ex = eb_json_get(root, "existing");
    r->existing = ex && ex->type == EB_JSON_TRUE;
    if (!eb__get_u64(root, "version", &v) ||
        !eb__get_str(root, "compatibility", r->compatibility, sizeof r->compatibility))
        return eb__bad_answer(c, "no version or compatibility");
    r->version = (uint32_t)v;
    return 0;
}

int eb_schemas_check(eb_client *c, const char *type, const char *schema, const char *compat,
                     bool *compatible, char **answer)
{
    if (answer)
        *answer = NULL;
    int rc = schema_body(c, type, schema, compat);
    const eb_json *root;
    if (rc)
        return rc;
    eb__path_lit(c, "/check");
    if ((rc = eb__call(c, "POST", true, 0, &root)))
        return rc;
    rc = read_flag(c, root, "compatible", compatible);
    return rc ? rc : copy_answer(c, answer);
}

int eb_schemas_list(eb_client *c, char **answer)
{
    eb__path(c, "/v1/schemas");
    return call_text(c, "GET", false, answer);
}

int eb_schemas_get(eb_client *c, const char *type, uint32_t version, char **answer)
{
    if (answer)
        *answer = NULL;
    int rc = need(c, type, "an event type");
    if (rc)
        return rc;
    eb__path(c, "/v1/schemas/");
    eb__path_seg(c, type);
    if (version) {
        char num[16];
        snprintf(num, sizeof num, "%u", version);
        eb__path_lit(c, "/versions/");
        eb__path_seg(c, num);
    }
    return call_text(c, "GET", false, answer);
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

static void write_config(eb_jw *w, const eb_groups_config *g)
{
    eb_jw_obj_open(w);
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
    eb_jw_obj_close(w);
}

int eb_groups_put(eb_client *c, const char *group, const eb_groups_config *cfg, bool *created,
                  char **answer)
{
    if (answer)
        *answer = NULL;
    if (!cfg || !cfg->ntypes || !cfg->types)
        return eb__fail(c, EB_EINVAL, "a group needs at least one event type");
    int rc = eb__group_path(c, group, "");
    const eb_json *root;
    if (rc)
        return rc;
    eb_jw w;
    write_config(eb__body(c, &w), cfg);
    if ((rc = eb__call(c, "PUT", true, 0, &root)))
        return rc;
    rc = read_flag(c, root, "created", created);
    return rc ? rc : copy_answer(c, answer);
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

int eb_groups_list(eb_client *c, char **answer)
{
    eb__path(c, "/v1/groups");
    return call_text(c, "GET", false, answer);
}

int eb_groups_get(eb_client *c, const char *group, char **answer)
{
    if (answer)
        *answer = NULL;
    int rc = eb__group_path(c, group, "");
    return rc ? rc : call_text(c, "GET", false, answer);
}

int eb_groups_state_get(eb_client *c, const char *group, eb_groups_state *st)
{
    int rc = eb__group_path(c, group, "");
    const eb_json *root;
    if (rc || (rc = eb__call(c, "GET", false, 0, &root)))
        return rc;
    memset(st, 0, sizeof *st);
    const eb_json *pos = eb_json_get(root, "position");
    uint64_t ack = 0;
    eb__get_u64(pos, "cursor", &st->cursor);
    eb__get_u64(pos, "head", &st->head);
    eb__get_u64(root, "in_flight", &st->in_flight);
    eb__get_u64(root, "retry_scheduled", &st->retry_scheduled);
    eb__get_u64(root, "dead_letters", &st->dead_letters);
    if (eb__get_u64(eb_json_get(root, "config"), "ack_timeout_ms", &ack))
        st->ack_timeout_ms = (uint32_t)ack;
    if (!eb__get_bool(root, "paused", &st->paused) || !eb__get_u64(root, "lag", &st->lag))
        return eb__bad_answer(c, "no \"paused\" or \"lag\" in the group");
    return 0;
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

/* --- replay and stats ------------------------------------------------------ */

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

int eb_replay(eb_client *c, const char *group, const eb_replay_opts *o, uint64_t *requeued,
              uint64_t *expired)
{
    if (!o || (!o->since && !o->since_seq))
        return eb__fail(c, EB_EINVAL, "a replay needs a start (since or since_seq)");
    eb_jw w;
    const eb_json *root;
    int rc = eb__group_body(c, group, "/replay", &w);
    if (rc)
        return rc;
    write_when(&w, "since", o->since, o->since_seq);
    write_when(&w, "until", o->until, o->until_seq);
    if (o->ntypes)
        eb__write_strs(&w, "types", o->types, o->ntypes);
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

int eb_stats(eb_client *c, char **answer)
{
    eb__path(c, "/v1/stats");
    return call_text(c, "GET", false, answer);
}
