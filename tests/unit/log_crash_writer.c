/* log_crash_writer.c - the victim of test_log_slow's crash loop: appends
 * from 4 threads until killed, and after each append is reported durable
 * writes "seq crc\n" per record to stdout (one write(2) per append, atomic
 * on a pipe). Usage: log_crash_writer DIR [always|interval]: with
 * `interval` the appends go through eb_log_append_inline, so some are
 * written by the appending thread itself and some (while another thread's
 * batch is out) by the writer thread. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "eventbus/err.h"
#include "log/log.h"
#include "util/crc32c.h"

static eb_log *lg;
static int      use_inline;

typedef struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t  cv;
    int             done, status;
} waiter;

static void done_cb(void *arg, int status)
{
    waiter *w = arg;
    pthread_mutex_lock(&w->mu);
    w->done = 1;
    w->status = status;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

/* Appends and waits until durable, through the inline path when asked. */
static int append(const eb_log_rec_in *r, size_t n, uint64_t *seq)
{
    uint64_t ts;
    if (!use_inline)
        return eb_log_append_sync(lg, r, n, seq, &ts);
    waiter w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
    int rc = eb_log_append_inline(lg, r, n, seq, &ts, done_cb, &w);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    pthread_mutex_lock(&w.mu);
    while (!w.done)
        pthread_cond_wait(&w.cv, &w.mu);
    pthread_mutex_unlock(&w.mu);
    return w.status;
}

static void *run(void *arg)
{
    unsigned t = (unsigned)(uintptr_t)arg, n = 0;
    char buf[3][600];
    for (;;) {
        n++;
        unsigned cnt = 1 + n % 3; /* batches of 1..3 records */
        eb_log_rec_in r[3];
        for (unsigned k = 0; k < cnt; k++) {
            int len = snprintf(buf[k], 64, "t%u-n%u-k%u:", t, n, k);
            size_t fill = (n * 7 + k * 13) % 500;
            memset(buf[k] + len, 'a' + (int)((n + k) % 26), fill);
            r[k] = (eb_log_rec_in){1, (uint16_t)k, buf[k], (uint32_t)(len + (int)fill)};
        }
        uint64_t seq;
        if (append(r, cnt, &seq) != 0)
            return NULL;
        char line[128];
        int ln = 0;
        for (unsigned k = 0; k < cnt; k++)
            ln += snprintf(line + ln, sizeof line - (size_t)ln, "%llu %08x\n",
                           (unsigned long long)(seq + k), eb_crc32c(0, r[k].data, r[k].len));
        if (write(1, line, (size_t)ln) != ln)
            return NULL;
    }
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    use_inline = argc > 2 && strcmp(argv[2], "interval") == 0;
    eb_log_opts o = {.dir = argv[1], .segment_bytes = 256 << 10,
                     .fsync = use_inline ? EB_FSYNC_INTERVAL : EB_FSYNC_ALWAYS};
    if (eb_log_open(&o, &lg, NULL) != 0)
        return 1;
    pthread_t th[4];
    for (uintptr_t t = 0; t < 4; t++)
        pthread_create(&th[t], NULL, run, (void *)t);
    for (int t = 0; t < 4; t++)
        pthread_join(th[t], NULL);
    return 0;
}
