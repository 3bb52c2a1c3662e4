/* tail.c - the counts by type of the log's tail (tail.h): what the events
 * store's own counts (the segment summaries) do not cover yet, kept in
 * memory in chunks of EB_TAIL_CHUNK seqs, so counting a range there reads
 * at most the two partial chunks at its ends. */
#include "bus/tail.h"

#include <stdlib.h>
#include <string.h>

#include "util/xmalloc.h"

void eb__tail_init(eb_tail *t)
{
    memset(t, 0, sizeof *t);
}

static void chunk_free(eb_map *c)
{
    eb_map_free(c); /* values are counts, not pointers */
}

void eb__tail_reset(eb_tail *t, uint64_t from)
{
    for (size_t i = 0; i < t->n; i++)
        chunk_free(&t->c[i]);
    t->n = 0;
    t->from = t->to = from;
    t->k0 = from / EB_TAIL_CHUNK;
    t->valid = true;
}

void eb__tail_invalidate(eb_tail *t)
{
    eb__tail_reset(t, 0);
    t->valid = false;
}

void eb__tail_free(eb_tail *t)
{
    eb__tail_reset(t, 0);
    free(t->c);
    memset(t, 0, sizeof *t);
}

/* The chunk of seq (made if needed; seq >= t->from). */
static eb_map *chunk_of(eb_tail *t, uint64_t seq)
{
    size_t k = (size_t)(seq / EB_TAIL_CHUNK - t->k0);
    if (k >= t->cap) {
        size_t cap = t->cap ? t->cap : 16;
        while (cap <= k)
            cap *= 2;
        t->c = eb_xrealloc(t->c, cap * sizeof *t->c);
        t->cap = cap;
    }
    while (t->n <= k)
        eb_map_init(&t->c[t->n++]);
    return &t->c[k];
}

void eb__tail_add(eb_tail *t, uint64_t seq, const char *type, size_t len, uint64_t n)
{
    if (!t->valid || seq < t->from)
        return;
    eb_map *c = chunk_of(t, seq);
    uintptr_t have = (uintptr_t)eb_map_get(c, type, len);
    eb_map_put(c, type, len, (void *)(have + (uintptr_t)n), NULL);
    if (seq + 1 > t->to)
        t->to = seq + 1;
}

void eb__tail_seen(eb_tail *t, uint64_t next)
{
    if (t->valid && next > t->to)
        t->to = next;
}

void eb__tail_trim(eb_tail *t, uint64_t below)
{
    if (!t->valid || below <= t->from)
        return;
    size_t drop = 0; /* whole chunks below `below` */
    while (drop < t->n && (t->k0 + drop + 1) * EB_TAIL_CHUNK <= below)
        drop++;
    if (drop == 0)
        return;
    for (size_t i = 0; i < drop; i++)
        chunk_free(&t->c[i]);
    memmove(t->c, t->c + drop, (t->n - drop) * sizeof *t->c);
    t->n -= drop;
    t->k0 += drop;
    t->from = t->k0 * EB_TAIL_CHUNK;
    if (t->to < t->from)
        t->to = t->from;
}

void eb__tail_count(const eb_tail *t, uint64_t from, uint64_t to, uint64_t *lo, uint64_t *hi,
                    void (*fn)(void *, const char *, size_t, uint64_t), void *arg)
{
    *lo = *hi = from;
    if (!t->valid)
        return;
    uint64_t a = from > t->from ? from : t->from, b = to < t->to ? to : t->to;
    /* whole chunks inside [a, b) (the chunk holding t->from is whole from there) */
    uint64_t ka = a == t->from ? a / EB_TAIL_CHUNK : (a + EB_TAIL_CHUNK - 1) / EB_TAIL_CHUNK;
    uint64_t kb = b / EB_TAIL_CHUNK;
    if (kb <= ka)
        return; /* no whole chunk: the caller walks it all */
    uint64_t first = a == t->from ? a : ka * EB_TAIL_CHUNK;
    for (uint64_t k = ka; k < kb; k++) {
        if (k < t->k0 || k - t->k0 >= t->n)
            continue; /* no event counted in it */
        size_t it = 0;
        const eb_map_slot *s;
        while ((s = eb_map_next(&t->c[k - t->k0], &it)))
            fn(arg, s->key, s->klen, (uint64_t)(uintptr_t)s->val);
    }
    *lo = first;
    *hi = kb * EB_TAIL_CHUNK;
}
