/* overview.c - GET /v1/overview: what the dashboard's overview polls, kept
 * cheap at thousands of groups: the log's figures, totals over every group,
 * and one page of groups (sorted by name, optionally filtered by a name
 * substring) with the health columns the table shows (a pushed group's
 * circuit among them). Rendered from the
 * bus's plain results (eb_bus_stats_get, eb_bus_groups_each). */
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "eventbus/err.h"
#include "util/xmalloc.h"

typedef struct row {
    char       *name;
    const char *circuit; /* pushed groups: the endpoint's circuit (static); NULL */
    bool        paused;
    uint64_t lag, in_flight, dead_letters, oldest_age_ms, consumers;
} row;

typedef struct gather {
    eb_bus  *bus;
    eb_str   q;            /* name filter ("" = all) */
    uint64_t now;
    row     *v;
    size_t   n, cap;
    uint64_t groups, paused, lag, dead_letters, delivered, acked;
} gather;

static void count_consumer(void *arg, const eb_consumer_info *c)
{
    (void)c;
    ++*(uint64_t *)arg;
}

static void gather_one(void *arg, const eb_group_info *in)
{
    gather *g = arg;
    g->groups++;
    g->paused += in->paused;
    g->lag += in->lag;
    g->dead_letters += in->dead_letters;
    g->delivered += in->counters.delivered;
    g->acked += in->counters.acked;
    size_t nl = strlen(in->name);
    if (g->q.len && !memmem(in->name, nl, g->q.ptr, g->q.len))
        return;
    if (g->n == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 64;
        g->v = eb_xrealloc(g->v, cap * sizeof *g->v);
        g->cap = cap;
    }
    row *r = &g->v[g->n];
    r->name = eb_xstrdup(in->name);
    r->paused = in->paused;
    r->circuit = eb__api_push_circuit(g->bus, in);
    r->lag = in->lag;
    r->in_flight = in->in_flight;
    r->dead_letters = in->dead_letters;
    r->oldest_age_ms = in->oldest_unacked_us && g->now > in->oldest_unacked_us
                           ? (g->now - in->oldest_unacked_us) / 1000u
                           : 0;
    r->consumers = 0;
    eb_bus_group_consumers(g->bus, in->name, nl, count_consumer, &r->consumers);
    g->n++;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const row *)a)->name, ((const row *)b)->name);
}

static void write_row(eb_jw *w, const row *r)
{
    eb_jw_obj_open(w);
    eb_jw_key(w, "name");
    eb_jw_str(w, r->name);
    eb_jw_key(w, "paused");
    eb_jw_bool(w, r->paused);
    EB_API_UINTS(w, {"lag", r->lag}, {"in_flight", r->in_flight},
                 {"dead_letters", r->dead_letters}, {"oldest_unacked_age_ms", r->oldest_age_ms},
                 {"consumers", r->consumers});
    if (r->circuit) {
        eb_jw_key(w, "circuit");
        eb_jw_str(w, r->circuit);
    }
    eb_jw_obj_close(w);
}

static void write_answer(eb_api *api, const gather *g, uint64_t offset, uint64_t limit)
{
    eb_jw w;
    eb__api_begin(api, &w);
    eb_bus_stats st;
    eb_bus_stats_get(api->bus, &st);
    eb_jw_obj_open(&w);
    eb_jw_key(&w, "totals");
    eb_jw_obj_open(&w);
    EB_API_UINTS(&w, {"groups", g->groups}, {"matching", g->n}, {"paused", g->paused},
                 {"lag", g->lag}, {"dead_letters", g->dead_letters},
                 {"delivered", g->delivered}, {"acked", g->acked});
    eb_jw_obj_close(&w);
    eb_jw_key(&w, "events");
    eb_jw_obj_open(&w);
    EB_API_UINTS(&w, {"published", st.published}, {"first_seq", st.first_seq},
                 {"head_seq", st.head_seq}, {"bytes", st.bytes});
    eb_jw_obj_close(&w);
    EB_API_UINTS(&w, {"offset", offset});
    eb_jw_key(&w, "groups");
    eb_jw_arr_open(&w);
    for (uint64_t i = offset; i < g->n && i < offset + limit; i++)
        write_row(&w, &g->v[i]);
    eb_jw_arr_close(&w);
    eb_jw_obj_close(&w);
}

void eb__api_overview(eb_api *api, eb_http_req *req, const eb_api_params *p)
{
    (void)p;
    uint64_t limit = 100, offset = 0;
    if (!eb__api_query_u64(req, "limit", 1, 1000, &limit) ||
        !eb__api_query_u64(req, "offset", 0, UINT32_MAX, &offset))
        return;
    char name[EB_GROUP_MAX_NAME + 1] = "";
    bool bad = false;
    eb_str q = eb__api_query(req, "q", name, sizeof name, &bad); /* a part of a group name */
    if (bad)
        return;
    gather g = {.bus = api->bus, .q = {name, q.ptr ? q.len : 0}, .now = eb__api_now_us()};
    eb_bus_groups_each(api->bus, gather_one, &g);
    qsort(g.v, g.n, sizeof *g.v, by_name);
    write_answer(api, &g, offset, limit);
    for (size_t i = 0; i < g.n; i++)
        free(g.v[i].name);
    free(g.v);
    eb__api_reply(api, req, 200);
}
