/* push.c - bench/push: push delivery (webhooks) against pull + ack, like
 * with like, and against the machine's limit for one POST per event.
 *
 * Starts its own eventbusd (--fsync always, --push-allow-private) on a
 * temp dir and a receiver in this process (the project's own HTTP server,
 * src/http, on a thread of its own, answering 204 at once), publishes N
 * events (default 100,000) once, then reads all N in each of these, each
 * a group of its own from the earliest event:
 *   (a) one exchange per event each way: a pushed group (max_in_flight 100,
 *       batch 1: one POST per event) beside a pulled group read by C
 *       consumers (default 8, one connection each) pulling 1 and acking it;
 *   (b) 100 events per exchange: push batch 100 beside one consumer pulling
 *       100 and acking them in one request (bench/consume's loop);
 *   (c) the limit of one POST per event here: the same receiver driven by a
 *       plain keep-alive load generator (bench/httpc's libuv loop, 100
 *       connections, one request in flight each) POSTing a captured push
 *       body with headers of the same size: what any pusher could reach.
 * For each: events/s (with the load average), eventbusd's CPU per event
 * (from /proc: it holds on a loaded machine), requests and the receiver's
 * new connections. Then latency: a pushed group while one publisher sends
 * single events at a fixed rate (default 1,000/s) for S seconds (default
 * 5); the time from the start of the publish request to the receiver's
 * reading the POST, p50 / p99 (the event carries its send time).
 * Prints RESULT lines for bench/run.py.
 *
 * Usage: push EVENTBUSD [--events N] [--rate R] [--seconds S] [--consumers C]
 *        [--only push1]   (just (a)'s push, for perf) */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
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
    char             sample[1024]; /* the first single-event POST's body (for (c)) */
    atomic_size_t    sample_len;
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
    if (n == 1 && !atomic_load(&r->sample_len) && req->body_len < sizeof r->sample) {
        memcpy(r->sample, req->body, req->body_len);
        atomic_store(&r->sample_len, req->body_len);
    }
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

/* --- measuring a phase --------------------------------------------------------- */

/* CPU seconds (user + system) of process pid so far, from /proc. */
static double proc_cpu_s(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[len] = '\0';
    const char *p = strrchr(buf, ')'); /* the name may hold spaces */
    unsigned long long ut = 0, st = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut,
                     &st) != 2)
        return 0;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static double thread_cpu_s(pthread_t t)
{
    clockid_t id;
    struct timespec ts;
    if (pthread_getcpuclockid(t, &id) != 0 || clock_gettime(id, &ts) != 0)
        return 0;
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double loadavg1(void)
{
    double l = 0;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &l) != 1)
            l = 0;
        fclose(f);
    }
    return l;
}

/* What one way of reading the N events cost. */
typedef struct phase {
    double   rate;       /* events per second */
    double   cpu_us;     /* eventbusd's CPU per event, us */
    double   recv_us;    /* the receiver thread's CPU per POST, us (push, (c)) */
    double   load;       /* load average (1 min) at the end */
    uint64_t requests;   /* HTTP requests: POSTs, or pulls + acks */
    uint64_t conns;      /* connections the receiver accepted */
} phase;

typedef struct meter {
    double   cpu0, rcpu0;
    uint64_t posts0, conns0;
} meter;

static uint64_t receiver_conns(receiver *r)
{
    eb_http_stats st;
    eb_http_server_stats(r->srv, &st); /* read from another thread: a benchmark's estimate */
    return st.connections;
}

static void meter_start(meter *m, pid_t pid, receiver *r)
{
    m->cpu0 = proc_cpu_s(pid);
    m->rcpu0 = thread_cpu_s(r->thread);
    m->posts0 = atomic_load(&r->posts);
    m->conns0 = receiver_conns(r);
}

static void meter_stop(const meter *m, pid_t pid, receiver *r, uint64_t n, phase *out)
{
    uint64_t posts = atomic_load(&r->posts) - m->posts0;
    out->cpu_us = (proc_cpu_s(pid) - m->cpu0) * 1e6 / (double)n;
    out->recv_us = posts ? (thread_cpu_s(r->thread) - m->rcpu0) * 1e6 / (double)posts : 0;
    if (posts)
        out->requests = posts;
    out->conns = receiver_conns(r) - m->conns0;
    out->load = loadavg1();
}

/* --- pull + ack ------------------------------------------------------------------ */

typedef struct puller {
    int            port, idx, max;
    const char    *group;
    uint64_t       n;
    atomic_ullong *got, *requests;
    double         t_end;    /* set by the thread whose ack reached n */
    pthread_t      thread;
} puller;

static void *pull_thread(void *arg)
{
    puller *p = arg;
    bench_conn c;
    if (bench_conn_open(&c, p->port) != 0)
        return NULL;
    char path[160], ackpath[160], pull[128];
    snprintf(path, sizeof path, "/v1/groups/%s/pull", p->group);
    snprintf(ackpath, sizeof ackpath, "/v1/groups/%s/ack", p->group);
    int plen = snprintf(pull, sizeof pull, "{\"consumer\":\"bench%d\",\"max\":%d,\"wait_ms\":100}",
                        p->idx, p->max);
    char *ack = malloc((size_t)p->max * 64 + 32);
    while (atomic_load(p->got) < p->n) {
        const char *b;
        size_t bl;
        if (bench_conn_send(&c, "POST", path, pull, (size_t)plen) != 0 ||
            bench_conn_recv(&c, &b, &bl) != 200)
            break;
        size_t len = (size_t)sprintf(ack, "{\"ids\":[");
        size_t k = 0;
        for (const char *q = b; (q = strstr(q, "\"delivery\":{\"id\":\"")); k++) {
            q += 18;
            const char *e = strchr(q, '"');
            len += (size_t)sprintf(ack + len, "%s\"%.*s\"", k ? "," : "", (int)(e - q), q);
        }
        len += (size_t)sprintf(ack + len, "]}");
        atomic_fetch_add(p->requests, k ? 2 : 1);
        if (!k)
            continue;
        if (bench_conn_send(&c, "POST", ackpath, ack, len) != 0 ||
            bench_conn_recv(&c, &b, &bl) != 200)
            break;
        uint64_t before = atomic_fetch_add(p->got, k);
        if (before < p->n && before + k >= p->n)
            p->t_end = bench_now_s();
    }
    free(ack);
    bench_conn_close(&c);
    return NULL;
}

/* `consumers` connections pull `max` and ack what came, until the group's n
 * events are acked; events per second (0: failed). */
static double pull_ack(int port, const char *group, int max, int consumers, uint64_t n,
                       uint64_t *requests)
{
    atomic_ullong got = 0, reqs = 0;
    puller *ps = calloc((size_t)consumers, sizeof *ps);
    double t0 = bench_now_s(), t_end = 0;
    for (int i = 0; i < consumers; i++) {
        ps[i] = (puller){.port = port, .idx = i, .max = max, .group = group, .n = n,
                         .got = &got, .requests = &reqs};
        pthread_create(&ps[i].thread, NULL, pull_thread, &ps[i]);
    }
    for (int i = 0; i < consumers; i++) {
        pthread_join(ps[i].thread, NULL);
        if (ps[i].t_end > t_end)
            t_end = ps[i].t_end;
    }
    free(ps);
    *requests = atomic_load(&reqs);
    return atomic_load(&got) >= n && t_end > t0 ? (double)n / (t_end - t0) : 0;
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

static int push_phase(int port, pid_t pid, receiver *r, const char *group, int batch,
                      uint64_t n, phase *out)
{
    meter m;
    meter_start(&m, pid, r);
    out->rate = push_rate(port, r, group, batch, n);
    meter_stop(&m, pid, r, n, out);
    return out->rate > 0 ? 0 : -1;
}

static int pull_phase(int port, pid_t pid, receiver *r, const char *group, int max,
                      int consumers, uint64_t n, phase *out)
{
    char cfg[160];
    snprintf(cfg, sizeof cfg, "{\"types\":[\"bench.push\"],\"start\":\"earliest\"}");
    if (put_group(port, group, cfg) != 0)
        return -1;
    meter m;
    meter_start(&m, pid, r);
    out->rate = pull_ack(port, group, max, consumers, n, &out->requests);
    meter_stop(&m, pid, r, n, out);
    out->recv_us = 0;
    return out->rate > 0 ? 0 : -1;
}

/* --- (c): the limit of one POST per event ---------------------------------------- */

static size_t sample_body(void *arg, int c, uint64_t n, char *buf, size_t cap)
{
    receiver *r = arg;
    size_t len = atomic_load(&r->sample_len);
    (void)c;
    (void)n;
    if (len > cap)
        len = cap;
    memcpy(buf, r->sample, len);
    return len;
}

/* The headers eventbusd sends beside Host, Content-Type and Content-Length
 * (the same names, values of the same length). */
#define PUSH_LIKE_HEADERS                                                       \
    "User-Agent: eventbus-push/1\r\nAccept: */*\r\n"                            \
    "webhook-id: 01M8KGYWC9AQKR90ZXC46PNE3Z\r\nwebhook-timestamp: 1795951653\r\n" \
    "webhook-signature: v1,KQMorr6WIami3ZRLaaVdtgvQoqrUcg37NOGg17zysJg=\r\n"     \
    "eventbus-attempt: 1\r\n"

static int limit_phase(receiver *r, uint64_t n, phase *out)
{
    if (!atomic_load(&r->sample_len))
        return -1;
    bench_load l = {.port = r->port, .conns = 100, .total = n, .method = "POST",
                    .path = "/hook", .headers = PUSH_LIKE_HEADERS, .make_body = sample_body,
                    .arg = r};
    uint64_t posts0 = atomic_load(&r->posts), conns0 = receiver_conns(r);
    double cpu0 = bench_cpu_s(), rcpu0 = thread_cpu_s(r->thread);
    int rc = bench_run_load(&l);
    double rcpu = thread_cpu_s(r->thread) - rcpu0;
    uint64_t posts = atomic_load(&r->posts) - posts0;
    out->rate = rc == 0 && l.ok == n ? (double)n / l.seconds : 0;
    out->cpu_us = (bench_cpu_s() - cpu0 - rcpu) * 1e6 / (double)n; /* the generator's */
    out->recv_us = posts ? rcpu * 1e6 / (double)posts : 0;
    out->requests = posts;
    out->conns = receiver_conns(r) - conns0;
    out->load = loadavg1();
    free(l.lat_us);
    return out->rate > 0 ? 0 : -1;
}

static void print_phase(const char *what, const phase *p)
{
    printf("  %-44s %9.0f/s  %7.2f us  %8llu  %5llu  %6.2f us  %5.2f\n", what, p->rate,
           p->cpu_us, (unsigned long long)p->requests, (unsigned long long)p->conns,
           p->recv_us, p->load);
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
        fprintf(stderr, "usage: push EVENTBUSD [--events N] [--rate R] [--seconds S] "
                        "[--consumers C] [--only push1]\n");
        return 2;
    }
    uint64_t n = 100000;
    double rate = 1000, seconds = 5;
    int consumers = 8;
    bool only_push1 = false;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--events"))
            n = strtoull(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--rate"))
            rate = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--seconds"))
            seconds = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--consumers"))
            consumers = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--only"))
            only_push1 = !strcmp(argv[i + 1], "push1");
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
    phase push1 = {0}, pull1 = {0}, push100 = {0}, pull100 = {0}, lim = {0};
    if (push_phase(port, pid, &r, "push1", 1, n, &push1) != 0)
        goto out;
    if (only_push1) {
        printf("push, batch 1, max_in_flight 100: %.0f events/s, eventbusd %.2f us CPU/event, "
               "%llu POSTs on %llu connections, load %.2f\n", push1.rate, push1.cpu_us,
               (unsigned long long)push1.requests, (unsigned long long)push1.conns, push1.load);
        printf("RESULT push1 rate=%.0f cpu_us=%.3f conns=%llu load=%.2f\n", push1.rate,
               push1.cpu_us, (unsigned long long)push1.conns, push1.load);
        rc = 0;
        goto out;
    }
    if (pull_phase(port, pid, &r, "pull1", 1, consumers, n, &pull1) != 0 ||
        push_phase(port, pid, &r, "push100", 100, n, &push100) != 0 ||
        pull_phase(port, pid, &r, "pull100", 100, 1, n, &pull100) != 0 ||
        limit_phase(&r, n, &lim) != 0) {
        fprintf(stderr, "a phase failed\n");
        goto out;
    }
    printf("throughput, %llu events, --fsync always (CPU: per event; receiver: per POST)\n"
           "  %-44s %11s  %10s  %8s  %5s  %9s  %5s\n", (unsigned long long)n, "", "events/s",
           "eventbusd", "requests", "conns", "receiver", "load");
    char what[96];
    print_phase("(a) push, batch 1, max_in_flight 100", &push1);
    snprintf(what, sizeof what, "    pull 1 + ack, %d consumers", consumers);
    print_phase(what, &pull1);
    print_phase("(b) push, batch 100, max_in_flight 100", &push100);
    print_phase("    pull 100 + ack, 1 consumer", &pull100);
    printf("  %-44s %9.0f/s  %7.2f us  %8llu  %5llu  %6.2f us  %5.2f\n",
           "(c) load generator, 100 in flight (its CPU)", lim.rate, lim.cpu_us,
           (unsigned long long)lim.requests, (unsigned long long)lim.conns, lim.recv_us,
           lim.load);
    double pa = pull1.rate > 0 ? 100 * push1.rate / pull1.rate : 0;
    double pb = pull100.rate > 0 ? 100 * push100.rate / pull100.rate : 0;
    double pc = lim.rate > 0 ? 100 * push1.rate / lim.rate : 0;
    printf("  (a) push = %.0f%% of pull 1 + ack (CPU per event %.0f%%); (b) push = %.0f%% of "
           "pull 100 + ack (CPU %.0f%%); push batch 1 = %.0f%% of (c)\n", pa,
           pull1.cpu_us > 0 ? 100 * push1.cpu_us / pull1.cpu_us : 0, pb,
           pull100.cpu_us > 0 ? 100 * push100.cpu_us / pull100.cpu_us : 0, pc);
    printf("RESULT push_throughput push=%.0f pull1=%.0f pct=%.1f batch100=%.0f pull100=%.0f "
           "pct100=%.1f limit=%.0f pct_limit=%.1f cpu_push1=%.3f cpu_pull1=%.3f "
           "cpu_push100=%.3f cpu_pull100=%.3f load=%.2f\n", push1.rate, pull1.rate, pa,
           push100.rate, pull100.rate, pb, lim.rate, pc, push1.cpu_us, pull1.cpu_us,
           push100.cpu_us, pull100.cpu_us, lim.load);

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
