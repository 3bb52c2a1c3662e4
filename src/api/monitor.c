/* monitor.c - rendering of the bus's figures: the group views of
 * GET /v1/groups[/{group}], GET /v1/stats (JSON) and GET /metrics
 * (Prometheus text format 0.0.4). The bus hands plain structs
 * (eb_group_info, eb_bus_stats); all output is made here. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "eventbus/err.h"
#include "util/xmalloc.h"

/* --- JSON ------------------------------------------------------------------------ */

static void write_consumer(void *arg, const eb_consumer_info *c)
{
    eb_jw *w = arg;
    char t[40];
    eb_time_format(c->last_pull_us, t);
    eb_jw_obj_open(w);
    eb_jw_key(w, "name");
    eb_jw_str(w, c->name);
    eb_jw_key(w, "last_pull");
    eb_jw_str(w, t);
    eb_jw_key(w, "in_flight");
    eb_jw_uint(w, c->in_flight);
    eb_jw_obj_close(w);
}

static uint64_t age_us(uint64_t since_us, uint64_t now)
{
    return since_us && now > since_us ? now - since_us : 0;
}

static void write_counters(eb_jw *w, const eb_group_counters *c)
{
    const struct { const char *k; uint64_t v; } kv[] = {
        {"delivered", c->delivered},   {"acked", c->acked},
        {"nacked", c->nacked},         {"expired", c->expired},
        {"redelivered", c->redelivered}, {"dead_lettered", c->dead_lettered},
        {"redriven", c->redriven},     {"replayed", c->replayed},
        {"purged", c->purged},         {"retention_skipped", c->retention_skipped},
        {"throttled", c->throttled}};
    eb_jw_obj_open(w);
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++) {
        eb_jw_key(w, kv[i].k);
        eb_jw_uint(w, kv[i].v);
    }
    eb_jw_obj_close(w);
}

/* A group's summary fields as JSON members (into an open object). */
static void write_summary(eb_bus *bus, eb_jw *w, const eb_group_info *in, bool detail)
{
    eb_jw_key(w, "name");
    eb_jw_str(w, in->name);
    if (detail) {
        eb_jw_key(w, "config");
        eb_group_cfg_write(w, in->cfg);
    }
    eb_jw_key(w, "paused");
    eb_jw_bool(w, in->paused);
    if (detail) {
        eb_jw_key(w, "position");
        eb_jw_obj_open(w);
        eb_jw_key(w, "cursor");
        eb_jw_uint(w, in->cursor);
        eb_jw_key(w, "head");
        eb_jw_uint(w, in->head);
        eb_jw_obj_close(w);
    }
    eb_jw_key(w, "lag");
    eb_jw_uint(w, in->lag);
    eb_jw_key(w, "lag_counting");
    eb_jw_bool(w, in->lag_counting);
    eb_jw_key(w, "delayed");
    eb_jw_uint(w, in->delayed);
    eb_jw_key(w, "in_flight");
    eb_jw_uint(w, in->in_flight);
    eb_jw_key(w, "retry_scheduled");
    eb_jw_uint(w, in->retry_scheduled);
    eb_jw_key(w, "dead_letters");
    eb_jw_uint(w, in->dead_letters);
    eb_jw_key(w, "ready");
    eb_jw_uint(w, in->ready);
    eb__api_write_push(bus, w, in, detail);
    if (!detail)
        return;
    eb_jw_key(w, "blocked_by_key");
    eb_jw_uint(w, in->blocked);
    eb_jw_key(w, "oldest_unacked_age_ms");
    eb_jw_uint(w, age_us(in->oldest_unacked_us, eb__api_now_us()) / 1000u);
    eb_jw_key(w, "consumers");
    eb_jw_arr_open(w);
    eb_bus_group_consumers(bus, in->name, strlen(in->name), write_consumer, w);
    eb_jw_arr_close(w);
    eb_jw_key(w, "counters");
    write_counters(w, &in->counters);
}

typedef struct each_ctx {
    eb_bus *bus;
    eb_jw  *w;
    bool    detail;
} each_ctx;

static void write_group_item(void *arg, const eb_group_info *in)
{
    each_ctx *c = arg;
    eb_jw_obj_open(c->w);
    write_summary(c->bus, c->w, in, c->detail);
    eb_jw_obj_close(c->w);
}

void eb__api_render_groups(eb_api *api)
{
    eb_jw w;
    eb_buf_reset(&api->out);
    eb_jw_init(&w, &api->out);
    eb_jw_obj_open(&w);
    eb_jw_key(&w, "groups");
    eb_jw_arr_open(&w);
    each_ctx c = {api->bus, &w, false};
    eb_bus_groups_each(api->bus, write_group_item, &c);
    eb_jw_arr_close(&w);
    eb_jw_obj_close(&w);
}

void eb__api_render_group(eb_api *api, const eb_group_info *in)
{
    eb_jw w;
    eb_buf_reset(&api->out);
    eb_jw_init(&w, &api->out);
    eb_jw_obj_open(&w);
    write_summary(api->bus, &w, in, true);
    eb_jw_obj_close(&w);
}

static void write_type_counts(void *arg, const char *type, const eb_bus_type_counts *c)
{
    eb_jw *w = arg;
    eb_jw_key(w, type);
    eb_jw_obj_open(w);
    eb_jw_key(w, "published");
    eb_jw_uint(w, c->log);
    eb_jw_key(w, "published_since_start");
    eb_jw_uint(w, c->since_start);
    eb_jw_obj_close(w);
}

void eb__api_stats(eb_api *api, eb_http_req *req, const eb_api_params *p)
{
    (void)p;
    eb_bus_stats st;
    eb_bus_stats_get(api->bus, &st);
    eb_jw w;
    eb_buf_reset(&api->out);
    eb_jw_init(&w, &api->out);
    eb_jw_obj_open(&w);
    eb_jw_key(&w, "events");
    eb_jw_obj_open(&w);
    eb_jw_key(&w, "published");
    eb_jw_uint(&w, st.published);
    eb_jw_key(&w, "published_since_start");
    eb_jw_uint(&w, st.published_since_start);
    eb_jw_key(&w, "duplicates_since_start");
    eb_jw_uint(&w, st.duplicates);
    eb_jw_key(&w, "schema_rejected_since_start");
    eb_jw_uint(&w, st.schema_rejected);
    eb_jw_key(&w, "first_seq");
    eb_jw_uint(&w, st.first_seq);
    eb_jw_key(&w, "head_seq");
    eb_jw_uint(&w, st.head_seq);
    eb_jw_key(&w, "bytes");
    eb_jw_uint(&w, st.bytes);
    eb_jw_key(&w, "segments");
    eb_jw_uint(&w, st.segments);
    eb_jw_key(&w, "publish_p50_ms");
    eb_jw_double(&w, (double)eb_hist_quantile(st.publish_hist, 0.5) / 1000.0);
    eb_jw_key(&w, "publish_p99_ms");
    eb_jw_double(&w, (double)eb_hist_quantile(st.publish_hist, 0.99) / 1000.0);
    eb_jw_key(&w, "lookup_reads");
    eb_jw_uint(&w, eb_bus_lookup_reads(api->bus));
    eb_jw_key(&w, "count_reads");
    eb_jw_uint(&w, eb_bus_count_reads(api->bus));
    eb_jw_key(&w, "lag_walk");
    eb_jw_obj_open(&w);
    EB_API_UINTS(&w, {"reads", st.lag_walk_reads}, {"turns", st.lag_walk_turns},
                 {"laps", st.lag_walk_laps}, {"groups_counting", st.lag_counting});
    eb_jw_obj_close(&w);
    eb_jw_key(&w, "index_ids_in_memory");
    eb_jw_uint(&w, st.ids_in_memory);
    eb_jw_key(&w, "delayed");
    eb_jw_obj_open(&w);
    eb_jw_key(&w, "waiting");
    eb_jw_uint(&w, st.delayed);
    eb_jw_key(&w, "released_since_start");
    eb_jw_uint(&w, st.delayed_released);
    eb_jw_key(&w, "expired_since_start");
    eb_jw_uint(&w, st.delayed_expired);
    if (st.delayed_next_us) {
        eb_time_write(&w, "next", st.delayed_next_us);
    } else {
        eb_jw_key(&w, "next");
        eb_jw_null(&w);
    }
    eb_jw_obj_close(&w);
    eb_jw_key(&w, "types");
    eb_jw_obj_open(&w);
    eb_bus_types_each(api->bus, write_type_counts, &w);
    eb_jw_obj_close(&w);
    eb_jw_obj_close(&w);
    eb_jw_key(&w, "groups");
    eb_jw_arr_open(&w);
    each_ctx c = {api->bus, &w, true};
    eb_bus_groups_each(api->bus, write_group_item, &c);
    eb_jw_arr_close(&w);
    eb_jw_obj_close(&w);
    eb__api_reply(api, req, 200);
}

/* --- Prometheus text ---------------------------------------------------------------- */

/* A label value, escaped as the text format requires: \ " and newline. */
void eb__api_prom_label(eb_buf *o, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\')
            eb_buf_puts(o, "\\\\");
        else if (*v == '"')
            eb_buf_puts(o, "\\\"");
        else if (*v == '\n')
            eb_buf_puts(o, "\\n");
        else
            eb_buf_putc(o, *v);
    }
}

void eb__api_prom_head(eb_buf *o, const char *name, const char *type, const char *help)
{
    eb_buf_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Deliveries and what became of them, split so that each family sums:
 * eventbus_deliveries_total (leases handed out) = the outcomes (acked,
 * nacked, expired) + what is in flight. The other group actions are
 * counters of their own. */
static const struct { const char *name, *help; } actions[] = {
    {"eventbus_deliveries_total", "Deliveries leased to consumers (redeliveries included)."},
    {"eventbus_delivery_outcomes_total", "How deliveries ended: acked, nacked or expired."},
    {"eventbus_redeliveries_total", "Deliveries of an event delivered before."},
    {"eventbus_dead_lettered_total", "Events moved to the dead-letter queue."},
    {"eventbus_redriven_total", "Dead letters put back for delivery."},
    {"eventbus_replayed_total", "Events requeued by replay."}};

/* Family k of actions[] for one group. */
static void prom_action(eb_buf *o, size_t k, const eb_group_info *in)
{
    const eb_group_counters *c = &in->counters;
    if (k == 1) {
        const struct { const char *o; uint64_t v; } oc[] = {
            {"acked", c->acked}, {"nacked", c->nacked}, {"expired", c->expired}};
        for (size_t i = 0; i < 3; i++) {
            eb_buf_puts(o, "eventbus_delivery_outcomes_total{group=\"");
            eb__api_prom_label(o, in->name);
            eb_buf_printf(o, "\",outcome=\"%s\"} %llu\n", oc[i].o, (unsigned long long)oc[i].v);
        }
        return;
    }
    uint64_t v = k == 0 ? c->delivered : k == 2 ? c->redelivered
               : k == 3 ? c->dead_lettered : k == 4 ? c->redriven : c->replayed;
    eb_buf_printf(o, "%s{group=\"", actions[k].name);
    eb__api_prom_label(o, in->name);
    eb_buf_printf(o, "\"} %llu\n", (unsigned long long)v);
}

static const struct { const char *name, *help; } gauges[] = {
    {"eventbus_group_lag", "Matching events not yet acknowledged."},
    {"eventbus_group_in_flight", "Deliveries leased to consumers."},
    {"eventbus_group_retry_scheduled", "Deliveries waiting for their retry time."},
    {"eventbus_dlq_depth", "Dead letters in the group's queue."},
    {"eventbus_group_oldest_unacked_seconds", "Age of the oldest unacknowledged event."},
    {"eventbus_group_paused", "1 when the group is paused."},
    {"eventbus_group_max_in_flight", "The group's cap on leases outstanding (0: none)."},
    {"eventbus_group_rate_limit", "The group's deliveries per second (0: no limit)."},
    {"eventbus_group_throttled_total", "Pulls given fewer events by max_in_flight or rate_limit."},
    {"eventbus_group_ready", "Events waiting for a pull (replays' backlogs included)."},
    {"eventbus_group_delayed", "Delayed events of the group's types not due yet (not in lag)."},
    {"eventbus_group_lag_counting",
     "1 while the lag of a group with a filter is being counted (lag is a lower bound until 0)."}};

/* Gauge k of gauges[] for one group. */
static void prom_gauge(eb_buf *o, size_t k, const eb_group_info *in, uint64_t now)
{
    double v = k == 0   ? (double)in->lag
               : k == 1 ? (double)in->in_flight
               : k == 2 ? (double)in->retry_scheduled
               : k == 3 ? (double)in->dead_letters
               : k == 4 ? (double)age_us(in->oldest_unacked_us, now) / 1e6
               : k == 5 ? (double)in->paused
               : k == 6 ? (double)in->cfg->max_in_flight
               : k == 7 ? in->cfg->rate_limit
               : k == 8 ? (double)in->counters.throttled
               : k == 9 ? (double)in->ready
               : k == 10 ? (double)in->delayed
                        : (double)in->lag_counting;
    eb_buf_printf(o, "%s{group=\"", gauges[k].name);
    eb__api_prom_label(o, in->name);
    eb_buf_printf(o, "\"} %.6g\n", v);
}

/* Every group's view (borrowed: valid while no command runs) and the lag
 * summed over all. */
typedef struct info_vec {
    eb_group_info *v;
    size_t         n, cap;
    uint64_t       lag_sum;
} info_vec;

static void gather_info(void *arg, const eb_group_info *in)
{
    info_vec *iv = arg;
    iv->lag_sum += in->lag;
    if (iv->n == iv->cap) {
        iv->cap = iv->cap ? iv->cap * 2 : 64;
        iv->v = eb_xrealloc(iv->v, iv->cap * sizeof *iv->v);
    }
    iv->v[iv->n++] = *in;
}

static int by_lag_desc(const void *a, const void *b)
{
    const eb_group_info *x = a, *y = b;
    if (x->lag != y->lag)
        return x->lag < y->lag ? 1 : -1;
    return strcmp(x->name, y->name);
}

/* Per-group series for the `limit` groups with the largest lag (all when
 * there are fewer), and totals over every group. */
static void prom_groups(eb_bus *bus, eb_buf *o, size_t limit)
{
    info_vec iv = {0};
    eb_bus_groups_each(bus, gather_info, &iv);
    size_t shown = iv.n;
    if (limit < iv.n) {
        qsort(iv.v, iv.n, sizeof *iv.v, by_lag_desc);
        shown = limit;
    }
    eb__api_prom_head(o, "eventbus_groups", "gauge", "Consumer groups.");
    eb_buf_printf(o, "eventbus_groups %zu\n", iv.n);
    eb__api_prom_head(o, "eventbus_groups_lag", "gauge", "Lag summed over every group.");
    eb_buf_printf(o, "eventbus_groups_lag %llu\n", (unsigned long long)iv.lag_sum);
    eb__api_prom_head(o, "eventbus_group_series_omitted", "gauge",
                      "Groups whose per-group series are left out (--metrics-groups).");
    eb_buf_printf(o, "eventbus_group_series_omitted %zu\n", iv.n - shown);
    for (size_t k = 0; k < sizeof actions / sizeof actions[0]; k++) {
        eb__api_prom_head(o, actions[k].name, "counter", actions[k].help);
        for (size_t i = 0; i < shown; i++)
            prom_action(o, k, &iv.v[i]);
    }
    uint64_t now = eb__api_now_us();
    for (size_t k = 0; k < sizeof gauges / sizeof gauges[0]; k++) {
        eb__api_prom_head(o, gauges[k].name, strstr(gauges[k].name, "_total") ? "counter" : "gauge",
                          gauges[k].help);
        for (size_t i = 0; i < shown; i++)
            prom_gauge(o, k, &iv.v[i], now);
    }
    free(iv.v);
}

/* The latest pull of any of a group's consumers (0 if none yet): what an
 * alert on a group nobody pulls from reads. */
typedef struct last_pull_ctx {
    eb_bus  *bus;
    eb_buf  *o;
    uint64_t max_us;
} last_pull_ctx;

static void max_pull(void *arg, const eb_consumer_info *c)
{
    last_pull_ctx *l = arg;
    if (c->last_pull_us > l->max_us)
        l->max_us = c->last_pull_us;
}

static void prom_last_pull_one(void *arg, const eb_group_info *in)
{
    last_pull_ctx *l = arg;
    l->max_us = 0;
    eb_bus_group_consumers(l->bus, in->name, strlen(in->name), max_pull, l);
    eb_buf_puts(l->o, "eventbus_group_last_pull_timestamp_seconds{group=\"");
    eb__api_prom_label(l->o, in->name);
    eb_buf_printf(l->o, "\"} %.3f\n", (double)l->max_us / 1e6);
}

static void prom_last_pull(eb_bus *bus, eb_buf *o)
{
    eb__api_prom_head(o, "eventbus_group_last_pull_timestamp_seconds", "gauge",
                      "When a consumer of the group last pulled (Unix seconds; 0: never).");
    last_pull_ctx l = {bus, o, 0};
    eb_bus_groups_each(bus, prom_last_pull_one, &l);
}

void eb__api_metrics(eb_api *api, eb_http_req *req, const eb_api_params *p)
{
    (void)p;
    eb_buf *o = &api->out;
    eb_buf_reset(o);
    eb_bus_stats st;
    eb_bus_stats_get(api->bus, &st);
    eb__api_prom_events(api->bus, &st, o);
    eb__api_prom_head(o, "eventbus_log_bytes", "gauge", "Bytes of the events log on disk.");
    eb_buf_printf(o, "eventbus_log_bytes %llu\n", (unsigned long long)st.bytes);
    eb__api_prom_head(o, "eventbus_log_head_seq", "gauge", "Next sequence number of the events log.");
    eb_buf_printf(o, "eventbus_log_head_seq %llu\n", (unsigned long long)st.head_seq);
    eb__api_prom_head(o, "eventbus_log_syncs_total", "counter", "fdatasync calls on the events log.");
    eb_buf_printf(o, "eventbus_log_syncs_total %llu\n", (unsigned long long)st.syncs);
    eb__api_prom_head(o, "eventbus_index_ids_in_memory", "gauge",
                      "Entries of the id lookups held in memory (the rest: segment summaries).");
    eb_buf_printf(o, "eventbus_index_ids_in_memory %llu\n", (unsigned long long)st.ids_in_memory);
    eb__api_prom_head(o, "eventbus_dedupe_ids", "gauge", "Client ids in the dedupe window.");
    eb_buf_printf(o, "eventbus_dedupe_ids %llu\n", (unsigned long long)st.dedupe_ids);
    eb__api_prom_head(o, "eventbus_dedupe_bytes", "gauge",
                      "Memory of the dedupe window (bounded by --dedupe-max-bytes).");
    eb_buf_printf(o, "eventbus_dedupe_bytes %llu\n", (unsigned long long)st.dedupe_bytes);
    eb__api_prom_head(o, "eventbus_dedupe_evicted_total", "counter",
              "Client ids forgotten before their window ended (--dedupe-max-bytes).");
    eb_buf_printf(o, "eventbus_dedupe_evicted_total %llu\n",
                  (unsigned long long)st.dedupe_evicted);
    eb__api_prom_head(o, "eventbus_in_flight_total", "gauge",
              "Leased deliveries, all groups (bounded by --max-in-flight-total).");
    eb_buf_printf(o, "eventbus_in_flight_total %llu\n", (unsigned long long)st.in_flight);
    eb__api_prom_head(o, "eventbus_dead_letter_notices_dropped_total", "counter",
              "eventbus.dead_letter events that could not be published.");
    eb_buf_printf(o, "eventbus_dead_letter_notices_dropped_total %llu\n",
                  (unsigned long long)st.notices_dropped);
    static const struct { const char *name, *type, *help; } delayed[] = {
        {"eventbus_delayed_events", "gauge",
         "Delayed events waiting for their time (bounded by --max-delayed)."},
        {"eventbus_delayed_released_total", "counter",
         "Delayed events handed to groups at their time, since start."},
        {"eventbus_delayed_expired_total", "counter",
         "Delayed events removed by retention before their time, since start."}};
    const uint64_t dv[] = {st.delayed, st.delayed_released, st.delayed_expired};
    for (size_t k = 0; k < 3; k++) {
        eb__api_prom_head(o, delayed[k].name, delayed[k].type, delayed[k].help);
        eb_buf_printf(o, "%s %llu\n", delayed[k].name, (unsigned long long)dv[k]);
    }
    prom_groups(api->bus, o,
                api->opts.metrics_groups == EB_API_METRICS_NO_GROUPS ? 0 : api->opts.metrics_groups);
    eb__api_prom_head(o, "eventbus_auth_failures_total", "counter",
              "Requests refused 401 for an unknown, malformed or expired token.");
    eb_buf_printf(o, "eventbus_auth_failures_total %llu\n",
                  (unsigned long long)api->auth.failures);
    eb__api_prom_head(o, "eventbus_auth_backoff_total", "counter",
              "Requests refused 429 while their address backs off after failed authentications.");
    eb_buf_printf(o, "eventbus_auth_backoff_total %llu\n",
                  (unsigned long long)api->auth.backoffs);
    prom_last_pull(api->bus, o);
    eb__api_prom_push(api->bus, o);
    eb_hist_prom(st.publish_hist, "eventbus_publish_duration_seconds",
                 "Publish request to durable answer.", o);
    eb_hist_prom(st.delivery_hist, "eventbus_delivery_latency_seconds",
                 "Event append to acknowledgement.", o);
    eb__api_prom_requests(api, o);
    eb__api_prom_process(o);
    eb__api_respond(req, 200, "text/plain; version=0.0.4", o->data, o->len);
}
