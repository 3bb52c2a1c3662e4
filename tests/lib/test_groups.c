/* test_groups.c - libeventbus's consumer-group calls and eb_consume against
 * a real eventbusd: group management, pull/ack/nack/extend, dead letters,
 * replay, stats, and the consumer loop (acks, nacks, extensions for slow
 * handlers, stopping on a signal, surviving a server restart).
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"
#include "eventbus.h"
#include "runner.h"

static uint64_t ms_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

static const char *const ORDER_TYPES[] = {"order.created"};

/* A group on order.created with fast retries (50 ms, no jitter). */
static void make_group(eb_client *c, const char *name, uint32_t max_attempts,
                       uint32_t ack_timeout_ms)
{
    eb_groups_config g = {.size = sizeof g, .types = ORDER_TYPES, .ntypes = 1, .max_attempts = max_attempts,
                          .backoff_initial_ms = 50, .backoff_max_ms = 100, .has_jitter = true,
                          .backoff_jitter = 0, .ack_timeout_ms = ack_timeout_ms};
    bool created = false;
    CHECK_OK(eb_groups_put(c, name, &g, &created, NULL));
    CHECK(created);
}

static void publish_orders(eb_client *c, int from, int n)
{
    for (int i = from; i < from + n; i++) {
        char data[64];
        snprintf(data, sizeof data, "{\"orderId\":\"A-%d\"}", i);
        CHECK_OK(eb_publish(c, "order.created", data, NULL, NULL));
    }
}

static eb_events *pull(eb_client *c, const char *group, uint32_t max, uint32_t wait_ms)
{
    eb_events *l = NULL;
    CHECK_OK(eb_pull(c, group, "test-1", max, wait_ms, &l));
    return l;
}

/* --- management ----------------------------------------------------------- */

/* The group's figures (eb_groups_get), by value: only its numbers and flags
 * are read after the result is freed. */
static eb_groups_info state(eb_client *c, const char *group)
{
    eb_groups_info *g = NULL, v;
    CHECK_OK(eb_groups_get(c, group, &g));
    v = *g;
    v.name = NULL;
    v.types = NULL;
    v.consumers = NULL;
    v.start = v.ordering = NULL;
    eb_result_free(g);
    return v;
}

TEST(group_crud)
{
    eb_test_daemon d;
    eb_client *c = eb_test_up(&d, NULL);
    const char *types[] = {"order.created", "payment.*"};
    eb_groups_config g = {.size = sizeof g, .types = types, .ntypes = 2, .ordering = "key"};
    bool created = false;
    eb_groups_info *gi = NULL;
    CHECK_OK(eb_groups_put(c, "billing", &g, &created, &gi));
    CHECK(created);
    CHECK_EQ(eb_client_error(c)->http_status, 201);
    CHECK(strstr(eb_client_answer(c, NULL), "\"max_attempts\":4") != NULL);
    CHECK_EQ(gi->max_attempts, 4); /* the defaults are filled in */
    CHECK(gi->has_config && gi->ntypes == 2);
    CHECK_STR(gi->types[1], "payment.*");
    CHECK_STR(gi->name, "billing");
    CHECK_EQ(gi->backoff_multiplier, 2);
    eb_result_free(gi);
    g.max_attempts = 7;
    CHECK_OK(eb_groups_put(c, "billing", &g, &created, NULL));
    CHECK(!created);
    CHECK_EQ(eb_client_error(c)->http_status, 200);

    eb_groups_all *all = NULL;
    CHECK_OK(eb_groups_list(c, &all));
    CHECK(strstr(eb_client_answer(c, NULL), "\"billing\"") != NULL);
    CHECK_EQ(all->n, 1);
    CHECK_STR(all->groups[0]->name, "billing");
    CHECK(!all->groups[0]->has_detail);
    eb_result_free(all);
    CHECK_OK(eb_groups_get(c, "billing", &gi));
    CHECK(strstr(eb_client_answer(c, NULL), "\"max_attempts\":7"));
    CHECK_EQ(gi->max_attempts, 7);
    CHECK_STR(gi->ordering, "key");
    CHECK(gi->has_detail);
    eb_result_free(gi);

    /* patch: only the members set change; the rest is kept (a PUT resets it) */
    eb_groups_config ch = {.size = sizeof ch, .ack_timeout_ms = 5000, .backoff_initial_ms = 200};
    CHECK_OK(eb_groups_patch(c, "billing", &ch, &gi));
    CHECK_EQ(gi->ack_timeout_ms, 5000);
    CHECK_EQ(gi->backoff_initial_ms, 200);
    CHECK_EQ(gi->max_attempts, 7);
    CHECK(gi->ntypes == 2);
    CHECK_STR(gi->ordering, "key");
    eb_result_free(gi);
    CHECK_EQ(eb_groups_patch(c, "nope", &ch, &gi), EB_ENOTFOUND);
    CHECK(gi == NULL);
    ch.start = "earliest";
    CHECK_EQ(eb_groups_patch(c, "billing", &ch, NULL), EB_EINVAL); /* refused locally */
    ch = (eb_groups_config){.size = sizeof ch, .ack_timeout_ms = 30000};
    CHECK_OK(eb_groups_patch(c, "billing", &ch, NULL));

    eb_groups_info st = state(c, "billing");
    CHECK(!st.paused);
    CHECK_EQ(st.lag, 0);
    CHECK_EQ(st.ack_timeout_ms, 30000);
    CHECK_OK(eb_groups_pause(c, "billing"));
    st = state(c, "billing");
    CHECK(st.paused);
    CHECK_OK(eb_groups_resume(c, "billing"));
    st = state(c, "billing");
    CHECK(!st.paused);

    CHECK_OK(eb_groups_delete(c, "billing"));
    CHECK_EQ(eb_client_error(c)->http_status, 204);
    CHECK_EQ(eb_groups_get(c, "billing", &gi), EB_ENOTFOUND);
    CHECK(gi == NULL);
    CHECK_EQ(eb_groups_delete(c, "billing"), EB_ENOTFOUND);

    CHECK_EQ(eb_groups_put(c, "bad name!", &g, NULL, NULL), EB_EINVAL);
    CHECK_STR(eb_client_error(c)->server_code, "invalid_request");
    g.ntypes = 0;
    CHECK_EQ(eb_groups_put(c, "empty", &g, NULL, NULL), EB_EINVAL); /* refused locally */
    g = (eb_groups_config){.size = sizeof(eb_groups_config), .types = types, .ntypes = 1, .ordering = "random"};
    CHECK_EQ(eb_groups_put(c, "g", &g, NULL, NULL), EB_EINVAL);
    CHECK(strstr(eb_client_error(c)->details, "ordering") != NULL);
    eb_test_down(&d, c);
}

/* Push delivery's members: sent, read back with the secret masked, patched
 * (the rest kept), removed; a pushed group refuses pulls. No event is
 * published, so nothing is POSTed. */
TEST(push_config)
{
    eb_test_daemon d;
    eb_client *c = eb_test_up(&d, NULL);
    const char *types[] = {"order.created"}, *hdrs[] = {"X-Team: orders"};
    eb_groups_config g = {.size = sizeof g, .types = types, .ntypes = 1,
                          .push_url = "https://hooks.example.com/orders",
                          .push_secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                          .push_headers = hdrs, .npush_headers = 1, .push_batch = 10,
                          .push_format = "cloudevents"};
    eb_groups_info *gi = NULL;
    CHECK_OK(eb_groups_put(c, "hooks", &g, NULL, &gi));
    CHECK(gi->has_push);
    CHECK_STR(gi->push_url, "https://hooks.example.com/orders");
    CHECK_STR(gi->push_secret, "whsec_\xe2\x80\xa6LaSw");
    CHECK(strstr(eb_client_answer(c, NULL), "MfKQ9r8") == NULL);
    CHECK_EQ(gi->push_batch, 10);
    CHECK_EQ(gi->push_timeout_ms, 10000); /* the server's default */
    CHECK_STR(gi->push_format, "cloudevents");
    eb_result_free(gi);
    eb_groups_config ch = {.size = sizeof ch, .push_timeout_ms = 2500};
    CHECK_OK(eb_groups_patch(c, "hooks", &ch, &gi));
    CHECK_EQ(gi->push_timeout_ms, 2500);
    CHECK_EQ(gi->push_batch, 10);
    eb_result_free(gi);
    CHECK_OK(eb_groups_get(c, "hooks", &gi));
    CHECK_STR(gi->push_circuit, "closed");
    eb_result_free(gi);
    eb_events *evs = NULL;
    CHECK_EQ(eb_pull(c, "hooks", "c1", 1, 0, &evs), EB_ECONFLICT);
    CHECK(evs == NULL);
    CHECK_STR(eb_client_error(c)->server_code, "push_group");
    ch = (eb_groups_config){.size = sizeof ch, .push_remove = true};
    CHECK_OK(eb_groups_patch(c, "hooks", &ch, &gi));
    CHECK(!gi->has_push);
    eb_result_free(gi);
    eb_test_down(&d, c);
}

/* --- delivery ---------------------------------------------------------------- */

TEST(pull_and_ack)
{
    eb_test_daemon d;
    eb_client *c = eb_test_up(&d, NULL);
    make_group(c, "inventory", 4, 30000);
    publish_orders(c, 1, 3);
    CHECK_OK(eb_publish(c, "user.created", "{}", NULL, NULL)); /* not the group's type */
    eb_events *l = pull(c, "inventory", 10, 2000);
    CHECK_EQ(eb_events_count(l), 3);
    const char *ids[3];
    for (size_t i = 0; i < 3; i++) {
        const eb_event *e = eb_events_at(l, i);
        char want[64];
        snprintf(want, sizeof want, "{\"orderId\":\"A-%zu\"}", i + 1);
        CHECK_STR(e->data, want);
        CHECK_STR(e->type, "order.created");
        CHECK(e->delivery_id && *e->delivery_id);
        CHECK_EQ(e->attempt, 1);
        CHECK(e->deadline != NULL);
        ids[i] = e->delivery_id;
    }
    eb_groups_info st = state(c, "inventory");
    CHECK_EQ(st.in_flight, 3);
    eb_settle_result r = {.size = sizeof r};
    CHECK_OK(eb_ack(c, "inventory", ids, 3, &r));
    CHECK_EQ(r.done, 3);
    CHECK_EQ(r.unknown, 0);
    CHECK_OK(eb_ack(c, "inventory", ids, 3, &r));
    CHECK_EQ(r.done, 0);
    CHECK_EQ(r.unknown, 3);
    eb_events_free(l);
    st = state(c, "inventory");
    CHECK_EQ(st.in_flight, 0);
    CHECK_EQ(st.lag, 0);
    CHECK_EQ(eb_pull(c, "nope", "x", 1, 0, &l), EB_ENOTFOUND);
    eb_test_down(&d, c);
}

typedef struct later {
    const char *url;
    unsigned    delay_ms;
} later;

static void *publish_later(void *arg)
{
    later *p = arg;
    sleep_ms(p->delay_ms);
    eb_client *c = eb_test_client(p->url);
    eb_publish(c, "order.created", "{\"orderId\":\"late\"}", NULL, NULL);
    eb_client_free(c);
    return NULL;
}

TEST(long_poll)
{
    eb_test_daemon d;
    eb_client *c = eb_test_up(&d, NULL);
    make_group(c, "inventory", 4, 30000);
    uint64_t t0 = ms_now();
    eb_events *l = pull(c, "inventory", 10, 300);
    CHECK_EQ(eb_events_count(l), 0);
    CHECK_INT(ms_now() - t0, >=, 250);
    eb_events_free(l);

    later p = {d.url, 300};
    pthread_t t;
    CHECK(pthread_create(&t, NULL, publish_later, &p) == 0);
    t0 = ms_now();
    l = pull(c, "inventory", 10, 10000);
    uint64_t took = ms_now() - t0;
    pthread_join(t, NULL);
    CHECK_EQ(eb_events_count(l), 1);
    CHECK_STR(eb_events_at(l, 0)->data, "{\"orderId\":\"late\"}");
    CHECK_INT(took, <, 5000); /* answered when the event came, not at the end of the wait */
    eb_events_free(l);
    eb_test_down(&d, c);
}

TEST(nack_retry_dead_letter_redrive_purge)
{
    eb_test_daemon d;
    eb_client *c = eb_test_up(&d, NULL);
    make_group(c, "notify", 2, 30000);
    publish_orders(c, 1, 1);
    eb_events *l = pull(c, "notify", 1, 2000);
    CHECK_EQ(eb_events_count(l), 1);
    const char *id = eb_events_at(l, 0)->delivery_id;
    eb_settle_result r = {.size = sizeof r};
    CHECK_OK(eb_nack(c, "notify", &id, 1, "smtp: bad address", 0, &r));
    CHECK_EQ(r.done, 1);
    eb_events_free(l);
    l = pull(c, "notify", 1, 3000);
    CHECK_EQ(eb_events_count(l), 1);
    CHECK_EQ(eb_events_at(l, 0)->attempt, 2);
    id = eb_events_at(l, 0)->delivery_id;
    CHECK_OK(eb_nack(c, "notify", &id, 1, "smtp: bad address", -1, &r));
    eb_events_free(l);

    /* max_attempts 2 reached: dead-lettered */
    eb_groups_info st = state(c, "notify");
    CHECK_EQ(st.dead_letters, 1);
    CHECK_OK(eb_dlq_list(c, "notify", 10, NULL, &l));
    CHECK_EQ(eb_events_count(l), 1);
    const eb_event *e = eb_events_at(l, 0);
    CHECK_STR(e->error, "smtp: bad address");
    CHECK_EQ(e->attempts, 2);
    CHECK_STR(e->data, "{\"orderId\":\"A-1\"}");
    CHECK(e->failed_at != NULL);
    char event_id[160];
    snprintf(event_id, sizeof event_id, "%s", e->id);
    eb_events_free(l);

    const char *eid = event_id;
    uint64_t n = 0;
    CHECK_OK(eb_dlq_redrive(c, "notify", &eid, 1, &n));
    CHECK_EQ(n, 1);
    l = pull(c, "notify", 1, 3000);
    CHECK_EQ(eb_events_count(l), 1);
    CHECK_STR(eb_events_at(l, 0)->id, event_id);
    id = eb_events_at(l, 0)->delivery_id;
    CHECK_OK(eb_ack(c, "notify", &id, 1, &r));
    CHECK_EQ(r.done, 1);
    eb_events_free(l);
    st = state(c, "notify");
    CHECK_EQ(st.dead_letters, 0);

    /* two more dead letters: purge one by id, then the rest */
    publish_orders(c, 2, 2);
    for (int round = 0; round < 2; round++) {
        l = pull(c, "notify", 10, 3000);
        for (size_t i = 0; i < eb_events_count(l); i++) {
            id = eb_events_at(l, i)->delivery_id;
            CHECK_OK(eb_nack(c, "notify", &id, 1, "x", 0, NULL));
        }
        CHECK_EQ(eb_events_count(l), 2);
        eb_events_free(l);
    }
    CHECK_OK(eb_dlq_list(c, "notify", 1, NULL, &l));
    CHECK_EQ(eb_events_count(l), 1);
    CHECK(eb_events_next(l) != NULL); /* a second page exists */
    snprintf(event_id, sizeof event_id, "%s", eb_events_at(l, 0)->id);
    eb_events *l2;
    CHECK_OK(eb_dlq_list(c, "notify", 1, eb_events_next(l), &l2));
    CHECK_EQ(eb_events_count(l2), 1);
    CHECK(strcmp(eb_events_at(l2, 0)->id, event_id) != 0);
    eb_events_free(l2);
    eb_events_free(l);
    CHECK_OK(eb_dlq_purge(c, "notify", event_id, &n));
    CHECK_EQ(n, 1);
    CHECK_OK(eb_dlq_purge(c, "notify", NULL, &n));
    CHECK_EQ(n, 1);
    st = state(c, "notify");
    CHECK_EQ(st.dead_letters, 0);
    eb_test_down(&d, c);
}

TEST(extend_and_expiry)
{
    eb_test_daemon d;
    eb_client *c = eb_test_up(&d, NULL);
    make_group(c, "slow", 4, 500);
    publish_orders(c, 1, 2);
    eb_events *l = pull(c, "slow", 2, 2000);
    CHECK_EQ(eb_events_count(l), 2);
    const char *keep = eb_events_at(l, 0)->delivery_id, *lapse = eb_events_at(l, 1)->delivery_id;
    eb_settle_result r = {.size = sizeof r};
    CHECK_OK(eb_extend(c, "slow", &keep, 1, 3000, &r));
    CHECK_EQ(r.done, 1);
    sleep_ms(1200); /* past the 500 ms lease of the one not extended */
    CHECK_OK(eb_ack(c, "slow", &keep, 1, &r));
    CHECK_EQ(r.done, 1);
    CHECK_OK(eb_ack(c, "slow", &lapse, 1, &r));
    CHECK_EQ(r.unknown, 1); /* its lease had expired */
    eb_events_free(l);
    l = pull(c, "slow", 2, 3000);
    CHECK_EQ(eb_events_count(l), 1);
    CHECK_STR(eb_events_at(l, 0)->data, "{\"orderId\":\"A-2\"}");
    CHECK_EQ(eb_events_at(l, 0)->attempt, 2);
    eb_events_free(l);
    eb_test_down(&d, c);
}

TEST(replay_and_stats)
{
    eb_test_daemon d;
    static const char *const extra[] = {"--history-interval", "100ms", NULL};
    eb_client *c = eb_test_up(&d, extra);
    publish_orders(c, 1, 3);
    make_group(c, "analytics", 4, 30000); /* starts at the latest: sees none of them */
    eb_events *l = pull(c, "analytics", 10, 200);
    CHECK_EQ(eb_events_count(l), 0);
    eb_events_free(l);
    uint64_t requeued = 0, expired = 9;
    /* a dry run counts and changes nothing */
    eb_replay_opts ro = {.size = sizeof ro, .since = "2h", .dry_run = true};
    CHECK_OK(eb_replay(c, "analytics", &ro, &requeued, &expired));
    CHECK_EQ(requeued, 3);
    l = pull(c, "analytics", 10, 200);
    CHECK_EQ(eb_events_count(l), 0);
    eb_events_free(l);
    ro = (eb_replay_opts){.size = sizeof ro, .since = "2h"};
    CHECK_OK(eb_replay(c, "analytics", &ro, &requeued, &expired));
    CHECK_EQ(requeued, 3);
    CHECK_EQ(expired, 0);
    l = pull(c, "analytics", 10, 2000);
    CHECK_EQ(eb_events_count(l), 3);
    const char *ids[3];
    for (size_t i = 0; i < 3; i++)
        ids[i] = eb_events_at(l, i)->delivery_id;
    CHECK_OK(eb_ack(c, "analytics", ids, 3, NULL));
    uint64_t first = eb_events_at(l, 1)->seq;
    eb_events_free(l);
    /* the group's history (a ring since its first activity, the deliveries
     * above): samples every 100 ms, oldest first */
    eb_groups_samples *h = NULL;
    for (int i = 0; i < 100; i++) {
        CHECK_OK(eb_groups_history(c, "analytics", &h));
        if (h->n >= 2 && h->samples[h->n - 1]->lag == 0) /* one taken after the ack */
            break;
        eb_result_free(h);
        h = NULL;
        usleep(20000);
    }
    CHECK(h != NULL);
    CHECK_EQ(h->interval_ms, 100);
    CHECK(h->n >= 2 && h->n <= 720);
    CHECK(strcmp(h->samples[0]->ts, h->samples[h->n - 1]->ts) < 0);
    CHECK_EQ(h->samples[h->n - 1]->lag, 0);
    eb_result_free(h);
    CHECK_EQ(eb_groups_history(c, "nope", &h), EB_ENOTFOUND);
    CHECK(h == NULL);
    ro = (eb_replay_opts){.size = sizeof(eb_replay_opts), .since_seq = first};
    CHECK_OK(eb_replay(c, "analytics", &ro, &requeued, NULL));
    CHECK_EQ(requeued, 2);
    CHECK_EQ(eb_replay(c, "analytics", &(eb_replay_opts){.size = sizeof(eb_replay_opts)}, NULL, NULL), EB_EINVAL);

    eb_stats_info *stats = NULL;
    CHECK_OK(eb_stats(c, &stats));
    const char *raw = eb_client_answer(c, NULL);
    CHECK(strstr(raw, "\"analytics\"") && strstr(raw, "\"head_seq\":4")); /* the next seq */
    CHECK(strstr(raw, "\"replayed\"") != NULL);
    CHECK_EQ(stats->head_seq, 4);
    CHECK_EQ(stats->ngroups, 1);
    CHECK_STR(stats->groups[0]->name, "analytics");
    CHECK(stats->groups[0]->has_detail);
    CHECK_INT(stats->groups[0]->counters.replayed, >=, 3);
    eb_result_free(stats);
    eb_test_down(&d, c);
}

/* --- the consumer loop ---------------------------------------------------------- */

typedef struct seen {
    int              calls;
    int              fail_bad;   /* fail events whose data has "bad" */
    int              dead_bad;   /* ... as not retryable (EB_HANDLER_DEAD_LETTER) */
    unsigned         sleep_ms;   /* per call */
    int              stop_after; /* raise *stop after this many calls (0: never) */
    volatile sig_atomic_t *stop;
    char             log[2048];  /* "A-1 A-2 ..." */
} seen;

static int handler(const eb_event *ev, void *arg, char *err, size_t cap)
{
    seen *s = arg;
    s->calls++;
    size_t n = strlen(s->log);
    snprintf(s->log + n, sizeof s->log - n, "%s%.*s", n ? " " : "", (int)ev->data_len, ev->data);
    if (s->sleep_ms)
        sleep_ms(s->sleep_ms);
    if (s->stop_after && s->calls >= s->stop_after)
        *s->stop = 1;
    if (s->fail_bad && strstr(ev->data, "bad")) {
        snprintf(err, cap, "malformed email in %s", ev->id);
        return s->dead_bad ? EB_HANDLER_DEAD_LETTER : EB_EINVAL;
    }
    return 0;
}

TEST(consume_acks_and_dead_letters)
{
    eb_test_daemon d;
    eb_client *c = eb_test_up(&d, NULL);
    make_group(c, "notify", 2, 30000);
    publish_orders(c, 1, 2);
    CHECK_OK(eb_publish(c, "order.created", "{\"orderId\":\"bad\"}", NULL, NULL));
    publish_orders(c, 3, 1);
    seen s = {.fail_bad = 1};
    eb_consume_stats st = {.size = sizeof st};
    eb_consume_opts o = {.size = sizeof o, .arg = &s, .idle_ms = 1500, .wait_ms = 500, .stats = &st};
    CHECK_OK(eb_consume(c, "notify", "notify-1", handler, &o));
    CHECK_EQ(st.handled, 5); /* 3 good + the bad one twice */
    CHECK_EQ(st.acked, 3);
    CHECK_EQ(st.nacked, 2);
    CHECK_EQ(st.lost, 0);
    CHECK_EQ(s.calls, 5);
    eb_events *l;
    CHECK_OK(eb_dlq_list(c, "notify", 10, NULL, &l));
    CHECK_EQ(eb_events_count(l), 1);
    CHECK(strstr(eb_events_at(l, 0)->error, "malformed email in") != NULL);
    CHECK_EQ(eb_events_at(l, 0)->attempts, 2);
    eb_events_free(l);
    eb_groups_info gs = state(c, "notify");
    CHECK_EQ(gs.in_flight + gs.lag + gs.retry_scheduled, 0);
    eb_test_down(&d, c);
}

/* Non-retryable failures: eb_nack_dead_letter, and a handler returning
 * EB_HANDLER_DEAD_LETTER, dead-letter at once whatever attempts remain. */
TEST(dead_letter_at_once)
{
    eb_test_daemon d;
    eb_client *c = eb_test_up(&d, NULL);
    make_group(c, "notify", 5, 30000);
    publish_orders(c, 1, 1);
    eb_events *l = pull(c, "notify", 1, 2000);
    CHECK_EQ(eb_events_count(l), 1);
    const char *id = eb_events_at(l, 0)->delivery_id;
    eb_settle_result r = {.size = sizeof r};
    CHECK_OK(eb_nack_dead_letter(c, "notify", &id, 1, "schema: no email", &r));
    CHECK_EQ(r.done, 1);
    eb_events_free(l);
    CHECK_EQ(state(c, "notify").dead_letters, 1);

    CHECK_OK(eb_publish(c, "order.created", "{\"orderId\":\"bad\"}", NULL, NULL));
    publish_orders(c, 2, 1);
    seen s = {.fail_bad = 1, .dead_bad = 1};
    eb_consume_stats st = {.size = sizeof st};
    eb_consume_opts o = {.size = sizeof o, .arg = &s, .idle_ms = 1000, .wait_ms = 500, .stats = &st};
    CHECK_OK(eb_consume(c, "notify", "notify-1", handler, &o));
    CHECK_EQ(st.handled, 2); /* the bad one once: no retry */
    CHECK_EQ(st.acked, 1);
    CHECK_EQ(st.nacked, 0);
    CHECK_EQ(st.dead_lettered, 1);
    CHECK_OK(eb_dlq_list(c, "notify", 10, NULL, &l));
    CHECK_EQ(eb_events_count(l), 2);
    CHECK_STR(eb_events_at(l, 0)->error, "schema: no email");
    CHECK(strstr(eb_events_at(l, 1)->error, "malformed email in") != NULL);
    CHECK_EQ(eb_events_at(l, 1)->attempts, 1);
    /* the failure's history: one entry, with its attempt and consumer */
    const eb_event *e = eb_events_at(l, 1);
    CHECK_EQ(e->nerrors, 1);
    CHECK_EQ(e->errors[0]->attempt, 1);
    CHECK_STR(e->errors[0]->consumer, "notify-1");
    CHECK_STR(e->errors[0]->error, e->error);
    CHECK_STR(e->first_failed_at, e->failed_at);
    eb_events_free(l);
    eb_test_down(&d, c);
}

/* Flow control through the library: the config goes out and comes back,
 * and a pull gets no more than max_in_flight allows. */
TEST(flow_control)
{
    eb_test_daemon d;
    eb_client *c = eb_test_up(&d, NULL);
    eb_groups_config g = {.size = sizeof g, .types = ORDER_TYPES, .ntypes = 1,
                          .max_in_flight = 2, .rate_limit = 1000,
                          .filter = "{\"data\": {\"orderId\": [{\"prefix\": \"A-\"}]}}"};
    eb_groups_info *out = NULL;
    CHECK_OK(eb_groups_put(c, "fc", &g, NULL, &out));
    CHECK_EQ(out->max_in_flight, 2);
    CHECK(out->rate_limit == 1000);
    CHECK_STR(out->filter, "{\"data\":{\"orderId\":[{\"prefix\":\"A-\"}]}}");
    eb_result_free(out);
    eb_groups_config bad = g;
    bad.filter = "{\"data\": ";
    CHECK_EQ(eb_groups_put(c, "fc", &bad, NULL, NULL), EB_EINVAL); /* not JSON: not sent */
    CHECK_EQ(eb_client_error(c)->http_status, 0);
    bad.filter = "{\"data\": {\"x\": []}}";
    CHECK_EQ(eb_groups_put(c, "fc", &bad, NULL, NULL), EB_EINVAL);
    CHECK_EQ(eb_client_error(c)->http_status, 400);
    CHECK(strstr(eb_client_error(c)->message, "/filter/data/x") != NULL);
    publish_orders(c, 1, 5);
    eb_events *l = pull(c, "fc", 5, 2000);
    CHECK_EQ(eb_events_count(l), 2);
    eb_events_free(l);
    l = pull(c, "fc", 5, 0);
    CHECK_EQ(eb_events_count(l), 0);
    eb_events_free(l);
    eb_groups_info st = state(c, "fc");
    CHECK_EQ(st.in_flight, 2);
    CHECK(st.throttled >= 1);
    CHECK_EQ(st.max_in_flight, 2);
    eb_test_down(&d, c);
}

TEST(consume_extends_slow_handler)
{
    eb_test_daemon d;
    eb_client *c = eb_test_up(&d, NULL);
    make_group(c, "slow", 4, 1500);
    publish_orders(c, 1, 2);
    seen s = {.sleep_ms = 2000};
    eb_consume_stats st = {.size = sizeof st};
    eb_consume_opts o = {.size = sizeof o, .arg = &s, .max_events = 2, .wait_ms = 2000, .stats = &st};
    CHECK_OK(eb_consume(c, "slow", "slow-1", handler, &o));
    CHECK_EQ(st.handled, 2);
    CHECK_EQ(st.acked, 2);  /* both leases held over 4 s against a 1.5 s timeout */
    CHECK_EQ(st.lost, 0);
    CHECK_INT(st.extended, >=, 2);
    CHECK_STR(s.log, "{\"orderId\":\"A-1\"} {\"orderId\":\"A-2\"}");
    eb_groups_info gs = state(c, "slow");
    CHECK_EQ(gs.in_flight + gs.retry_scheduled, 0);

    /* without extensions the same handler loses its lease */
    publish_orders(c, 3, 1);
    s = (seen){.sleep_ms = 2500};
    o = (eb_consume_opts){.size = sizeof(eb_consume_opts), .arg = &s, .max_events = 1, .no_extend = true, .stats = &st};
    CHECK_OK(eb_consume(c, "slow", "slow-1", handler, &o));
    CHECK_EQ(st.lost, 1);
    eb_test_down(&d, c);
}

static volatile sig_atomic_t stop_flag;

static void on_usr1(int sig)
{
    (void)sig;
    stop_flag = 1;
}

TEST(consume_stops_on_signal)
{
    eb_test_daemon d;
    eb_client *c = eb_test_up(&d, NULL);
    make_group(c, "g", 4, 30000);
    eb_test_sigusr1_after(300, on_usr1);
    seen s = {0};
    eb_consume_opts o = {.size = sizeof o, .arg = &s, .wait_ms = 30000, .stop = &stop_flag};
    uint64_t t0 = ms_now();
    CHECK_OK(eb_consume(c, "g", "g-1", handler, &o));
    CHECK_INT(ms_now() - t0, <, 2000); /* the 30 s long poll was cut short */
    CHECK_EQ(s.calls, 0);
    /* the client is still usable afterwards */
    stop_flag = 0;
    CHECK_OK(eb_publish(c, "order.created", "{}", NULL, NULL));
    eb_test_down(&d, c);
}

TEST(consume_stop_releases_the_rest)
{
    eb_test_daemon d;
    eb_client *c = eb_test_up(&d, NULL);
    make_group(c, "g", 4, 30000);
    publish_orders(c, 1, 5);
    volatile sig_atomic_t stop = 0;
    seen s = {.stop_after = 2, .stop = &stop};
    eb_consume_stats st = {.size = sizeof st};
    eb_consume_opts o = {.size = sizeof o, .arg = &s, .max = 10, .wait_ms = 2000, .stop = &stop, .stats = &st};
    CHECK_OK(eb_consume(c, "g", "g-1", handler, &o));
    CHECK_EQ(st.handled, 2);
    CHECK_EQ(st.acked, 2);
    CHECK_EQ(st.released, 3);
    /* released at once (delay 0): another consumer gets them without waiting */
    eb_events *l = NULL;
    CHECK_OK(eb_pull(c, "g", "g-2", 10, 2000, &l));
    CHECK_EQ(eb_events_count(l), 3);
    CHECK_STR(eb_events_at(l, 0)->data, "{\"orderId\":\"A-3\"}");
    eb_events_free(l);
    eb_test_down(&d, c);
}

TEST(consume_max_events_leases_no_more)
{
    eb_test_daemon d;
    eb_client *c = eb_test_up(&d, NULL);
    make_group(c, "g", 4, 30000);
    publish_orders(c, 1, 5);
    seen s = {0};
    eb_consume_stats st = {.size = sizeof st};
    eb_consume_opts o = {.size = sizeof o, .arg = &s, .max = 10, .max_events = 2, .wait_ms = 2000, .stats = &st};
    CHECK_OK(eb_consume(c, "g", "g-1", handler, &o));
    CHECK_EQ(st.handled, 2);
    CHECK_EQ(st.released, 0); /* only 2 were leased */
    eb_events *l = NULL;
    CHECK_OK(eb_pull(c, "g", "g-2", 10, 2000, &l));
    CHECK_EQ(eb_events_count(l), 3);
    CHECK_EQ(eb_events_at(l, 0)->attempt, 1);
    eb_events_free(l);
    eb_test_down(&d, c);
}

TEST(consume_refusals)
{
    eb_test_daemon d;
    eb_client *c = eb_test_up(&d, NULL);
    seen s = {0};
    eb_consume_opts o = {.size = sizeof o, .arg = &s, .wait_ms = 100};
    CHECK_EQ(eb_consume(c, "missing", "x", handler, &o), EB_ENOTFOUND);
    CHECK_EQ(eb_consume(c, "missing", "", handler, &o), EB_EINVAL);
    CHECK_EQ(eb_consume(c, "missing", "x", NULL, &o), EB_EINVAL);
    eb_test_down(&d, c);
}

typedef struct consumer_thread {
    const char      *url;
    seen             s;
    eb_consume_stats st;
    int              rc;
} consumer_thread;

static void *consume_main(void *arg)
{
    consumer_thread *t = arg;
    eb_client *c = eb_test_client(t->url);
    eb_consume_opts o = {.size = sizeof o, .arg = &t->s, .wait_ms = 500, .max_events = 2, .stats = &t->st,
                         .retry_max_ms = 20000};
    t->rc = eb_consume(c, "g", "g-1", handler, &o);
    eb_client_free(c);
    return NULL;
}

TEST(consume_survives_server_restart)
{
    eb_test_daemon d;
    eb_client *c = eb_test_up(&d, NULL);
    make_group(c, "g", 4, 30000);
    publish_orders(c, 1, 1);
    consumer_thread ct = {.url = d.url, .st = {.size = sizeof ct.st}};
    pthread_t t;
    CHECK(pthread_create(&t, NULL, consume_main, &ct) == 0);
    uint64_t t0 = ms_now();
    while (ct.s.calls < 1 && ms_now() - t0 < 5000)
        sleep_ms(20);
    CHECK_EQ(ct.s.calls, 1);
    eb_test_daemon_restart(&d); /* the loop sees failures and retries */
    publish_orders(c, 2, 1);
    pthread_join(t, NULL);
    CHECK_OK(ct.rc);
    CHECK_EQ(ct.st.handled, 2);
    CHECK(strstr(ct.s.log, "A-2") != NULL);
    eb_test_down(&d, c);
}

TEST(delayed_publish)
{
    eb_test_daemon d;
    eb_client *c = eb_test_up(&d, NULL);
    make_group(c, "g", 4, 30000);
    eb_publish_opts o = {.size = sizeof o, .delay = "800ms"};
    eb_publish_result r = {.size = sizeof r};
    uint64_t t0 = ms_now();
    CHECK_OK(eb_publish(c, "order.created", "{\"n\":1}", &o, &r));
    CHECK(r.deliver_at[0] != '\0');
    eb_events *l = pull(c, "g", 10, 0);
    CHECK_EQ(eb_events_count(l), 0); /* not before its time */
    eb_events_free(l);
    l = pull(c, "g", 10, 5000);
    CHECK_EQ(eb_events_count(l), 1);
    CHECK(ms_now() - t0 >= 750);
    CHECK_STR(eb_events_at(l, 0)->deliver_at, r.deliver_at);
    CHECK(eb_events_at(l, 0)->published_seq == r.seq);
    eb_events_free(l);
    eb_publish_opts both = {.size = sizeof both, .delay = "1s", .deliver_at = "2030-01-01T00:00:00Z"};
    CHECK_EQ(eb_publish(c, "order.created", "{}", &both, &r), EB_EINVAL);
    CHECK(strstr(eb_client_error(c)->details, "/deliver_at") != NULL);
    eb_test_down(&d, c);
}

TEST_MAIN(T(group_crud), T(push_config), T(pull_and_ack), T(long_poll), T(nack_retry_dead_letter_redrive_purge),
          T(extend_and_expiry), T(replay_and_stats), T(consume_acks_and_dead_letters), T(dead_letter_at_once), T(flow_control),
          T(consume_extends_slow_handler), T(consume_stops_on_signal),
          T(consume_stop_releases_the_rest), T(consume_max_events_leases_no_more),
          T(consume_refusals),
          T(consume_survives_server_restart), T(delayed_publish))
