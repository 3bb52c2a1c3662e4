/* push_fuzz.c - fuzz target for what the push module (src/push) reads from
 * the endpoints it POSTs to. libcurl parses the HTTP answers; eventbusd
 * reads two things from them itself: the Retry-After header of a 429 or
 * 503 (eb__push_retry_after_ms) and the answer body, whose start becomes the
 * nack's error (eb__push_describe), kept with the event and shown in the
 * group's views and dead letters.
 *
 * Input: a mode byte, then the rest.
 *   - mode even: the rest, up to its first NUL, is a Retry-After value, read
 *     at a fixed "now" (2026-01-01) by eb__push_retry_after_ms. Properties:
 *     -1 (unreadable: the group's backoff) or 0 to an hour in ms; digits
 *     alone (blanks around allowed) are that many seconds, capped; nothing,
 *     a signed number or digits followed by anything else is -1 (text
 *     curl_getdate reads as a date is one, whatever its first character);
 *     a date it reads is
 *     one curl_getdate reads, and gives the ms from now to it rounded up
 *     (checked in 128 bits), 0 when past, capped.
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
    const uint64_t now_us = NOW_S * 1000000u + 250000u;
    int64_t got = eb__push_retry_after_ms(v, now_us);
    FUZZ_CHECK(got >= -1 && got <= 3600000);
    /* the value without its surrounding blanks */
    const char *t = v;
    while (*t == ' ' || *t == '\t')
        t++;
    size_t len = strlen(t);
    while (len && (t[len - 1] == ' ' || t[len - 1] == '\t'))
        len--;
    bool digits = len > 0;
    for (size_t i = 0; i < len; i++)
        digits = digits && t[i] >= '0' && t[i] <= '9';
    if (digits) {
        uint64_t s = 0;
        for (size_t i = 0; i < len && s <= 3600; i++)
            s = s * 10 + (uint64_t)(t[i] - '0');
        FUZZ_CHECK(got == (int64_t)(s > 3600 ? 3600000 : s * 1000));
    } else if (len == 0 || (t[0] >= '0' && t[0] <= '9') ||
               ((t[0] == '-' || t[0] == '+') && len > 1 &&
                strspn(t + 1, "0123456789") == len - 1)) {
        FUZZ_CHECK(got == -1); /* nothing, a signed number, digits then text */
    } else if (got >= 0) {
        /* a date curl_getdate reads: the ms from now to it, rounded up */
        char *date = strndup(t, len);
        FUZZ_CHECK(date);
        time_t at = curl_getdate(date, NULL);
        free(date);
        FUZZ_CHECK(at >= 0);
        unsigned __int128 at_us = (unsigned __int128)(uint64_t)at * 1000000u;
        uint64_t want = 0;
        if (at_us > now_us) {
            unsigned __int128 ms = (at_us - now_us + 999u) / 1000u;
            want = ms > 3600000 ? 3600000 : (uint64_t)ms;
        }
        FUZZ_CHECK((uint64_t)got == want);
    }
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
