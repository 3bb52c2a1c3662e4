/* push_fuzz.c - fuzz target for what the push module (src/push) reads from
 * the endpoints it POSTs to. libcurl parses the HTTP answers; eventbusd
 * reads two things from them itself: the Retry-After header of a 429 or
 * 503 (eb__push_retry_after_s) and the answer body, whose start becomes the
 * nack's error (eb__push_describe), kept with the event and shown in the
 * group's views and dead letters.
 *
 * Input: a mode byte, then the rest.
 *   - mode even: the rest, up to its first NUL, is a Retry-After value, read
 *     at a fixed "now" (2026-01-01). Properties: a value made of digits
 *     alone is that many seconds, at most 3600 (an hour); any other value
 *     is an HTTP date (as curl_getdate reads it) and gives the whole
 *     seconds from now to it, at most 3600, or 0 when it is not after now;
 *     a value that is neither (a sign, spaces, junk) gives 0.
 *   - mode odd: two bytes of status (100-599), then the answer body.
 *     Properties: the error is NUL-terminated within its buffer, holds no
 *     control byte, and is "HTTP <status>: " followed by the body's first
 *     EB_PUSH_ERROR_EXCERPT bytes (up to a NUL) with control bytes as
 *     spaces, cut to the buffer.
 * Never crash, leak or hang is checked by the sanitizers and libFuzzer. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "push/push_int.h"

#define NOW_S 1767225600ull /* 2026-01-01T00:00:00Z */

static void retry_after(const uint8_t *d, size_t n)
{
    char *v = malloc(n + 1);
    FUZZ_CHECK(v);
    memcpy(v, d, n);
    v[n] = '\0';
    n = strlen(v);
    uint64_t got = eb__push_retry_after_s(v, NOW_S * 1000000u + 250000u);
    FUZZ_CHECK(got <= 3600);
    bool digits = n > 0;
    for (size_t i = 0; i < n; i++)
        digits = digits && v[i] >= '0' && v[i] <= '9';
    uint64_t want;
    if (digits) {
        want = 0;
        for (size_t i = 0; i < n && want <= 3600; i++)
            want = want * 10 + (uint64_t)(v[i] - '0');
    } else {
        time_t t = curl_getdate(v, NULL);
        /* whole seconds from now (a quarter second past NOW_S) to t */
        want = t > 0 && (unsigned long long)t > NOW_S ? (uint64_t)t - NOW_S - 1 : 0;
    }
    if (want > 3600)
        want = 3600;
    FUZZ_CHECK(got == want);
    free(v);
}

static void describe(const uint8_t *d, size_t n)
{
    long status = 100 + (long)(eb__fuzz_take(&d, d + n, 2) % 500);
    n = n >= 2 ? n - 2 : 0;
    request r;
    memset(&r, 0, sizeof r);
    eb_buf_init(&r.answer);
    eb_buf_append(&r.answer, (const char *)d, n);
    char out[EB_PUSH_ERROR_EXCERPT + 64];
    memset(out, 'x', sizeof out);
    eb__push_describe(&r, status, CURLE_OK, out, sizeof out);
    size_t len = strnlen(out, sizeof out);
    FUZZ_CHECK(len < sizeof out);
    for (size_t i = 0; i < len; i++)
        FUZZ_CHECK((unsigned char)out[i] >= 0x20);
    char want[EB_PUSH_ERROR_EXCERPT + 64 + 32];
    int k = snprintf(want, sizeof want, "HTTP %ld: ", status);
    size_t ex = n < EB_PUSH_ERROR_EXCERPT ? n : EB_PUSH_ERROR_EXCERPT;
    for (size_t i = 0; i < ex && d[i]; i++)
        want[k++] = d[i] < 0x20 ? ' ' : (char)d[i];
    want[k] = '\0';
    if ((size_t)k >= sizeof out)
        want[sizeof out - 1] = '\0';
    FUZZ_CHECK(strcmp(out, want) == 0);
    eb_buf_free(&r.answer);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (data[0] & 1)
        describe(data + 1, size - 1);
    else
        retry_after(data + 1, size - 1);
    return 0;
}
