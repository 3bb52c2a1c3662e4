/* log.c - bench/log: append throughput and append-to-durable latency of the
 * event log under the default policy (fsync always), with 1, 8 and 64
 * concurrent appenders, beside this machine's raw sequential write +
 * fdatasync figures measured by the same program in the same run.
 *
 * What it models: an "appender" is a thread that keeps up to `window`
 * appends of one 200-byte record outstanding, like a producer with that
 * many in-flight requests, or like eventbusd's loop thread, which hands
 * the log every publish of every connection without waiting for the
 * previous one (a connection may have 128 unanswered requests). Each
 * append is acknowledged only after the fdatasync covering it.
 *
 * Latency is from the eb_log_append() call to its durable callback (which
 * the log runs right after the fdatasync and publish), per record; the
 * p50/p99 are over every record of the run. The callback only notes the
 * time and counts. When its window is full an appender sleeps until one of
 * its appends is durable. Who wakes it (--wake):
 *   thread (default): the log's durable hook (once per batch, on the
 *          writer thread) wakes one completion thread, which wakes every
 *          sleeping appender. This is eventbusd's shape: the writer wakes
 *          the loop thread once per batch (uv_async_send) and the loop
 *          answers every request of the batch.
 *   hook:  the durable hook wakes every sleeping appender itself, so the
 *          writer makes up to one wake-up per appender per batch before it
 *          starts the next batch's write.
 *   each:  every callback posts its appender's semaphore (the first
 *          version of this harness): a wake-up per record.
 *
 * The raw figure is `dd bs=1M count=256 conv=fdatasync` done in-process:
 * one 256 MiB sequential write then one fdatasync. On a VM the first touch
 * of guest memory can make the write phase slow, so it is measured after
 * a warm-up pass, three times, and the median is the reference (min and
 * max printed). A second reference, "one thread, 200-byte records", is the
 * ceiling of the record format on one core with no coordination: one
 * thread encodes records (header + CRC32C + copy) into a 1 MiB buffer and
 * writes + fdatasyncs it, in a loop.
 *
 * Usage: bench_log [DIR] [--window N] [--appenders 1,8,64] [--records N]
 *                  [--repeat N] [--wake thread|hook|each]
 *                  [--fsync always|never] [--no-ceiling] [--raw-mbps X]
 * --repeat runs each configuration N times and reports the median run with
 * the min and max; --raw-mbps skips measuring the disk (for profiling);
 * --fsync never takes the disk out of the loop, which shows the CPU ceiling
 * of log + harness on this machine (not a durable configuration); by
 * default the largest appender count is also run that way, with a window
 * of at least 128 so that wake-ups are few, after the durable runs
 * (--no-ceiling skips it). */

#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "eventbus/err.h"
#include "log/log.h"
#include "log/log_int.h"

#define REC 200
#define MAX_WINDOW 4096
#define CEILING_WINDOW 128 /* few wake-ups per record: the ceiling run */

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* --- the raw disk ---------------------------------------------------------- */

static double median3(double v[3], double *lo, double *hi)
{
    qsort(v, 3, sizeof *v, cmp_d);
    *lo = v[0];
    *hi = v[2];
    return v[1];
}

/* One 256 MiB write + one fdatasync, in MB/s. */
static double raw_bandwidth(int fd)
{
    static char big[1 << 20];
    memset(big, 'r', sizeof big);
    if (ftruncate(fd, 0) != 0)
        return 0;
    double t = now_s();
    for (int i = 0; i < 256; i++)
        if (pwrite(fd, big, sizeof big, (off_t)i << 20) != (ssize_t)sizeof big)
            return 0;
    if (fdatasync(fd) != 0)
        return 0;
    return 256.0 * 1.048576 / (now_s() - t);
}

/* Median of 300 appends of 4 KiB, each followed by fdatasync, in µs. */
static double raw_sync_us(int fd)
{
    static char block[4096];
    double lat[300];
    if (ftruncate(fd, 0) != 0)
        return 0;
    for (int i = 0; i < 300; i++) {
        double t = now_s();
        if (pwrite(fd, block, sizeof block, (off_t)i * 4096) != (ssize_t)sizeof block ||
            fdatasync(fd))
            return 0;
        lat[i] = (now_s() - t) * 1e6;
    }
    qsort(lat, 300, sizeof *lat, cmp_d);
    return lat[150];
}

/* One thread encoding 200-byte records into 1 MiB batches, each written and
 * fdatasync'ed: records/s. */
static double raw_records(int fd, double secs)
{
    static unsigned char buf[1 << 20];
    static const unsigned char payload[REC] = {0};
    const size_t per = sizeof buf / (EB_LOG_REC_HDR + REC);
    uint64_t seq = 0;
    off_t off = 0;
    if (ftruncate(fd, 0) != 0)
        return 0;
    double t0 = now_s(), t;
    do {
        unsigned char *p = buf;
        for (size_t i = 0; i < per; i++, seq++) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            eb_log_rhdr h = {REC, 0, seq, (uint64_t)ts.tv_nsec, 1, 0, 0};
            eb__log_rhdr_encode(&h, p);
            memcpy(p + EB_LOG_REC_HDR, payload, REC);
            eb__put32(p + 4, eb__log_rec_crc(p, p + EB_LOG_REC_HDR, REC));
            p += EB_LOG_REC_HDR + REC;
        }
        size_t len = (size_t)(p - buf);
        if (pwrite(fd, buf, len, off) != (ssize_t)len || fdatasync(fd))
            return 0;
        off += (off_t)len;
        t = now_s();
    } while (t - t0 < secs);
    return (double)seq / (t - t0);
}

typedef struct raw_figs {
    double sync_us;                 /* 4 KiB append + fdatasync, median */
    double mbps, mbps_lo, mbps_hi;  /* 256 MiB write + fdatasync: median of 3 */
    double mbps_cold;               /* the same, first pass (the warm-up) */
    double rec_s;                   /* one thread, 200-byte records */
} raw_figs;

static void raw_disk(const char *dir, raw_figs *r)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/raw", dir);
    int fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0644);
    if (fd < 0) {
        perror(path);
        exit(1);
    }
    double bw[3];
    r->mbps_cold = raw_bandwidth(fd); /* warm-up: first touch of page-cache memory */
    for (int i = 0; i < 3; i++)
        bw[i] = raw_bandwidth(fd);
    r->mbps = median3(bw, &r->mbps_lo, &r->mbps_hi);
    r->sync_us = raw_sync_us(fd);
    r->rec_s = raw_records(fd, 1.0);
    close(fd);
    unlink(path);
}

/* --- the log ----------------------------------------------------------------- */

/* How durable appends get their appender going again. */
typedef enum wake_mode {
    WAKE_THREAD, /* the hook wakes a completion thread, which wakes appenders */
    WAKE_HOOK,   /* the hook (writer thread) wakes every sleeping appender */
    WAKE_EACH    /* every callback posts its appender's semaphore */
} wake_mode;

static const char *const wake_names[] = {"thread", "hook", "each"};

/* A thread that sleeps until some condition holds, and is woken only if it
 * sleeps. The sleeper: w = parked_wakes(); check the condition; park(w).
 * The waker: make the condition true, then unpark(). A wake-up bumps
 * `wakes` before waking, so park() returns at once if one came after w was
 * read, even one that found `sleeping` still clear. */
typedef struct parking {
    atomic_int       sleeping;
    _Atomic uint32_t wakes; /* futex word */
} parking;

static void futex_wait(_Atomic uint32_t *w, uint32_t val)
{
    syscall(SYS_futex, (uint32_t *)w, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

static void futex_wake(_Atomic uint32_t *w)
{
    syscall(SYS_futex, (uint32_t *)w, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static uint32_t parked_wakes(parking *p) { return atomic_load(&p->wakes); }

static void announce_sleep(parking *p) { atomic_store(&p->sleeping, 1); }

static void park(parking *p, uint32_t w) { futex_wait(&p->wakes, w); }

static void unpark(parking *p)
{
    if (atomic_load(&p->sleeping) && atomic_exchange(&p->sleeping, 0)) {
        atomic_fetch_add(&p->wakes, 1);
        futex_wake(&p->wakes);
    }
}

typedef struct appender appender;

typedef struct slot {
    double    t0;  /* when its append was made */
    double    lat; /* append-to-durable, filled by the callback */
    appender *a;
} slot;

struct appender {
    eb_log     *log;
    int         n;         /* appends to make */
    int         window;    /* at most this many outstanding */
    wake_mode   wake;
    slot       *win;       /* outstanding appends, used round-robin */
    atomic_uint completed; /* durable callbacks so far */
    parking     park;      /* sleeps here while its window is full */
    sem_t       sem;       /* WAKE_EACH: one post per record */
    double     *lat;       /* n latencies */
};

static void on_durable(void *arg, int status)
{
    slot *s = arg;
    appender *a = s->a;
    if (status) {
        fprintf(stderr, "append failed: %s\n", eb_strerror(status));
        abort();
    }
    s->lat = (now_s() - s->t0) * 1e6;
    if (a->wake == WAKE_EACH)
        sem_post(&a->sem);
    else
        atomic_fetch_add(&a->completed, 1);
}

/* The appenders of one run and, in WAKE_THREAD mode, their completion
 * thread (in eventbusd the loop thread plays this part: the writer wakes
 * it once per batch and it answers every request whose batch is durable). */
typedef struct group {
    appender        *a;
    int              n;
    wake_mode        wake;
    _Atomic uint32_t batches; /* durable batches so far */
    atomic_int       stop;
    parking          park;    /* the completion thread sleeps here */
    pthread_t        th;
} group;

static void wake_appenders(group *g)
{
    for (int i = 0; i < g->n; i++)
        unpark(&g->a[i].park);
}

/* The log's durable hook: runs on the writer thread once per batch, after
 * the batch's callbacks. */
static void on_batch(void *arg, uint64_t durable)
{
    group *g = arg;
    (void)durable;
    if (g->wake == WAKE_HOOK) {
        wake_appenders(g);
    } else if (g->wake == WAKE_THREAD) {
        atomic_fetch_add(&g->batches, 1);
        unpark(&g->park);
    }
}

static void *completion_thread(void *p)
{
    group *g = p;
    uint32_t seen = 0;
    while (!atomic_load(&g->stop)) {
        uint32_t w = parked_wakes(&g->park), b = atomic_load(&g->batches);
        if (b != seen) {
            seen = b;
            wake_appenders(g);
            continue;
        }
        announce_sleep(&g->park);
        if (atomic_load(&g->batches) == seen && !atomic_load(&g->stop))
            park(&g->park, w);
    }
    return NULL;
}

/* Waits until fewer than `window` of the first `made` appends are pending. */
static void wait_slot(appender *a, uint32_t made)
{
    if (a->wake == WAKE_EACH) {
        sem_wait(&a->sem);
        return;
    }
    for (;;) {
        uint32_t w = parked_wakes(&a->park), c = atomic_load(&a->completed);
        if (made - c < (uint32_t)a->window)
            return;
        announce_sleep(&a->park);
        if (atomic_load(&a->completed) == c)
            park(&a->park, w);
    }
}

static void *run(void *p)
{
    appender *a = p;
    static const char payload[REC] = {0};
    if (a->wake == WAKE_EACH)
        sem_init(&a->sem, 0, (unsigned)a->window);
    for (int i = 0; i < a->n; i++) {
        wait_slot(a, (uint32_t)i);
        slot *s = &a->win[i % a->window];
        if (i >= a->window)
            a->lat[i - a->window] = s->lat;
        s->a = a;
        s->t0 = now_s();
        eb_log_rec_in r = {1, 0, payload, REC};
        uint64_t seq, ts;
        if (eb_log_append(a->log, &r, 1, &seq, &ts, on_durable, s) != 0)
            abort();
    }
    if (a->wake == WAKE_EACH) /* drain */
        for (int i = 0; i < a->window; i++)
            sem_wait(&a->sem);
    else
        wait_slot(a, (uint32_t)a->n + (uint32_t)a->window - 1);
    for (int i = a->n > a->window ? a->n - a->window : 0; i < a->n; i++)
        a->lat[i] = a->win[i % a->window].lat;
    if (a->wake == WAKE_EACH)
        sem_destroy(&a->sem);
    return NULL;
}

typedef struct run_opts {
    int    window;
    int    records;   /* total per configuration; 0: 100k for 1 appender, else 960k */
    int    repeat;    /* runs per configuration (median, min, max reported) */
    wake_mode wake;
    eb_fsync_policy fsync; /* ALWAYS; NEVER shows the log's CPU ceiling */
    bool   ceiling;   /* after ALWAYS, run the most appenders with NEVER too */
    double raw_mbps;  /* given: the raw disk is not measured */
} run_opts;

/* The figures of one run. */
typedef struct figs {
    double rps, mbps, p50, p99, p999, per_sync, cpu_us;
} figs;

/* Percentiles of n latencies (sorted in place). */
static void percentiles(double *all, size_t n, figs *f)
{
    qsort(all, n, sizeof *all, cmp_d);
    f->p50 = all[n / 2];
    f->p99 = all[n * 99 / 100];
    f->p999 = all[n * 999 / 1000];
}

/* One run: `threads` appenders on a fresh log in dir. */
static void bench(const char *dir, int threads, int run_no, const run_opts *ro, figs *f)
{
    char d[4200];
    snprintf(d, sizeof d, "%s/log-%d-%d", dir, threads, run_no);
    eb_log_opts o = {.dir = d, .fsync = ro->fsync};
    eb_log *l;
    if (eb_log_open(&o, &l, NULL)) {
        fprintf(stderr, "cannot open %s\n", d);
        exit(1);
    }
    int records = ro->records ? ro->records : threads == 1 ? 100000 : 960000;
    int per = records / threads;
    appender *a = calloc((size_t)threads, sizeof *a);
    pthread_t *th = calloc((size_t)threads, sizeof *th);
    group g = {.a = a, .n = threads, .wake = ro->wake};
    eb_log_set_durable_hook(l, on_batch, &g);
    if (ro->wake == WAKE_THREAD)
        pthread_create(&g.th, NULL, completion_thread, &g);
    struct timespec c0, c1;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
    double t = now_s();
    for (int i = 0; i < threads; i++) {
        a[i] = (appender){.log = l, .n = per, .window = ro->window, .wake = ro->wake};
        a[i].win = calloc((size_t)ro->window, sizeof *a[i].win);
        a[i].lat = calloc((size_t)per, sizeof(double));
        pthread_create(&th[i], NULL, run, &a[i]);
    }
    for (int i = 0; i < threads; i++)
        pthread_join(th[i], NULL);
    double secs = now_s() - t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
    if (ro->wake == WAKE_THREAD) {
        atomic_store(&g.stop, 1);
        atomic_fetch_add(&g.park.wakes, 1);
        futex_wake(&g.park.wakes);
        pthread_join(g.th, NULL);
    }
    double cpu = (double)(c1.tv_sec - c0.tv_sec) + (double)(c1.tv_nsec - c0.tv_nsec) / 1e9;
    eb_log_stats st;
    eb_log_get_stats(l, &st);
    eb_log_close(l);
    size_t total = (size_t)threads * (size_t)per;
    double *all = malloc(total * sizeof *all);
    for (int i = 0; i < threads; i++) {
        memcpy(all + (size_t)i * (size_t)per, a[i].lat, (size_t)per * sizeof *all);
        free(a[i].lat);
        free(a[i].win);
    }
    percentiles(all, total, f);
    f->rps = (double)total / secs;
    f->mbps = f->rps * (REC + EB_LOG_REC_HDR) / 1e6;
    f->per_sync = st.syncs ? (double)total / (double)st.syncs : 0;
    f->cpu_us = cpu * 1e6 / (double)total;
    free(all);
    free(a);
    free(th);
}

static void print_figs(const char *what, const figs *f, double raw_mbps)
{
    char per_sync[32] = "     -";
    if (f->per_sync > 0)
        snprintf(per_sync, sizeof per_sync, "%6.1f", f->per_sync);
    printf("%-16s %9.0f records/s %6.1f MB/s (%3.0f%% of raw)  p50 %6.0f us  p99 %6.0f us  "
           "p99.9 %6.0f us  %s records/fsync  %4.2f us CPU/record\n", what, f->rps, f->mbps,
           100 * f->mbps / raw_mbps, f->p50, f->p99, f->p999, per_sync, f->cpu_us);
    fflush(stdout);
}

static int cmp_figs(const void *a, const void *b)
{
    return cmp_d(&((const figs *)a)->rps, &((const figs *)b)->rps);
}

/* Runs one configuration ro->repeat times; prints each run and, when
 * repeated, the median run (by records/s) with the min and max. */
static void configuration(const char *dir, int threads, const run_opts *ro,
                          const raw_figs *raw, const char *tag)
{
    double raw_mbps = raw->mbps, cold = raw->mbps_cold ? raw->mbps_cold : raw->mbps;
    figs f[16];
    int n = ro->repeat;
    char what[64];
    for (int i = 0; i < n; i++) {
        bench(dir, threads, i, ro, &f[i]);
        snprintf(what, sizeof what, "%3d appenders:", threads);
        print_figs(what, &f[i], raw_mbps);
    }
    qsort(f, (size_t)n, sizeof *f, cmp_figs);
    const figs *m = &f[n / 2];
    if (n > 1)
        printf("%3d appenders, median of %d: %.0f records/s (min %.0f, max %.0f), %.1f MB/s = "
               "%.0f%% of raw (%.0f%% of the first pass), p50 %.0f us, p99 %.0f us\n", threads,
               n, m->rps, f[0].rps, f[n - 1].rps, m->mbps, 100 * m->mbps / raw_mbps,
               100 * m->mbps / cold, m->p50, m->p99);
    printf("RESULT %s records_per_s=%.0f min_records_per_s=%.0f max_records_per_s=%.0f "
           "mb_per_s=%.1f p50_us=%.0f p99_us=%.0f pct_raw=%.1f pct_cold=%.1f\n", tag, m->rps,
           f[0].rps, f[n - 1].rps, m->mbps, m->p50, m->p99, 100 * m->mbps / raw_mbps,
           100 * m->mbps / cold);
    fflush(stdout);
}

static int parse_args(int argc, char **argv, const char **base, run_opts *ro, int *counts,
                      int *ncounts)
{
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(argv[i], "--window") && v)
            ro->window = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--records") && v)
            ro->records = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--raw-mbps") && v) /* skip measuring (profiling) */
            ro->raw_mbps = atof(argv[++i]);
        else if (!strcmp(argv[i], "--repeat") && v)
            ro->repeat = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--no-ceiling"))
            ro->ceiling = false;
        else if (!strcmp(argv[i], "--fsync") && v)
            ro->fsync = !strcmp(argv[++i], "never") ? EB_FSYNC_NEVER : EB_FSYNC_ALWAYS;
        else if (!strcmp(argv[i], "--wake") && v) {
            int m = 0;
            i++;
            while (m < 3 && strcmp(argv[i], wake_names[m]))
                m++;
            if (m == 3)
                return -1;
            ro->wake = (wake_mode)m;
        }
        else if (!strcmp(argv[i], "--appenders") && v) {
            *ncounts = 0;
            for (char *s = argv[++i]; *s && *ncounts < 8; s++) {
                counts[(*ncounts)++] = (int)strtol(s, &s, 10);
                if (!*s)
                    break;
            }
        } else if (argv[i][0] != '-')
            *base = argv[i];
        else
            return -1;
    }
    return ro->window >= 1 && ro->window <= MAX_WINDOW && ro->records >= 0 &&
                   ro->repeat >= 1 && ro->repeat <= 16 ? 0 : -1;
}

int main(int argc, char **argv)
{
    const char *base = "/tmp";
    run_opts ro = {.window = 32, .repeat = 1, .ceiling = true};
    int counts[8] = {1, 8, 64}, ncounts = 3;
    if (parse_args(argc, argv, &base, &ro, counts, &ncounts)) {
        fprintf(stderr, "usage: bench_log [DIR] [--window N] [--appenders 1,8,64] "
                        "[--records N] [--repeat N] [--wake thread|hook|each] "
                        "[--fsync always|never] [--no-ceiling] [--raw-mbps X]\n");
        return 2;
    }
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/eb-bench-log-XXXXXX", base);
    if (!mkdtemp(dir))
        return 1;
    raw_figs raw = {.mbps = ro.raw_mbps};
    if (!ro.raw_mbps)
        raw_disk(dir, &raw);
    printf("raw disk here: 4 KiB write+fdatasync median %.0f us; sequential write+fdatasync "
           "%.0f MB/s (min %.0f, max %.0f of 3; first pass %.0f); one thread, %d-byte "
           "records, 1 MiB write+fdatasync: %.0f records/s\n", raw.sync_us, raw.mbps,
           raw.mbps_lo, raw.mbps_hi, raw.mbps_cold, REC, raw.rec_s);
    printf("RESULT raw sync_us=%.0f mb_per_s=%.0f cold_mb_per_s=%.0f "
           "one_thread_records_per_s=%.0f\n", raw.sync_us, raw.mbps, raw.mbps_cold, raw.rec_s);
    printf("log, fsync=%s, %d-byte records, window %d per appender%s:\n",
           ro.fsync == EB_FSYNC_NEVER ? "never" : "always", REC, ro.window,
           ro.wake == WAKE_EACH   ? ", a semaphore post per record"
           : ro.wake == WAKE_HOOK ? ", the writer wakes appenders"
                                  : ", a completion thread wakes appenders");
    int most = 0;
    for (int i = 0; i < ncounts; i++) {
        char tag[64];
        snprintf(tag, sizeof tag, "log_%d%s", counts[i], ro.fsync == EB_FSYNC_NEVER ? "_nosync" : "");
        if (counts[i] > 0)
            configuration(dir, counts[i], &ro, &raw, tag);
        most = counts[i] > most ? counts[i] : most;
    }
    if (ro.fsync == EB_FSYNC_ALWAYS && most > 0 && ro.ceiling) {
        char tag[64];
        snprintf(tag, sizeof tag, "log_%d_nosync", most);
        ro.fsync = EB_FSYNC_NEVER;
        ro.window = ro.window > CEILING_WINDOW ? ro.window : CEILING_WINDOW;
        printf("the same without fdatasync, window %d (not durable: the CPU ceiling of log + "
               "harness here):\n", ro.window);
        configuration(dir, most, &ro, &raw, tag);
    }
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : 1;
}
