/* push.c - bench/push: push delivery (webhooks) against pull + ack.
 *
 * Starts its own eventbusd (--fsync always, --push-allow-private) on a
 * temp dir and a receiver in this process (the project's own HTTP server,
 * src/http, on a thread of its own, answering 204 at once), then:
 *   1. throughput: N events (default 100,000) are published in batches;
 *      a pushed group (push.max_in_flight 100, batch 1) starting at the
 *      earliest event is timed until the receiver has all N; then a pulled
 *      group of the same types reads the same N with one consumer pulling
 *      100 and acking each pull as one batch (bench/consume's loop): both
 *      rates, and push as a percentage of pull + ack (target >= 50%); once
 *      more with push.batch 100 for the figure of batched delivery;
 *   2. latency: a pushed group while one publisher sends single events at a
 *      fixed rate (default 1,000/s) for S seconds (default 5); the time from
 *      the start of the publish request to the receiver's reading the POST,
 *      p50 / p99 (the event carries its send time).
 * Prints RESULT lines for bench/run.py.
 *
 * Usage: push EVENTBUSD [--events N] [--rate R] [--seconds S] */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "http/http.h"
#include "httpc.h"

#define SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

/* --- the receiver -------------------------------------------------------------- */

typedef struct receiver {
    uv_loop_t        loop;
    eb_http_server  *srv;
    int              port;
    pthread_t        thread;
    uv_async_t       stop;
    atomic_ullong    posts, events;
    pthread_mutex_t  mu;
    double          *lat_us;  /* latency samples (part 2) */
    size_t           nlat, cap;
    bool             record;
} receiver;

static uint64_t wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void on_post(void *ud, eb_http_req *req)
{
    receiver *r = ud;
    uint64_t now = wall_us();
    atomic_fetch_add(&r->posts, 1);
    size_t n = 0;
    for (const char *p = req->body; (p = strstr(p, "\"seq\":")); p += 6)
        n++;
    atomic_fetch_add(&r->events, n);
    const char *t = r->record ? strstr(req->body, "\"sent_us\":") : NULL;
    if (t) {
        uint64_t sent = strtoull(t + 10, NULL, 10);
        pthread_mutex_lock(&r->mu);
        if (r->nlat < r->cap && now > sent)
            r->lat_us[r->nlat++] = (double)(now - sent);
        pthread_mutex_unlock(&r->mu);
    }
    eb_http_respond(req, 204, NULL, NULL, 0);
}

static void on_stop(uv_async_t *a)
{
    receiver *r = a->data;
    eb_http_server_shutdown(r->srv, NULL, NULL);
    uv_close((uv_handle_t *)a, NULL);
}

static void *receiver_main(void *arg)
{
    receiver *r = arg;
    uv_run(&r->loop, UV_RUN_DEFAULT);
    return NULL;
}

static int receiver_start(receiver *r)
{
    uv_loop_init(&r->loop);
    pthread_mutex_init(&r->mu, NULL);
    eb_http_opts o = {.max_connections = 4096, .idle_timeout_ms = 600000};
    if (eb_http_server_new(&r->loop, &o, on_post, r, &r->srv) != 0 ||
        eb_http_listen(r->srv, "127.0.0.1:0", &r->port) != 0)
        return -1;
    uv_async_init(&r->loop, &r->stop, on_stop);
    r->stop.data = r;
    return pthread_create(&r->thread, NULL, receiver_main, r);
}

static void receiver_stop(receiver *r)
{
    uv_async_send(&r->stop);
    pthread_join(r->thread, NULL);
    eb_http_server_free(r->srv);
    uv_loop_close(&r->loop);
}

/* --- helpers ------------------------------------------------------------------- */

static int put_group(int port, const char *name, const char *cfg)
{
    char path[160], out[4096];
    snprintf(path, sizeof path, "/v1/groups/%s", name);
    int st = bench_request(port, "PUT", path, cfg, out, sizeof out);
    if (st != 200 && st != 201)
        fprintf(stderr, "PUT %s: %d %s\n", path, st, out);
    return st == 200 || st == 201 ? 0 : -1;
}

static int publish_all(int port, uint64_t n)
{
    bench_conn c;
    if (bench_conn_open(&c, port) != 0)
        return -1;
    size_t cap = 1000 * 128 + 16;
    char *body = malloc(cap);
    for (uint64_t i = 0; i < n;) {
        size_t len = 0, k = n - i < 1000 ? (size_t)(n - i) : 1000;
        body[len++] = '[';
        for (size_t j = 0; j < k; j++, i++)
            len += (size_t)snprintf(body + len, cap - len,
                                    "%s{\"type\":\"bench.push\",\"data\":{\"n\":%llu}}",
                                    j ? "," : "", (unsigned long long)i);
        body[len++] = ']';
        const char *ans;
        size_t alen;
        if (bench_conn_send(&c, "POST", "/v1/events/batch", body, len) != 0 ||
            bench_conn_recv(&c, &ans, &alen) != 201) {
            free(body);
            bench_conn_close(&c);
            return -1;
        }
    }
    free(body);
    bench_conn_close(&c);
    return 0;
}

/* Pull 100 / ack them until n events came; events per second. */
static double pull_ack(int port, const char *group, uint64_t n)
{
    bench_conn c;
    if (bench_conn_open(&c, port) != 0)
        return 0;
    char path[160], ackpath[160];
    snprintf(path, sizeof path, "/v1/groups/%s/pull", group);
    snprintf(ackpath, sizeof ackpath, "/v1/groups/%s/ack", group);
    const char *pull = "{\"consumer\":\"bench\",\"max\":100,\"wait_ms\":1000}";
    char *ack = malloc(100 * 64 + 32);
    uint64_t got = 0;
    double t0 = bench_now_s();
    while (got < n) {
        const char *b;
        size_t bl;
        if (bench_conn_send(&c, "POST", path, pull, strlen(pull)) != 0 ||
            bench_conn_recv(&c, &b, &bl) != 200)
            break;
        size_t len = (size_t)sprintf(ack, "{\"ids\":[");
        size_t k = 0;
        for (const char *p = b; (p = strstr(p, "\"delivery\":{\"id\":\"")); k++) {
            p += 18;
            const char *e = strchr(p, '"');
            len += (size_t)sprintf(ack + len, "%s\"%.*s\"", k ? "," : "", (int)(e - p), p);
        }
        len += (size_t)sprintf(ack + len, "]}");
        if (!k)
            continue;
        got += k;
        if (bench_conn_send(&c, "POST", ackpath, ack, len) != 0 ||
            bench_conn_recv(&c, &b, &bl) != 200)
            break;
    }
    double s = bench_now_s() - t0;
    free(ack);
    bench_conn_close(&c);
    return got >= n ? (double)n / s : 0;
}

/* Creates a pushed group from the earliest event and times the receiver's
 * getting n events; events per second. */
static double push_rate(int port, receiver *r, const char *group, int batch, uint64_t n)
{
    char cfg[512];
    snprintf(cfg, sizeof cfg,
             "{\"types\":[\"bench.push\"],\"start\":\"earliest\",\"push\":{\"url\":"
             "\"http://127.0.0.1:%d/hook\",\"secret\":\"" SECRET "\",\"max_in_flight\":100,"
             "\"batch\":%d}}", r->port, batch);
    uint64_t base = atomic_load(&r->events);
    double t0 = bench_now_s();
    if (put_group(port, group, cfg) != 0)
        return 0;
    while (atomic_load(&r->events) - base < n) {
        if (bench_now_s() - t0 > 600)
            return 0;
        usleep(1000);
    }
    return (double)n / (bench_now_s() - t0);
}

/* One publisher at `rate` singles per second for `seconds`. */
static int paced_publish(int port, double rate, double seconds)
{
    bench_conn c;
    if (bench_conn_open(&c, port) != 0)
        return -1;
    double t0 = bench_now_s();
    uint64_t n = 0, total = (uint64_t)(rate * seconds);
    char body[160];
    for (; n < total; n++) {
        double due = t0 + (double)n / rate, now = bench_now_s();
        if (due > now)
            usleep((useconds_t)((due - now) * 1e6));
        size_t len = (size_t)snprintf(body, sizeof body,
                                      "{\"type\":\"bench.lat\",\"data\":{\"sent_us\":%llu}}",
                                      (unsigned long long)wall_us());
        const char *a;
        size_t al;
        if (bench_conn_send(&c, "POST", "/v1/events", body, len) != 0 ||
            bench_conn_recv(&c, &a, &al) != 201)
            break;
    }
    bench_conn_close(&c);
    return n == total ? 0 : -1;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: push EVENTBUSD [--events N] [--rate R] [--seconds S]\n");
        return 2;
    }
    uint64_t n = 100000;
    double rate = 1000, seconds = 5;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--events"))
            n = strtoull(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--rate"))
            rate = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--seconds"))
            seconds = atof(argv[i + 1]);
    }
    receiver r = {0};
    if (receiver_start(&r) != 0) {
        fprintf(stderr, "receiver would not start\n");
        return 1;
    }
    const char *extra[] = {"--fsync", "always", "--push-allow-private", NULL};
    int port;
    char dir[256];
    pid_t pid = bench_start_daemon(argv[1], extra, &port, dir);
    if (pid < 0) {
        fprintf(stderr, "cannot start %s\n", argv[1]);
        return 1;
    }
    int rc = 1;
    if (publish_all(port, n) != 0) {
        fprintf(stderr, "publishing failed\n");
        goto out;
    }
    double push1 = push_rate(port, &r, "pushed", 1, n);
    uint64_t posts1 = atomic_load(&r.posts);
    if (put_group(port, "pulled", "{\"types\":[\"bench.push\"],\"start\":\"earliest\"}") != 0)
        goto out;
    double pull = pull_ack(port, "pulled", n);
    double push100 = push_rate(port, &r, "batched", 100, n);
    printf("throughput, %llu events, --fsync always: push (max_in_flight 100, batch 1) "
           "%.0f events/s (%llu POSTs), pull 100 + ack %.0f events/s: push = %.0f%%; "
           "push batch 100: %.0f events/s\n", (unsigned long long)n, push1,
           (unsigned long long)posts1, pull, pull > 0 ? 100 * push1 / pull : 0, push100);
    printf("RESULT push_throughput push=%.0f pull=%.0f pct=%.1f batch100=%.0f\n", push1, pull,
           pull > 0 ? 100 * push1 / pull : 0, push100);

    size_t cap = (size_t)(rate * seconds) + 16;
    r.lat_us = calloc(cap, sizeof *r.lat_us);
    r.cap = cap;
    char cfg[512];
    snprintf(cfg, sizeof cfg,
             "{\"types\":[\"bench.lat\"],\"push\":{\"url\":\"http://127.0.0.1:%d/lat\","
             "\"secret\":\"" SECRET "\",\"max_in_flight\":100}}", r.port);
    if (put_group(port, "latency", cfg) != 0)
        goto out;
    r.record = true;
    if (paced_publish(port, rate, seconds) != 0) {
        fprintf(stderr, "paced publishing failed\n");
        goto out;
    }
    usleep(500000);
    pthread_mutex_lock(&r.mu);
    size_t k = r.nlat;
    double p50 = bench_pct(r.lat_us, k, 50), p99 = bench_pct(r.lat_us, k, 99);
    pthread_mutex_unlock(&r.mu);
    printf("latency at %.0f events/s for %.0f s: publish start to the receiver's POST: "
           "p50 %.2f ms, p99 %.2f ms (%zu of %.0f events)\n", rate, seconds, p50 / 1000,
           p99 / 1000, k, rate * seconds);
    printf("RESULT push_latency p50_ms=%.3f p99_ms=%.3f n=%zu\n", p50 / 1000, p99 / 1000, k);
    rc = 0;
out:
    bench_stop_daemon(pid, dir);
    receiver_stop(&r);
    free(r.lat_us);
    return rc;
}
