/* store_pg_cache.c - the PostgreSQL engine's windows of records (see
 * store_pg_int.h): a window of consecutive seqs [lo, hi) in a ring,
 * bounded in count and bytes. Two per EVENTS store: the newest records
 * this node appended (the consumers of a bus mostly read the newest
 * events; served from there, a pull costs no query), and the backlog
 * window, the rows the scans read from the table in chunks, a chunk
 * ahead (store_pg.c). Loop thread only. */
#include <stdlib.h>
#include <string.h>

#include "store/store_pg_int.h"
#include "util/xmalloc.h"

#define CACHE_RECS  262144u    /* a power of two; the ring: 6 MiB once used */
#define CACHE_BYTES (64u << 20)

void eb__pg_cache_init(pg_cache *c, uint64_t next)
{
    eb__pg_cache_init_cap(c, next, CACHE_RECS, CACHE_BYTES);
}

void eb__pg_cache_init_cap(pg_cache *c, uint64_t next, uint32_t recs, size_t bytes)
{
    memset(c, 0, sizeof *c);
    c->lo = c->hi = next;
    c->recs = recs;
    c->max_bytes = bytes;
}

static pg_cached *slot(pg_cache *c, uint64_t seq)
{
    return &c->v[seq & (c->recs - 1)];
}

static void drop_lo(pg_cache *c)
{
    pg_cached *e = slot(c, c->lo++);
    c->bytes -= e->len;
    free(e->data);
    e->data = NULL;
}

void eb__pg_cache_truncate(pg_cache *c, uint64_t to)
{
    while (c->hi > c->lo && c->hi > to) {
        pg_cached *e = slot(c, --c->hi);
        c->bytes -= e->len;
        free(e->data);
        e->data = NULL;
    }
    if (c->hi < c->lo)
        c->lo = c->hi;
}

void eb__pg_cache_add(pg_cache *c, uint64_t seq, uint64_t ts, uint16_t type, uint16_t flags,
                      const void *data, uint32_t len)
{
    if (!c->v)
        c->v = eb_xcalloc(c->recs, sizeof *c->v);
    if (seq != c->hi) { /* not the next one: start a new window there */
        while (c->lo < c->hi)
            drop_lo(c);
        c->lo = c->hi = seq;
    }
    /* Evict the oldest; a scan in progress keeps what it may be visiting
     * (the window then grows past its bytes for a while, never its count). */
    while (c->lo < c->hi && (c->hi - c->lo == c->recs ||
                             (!c->pinned && c->bytes + len > c->max_bytes)))
        drop_lo(c);
    if (c->hi - c->lo == c->recs) /* pinned and full: cache nothing more */
        return;
    pg_cached *e = slot(c, c->hi++);
    e->ts = ts;
    e->type = type;
    e->flags = flags;
    e->len = len;
    e->data = eb_xmalloc(len ? len : 1);
    memcpy(e->data, data, len);
    c->bytes += len;
}

const pg_cached *eb__pg_cache_get(pg_cache *c, uint64_t seq)
{
    return seq >= c->lo && seq < c->hi ? slot(c, seq) : NULL;
}

void eb__pg_cache_free(pg_cache *c)
{
    while (c->lo < c->hi)
        drop_lo(c);
    free(c->v);
    c->v = NULL;
}
