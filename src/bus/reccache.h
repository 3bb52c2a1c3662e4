/* reccache.h - the recent-records cache: the events a group engine read
 * for its deliveries, so that a delivery holds no copy of its event.
 *
 * One ring of bytes shared by every group (the bus's, --delivery-cache-
 * bytes): filling a delivery puts its record at the ring's head and keeps
 * only the position (8 bytes); answering a pull reads the record back from
 * the ring, or, once newer records have overwritten it, from the events
 * store. Positions count bytes written since the start and never repeat,
 * so a stale one is told apart without a lookup. Loop thread only. */
#ifndef EB_BUS_RECCACHE_H
#define EB_BUS_RECCACHE_H

#include <stddef.h>
#include <stdint.h>

#define EB_RECCACHE_NONE UINT64_MAX /* a position that is never valid */

typedef struct eb_reccache {
    char    *buf;  /* cap bytes; NULL: caching off (cap 0) */
    size_t   cap;
    uint64_t head; /* bytes written since the start: the next position */
} eb_reccache;

/* A cache of cap bytes (0: none; every read goes to the store). */
void     eb_reccache_init(eb_reccache *c, size_t cap);
void     eb_reccache_free(eb_reccache *c);
/* Copies len bytes in; returns their position, or EB_RECCACHE_NONE when
 * the record is over an eighth of the cache (not worth evicting for). */
uint64_t eb_reccache_put(eb_reccache *c, const void *p, size_t len);
/* The len bytes put at pos, or NULL once overwritten. Valid until the
 * next put. */
const char *eb_reccache_get(const eb_reccache *c, uint64_t pos, size_t len);

#endif
