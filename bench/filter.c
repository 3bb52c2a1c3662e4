/* filter.c - bench/filter: pull throughput of a group with a filter on a
 * `data` path against the same group without one (issue 17: the filtered
 * one must keep >= 70% of the plain one's events/s).
 *
 * Starts its own eventbusd (--fsync never: the figure is the filter's cost,
 * not the disk's), loads N events (default 200,000) whose data all pass the
 * filter, then drains four groups one after the other with libeventbus
 * (plain, filtered, filtered, plain; the better run of each kind counts):
 * pull 1000, ack the batch. All see the same events; a filtered group
 * parses each event's JSON and evaluates
 *   {"data": {"currency": ["EUR", "USD"], "amount": [{"numeric": [">=", 0]}]}}
 * Prints events/s of each and the ratio, then a RESULT line (bench/run.py).
 * Usage: bench_filter PATH/TO/eventbusd [N] */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eventbus.h"
#include "httpc.h"

#define FILTER "{\"data\": {\"currency\": [\"EUR\", \"USD\"], " \
               "\"amount\": [{\"numeric\": [\">=\", 0]}]}}"

static int load(eb_client *c, size_t n)
{
    enum { B = 1000 };
    static char data[B][128];
    static eb_message m[B];
    const eb_message *p[B];
    for (size_t done = 0; done < n;) {
        size_t k = n - done < B ? n - done : B;
        for (size_t i = 0; i < k; i++) {
            snprintf(data[i], sizeof data[i],
                     "{\"orderId\":\"A-%zu\",\"amount\":%zu.5,\"currency\":\"%s\",\"email\":\"a@b.cd\"}",
                     done + i, (done + i) % 1000, (done + i) % 2 ? "EUR" : "USD");
            m[i] = (eb_message){.size = sizeof m[i], .type = "order.created", .data = data[i]};
            p[i] = &m[i];
        }
        if (eb_publish_batch(c, p, k, NULL))
            return -1;
        done += k;
    }
    return 0;
}

/* Drains the group; events/s. */
static double drain(eb_client *c, const char *group, size_t n)
{
    size_t got = 0;
    double t0 = bench_now_s();
    const char *ids[1000];
    while (got < n) {
        eb_events *l = NULL;
        if (eb_pull(c, group, "bench", 1000, 1000, &l))
            return -1;
        size_t k = eb_events_count(l);
        for (size_t i = 0; i < k; i++)
            ids[i] = eb_events_at(l, i)->delivery_id;
        int rc = k ? eb_ack(c, group, ids, k, NULL) : 0;
        eb_events_free(l);
        if (rc || !k)
            return -1;
        got += k;
    }
    return (double)n / (bench_now_s() - t0);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s EVENTBUSD [N]\n", argv[0]);
        return 2;
    }
    size_t n = argc > 2 ? strtoull(argv[2], NULL, 10) : 200000;
    const char *extra[] = {"--fsync", "never", NULL};
    int port;
    char dir[256], url[64];
    pid_t pid = bench_start_daemon(argv[1], extra, &port, dir);
    if (pid < 0)
        return 1;
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    eb_client *c = NULL;
    const char *types[] = {"order.created"};
    eb_groups_config plain = {.size = sizeof plain, .types = types, .ntypes = 1,
                              .start = "earliest"};
    eb_groups_config filt = plain;
    filt.filter = FILTER;
    int rc = eb_client_new(&(eb_client_opts){.size = sizeof(eb_client_opts), .url = url}, &c);
    if (!rc)
        rc = load(c, n);
    /* plain, filtered, filtered, plain: each the better of its two runs */
    static const char *const order[] = {"plain1", "filtered1", "filtered2", "plain2"};
    double a = 0, b = 0;
    for (size_t i = 0; i < 4 && !rc; i++) {
        bool f = order[i][0] == 'f';
        rc = eb_groups_put(c, order[i], f ? &filt : &plain, NULL, NULL);
        double eps = rc ? -1 : drain(c, order[i], n);
        if (eps < 0)
            rc = -1;
        else if (f)
            b = eps > b ? eps : b;
        else
            a = eps > a ? eps : a;
    }
    if (rc || a < 0 || b < 0) {
        fprintf(stderr, "bench_filter: %s\n", c ? eb_client_error(c)->message : "no client");
        rc = 1;
    } else {
        printf("pull+ack of %zu events: plain %.0f events/s, filtered on data %.0f events/s "
               "(%.0f%%)\n", n, a, b, 100 * b / a);
        printf("RESULT filter events=%zu plain_eps=%.0f filtered_eps=%.0f ratio=%.3f\n", n, a, b,
               b / a);
    }
    eb_client_free(c);
    bench_stop_daemon(pid, dir);
    return rc;
}
