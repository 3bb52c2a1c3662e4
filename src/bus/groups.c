/* groups.c - consumer groups inside the bus: the group table, making group
 * changes durable in the meta log, long-poll pulls, the timer that expires
 * leases and retry delays, meta snapshots, and the monitoring figures.
 *
 * Every change follows one path: the engine (group.c) changes memory and
 * writes meta records into the bus's outbox; eb_bus_group_commit appends
 * them as one atomic batch; the caller is answered when it is durable. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus/bus_int.h"
#include "eventbus.h"

#define TICK_MS 10
#define SNAPSHOT_CHECK_US 1000000u
#define MAX_TYPE_COUNTERS 10000
#define DEFAULT_SNAPSHOT_BYTES ((uint64_t)64 << 20)

static uint64_t durable_head(eb_bus *bus)
{
    return eb_log_durable_seq(bus->events);
}

static void on_latency(void *arg, uint64_t us)
{
    eb_bus *bus = arg;
    eb_hist_add(&bus->grp.delivery_hist, us);
}

static eb_group_env group_env(eb_bus *bus)
{
    return (eb_group_env){bus->events, eb__bus_now_us, on_latency, bus};
}

/* --- committing records ------------------------------------------------------ */

static void group_op_done(eb_bus *bus, pending_op *op)
{
    (void)bus;
    op->done_cb(op->arg, op->status);
}

static void noop_done(void *arg, int status)
{
    (void)arg;
    (void)status;
}

/* Appends ob's records as one batch; cb(arg, status) once durable. */
static int commit_outbox(eb_bus *bus, eb_outbox *ob, eb_bus_done_cb cb, void *arg,
                         uint64_t *first_seq)
{
    if (eb_buf_failed(&ob->text)) {
        eb_outbox_reset(ob);
        return EB_ENOMEM;
    }
    if (ob->n == 0) {
        if (cb)
            cb(arg, 0);
        return 0;
    }
    eb_log_rec_in small[16], *recs = ob->n <= 16 ? small : malloc(ob->n * sizeof *recs);
    pending_op *op = calloc(1, sizeof *op);
    int rc = recs && op ? 0 : EB_ENOMEM;
    if (rc == 0) {
        for (size_t i = 0; i < ob->n; i++)
            recs[i] = (eb_log_rec_in){ob->recs[i].kind, 0, ob->text.data + ob->recs[i].off,
                                      (uint32_t)ob->recs[i].len};
        *op = (pending_op){.bus = bus, .complete = group_op_done, .done_cb = cb ? cb : noop_done,
                           .arg = arg};
        uint64_t first = 0, ts;
        rc = eb_log_append_inline(eb_meta_log(bus->meta), recs, ob->n, &first, &ts,
                                  eb__bus_on_durable, op);
        if (first_seq)
            *first_seq = first;
    }
    if (recs != small)
        free(recs);
    eb_outbox_reset(ob);
    if (rc == 1) { /* --fsync interval|never: written on this thread */
        op->status = 0;
        eb__bus_complete(bus, op);
        rc = 0;
    }
    if (rc)
        free(op);
    return rc;
}

eb_outbox *eb_bus_outbox(eb_bus *bus)
{
    return &bus->grp.ob;
}

int eb_bus_group_commit(eb_bus *bus, eb_group *g, eb_bus_done_cb cb, void *arg)
{
    if (g)
        eb_group_flush(g, &bus->grp.ob);
    int rc = commit_outbox(bus, &bus->grp.ob, cb, arg, NULL);
    eb__bus_groups_wake(bus); /* nacks, redrives and replays make deliveries ready */
    return rc;
}

/* --- the group table ------------------------------------------------------------ */

eb_group *eb_bus_group(eb_bus *bus, const char *name, size_t n)
{
    return eb_map_get(&bus->grp.by_name, name, n);
}

eb_group *eb_bus_group_next(eb_bus *bus, size_t *it)
{
    const eb_map_slot *s = eb_map_next(&bus->grp.by_name, it);
    return s ? s->val : NULL;
}

static void answer_waiters_of(eb_bus *bus, eb_group *g, int status);

/* Where a new group starts reading. */
static uint64_t start_seq(eb_bus *bus, const eb_group_cfg *cfg)
{
    uint64_t seq;
    switch (cfg->start) {
    case EB_START_EARLIEST:
        return eb_log_first_seq(bus->events);
    case EB_START_TIME:
        if (eb_log_seek_time(bus->events, cfg->start_us, &seq) == 0)
            return seq;
        return eb_log_next_seq(bus->events);
    default:
        return eb_log_next_seq(bus->events);
    }
}

int eb_bus_group_put(eb_bus *bus, const char *name, eb_group_cfg *cfg, bool *created,
                     eb_bus_done_cb cb, void *arg)
{
    if (bus->closing)
        return EB_ECLOSED;
    eb_group *g = eb_bus_group(bus, name, strlen(name));
    *created = !g;
    uint64_t base = 0;
    if (g) {
        eb_group_set_config(g, cfg);
        base = eb_group_base(g);
    } else {
        base = start_seq(bus, cfg);
        eb_group_env env = group_env(bus);
        int rc = eb_group_new(name, cfg, base, &env, &g);
        if (rc)
            return rc;
        if (eb_map_put(&bus->grp.by_name, name, strlen(name), g, NULL)) {
            eb_group_free(g);
            return EB_ENOMEM;
        }
    }
    eb_group_count_ahead(g, durable_head(bus));
    eb__rec_group(&bus->grp.ob, g, base);
    return eb_bus_group_commit(bus, g, cb, arg);
}

int eb_bus_group_delete(eb_bus *bus, const char *name, eb_bus_done_cb cb, void *arg)
{
    eb_group *g = eb_map_del(&bus->grp.by_name, name, strlen(name));
    if (!g)
        return EB_ENOTFOUND;
    answer_waiters_of(bus, g, EB_ENOTFOUND);
    eb_outbox_reset(&bus->grp.ob);
    eb__rec_group_name(&bus->grp.ob, EB_META_GROUP_DEL, name, -1);
    eb_group_free(g);
    return commit_outbox(bus, &bus->grp.ob, cb, arg, NULL);
}

int eb_bus_group_pause(eb_bus *bus, const char *name, bool paused, eb_bus_done_cb cb,
                       void *arg)
{
    eb_group *g = eb_bus_group(bus, name, strlen(name));
    if (!g)
        return EB_ENOTFOUND;
    eb_group_set_paused(g, paused);
    eb__rec_group_name(&bus->grp.ob, EB_META_GROUP_PAUSE, name, paused);
    return eb_bus_group_commit(bus, g, cb, arg);
}

/* --- replaying meta records ------------------------------------------------------ */

static void free_groups(eb_bus *bus)
{
    size_t it = 0;
    eb_group *g;
    while ((g = eb_bus_group_next(bus, &it)))
        eb_group_free(g);
    eb_map_free(&bus->grp.by_name);
    eb_map_init(&bus->grp.by_name);
}

void eb__bus_groups_reset(eb_bus *bus)
{
    free_groups(bus);
}

static int apply_group(eb_bus *bus, const eb_json *rec, const eb_json *name)
{
    eb_group_cfg cfg;
    uint64_t base;
    bool paused;
    if (eb__rec_group_decode(rec, &cfg, &base, &paused) != 0)
        return EB_ECORRUPT;
    eb_group *g = eb_bus_group(bus, name->str, name->len);
    if (g) {
        eb_group_set_config(g, &cfg);
    } else {
        eb_group_env env = group_env(bus);
        int rc = eb_group_new(name->str, &cfg, base, &env, &g);
        if (rc) {
            eb_group_cfg_free(&cfg);
            return rc;
        }
        if (eb_map_put(&bus->grp.by_name, name->str, name->len, g, NULL)) {
            eb_group_free(g);
            return EB_ENOMEM;
        }
    }
    eb_group_set_paused(g, paused);
    return 0;
}

int eb__bus_groups_apply(eb_bus *bus, uint16_t kind, const eb_json *rec)
{
    if (kind < EB_META_GROUP || kind >= EB_META_SNAP)
        return 0; /* written by a newer version: ignore what we don't know */
    const eb_json *name = eb__rec_group_of(rec);
    if (!name)
        return EB_ECORRUPT;
    if (kind == EB_META_GROUP)
        return apply_group(bus, rec, name);
    eb_group *g = eb_bus_group(bus, name->str, name->len);
    if (!g)
        return 0; /* a record of a group deleted later */
    switch (kind) {
    case EB_META_GROUP_DEL:
        eb_map_del(&bus->grp.by_name, name->str, name->len);
        eb_group_free(g);
        return 0;
    case EB_META_GROUP_PAUSE:
        eb_group_set_paused(g, eb__rec_paused(rec));
        return 0;
    default:
        return eb_group_apply(g, kind, rec);
    }
}

/* --- pulls and long polls ----------------------------------------------------------- */

static void waiter_unlink(eb_bus *bus, pull_waiter *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        bus->grp.waiters = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        bus->grp.waiters_tail = w->prev;
}

/* Leases and answers; the JSON goes to cb. */
static void answer_pull(eb_bus *bus, eb_group *g, const char *consumer, size_t clen, size_t max,
                        eb_bus_pull_cb cb, void *arg)
{
    eb_buf *o = &bus->grp.out;
    eb_buf_reset(o);
    eb_jw w;
    eb_jw_init(&w, o);
    eb_jw_obj_open(&w);
    eb_jw_key(&w, "events");
    eb_jw_arr_open(&w);
    int n = g ? eb_group_pull(g, consumer, clen, max, durable_head(bus), &w) : 0;
    eb_jw_arr_close(&w);
    eb_jw_obj_close(&w);
    int status = n < 0 ? n : eb_buf_failed(o) ? EB_ENOMEM : 0;
    cb(arg, status, o->data, o->len);
}

int eb_bus_pull(eb_bus *bus, eb_group *g, const char *consumer, size_t clen, size_t max,
                uint32_t wait_ms, eb_bus_pull_cb cb, eb_bus_alive_fn alive, void *arg)
{
    if (bus->closing)
        return EB_ECLOSED;
    if (wait_ms == 0 || eb_group_has_ready(g, durable_head(bus))) {
        answer_pull(bus, g, consumer, clen, max, cb, arg);
        return 0;
    }
    pull_waiter *w = calloc(1, sizeof *w + clen + 1);
    if (!w)
        return EB_ENOMEM;
    *w = (pull_waiter){.g = g, .max = max, .cb = cb, .alive = alive, .arg = arg, .clen = clen,
                       .deadline_us = eb__bus_now_us() + (uint64_t)wait_ms * 1000u};
    memcpy(w->consumer, consumer, clen);
    w->prev = bus->grp.waiters_tail;
    if (w->prev)
        w->prev->next = w;
    else
        bus->grp.waiters = w;
    bus->grp.waiters_tail = w;
    return 0;
}

/* Serves every waiter that can be served or has waited long enough. */
static void serve_waiters(eb_bus *bus, bool all)
{
    uint64_t now = eb__bus_now_us(), durable = durable_head(bus);
    for (pull_waiter *w = bus->grp.waiters, *nx; w; w = nx) {
        nx = w->next;
        bool gone = w->alive && !w->alive(w->arg);
        bool ready = !gone && eb_group_has_ready(w->g, durable);
        if (!gone && !ready && !all && now < w->deadline_us)
            continue;
        waiter_unlink(bus, w);
        if (gone)
            w->cb(w->arg, EB_ECLOSED, NULL, 0);
        else
            answer_pull(bus, w->g, w->consumer, w->clen, w->max, w->cb, w->arg);
        free(w);
        nx = bus->grp.waiters; /* a callback may have changed the list: restart */
        if (!all)
            durable = durable_head(bus);
    }
}

static void answer_waiters_of(eb_bus *bus, eb_group *g, int status)
{
    for (pull_waiter *w = bus->grp.waiters, *nx; w; w = nx) {
        nx = w->next;
        if (g && w->g != g)
            continue;
        waiter_unlink(bus, w);
        w->cb(w->arg, status, NULL, 0);
        free(w);
        nx = bus->grp.waiters;
    }
}

void eb__bus_groups_wake(eb_bus *bus)
{
    if (bus->grp.waiters && bus->events)
        serve_waiters(bus, false);
}

void eb_bus_flush_pulls(eb_bus *bus)
{
    if (bus->events)
        serve_waiters(bus, true);
}

/* --- publishing hooks ----------------------------------------------------------------- */

static void count_type(eb_bus *bus, const char *t, size_t n)
{
    uint64_t *c = eb_map_get(&bus->grp.published, t, n);
    if (!c && bus->grp.published.len < MAX_TYPE_COUNTERS && (c = calloc(1, sizeof *c)) &&
        eb_map_put(&bus->grp.published, t, n, c, NULL)) {
        free(c);
        c = NULL;
    }
    if (c)
        (*c)++;
}

void eb__bus_groups_published(eb_bus *bus, const eb_event_in *evs, const eb_pub_result *res,
                              size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (res[i].duplicate)
            continue;
        bus->grp.published_total++;
        count_type(bus, evs[i].type.ptr, evs[i].type.len);
        size_t it = 0;
        eb_group *g;
        while ((g = eb_bus_group_next(bus, &it)))
            eb_group_published(g, evs[i].type.ptr, evs[i].type.len, 1);
    }
}

void eb_bus_observe_publish(eb_bus *bus, uint64_t us)
{
    eb_hist_add(&bus->grp.publish_hist, us);
}

/* --- snapshots ------------------------------------------------------------------------- */

static void snapshot_done(eb_bus *bus, pending_op *op)
{
    bus->grp.snapshotting = false;
    if (op->status == 0 && bus->meta) {
        uint64_t deleted = 0;
        eb_log_drop_before(eb_meta_log(bus->meta), op->wait_seq, &deleted);
        eb_log_stats st;
        eb_log_get_stats(eb_meta_log(bus->meta), &st);
        bus->grp.snap_bytes = st.bytes;
    }
}

/* Writes the whole state after an EB_META_SNAP record, as one batch. */
static int snapshot(eb_bus *bus)
{
    eb_outbox ob;
    eb_outbox_init(&ob);
    int rc = eb__snapshot_write(&ob, &bus->reg, &bus->grp.by_name);
    pending_op *op = rc ? NULL : calloc(1, sizeof *op);
    eb_log_rec_in *recs = op ? malloc((ob.n ? ob.n : 1) * sizeof *recs) : NULL;
    if (!recs) {
        free(op);
        eb_outbox_free(&ob);
        return EB_ENOMEM;
    }
    *op = (pending_op){.bus = bus, .complete = snapshot_done};
    for (size_t i = 0; i < ob.n; i++)
        recs[i] = (eb_log_rec_in){ob.recs[i].kind, 0, ob.text.data + ob.recs[i].off,
                                  (uint32_t)ob.recs[i].len};
    rc = eb_meta_append_batch(bus->meta, recs, ob.n, &op->wait_seq, eb__bus_on_durable, op);
    free(recs);
    eb_outbox_free(&ob);
    if (rc)
        free(op);
    else
        bus->grp.snapshotting = true;
    return rc;
}

static void maybe_snapshot(eb_bus *bus, uint64_t now)
{
    if (now - bus->grp.last_snap_check < SNAPSHOT_CHECK_US || bus->grp.snapshotting)
        return;
    bus->grp.last_snap_check = now;
    eb_log_stats st;
    eb_log_get_stats(eb_meta_log(bus->meta), &st);
    uint64_t limit = bus->opts.meta_snapshot_bytes ? bus->opts.meta_snapshot_bytes
                                                   : DEFAULT_SNAPSHOT_BYTES;
    if (st.bytes > bus->grp.snap_bytes + limit)
        snapshot(bus);
}

/* --- the timer -------------------------------------------------------------------------- */

static void on_tick(uv_timer_t *t)
{
    eb_bus *bus = t->data;
    if (bus->closing || !bus->events)
        return;
    size_t it = 0;
    eb_group *g;
    while ((g = eb_bus_group_next(bus, &it))) {
        eb_group_tick(g, &bus->grp.ob);
        eb_group_flush(g, &bus->grp.ob);
    }
    commit_outbox(bus, &bus->grp.ob, NULL, NULL, NULL);
    serve_waiters(bus, false);
    maybe_snapshot(bus, eb__bus_now_us());
}

int eb__bus_groups_init(eb_bus *bus)
{
    eb_bus_groups *gr = &bus->grp;
    eb_map_init(&gr->by_name);
    eb_map_init(&gr->published);
    eb_outbox_init(&gr->ob);
    eb_buf_init(&gr->out);
    return 0;
}

int eb__bus_groups_start(eb_bus *bus)
{
    size_t it = 0;
    eb_group *g;
    uint64_t head = durable_head(bus);
    while ((g = eb_bus_group_next(bus, &it))) {
        eb_group_loaded(g);
        eb_group_count_ahead(g, head);
    }
    eb_log_stats st;
    eb_log_get_stats(eb_meta_log(bus->meta), &st);
    bus->grp.snap_bytes = st.bytes;
    if (uv_timer_init(bus->loop, &bus->grp.timer))
        return EB_EIO;
    bus->grp.timer.data = bus;
    bus->handles++;
    uv_timer_start(&bus->grp.timer, on_tick, TICK_MS, TICK_MS);
    return 0;
}

void eb__bus_groups_close(eb_bus *bus)
{
    eb_bus_groups *gr = &bus->grp;
    answer_waiters_of(bus, NULL, EB_ECLOSED);
    if (gr->timer.data)
        uv_timer_stop(&gr->timer);
    /* Records gathered but not committed (none outside a call) are dropped. */
    free_groups(bus);
    size_t it = 0;
    const eb_map_slot *s;
    while ((s = eb_map_next(&gr->published, &it)))
        free(s->val);
    eb_map_free(&gr->published);
    eb_outbox_free(&gr->ob);
    eb_buf_free(&gr->out);
}

/* --- monitoring ---------------------------------------------------------------------------- */

void eb_bus_group_summary(eb_bus *bus, eb_group *g, eb_jw *w, bool detail)
{
    eb_group_info in;
    eb_group_examine_next(g, durable_head(bus));
    eb_group_info_get(g, &in);
    uint64_t now = eb__bus_now_us();
    eb_jw_key(w, "name");
    eb_jw_str(w, in.name);
    if (detail) {
        eb_jw_key(w, "config");
        eb_group_cfg_write(w, in.cfg);
    }
    eb_jw_key(w, "paused");
    eb_jw_bool(w, in.paused);
    if (detail) {
        eb_jw_key(w, "position");
        eb_jw_obj_open(w);
        eb_jw_key(w, "cursor");
        eb_jw_uint(w, in.cursor);
        eb_jw_key(w, "head");
        eb_jw_uint(w, eb_log_next_seq(bus->events));
        eb_jw_obj_close(w);
    }
    eb_jw_key(w, "lag");
    eb_jw_uint(w, in.lag);
    eb_jw_key(w, "in_flight");
    eb_jw_uint(w, in.in_flight);
    eb_jw_key(w, "retry_scheduled");
    eb_jw_uint(w, in.retry_scheduled);
    eb_jw_key(w, "dead_letters");
    eb_jw_uint(w, in.dead_letters);
    if (!detail)
        return;
    eb_jw_key(w, "ready");
    eb_jw_uint(w, in.ready);
    eb_jw_key(w, "blocked_by_key");
    eb_jw_uint(w, in.blocked);
    eb_jw_key(w, "oldest_unacked_age_ms");
    eb_jw_uint(w, in.oldest_unacked_us && now > in.oldest_unacked_us
                      ? (now - in.oldest_unacked_us) / 1000u
                      : 0);
    eb_jw_key(w, "consumers");
    eb_jw_arr_open(w);
    eb_group_write_consumers(g, w);
    eb_jw_arr_close(w);
    const eb_group_counters *c = &in.counters;
    eb_jw_key(w, "counters");
    eb_jw_obj_open(w);
    const struct { const char *k; uint64_t v; } kv[] = {
        {"delivered", c->delivered},   {"acked", c->acked},
        {"nacked", c->nacked},         {"expired", c->expired},
        {"redelivered", c->redelivered}, {"dead_lettered", c->dead_lettered},
        {"redriven", c->redriven},     {"replayed", c->replayed},
        {"purged", c->purged},         {"retention_skipped", c->retention_skipped}};
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++) {
        eb_jw_key(w, kv[i].k);
        eb_jw_uint(w, kv[i].v);
    }
    eb_jw_obj_close(w);
}

void eb_bus_stats_json(eb_bus *bus, eb_jw *w)
{
    eb_log_stats st;
    eb_log_get_stats(bus->events, &st);
    eb_jw_obj_open(w);
    eb_jw_key(w, "events");
    eb_jw_obj_open(w);
    eb_jw_key(w, "published");
    eb_jw_uint(w, bus->grp.published_total);
    eb_jw_key(w, "first_seq");
    eb_jw_uint(w, eb_log_first_seq(bus->events));
    eb_jw_key(w, "head_seq");
    eb_jw_uint(w, eb_log_next_seq(bus->events));
    eb_jw_key(w, "bytes");
    eb_jw_uint(w, st.bytes);
    eb_jw_key(w, "segments");
    eb_jw_uint(w, st.segments);
    eb_jw_key(w, "publish_p50_ms");
    eb_jw_double(w, (double)eb_hist_quantile(&bus->grp.publish_hist, 0.5) / 1000.0);
    eb_jw_key(w, "publish_p99_ms");
    eb_jw_double(w, (double)eb_hist_quantile(&bus->grp.publish_hist, 0.99) / 1000.0);
    eb_jw_obj_close(w);
    eb_jw_key(w, "groups");
    eb_jw_arr_open(w);
    size_t it = 0;
    eb_group *g;
    while ((g = eb_bus_group_next(bus, &it))) {
        eb_jw_obj_open(w);
        eb_bus_group_summary(bus, g, w, true);
        eb_jw_obj_close(w);
    }
    eb_jw_arr_close(w);
    eb_jw_obj_close(w);
}

static void prom_head(eb_buf *o, const char *name, const char *type, const char *help)
{
    eb_buf_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void group_metrics(eb_bus *bus, eb_buf *o)
{
    static const char *outcomes[] = {"delivered", "acked", "nacked", "expired", "redelivered",
                                     "dead_lettered", "redriven", "replayed"};
    prom_head(o, "eventbus_deliveries_total", "counter",
              "Deliveries and their outcomes per consumer group.");
    size_t it = 0;
    eb_group *g;
    while ((g = eb_bus_group_next(bus, &it))) {
        eb_group_info in;
        eb_group_examine_next(g, durable_head(bus));
        eb_group_info_get(g, &in);
        const eb_group_counters *c = &in.counters;
        uint64_t v[] = {c->delivered, c->acked,         c->nacked,   c->expired,
                        c->redelivered, c->dead_lettered, c->redriven, c->replayed};
        for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
            eb_buf_printf(o, "eventbus_deliveries_total{group=\"%s\",outcome=\"%s\"} %llu\n",
                          in.name, outcomes[i], (unsigned long long)v[i]);
    }
    static const struct { const char *name, *help; } gauges[] = {
        {"eventbus_group_lag", "Matching events not yet acknowledged."},
        {"eventbus_group_in_flight", "Deliveries leased to consumers."},
        {"eventbus_group_retry_scheduled", "Deliveries waiting for their retry time."},
        {"eventbus_dlq_depth", "Dead letters in the group's queue."},
        {"eventbus_group_oldest_unacked_seconds", "Age of the oldest unacknowledged event."},
        {"eventbus_group_paused", "1 when the group is paused."}};
    uint64_t now = eb__bus_now_us();
    for (size_t k = 0; k < sizeof gauges / sizeof gauges[0]; k++) {
        prom_head(o, gauges[k].name, "gauge", gauges[k].help);
        it = 0;
        while ((g = eb_bus_group_next(bus, &it))) {
            eb_group_info in;
            eb_group_examine_next(g, durable_head(bus));
            eb_group_info_get(g, &in);
            double v = k == 0   ? (double)in.lag
                       : k == 1 ? (double)in.in_flight
                       : k == 2 ? (double)in.retry_scheduled
                       : k == 3 ? (double)in.dead_letters
                       : k == 4 ? (in.oldest_unacked_us && now > in.oldest_unacked_us
                                       ? (double)(now - in.oldest_unacked_us) / 1e6
                                       : 0)
                                : (double)in.paused;
            eb_buf_printf(o, "%s{group=\"%s\"} %.6g\n", gauges[k].name, in.name, v);
        }
    }
}

void eb_bus_metrics(eb_bus *bus, eb_buf *o)
{
    prom_head(o, "eventbus_events_published_total", "counter", "Events appended, by type.");
    size_t it = 0;
    const eb_map_slot *s;
    while ((s = eb_map_next(&bus->grp.published, &it)))
        eb_buf_printf(o, "eventbus_events_published_total{type=\"%s\"} %llu\n", s->key,
                      (unsigned long long)*(uint64_t *)s->val);
    eb_log_stats st;
    eb_log_get_stats(bus->events, &st);
    prom_head(o, "eventbus_log_bytes", "gauge", "Bytes of the events log on disk.");
    eb_buf_printf(o, "eventbus_log_bytes %llu\n", (unsigned long long)st.bytes);
    prom_head(o, "eventbus_log_head_seq", "gauge", "Next sequence number of the events log.");
    eb_buf_printf(o, "eventbus_log_head_seq %llu\n",
                  (unsigned long long)eb_log_next_seq(bus->events));
    prom_head(o, "eventbus_log_syncs_total", "counter", "fdatasync calls on the events log.");
    eb_buf_printf(o, "eventbus_log_syncs_total %llu\n", (unsigned long long)st.syncs);
    group_metrics(bus, o);
    eb_hist_prom(&bus->grp.publish_hist, "eventbus_publish_duration_seconds",
                 "Publish request to durable answer.", o);
    eb_hist_prom(&bus->grp.delivery_hist, "eventbus_delivery_latency_seconds",
                 "Event append to acknowledgement.", o);
}
