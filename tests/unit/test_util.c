/* test_util.c - unit tests for src/util: buffers and error strings. */
#include "runner.h"

#include "eventbus.h"
#include "util/buf.h"

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

TEST(strerror_covers_codes_and_errno)
{
    CHECK_STR(eb_strerror(EB_OK), "success");
    CHECK_STR(eb_strerror(EB_ECORRUPT), "data corrupt");
    CHECK_STR(eb_strerror(-2), "No such file or directory");
    CHECK_STR(eb_strerror(-31999), "unknown error");
}

TEST_MAIN(T(buf_append_and_printf), T(buf_grows_past_printf_scratch),
          T(strerror_covers_codes_and_errno))
