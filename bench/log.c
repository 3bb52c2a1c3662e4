/* log.c - bench/log: append throughput and append-to-durable latency of the
 * event log under the default policy (fsync always), with 1, 8 and 64
 * concurrent appenders, beside this machine's raw sequential write +
 * fdatasync figures measured by the same program in the same run.
 *
 * An "appender" is a thread that keeps up to WINDOW appends of one 200-byte
 * record outstanding (like a producer with in-flight requests); each append
 * is acknowledged only after the fdatasync covering it. Latency is from
 * eb_log_append() to its durable callback. */
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "eventbus.h"
#include "log/log.h"

#define REC 200
#define WINDOW 32

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

static void raw_disk(const char *dir, double *sync_us, double *mbps)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/raw", dir);
    int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
    static char block[4096], big[1 << 20];
    memset(big, 'r', sizeof big);
    double lat[300];
    for (int i = 0; i < 300; i++) {
        double t = now_s();
        if (write(fd, block, sizeof block) != (ssize_t)sizeof block || fdatasync(fd))
            break;
        lat[i] = (now_s() - t) * 1e6;
    }
    qsort(lat, 300, sizeof *lat, cmp_d);
    *sync_us = lat[150];
    /* like dd bs=1M count=256 conv=fdatasync */
    double t = now_s();
    for (int i = 0; i < 256; i++)
        if (write(fd, big, sizeof big) != (ssize_t)sizeof big)
            break;
    fdatasync(fd);
    *mbps = 256.0 / (now_s() - t);
    close(fd);
    unlink(path);
}

/* --- the log ----------------------------------------------------------------- */

typedef struct appender appender;

typedef struct slot {
    double    t0;   /* when its append was made */
    double    lat;  /* append-to-durable, filled by the callback */
    appender *a;
} slot;

struct appender {
    eb_log *log;
    int     n;           /* appends to make */
    slot    win[WINDOW]; /* outstanding appends, used round-robin */
    sem_t   free_slots;  /* posted by each durable callback */
    double *lat;         /* n latencies */
    int     done;
};

static void on_durable(void *arg, int status)
{
    slot *s = arg;
    (void)status;
    s->lat = (now_s() - s->t0) * 1e6;
    sem_post(&s->a->free_slots);
}

static void *run(void *p)
{
    appender *a = p;
    static const char payload[REC] = {0};
    sem_init(&a->free_slots, 0, WINDOW);
    for (int i = 0; i < a->n; i++) {
        sem_wait(&a->free_slots); /* the window is full: wait for the oldest */
        slot *s = &a->win[i % WINDOW];
        if (i >= WINDOW)
            a->lat[a->done++] = s->lat;
        s->a = a;
        s->t0 = now_s();
        eb_log_rec_in r = {1, 0, payload, REC};
        uint64_t seq, ts;
        if (eb_log_append(a->log, &r, 1, &seq, &ts, on_durable, s) != 0)
            abort();
    }
    for (int i = 0; i < WINDOW; i++) /* drain */
        sem_wait(&a->free_slots);
    for (int i = a->n > WINDOW ? a->n - WINDOW : 0; i < a->n; i++)
        a->lat[a->done++] = a->win[i % WINDOW].lat;
    sem_destroy(&a->free_slots);
    return NULL;
}

static void bench(const char *dir, int threads, int per, double raw_mbps)
{
    char d[4200];
    snprintf(d, sizeof d, "%s/log-%d", dir, threads);
    eb_log_opts o = {.dir = d, .fsync = EB_FSYNC_ALWAYS};
    eb_log *l;
    if (eb_log_open(&o, &l, NULL)) {
        fprintf(stderr, "cannot open %s\n", d);
        exit(1);
    }
    appender *a = calloc((size_t)threads, sizeof *a);
    pthread_t *th = calloc((size_t)threads, sizeof *th);
    double t = now_s();
    for (int i = 0; i < threads; i++) {
        a[i].log = l;
        a[i].n = per;
        a[i].lat = calloc((size_t)per, sizeof(double));
        pthread_create(&th[i], NULL, run, &a[i]);
    }
    for (int i = 0; i < threads; i++)
        pthread_join(th[i], NULL);
    double secs = now_s() - t;
    eb_log_stats st;
    eb_log_get_stats(l, &st);
    eb_log_close(l);
    size_t total = (size_t)threads * (size_t)per;
    double *all = malloc(total * sizeof *all);
    size_t k = 0;
    for (int i = 0; i < threads; i++) {
        memcpy(all + k, a[i].lat, (size_t)a[i].done * sizeof *all);
        k += (size_t)a[i].done;
        free(a[i].lat);
    }
    qsort(all, k, sizeof *all, cmp_d);
    double rps = (double)total / secs, mbps = rps * (REC + 32) / 1e6;
    printf("%3d appenders: %9.0f records/s  %6.1f MB/s (%3.0f%% of raw)  "
           "p50 %6.0f us  p99 %6.0f us  %.1f records/fsync\n",
           threads, rps, mbps, 100 * mbps / raw_mbps, all[k / 2], all[k * 99 / 100],
           (double)total / (double)(st.syncs ? st.syncs : 1));
    printf("RESULT log_%d records_per_s=%.0f mb_per_s=%.1f p50_us=%.0f p99_us=%.0f\n", threads,
           rps, mbps, all[k / 2], all[k * 99 / 100]);
    free(all);
    free(a);
    free(th);
}

int main(int argc, char **argv)
{
    const char *base = argc > 1 ? argv[1] : "/tmp";
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/eb-bench-log-XXXXXX", base);
    if (!mkdtemp(dir))
        return 1;
    double sync_us, raw_mbps;
    raw_disk(dir, &sync_us, &raw_mbps);
    printf("raw disk here: 4 KiB write+fdatasync median %.0f us; sequential write+fdatasync "
           "%.0f MB/s\n", sync_us, raw_mbps);
    printf("RESULT raw sync_us=%.0f mb_per_s=%.0f\n", sync_us, raw_mbps);
    printf("log, fsync=always, %d-byte records, window %d per appender:\n", REC, WINDOW);
    bench(dir, 1, 20000, raw_mbps);
    bench(dir, 8, 40000, raw_mbps);
    bench(dir, 64, 15000, raw_mbps);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : 1;
}
