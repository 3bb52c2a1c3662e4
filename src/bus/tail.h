/* tail.h - the counts by type of the events log's tail, in memory: the
 * events the events store does not count itself yet (the log engine: the
 * active segment, and sealed segments whose summary is not written yet).
 *
 * Seqs are cut into chunks of EB_TAIL_CHUNK; each chunk holds its counted
 * events per type. The tail is exact for the events counted with seqs in
 * [from, to): filled at open by the one walk of the uncovered part of the
 * log (counts.c), then by every append that groups count (an event
 * published, a delayed event's due copy: the same calls that move the
 * groups' lag, so the two agree). Counting a range then reads the whole
 * chunks inside it from here and walks at most the two partial chunks at
 * its ends: creating a group costs no walk of the log, whatever its length.
 * Chunks the store counts by then are dropped (eb__tail_trim; the bus asks
 * once a second when 64 or more are held), so the tail holds about the
 * active segment (one small map per 1,024 seqs).
 * Invalidated (nothing covered, callers walk) when a failed append makes
 * the counts uncertain, until the next reset.
 * Memory: one small map per chunk holding events (types in it).
 * Loop thread only. */
#ifndef EB_BUS_TAIL_H
#define EB_BUS_TAIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/map.h"

#define EB_TAIL_CHUNK 1024u /* seqs per chunk: the most a count walks at each end */

typedef struct eb_tail {
    bool     valid;
    uint64_t from, to; /* counted: the events with from <= seq < to */
    uint64_t k0;       /* chunk index of c[0] (from / EB_TAIL_CHUNK) */
    eb_map  *c;        /* chunk k0 + i: type -> count (as a pointer-sized integer) */
    size_t   n, cap;
} eb_tail;

void eb__tail_init(eb_tail *t);
void eb__tail_free(eb_tail *t);
/* Forgets every count; counts from seq `from` on. */
void eb__tail_reset(eb_tail *t, uint64_t from);
/* Covers nothing until the next reset. */
void eb__tail_invalidate(eb_tail *t);
/* n events of type at seq (a seq the caller counts; below `from`: ignored). */
void eb__tail_add(eb_tail *t, uint64_t seq, const char *type, size_t len, uint64_t n);
/* Every event below next that is counted has been added. */
void eb__tail_seen(eb_tail *t, uint64_t next);
/* Drops the chunks wholly below seq `below` (the store counts them now). */
void eb__tail_trim(eb_tail *t, uint64_t below);
/* Events by type in the whole chunks inside [from, to) that the tail
 * covers: fn(arg, type, len, n) per (chunk, type), and [*lo, *hi) the range
 * counted (from <= *lo <= *hi <= to; *lo == *hi: none). The caller walks
 * [from, *lo) and [*hi, to). */
void eb__tail_count(const eb_tail *t, uint64_t from, uint64_t to, uint64_t *lo, uint64_t *hi,
                    void (*fn)(void *, const char *, size_t, uint64_t), void *arg);

#endif
