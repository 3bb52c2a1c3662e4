/* test_leader.c - libeventbus prefers the leader among its URLs: real
 * eventbusd nodes on one PostgreSQL database ($EB_TEST_PG_URI, made by
 * tests/tools/pgcluster.py; skipped without it). A follower relays a
 * request to the leader and names it in the answer (Eventbus-Leader); a
 * client given [follower, leader] sends its next requests to the leader:
 * the follower's `forwarded` count (GET /v1/cluster) stops growing while
 * the client goes on publishing, pulling and acking. A leader that is not
 * in the client's list is never contacted (the follower keeps relaying).
 * When the leader is SIGKILLed the client fails over and, once a new
 * leader is named, talks to it directly. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon.h"
#include "eventbus.h"
#include "runner.h"

static const char *pg_uri(void)
{
    const char *u = getenv("EB_TEST_PG_URI");
    if (!u || !*u)
        eb_test_skip("no PostgreSQL ($EB_TEST_PG_URI: run under tests/tools/pgcluster.py)");
    return u;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* GET /v1/cluster of one node: its forwarded count, and the leader it
 * names into leader (may be NULL). */
static unsigned long long cluster_of(const char *url, char *leader, size_t cap)
{
    eb_client *c = eb_test_client(url);
    char *a = NULL;
    int st = 0;
    CHECK_OK(eb_request(c, "GET", "/v1/cluster", NULL, 0, &st, &a));
    CHECK_EQ(st, 200);
    const char *f = strstr(a, "\"forwarded\":");
    CHECK(f);
    unsigned long long n = strtoull(f + 12, NULL, 10);
    if (leader) {
        const char *l = strstr(a, "\"leader\":\"");
        const char *e = l ? strchr(l + 10, '"') : NULL;
        snprintf(leader, cap, "%.*s", e ? (int)(e - (l + 10)) : 0, e ? l + 10 : "");
    }
    eb_free(a);
    eb_client_free(c);
    return n;
}

static unsigned long long forwarded(const char *url)
{
    return cluster_of(url, NULL, 0);
}

static void publish_n(eb_client *c, const char *type, int n)
{
    for (int i = 0; i < n; i++)
        CHECK_OK(eb_publish(c, type, "{\"n\":1}", NULL, NULL));
}

/* Pulls and acks until n events of the group were acked. */
static void consume_n(eb_client *c, const char *group, int n)
{
    int got = 0;
    for (int round = 0; got < n && round < 200; round++) {
        eb_events *l = NULL;
        CHECK_OK(eb_pull(c, group, "c1", 10, 1000, &l));
        size_t k = eb_events_count(l);
        const char *ids[10];
        for (size_t i = 0; i < k; i++)
            ids[i] = eb_events_at(l, i)->delivery_id;
        eb_settle_result r = {.size = sizeof r};
        if (k)
            CHECK_OK(eb_ack(c, group, ids, k, &r));
        CHECK_EQ(r.done, k);
        got += (int)k;
        eb_events_free(l);
    }
    CHECK_EQ(got, n);
}

static void make_group(eb_client *c, const char *group, const char *type)
{
    const char *types[] = {type};
    eb_groups_config g = {.size = sizeof g, .types = types, .ntypes = 1, .start = "earliest"};
    CHECK_OK(eb_groups_put(c, group, &g, NULL, NULL));
}

TEST(follows_the_leader_named_by_a_follower)
{
    const char *uri = pg_uri();
    eb_test_daemon a, b;
    eb_test_daemon_start_pg(&a, "a", uri, NULL); /* leads: the first on the database */
    eb_test_daemon_start_pg(&b, "b", uri, NULL);
    char list[160];
    snprintf(list, sizeof list, "%s,%s", b.url, a.url);
    eb_client *c = eb_test_client(list);
    CHECK(strcmp(eb_client_url(c), b.url) == 0);
    unsigned long long f0 = forwarded(b.url);
    CHECK_OK(eb_publish(c, "lead.one", "{}", NULL, NULL)); /* relayed by b, naming a */
    CHECK_EQ(forwarded(b.url), f0 + 1);
    CHECK(strcmp(eb_client_url(c), a.url) == 0);
    /* from here on nothing goes through b: publishes, a group, pulls, acks */
    publish_n(c, "lead.one", 40);
    make_group(c, "lead-g", "lead.one");
    consume_n(c, "lead-g", 41);
    CHECK_EQ(forwarded(b.url), f0 + 1);
    CHECK(strcmp(eb_client_url(c), a.url) == 0);
    eb_client_free(c);
    eb_test_daemon_stop(&b);
    eb_test_daemon_stop(&a);
}

TEST(a_leader_not_in_the_list_is_not_contacted)
{
    const char *uri = pg_uri();
    eb_test_daemon a, b;
    eb_test_daemon_start_pg(&a, "a", uri, NULL);
    eb_test_daemon_start_pg(&b, "b", uri, NULL);
    /* b and a node that is down; the leader b names (a) is not in the list */
    char list[160];
    snprintf(list, sizeof list, "%s,http://127.0.0.1:%d", b.url, eb_test_free_port());
    eb_client *c = eb_test_client(list);
    unsigned long long f0 = forwarded(b.url);
    publish_n(c, "lead.two", 20);
    CHECK_EQ(forwarded(b.url), f0 + 20); /* every publish went through b */
    CHECK(strcmp(eb_client_url(c), b.url) == 0);
    eb_client_free(c);
    /* the same leader spelled otherwise (localhost for 127.0.0.1) is not
     * the URL it names either: the client stays where it is */
    char other[64];
    snprintf(other, sizeof other, "http://localhost:%d", a.port);
    snprintf(list, sizeof list, "%s,%s", b.url, other);
    c = eb_test_client(list);
    publish_n(c, "lead.two", 3);
    CHECK_EQ(forwarded(b.url), f0 + 23);
    CHECK(strcmp(eb_client_url(c), b.url) == 0);
    eb_client_free(c);
    eb_test_daemon_stop(&b);
    eb_test_daemon_stop(&a);
}

/* Publishes until one is answered: the number of tries. */
static int publish_until_answered(eb_client *c, const char *type)
{
    for (int i = 1; i <= 300; i++) {
        if (eb_publish(c, type, "{}", NULL, NULL) == 0)
            return i;
        sleep_ms(50);
    }
    CHECK(!"no publish answered within 15 s");
    return 0;
}

TEST(fails_over_when_the_leader_dies_and_follows_the_new_one)
{
    const char *uri = pg_uri();
    eb_test_daemon a, b, c3;
    eb_test_daemon_start_pg(&a, "a", uri, NULL);
    eb_test_daemon_start_pg(&b, "b", uri, NULL);
    eb_test_daemon_start_pg(&c3, "c", uri, NULL);
    char list[240];
    snprintf(list, sizeof list, "%s,%s,%s", b.url, a.url, c3.url);
    eb_client *c = eb_test_client(list);
    CHECK_OK(eb_publish(c, "lead.three", "{}", NULL, NULL));
    CHECK(strcmp(eb_client_url(c), a.url) == 0);
    make_group(c, "lead-k", "lead.three");
    eb_test_daemon_kill(&a);
    /* both survivors name the same new leader (b, almost always: it has
     * waited for the leader lock the longest) */
    char lb[128] = "", lc[128] = "";
    for (int i = 0; i < 300; i++) {
        cluster_of(b.url, lb, sizeof lb);
        cluster_of(c3.url, lc, sizeof lc);
        if (*lb && !strcmp(lb, lc) && strcmp(lb, a.url) != 0)
            break;
        sleep_ms(50);
    }
    CHECK(*lb && !strcmp(lb, lc) && strcmp(lb, a.url) != 0);
    bool b_leads = !strcmp(lb, b.url);
    unsigned long long fc0 = forwarded(c3.url);
    /* a refuses the connection; the next of the list, c, answers: relaying
     * to b and naming it, when b leads */
    int tries = publish_until_answered(c, "lead.three");
    printf("# the new leader is %s; answered after %d tries; client at %s\n",
           b_leads ? "b" : "c", tries, eb_client_url(c));
    CHECK(strcmp(eb_client_url(c), lb) == 0);
    if (b_leads)
        CHECK_EQ(forwarded(c3.url), fc0 + (unsigned long long)tries);
    unsigned long long fb = forwarded(b.url), fc = forwarded(c3.url);
    publish_n(c, "lead.three", 30);
    consume_n(c, "lead-k", 32);
    CHECK_EQ(forwarded(b.url), fb);
    CHECK_EQ(forwarded(c3.url), fc);
    CHECK(strcmp(eb_client_url(c), lb) == 0);
    eb_client_free(c);
    eb_test_daemon_stop(&b);
    eb_test_daemon_stop(&c3);
}

TEST_MAIN(T(follows_the_leader_named_by_a_follower), T(a_leader_not_in_the_list_is_not_contacted),
          T(fails_over_when_the_leader_dies_and_follows_the_new_one))
