/* reccache.c - the recent-records cache (reccache.h). A record never wraps
 * around the ring's end: one that does not fit before it starts at the
 * ring's beginning, and the bytes skipped count as written. */
#include "bus/reccache.h"

#include <stdlib.h>
#include <string.h>

#include "util/xmalloc.h"

void eb_reccache_init(eb_reccache *c, size_t cap)
{
    c->buf = cap ? eb_xcalloc_huge(cap) : NULL; /* huge pages: fewer faults on the first lap */
    c->cap = cap;
    c->head = 0;
}

void eb_reccache_free(eb_reccache *c)
{
    eb_free_huge(c->buf, c->cap);
    eb_reccache_init(c, 0);
}

uint64_t eb_reccache_put(eb_reccache *c, const void *p, size_t len)
{
    if (!c->cap || len > c->cap / 8)
        return EB_RECCACHE_NONE;
    size_t off = (size_t)(c->head % c->cap);
    if (off + len > c->cap) { /* skip the tail: records stay contiguous */
        c->head += c->cap - off;
        off = 0;
    }
    uint64_t pos = c->head;
    memcpy(c->buf + off, p, len);
    c->head += len;
    return pos;
}

const char *eb_reccache_get(const eb_reccache *c, uint64_t pos, size_t len)
{
    if (pos == EB_RECCACHE_NONE || !c->cap || pos + len > c->head || c->head - pos > c->cap)
        return NULL;
    return c->buf + pos % c->cap;
}
