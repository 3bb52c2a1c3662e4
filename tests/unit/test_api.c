/* test_api.c - unit tests of the API layer's rendering helpers. */
#include "runner.h"

#include <string.h>

#include "api/api.h"

/* Prometheus label values escape backslash, double quote and newline
 * (text format 0.0.4) and keep everything else as it is. */
TEST(prom_label_escapes_backslash_quote_newline)
{
    eb_buf b = EB_BUF_INIT;
    eb__api_prom_label(&b, "a\\b\"c\nd.e-f_g");
    const char *want = "a\\\\b\\\"c\\nd.e-f_g";
    CHECK_EQ(b.len, strlen(want));
    CHECK(memcmp(b.data, want, b.len) == 0);
    eb_buf_reset(&b);
    eb__api_prom_label(&b, "");
    CHECK_EQ(b.len, 0);
    eb_buf_free(&b);
}

TEST_MAIN(T(prom_label_escapes_backslash_quote_newline))
