/* driver.c - the publish, consume and latency workloads over peer_ops
 * (see driver.h): threads, pacing, counting, percentiles, RESULT lines. */
#include "driver.h"

#include <errno.h>
#include <signal.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../httpc.h"

#define MAX_THREADS 64

uint64_t drv_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_until(uint64_t ns)
{
    struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000u),
                          .tv_nsec = (long)(ns % 1000000000u)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

static double ms(uint64_t ns)
{
    return (double)ns / 1e6;
}

/* --- publish --------------------------------------------------------------- */

typedef struct pub_job {
    const peer_ops    *p;
    const drv_opts    *o;
    pthread_barrier_t *start;
    int                idx;      /* this thread's index */
    int                threads;
    double            *lat_ms;   /* per batch, indexed by batch number */
    int                failed;
    uint64_t           end_ns;
} pub_job;

/* Publishes batches idx, idx+threads, ... of o->events. */
static void *pub_thread(void *arg)
{
    pub_job *j = arg;
    void *h = j->p->pub_open(j->o);
    pthread_barrier_wait(j->start);
    if (!h) {
        j->failed = 1;
        return NULL;
    }
    uint64_t batch = (uint64_t)j->o->batch;
    uint64_t nbatches = (j->o->events + batch - 1) / batch;
    for (uint64_t b = (uint64_t)j->idx; b < nbatches; b += (uint64_t)j->threads) {
        uint64_t first = b * batch;
        int n = (int)(first + batch <= j->o->events ? batch : j->o->events - first);
        uint64_t t0 = drv_now_ns();
        if (j->p->publish(h, first, n) != 0) {
            j->failed = 1;
            break;
        }
        j->lat_ms[b] = ms(drv_now_ns() - t0);
    }
    j->end_ns = drv_now_ns();
    j->p->pub_close(h);
    return NULL;
}

/* Runs o->publishers threads over o->events; fills seconds and the batch
 * latencies (caller frees *lat). Returns 0 or -1. */
static int publish_all(const peer_ops *p, const drv_opts *o, double *seconds, double **lat,
                       size_t *nlat)
{
    int n = o->publishers < 1 ? 1 : o->publishers > MAX_THREADS ? MAX_THREADS : o->publishers;
    size_t nb = (size_t)((o->events + (uint64_t)o->batch - 1) / (uint64_t)o->batch);
    double *l = calloc(nb ? nb : 1, sizeof *l);
    pub_job jobs[MAX_THREADS];
    pthread_t th[MAX_THREADS];
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, (unsigned)n + 1);
    for (int i = 0; i < n; i++) {
        jobs[i] = (pub_job){.p = p, .o = o, .start = &start, .idx = i, .threads = n, .lat_ms = l};
        pthread_create(&th[i], NULL, pub_thread, &jobs[i]);
    }
    pthread_barrier_wait(&start);
    uint64_t t0 = drv_now_ns(), end = t0;
    int failed = 0;
    for (int i = 0; i < n; i++) {
        pthread_join(th[i], NULL);
        failed |= jobs[i].failed;
        if (jobs[i].end_ns > end)
            end = jobs[i].end_ns;
    }
    pthread_barrier_destroy(&start);
    *seconds = (double)(end - t0) / 1e9;
    *lat = l;
    *nlat = nb;
    return failed ? -1 : 0;
}

/* With --phases: says where the run is and stops until the caller (run.py)
 * has read the server's CPU time and sends SIGCONT. */
static void phase(const drv_opts *o, const char *name)
{
    if (!o->phases)
        return;
    printf("PHASE %s\n", name);
    fflush(stdout);
    raise(SIGSTOP);
}

int drv_publish(const peer_ops *p, const drv_opts *o)
{
    if (p->prepare(o) != 0)
        return -1;
    phase(o, "prepared");
    double secs, *lat;
    size_t nlat;
    int rc = publish_all(p, o, &secs, &lat, &nlat);
    if (rc == 0) {
        double evs = (double)o->events / secs;
        double p50 = bench_pct(lat, nlat, 50), p99 = bench_pct(lat, nlat, 99);
        printf("%s publish: %llu events, batches of %d, %d publishers: %.0f events/s "
               "(batch p50 %.2f ms, p99 %.2f ms, %.2f s)\n",
               p->name, (unsigned long long)o->events, o->batch, o->publishers, evs, p50, p99,
               secs);
        printf("RESULT publish events_per_s=%.0f batch_p50_ms=%.3f batch_p99_ms=%.3f "
               "seconds=%.3f\n", evs, p50, p99, secs);
    }
    free(lat);
    return rc;
}

/* --- consume --------------------------------------------------------------- */

typedef struct con_job {
    const peer_ops    *p;
    const drv_opts    *o;
    pthread_barrier_t *start;
    int                group;
    int                failed;
    uint64_t           unique, redelivered;
    uint64_t           end_ns;
} con_job;

/* Marks n in the bitmap; returns 1 when it was new. */
static int mark(uint8_t *seen, uint64_t n)
{
    uint8_t bit = (uint8_t)(1u << (n & 7));
    if (seen[n >> 3] & bit)
        return 0;
    seen[n >> 3] |= bit;
    return 1;
}

/* Reads group j->group until it has seen every one of o->events. */
static void *con_thread(void *arg)
{
    con_job *j = arg;
    const drv_opts *o = j->o;
    void *c = j->p->con_open(o, j->group);
    uint8_t *seen = calloc((size_t)(o->events / 8 + 1), 1);
    uint64_t *nums = calloc((size_t)o->pull, sizeof *nums);
    pthread_barrier_wait(j->start);
    if (!c) {
        j->failed = 1;
        goto out;
    }
    int idle = 0;
    while (j->unique < o->events) {
        int got = j->p->pull(c, o->pull, 1000, nums);
        if (got < 0 || (got == 0 && ++idle > 30)) {
            fprintf(stderr, "%s: group %d stalled at %llu of %llu events\n", j->p->name,
                    j->group, (unsigned long long)j->unique, (unsigned long long)o->events);
            j->failed = 1;
            break;
        }
        if (got)
            idle = 0;
        for (int i = 0; i < got; i++) {
            if (nums[i] < o->events && mark(seen, nums[i]))
                j->unique++;
            else
                j->redelivered++;
        }
    }
    if (j->p->con_close(c) != 0)
        j->failed = 1;
out:
    j->end_ns = drv_now_ns();
    free(seen);
    free(nums);
    return NULL;
}

/* Starts one consumer thread per group, waits for all; fills per-group
 * seconds. Returns 0 or -1. */
static int consume_all(const peer_ops *p, const drv_opts *o, con_job *jobs, double *secs)
{
    pthread_t th[MAX_THREADS];
    pthread_barrier_t start;
    int n = o->groups;
    pthread_barrier_init(&start, NULL, (unsigned)n + 1);
    for (int g = 0; g < n; g++) {
        jobs[g] = (con_job){.p = p, .o = o, .start = &start, .group = g};
        pthread_create(&th[g], NULL, con_thread, &jobs[g]);
    }
    pthread_barrier_wait(&start);
    uint64_t t0 = drv_now_ns();
    int failed = 0;
    for (int g = 0; g < n; g++) {
        pthread_join(th[g], NULL);
        failed |= jobs[g].failed;
        secs[g] = (double)(jobs[g].end_ns - t0) / 1e9;
    }
    pthread_barrier_destroy(&start);
    return failed ? -1 : 0;
}

static void consume_report(const peer_ops *p, const drv_opts *o, const con_job *jobs,
                           const double *secs)
{
    double lo = 0, hi = 0, sum = 0;
    uint64_t redelivered = 0;
    char per[512];
    size_t len = 0;
    for (int g = 0; g < o->groups; g++) {
        double r = (double)o->events / secs[g];
        lo = g == 0 || r < lo ? r : lo;
        hi = r > hi ? r : hi;
        sum += r;
        redelivered += jobs[g].redelivered;
        int w = snprintf(per + len, sizeof per - len, " g%d=%.0f", g, r);
        if (w > 0 && (size_t)w < sizeof per - len)
            len += (size_t)w;
    }
    per[len] = '\0';
    printf("%s consume: %d groups x %llu events, pull %d + batched acks: events/s per group%s "
           "(slowest %.0f, all groups %.0f/s, %llu redelivered)\n",
           p->name, o->groups, (unsigned long long)o->events, o->pull, per, lo, sum,
           (unsigned long long)redelivered);
    printf("RESULT consume per_group_min=%.0f per_group_max=%.0f total_per_s=%.0f%s "
           "redelivered=%llu\n", lo, hi, sum, per, (unsigned long long)redelivered);
}

int drv_consume(const peer_ops *p, const drv_opts *o)
{
    if (o->groups < 1 || o->groups > MAX_THREADS || p->prepare(o) != 0)
        return -1;
    phase(o, "prepared");
    double psecs, *lat;
    size_t nlat;
    int rc = publish_all(p, o, &psecs, &lat, &nlat);
    free(lat);
    if (rc != 0)
        return -1;
    printf("%s consume: loaded %llu events in %.2f s\n", p->name,
           (unsigned long long)o->events, psecs);
    phase(o, "loaded");
    if (p->groups(o, o->groups, 1) != 0)
        return -1;
    con_job jobs[MAX_THREADS];
    double secs[MAX_THREADS];
    if (consume_all(p, o, jobs, secs) != 0)
        return -1;
    consume_report(p, o, jobs, secs);
    return 0;
}

/* --- latency --------------------------------------------------------------- */

typedef struct lat_state {
    const peer_ops *p;
    const drv_opts *o;
    uint64_t        n;          /* events to send */
    uint64_t        t0;         /* schedule origin */
    uint64_t       *pub_ns;     /* start of each publish */
    uint64_t       *del_ns;     /* delivery of each event (0: not yet) */
    uint64_t       *pub_end;    /* end of each publish call */
    volatile int    pub_done;   /* publishers finished */
    int             failed;
    uint64_t        delivered, redelivered;
} lat_state;

typedef struct lat_pub {
    lat_state *s;
    void      *h;
    int        idx, threads;
} lat_pub;

/* Sends events idx, idx+threads, ... each at t0 + num/rate. */
static void *lat_pub_thread(void *arg)
{
    lat_pub *lp = arg;
    lat_state *s = lp->s;
    double step = 1e9 / s->o->rate;
    for (uint64_t i = (uint64_t)lp->idx; i < s->n; i += (uint64_t)lp->threads) {
        sleep_until(s->t0 + (uint64_t)((double)i * step));
        uint64_t t = drv_now_ns();
        __atomic_store_n(&s->pub_ns[i], t, __ATOMIC_RELEASE);
        if (s->p->publish(lp->h, i, 1) != 0) {
            s->failed = 1;
            break;
        }
        s->pub_end[i] = drv_now_ns();
    }
    return NULL;
}

/* Takes deliveries until every event came or 5 s after the last publish. */
static void *lat_con_thread(void *arg)
{
    lat_state *s = arg;
    void *c = s->p->con_open(s->o, 0);
    if (!c) {
        s->failed = 1;
        return NULL;
    }
    uint64_t *nums = calloc((size_t)s->o->pull, sizeof *nums);
    uint64_t stop = 0;
    while (s->delivered < s->n) {
        int got = s->p->pull(c, s->o->pull, 100, nums);
        uint64_t now = drv_now_ns();
        if (got < 0) {
            s->failed = 1;
            break;
        }
        for (int i = 0; i < got; i++) {
            if (nums[i] < s->n && !s->del_ns[nums[i]]) {
                s->del_ns[nums[i]] = now;
                s->delivered++;
            } else {
                s->redelivered++;
            }
        }
        if (s->pub_done && !stop)
            stop = now + 5000000000u;
        if (stop && now > stop)
            break;
    }
    if (s->p->con_close(c) != 0)
        s->failed = 1;
    free(nums);
    return NULL;
}

static void latency_report(const peer_ops *p, lat_state *s, uint64_t last_end)
{
    double *lat = calloc((size_t)s->n, sizeof *lat), *pl = calloc((size_t)s->n, sizeof *pl);
    size_t k = 0;
    for (uint64_t i = 0; i < s->n; i++) {
        pl[i] = ms(s->pub_end[i] - s->pub_ns[i]);
        if (s->del_ns[i])
            lat[k++] = ms(s->del_ns[i] > s->pub_ns[i] ? s->del_ns[i] - s->pub_ns[i] : 0);
    }
    double p50 = bench_pct(lat, k, 50), p99 = bench_pct(lat, k, 99), mx = bench_pct(lat, k, 100);
    double rate = (double)s->n / ((double)(last_end - s->t0) / 1e9);
    double pub99 = bench_pct(pl, (size_t)s->n, 99);
    printf("%s latency at %.0f events/s for %g s: publish-to-delivery p50 %.3f ms, p99 %.3f ms, "
           "max %.3f ms (%llu of %llu delivered, %llu redelivered; publish rate held %.0f/s, "
           "publish call p99 %.3f ms)\n",
           p->name, s->o->rate, s->o->seconds, p50, p99, mx, (unsigned long long)k,
           (unsigned long long)s->n, (unsigned long long)s->redelivered, rate, pub99);
    printf("RESULT latency p50_ms=%.4f p99_ms=%.4f max_ms=%.4f delivered=%llu sent=%llu "
           "rate=%.0f publish_p99_ms=%.4f\n", p50, p99, mx, (unsigned long long)k,
           (unsigned long long)s->n, rate, pub99);
    free(lat);
    free(pl);
}

int drv_latency(const peer_ops *p, const drv_opts *o)
{
    if (p->prepare(o) != 0 || p->groups(o, 1, 0) != 0)
        return -1;
    int k = o->rate_threads < 1 ? 1 : o->rate_threads > MAX_THREADS ? MAX_THREADS : o->rate_threads;
    lat_state s = {.p = p, .o = o, .n = (uint64_t)(o->rate * o->seconds)};
    s.pub_ns = calloc((size_t)s.n + 1, sizeof(uint64_t));
    s.del_ns = calloc((size_t)s.n + 1, sizeof(uint64_t));
    s.pub_end = calloc((size_t)s.n + 1, sizeof(uint64_t));
    lat_pub pubs[MAX_THREADS];
    pthread_t th[MAX_THREADS], con;
    int rc = -1;
    for (int i = 0; i < k; i++) {
        pubs[i] = (lat_pub){.s = &s, .h = p->pub_open(o), .idx = i, .threads = k};
        if (!pubs[i].h)
            goto out;
    }
    pthread_create(&con, NULL, lat_con_thread, &s);
    s.t0 = drv_now_ns() + 200000000u; /* let the consumer start waiting */
    for (int i = 0; i < k; i++)
        pthread_create(&th[i], NULL, lat_pub_thread, &pubs[i]);
    uint64_t last_end = 0;
    for (int i = 0; i < k; i++)
        pthread_join(th[i], NULL);
    for (uint64_t i = 0; i < s.n; i++)
        last_end = s.pub_end[i] > last_end ? s.pub_end[i] : last_end;
    s.pub_done = 1;
    pthread_join(con, NULL);
    if (!s.failed) {
        latency_report(p, &s, last_end);
        rc = s.delivered == s.n ? 0 : -1;
        if (rc)
            fprintf(stderr, "%s: only %llu of %llu events delivered\n", p->name,
                    (unsigned long long)s.delivered, (unsigned long long)s.n);
    }
out:
    for (int i = 0; i < k; i++)
        if (pubs[i].h)
            p->pub_close(pubs[i].h);
    free(s.pub_ns);
    free(s.del_ns);
    free(s.pub_end);
    return rc;
}

/* --- connect ------------------------------------------------------------------- */

typedef struct conn_job {
    const peer_ops *p;
    const drv_opts *o;
    uint64_t        end_ns, ok, failed;
} conn_job;

static void *conn_thread(void *arg)
{
    conn_job *j = arg;
    while (drv_now_ns() < j->end_ns)
        if (j->p->connect(j->o) == 0)
            j->ok++;
        else
            j->failed++;
    return NULL;
}

int drv_connect(const peer_ops *p, const drv_opts *o)
{
    if (!p->connect) {
        fprintf(stderr, "%s: the connect workload is not offered\n", p->name);
        return -1;
    }
    int n = o->publishers < 1 ? 1 : o->publishers > MAX_THREADS ? MAX_THREADS : o->publishers;
    conn_job jobs[MAX_THREADS];
    pthread_t th[MAX_THREADS];
    phase(o, "prepared");
    uint64_t t0 = drv_now_ns(), end = t0 + (uint64_t)(o->seconds * 1e9);
    for (int i = 0; i < n; i++) {
        jobs[i] = (conn_job){.p = p, .o = o, .end_ns = end};
        pthread_create(&th[i], NULL, conn_thread, &jobs[i]);
    }
    uint64_t ok = 0, failed = 0;
    for (int i = 0; i < n; i++) {
        pthread_join(th[i], NULL);
        ok += jobs[i].ok;
        failed += jobs[i].failed;
    }
    double secs = (double)(drv_now_ns() - t0) / 1e9;
    printf("%s connect: %llu new connections (%llu failed) from %d threads: %.0f/s (%.2f s)\n",
           p->name, (unsigned long long)ok, (unsigned long long)failed, n, (double)ok / secs,
           secs);
    printf("RESULT connect conns_per_s=%.0f conns=%llu failed=%llu seconds=%.3f\n",
           (double)ok / secs, (unsigned long long)ok, (unsigned long long)failed, secs);
    return failed * 100 > ok ? -1 : 0; /* over 1% refused: something is wrong */
}

/* --- command line ------------------------------------------------------------ */

static void usage(const char *prog)
{
    fprintf(stderr,
            "usage: %s publish|consume|latency|connect --target T [--run NAME] [--events N]\n"
            "       [--publishers N] [--batch N] [--groups N] [--pull N] [--rate R]\n"
            "       [--seconds S] [--rate-threads N] [--phases 1]\n"
            "  --phases 1: print PHASE lines and stop (SIGSTOP) at each, for run.py\n"
            "              to read the server's CPU time between phases\n", prog);
}

const char *drv_parse(int argc, char **argv, drv_opts *o)
{
    *o = (drv_opts){.run = "r", .events = 200000, .publishers = 1, .batch = 100, .groups = 3,
                    .pull = 100, .rate = 5000, .seconds = 5, .rate_threads = 16};
    if (argc < 2 || (strcmp(argv[1], "publish") && strcmp(argv[1], "consume") &&
                     strcmp(argv[1], "latency") && strcmp(argv[1], "connect"))) {
        usage(argv[0]);
        return NULL;
    }
    for (int i = 2; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--target"))
            o->target = v;
        else if (!strcmp(k, "--run"))
            o->run = v;
        else if (!strcmp(k, "--events"))
            o->events = strtoull(v, NULL, 10);
        else if (!strcmp(k, "--publishers"))
            o->publishers = atoi(v);
        else if (!strcmp(k, "--batch"))
            o->batch = atoi(v);
        else if (!strcmp(k, "--groups"))
            o->groups = atoi(v);
        else if (!strcmp(k, "--pull"))
            o->pull = atoi(v);
        else if (!strcmp(k, "--rate"))
            o->rate = atof(v);
        else if (!strcmp(k, "--seconds"))
            o->seconds = atof(v);
        else if (!strcmp(k, "--rate-threads"))
            o->rate_threads = atoi(v);
        else if (!strcmp(k, "--phases"))
            o->phases = atoi(v) != 0;
        else {
            fprintf(stderr, "unknown option %s\n", k);
            usage(argv[0]);
            return NULL;
        }
    }
    if (!o->target || o->batch < 1 || o->pull < 1 || o->rate <= 0) {
        usage(argv[0]);
        return NULL;
    }
    o->workload = argv[1];
    return argv[1];
}

int drv_main(const peer_ops *p, int argc, char **argv)
{
    drv_opts o;
    const char *w = drv_parse(argc, argv, &o);
    if (!w)
        return 2;
    int rc = !strcmp(w, "publish") ? drv_publish(p, &o)
           : !strcmp(w, "consume") ? drv_consume(p, &o)
           : !strcmp(w, "connect") ? drv_connect(p, &o)
                                   : drv_latency(p, &o);
    fflush(stdout);
    return rc == 0 ? 0 : 1;
}
