/* delay.c - bench/delay: delayed delivery at scale (issue 17).
 *
 * Starts its own eventbusd and publishes N delayed events (default
 * 1,000,000, batches of 1000 through libeventbus) whose deliver_at times
 * are spread evenly over S seconds (default 10) starting at T0 = the start
 * + LEAD seconds (default 60). While they wait it measures:
 *   - the server's CPU (utime + stime from /proc/PID/stat) over W seconds
 *     (default 10) with nothing waiting (before publishing) and again with
 *     the N events waiting: the target is "near zero", i.e. no more than
 *     an idle server's (its groups timer ticks every 10 ms either way);
 *   - restart time with the N pending: SIGTERM + start, and SIGKILL +
 *     start (to the first answered /healthz), checking /v1/stats still
 *     lists N waiting after each.
 * Then consumer threads (default 4, pull 1000 + ack) drain the group from
 * T0 - 1 s on and, for every event, note
 *   - release error: the copy's append time ("time") - its deliver_at,
 *     what the server adds;
 *   - delivery error: when the consumer had it - its deliver_at, which
 *     adds the consumers' own speed (100,000 events/s to keep up with).
 * Prints p50/p99/max of both (target: delivery p99 < 100 ms), events early
 * (must be 0), and a RESULT line (bench/run.py).
 * Usage: bench_delay EVENTBUSD [--events N] [--spread S] [--lead S] [--idle W]
 *                    [--consumers K] [--fsync POLICY] */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "eventbus.h"
#include "httpc.h"

typedef struct opts {
    const char *daemon, *fsync;
    size_t      events, consumers;
    double      spread, lead, idle;
} opts;

static char g_dir[256], g_url[64], g_listen[64];

static double wall_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* RFC 3339 UTC ("2026-11-29T08:20:14.063573Z") -> seconds since the epoch. */
static double parse_time(const char *s)
{
    struct tm tm = {0};
    double frac = 0;
    if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                     &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6)
        return 0;
    const char *dot = strchr(s, '.');
    if (dot)
        frac = strtod(dot, NULL);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (double)timegm(&tm) + frac;
}

static void format_time(double t, char out[40])
{
    time_t sec = (time_t)t;
    struct tm tm;
    gmtime_r(&sec, &tm);
    size_t n = strftime(out, 40, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 40 - n, ".%06dZ", (int)((t - (double)sec) * 1e6));
}

/* CPU seconds (user + system) of pid so far. */
static double proc_cpu_s(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    unsigned long ut = 0, st = 0;
    /* after ")": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static pid_t start_daemon(const opts *o, double *ready_s)
{
    double t0 = bench_now_s();
    const char *argv[] = {o->daemon, "--listen", g_listen, "--data", g_dir, "--log-level", "warn",
                          "--fsync", o->fsync, "--max-delayed", "100000000", NULL};
    pid_t pid = fork();
    if (pid == 0) {
        execv(o->daemon, (char *const *)argv);
        _exit(127);
    }
    int port = atoi(strrchr(g_listen, ':') + 1);
    for (int i = 0; i < 24000; i++) {
        if (bench_request(port, "GET", "/healthz", NULL, NULL, 0) == 200) {
            *ready_s = bench_now_s() - t0;
            return pid;
        }
        if (waitpid(pid, NULL, WNOHANG) == pid)
            return -1;
        usleep(5000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

static uint64_t waiting(eb_client *c)
{
    char *body = NULL;
    int status = 0;
    if (eb_request(c, "GET", "/v1/stats", NULL, 0, &status, &body) != 0 || !body)
        return UINT64_MAX;
    const char *p = strstr(body, "\"waiting\":");
    uint64_t n = p ? strtoull(p + 10, NULL, 10) : UINT64_MAX;
    eb_free(body);
    return n;
}

static int publish_all(eb_client *c, const opts *o, double t0)
{
    enum { B = 1000 };
    static char data[B][64], at[B][40];
    static eb_message m[B];
    static eb_publish_opts po[B];
    const eb_message *p[B];
    for (size_t done = 0; done < o->events;) {
        size_t k = o->events - done < B ? o->events - done : B;
        for (size_t i = 0; i < k; i++) {
            size_t j = done + i;
            format_time(t0 + o->spread * (double)j / (double)o->events, at[i]);
            snprintf(data[i], sizeof data[i], "{\"n\":%zu}", j);
            po[i] = (eb_publish_opts){.size = sizeof po[i], .deliver_at = at[i]};
            m[i] = (eb_message){.size = sizeof m[i], .type = "bench.delayed", .data = data[i],
                                .opts = &po[i]};
            p[i] = &m[i];
        }
        if (eb_publish_batch(c, p, k, NULL))
            return -1;
        done += k;
    }
    return 0;
}

typedef struct consumer {
    pthread_t t;
    int       idx;
    size_t    target;
    double   *rel, *dlv; /* per event, seconds */
    size_t    n, cap;
    size_t    early;
    int       rc;
} consumer;

static size_t g_total;
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;

static void *consume(void *arg)
{
    consumer *k = arg;
    eb_client *c = NULL;
    char name[16];
    snprintf(name, sizeof name, "c%d", k->idx);
    if (eb_client_new(&(eb_client_opts){.size = sizeof(eb_client_opts), .url = g_url}, &c))
        return k->rc = -1, NULL;
    const char *ids[1000];
    for (;;) {
        pthread_mutex_lock(&g_mu);
        bool done = g_total >= k->target;
        pthread_mutex_unlock(&g_mu);
        if (done)
            break;
        eb_events *l = NULL;
        if (eb_pull(c, "g", name, 1000, 500, &l)) {
            k->rc = -1;
            break;
        }
        double now = wall_s();
        size_t n = eb_events_count(l);
        if (k->n + n > k->cap) {
            k->cap = (k->n + n) * 2;
            k->rel = realloc(k->rel, k->cap * sizeof *k->rel);
            k->dlv = realloc(k->dlv, k->cap * sizeof *k->dlv);
        }
        for (size_t i = 0; i < n; i++) {
            const eb_event *e = eb_events_at(l, i);
            double due = parse_time(e->deliver_at);
            k->rel[k->n] = parse_time(e->time) - due;
            k->dlv[k->n] = now - due;
            k->early += now < due;
            k->n++;
            ids[i] = e->delivery_id;
        }
        int rc = n ? eb_ack(c, "g", ids, n, NULL) : 0;
        eb_events_free(l);
        if (rc) {
            k->rc = -1;
            break;
        }
        pthread_mutex_lock(&g_mu);
        g_total += n;
        pthread_mutex_unlock(&g_mu);
    }
    eb_client_free(c);
    return NULL;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(const double *v, size_t n, double q)
{
    return n ? v[(size_t)(q * (double)(n - 1))] : 0;
}

static double idle_cpu(pid_t pid, double seconds)
{
    double c0 = proc_cpu_s(pid), t0 = bench_now_s();
    usleep((useconds_t)(seconds * 1e6));
    return (proc_cpu_s(pid) - c0) / (bench_now_s() - t0);
}

static int parse_args(int argc, char **argv, opts *o)
{
    *o = (opts){.fsync = "always", .events = 1000000, .consumers = 4, .spread = 10, .lead = 60,
                .idle = 10};
    if (argc < 2)
        return -1;
    o->daemon = argv[1];
    for (int i = 2; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--events")) o->events = strtoull(v, NULL, 10);
        else if (!strcmp(k, "--spread")) o->spread = atof(v);
        else if (!strcmp(k, "--lead")) o->lead = atof(v);
        else if (!strcmp(k, "--idle")) o->idle = atof(v);
        else if (!strcmp(k, "--consumers")) o->consumers = strtoull(v, NULL, 10);
        else if (!strcmp(k, "--fsync")) o->fsync = v;
        else return -1;
    }
    return o->events && o->consumers && o->consumers <= 64 ? 0 : -1;
}

int main(int argc, char **argv)
{
    opts o;
    if (parse_args(argc, argv, &o)) {
        fprintf(stderr, "usage: %s EVENTBUSD [--events N] [--spread S] [--lead S] [--idle W] "
                        "[--consumers K] [--fsync POLICY]\n", argv[0]);
        return 2;
    }
    snprintf(g_dir, sizeof g_dir, "/tmp/eb-bench-delay-XXXXXX");
    if (!mkdtemp(g_dir))
        return 1;
    int port = 20000 + (int)(getpid() % 20000);
    snprintf(g_listen, sizeof g_listen, "127.0.0.1:%d", port);
    snprintf(g_url, sizeof g_url, "http://127.0.0.1:%d", port);
    double ready;
    pid_t pid = start_daemon(&o, &ready);
    if (pid < 0) {
        fprintf(stderr, "bench_delay: eventbusd did not start on %s\n", g_listen);
        return 1;
    }
    eb_client *c = NULL;
    const char *types[] = {"bench.delayed"};
    eb_groups_config g = {.size = sizeof g, .types = types, .ntypes = 1};
    int rc = eb_client_new(&(eb_client_opts){.size = sizeof(eb_client_opts), .url = g_url}, &c);
    if (!rc)
        rc = eb_groups_put(c, "g", &g, NULL, NULL);
    double cpu_empty = rc ? 0 : idle_cpu(pid, o.idle);
    double start = wall_s(), t0 = start + o.lead;
    double tp = bench_now_s();
    if (!rc)
        rc = publish_all(c, &o, t0);
    double pub_s = bench_now_s() - tp;
    printf("published %zu delayed events in %.1f s (%.0f/s), due from T0 = start + %.0f s over "
           "%.0f s\n", o.events, pub_s, (double)o.events / pub_s, o.lead, o.spread);
    double cpu_full = rc ? 0 : idle_cpu(pid, o.idle);
    double r_term = 0, r_kill = 0;
    uint64_t w1 = 0, w2 = 0;
    if (!rc) { /* clean restart, then a crash */
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
        pid = start_daemon(&o, &r_term);
        w1 = pid > 0 ? waiting(c) : 0;
        if (pid > 0) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            pid = start_daemon(&o, &r_kill);
            w2 = pid > 0 ? waiting(c) : 0;
        }
        rc = pid > 0 ? 0 : -1;
    }
    printf("restart with %zu waiting: SIGTERM + start %.2f s (%" PRIu64 " waiting after), "
           "SIGKILL + start %.2f s (%" PRIu64 " waiting after)\n", o.events, r_term, w1, r_kill,
           w2);
    if (!rc && wall_s() > t0 - 1)
        fprintf(stderr, "bench_delay: the lead (%.0f s) was too short: T0 passed before the "
                        "consumers started\n", o.lead);
    while (!rc && wall_s() < t0 - 1)
        usleep(10000);
    consumer ks[64] = {{0}};
    for (size_t i = 0; i < o.consumers && !rc; i++) {
        ks[i].idx = (int)i;
        ks[i].target = o.events;
        pthread_create(&ks[i].t, NULL, consume, &ks[i]);
    }
    size_t n = 0, early = 0;
    for (size_t i = 0; i < o.consumers && !rc; i++) {
        pthread_join(ks[i].t, NULL);
        n += ks[i].n;
        early += ks[i].early;
        rc = rc ? rc : ks[i].rc;
    }
    double *rel = malloc((n ? n : 1) * sizeof *rel), *dlv = malloc((n ? n : 1) * sizeof *dlv);
    for (size_t i = 0, at = 0; i < o.consumers; i++) {
        memcpy(rel + at, ks[i].rel, ks[i].n * sizeof *rel);
        memcpy(dlv + at, ks[i].dlv, ks[i].n * sizeof *dlv);
        at += ks[i].n;
        free(ks[i].rel);
        free(ks[i].dlv);
    }
    qsort(rel, n, sizeof *rel, cmp_d);
    qsort(dlv, n, sizeof *dlv, cmp_d);
    printf("server CPU while waiting: %.4f CPU-s/s with nothing waiting, %.4f with %zu waiting\n",
           cpu_empty, cpu_full, o.events);
    printf("delivered %zu: release error (append - deliver_at) p50 %.1f ms p99 %.1f ms max "
           "%.1f ms; delivery error (consumer has it - deliver_at) p50 %.1f ms p99 %.1f ms max "
           "%.1f ms; %zu early\n", n, 1e3 * pct(rel, n, .5), 1e3 * pct(rel, n, .99),
           1e3 * pct(rel, n, 1), 1e3 * pct(dlv, n, .5), 1e3 * pct(dlv, n, .99),
           1e3 * pct(dlv, n, 1), early);
    if (rc)
        fprintf(stderr, "bench_delay: %s\n", c ? eb_client_error(c)->message : "no client");
    else
        printf("RESULT delay events=%zu publish_s=%.1f cpu_idle_empty=%.4f cpu_idle_waiting=%.4f "
               "restart_term_s=%.2f restart_kill_s=%.2f release_p50_ms=%.1f release_p99_ms=%.1f "
               "delivery_p50_ms=%.1f delivery_p99_ms=%.1f early=%zu delivered=%zu\n",
               o.events, pub_s, cpu_empty, cpu_full, r_term, r_kill, 1e3 * pct(rel, n, .5),
               1e3 * pct(rel, n, .99), 1e3 * pct(dlv, n, .5), 1e3 * pct(dlv, n, .99), early, n);
    free(rel);
    free(dlv);
    eb_client_free(c);
    bench_stop_daemon(pid, g_dir);
    return rc ? 1 : 0;
}
