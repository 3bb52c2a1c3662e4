/* rangeset.h - a set of uint64_t values kept as sorted, disjoint,
 * non-adjacent half-open ranges [a, b).
 *
 * Consumer groups record which sequence numbers are finished (acked or
 * dead-lettered) above their floor; acks arrive mostly in order, so the set
 * stays a handful of ranges however many values it holds. Not thread-safe. */
#ifndef EB_UTIL_RANGESET_H
#define EB_UTIL_RANGESET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct eb_range {
    uint64_t a, b; /* [a, b) */
} eb_range;

typedef struct eb_rangeset {
    eb_range *r;   /* sorted by a; owned */
    size_t    n;   /* ranges in use */
    size_t    cap; /* allocated */
} eb_rangeset;

void eb_rangeset_init(eb_rangeset *s);
void eb_rangeset_free(eb_rangeset *s);
void eb_rangeset_clear(eb_rangeset *s);
/* Adds [a, b) (merging). Aborts on allocation failure. */
void eb_rangeset_add(eb_rangeset *s, uint64_t a, uint64_t b);
bool eb_rangeset_has(const eb_rangeset *s, uint64_t v);
/* If v is in the set, the end of its range (first value above v not in the
 * set); otherwise v. */
uint64_t eb_rangeset_skip(const eb_rangeset *s, uint64_t v);
/* Drops every value below v. */
void eb_rangeset_trim_below(eb_rangeset *s, uint64_t v);
/* Number of values in [a, b) held by the set. */
uint64_t eb_rangeset_count(const eb_rangeset *s, uint64_t a, uint64_t b);

#endif
