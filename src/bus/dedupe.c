/* dedupe.c - idempotent-publish window (see dedupe.h). */
#include "bus/dedupe.h"

#include <stdlib.h>
#include <string.h>

#include "eventbus/err.h"
#include "util/xmalloc.h"

struct eb_dedupe_entry {
    eb_dedupe_entry *next; /* younger neighbour in the FIFO */
    uint64_t         seq;  /* the event's sequence number */
    uint64_t         ts_us;/* its append time */
    uint32_t         n;    /* id length */
    char             id[]; /* the id (not NUL-terminated) */
};

void eb_dedupe_init(eb_dedupe *d, uint64_t window_us, size_t max_entries)
{
    memset(d, 0, sizeof *d);
    eb_map_init(&d->map);
    d->window_us = window_us;
    d->max_entries = max_entries ? max_entries : 10u * 1000 * 1000;
}

void eb_dedupe_free(eb_dedupe *d)
{
    for (eb_dedupe_entry *e = d->head, *nx; e; e = nx) {
        nx = e->next;
        free(e);
    }
    eb_map_free(&d->map);
    d->head = d->tail = NULL;
}

static void drop_head(eb_dedupe *d)
{
    eb_dedupe_entry *e = d->head;
    /* A newer entry for the same id may have replaced this one in the map. */
    if (eb_map_get(&d->map, e->id, e->n) == e)
        eb_map_del(&d->map, e->id, e->n);
    d->head = e->next;
    if (!d->head)
        d->tail = NULL;
    free(e);
}

void eb_dedupe_expire(eb_dedupe *d, uint64_t now_us)
{
    uint64_t cutoff = now_us > d->window_us ? now_us - d->window_us : 0;
    while (d->head && d->head->ts_us < cutoff)
        drop_head(d);
}

uint64_t eb_dedupe_find(eb_dedupe *d, const char *id, size_t n, uint64_t now_us,
                        uint64_t *ts_us)
{
    eb_dedupe_entry *e = eb_map_get(&d->map, id, n);
    if (!e || e->ts_us + d->window_us < now_us)
        return 0;
    if (ts_us)
        *ts_us = e->ts_us;
    return e->seq;
}

int eb_dedupe_add(eb_dedupe *d, const char *id, size_t n, uint64_t seq, uint64_t ts_us)
{
    if (d->window_us == 0)
        return 0;
    while (d->map.len >= d->max_entries && d->head) {
        drop_head(d);
        d->evicted++;
    }
    eb_dedupe_entry *e = eb_xmalloc(sizeof *e + n);
    e->next = NULL;
    e->seq = seq;
    e->ts_us = ts_us;
    e->n = (uint32_t)n;
    memcpy(e->id, id, n);
    eb_map_put(&d->map, e->id, n, e, NULL);
    if (d->tail)
        d->tail->next = e;
    else
        d->head = e;
    d->tail = e;
    return 0;
}
