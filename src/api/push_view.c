/* push_view.c - a pushed group's delivery state (src/push, read through
 * the bus's eb_bus_group_push_state) rendered for the group's view and for
 * /metrics (the eventbus_push_* families). */
#include <string.h>

#include "api/api.h"

static const char *circuit_name(eb_circuit c)
{
    return c == EB_CIRCUIT_OPEN ? "open" : c == EB_CIRCUIT_HALF_OPEN ? "half_open" : "closed";
}

const char *eb__api_push_circuit(eb_bus *bus, const eb_group_info *in)
{
    eb_push_state st;
    if (!in->cfg->push || eb_bus_group_push_state(bus, in->name, strlen(in->name), &st) != 0)
        return NULL;
    return circuit_name(st.circuit);
}

static void time_or_null(eb_jw *w, uint64_t us)
{
    if (!us) {
        eb_jw_null(w);
        return;
    }
    char t[32];
    size_t n = eb_time_format(us, t);
    eb_jw_strn(w, t, n);
}

void eb__api_write_push(eb_bus *bus, eb_jw *w, const eb_group_info *in, bool detail)
{
    eb_push_state st;
    if (!in->cfg->push || eb_bus_group_push_state(bus, in->name, strlen(in->name), &st) != 0)
        return;
    eb_jw_key(w, "push");
    eb_jw_obj_open(w);
    eb_jw_key(w, "circuit");
    eb_jw_str(w, circuit_name(st.circuit));
    eb_jw_key(w, "consecutive_failures");
    eb_jw_uint(w, st.failures);
    eb_jw_key(w, "in_flight");
    eb_jw_uint(w, st.in_flight);
    if (detail) {
        eb_jw_key(w, "next_probe_at");
        time_or_null(w, st.next_probe_us);
        eb_jw_key(w, "retry_after_until");
        time_or_null(w, st.hold_until_us);
        eb_jw_key(w, "circuit_opened");
        eb_jw_uint(w, st.opened);
        eb_jw_key(w, "last_error");
        eb_jw_str(w, st.last_error ? st.last_error : "");
        eb_jw_key(w, "posts");
        eb_jw_obj_open(w);
        const struct { const char *k; uint64_t v; } kv[] = {
            {"ok", st.ok}, {"http_error", st.http_error}, {"timeout", st.timeout},
            {"connection_error", st.conn_error}, {"throttled", st.throttled},
            {"refused", st.refused}};
        for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++) {
            eb_jw_key(w, kv[i].k);
            eb_jw_uint(w, kv[i].v);
        }
        eb_jw_obj_close(w);
        eb_jw_key(w, "latency_p50_ms");
        eb_jw_double(w, st.latency ? (double)eb_hist_quantile(st.latency, 0.5) / 1000.0 : 0);
        eb_jw_key(w, "latency_p99_ms");
        eb_jw_double(w, st.latency ? (double)eb_hist_quantile(st.latency, 0.99) / 1000.0 : 0);
    }
    eb_jw_obj_close(w);
}

/* --- /metrics --------------------------------------------------------------------- */

typedef struct prom_ctx {
    eb_bus *bus;
    eb_buf *o;
    int     family;
} prom_ctx;

static void label(eb_buf *o, const char *name, const char *group)
{
    eb_buf_printf(o, "%s{group=\"", name);
    eb__api_prom_label(o, group);
    eb_buf_puts(o, "\"");
}

static void hist_group(eb_buf *o, const char *group, const eb_hist *h)
{
    uint64_t cum = 0;
    for (size_t i = 0; i < EB_HIST_BUCKETS; i++) {
        cum += h->count[i];
        label(o, "eventbus_push_duration_seconds_bucket", group);
        eb_buf_printf(o, ",le=\"%g\"} %llu\n", (double)eb_hist_bounds_us[i] / 1e6,
                      (unsigned long long)cum);
    }
    label(o, "eventbus_push_duration_seconds_bucket", group);
    eb_buf_printf(o, ",le=\"+Inf\"} %llu\n", (unsigned long long)h->n);
    label(o, "eventbus_push_duration_seconds_sum", group);
    eb_buf_printf(o, "} %.6f\n", (double)h->sum_us / 1e6);
    label(o, "eventbus_push_duration_seconds_count", group);
    eb_buf_printf(o, "} %llu\n", (unsigned long long)h->n);
}

static void prom_one(void *arg, const eb_group_info *in)
{
    prom_ctx *c = arg;
    eb_push_state st;
    if (!in->cfg->push || eb_bus_group_push_state(c->bus, in->name, strlen(in->name), &st) != 0)
        return;
    eb_buf *o = c->o;
    if (c->family == 0) {
        const struct { const char *k; uint64_t v; } kv[] = {
            {"ok", st.ok}, {"http_error", st.http_error}, {"timeout", st.timeout},
            {"connection_error", st.conn_error}, {"throttled", st.throttled},
            {"refused", st.refused}};
        for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++) {
            label(o, "eventbus_push_deliveries_total", in->name);
            eb_buf_printf(o, ",outcome=\"%s\"} %llu\n", kv[i].k, (unsigned long long)kv[i].v);
        }
    } else if (c->family == 1) {
        label(o, "eventbus_push_circuit_state", in->name);
        eb_buf_printf(o, "} %d\n", (int)st.circuit);
    } else if (c->family == 2) {
        label(o, "eventbus_push_circuit_opened_total", in->name);
        eb_buf_printf(o, "} %llu\n", (unsigned long long)st.opened);
    } else if (c->family == 3) {
        label(o, "eventbus_push_in_flight", in->name);
        eb_buf_printf(o, "} %u\n", st.in_flight);
    } else if (st.latency) {
        hist_group(o, in->name, st.latency);
    }
}

void eb__api_prom_push(eb_bus *bus, eb_buf *o)
{
    static const struct { const char *name, *type, *help; } fam[] = {
        {"eventbus_push_deliveries_total", "counter",
         "POSTs of a pushed group by outcome (ok, http_error, timeout, connection_error, "
         "throttled, refused)."},
        {"eventbus_push_circuit_state", "gauge",
         "The circuit of a pushed group's endpoint: 0 closed, 1 open, 2 half-open."},
        {"eventbus_push_circuit_opened_total", "counter", "Times the endpoint's circuit opened."},
        {"eventbus_push_in_flight", "gauge", "Events of the group being POSTed."},
        {"eventbus_push_duration_seconds", "histogram", "POST to a 2xx answer."}};
    for (int k = 0; k < 5; k++) {
        eb__api_prom_head(o, fam[k].name, fam[k].type, fam[k].help);
        prom_ctx c = {bus, o, k};
        eb_bus_groups_each(bus, prom_one, &c);
    }
}
