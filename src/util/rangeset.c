/* rangeset.c - sorted disjoint ranges of uint64_t (see rangeset.h). */
#include "util/rangeset.h"

#include <stdlib.h>
#include <string.h>

#include "util/xmalloc.h"

void eb_rangeset_init(eb_rangeset *s)
{
    memset(s, 0, sizeof *s);
}

void eb_rangeset_free(eb_rangeset *s)
{
    free(s->r);
    eb_rangeset_init(s);
}

void eb_rangeset_clear(eb_rangeset *s)
{
    s->n = 0;
}

/* Index of the first range with b >= v (the one v could touch or join). */
static size_t lower(const eb_rangeset *s, uint64_t v)
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->r[mid].b < v)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

void eb_rangeset_add(eb_rangeset *s, uint64_t a, uint64_t b)
{
    if (a >= b)
        return;
    size_t i = lower(s, a); /* first range that ends at or after a */
    size_t j = i;           /* ranges [i, j) merge with [a, b) */
    while (j < s->n && s->r[j].a <= b) {
        if (s->r[j].a < a)
            a = s->r[j].a;
        if (s->r[j].b > b)
            b = s->r[j].b;
        j++;
    }
    if (j > i) { /* replace [i, j) by one range */
        s->r[i] = (eb_range){a, b};
        memmove(&s->r[i + 1], &s->r[j], (s->n - j) * sizeof *s->r);
        s->n -= j - i - 1;
        return;
    }
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 8;
        s->r = eb_xrealloc(s->r, cap * sizeof *s->r);
        s->cap = cap;
    }
    memmove(&s->r[i + 1], &s->r[i], (s->n - i) * sizeof *s->r);
    s->r[i] = (eb_range){a, b};
    s->n++;
}

bool eb_rangeset_has(const eb_rangeset *s, uint64_t v)
{
    size_t i = lower(s, v + 1);
    return i < s->n && s->r[i].a <= v && v < s->r[i].b;
}

uint64_t eb_rangeset_skip(const eb_rangeset *s, uint64_t v)
{
    size_t i = lower(s, v + 1);
    return (i < s->n && s->r[i].a <= v && v < s->r[i].b) ? s->r[i].b : v;
}

void eb_rangeset_trim_below(eb_rangeset *s, uint64_t v)
{
    size_t i = 0;
    while (i < s->n && s->r[i].b <= v)
        i++;
    if (i) {
        memmove(s->r, &s->r[i], (s->n - i) * sizeof *s->r);
        s->n -= i;
    }
    if (s->n && s->r[0].a < v)
        s->r[0].a = v;
}

uint64_t eb_rangeset_count(const eb_rangeset *s, uint64_t a, uint64_t b)
{
    uint64_t c = 0;
    for (size_t i = lower(s, a + 1); i < s->n && s->r[i].a < b; i++) {
        uint64_t lo = s->r[i].a > a ? s->r[i].a : a, hi = s->r[i].b < b ? s->r[i].b : b;
        if (hi > lo)
            c += hi - lo;
    }
    return c;
}
