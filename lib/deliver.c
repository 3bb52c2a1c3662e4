/* deliver.c - libeventbus: pulling events of a consumer group and settling
 * them (ack, nack, extend). */
#include <stdio.h>
#include <string.h>

#include "client.h"
#include "events.h"

int eb_pull(eb_client *c, const char *group, const char *consumer, uint32_t max,
            uint32_t wait_ms, eb_events **out)
{
    *out = NULL;
    if (!consumer || !*consumer)
        return eb__fail(c, EB_EINVAL, "a consumer name is required");
    eb_jw w;
    const eb_json *root;
    int rc = eb__group_body(c, group, "/pull", &w);
    if (rc)
        return rc;
    eb_jw_key(&w, "consumer");
    eb_jw_str(&w, consumer);
    if (max) {
        eb_jw_key(&w, "max");
        eb_jw_uint(&w, max);
    }
    eb_jw_key(&w, "wait_ms");
    eb_jw_uint(&w, wait_ms);
    eb_jw_obj_close(&w);
    if ((rc = eb__call(c, "POST", true, wait_ms, &root)))
        return rc;
    return eb__events_from(c, root, "events", NULL, EB__EVENTS_PULL, out);
}

/* POST /v1/groups/{g}/{op} with the ids and what `extra` adds; reads the
 * count member `done_key` and the "unknown" list. */
typedef struct settle {
    const char *op;       /* "/ack", "/nack", "/extend" */
    const char *done_key; /* "acked", "nacked", "extended" */
    const char *error;    /* nack: the message */
    int64_t     delay_ms; /* nack: >= 0 to send */
    uint32_t    ms;       /* extend: > 0 to send */
    bool        dead_letter; /* nack: non-retryable */
} settle;

static int do_settle(eb_client *c, const char *group, const char *const *ids, size_t n,
                     const settle *s, eb_settle_result *res)
{
    int rc = EB__OUT_CHECK(c, eb_settle_result, unknown, res);
    if (rc)
        return rc;
    eb_settle_result r = {.size = sizeof r};
    eb__out_put(res, &r, sizeof r);
    if (n == 0) {
        eb__ok(c);
        return 0;
    }
    eb_jw w;
    const eb_json *root;
    rc = eb__group_body(c, group, s->op, &w);
    if (rc)
        return rc;
    eb__write_strs(&w, "ids", ids, n);
    if (s->error) {
        eb_jw_key(&w, "error");
        eb_jw_str(&w, s->error);
    }
    if (s->delay_ms >= 0) {
        eb_jw_key(&w, "delay_ms");
        eb_jw_int(&w, s->delay_ms);
    }
    if (s->ms) {
        eb_jw_key(&w, "ms");
        eb_jw_uint(&w, s->ms);
    }
    if (s->dead_letter) {
        eb_jw_key(&w, "dead_letter");
        eb_jw_bool(&w, true);
    }
    eb_jw_obj_close(&w);
    if ((rc = eb__call(c, "POST", true, 0, &root)))
        return rc;
    uint64_t done;
    const eb_json *unknown = eb_json_get(root, "unknown");
    if (!eb__get_u64(root, s->done_key, &done) || !eb_json_is(unknown, EB_JSON_ARRAY)) {
        char what[64];
        snprintf(what, sizeof what, "no \"%s\" count or \"unknown\" list", s->done_key);
        return eb__bad_answer(c, what);
    }
    r.done = (uint32_t)done;
    r.unknown = unknown->len;
    eb__out_put(res, &r, sizeof r);
    return 0;
}

int eb_ack(eb_client *c, const char *group, const char *const *ids, size_t n,
           eb_settle_result *res)
{
    settle s = {"/ack", "acked", NULL, -1, 0};
    return do_settle(c, group, ids, n, &s, res);
}

int eb_nack(eb_client *c, const char *group, const char *const *ids, size_t n,
            const char *error, int64_t delay_ms, eb_settle_result *res)
{
    settle s = {"/nack", "nacked", error, delay_ms, 0};
    return do_settle(c, group, ids, n, &s, res);
}

int eb_nack_dead_letter(eb_client *c, const char *group, const char *const *ids, size_t n,
                        const char *error, eb_settle_result *res)
{
    settle s = {"/nack", "nacked", error, -1, 0, true};
    return do_settle(c, group, ids, n, &s, res);
}

int eb_extend(eb_client *c, const char *group, const char *const *ids, size_t n, uint32_t ms,
              eb_settle_result *res)
{
    settle s = {"/extend", "extended", NULL, -1, ms};
    return do_settle(c, group, ids, n, &s, res);
}
