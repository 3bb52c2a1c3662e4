/* duration.c - the duration grammar of duration.h. */
#include "util/duration.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "eventbus/err.h"

static size_t digits(const char *s, size_t i, size_t n)
{
    while (i < n && s[i] >= '0' && s[i] <= '9')
        i++;
    return i;
}

/* The unit's length in µs for s[0..n), or 0 if it is not one. */
static uint64_t unit_us(const char *s, size_t n, uint64_t bare)
{
    if (n == 0) return bare;
    if (n == 2 && !memcmp(s, "ms", 2)) return 1000u;
    if (n != 1) return 0;
    switch (*s) {
    case 's': return 1000000u;
    case 'm': return 60000000u;
    case 'h': return 3600000000u;
    case 'd': return 86400000000u;
    default: return 0;
    }
}

int eb_duration_parse(const char *s, size_t n, uint64_t bare_unit_us, uint64_t *us)
{
    size_t i = digits(s, 0, n), int_end = i;
    bool exact = true;
    if (i < n && s[i] == '.') {
        size_t f = digits(s, i + 1, n);
        if (int_end == 0 && f == i + 1)
            return EB_ESYNTAX; /* "." alone */
        i = f;
        exact = false;
    } else if (int_end == 0) {
        return EB_ESYNTAX;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        size_t e = i + 1;
        if (e < n && (s[e] == '+' || s[e] == '-'))
            e++;
        size_t ed = digits(s, e, n);
        if (ed == e)
            return EB_ESYNTAX;
        i = ed;
        exact = false;
    }
    uint64_t mult = unit_us(s + i, n - i, bare_unit_us);
    if (!mult)
        return EB_ESYNTAX;
    if (exact) { /* integers stay exact */
        uint64_t v = 0;
        for (size_t k = 0; k < int_end; k++) {
            if (v > (UINT64_MAX - 9) / 10)
                return EB_ERANGE;
            v = v * 10 + (uint64_t)(s[k] - '0');
        }
        if (v > UINT64_MAX / mult)
            return EB_ERANGE;
        *us = v * mult;
        return 0;
    }
    char num[64];
    if (i >= sizeof num)
        return EB_ERANGE;
    memcpy(num, s, i);
    num[i] = '\0';
    double v = strtod(num, NULL) * (double)mult;
    if (!(v < 18446744073709549568.0)) /* the largest double below 2^64 */
        return EB_ERANGE;
    *us = (uint64_t)v;
    return 0;
}
