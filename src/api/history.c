/* history.c - GET /v1/groups/{group}/history: the bus's ring of per-group
 * samples (bus.h, eb_bus_group_history) rendered as JSON for the
 * dashboard's charts and `eventbus groups history`. */
#include <string.h>

#include "api/api.h"
#include "eventbus/err.h"

static void write_sample(void *arg, const eb_group_sample *s)
{
    eb_jw *w = arg;
    char t[40];
    eb_time_format(s->ts_us, t);
    eb_jw_obj_open(w);
    eb_jw_key(w, "ts");
    eb_jw_str(w, t);
    EB_API_UINTS(w, {"lag", s->lag}, {"delivered", s->delivered}, {"acked", s->acked},
                 {"nacked", s->nacked}, {"dead_lettered", s->dead_lettered},
                 {"dead_letters", s->dead_letters}, {"oldest_unacked_ms", s->oldest_unacked_ms});
    eb_jw_obj_close(w);
}

void eb__api_group_history(eb_api *api, eb_http_req *req, const eb_api_params *p)
{
    if (!eb__api_find_group(api, req, p))
        return;
    eb_jw w;
    eb__api_begin(api, &w);
    eb_jw_obj_open(&w);
    eb_jw_key(&w, "group");
    eb_jw_strn(&w, p->v[0].ptr, p->v[0].len);
    /* interval_ms is known only inside the call: written after the samples */
    eb_jw_key(&w, "samples");
    eb_jw_arr_open(&w);
    uint32_t interval = 0;
    if (eb_bus_group_history(api->bus, p->v[0].ptr, p->v[0].len, &interval, write_sample,
                             &w) != 0) {
        eb__api_error(req, 404, "not_found", "no such consumer group", NULL);
        return;
    }
    eb_jw_arr_close(&w);
    EB_API_UINTS(&w, {"interval_ms", interval}, {"capacity", EB_HISTORY_SAMPLES});
    eb_jw_obj_close(&w);
    eb__api_reply(api, req, 200);
}
