/* test_util.c - unit tests for src/util: buffers and error strings. */
#include "runner.h"

#include "eventbus.h"
#include "util/buf.h"
#include "util/imap.h"
#include "util/map.h"

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
        CHECK_OK(eb_map_put(&m, k, (size_t)n, (void *)(i + 1), NULL));
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
    CHECK_OK(eb_map_put(&m, "key-1", 5, (void *)7, &old));
    CHECK(old == (void *)2);
    CHECK(eb_map_get(&m, "key-1", 5) == (void *)7);
    eb_map_free(&m);
}

TEST(imap_put_get_del_many)
{
    eb_imap m;
    eb_imap_init(&m);
    for (uint64_t k = 1; k <= 20000; k++)
        CHECK_OK(eb_imap_put(&m, k * 7, (void *)(uintptr_t)k));
    for (uint64_t k = 1; k <= 20000; k += 2)
        CHECK(eb_imap_del(&m, k * 7) == (void *)(uintptr_t)k);
    CHECK_EQ(m.len, 10000);
    for (uint64_t k = 1; k <= 20000; k++)
        CHECK(eb_imap_get(&m, k * 7) == (k % 2 ? NULL : (void *)(uintptr_t)k));
    CHECK(eb_imap_get(&m, 3) == NULL);
    eb_imap_free(&m);
}

TEST_MAIN(T(imap_put_get_del_many), T(buf_append_and_printf), T(buf_grows_past_printf_scratch),
          T(buf_steal_empty_is_empty_string),
          T(strerror_covers_codes_and_errno), T(map_put_get_del_many))
