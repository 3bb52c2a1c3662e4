/* test_log_slow.c - the log under real crashes and at size:
 *   - crash loop: a writer process appending from 4 threads is SIGKILLed
 *     at random moments, 60 times over one directory (30 more with
 *     --fsync interval and inline appends); after each kill the
 *     log is reopened and every append the writer had seen acknowledged
 *     must be there, intact (CRC of its payload), in order, with no gap.
 *   - recovery of a 1,000,000-record log, and of one whose index is gone. */
#include "runner.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "eventbus/err.h"
#include "log/log.h"
#include "util/crc32c.h"

static const char *writer_path;

typedef struct acked {
    uint64_t seq;
    uint32_t crc;
} acked;

/* Starts the writer (policy "always" or "interval"), kills it after ms,
 * returns what it acknowledged. */
static size_t crash_once(const char *dir, const char *policy, unsigned ms, acked **out,
                         size_t *cap)
{
    int pfd[2];
    CHECK(pipe(pfd) == 0);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        dup2(pfd[1], 1);
        close(pfd[0]);
        execl(writer_path, writer_path, dir, policy, (char *)NULL);
        _exit(127);
    }
    close(pfd[1]);
    struct timespec d = {0, (long)ms * 1000000L};
    nanosleep(&d, NULL);
    kill(pid, SIGKILL);
    int st;
    waitpid(pid, &st, 0);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    FILE *f = fdopen(pfd[0], "r");
    size_t n = 0;
    unsigned long long seq;
    unsigned crc;
    while (fscanf(f, "%llu %x", &seq, &crc) == 2) {
        if (n == *cap) {
            *cap = *cap ? *cap * 2 : 4096;
            *out = realloc(*out, *cap * sizeof **out);
        }
        (*out)[n++] = (acked){seq, crc};
    }
    fclose(f);
    return n;
}

typedef struct verify_ctx {
    uint64_t next;
} verify_ctx;

static int contiguous(void *arg, const eb_log_rec *r)
{
    verify_ctx *v = arg;
    CHECK_EQ(r->seq, v->next);
    v->next++;
    return 0;
}

/* kills: 60 for fsync always, fewer for the inline path. */
static void crash_loop(const char *policy, int kills)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/crash-%s", eb_test_tmpdir(), policy);
    unsigned seed = (unsigned)time(NULL);
    printf("seed %u\n", seed);
    srand(seed);
    acked *a = NULL;
    size_t cap = 0, total = 0;
    uint64_t truncated = 0;
    for (int iter = 0; iter < kills; iter++) {
        size_t n = crash_once(dir, policy, 10 + (unsigned)(rand() % 120), &a, &cap);
        total += n;
        eb_log_opts o = {.dir = dir, .segment_bytes = 256 << 10};
        eb_log *l;
        eb_log_recovery rep;
        CHECK_OK(eb_log_open(&o, &l, &rep));
        truncated += rep.truncated_bytes;
        eb_buf b = EB_BUF_INIT;
        for (size_t i = 0; i < n; i++) {
            eb_log_rec r;
            int rc = eb_log_read(l, a[i].seq, &r, &b);
            if (rc)
                eb_test_fail(__FILE__, __LINE__, "iteration %d: acknowledged seq %llu lost (%s)",
                             iter, (unsigned long long)a[i].seq, eb_strerror(rc));
            CHECK_EQ(eb_crc32c(0, r.data, r.len), a[i].crc);
        }
        eb_buf_free(&b);
        /* every record present is intact (scan checks CRCs) and gapless */
        verify_ctx v = {eb_log_first_seq(l)};
        CHECK_OK(eb_log_scan(l, 1, SIZE_MAX, contiguous, &v));
        CHECK_EQ(v.next, eb_log_durable_seq(l));
        eb_log_close(l);
    }
    free(a);
    printf("--fsync %s: %d kills, %zu acknowledged appends checked, %llu torn bytes "
           "truncated\n", policy, kills, total, (unsigned long long)truncated);
    CHECK(total > 1000);
}

TEST(sigkill_loses_no_acknowledged_append)
{
    crash_loop("always", 60);
}

/* --fsync interval, appends written on the appending threads
 * (eb_log_append_inline) and by the writer: a process crash keeps the page
 * cache, so every append reported written must be there too. */
TEST(sigkill_loses_no_append_written_inline)
{
    crash_loop("interval", 30);
}

TEST(recovers_a_million_records_fast)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/big", eb_test_tmpdir());
    eb_log_opts o = {.dir = dir, .fsync = EB_FSYNC_NEVER};
    eb_log *l;
    CHECK_OK(eb_log_open(&o, &l, NULL));
    static char payload[100];
    memset(payload, 'p', sizeof payload);
    eb_log_rec_in recs[1000];
    for (int i = 0; i < 1000; i++)
        recs[i] = (eb_log_rec_in){1, 0, payload, sizeof payload};
    for (int k = 0; k < 1000; k++) {
        uint64_t s, ts;
        CHECK_OK(k == 999 ? eb_log_append_sync(l, recs, 1000, &s, &ts)
                          : eb_log_append(l, recs, 1000, &s, &ts, NULL, NULL));
    }
    eb_log_close(l);
    eb_log_recovery rep;
    CHECK_OK(eb_log_open(&o, &l, &rep));
    CHECK_EQ(rep.records, 1000000);
    CHECK_EQ(rep.last_seq, 1000000);
    printf("recovered %llu records in %llu segments in %.1f ms\n",
           (unsigned long long)rep.records, (unsigned long long)rep.segments, rep.elapsed_ms);
    eb_buf b = EB_BUF_INIT;
    eb_log_rec r;
    CHECK_OK(eb_log_read(l, 777777, &r, &b));
    CHECK_EQ(r.len, sizeof payload);
    eb_log_close(l);
    CHECK(rep.segments >= 2);
    /* lose the first segment's index: rebuilt by reading that segment only */
    char idx[4200];
    snprintf(idx, sizeof idx, "%s/%020llu.idx", dir, 1ull);
    CHECK(unlink(idx) == 0);
    CHECK_OK(eb_log_open(&o, &l, &rep));
    CHECK_EQ(rep.indexes_rebuilt, 1);
    CHECK_EQ(rep.records, 1000000);
    printf("with one index rebuilt: %.1f ms\n", rep.elapsed_ms);
    CHECK_OK(eb_log_read(l, 5, &r, &b));
    eb_buf_free(&b);
    eb_log_close(l);
}

int main(int argc, char **argv)
{
    writer_path = getenv("EB_LOG_CRASH_WRITER");
    if (!writer_path)
        writer_path = "tests/unit/log_crash_writer";
    static const eb_test tests[] = {T(sigkill_loses_no_acknowledged_append),
                                    T(sigkill_loses_no_append_written_inline),
                                    T(recovers_a_million_records_fast)};
    return eb_test_main(argc, argv, tests, sizeof tests / sizeof tests[0]);
}
