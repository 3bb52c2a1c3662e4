/* dedupe.c - idempotent-publish window (see dedupe.h). */
#include "bus/dedupe.h"

#include <stdlib.h>
#include <string.h>

#include "util/xmalloc.h"

/* An entry's key is [source length, 4 bytes LE][source][id]: the length
 * prefix keeps ("a", "bc") and ("ab", "c") apart whatever bytes they hold. */
struct eb_dedupe_entry {
    eb_dedupe_entry *next;  /* younger neighbour in the FIFO */
    uint64_t         seq;   /* the event's sequence number */
    uint64_t         ts_us; /* its append time */
    uint32_t         klen;  /* key length */
    uint32_t         idlen; /* the id: the last idlen bytes of the key */
    char             key[];
};

#define KEY_MAX (4 + EB_EVENT_MAX_ATTR + EB_EVENT_MAX_ID)

static const char *entry_id(const eb_dedupe_entry *e) { return e->key + e->klen - e->idlen; }

/* Writes the key of (source, id) into k (KEY_MAX bytes); returns its length,
 * or 0 if the fields are longer than an envelope allows. */
static size_t make_key(char *k, eb_str source, eb_str id)
{
    size_t sl = source.ptr ? source.len : 0;
    if (sl > EB_EVENT_MAX_ATTR || id.len > EB_EVENT_MAX_ID)
        return 0;
    k[0] = (char)(sl & 0xff), k[1] = (char)(sl >> 8 & 0xff), k[2] = 0, k[3] = 0;
    if (sl)
        memcpy(k + 4, source.ptr, sl);
    memcpy(k + 4 + sl, id.ptr, id.len);
    return 4 + sl + id.len;
}

void eb_dedupe_init(eb_dedupe *d, uint64_t window_us, uint64_t max_bytes)
{
    memset(d, 0, sizeof *d);
    eb_map_init(&d->map);
    eb_map_init(&d->by_id);
    d->window_us = window_us;
    d->max_bytes = max_bytes ? max_bytes : 64ull << 20;
}

void eb_dedupe_free(eb_dedupe *d)
{
    for (eb_dedupe_entry *e = d->head, *nx; e; e = nx) {
        nx = e->next;
        free(e);
    }
    eb_map_free(&d->map);
    eb_map_free(&d->by_id);
    d->head = d->tail = NULL;
}

/* Takes e (whose FIFO predecessor is prev, NULL for the head) out. */
static void drop(eb_dedupe *d, eb_dedupe_entry *prev, eb_dedupe_entry *e)
{
    /* A newer entry for the same key or id may have replaced this one. */
    if (eb_map_get(&d->map, e->key, e->klen) == e)
        eb_map_del(&d->map, e->key, e->klen);
    if (eb_map_get(&d->by_id, entry_id(e), e->idlen) == e)
        eb_map_del(&d->by_id, entry_id(e), e->idlen);
    if (prev)
        prev->next = e->next;
    else
        d->head = e->next;
    if (d->tail == e)
        d->tail = prev;
    d->bytes -= EB_DEDUPE_ENTRY_BYTES(e->klen, e->idlen);
    free(e);
}

static void drop_head(eb_dedupe *d) { drop(d, NULL, d->head); }

void eb_dedupe_forget_seqs(eb_dedupe *d, uint64_t lo, uint64_t hi)
{
    eb_dedupe_entry *prev = NULL, *e = d->head;
    while (e) {
        eb_dedupe_entry *next = e->next;
        if (e->seq >= lo && e->seq < hi)
            drop(d, prev, e);
        else
            prev = e;
        e = next;
    }
}

void eb_dedupe_expire(eb_dedupe *d, uint64_t now_us)
{
    uint64_t cutoff = now_us > d->window_us ? now_us - d->window_us : 0;
    while (d->head && d->head->ts_us < cutoff)
        drop_head(d);
}

static uint64_t found(const eb_dedupe *d, const eb_dedupe_entry *e, uint64_t now_us,
                      uint64_t *ts_us)
{
    if (!e || e->ts_us + d->window_us < now_us)
        return 0;
    if (ts_us)
        *ts_us = e->ts_us;
    return e->seq;
}

uint64_t eb_dedupe_find(eb_dedupe *d, eb_str source, eb_str id, uint64_t now_us,
                        uint64_t *ts_us)
{
    char k[KEY_MAX];
    size_t kn = make_key(k, source, id);
    return kn ? found(d, eb_map_get(&d->map, k, kn), now_us, ts_us) : 0;
}

uint64_t eb_dedupe_find_id(eb_dedupe *d, eb_str id, uint64_t now_us, uint64_t *ts_us)
{
    return found(d, eb_map_get(&d->by_id, id.ptr, id.len), now_us, ts_us);
}

void eb_dedupe_add(eb_dedupe *d, eb_str source, eb_str id, uint64_t seq, uint64_t ts_us)
{
    char k[KEY_MAX];
    size_t kn = make_key(k, source, id);
    if (d->window_us == 0 || kn == 0)
        return;
    uint64_t cost = EB_DEDUPE_ENTRY_BYTES(kn, id.len);
    while (d->bytes + cost > d->max_bytes && d->head) {
        drop_head(d);
        d->evicted++;
    }
    d->bytes += cost;
    eb_dedupe_entry *e = eb_xmalloc(sizeof *e + kn);
    e->next = NULL;
    e->seq = seq;
    e->ts_us = ts_us;
    e->klen = (uint32_t)kn;
    e->idlen = (uint32_t)id.len;
    memcpy(e->key, k, kn);
    eb_map_put(&d->map, e->key, kn, e, NULL);
    eb_map_put(&d->by_id, entry_id(e), e->idlen, e, NULL);
    if (d->tail)
        d->tail->next = e;
    else
        d->head = e;
    d->tail = e;
}
