/* groups.c - consumer groups inside the bus: the group table and the group
 * commands of bus.h (changes and reads), making changes durable in the meta
 * log, the meta replay of group records, the timer that expires leases and
 * retry delays (and checks whether a snapshot is due, snapshot.c), and the
 * monitoring figures (plain structs; src/api renders them). Pulls and long
 * polls are in pull.c.
 *
 * Every change follows one path: the engine (group.c) changes memory and
 * writes meta records into the bus's outbox; commit() appends
 * them as one atomic batch; the caller is answered when it is durable. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus/bus_int.h"
#include "eventbus/err.h"
#include "util/xmalloc.h"

#define TICK_MS 10
#define FULL_TICK_US 1000000u /* every group visited once a second */

static uint64_t durable_head(eb_bus *bus)
{
    return eb_store_durable_seq(bus->events);
}

static void on_latency(void *arg, uint64_t us)
{
    eb_bus *bus = arg;
    eb_hist_add(&bus->grp.delivery_hist, us);
}

/* Retention took events past g's cursor: its lag is counted again. */
static void recount(void *arg, eb_group *g)
{
    eb_bus *bus = arg;
    eb__bus_count_group(bus, g, durable_head(bus));
}

static eb_group_env group_env(eb_bus *bus)
{
    return (eb_group_env){bus->events, eb__bus_now_us, on_latency, bus, &bus->grp.in_flight,
                          bus->opts.max_in_flight_total, eb__bus_dead_lettered, &bus->grp.cache,
                          &bus->count_reads, recount, eb__bus_count_matching};
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

/* Appends ob's records as one batch. Returns 1 if that is done already
 * (nothing to write, or written on this thread under --fsync interval or
 * never; cb is not called), 0 if cb(arg, status) will be called once the
 * batch is durable, or an error (cb not called). */
static int commit_outbox_op(eb_bus *bus, eb_outbox *ob, eb_bus_done_cb cb, void *arg,
                            void (*complete)(eb_bus *, pending_op *), void *extra)
{
    if (ob->n == 0)
        return 1;
    eb_store_rec_in small[16], *recs = ob->n <= 16 ? small : eb_xmalloc(ob->n * sizeof *recs);
    pending_op *op = eb_xcalloc(1, sizeof *op);
    for (size_t i = 0; i < ob->n; i++)
        recs[i] = (eb_store_rec_in){ob->recs[i].kind, 0, ob->text.data + ob->recs[i].off,
                                  (uint32_t)ob->recs[i].len};
    *op = (pending_op){.bus = bus, .complete = complete, .done_cb = cb ? cb : noop_done,
                       .arg = arg, .extra = extra};
    uint64_t first = 0, ts;
    int rc = eb_store_append(eb_meta_store(bus->meta), recs, ob->n, true, &first, &ts,
                             eb__bus_on_durable, op);
    if (recs != small)
        free(recs);
    eb_outbox_reset(ob);
    if (rc) /* 1: --fsync interval|never: written on this thread, durable now */
        free(op);
    return rc;
}

static int commit_outbox(eb_bus *bus, eb_outbox *ob, eb_bus_done_cb cb, void *arg)
{
    return commit_outbox_op(bus, ob, cb, arg, group_op_done, NULL);
}

/* An armed group's place in the due heap. */
typedef struct armed {
    eb_heap_node tm; /* key: when to visit (0: next tick) */
    eb_group    *g;
} armed;

void eb__bus_group_arm(eb_bus *bus, eb_group *g)
{
    uint64_t k = (uint64_t)(uintptr_t)g;
    armed *a = eb_imap_get(&bus->grp.armed, k);
    if (a) {
        if (a->tm.key) {
            a->tm.key = 0;
            eb_heap_fix(&bus->grp.due, &a->tm);
        }
        return;
    }
    a = eb_xmalloc(sizeof *a);
    eb_heap_node_init(&a->tm);
    a->tm.key = 0;
    a->g = g;
    eb_heap_push(&bus->grp.due, &a->tm);
    eb_imap_put(&bus->grp.armed, k, a);
}

static void disarm(eb_bus *bus, eb_group *g)
{
    armed *a = eb_imap_del(&bus->grp.armed, (uint64_t)(uintptr_t)g);
    if (a) {
        eb_heap_remove(&bus->grp.due, &a->tm);
        free(a);
    }
}

static void disarm_all(eb_bus *bus)
{
    size_t it = 0;
    const eb_imap_slot *s;
    while ((s = eb_imap_next(&bus->grp.armed, &it)))
        free(s->val);
    eb_imap_free(&bus->grp.armed);
    eb_imap_init(&bus->grp.armed);
    eb_heap_free(&bus->grp.due);
    eb_heap_init(&bus->grp.due);
}

/* Flushes g's gathered records into the outbox and commits it. */
static int commit(eb_bus *bus, eb_group *g, eb_bus_done_cb cb, void *arg)
{
    if (g) {
        eb_group_flush(g, &bus->grp.ob);
        eb__bus_group_arm(bus, g);
    }
    int rc = commit_outbox(bus, &bus->grp.ob, cb, arg);
    eb__bus_pulls_wake(bus); /* nacks, redrives and replays make deliveries ready */
    eb__bus_dead_letters_publish(bus);
    return rc;
}

/* --- the group table ------------------------------------------------------------ */

/* Adds g's patterns to the type index (add) or takes them out. */
static void index_group(eb_bus *bus, eb_group *g, bool add)
{
    const eb_group_cfg *cfg = eb_group_config(g);
    bus->grp.gen++;
    for (size_t i = 0; i < cfg->ntypes; i++) {
        if (add)
            eb_matcher_add(&bus->grp.matcher, g, cfg->types[i]);
        else
            eb_matcher_remove(&bus->grp.matcher, g, cfg->types[i]);
    }
}

/* Replaces g's config, keeping the type index in step. */
static void reconfigure(eb_bus *bus, eb_group *g, eb_group_cfg *cfg)
{
    index_group(bus, g, false);
    eb_group_set_config(g, cfg);
    index_group(bus, g, true);
}

/* Adds a new group to the table and the index. */
static void table_add(eb_bus *bus, eb_group *g, const char *name, size_t n)
{
    eb_map_put(&bus->grp.by_name, name, n, g, NULL);
    index_group(bus, g, true);
}

/* Takes g out of the table and the index and frees it. */
static void table_del(eb_bus *bus, eb_group *g)
{
    const char *name = eb_group_name(g);
    index_group(bus, g, false);
    disarm(bus, g);
    eb__lagwalk_remove(bus, g); /* a count under way is abandoned */
    eb_map_del(&bus->grp.by_name, name, strlen(name));
    eb_group_free(g);
}

/* Where a new group starts reading. */
static uint64_t start_seq(eb_bus *bus, const eb_group_cfg *cfg)
{
    uint64_t seq;
    switch (cfg->start) {
    case EB_START_EARLIEST:
        return eb_store_first_seq(bus->events);
    case EB_START_TIME:
        if (eb_store_seek_time(bus->events, cfg->start_us, &seq) == 0)
            return seq;
        return eb_store_next_seq(bus->events);
    default:
        return eb_store_next_seq(bus->events);
    }
}

/* Tells the push module (if any) that group `name` changed. */
static int observed(eb_bus *bus, const char *name, int rc)
{
    if (rc >= 0 && bus->observer)
        bus->observer(bus->observer_arg, name);
    return rc;
}

int eb_bus_group_put(eb_bus *bus, const char *name, eb_group_cfg *cfg, bool *created,
                     eb_bus_done_cb cb, void *arg)
{
    if (bus->closing)
        return EB_ECLOSED;
    eb_group *g = eb__bus_group(bus, name, strlen(name));
    eb_field_error fe;
    if (cfg->push && eb_push_cfg_resolve(cfg->push, g ? eb_group_config(g)->push : NULL,
                                         eb__bus_now_us(), &fe) != 0)
        return EB_EINVAL; /* the secret: the API checks it first, naming the field */
    *created = !g;
    uint64_t base = 0;
    if (g) {
        reconfigure(bus, g, cfg);
        base = eb_group_base(g);
    } else if (bus->grp.by_name.len >= bus->opts.max_groups) {
        return EB_ERANGE; /* cfg left to the caller */
    } else {
        base = start_seq(bus, cfg);
        eb_group_env env = group_env(bus);
        g = eb_group_new(name, cfg, base, &env);
        table_add(bus, g, name, strlen(name));
    }
    /* from the counts by type; a filter's by the walk, after the answer */
    eb__bus_count_group(bus, g, durable_head(bus));
    eb__rec_group(&bus->grp.ob, g, base);
    return observed(bus, name, commit(bus, g, cb, arg));
}

int eb_bus_group_delete(eb_bus *bus, const char *name, eb_bus_done_cb cb, void *arg)
{
    eb_group *g = eb__bus_group(bus, name, strlen(name));
    if (!g)
        return EB_ENOTFOUND;
    eb__bus_pulls_answer(bus, g, EB_ENOTFOUND);
    eb__bus_history_forget(bus, name, strlen(name));
    eb_outbox_reset(&bus->grp.ob);
    eb__rec_group_name(&bus->grp.ob, EB_META_GROUP_DEL, name, -1);
    table_del(bus, g);
    return observed(bus, name, commit_outbox(bus, &bus->grp.ob, cb, arg));
}

int eb_bus_group_pause(eb_bus *bus, const char *name, bool paused, eb_bus_done_cb cb,
                       void *arg)
{
    eb_group *g = eb__bus_group(bus, name, strlen(name));
    if (!g)
        return EB_ENOTFOUND;
    eb_group_set_paused(g, paused);
    eb__rec_group_name(&bus->grp.ob, EB_META_GROUP_PAUSE, name, paused);
    return observed(bus, name, commit(bus, g, cb, arg));
}

void eb_bus_set_group_observer(eb_bus *bus, eb_group_observer_fn fn, void *arg)
{
    bus->observer = fn;
    bus->observer_arg = arg;
}

void eb_bus_set_push_state(eb_bus *bus, eb_push_state_fn fn, void *arg)
{
    bus->push_state = fn;
    bus->push_state_arg = arg;
}

int eb_bus_group_push_state(eb_bus *bus, const char *name, size_t n, eb_push_state *out)
{
    eb_group *g = eb__bus_group(bus, name, n);
    memset(out, 0, sizeof *out);
    if (!g || !eb_group_config(g)->push || !bus->push_state ||
        !bus->push_state(bus->push_state_arg, name, n, out))
        return EB_ENOTFOUND;
    return 0;
}

/* --- delivery and dead-letter commands ------------------------------------------- */

/* The settles of one eb_bus_settle, waiting for their batch. */
typedef struct settling {
    uint64_t uid;    /* the group's (eb_group_uid) */
    char    *name;   /* the group's (owned) */
    size_t   n;
    uint64_t keys[]; /* eb_group_settled's */
} settling;

/* The settles' batch is durable (status 0) or failed: applied, or each
 * delivery in flight as before. */
static void settled(eb_bus *bus, eb_group *g, settling *st, int status)
{
    bool live = g && eb_group_uid(g) == st->uid && !bus->closing; /* not deleted meanwhile */
    if (live) {
        eb_group_settled(g, st->keys, st->n, status == 0);
        eb__bus_group_arm(bus, g);
    }
    free(st->name);
    free(st);
    if (live) {
        eb__bus_pulls_wake(bus); /* nacks make deliveries ready, acks free keys */
        eb__bus_dead_letters_publish(bus);
    }
}

static void settle_done(eb_bus *bus, pending_op *op)
{
    settling *st = op->extra;
    settled(bus, eb__bus_group(bus, st->name, strlen(st->name)), st, op->status);
    op->done_cb(op->arg, op->status);
}

int eb_bus_settle(eb_bus *bus, const char *group, size_t glen, const eb_settle_req *req,
                  size_t *settled_n, eb_bus_done_cb cb, void *arg)
{
    eb_group *g = eb__bus_group(bus, group, glen);
    if (!g)
        return EB_ENOTFOUND;
    eb_outbox *ob = &bus->grp.ob;
    settling *st = eb_xmalloc(sizeof *st + req->n * sizeof st->keys[0]);
    size_t ok = 0;
    for (size_t i = 0; i < req->n; i++) {
        const eb_str *id = &req->ids[i];
        uint64_t *key = &st->keys[ok];
        eb_dlv_outcome o =
            req->op == EB_SETTLE_ACK    ? eb_group_ack(g, id->ptr, id->len, key)
            : req->op == EB_SETTLE_NACK ? eb_group_nack(g, id->ptr, id->len, req->error,
                                                        req->delay_ms, req->dead_letter, ob, key)
                                        : eb_group_extend(g, id->ptr, id->len, req->ms, key);
        req->unknown[i] = o != EB_DLV_OK;
        ok += o == EB_DLV_OK;
    }
    *settled_n = ok;
    if (ok == 0) {
        free(st);
        return 1; /* nothing changed: nothing to wait for (gathered leases go
                   * with the group's next records) */
    }
    *st = (settling){eb_group_uid(g), eb_xstrdup(eb_group_name(g)), ok};
    /* Applied once durable: at once if written on this thread, by
     * settle_done otherwise; refused, each delivery stays as it was. */
    eb_group_flush(g, ob);
    int rc = commit_outbox_op(bus, ob, cb, arg, settle_done, st);
    if (rc != 0)
        settled(bus, g, st, rc < 0 ? rc : 0);
    return rc;
}

static int dlq_change(eb_bus *bus, bool redrive, const char *group, size_t glen,
                      const eb_str *ids, size_t n, size_t *count, eb_bus_done_cb cb, void *arg)
{
    eb_group *g = eb__bus_group(bus, group, glen);
    if (!g)
        return EB_ENOTFOUND;
    *count = redrive ? eb_group_dlq_redrive(g, ids, n, &bus->grp.ob)
                     : eb_group_dlq_purge(g, ids, n, &bus->grp.ob);
    return commit(bus, g, cb, arg);
}

int eb_bus_dlq_redrive(eb_bus *bus, const char *group, size_t glen, const eb_str *ids, size_t n,
                       size_t *count, eb_bus_done_cb cb, void *arg)
{
    return dlq_change(bus, true, group, glen, ids, n, count, cb, arg);
}

int eb_bus_dlq_purge(eb_bus *bus, const char *group, size_t glen, const eb_str *ids, size_t n,
                     size_t *count, eb_bus_done_cb cb, void *arg)
{
    return dlq_change(bus, false, group, glen, ids, n, count, cb, arg);
}

int eb_bus_dlq_list(eb_bus *bus, const char *group, size_t glen, uint64_t after, size_t limit,
                    eb_dead_letter_fn fn, void *arg, uint64_t *next)
{
    eb_group *g = eb__bus_group(bus, group, glen);
    if (!g)
        return EB_ENOTFOUND;
    eb_group_dlq_list(g, after, limit, fn, arg, next);
    return 0;
}

/* A replay bound as a seq: times are looked up in the events store. */
static uint64_t bound_seq(eb_bus *bus, const eb_replay_bound *b)
{
    uint64_t seq;
    if (b->by_seq)
        return b->v;
    if (eb_store_seek_time(bus->events, b->v, &seq) != 0)
        seq = eb_store_durable_seq(bus->events);
    return seq;
}

int eb_bus_replay(eb_bus *bus, const char *group, size_t glen, const eb_replay_req *req,
                  uint64_t *requeued, uint64_t *expired, eb_bus_done_cb cb, void *arg)
{
    eb_group *g = eb__bus_group(bus, group, glen);
    if (!g)
        return EB_ENOTFOUND;
    uint64_t from = bound_seq(bus, &req->since);
    uint64_t to = req->has_until ? bound_seq(bus, &req->until) : UINT64_MAX;
    eb_group_replay(g, from, to, req->types, req->ntypes, requeued, expired,
                    req->dry_run ? NULL : &bus->grp.ob);
    if (req->dry_run)
        return 1;
    return commit(bus, g, cb, arg);
}

/* --- reading groups ---------------------------------------------------------------- */

static void info_of(eb_bus *bus, eb_group *g, eb_group_info *out)
{
    eb_group_examine_next(g, durable_head(bus)); /* so the oldest unacked age is known */
    eb_group_info_get(g, out);
    out->head = eb_store_next_seq(bus->events);
    out->delayed = eb__bus_delay_for_group(bus, g);
}

bool eb_bus_group_exists(eb_bus *bus, const char *name, size_t n)
{
    return eb__bus_group(bus, name, n) != NULL;
}

int eb_bus_group_info(eb_bus *bus, const char *name, size_t n, eb_group_info *out)
{
    eb_group *g = eb__bus_group(bus, name, n);
    if (!g)
        return EB_ENOTFOUND;
    info_of(bus, g, out);
    return 0;
}

void eb_bus_groups_each(eb_bus *bus, eb_group_info_fn fn, void *arg)
{
    size_t it = 0;
    eb_group *g;
    while ((g = eb__bus_group_next(bus, &it))) {
        eb_group_info in;
        info_of(bus, g, &in);
        fn(arg, &in);
    }
}

int eb_bus_group_consumers(eb_bus *bus, const char *name, size_t n, eb_consumer_fn fn,
                           void *arg)
{
    eb_group *g = eb__bus_group(bus, name, n);
    if (!g)
        return EB_ENOTFOUND;
    eb_group_consumers_each(g, fn, arg);
    return 0;
}

/* --- replaying meta records ------------------------------------------------------ */

static void free_groups(eb_bus *bus)
{
    size_t it = 0;
    eb_group *g;
    while ((g = eb__bus_group_next(bus, &it))) {
        eb__lagwalk_remove(bus, g);
        eb_group_free(g);
    }
    eb_map_free(&bus->grp.by_name);
    eb_map_init(&bus->grp.by_name);
    eb_matcher_clear(&bus->grp.matcher);
    disarm_all(bus);
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
    eb_group *g = eb__bus_group(bus, name->str, name->len);
    if (g) {
        reconfigure(bus, g, &cfg);
    } else {
        eb_group_env env = group_env(bus);
        g = eb_group_new(name->str, &cfg, base, &env);
        table_add(bus, g, name->str, name->len);
    }
    eb_group_set_paused(g, paused);
    return 0;
}

int eb__bus_groups_apply(eb_bus *bus, uint16_t kind, const eb_json *rec)
{
    if (kind < EB_META_GROUP || (kind >= EB_META_SNAP && kind != EB_META_LEASE))
        return 0; /* written by a newer version: ignore what we don't know */
    const eb_json *name = eb__rec_group_of(rec);
    if (!name)
        return EB_ECORRUPT;
    if (kind == EB_META_GROUP)
        return apply_group(bus, rec, name);
    eb_group *g = eb__bus_group(bus, name->str, name->len);
    if (!g)
        return 0; /* a record of a group deleted later */
    switch (kind) {
    case EB_META_GROUP_DEL:
        table_del(bus, g);
        return 0;
    case EB_META_GROUP_PAUSE:
        eb_group_set_paused(g, eb__rec_paused(rec));
        return 0;
    default:
        return eb_group_apply(g, kind, rec);
    }
}

/* --- publishing hooks ----------------------------------------------------------------- */

static bool same_type(eb_str a, eb_str b)
{
    return a.len == b.len && memcmp(a.ptr, b.ptr, a.len) == 0;
}

/* Counts a run of events of one type for group g: at once, or one by one
 * through its filter. */
static void published_run(eb_group *g, const eb_event_in *evs, const eb_pub_result *res,
                          size_t n, uint64_t run)
{
    if (!eb_group_has_filter(g)) {
        eb_group_published(g, run, NULL);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const eb_event_in *e = &evs[i];
        if (res[i].duplicate || e->deliver_us)
            continue;
        eb_filter_event fe = {e->source, e->subject, e->key, e->extensions, e->data};
        eb_group_published(g, 1, e->data || !e->data_raw.len ? &fe : NULL);
    }
}

/* Counts the run evs[0..n) of one type into the tail (tail.h): one add per
 * chunk it spans, not per event. */
static void tail_run(eb_bus *bus, const eb_event_in *evs, const eb_pub_result *res, size_t n)
{
    uint64_t k = UINT64_MAX, c = 0, at = 0;
    for (size_t i = 0; i < n; i++) {
        if (res[i].duplicate || evs[i].deliver_us)
            continue;
        uint64_t ki = res[i].seq / EB_TAIL_CHUNK;
        if (ki != k && c) {
            eb__tail_add(&bus->tail, at, evs[0].type.ptr, evs[0].type.len, c);
            c = 0;
        }
        k = ki;
        at = res[i].seq;
        c++;
    }
    if (c)
        eb__tail_add(&bus->tail, at, evs[0].type.ptr, evs[0].type.len, c);
}

void eb__bus_groups_published(eb_bus *bus, const eb_event_in *evs, const eb_pub_result *res,
                              size_t n)
{
    /* One index lookup per run of events of one type (a batch is often one
     * type): the cost per event does not grow with the matching groups
     * (but for groups with a filter, which look at each event). */
    for (size_t i = 0, run = 0, start = 0; i < n; i++) {
        if (res[i].duplicate) {
            eb__bus_count_duplicate(bus, evs[i].type.ptr, evs[i].type.len);
        } else {
            eb__bus_count_published(bus, evs[i].type.ptr, evs[i].type.len);
            run += !evs[i].deliver_us; /* a delayed one counts when due (delay.c) */
        }
        if (i + 1 == n || !same_type(evs[i + 1].type, evs[i].type)) {
            if (run) {
                void *const *m;
                size_t nm = eb_matcher_match(&bus->grp.matcher, evs[i].type.ptr,
                                             evs[i].type.len, &m);
                for (size_t k = 0; k < nm; k++)
                    published_run(m[k], evs + start, res + start, i + 1 - start, run);
                tail_run(bus, evs + start, res + start, i + 1 - start);
            }
            run = 0;
            start = i + 1;
        }
    }
}

void eb__bus_groups_released(eb_bus *bus, const eb_event_view *v, uint64_t seq)
{
    eb__tail_add(&bus->tail, seq, v->type.ptr, v->type.len, 1);
    void *const *m;
    size_t nm = eb_matcher_match(&bus->grp.matcher, v->type.ptr, v->type.len, &m);
    int parsed = -1; /* not yet */
    eb_filter_event fe;
    for (size_t k = 0; k < nm; k++) {
        if (!eb_group_has_filter(m[k])) {
            eb_group_published(m[k], 1, NULL);
            continue;
        }
        if (parsed < 0)
            parsed = eb__bus_filter_event(bus, v, &fe);
        eb_group_published(m[k], 1, parsed ? &fe : NULL);
    }
}

bool eb__bus_filter_event(eb_bus *bus, const eb_event_view *v, eb_filter_event *fe)
{
    if (!bus->scratch_doc)
        bus->scratch_doc = eb_json_doc_new();
    if (eb_json_parse(bus->scratch_doc, v->json.ptr, v->json.len, NULL, NULL) != 0)
        return false;
    eb_filter_event_of(eb_json_root(bus->scratch_doc), fe);
    return true;
}

void eb_bus_observe_publish(eb_bus *bus, uint64_t us)
{
    eb_hist_add(&bus->grp.publish_hist, us);
}

void eb_bus_stats_get(eb_bus *bus, eb_bus_stats *out)
{
    eb_store_stats st;
    eb_store_stats_get(bus->events, &st);
    const char *which;
    *out = (eb_bus_stats){.published = bus->counts.log,
                          .published_since_start = bus->counts.since_start,
                          .duplicates = bus->counts.duplicates,
                          .schema_rejected = bus->counts.schema_rejected,
                          .types_folded = bus->counts.folded_events,
                          .degraded = eb_bus_storage_error(bus, &which) != 0,
                          .first_seq = eb_store_first_seq(bus->events),
                          .head_seq = eb_store_next_seq(bus->events),
                          .bytes = st.bytes,
                          .segments = st.segments,
                          .syncs = st.syncs,
                          .ids_in_memory = st.ids_in_memory,
                          .dedupe_ids = bus->dedupe.map.len,
                          .dedupe_bytes = bus->dedupe.bytes,
                          .dedupe_evicted = bus->dedupe.evicted,
                          .in_flight = bus->grp.in_flight,
                          .notices_dropped = bus->grp.dl_failed,
                          .publish_hist = &bus->grp.publish_hist,
                          .delivery_hist = &bus->grp.delivery_hist};
    eb__bus_delay_stats(bus, out);
    eb__lagwalk_stats(bus, out);
}

/* --- the timer -------------------------------------------------------------------------- */

static void visit(eb_bus *bus, eb_group *g, uint64_t now)
{
    if (eb_group_due(g, now)) {
        eb_group_tick(g, &bus->grp.ob);
        eb_group_flush(g, &bus->grp.ob);
    }
}

/* Every tick visits the armed groups that are due: touched by a command
 * since, or a lease or retry of theirs falling due (a heap keyed by that
 * time); once a second every group (consumer sweeps, tidying finished seqs
 * and replays, and any group a failed arm missed). Idle groups and groups
 * whose leases run cost nothing per tick. */
static void tick_groups(eb_bus *bus, uint64_t now)
{
    eb_bus_groups *gr = &bus->grp;
    if (now - gr->last_full_tick >= FULL_TICK_US) {
        gr->last_full_tick = now;
        eb__bus_tail_tidy(bus);
        size_t it = 0;
        eb_group *g;
        while ((g = eb__bus_group_next(bus, &it))) {
            visit(bus, g, now);
            if (eb_group_next_due(g))
                eb__bus_group_arm(bus, g);
        }
    }
    eb_heap_node *top;
    while ((top = eb_heap_min(&gr->due)) && top->key <= now) {
        armed *a = (armed *)(void *)((char *)top - offsetof(armed, tm));
        visit(bus, a->g, now);
        uint64_t next = eb_group_next_due(a->g);
        if (!next) {
            disarm(bus, a->g);
            continue;
        }
        a->tm.key = next > now ? next : now + 1;
        eb_heap_fix(&gr->due, &a->tm);
    }
}

static void on_tick(uv_timer_t *t)
{
    eb_bus *bus = t->data;
    if (bus->closing || !bus->events)
        return;
    tick_groups(bus, eb__bus_now_us());
    commit_outbox(bus, &bus->grp.ob, NULL, NULL);
    eb__bus_pulls_wake(bus);
    eb__bus_dead_letters_publish(bus);
    eb__bus_maybe_snapshot(bus, eb__bus_now_us());
    eb__bus_check_storage(bus);
    eb__bus_history_tick(bus, eb__bus_now_us());
    eb__lagwalk_kick(bus); /* a walk that waited for appends to be durable */
}

void eb__bus_groups_recount(eb_bus *bus)
{
    /* One walk for all groups (lag.c); a failed read leaves the counts. */
    (void)eb__bus_count_lags(bus, durable_head(bus));
}

int eb__bus_groups_init(eb_bus *bus)
{
    eb_bus_groups *gr = &bus->grp;
    eb_map_init(&gr->by_name);
    eb_matcher_init(&gr->matcher);
    eb_imap_init(&gr->armed);
    eb_heap_init(&gr->due);
    eb_map_init(&gr->history);
    eb_outbox_init(&gr->ob);
    eb_buf_init(&gr->dl_events);
    eb_reccache_init(&gr->cache, (size_t)bus->opts.delivery_cache_bytes);
    return eb__lagwalk_init(bus);
}

int eb__bus_groups_start(eb_bus *bus)
{
    size_t it = 0;
    eb_group *g;
    uint64_t head = durable_head(bus);
    while ((g = eb__bus_group_next(bus, &it)))
        eb_group_loaded(g);
    int rc = eb__bus_count_lags(bus, head);
    if (rc)
        return rc;
    uint64_t now = eb__bus_now_us();
    it = 0;
    while ((g = eb__bus_group_next(bus, &it)))
        eb_group_bucket_start(g, now);
    eb__bus_snapshot_start(bus);
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
    eb__bus_pulls_answer(bus, NULL, EB_ECLOSED);
    eb__bus_snapshot_at_close(bus);
    if (gr->timer.data)
        uv_timer_stop(&gr->timer);
    eb__lagwalk_close(bus);
    /* Records gathered but not committed (none outside a call) are dropped. */
    free_groups(bus);
    eb_matcher_free(&gr->matcher);
    disarm_all(bus);
    eb__bus_history_free(bus);
    eb_outbox_free(&gr->ob);
    eb_buf_free(&gr->dl_text);
    gr->dl_n = 0;
    free(gr->dl);
    gr->dl = NULL;
    eb_buf_free(&gr->dl_events);
    eb_reccache_free(&gr->cache);
}
