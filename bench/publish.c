/* publish.c - bench/publish: publishing throughput and latency over HTTP.
 *
 * Starts its own eventbusd (default fsync policy: always) on a temp dir,
 * registers the order.created schema, then measures:
 *   1. single-event publishes over 64 keep-alive connections;
 *   2. batches of 100 events from 4 concurrent publishers.
 * Events are ~200 bytes. Every 2xx counted means the event was fsynced.
 * Beside the figures it prints this machine's fdatasync latency measured
 * in the same run, the physical cost every acknowledged batch pays.
 *
 * Usage: publish EVENTBUSD [--events N] [--conns N] [--batch-events N] */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "event.h"
#include "httpc.h"

static size_t single_body(void *arg, int c, uint64_t n, char *buf, size_t cap)
{
    (void)arg; (void)c;
    return bench_event_json(buf, cap, n);
}

static size_t batch_body(void *arg, int c, uint64_t n, char *buf, size_t cap)
{
    int per = *(int *)arg;
    (void)c;
    return bench_event_batch(buf, cap, n * (uint64_t)per, per);
}

/* Median latency of 4 KiB write + fdatasync in dir, microseconds. */
static double fdatasync_us(const char *dir)
{
    char path[300];
    snprintf(path, sizeof path, "%s/fsync-probe", dir);
    int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
    if (fd < 0)
        return 0;
    static char block[4096];
    double v[200];
    for (int i = 0; i < 200; i++) {
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        if (write(fd, block, sizeof block) != (ssize_t)sizeof block || fdatasync(fd) != 0)
            break;
        clock_gettime(CLOCK_MONOTONIC, &b);
        v[i] = (double)(b.tv_sec - a.tv_sec) * 1e6 + (double)(b.tv_nsec - a.tv_nsec) / 1e3;
    }
    close(fd);
    unlink(path);
    return bench_pct(v, 200, 50);
}

static void report(const char *name, bench_load *l, int per_req)
{
    double evs = (double)l->ok * per_req / l->seconds;
    double p50 = bench_pct(l->lat_us, l->total, 50), p99 = bench_pct(l->lat_us, l->total, 99);
    printf("%-34s %10.0f events/s  p50 %7.2f ms  p99 %7.2f ms  (%llu ok, %llu failed, %.1f s)\n",
           name, evs, p50 / 1000, p99 / 1000, (unsigned long long)l->ok,
           (unsigned long long)l->failed, l->seconds);
    printf("RESULT %s events_per_s=%.0f p50_ms=%.3f p99_ms=%.3f\n", name, evs, p50 / 1000,
           p99 / 1000);
    free(l->lat_us);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s EVENTBUSD [--events N] [--conns N] [--batch-events N]\n",
                argv[0]);
        return 2;
    }
    uint64_t singles = 200000, batched = 1000000;
    int conns = 64, per = 100, pubs = 4;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--events"))
            singles = strtoull(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--batch-events"))
            batched = strtoull(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--conns"))
            conns = atoi(argv[i + 1]);
    }
    int port;
    char dir[256];
    pid_t pid = bench_start_daemon(argv[1], NULL, &port, dir);
    if (pid < 0) {
        fprintf(stderr, "cannot start %s\n", argv[1]);
        return 1;
    }
    char out[4096];
    int st = bench_request(port, "PUT", "/v1/schemas/order.created", bench_order_schema, out,
                           sizeof out);
    if (st != 201 && st != 200) {
        fprintf(stderr, "schema registration failed: %d %s\n", st, out);
        bench_stop_daemon(pid, dir);
        return 1;
    }
    printf("machine: 4 KiB write+fdatasync median %.0f us (one durable batch costs at least this)\n",
           fdatasync_us(dir));
    printf("peers measured on this machine (issue 4): Redis Streams 104k/s, NATS JetStream 50k/s "
           "(ack before fsync), PostgreSQL 41k/s, RabbitMQ 5k/s (after fsync)\n");

    bench_load l = {.port = port, .conns = conns, .total = singles, .method = "POST",
                    .path = "/v1/events", .make_body = single_body};
    bench_run_load(&l);
    report("single events, 64 connections", &l, 1);

    bench_load b = {.port = port, .conns = pubs, .total = batched / (uint64_t)per,
                    .method = "POST", .path = "/v1/events/batch", .make_body = batch_body,
                    .arg = &per};
    bench_run_load(&b);
    report("batches of 100, 4 publishers", &b, per);

    bench_stop_daemon(pid, dir);
    return 0;
}
