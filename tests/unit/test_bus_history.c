/* test_bus_history.c - the per-group history ring (src/bus/history.c) on a
 * real bus: samples are taken once per interval however often the timer
 * calls, the ring keeps the last EB_HISTORY_SAMPLES oldest first, counter
 * fields are the change over each interval, and a deleted group's history
 * goes with it, an idle group has no ring until something happens in it,
 * and at most history_groups rings exist. The sampling is driven by
 * calling the timer's hook with a made-up clock, so 800 intervals take no
 * time. */
#include "runner.h"

#include <string.h>
#include <uv.h>

#include "bus/bus_int.h"
#include "eventbus/err.h"
#include "store/store_log.h"

static void on_done(void *arg, int status)
{
    int *calls = arg;
    (void)status;
    ++*calls;
}

static void run_until(uv_loop_t *loop, int *calls)
{
    for (int i = 0; i < 10000 && !*calls; i++)
        uv_run(loop, UV_RUN_ONCE);
}

static void put_group(uv_loop_t *loop, eb_bus *bus, const char *name)
{
    eb_json_doc *doc = eb_json_doc_new();
    eb_json_error je;
    const char *text = "{\"types\":[\"t.*\"]}";
    CHECK_OK(eb_json_parse(doc, text, strlen(text), NULL, &je));
    eb_group_cfg cfg;
    eb_field_error fe;
    CHECK_OK(eb_group_cfg_parse(eb_json_root(doc), &cfg, &fe));
    bool created;
    int calls = 0;
    int rc = eb_bus_group_put(bus, name, &cfg, &created, on_done, &calls);
    eb_group_cfg_free(&cfg);
    if (rc == 0)
        run_until(loop, &calls);
    eb_json_doc_free(doc);
}

static void on_published(void *arg, int status, const eb_pub_result *res, size_t n)
{
    int *calls = arg;
    (void)res;
    (void)n;
    CHECK_OK(status);
    ++*calls;
}

/* One event of type t.x (every group here wants t.*): lag 1 for each. */
static void publish_one(uv_loop_t *loop, eb_bus *bus)
{
    eb_event_in ev = {.type = {"t.x", 3}, .data_raw = {"{}", 2}};
    eb_pub_errors errs;
    eb_pub_errors_init(&errs);
    int calls = 0;
    CHECK_OK(eb_bus_publish(bus, &ev, 1, &errs, on_published, &calls));
    run_until(loop, &calls);
    eb_pub_errors_free(&errs);
}

typedef struct got {
    size_t          n;
    eb_group_sample first, last;
    bool            ordered;
} got;

static void on_sample(void *arg, const eb_group_sample *s)
{
    got *g = arg;
    if (g->n == 0)
        g->first = *s;
    else if (s->ts_us <= g->last.ts_us)
        g->ordered = false;
    g->last = *s;
    g->n++;
}

TEST(history_ring)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    eb_bus_opts o = {.data_dir = eb_test_tmpdir(), .engine = &eb_store_log_engine,
                     .fsync = EB_STORE_SYNC_ALWAYS, .dedupe_window_ms = 1000,
                     .history_interval_ms = 5000};
    eb_bus *bus = NULL;
    CHECK_OK(eb_bus_open(&loop, &o, &bus, NULL));
    put_group(&loop, bus, "g");

    uint32_t interval = 0;
    got g = {.ordered = true};
    CHECK_EQ(eb_bus_group_history(bus, "nope", 4, &interval, on_sample, &g), EB_ENOTFOUND);
    /* the clock far ahead of the real one, so the bus's own timer never samples */
    uint64_t t = eb__bus_now_us() + 100000000000ull;
    eb__bus_history_tick(bus, t); /* idle: no ring, no samples */
    t += 5000000;
    CHECK_OK(eb_bus_group_history(bus, "g", 1, &interval, on_sample, &g));
    CHECK_EQ(g.n, 0);
    CHECK_EQ(bus->grp.history.len, 0);
    publish_one(&loop, bus); /* activity: lag 1 */
    for (int i = 0; i < 800; i++) {
        eb__bus_history_tick(bus, t);
        eb__bus_history_tick(bus, t + 1000000); /* within the interval: no sample */
        t += 5000000;
    }
    CHECK_OK(eb_bus_group_history(bus, "g", 1, &interval, on_sample, &g));
    CHECK_EQ(interval, 5000);
    CHECK_EQ(g.n, EB_HISTORY_SAMPLES);   /* bounded: the newest 720 of 800 */
    CHECK(g.ordered);                    /* oldest first */
    CHECK_EQ((g.last.ts_us - g.first.ts_us) / 1000000, (EB_HISTORY_SAMPLES - 1) * 5);
    CHECK_EQ(g.last.ts_us / 1000000, (t - 5000000) / 1000000);
    CHECK_EQ(g.last.lag, 1);

    /* a deleted group loses its history; the same name starts afresh */
    int calls = 0;
    if (eb_bus_group_delete(bus, "g", on_done, &calls) == 0)
        run_until(&loop, &calls);
    CHECK_EQ(eb_bus_group_history(bus, "g", 1, &interval, on_sample, &g), EB_ENOTFOUND);
    put_group(&loop, bus, "g");
    got h = {.ordered = true};
    CHECK_OK(eb_bus_group_history(bus, "g", 1, &interval, on_sample, &h));
    CHECK_EQ(h.n, 0);
    publish_one(&loop, bus);
    eb__bus_history_tick(bus, t + 5000000);
    CHECK_OK(eb_bus_group_history(bus, "g", 1, &interval, on_sample, &h));
    CHECK_EQ(h.n, 1);

    eb_bus_close(bus);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_OK(uv_loop_close(&loop));
}

/* history_groups bounds the rings: of 5 active groups, 2 get one; the
 * others answer no samples, and a ring freed by a deletion goes to the next
 * group that needs one. */
TEST(history_groups_bound)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    eb_bus_opts o = {.data_dir = eb_test_tmpdir(), .engine = &eb_store_log_engine,
                     .fsync = EB_STORE_SYNC_ALWAYS, .dedupe_window_ms = 1000,
                     .history_interval_ms = 5000, .history_groups = 2};
    eb_bus *bus = NULL;
    CHECK_OK(eb_bus_open(&loop, &o, &bus, NULL));
    const char *names[] = {"a", "b", "c", "d", "e"};
    for (int i = 0; i < 5; i++)
        put_group(&loop, bus, names[i]);
    publish_one(&loop, bus); /* every group: lag 1 */
    uint64_t t = eb__bus_now_us() + 100000000000ull;
    for (int i = 0; i < 3; i++, t += 5000000)
        eb__bus_history_tick(bus, t);
    CHECK_EQ(bus->grp.history.len, 2);
    int with = 0, deleted = -1;
    uint32_t interval;
    for (int i = 0; i < 5; i++) {
        got g = {.ordered = true};
        CHECK_OK(eb_bus_group_history(bus, names[i], 1, &interval, on_sample, &g));
        CHECK(g.n == 0 || g.n == 3);
        if (g.n) {
            with++;
            deleted = i;
        }
    }
    CHECK_EQ(with, 2);
    int calls = 0;
    if (eb_bus_group_delete(bus, names[deleted], on_done, &calls) == 0)
        run_until(&loop, &calls);
    eb__bus_history_tick(bus, t);
    CHECK_EQ(bus->grp.history.len, 2); /* the freed ring went to another group */
    eb_bus_close(bus);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_OK(uv_loop_close(&loop));
}

TEST_MAIN(T(history_ring), T(history_groups_bound))
