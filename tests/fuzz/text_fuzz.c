/* text_fuzz.c - fuzz target for the small text parsers of src/util: the
 * duration grammar (util/duration.h) and the percent-decoder (util/pct.h).
 *
 * The input is the text itself, copied into a buffer of exactly its size
 * (so ASan sees any read past n). Properties checked, abort() on a breach:
 *   - duration: an accepted text matches the grammar as an independent
 *     matcher reads it (digits, optional fraction, optional exponent, one
 *     of the units or none when a bare unit is given); a refused text is
 *     refused for its form (EB_ESYNTAX) or its size (EB_ERANGE); an integer
 *     with a unit is exact (checked with 128-bit arithmetic); with no bare
 *     unit a bare number is refused;
 *   - pct: lenient decoding never fails for room given; strict decoding
 *     accepts only when lenient gives the same bytes and no "%00" or bad
 *     escape was there; the decoded bytes, encoded again as %XX each, decode
 *     back to themselves; the output is never longer than the input and is
 *     always terminated.
 * Never crash, leak or hang is checked by the sanitizers and libFuzzer. */
#include <stdlib.h>
#include <string.h>

#include "eventbus/err.h"
#include "fuzz.h"
#include "util/duration.h"
#include "util/pct.h"

static bool digit(char c) { return c >= '0' && c <= '9'; }

/* The grammar of duration.h, read independently: the unit's µs, 0 if the
 * text is not a duration (bare: the bare unit). *integral: no '.' or 'e'. */
static uint64_t grammar(const char *s, size_t n, uint64_t bare, size_t *int_digits,
                        bool *integral)
{
    size_t i = 0;
    while (i < n && digit(s[i]))
        i++;
    *int_digits = i;
    *integral = true;
    bool any = i > 0;
    if (i < n && s[i] == '.') {
        *integral = false;
        i++;
        while (i < n && digit(s[i])) {
            i++;
            any = true;
        }
    }
    if (!any)
        return 0;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        *integral = false;
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        size_t e = i;
        while (i < n && digit(s[i]))
            i++;
        if (i == e)
            return 0;
    }
    const char *u = s + i;
    size_t un = n - i;
    if (un == 0) return bare;
    if (un == 2 && u[0] == 'm' && u[1] == 's') return 1000;
    if (un != 1) return 0;
    return *u == 's' ? 1000000ull : *u == 'm' ? 60000000ull : *u == 'h' ? 3600000000ull
           : *u == 'd' ? 86400000000ull : 0;
}

static void check_duration(const char *s, size_t n)
{
    static const uint64_t bares[] = {0, 1000};
    for (size_t b = 0; b < 2; b++) {
        uint64_t us = 12345, unit;
        size_t int_digits;
        bool integral;
        int rc = eb_duration_parse(s, n, bares[b], &us);
        unit = grammar(s, n, bares[b], &int_digits, &integral);
        FUZZ_CHECK(rc == 0 || rc == EB_ESYNTAX || rc == EB_ERANGE);
        FUZZ_CHECK((rc == EB_ESYNTAX) == (unit == 0));
        if (rc != 0)
            FUZZ_CHECK(us == 12345); /* untouched on failure */
        if (unit && integral) {
            unsigned __int128 v = 0;
            bool big = false;
            for (size_t i = 0; i < int_digits && !big; i++) {
                v = v * 10 + (unsigned)(s[i] - '0');
                big = v > UINT64_MAX;
            }
            v *= unit;
            big = big || v > UINT64_MAX;
            FUZZ_CHECK(big ? rc == EB_ERANGE : rc == 0 && us == (uint64_t)v);
        }
    }
}

static void check_pct(const char *s, size_t n)
{
    size_t cap = n + 1, ln = 0, sn = 0, rn = 0;
    char *lenient = malloc(cap), *strict = malloc(cap), *again = malloc(3 * n + 1),
         *round = malloc(cap);
    FUZZ_CHECK(lenient && strict && again && round);
    FUZZ_CHECK(eb_pct_decode(s, n, lenient, cap, &ln, EB_PCT_LENIENT) == 0);
    FUZZ_CHECK(ln <= n && lenient[ln] == '\0');
    int rc = eb_pct_decode(s, n, strict, cap, &sn, EB_PCT_STRICT);
    FUZZ_CHECK(rc == 0 || rc == EB_ESYNTAX);
    if (rc == 0) {
        FUZZ_CHECK(sn == ln && memcmp(strict, lenient, sn) == 0);
        FUZZ_CHECK(!memchr(strict, '\0', sn)); /* "%00" is refused when strict */
        static const char hex[] = "0123456789abcdef";
        for (size_t i = 0; i < sn; i++) {
            again[3 * i] = '%';
            again[3 * i + 1] = hex[(unsigned char)strict[i] >> 4];
            again[3 * i + 2] = hex[(unsigned char)strict[i] & 15];
        }
        FUZZ_CHECK(eb_pct_decode(again, 3 * sn, round, cap, &rn, EB_PCT_STRICT) == 0);
        FUZZ_CHECK(rn == sn && memcmp(round, strict, sn) == 0);
    } else {
        /* refused: a '%' that is not two hex digits, "%00", or a NUL byte */
        FUZZ_CHECK(memchr(s, '%', n) != NULL || memchr(s, '\0', n) != NULL);
    }
    if (n > 1) { /* too little room: cut short, terminated, said so */
        size_t cn = 0;
        rc = eb_pct_decode(s, n, strict, 1, &cn, EB_PCT_LENIENT);
        FUZZ_CHECK(rc == EB_ETOOBIG && cn == 0 && strict[0] == '\0');
    }
    free(lenient);
    free(strict);
    free(again);
    free(round);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    char *s = malloc(size ? size : 1); /* exactly the input: reads past it are caught */
    FUZZ_CHECK(s != NULL);
    memcpy(s, data, size);
    check_duration(s, size);
    check_pct(s, size);
    free(s);
    return 0;
}
