/* history.c - eb_groups_history: a group's recent samples
 * (GET /v1/groups/{group}/history) as a typed result. */
#include "client.h"

int eb_groups_history(eb_client *c, const char *group, eb_groups_samples **out)
{
    *out = NULL;
    int rc = eb__group_path(c, group, "/history");
    const eb_json *root;
    if (rc || (rc = eb__call(c, "GET", false, 0, &root)))
        return rc;
    const eb_json *arr = eb_json_get(root, "samples");
    uint64_t interval;
    if (!eb_json_is(arr, EB_JSON_ARRAY) || !eb__get_u64(root, "interval_ms", &interval) ||
        interval > UINT32_MAX)
        return eb__bad_answer(c, "no \"samples\" or \"interval_ms\" in the history");
    eb_groups_samples *h = eb__result_new(c, sizeof *h);
    eb_groups_sample **v = h ? eb__result_alloc(h, arr->len * sizeof *v) : NULL;
    if (!v) {
        eb_result_free(h);
        return eb__fail(c, EB_ENOMEM, "out of memory");
    }
    h->interval_ms = (uint32_t)interval;
    for (const eb_json *e = arr->child; e; e = e->next) {
        eb_groups_sample *s = eb__result_alloc(h, sizeof *s);
        if (!s) {
            eb_result_free(h);
            return eb__fail(c, EB_ENOMEM, "out of memory");
        }
        s->ts = eb__str(e, "ts");
        if (!s->ts || !eb__get_u64(e, "lag", &s->lag) ||
            !eb__get_u64(e, "delivered", &s->delivered) || !eb__get_u64(e, "acked", &s->acked) ||
            !eb__get_u64(e, "nacked", &s->nacked) ||
            !eb__get_u64(e, "dead_lettered", &s->dead_lettered) ||
            !eb__get_u64(e, "dead_letters", &s->dead_letters) ||
            !eb__get_u64(e, "oldest_unacked_ms", &s->oldest_unacked_ms)) {
            eb_result_free(h);
            return eb__bad_answer(c, "a history sample lacks a field");
        }
        v[h->n++] = s;
    }
    h->samples = (const eb_groups_sample *const *)v;
    *out = h;
    return 0;
}
