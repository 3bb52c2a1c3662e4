/* consume.c - bench/consume: consumer-group delivery over HTTP.
 *
 * Starts its own eventbusd (--fsync always unless told otherwise: every
 * publish and ack answered 2xx is on disk) on a temp dir, and measures:
 *   1. throughput: N events (default 1,000,000) are loaded, then three
 *      groups with one consumer each read all of them at once, pulling 100
 *      and acknowledging each pull as one batch; events/s per group;
 *   2. latency: one group waits while 16 publishers send single events at a
 *      fixed 5,000 events/s for 5 s; append-to-delivery p50/p99, from the
 *      start of the publish request to the pull answer that carries it.
 * Each part runs on a fresh server. The workloads are bench/peers' (see
 * peers/driver.h), so the figures compare with `make bench-peers`.
 *
 * Usage: consume EVENTBUSD [--events N] [--groups N] [--rate R]
 *                [--seconds S] [--fsync always|interval|never] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "httpc.h"
#include "peers/eventbus.h"

typedef int (*workload_fn)(const peer_ops *p, const drv_opts *o);

/* Runs one workload against a fresh eventbusd. */
static int on_fresh_daemon(const char *daemon, const char *fsync, workload_fn fn, drv_opts *o)
{
    const char *extra[] = {"--fsync", fsync, NULL};
    int port;
    char dir[256], target[32];
    pid_t pid = bench_start_daemon(daemon, extra, &port, dir);
    if (pid < 0) {
        fprintf(stderr, "cannot start %s\n", daemon);
        return -1;
    }
    snprintf(target, sizeof target, "127.0.0.1:%d", port);
    o->target = target;
    int rc = fn(&bench_eventbus_ops, o);
    bench_stop_daemon(pid, dir);
    o->target = NULL;
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s EVENTBUSD [--events N] [--groups N] [--rate R] "
                        "[--seconds S] [--fsync always|interval|never]\n", argv[0]);
        return 2;
    }
    drv_opts o = {.events = 1000000, .publishers = 4, .batch = 100, .groups = 3, .pull = 100,
                  .rate = 5000, .seconds = 5, .rate_threads = 16};
    const char *fsync = "always";
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--events"))
            o.events = strtoull(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--groups"))
            o.groups = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--rate"))
            o.rate = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--seconds"))
            o.seconds = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--fsync"))
            fsync = argv[i + 1];
    }
    printf("eventbusd --fsync %s; same-run figures of Redis, NATS and PostgreSQL on this "
           "workload: make bench-peers\n", fsync);
    fflush(stdout);
    o.workload = "consume";
    o.run = "consume";
    int rc = on_fresh_daemon(argv[1], fsync, drv_consume, &o);
    o.workload = "latency";
    o.run = "latency";
    rc |= on_fresh_daemon(argv[1], fsync, drv_latency, &o);
    return rc ? 1 : 0;
}
