/* test_log.c - the event log: record format, indexes, rolls, retention,
 * monotonic time, group commit from many threads, corruption handling. */
#include "runner.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <unistd.h>

#include "eventbus/err.h"
#include "log/log.h"
#include "log/log_int.h"
#include "util/crc32c.h"

static eb_log *open_log(const char *sub, uint64_t seg_bytes, eb_log_recovery *rep)
{
    static char dir[4096];
    snprintf(dir, sizeof dir, "%s/%s", eb_test_tmpdir(), sub);
    eb_log_opts o = {.dir = dir, .segment_bytes = seg_bytes, .fsync = EB_FSYNC_NEVER};
    eb_log *l = NULL;
    eb_log_recovery r;
    CHECK_OK(eb_log_open(&o, &l, rep ? rep : &r));
    return l;
}

/* Appends n records "rec-<seq>" one per call. */
static void fill(eb_log *l, int n)
{
    for (int i = 0; i < n; i++) {
        char p[64];
        uint64_t next = eb_log_next_seq(l), seq, ts;
        int len = snprintf(p, sizeof p, "rec-%llu", (unsigned long long)next);
        eb_log_rec_in r = {7, 3, p, (uint32_t)len};
        CHECK_OK(eb_log_append_sync(l, &r, 1, &seq, &ts));
        CHECK_EQ(seq, next);
    }
}

static void check_rec(eb_log *l, uint64_t seq)
{
    eb_buf b = EB_BUF_INIT;
    eb_log_rec r;
    CHECK_OK(eb_log_read(l, seq, &r, &b));
    char want[64];
    int n = snprintf(want, sizeof want, "rec-%llu", (unsigned long long)seq);
    CHECK_EQ(r.seq, seq);
    CHECK_EQ(r.type, 7);
    CHECK_EQ(r.flags, 3);
    CHECK(r.len == (uint32_t)n && memcmp(r.data, want, (size_t)n) == 0);
    eb_buf_free(&b);
}

TEST(crc32c_vectors_hw_and_table)
{
    CHECK_EQ(eb_crc32c_sw(0, "123456789", 9), 0xE3069283u);
    CHECK_EQ(eb_crc32c(0, "123456789", 9), 0xE3069283u);
    unsigned char buf[4096];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (unsigned char)(i * 31 + 7);
    for (size_t n = 0; n < sizeof buf; n += 97)
        CHECK_EQ(eb_crc32c(0, buf, n), eb_crc32c_sw(0, buf, n));
    CHECK_EQ(eb_crc32c(eb_crc32c(0, buf, 100), buf + 100, 900), eb_crc32c_sw(0, buf, 1000));
}

TEST(record_header_round_trip)
{
    eb_log_rhdr h = {123, 0xdeadbeef, 1ull << 40, 1700000000123456ull, 0xabcd, 0x1234, 5}, g;
    unsigned char b[EB_LOG_REC_HDR];
    eb__log_rhdr_encode(&h, b);
    CHECK_EQ(b[0], 123); /* little-endian */
    eb__log_rhdr_decode(b, &g);
    CHECK(memcmp(&h, &g, sizeof h) == 0);
}

TEST(append_read_reopen_across_segments)
{
    eb_log_recovery rep;
    eb_log *l = open_log("a", 4096, &rep);
    CHECK_EQ(rep.records, 0);
    fill(l, 1000);
    CHECK_EQ(eb_log_durable_seq(l), 1001);
    for (uint64_t s = 1; s <= 1000; s += 37)
        check_rec(l, s);
    eb_log_stats st;
    eb_log_get_stats(l, &st);
    CHECK(st.segments > 5);
    eb_log_close(l);
    l = open_log("a", 4096, &rep);
    CHECK_EQ(rep.records, 1000);
    CHECK_EQ(rep.first_seq, 1);
    CHECK_EQ(rep.last_seq, 1000);
    CHECK_EQ(rep.truncated_bytes, 0);
    CHECK_EQ(rep.indexes_rebuilt, 0);
    check_rec(l, 1);
    check_rec(l, 999);
    fill(l, 10); /* appends go on with the next seq */
    check_rec(l, 1010);
    eb_buf b = EB_BUF_INIT;
    eb_log_rec r;
    CHECK_EQ(eb_log_read(l, 1011, &r, &b), EB_ENOTFOUND);
    eb_buf_free(&b);
    eb_log_close(l);
}

typedef struct scan_ctx {
    uint64_t next, count;
} scan_ctx;

static int scan_cb(void *arg, const eb_log_rec *r)
{
    scan_ctx *c = arg;
    CHECK_EQ(r->seq, c->next);
    c->next++;
    c->count++;
    return 0;
}

TEST(scan_crosses_segments_in_order)
{
    eb_log *l = open_log("s", 2048, NULL);
    fill(l, 500);
    scan_ctx c = {37, 0};
    CHECK_OK(eb_log_scan(l, 37, 1000, scan_cb, &c));
    CHECK_EQ(c.count, 464);
    c = (scan_ctx){100, 0};
    CHECK_OK(eb_log_scan(l, 100, 50, scan_cb, &c));
    CHECK_EQ(c.count, 50);
    eb_log_close(l);
}

static uint64_t fake_now;
static uint64_t fake_clock(void *arg)
{
    (void)arg;
    return fake_now;
}

TEST(time_is_monotonic_and_seekable)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/t", eb_test_tmpdir());
    eb_log_opts o = {.dir = dir, .segment_bytes = 1024, .fsync = EB_FSYNC_NEVER,
                     .clock = fake_clock};
    eb_log *l;
    CHECK_OK(eb_log_open(&o, &l, NULL));
    uint64_t seq, ts, prev = 0;
    for (int i = 0; i < 300; i++) {
        fake_now = 1000000 + (uint64_t)i * 1000;
        if (i == 150)
            fake_now = 5; /* the wall clock steps back */
        eb_log_rec_in r = {1, 0, "x", 1};
        CHECK_OK(eb_log_append_sync(l, &r, 1, &seq, &ts));
        CHECK(ts >= prev);
        prev = ts;
    }
    CHECK_OK(eb_log_seek_time(l, 1000000 + 100 * 1000, &seq));
    CHECK_EQ(seq, 101);
    CHECK_OK(eb_log_seek_time(l, 0, &seq));
    CHECK_EQ(seq, 1);
    CHECK_OK(eb_log_seek_time(l, 1000000 + 100 * 1000 + 1, &seq));
    CHECK_EQ(seq, 102);
    CHECK_EQ(eb_log_seek_time(l, 1000000 + 300 * 1000, &seq), EB_ENOTFOUND);
    eb_log_close(l);
    /* monotonic across a restart too */
    fake_now = 1;
    CHECK_OK(eb_log_open(&o, &l, NULL));
    eb_log_rec_in r = {1, 0, "y", 1};
    CHECK_OK(eb_log_append_sync(l, &r, 1, &seq, &ts));
    CHECK(ts >= prev);
    eb_log_close(l);
}

TEST(retention_by_size_and_age_keeps_seqs)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/r", eb_test_tmpdir());
    eb_log_opts o = {.dir = dir, .segment_bytes = 1024, .fsync = EB_FSYNC_NEVER,
                     .retention_bytes = 4096, .clock = fake_clock};
    fake_now = 1000;
    eb_log *l;
    CHECK_OK(eb_log_open(&o, &l, NULL));
    fill(l, 400);
    eb_log_stats st;
    eb_log_get_stats(l, &st);
    CHECK(st.bytes <= 4096 + 1024 + 200);
    uint64_t first = eb_log_first_seq(l);
    CHECK(first > 1);
    eb_buf b = EB_BUF_INIT;
    eb_log_rec r;
    CHECK_EQ(eb_log_read(l, first - 1, &r, &b), EB_EGONE);
    check_rec(l, first);
    eb_buf_free(&b);
    eb_log_close(l);
    /* age: everything sealed is old; only the active segment stays */
    o.retention_bytes = 0;
    o.retention_ms = 1;
    CHECK_OK(eb_log_open(&o, &l, NULL));
    uint64_t del = 0;
    CHECK_OK(eb_log_enforce_retention(l, 1000000000, &del));
    CHECK(del > 0);
    eb_log_get_stats(l, &st);
    CHECK_EQ(st.segments, 1);
    uint64_t next = eb_log_next_seq(l);
    CHECK_EQ(next, 401);
    fill(l, 1);
    check_rec(l, 401);
    eb_log_close(l);
}

typedef struct th_arg {
    eb_log *l;
    int     n;
    uint64_t *seqs;
} th_arg;

static void *appender(void *p)
{
    th_arg *a = p;
    for (int i = 0; i < a->n; i++) {
        eb_log_rec_in r[2] = {{1, 0, "ab", 2}, {1, 0, "cd", 2}};
        uint64_t ts;
        if (eb_log_append_sync(a->l, r, 2, &a->seqs[i], &ts) != 0)
            return (void *)1;
    }
    return NULL;
}

TEST(many_threads_share_group_commits)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/m", eb_test_tmpdir());
    eb_log_opts o = {.dir = dir, .fsync = EB_FSYNC_ALWAYS};
    eb_log *l;
    CHECK_OK(eb_log_open(&o, &l, NULL));
    enum { T = 8, N = 200 };
    pthread_t th[T];
    th_arg args[T];
    static uint64_t seqs[T][N];
    for (int t = 0; t < T; t++) {
        args[t] = (th_arg){l, N, seqs[t]};
        pthread_create(&th[t], NULL, appender, &args[t]);
    }
    for (int t = 0; t < T; t++) {
        void *rv;
        pthread_join(th[t], &rv);
        CHECK(rv == NULL);
    }
    /* every seq used exactly once; each batch of 2 is contiguous */
    static unsigned char seen[T * N * 2 + 2];
    for (int t = 0; t < T; t++)
        for (int i = 0; i < N; i++) {
            uint64_t s = seqs[t][i];
            CHECK(s >= 1 && s + 1 <= (uint64_t)T * N * 2);
            CHECK(!seen[s] && !seen[s + 1]);
            seen[s] = seen[s + 1] = 1;
        }
    eb_log_stats st;
    eb_log_get_stats(l, &st);
    CHECK(st.syncs < (uint64_t)T * N); /* group commit shared syncs */
    eb_log_close(l);
}

static char *seg_file(const char *sub, uint64_t base)
{
    static char p[4200];
    snprintf(p, sizeof p, "%s/%s/%020llu.seg", eb_test_tmpdir(), sub, (unsigned long long)base);
    return p;
}

static off_t file_size(const char *p)
{
    struct stat st;
    CHECK(stat(p, &st) == 0);
    return st.st_size;
}

TEST(torn_tail_is_truncated_on_open)
{
    eb_log *l = open_log("c", 1 << 20, NULL);
    fill(l, 50);
    eb_log_close(l);
    const char *p = seg_file("c", 1);
    off_t sz = file_size(p);
    CHECK(truncate(p, sz - 3) == 0); /* cut the last record short */
    eb_log_recovery rep;
    l = open_log("c", 1 << 20, &rep);
    CHECK_EQ(rep.records, 49);
    CHECK(rep.truncated_bytes > 0);
    CHECK_EQ(eb_log_next_seq(l), 50);
    fill(l, 1); /* seq 50 is reused: it was never durable */
    check_rec(l, 50);
    eb_log_close(l);
}

TEST(flipped_byte_in_last_record_is_detected)
{
    eb_log *l = open_log("f", 1 << 20, NULL);
    fill(l, 20);
    eb_log_close(l);
    const char *p = seg_file("f", 1);
    off_t sz = file_size(p);
    int fd = open(p, O_RDWR);
    unsigned char c;
    CHECK(pread(fd, &c, 1, sz - 2) == 1);
    c ^= 0x40;
    CHECK(pwrite(fd, &c, 1, sz - 2) == 1);
    /* and garbage after the end */
    CHECK(pwrite(fd, "garbage!", 8, sz) == 8);
    close(fd);
    eb_log_recovery rep;
    l = open_log("f", 1 << 20, &rep);
    CHECK_EQ(rep.records, 19);
    CHECK(rep.truncated_bytes >= 8);
    for (uint64_t s = 1; s <= 19; s++)
        check_rec(l, s);
    eb_log_close(l);
}

TEST(corrupt_sealed_segment_refuses_to_open)
{
    eb_log *l = open_log("x", 1024, NULL);
    fill(l, 200);
    eb_log_close(l);
    /* damage the first (sealed) segment and drop its index so it is read */
    const char *p = seg_file("x", 1);
    int fd = open(p, O_RDWR);
    unsigned char c;
    CHECK(pread(fd, &c, 1, 100) == 1);
    c ^= 1;
    CHECK(pwrite(fd, &c, 1, 100) == 1);
    close(fd);
    char idx[4200];
    snprintf(idx, sizeof idx, "%.*sidx", (int)strlen(p) - 3, p);
    CHECK(unlink(idx) == 0);
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/x", eb_test_tmpdir());
    eb_log_opts o = {.dir = dir, .segment_bytes = 1024, .fsync = EB_FSYNC_NEVER};
    CHECK_EQ(eb_log_open(&o, &l, NULL), EB_ECORRUPT);
}

TEST(missing_index_is_rebuilt)
{
    eb_log *l = open_log("i", 1024, NULL);
    fill(l, 200);
    eb_log_close(l);
    char idx[4200];
    snprintf(idx, sizeof idx, "%s/i/%020llu.idx", eb_test_tmpdir(), 1ull);
    CHECK(unlink(idx) == 0);
    eb_log_recovery rep;
    l = open_log("i", 1024, &rep);
    CHECK_EQ(rep.indexes_rebuilt, 1);
    CHECK_EQ(rep.records, 200);
    check_rec(l, 3);
    eb_log_close(l);
    CHECK(access(idx, F_OK) == 0);
}

TEST(atomic_batch_is_all_or_nothing)
{
    eb_log *l = open_log("b", 1 << 20, NULL);
    fill(l, 5);
    eb_log_rec_in r[3] = {{7, 3, "one", 3}, {7, 3, "two", 3}, {7, 3, "three", 5}};
    uint64_t seq, ts;
    CHECK_OK(eb_log_append_sync(l, r, 3, &seq, &ts));
    eb_log_close(l);
    const char *p = seg_file("b", 1);
    CHECK(truncate(p, file_size(p) - 1) == 0); /* tear the batch's last record */
    eb_log_recovery rep;
    l = open_log("b", 1 << 20, &rep);
    CHECK_EQ(rep.records, 5); /* the first two of the batch went too */
    eb_log_close(l);
}

TEST(oversized_record_is_refused)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/o", eb_test_tmpdir());
    eb_log_opts o = {.dir = dir, .max_record_bytes = 100, .fsync = EB_FSYNC_NEVER};
    eb_log *l;
    CHECK_OK(eb_log_open(&o, &l, NULL));
    char big[101] = {0};
    eb_log_rec_in r = {1, 0, big, 101};
    uint64_t s, ts;
    CHECK_EQ(eb_log_append_sync(l, &r, 1, &s, &ts), EB_ETOOBIG);
    eb_log_close(l);
}

static int inline_cb_calls;
static void count_cb(void *arg, int status)
{
    (void)arg;
    CHECK_OK(status);
    __atomic_add_fetch(&inline_cb_calls, 1, __ATOMIC_SEQ_CST);
}

/* Appends "rec-<seq>" through eb_log_append_inline; returns what it did. */
static int append_inline(eb_log *l)
{
    char p[64];
    uint64_t next = eb_log_next_seq(l), seq, ts;
    int len = snprintf(p, sizeof p, "rec-%llu", (unsigned long long)next);
    eb_log_rec_in r = {7, 3, p, (uint32_t)len};
    int rc = eb_log_append_inline(l, &r, 1, &seq, &ts, count_cb, NULL);
    CHECK(rc == 0 || rc == 1);
    CHECK_EQ(seq, next);
    return rc;
}

static void wait_durable(eb_log *l, uint64_t seq)
{
    for (int i = 0; i < 5000 && eb_log_durable_seq(l) <= seq; i++)
        usleep(1000);
    CHECK(eb_log_durable_seq(l) > seq);
}

/* Under NEVER and INTERVAL an append with nothing else in flight is written
 * by the caller: readable at once, no callback; the rolls the writer does;
 * records stay in seq order across both ways; INTERVAL still syncs. */
TEST(inline_appends_are_written_by_the_caller)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/inl", eb_test_tmpdir());
    eb_log_opts o = {.dir = dir, .segment_bytes = 4096, .fsync = EB_FSYNC_INTERVAL,
                     .fsync_interval_ms = 10};
    eb_log *l;
    CHECK_OK(eb_log_open(&o, &l, NULL));
    inline_cb_calls = 0;
    int inl = 0, queued = 0;
    for (int i = 0; i < 2000; i++) {
        uint64_t seq = eb_log_next_seq(l);
        if (append_inline(l) == 1) {
            inl++;
            CHECK_EQ(eb_log_durable_seq(l), seq + 1); /* readable before returning */
            check_rec(l, seq);
        } else {
            queued++;
            wait_durable(l, seq);
        }
    }
    for (int i = 0; i < 2000 && inline_cb_calls < queued; i++)
        usleep(1000);
    CHECK_EQ(inline_cb_calls, queued); /* a callback for each queued one, none for inline */
    CHECK(inl > 1900);                 /* inline except where a segment rolled */
    CHECK(queued > 10);                /* 4 KiB segments: the writer rolled them */
    usleep(50 * 1000);
    eb_log_stats st;
    eb_log_get_stats(l, &st);
    CHECK(st.syncs > 0); /* the writer thread synced what the callers wrote */
    eb_log_close(l);
    CHECK_OK(eb_log_open(&o, &l, NULL));
    CHECK_EQ(eb_log_durable_seq(l), 2001);
    for (uint64_t q = 1; q <= 2000; q++)
        check_rec(l, q);
    eb_log_close(l);

    /* ALWAYS never writes on the caller's thread. */
    snprintf(dir, sizeof dir, "%s/inl-always", eb_test_tmpdir());
    o.fsync = EB_FSYNC_ALWAYS;
    CHECK_OK(eb_log_open(&o, &l, NULL));
    inline_cb_calls = 0;
    CHECK_EQ(append_inline(l), 0);
    wait_durable(l, 1);
    eb_log_close(l);
    CHECK_EQ(inline_cb_calls, 1);
}

typedef struct race {
    eb_log      *l;
    _Atomic int  stop; /* volatile is no synchronisation (TSan) */
    uint64_t     reads;
} race;

static void *race_reader(void *arg)
{
    race *r = arg;
    eb_buf b = EB_BUF_INIT;
    while (!r->stop) {
        uint64_t d = eb_log_durable_seq(r->l);
        eb_log_rec rec;
        if (d > 1 && eb_log_read(r->l, d - 1, &rec, &b) == 0)
            r->reads++;
        scan_ctx c = {d - 64, 0};
        if (d > 64)
            CHECK_OK(eb_log_scan(r->l, d - 64, 64, scan_cb, &c));
    }
    eb_buf_free(&b);
    return NULL;
}

/* Found by bench-peers (a segfault in read_chunk): the writer grew the
 * active segment's index with realloc outside the readers' lock, so a
 * reader could walk the freed array. Readers race 300,000 appends (the
 * index doubles eight times); under ASan the old code fails here. */
TEST(readers_race_the_index_growing)
{
    race r = {.l = open_log("race", 1ull << 30, NULL)};
    pthread_t th;
    CHECK(pthread_create(&th, NULL, race_reader, &r) == 0);
    eb_log_rec_in recs[100];
    for (int i = 0; i < 100; i++)
        recs[i] = (eb_log_rec_in){7, 3, "x", 1};
    for (int i = 0; i < 3000; i++) {
        uint64_t seq, ts;
        CHECK_OK(eb_log_append_sync(r.l, recs, 100, &seq, &ts));
    }
    r.stop = 1;
    pthread_join(th, NULL);
    CHECK(r.reads > 0);
    eb_log_close(r.l);
}

typedef struct stats_race {
    eb_log     *l;
    _Atomic int stop;
    uint64_t    reads;
} stats_race;

static void *stats_reader(void *arg)
{
    stats_race *r = arg;
    eb_log_stats prev = {0}, st;
    while (!atomic_load(&r->stop)) {
        eb_log_get_stats(r->l, &st);
        CHECK(st.writes >= prev.writes && st.syncs >= prev.syncs);
        prev = st;
        r->reads++;
    }
    return NULL;
}

/* Issue 13 item 13: the writer thread counted writes and syncs (and set
 * dirty and broken) outside the mutex eb_log_get_stats reads them under:
 * a data race the TSan build reports on the old code. Both policies whose
 * writer thread counts are run (ALWAYS: write+sync; INTERVAL: timed sync). */
TEST(stats_are_read_while_the_writer_counts)
{
    eb_fsync_policy pols[2] = {EB_FSYNC_ALWAYS, EB_FSYNC_INTERVAL};
    for (int k = 0; k < 2; k++) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/st%d", eb_test_tmpdir(), k);
        eb_log_opts o = {.dir = dir, .segment_bytes = 1u << 26, .fsync = pols[k],
                         .fsync_interval_ms = 1};
        stats_race r = {0};
        CHECK_OK(eb_log_open(&o, &r.l, NULL));
        pthread_t th;
        CHECK(pthread_create(&th, NULL, stats_reader, &r) == 0);
        eb_log_rec_in rec = {7, 3, "x", 1};
        for (int i = 0; i < 200; i++) {
            uint64_t seq, ts;
            CHECK_OK(eb_log_append_sync(r.l, &rec, 1, &seq, &ts));
            if (k == 1 && i % 20 == 0)
                usleep(2000); /* let the interval sync run */
        }
        atomic_store(&r.stop, 1);
        pthread_join(th, NULL);
        eb_log_stats st;
        eb_log_get_stats(r.l, &st);
        CHECK(st.writes >= 1 && st.records == 200);
        if (k == 0)
            CHECK(st.syncs == st.writes);
        else
            CHECK(st.syncs >= 1);
        CHECK(r.reads > 0);
        eb_log_close(r.l);
    }
}

/* Opens a committed version-1 fixture log (tests/fixtures/v1/<variant>/<log>)
 * from a copy, checks what recovery reports, and returns the open log. */
static eb_log *open_fixture(const char *variant, const char *log, eb_log_recovery *rep)
{
    const char *root = getenv("EB_FIXTURES");
    if (!root)
        eb_test_skip("EB_FIXTURES not set (run through meson)");
    char src[4096], dir[4096], dst[4200], cmd[13000];
    snprintf(src, sizeof src, "%s/v1/%s/%s/00000000000000000001.seg", root, variant, log);
    snprintf(dir, sizeof dir, "%s/%s-%s", eb_test_tmpdir(), variant, log);
    snprintf(dst, sizeof dst, "%s/00000000000000000001.seg", dir);
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' && cp '%s' '%s'", dir, src, dst);
    CHECK(system(cmd) == 0);
    eb_log_opts o = {.dir = dir, .segment_bytes = 1u << 20, .fsync = EB_FSYNC_NEVER};
    eb_log *l = NULL;
    CHECK_OK(eb_log_open(&o, &l, rep));
    return l;
}

/* Issue 13 item 15: logs written by the version-1 writer, committed as
 * bytes, so a change of the format or of recovery fails here. */
TEST(version1_fixtures_open_recover_and_read_back)
{
    static const struct { const char *variant; uint64_t events, meta; bool cut; } cases[] = {
        {"clean", 5, 2, false}, {"torn", 4, 1, true}, {"flipped", 4, 1, true}};
    for (size_t k = 0; k < 3; k++) {
        eb_log_recovery rep;
        eb_log *l = open_fixture(cases[k].variant, "events", &rep);
        CHECK_EQ(rep.records, cases[k].events);
        CHECK_EQ(rep.first_seq, 1);
        CHECK_EQ(rep.last_seq, cases[k].events);
        CHECK(cases[k].cut ? rep.truncated_bytes > 0 : rep.truncated_bytes == 0);
        eb_buf b = EB_BUF_INIT;
        for (uint64_t s = 1; s <= cases[k].events; s++) {
            eb_log_rec r;
            CHECK_OK(eb_log_read(l, s, &r, &b));
            CHECK_EQ(r.seq, s);
            CHECK_EQ(r.type, 1);
            char want[64];
            snprintf(want, sizeof want, "\"key\":\"k%llu\"", (unsigned long long)s);
            CHECK(memmem(r.data, r.len, want, strlen(want)) != NULL);
            snprintf(want, sizeof want, "\"data\":{\"n\": %llu}}", (unsigned long long)s);
            CHECK(memmem(r.data, r.len, want, strlen(want)) != NULL);
        }
        eb_log_rec r;
        CHECK(eb_log_read(l, cases[k].events + 1, &r, &b) != 0);
        CHECK_EQ(eb_log_next_seq(l), cases[k].events + 1);
        eb_log_close(l);

        l = open_fixture(cases[k].variant, "meta", &rep);
        CHECK_EQ(rep.records, cases[k].meta);
        CHECK(cases[k].cut ? rep.truncated_bytes > 0 : rep.truncated_bytes == 0);
        CHECK_OK(eb_log_read(l, 1, &r, &b));
        CHECK_EQ(r.type, 16); /* a schema version */
        CHECK(memmem(r.data, r.len, "\"order.created\"", 15) != NULL);
        if (cases[k].meta == 2) {
            CHECK_OK(eb_log_read(l, 2, &r, &b));
            CHECK_EQ(r.type, 32); /* a consumer group */
            CHECK(memmem(r.data, r.len, "\"billing\"", 9) != NULL);
        }
        eb_buf_free(&b);
        eb_log_close(l);
    }
}

TEST_MAIN(T(crc32c_vectors_hw_and_table), T(record_header_round_trip),
          T(append_read_reopen_across_segments), T(scan_crosses_segments_in_order),
          T(time_is_monotonic_and_seekable), T(retention_by_size_and_age_keeps_seqs),
          T(many_threads_share_group_commits), T(torn_tail_is_truncated_on_open),
          T(flipped_byte_in_last_record_is_detected), T(corrupt_sealed_segment_refuses_to_open),
          T(missing_index_is_rebuilt), T(atomic_batch_is_all_or_nothing),
          T(oversized_record_is_refused), T(inline_appends_are_written_by_the_caller),
          T(readers_race_the_index_growing),
          T(stats_are_read_while_the_writer_counts),
          T(version1_fixtures_open_recover_and_read_back))
