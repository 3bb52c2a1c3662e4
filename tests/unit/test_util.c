/* test_util.c - unit tests for src/util: buffers and error strings. */
#include "runner.h"

#include "eventbus/err.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/duration.h"
#include "util/pct.h"
#include "util/base64.h"
#include "util/imap.h"
#include "util/heap.h"
#include "util/rangeset.h"
#include "util/ulid.h"
#include "util/map.h"
#include "util/xmalloc.h"

#include <signal.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

#ifdef __SANITIZE_ADDRESS__
/* The allocation-failure tests need malloc to return NULL for a huge size
 * (ASan would report the request itself); nothing else here relies on it. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "allocator_may_return_null=1"; }
#endif
#ifdef __SANITIZE_THREAD__
/* The same under TSan (TSAN_OPTIONS from tests/run.py adds to it). */
const char *__tsan_default_options(void);
const char *__tsan_default_options(void) { return "allocator_may_return_null=1"; }
#endif

/* Runs fn in a forked child with stderr captured into out; returns the
 * child's wait status. */
static int run_child(void (*fn)(void), char *out, size_t cap)
{
    int p[2];
    CHECK(pipe(p) == 0);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        dup2(p[1], 2);
        fn();
        _exit(0);
    }
    close(p[1]);
    size_t n = 0;
    ssize_t r;
    while (n + 1 < cap && (r = read(p[0], out + n, cap - 1 - n)) > 0)
        n += (size_t)r;
    out[n] = '\0';
    close(p[0]);
    int st = 0;
    CHECK(waitpid(pid, &st, 0) == pid);
    return st;
}

static void xmalloc_huge(void)
{
    volatile size_t n = SIZE_MAX / 2;
    void *p = eb_xmalloc(n);
    free(p);
}

static void buf_huge_with_handler(void)
{
    eb_set_oom_handler(eb_oom); /* as eventbusd's main() does */
    eb_buf b = EB_BUF_INIT;
    eb_buf_reserve(&b, SIZE_MAX / 4);
    eb_buf_free(&b);
}

TEST(xmalloc_failure_aborts_with_message)
{
    char out[512];
    int st = run_child(xmalloc_huge, out, sizeof out);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT);
    char want[128];
    snprintf(want, sizeof want, "eventbusd: out of memory allocating %zu bytes\n", SIZE_MAX / 2);
    CHECK(strstr(out, want) != NULL);
}

TEST(buf_failure_aborts_only_with_the_daemon_handler)
{
    char out[512];
    int st = run_child(buf_huge_with_handler, out, sizeof out);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT);
    CHECK(strstr(out, "eventbusd: out of memory allocating ") != NULL);
    /* without the handler (the client library) the failure is reported */
    eb_buf b = EB_BUF_INIT;
    CHECK(!eb_buf_reserve(&b, SIZE_MAX / 4));
    CHECK(eb_buf_failed(&b));
    eb_buf_free(&b);
}

TEST(buf_append_and_printf)
{
    eb_buf b = EB_BUF_INIT;
    eb_buf_puts(&b, "seq=");
    eb_buf_printf(&b, "%d", 42);
    eb_buf_putc(&b, '!');
    CHECK_STR(b.data, "seq=42!");
    CHECK_EQ(b.len, 7);
    eb_buf_free(&b);
}

TEST(buf_grows_past_printf_scratch)
{
    eb_buf b = EB_BUF_INIT;
    char big[1000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    eb_buf_printf(&b, "<%s>", big);
    CHECK_EQ(b.len, 1001);
    CHECK(b.data[0] == '<' && b.data[1000] == '>' && b.data[1001] == '\0');
    size_t n = 0;
    char *p = eb_buf_steal(&b, &n);
    CHECK_EQ(n, 1001);
    CHECK(b.data == NULL && b.len == 0);
    free(p);
}

/* Found by schema_fuzz: the error path of a violation at the instance root
 * was stolen from an empty buffer and came back unterminated. */
TEST(buf_steal_empty_is_empty_string)
{
    eb_buf b = EB_BUF_INIT;
    size_t n = 99;
    char *s = eb_buf_steal(&b, &n);
    CHECK(s != NULL);
    CHECK_EQ(n, 0);
    CHECK_STR(s, "");
    free(s);
    eb_buf_reserve(&b, 10); /* a fresh buffer reads as "" too */
    CHECK_STR(b.data, "");
    eb_buf_free(&b);
}

TEST(strerror_covers_codes_and_errno)
{
    CHECK_STR(eb_strerror(EB_OK), "success");
    CHECK_STR(eb_strerror(EB_ECORRUPT), "data corrupt");
    CHECK_STR(eb_strerror(-2), "No such file or directory");
    CHECK_STR(eb_strerror(-31999), "unknown error");
}

TEST(map_put_get_del_many)
{
    eb_map m = EB_MAP_INIT;
    char k[32];
    for (long i = 0; i < 5000; i++) {
        int n = snprintf(k, sizeof k, "key-%ld", i);
        eb_map_put(&m, k, (size_t)n, (void *)(i + 1), NULL);
    }
    CHECK_EQ(m.len, 5000);
    /* delete every third key; the rest must stay reachable (backward shift) */
    for (long i = 0; i < 5000; i += 3) {
        int n = snprintf(k, sizeof k, "key-%ld", i);
        CHECK(eb_map_del(&m, k, (size_t)n) == (void *)(i + 1));
    }
    for (long i = 0; i < 5000; i++) {
        int n = snprintf(k, sizeof k, "key-%ld", i);
        void *v = eb_map_get(&m, k, (size_t)n);
        CHECK(v == (i % 3 == 0 ? NULL : (void *)(i + 1)));
    }
    size_t it = 0, seen = 0;
    while (eb_map_next(&m, &it))
        seen++;
    CHECK_EQ(seen, m.len);
    void *old = NULL;
    eb_map_put(&m, "key-1", 5, (void *)7, &old);
    CHECK(old == (void *)2);
    CHECK(eb_map_get(&m, "key-1", 5) == (void *)7);
    eb_map_free(&m);
}

/* 300,000 keys: the table passes 2 MiB, where its slots come 2 MiB-aligned
 * for huge pages (imap.c), and grows twice more there. */
TEST(imap_put_get_del_many)
{
    eb_imap m;
    eb_imap_init(&m);
    for (uint64_t k = 1; k <= 300000; k++)
        eb_imap_put(&m, k * 7, (void *)(uintptr_t)k);
    CHECK(m.cap * sizeof(eb_imap_slot) > (2u << 20));
    CHECK_EQ((uintptr_t)m.slots % (2u << 20), 0);
    for (uint64_t k = 1; k <= 300000; k += 2)
        CHECK(eb_imap_del(&m, k * 7) == (void *)(uintptr_t)k);
    CHECK_EQ(m.len, 150000);
    for (uint64_t k = 1; k <= 300000; k++)
        CHECK(eb_imap_get(&m, k * 7) == (k % 2 ? NULL : (void *)(uintptr_t)k));
    CHECK(eb_imap_get(&m, 3) == NULL);
    eb_imap_free(&m);
}

/* The rangeset against a plain bitmap, under random adds and trims. */
TEST(rangeset_matches_a_bitmap)
{
    enum { N = 2000 };
    static unsigned char ref[N];
    eb_rangeset s;
    eb_rangeset_init(&s);
    uint32_t x = 12345;
    uint64_t floor = 0;
    for (int round = 0; round < 3000; round++) {
        x = x * 1103515245u + 12345u;
        uint64_t a = (x >> 8) % N, len = 1 + (x >> 20) % 9, b = a + len > N ? N : a + len;
        eb_rangeset_add(&s, a, b);
        for (uint64_t v = a; v < b; v++)
            ref[v] = 1;
        if (round % 500 == 499) {
            floor += 150;
            eb_rangeset_trim_below(&s, floor);
        }
        for (uint64_t i = 1; i < s.n; i++)
            CHECK(s.r[i - 1].b < s.r[i].a); /* sorted, disjoint, not adjacent */
    }
    for (uint64_t v = 0; v < N; v++) {
        CHECK_EQ(eb_rangeset_has(&s, v), v >= floor && ref[v]);
        uint64_t skip = eb_rangeset_skip(&s, v), want = v;
        while (want >= floor && want < N && ref[want])
            want++;
        CHECK_EQ(skip, v >= floor ? want : v);
    }
    uint64_t cnt = 0;
    for (uint64_t v = floor + 10; v < 1500; v++)
        cnt += ref[v];
    CHECK_EQ(eb_rangeset_count(&s, floor + 10, 1500), cnt);
    eb_rangeset_free(&s);
}

/* The timer heap pops in key order under random pushes, removes and
 * re-keys, checked against a linear scan of the nodes still in it. */
TEST(heap_pops_in_key_order)
{
    enum { N = 500 };
    static eb_heap_node nodes[N];
    eb_heap h;
    eb_heap_init(&h);
    uint32_t x = 777;
    for (int i = 0; i < N; i++) {
        eb_heap_node_init(&nodes[i]);
        x = x * 1103515245u + 12345u;
        nodes[i].key = (x >> 8) % 1000;
        eb_heap_push(&h, &nodes[i]);
    }
    for (int i = 0; i < N; i += 3) /* remove a third */
        eb_heap_remove(&h, &nodes[i]);
    eb_heap_remove(&h, &nodes[0]); /* again: a no-op */
    for (int i = 1; i < N; i += 3) { /* re-key another third */
        x = x * 1103515245u + 12345u;
        nodes[i].key = (x >> 8) % 1000;
        eb_heap_fix(&h, &nodes[i]);
    }
    CHECK_EQ(h.n, N - (N + 2) / 3);
    uint64_t last = 0;
    size_t popped = 0;
    eb_heap_node *m;
    while ((m = eb_heap_min(&h))) {
        for (int i = 0; i < N; i++) /* nothing left is smaller */
            CHECK(nodes[i].idx == EB_HEAP_NONE || nodes[i].key >= m->key);
        CHECK(m->key >= last);
        last = m->key;
        eb_heap_remove(&h, m);
        CHECK(m->idx == EB_HEAP_NONE);
        popped++;
    }
    CHECK_EQ(popped, N - (N + 2) / 3);
    eb_heap_free(&h);
}

TEST(base64_round_trip_and_rejects)
{
    static const char *const vec[][2] = {{"", ""}, {"f", "Zg=="}, {"fo", "Zm8="},
                                         {"foo", "Zm9v"}, {"foobar", "Zm9vYmFy"}};
    for (size_t i = 0; i < 5; i++) {
        eb_buf e = EB_BUF_INIT, d = EB_BUF_INIT;
        eb_base64_encode(&e, vec[i][0], strlen(vec[i][0]));
        CHECK_EQ(e.len, strlen(vec[i][1]));
        CHECK(memcmp(e.data ? e.data : "", vec[i][1], e.len) == 0);
        CHECK_OK(eb_base64_decode(&d, vec[i][1], strlen(vec[i][1])));
        CHECK_EQ(d.len, strlen(vec[i][0]));
        CHECK(d.len == 0 || memcmp(d.data, vec[i][0], d.len) == 0);
        eb_buf_free(&e);
        eb_buf_free(&d);
    }
    unsigned char bin[256];
    for (int i = 0; i < 256; i++)
        bin[i] = (unsigned char)(255 - i);
    eb_buf e = EB_BUF_INIT, d = EB_BUF_INIT;
    eb_base64_encode(&e, bin, sizeof bin);
    CHECK_OK(eb_base64_decode(&d, e.data, e.len));
    CHECK(d.len == sizeof bin && memcmp(d.data, bin, sizeof bin) == 0);
    eb_buf_reset(&d);
    CHECK_EQ(eb_base64_decode(&d, "Zm9", 3), EB_ESYNTAX);
    CHECK_EQ(eb_base64_decode(&d, "Zm=v", 4), EB_ESYNTAX);
    CHECK_EQ(eb_base64_decode(&d, "Z!9v", 4), EB_ESYNTAX);
    CHECK_EQ(eb_base64_decode(&d, "Zg==Zm9v", 8), EB_ESYNTAX);
    eb_buf_free(&e);
    eb_buf_free(&d);
}

/* Every form any of the old parsers took (config's strtod with a unit or
 * bare ms, the API's integer with a unit, the CLI's) means the same. */
TEST(duration_grammar)
{
    static const struct { const char *s; uint64_t bare, us; } ok[] = {
        {"0", 1000, 0},          {"500", 1000, 500000},      {"500ms", 0, 500000},
        {"30s", 0, 30000000},    {"2m", 0, 120000000},       {"2h", 0, 7200000000ull},
        {"7d", 0, 604800000000ull}, {"1.5h", 0, 5400000000ull}, {"1.5", 1000, 1500},
        {".5s", 0, 500000},      {"5.s", 0, 5000000},        {"2e3ms", 0, 2000000},
        {"1E-3s", 0, 1000},      {"0.0005s", 0, 500},        {"18446744073709s", 0, 18446744073709000000ull},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        uint64_t us = 1;
        CHECK_OK(eb_duration_parse(ok[i].s, strlen(ok[i].s), ok[i].bare, &us));
        CHECK_EQ(us, ok[i].us);
    }
    static const char *bad[] = {"", "s", ".", "-1s", "+1s", " 1s", "1 s", "1x", "1sec", "1ms ",
                                "0x10", "inf", "nan", "1e", "1e+", "1..2s", "5"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t us = 7;
        CHECK_EQ(eb_duration_parse(bad[i], strlen(bad[i]), 0, &us), EB_ESYNTAX);
        CHECK_EQ(us, 7);
    }
    uint64_t us;
    CHECK_EQ(eb_duration_parse("18446744073710s", 15, 0, &us), EB_ERANGE);
    CHECK_EQ(eb_duration_parse("99999999999999999999", 20, 1000, &us), EB_ERANGE);
    CHECK_EQ(eb_duration_parse("1e30d", 5, 0, &us), EB_ERANGE);
    /* n bounds the text: "2h" of "2hx" */
    CHECK_OK(eb_duration_parse("2hx", 2, 0, &us));
    CHECK_EQ(us, 7200000000ull);
}

TEST(pct_decode_strict_and_lenient)
{
    char out[16];
    size_t n;
    CHECK_OK(eb_pct_decode("a%2Fb%7e", 8, out, sizeof out, &n, EB_PCT_STRICT));
    CHECK_STR(out, "a/b~");
    CHECK_EQ(n, 4);
    static const char *bad[] = {"%", "%4", "%zz", "a%g1", "%00"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_EQ(eb_pct_decode(bad[i], strlen(bad[i]), out, sizeof out, &n, EB_PCT_STRICT),
                 EB_ESYNTAX);
        CHECK_OK(eb_pct_decode(bad[i], strlen(bad[i]), out, sizeof out, &n, EB_PCT_LENIENT));
        CHECK_STR(out, bad[i]);
    }
    /* a NUL byte is refused when strict, kept when lenient */
    CHECK_EQ(eb_pct_decode("a\0b", 3, out, sizeof out, &n, EB_PCT_STRICT), EB_ESYNTAX);
    CHECK_OK(eb_pct_decode("a\0b", 3, out, sizeof out, &n, EB_PCT_LENIENT));
    CHECK(n == 3 && out[1] == '\0' && out[2] == 'b');
    /* never reads past n: "%4" of "%41" is malformed */
    CHECK_EQ(eb_pct_decode("%41", 2, out, sizeof out, &n, EB_PCT_STRICT), EB_ESYNTAX);
    CHECK_EQ(eb_pct_decode("abcdef", 6, out, 4, &n, EB_PCT_STRICT), EB_ETOOBIG);
    CHECK_STR(out, "abc");
    CHECK_EQ(n, 3);
}

TEST(clocks_move_forward)
{
    uint64_t w = eb_clock_wall_us(), m = eb_clock_mono_ms();
    double s = eb_clock_mono_s();
    CHECK(w > 1600000000ull * 1000000u); /* after 2020 */
    CHECK(eb_clock_mono_ms() >= m);
    CHECK(eb_clock_mono_s() >= s);
    struct timespec now, d = eb_clock_deadline(CLOCK_MONOTONIC, 1500);
    clock_gettime(CLOCK_MONOTONIC, &now);
    CHECK(d.tv_nsec >= 0 && d.tv_nsec < 1000000000L);
    double ahead = (double)(d.tv_sec - now.tv_sec) + (double)(d.tv_nsec - now.tv_nsec) / 1e9;
    CHECK(ahead > 1.0 && ahead <= 1.5);
}

/* The generator the server and every client handle use: ids grow within a
 * ms and when the clock steps back, carry the ms in their first 10
 * characters, and two generators do not meet. */
TEST(ulid_generator)
{
    static const char alpha[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    eb_ulid_gen g = {0}, h = {0};
    char prev[EB_ULID_LEN + 1] = "", id[EB_ULID_LEN + 1], other[EB_ULID_LEN + 1];
    const uint64_t t0 = 1764400000123456u; /* µs */
    const uint64_t at[] = {t0, t0, t0 + 1, t0 + 1000, t0 - 5000000, t0 + 2000};
    for (size_t i = 0; i < sizeof at / sizeof *at; i++) {
        eb_ulid_next(&g, at[i], id);
        CHECK_EQ(strlen(id), EB_ULID_LEN);
        CHECK(strspn(id, alpha) == EB_ULID_LEN);
        CHECK(strcmp(prev, id) < 0);
        memcpy(prev, id, sizeof id);
    }
    uint64_t ms = 0;
    for (int i = 0; i < 10; i++)
        ms = ms * 32 + (uint64_t)(strchr(alpha, id[i]) - alpha);
    CHECK_EQ(ms, (t0 + 2000) / 1000);
    eb_ulid_next(&h, t0 + 2000, other); /* same ms, another generator */
    CHECK(strcmp(id, other) != 0);
    CHECK(memcmp(id, other, 10) == 0);
}

TEST_MAIN(T(ulid_generator), T(xmalloc_failure_aborts_with_message), T(buf_failure_aborts_only_with_the_daemon_handler),
          T(imap_put_get_del_many), T(buf_append_and_printf), T(buf_grows_past_printf_scratch),
          T(buf_steal_empty_is_empty_string),
          T(strerror_covers_codes_and_errno), T(map_put_get_del_many),
          T(rangeset_matches_a_bitmap), T(heap_pops_in_key_order), T(base64_round_trip_and_rejects),
          T(duration_grammar), T(pct_decode_strict_and_lenient), T(clocks_move_forward))
