/* test_bus_cmd.c - the bus's command API (bus.h) on a real loop and real
 * stores: the callback rule (an error return never calls back; 0 calls
 * back exactly once, later, never inside the call; 1 = durable already,
 * no callback), results in out-parameters, pulls as borrowed views. */
#include "runner.h"

#include <string.h>
#include <uv.h>

#include "bus/bus.h"
#include "bus/bus_int.h"
#include "eventbus/err.h"
#include "store/store_log.h"

typedef struct done {
    int calls;
    int status;
} done;

static void on_done(void *arg, int status)
{
    done *d = arg;
    d->calls++;
    d->status = status;
}

static eb_bus *open_bus(uv_loop_t *loop, eb_store_sync sync)
{
    eb_bus_opts o = {.data_dir = eb_test_tmpdir(), .engine = &eb_store_log_engine,
                     .fsync = sync, .dedupe_window_ms = 1000};
    eb_bus *bus = NULL;
    CHECK_OK(eb_bus_open(loop, &o, &bus, NULL));
    return bus;
}

/* Runs the loop until d has been called back (bounded). */
static void wait_done(uv_loop_t *loop, done *d)
{
    for (int i = 0; i < 10000 && !d->calls; i++)
        uv_run(loop, UV_RUN_ONCE);
    CHECK_EQ(d->calls, 1);
    CHECK_EQ(d->status, 0);
}

/* A group config from its JSON text (the document stays the caller's). */
static eb_json_doc *cfg_of(const char *text, eb_group_cfg *cfg)
{
    eb_json_doc *doc = eb_json_doc_new();
    eb_json_error je;
    CHECK_OK(eb_json_parse(doc, text, strlen(text), NULL, &je));
    eb_field_error fe;
    CHECK_OK(eb_group_cfg_parse(eb_json_root(doc), cfg, &fe));
    return doc;
}

static void put_group(uv_loop_t *loop, eb_bus *bus, eb_store_sync sync)
{
    eb_group_cfg cfg;
    eb_json_doc *doc = cfg_of("{\"types\":[\"t.*\"],\"start\":\"earliest\"}", &cfg);
    bool created = false;
    done d = {0};
    int rc = eb_bus_group_put(bus, "g", &cfg, &created, on_done, &d);
    eb_group_cfg_free(&cfg);
    CHECK(created);
    CHECK_EQ(d.calls, 0); /* never inside the call */
    if (sync == EB_STORE_SYNC_ALWAYS) {
        CHECK_EQ(rc, 0);
        wait_done(loop, &d);
    } else {
        CHECK(rc == 0 || rc == 1);
        if (rc == 0)
            wait_done(loop, &d);
    }
    eb_json_doc_free(doc);
}

static void on_published(void *arg, int status, const eb_pub_result *res, size_t n)
{
    done *d = arg;
    (void)res;
    d->calls += (int)n;
    d->status = status;
}

static void publish(uv_loop_t *loop, eb_bus *bus, int n)
{
    eb_event_in evs[8];
    eb_pub_errors errs;
    eb_pub_errors_init(&errs);
    for (int i = 0; i < n; i++)
        evs[i] = (eb_event_in){.type = {"t.x", 3}, .data_raw = {"{}", 2}};
    done d = {0};
    CHECK_OK(eb_bus_publish(bus, evs, (size_t)n, &errs, on_published, &d));
    for (int i = 0; i < 10000 && !d.calls; i++)
        uv_run(loop, UV_RUN_ONCE);
    CHECK_EQ(d.calls, n);
    CHECK_EQ(d.status, 0);
    eb_pub_errors_free(&errs);
}

typedef struct pulled {
    int    calls, status;
    size_t n;
    char   ids[8][48];
    uint64_t deadline;
} pulled;

static void on_pulled(void *arg, int status, const eb_delivery *dl, size_t n, uint64_t deadline)
{
    pulled *p = arg;
    p->calls++;
    p->status = status;
    p->n = n;
    p->deadline = deadline;
    for (size_t i = 0; i < n && i < 8; i++) {
        eb_event_view v;
        CHECK_OK(eb_event_decode(dl[i].event, dl[i].len, &v)); /* borrowed, valid now */
        CHECK(v.type.len == 3 && memcmp(v.type.ptr, "t.x", 3) == 0);
        CHECK_EQ(dl[i].attempt, 1);
        memcpy(p->ids[i], dl[i].id, sizeof p->ids[i]);
    }
}

static void on_pulled_any(void *arg, int status, const eb_delivery *dl, size_t n,
                          uint64_t deadline)
{
    pulled *p = arg;
    p->calls++;
    p->status = status;
    p->n = n;
    p->deadline = deadline;
    for (size_t i = 0; i < n && i < 8; i++)
        memcpy(p->ids[i], dl[i].id, sizeof p->ids[i]);
}

static void commands(eb_store_sync sync)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    eb_bus *bus = open_bus(&loop, sync);
    put_group(&loop, bus, sync);
    publish(&loop, bus, 3);

    pulled p = {0};
    CHECK_OK(eb_bus_pull(bus, "g", 1, "c1", 2, 10, 0, on_pulled, NULL, &p));
    CHECK_EQ(p.calls, 1); /* wait 0: answered before returning */
    CHECK_EQ(p.status, 0);
    CHECK_EQ(p.n, 3);
    CHECK_STR(p.ids[0], "m1.1");
    CHECK(p.deadline > 0);

    /* Unknown group: an error, and no callback ever. */
    done d = {0};
    eb_str one = {p.ids[0], strlen(p.ids[0])};
    uint8_t unknown[2];
    eb_settle_req sr = {EB_SETTLE_ACK, &one, 1, NULL, -1, 0, unknown};
    size_t settled = 9;
    CHECK_EQ(eb_bus_settle(bus, "nope", 4, &sr, &settled, on_done, &d), EB_ENOTFOUND);
    CHECK_EQ(eb_bus_pull(bus, "nope", 4, "c1", 2, 10, 0, on_pulled, NULL, &p), EB_ENOTFOUND);

    /* Unknown ids only: nothing to write, durable already (1), no callback. */
    eb_str bad = {"m99.1", 5};
    sr = (eb_settle_req){EB_SETTLE_ACK, &bad, 1, NULL, -1, 0, unknown};
    CHECK_EQ(eb_bus_settle(bus, "g", 1, &sr, &settled, on_done, &d), 1);
    CHECK_EQ(settled, 0);
    CHECK_EQ(unknown[0], 1);

    /* One known, one unknown: results at once, the callback later. */
    eb_str ids[2] = {{p.ids[0], strlen(p.ids[0])}, {"m1.7", 4}};
    sr = (eb_settle_req){EB_SETTLE_ACK, ids, 2, NULL, -1, 0, unknown};
    int rc = eb_bus_settle(bus, "g", 1, &sr, &settled, on_done, &d);
    CHECK_EQ(settled, 1);
    CHECK(unknown[0] == 0 && unknown[1] == 1);
    CHECK_EQ(d.calls, 0);
    if (sync == EB_STORE_SYNC_ALWAYS)
        CHECK_EQ(rc, 0);
    if (rc == 0)
        wait_done(&loop, &d);
    else
        CHECK_EQ(rc, 1);

    eb_group_info in;
    CHECK_OK(eb_bus_group_info(bus, "g", 1, &in));
    CHECK_STR(in.name, "g");
    CHECK_EQ(in.in_flight, 2);
    CHECK_EQ(in.counters.acked, 1);
    CHECK_EQ(in.head, 4);
    CHECK(eb_bus_group_exists(bus, "g", 1));
    CHECK(!eb_bus_group_exists(bus, "h", 1));

    eb_bus_close(bus);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_OK(uv_loop_close(&loop));
}

TEST(bus_commands_fsync_always)
{
    commands(EB_STORE_SYNC_ALWAYS);
}

TEST(bus_commands_fsync_interval)
{
    commands(EB_STORE_SYNC_INTERVAL);
}

/* Registers version `want` of type t.s (a schema accepting anything) and,
 * when snap, starts a snapshot while the registration is still pending
 * (appended, not yet reported durable: it is in the log but not in the
 * registry). Returns with it durable. */
static void register_schema(uv_loop_t *loop, eb_bus *bus, uint32_t want, bool snap)
{
    char text[64];
    snprintf(text, sizeof text, "{\"description\":\"v%u\"}", (unsigned)want);
    eb_registry_verdict chk;
    done d = {0};
    CHECK_OK(eb_bus_register_schema(bus, "t.s", 3, text, strlen(text), false, EB_COMPAT_NONE,
                                    &chk, on_done, &d));
    CHECK_EQ(chk.next, want);
    eb_registry_check_done(&chk);
    if (snap) /* as the tick would, its check interval and size limit passed */
        eb__bus_maybe_snapshot(bus, eb__bus_now_us() + 10 * 1000000u);
    wait_done(loop, &d);
}

static int count_snaps(void *arg, const eb_store_rec *rec)
{
    *(int *)arg += rec->type == EB_META_SNAP;
    return 0;
}

/* A snapshot restates the whole state and replay forgets everything before
 * it: one written while a registration was pending must still carry it, or
 * the acknowledged version is gone after a restart (the power-loss test's
 * "schema:pl.order is 14; acknowledged state allows ['15']"). */
static void snapshot_during_registration(eb_store_sync sync)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    const char *dir = eb_test_tmpdir();
    eb_bus_opts o = {.data_dir = dir, .engine = &eb_store_log_engine, .fsync = sync,
                     .dedupe_window_ms = 1000, .meta_snapshot_bytes = 1};
    eb_bus *bus = NULL;
    CHECK_OK(eb_bus_open(&loop, &o, &bus, NULL));
    register_schema(&loop, bus, 1, false);
    register_schema(&loop, bus, 2, true);
    const eb_subject *sub = eb_bus_schema_subject(bus, "t.s", 3);
    CHECK(sub && sub->nvers == 2);
    /* Now nothing is pending: a snapshot is written (unless the one above
     * was), and replay passes it after the restart. */
    eb__bus_maybe_snapshot(bus, eb__bus_now_us() + 20 * 1000000u);
    eb_bus_close(bus); /* drains the snapshot's append too */
    uv_run(&loop, UV_RUN_DEFAULT);

    bus = NULL;
    CHECK_OK(eb_bus_open(&loop, &o, &bus, NULL));
    int snaps = 0;
    CHECK_OK(eb_store_scan(eb_meta_store(bus->meta), 1, 1000, count_snaps, &snaps));
    CHECK(snaps >= 1);
    sub = eb_bus_schema_subject(bus, "t.s", 3);
    CHECK(sub != NULL);
    if (sub)
        CHECK_EQ(sub->nvers, 2);
    eb_bus_close(bus);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_OK(uv_loop_close(&loop));
}

TEST(bus_snapshot_during_registration_fsync_always)
{
    snapshot_during_registration(EB_STORE_SYNC_ALWAYS);
}

TEST(bus_snapshot_during_registration_fsync_interval)
{
    snapshot_during_registration(EB_STORE_SYNC_INTERVAL);
}

/* --- deliveries whose event retention took ------------------------------------
 * A delivery holds no copy of its event: answering a pull reads it from the
 * recent-records cache or the store. Here the cache is off (1 byte: every
 * record is over an eighth of it) and the events store is patched so that
 * seqs below `gone_below` look removed by retention (its first_seq and
 * scan skip them), as a retention pass would after they were filled. */

static const eb_store_ops *real_ops;
static eb_store_ops gone_ops;
static uint64_t gone_below;

static uint64_t gone_first(eb_store *s)
{
    uint64_t f = real_ops->first_seq(s);
    return f > gone_below ? f : gone_below;
}

static int gone_scan(eb_store *s, uint64_t from, size_t max, eb_store_scan_cb cb, void *arg)
{
    return real_ops->scan(s, from < gone_below ? gone_below : from, max, cb, arg);
}

static int gone_open(const eb_store_opts *o, eb_store **out, eb_store_recovery *rep)
{
    int rc = eb_store_log_engine.open(o, out, rep);
    if (rc == 0 && o->kind == EB_STORE_EVENTS) {
        real_ops = (*out)->ops;
        gone_ops = *real_ops;
        gone_ops.first_seq = gone_first;
        gone_ops.scan = gone_scan;
        (*out)->ops = &gone_ops;
    }
    return rc;
}

static const eb_store_engine gone_engine = {"log-with-retention", gone_open};

typedef struct pulled_all {
    size_t   n;
    uint64_t seqs[64];
    char     ids[64][48];
} pulled_all;

static void on_pulled_all(void *arg, int status, const eb_delivery *dl, size_t n, uint64_t dd)
{
    pulled_all *p = arg;
    (void)dd;
    CHECK_OK(status);
    p->n = n;
    for (size_t i = 0; i < n && i < 64; i++) {
        eb_event_view v;
        CHECK_OK(eb_event_decode(dl[i].event, dl[i].len, &v)); /* read back from the store */
        CHECK(v.type.len == 3 && memcmp(v.type.ptr, "t.x", 3) == 0);
        p->seqs[i] = dl[i].seq;
        memcpy(p->ids[i], dl[i].id, sizeof p->ids[i]);
    }
}

static void settle_ids(uv_loop_t *loop, eb_bus *bus, pulled_all *p, size_t from, size_t to,
                       bool dead)
{
    eb_str ids[64];
    uint8_t unknown[64];
    for (size_t i = from; i < to; i++)
        ids[i - from] = (eb_str){p->ids[i], strlen(p->ids[i])};
    eb_settle_req sr = {EB_SETTLE_NACK, ids, to - from, "bad", 0, 0, unknown, dead};
    size_t settled = 0;
    done d = {0};
    int rc = eb_bus_settle(bus, "g", 1, &sr, &settled, on_done, &d);
    CHECK_EQ(settled, to - from);
    if (rc == 0)
        wait_done(loop, &d);
}

static void count_dead(void *arg, const eb_dead_letter *dl)
{
    eb_event_view v;
    CHECK_OK(eb_event_decode(dl->event, dl->len, &v)); /* a dead letter keeps its copy */
    ++*(size_t *)arg;
}

TEST(deliveries_whose_event_retention_took)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    gone_below = 0;
    eb_bus_opts o = {.data_dir = eb_test_tmpdir(), .engine = &gone_engine,
                     .fsync = EB_STORE_SYNC_ALWAYS, .dedupe_window_ms = 1000,
                     .delivery_cache_bytes = 1};
    eb_bus *bus = NULL;
    CHECK_OK(eb_bus_open(&loop, &o, &bus, NULL));
    put_group(&loop, bus, EB_STORE_SYNC_ALWAYS);
    publish(&loop, bus, 8);
    publish(&loop, bus, 8); /* seqs 1..16 */

    pulled_all p = {0};
    CHECK_OK(eb_bus_pull(bus, "g", 1, "c1", 2, 64, 0, on_pulled_all, NULL, &p));
    CHECK_EQ(p.n, 16);
    settle_ids(&loop, bus, &p, 0, 16, false); /* all READY again at once */

    gone_below = 6; /* 1..5 removed by retention while they waited */
    pulled_all q = {0};
    CHECK_OK(eb_bus_pull(bus, "g", 1, "c1", 2, 64, 0, on_pulled_all, NULL, &q));
    CHECK_EQ(q.n, 11);
    CHECK_EQ(q.seqs[0], 6);
    CHECK_STR(q.ids[0], "m6.2");
    eb_group_info in;
    CHECK_OK(eb_bus_group_info(bus, "g", 1, &in));
    CHECK_EQ(in.counters.retention_skipped, 5);
    CHECK_EQ(in.in_flight, 11);

    gone_below = 9; /* 6..8 go while leased: dead-lettering them keeps nothing */
    settle_ids(&loop, bus, &q, 0, 4, true); /* 6, 7, 8 gone; 9 dead-lettered */
    size_t dead = 0;
    uint64_t next = 0;
    CHECK_OK(eb_bus_dlq_list(bus, "g", 1, 0, 100, count_dead, &dead, &next));
    CHECK_EQ(dead, 1);
    CHECK_OK(eb_bus_group_info(bus, "g", 1, &in));
    CHECK_EQ(in.counters.retention_skipped, 8);
    CHECK_EQ(in.counters.dead_lettered, 1);
    CHECK_EQ(in.in_flight, 7);
    CHECK_EQ(in.lag, 7); /* 10..16, leased */

    eb_bus_close(bus);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_OK(uv_loop_close(&loop));
}

/* --- a group with a filter: counted off the request path --------------------- */

static void put_filtered(eb_bus *bus, const char *name, const char *cfg_text)
{
    eb_group_cfg cfg;
    eb_json_doc *doc = cfg_of(cfg_text, &cfg);
    bool created = false;
    done d = {0};
    CHECK_EQ(eb_bus_group_put(bus, name, &cfg, &created, on_done, &d), 1); /* interval */
    eb_group_cfg_free(&cfg);
    eb_json_doc_free(doc);
}

static eb_group_info group_info(eb_bus *bus, const char *name)
{
    eb_group_info in;
    CHECK_OK(eb_bus_group_info(bus, name, strlen(name), &in));
    return in;
}

static eb_bus_stats stats_of(eb_bus *bus)
{
    eb_bus_stats st;
    eb_bus_stats_get(bus, &st);
    return st;
}

/* 320 events of t.x, data {"n":0} and {"n":1} in turn (seqs 1..320: the
 * odd ones n 0), a group wanting n 1 created on them with at most 8 records
 * a loop turn: the creation reads nothing, each turn reads 8 and no more,
 * the group delivers meanwhile, and its lag is exact after 40 turns. */
TEST(filtered_lag_is_counted_one_slice_per_loop_turn)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    eb_bus_opts o = {.data_dir = eb_test_tmpdir(), .engine = &eb_store_log_engine,
                     .fsync = EB_STORE_SYNC_INTERVAL, .fsync_interval_ms = 1000,
                     .dedupe_window_ms = 1000, .lag_walk_records = 8};
    eb_bus *bus = NULL;
    CHECK_OK(eb_bus_open(&loop, &o, &bus, NULL));
    eb_pub_errors errs;
    eb_pub_errors_init(&errs);
    for (int b = 0; b < 40; b++) {
        eb_event_in evs[8];
        for (int i = 0; i < 8; i++)
            evs[i] = (eb_event_in){.type = {"t.x", 3}, .data_raw = {i % 2 ? "{\"n\":1}" : "{\"n\":0}", 7}};
        done d = {0};
        CHECK_OK(eb_bus_publish(bus, evs, 8, &errs, on_published, &d));
        CHECK_EQ(d.calls, 8); /* interval: answered inside */
    }
    eb_pub_errors_free(&errs);
    uint64_t reads0 = eb_bus_count_reads(bus);
    put_filtered(bus, "g", "{\"types\":[\"t.*\"],\"start\":\"earliest\","
                           "\"filter\":{\"data\":{\"n\":[1]}}}");
    CHECK_EQ(eb_bus_count_reads(bus), reads0); /* nothing read on the request path */
    eb_group_info in = group_info(bus, "g");
    CHECK(in.lag_counting);
    CHECK_EQ(in.lag, 0);
    CHECK_EQ(stats_of(bus).lag_counting, 1);
    uint64_t turns = 0, last_lag = 0;
    for (; turns < 1000 && group_info(bus, "g").lag_counting; turns++) {
        uv_run(&loop, UV_RUN_NOWAIT); /* one loop turn: one slice */
        eb_bus_stats st = stats_of(bus);
        CHECK_EQ(st.lag_walk_turns, turns + 1);
        CHECK(st.lag_walk_reads <= 8 * (turns + 1));
        in = group_info(bus, "g");
        CHECK(in.lag >= last_lag && in.lag <= 160); /* a lower bound, growing */
        last_lag = in.lag;
        if (turns == 9) { /* 80 records read, 40 counted: a pull meanwhile */
            pulled_all p = {0};
            CHECK_OK(eb_bus_pull(bus, "g", 1, "c1", 2, 5, 0, on_pulled_all, NULL, &p));
            CHECK_EQ(p.n, 5);
            CHECK(p.seqs[0] == 2 && p.seqs[4] == 10);
            CHECK_EQ(group_info(bus, "g").lag, 40); /* 35 counted, 5 leased */
        }
    }
    CHECK_EQ(turns, 40);
    CHECK_EQ(stats_of(bus).lag_walk_reads, 320);
    CHECK_EQ(group_info(bus, "g").lag, 160);
    CHECK_EQ(stats_of(bus).lag_counting, 0);

    /* deleted while counted: the walk forgets it; changed: counted again */
    put_filtered(bus, "h", "{\"types\":[\"t.*\"],\"start\":\"earliest\","
                           "\"filter\":{\"data\":{\"n\":[0]}}}");
    uv_run(&loop, UV_RUN_NOWAIT);
    CHECK(group_info(bus, "h").lag_counting);
    done d = {0};
    CHECK(eb_bus_group_delete(bus, "h", on_done, &d) >= 0);
    CHECK_EQ(stats_of(bus).lag_counting, 0);
    put_filtered(bus, "g", "{\"types\":[\"t.*\"],\"filter\":{\"data\":{\"n\":[0]}}}");
    CHECK(group_info(bus, "g").lag_counting);
    for (int i = 0; i < 1000 && group_info(bus, "g").lag_counting; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    CHECK_EQ(group_info(bus, "g").lag, 155 + 5); /* past the cursor (11): 155; 5 leased */

    eb_bus_close(bus);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_OK(uv_loop_close(&loop));
}

/* Settles one id as op (nack: error "bad", dead_letter as given, no delay;
 * extend: 60 s); returns what eb_bus_settle did, the callback into d. */
static int settle_one(eb_bus *bus, const char *id, eb_settle_op op, bool dead, done *d)
{
    eb_str s = {id, strlen(id)};
    uint8_t unknown[1];
    eb_settle_req sr = {op, &s, 1, "bad", 0, 60000, unknown, dead};
    size_t settled = 0;
    int rc = eb_bus_settle(bus, "g", 1, &sr, &settled, on_done, d);
    CHECK_EQ(settled, 1);
    return rc;
}

/* A settle is applied once its records are durable (group_settle.c); a
 * snapshot taken while settles are pending restates their deliveries in
 * flight, then writes the settles' records after that: after a restart
 * the group is as the settles left it (it would hold the acked event as
 * leased, and neither the dead letter nor the failure, without them). */
TEST(bus_snapshot_during_settles)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    eb_bus_opts o = {.data_dir = eb_test_tmpdir(), .engine = &eb_store_log_engine,
                     .fsync = EB_STORE_SYNC_ALWAYS, .dedupe_window_ms = 1000,
                     .meta_snapshot_bytes = 1};
    eb_bus *bus = NULL;
    CHECK_OK(eb_bus_open(&loop, &o, &bus, NULL));
    put_group(&loop, bus, EB_STORE_SYNC_ALWAYS);
    publish(&loop, bus, 4);
    pulled p = {0};
    CHECK_OK(eb_bus_pull(bus, "g", 1, "c1", 2, 4, 0, on_pulled, NULL, &p));
    CHECK_EQ(p.n, 4);
    done d[4] = {{0}};
    CHECK_EQ(settle_one(bus, p.ids[0], EB_SETTLE_ACK, false, &d[0]), 0);
    CHECK_EQ(settle_one(bus, p.ids[1], EB_SETTLE_NACK, true, &d[1]), 0);
    CHECK_EQ(settle_one(bus, p.ids[2], EB_SETTLE_NACK, false, &d[2]), 0);
    CHECK_EQ(settle_one(bus, p.ids[3], EB_SETTLE_EXTEND, false, &d[3]), 0);
    eb_group_info in;
    CHECK_OK(eb_bus_group_info(bus, "g", 1, &in)); /* nothing applied yet */
    CHECK_EQ(in.in_flight, 4);
    CHECK_EQ(in.dead_letters, 0);
    /* pending: settling again is "unknown" */
    eb_str again = {p.ids[0], strlen(p.ids[0])};
    uint8_t unknown[1];
    eb_settle_req sr = {EB_SETTLE_ACK, &again, 1, NULL, -1, 0, unknown};
    size_t settled = 9;
    done dd = {0};
    CHECK_EQ(eb_bus_settle(bus, "g", 1, &sr, &settled, on_done, &dd), 1);
    CHECK_EQ(settled, 0);
    /* as the tick would, its check interval and size limit passed */
    eb__bus_maybe_snapshot(bus, eb__bus_now_us() + 10 * 1000000u);
    CHECK(bus->grp.snapshotting);
    for (int i = 0; i < 4; i++)
        wait_done(&loop, &d[i]);
    CHECK_OK(eb_bus_group_info(bus, "g", 1, &in)); /* applied */
    CHECK_EQ(in.in_flight, 1);
    CHECK_EQ(in.dead_letters, 1);
    CHECK_EQ(in.lag, 2);
    for (int i = 0; i < 10000 && bus->grp.snapshotting; i++)
        uv_run(&loop, UV_RUN_ONCE);
    CHECK(!bus->grp.snapshotting);
    /* no snapshot at the close (as after a SIGKILL): the one above is the
     * state the restart reads */
    bus->grp.snap_bytes = bus->grp.snap_next = UINT64_MAX;
    eb_bus_close(bus);
    uv_run(&loop, UV_RUN_DEFAULT);

    bus = NULL;
    CHECK_OK(eb_bus_open(&loop, &o, &bus, NULL));
    int snaps = 0;
    CHECK_OK(eb_store_scan(eb_meta_store(bus->meta), 1, 1000, count_snaps, &snaps));
    CHECK_EQ(snaps, 1);
    CHECK_OK(eb_bus_group_info(bus, "g", 1, &in));
    CHECK_EQ(in.dead_letters, 1);
    CHECK_EQ(in.lag, 2); /* the failed one and the extended one */
    pulled q = {0};
    CHECK_OK(eb_bus_pull(bus, "g", 1, "c2", 2, 4, 0, on_pulled_any, NULL, &q));
    CHECK_EQ(q.n, 1); /* the failed one again; the extended one is still c1's */
    CHECK_STR(q.ids[0], "m3.2");
    eb_bus_close(bus);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_OK(uv_loop_close(&loop));
}

TEST_MAIN(T(filtered_lag_is_counted_one_slice_per_loop_turn),
          T(deliveries_whose_event_retention_took), T(bus_commands_fsync_always), T(bus_commands_fsync_interval),
          T(bus_snapshot_during_registration_fsync_always),
          T(bus_snapshot_during_registration_fsync_interval), T(bus_snapshot_during_settles))
