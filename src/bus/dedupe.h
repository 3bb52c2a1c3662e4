/* dedupe.h - the idempotent-publish window: (source, client id) -> seq.
 *
 * CloudEvents makes an event unique by source + id, so two producers may
 * reuse each other's ids: the window is keyed by both (an event without a
 * source has the empty source, its own namespace). Only ids the client
 * chose are tracked (generated ULIDs cannot collide). A second table, by id
 * alone, answers GET /v1/events/{id} (the latest event with that id).
 * Entries expire window_us after their append time, oldest first: append
 * times are monotonic, so a FIFO list is an exact expiry order. The table
 * is memory only; after a restart the bus refills it by scanning the log
 * from (now - window), which is what makes the window survive restarts.
 * Bounded by max_bytes (the memory of its entries, as EB_DEDUPE_ENTRY_BYTES
 * counts it): past it the oldest entries are dropped early (counted in
 * `evicted`, reported in /metrics). Loop thread only. */
#ifndef EB_BUS_DEDUPE_H
#define EB_BUS_DEDUPE_H

#include <stddef.h>
#include <stdint.h>

#include "bus/event.h"
#include "util/map.h"

typedef struct eb_dedupe_entry eb_dedupe_entry;

typedef struct eb_dedupe {
    eb_map           map;         /* (source, id) key -> eb_dedupe_entry* */
    eb_map           by_id;       /* id -> the latest eb_dedupe_entry* with it */
    eb_dedupe_entry *head, *tail; /* FIFO in append-time order */
    uint64_t         window_us;   /* how long an id is remembered */
    uint64_t         max_bytes;   /* hard bound on bytes */
    uint64_t         bytes;       /* held now */
    uint64_t         evicted;     /* entries dropped before their time */
} eb_dedupe;

/* What one entry of key length klen and id length idlen costs: the entry,
 * its two map slots (at the maps' load factor) and their key copies, with
 * malloc's overhead (measured: ARCHITECTURE.md, "Memory bounds"). */
#define EB_DEDUPE_ENTRY_BYTES(klen, idlen) (192u + 2u * (klen) + (idlen))

void eb_dedupe_init(eb_dedupe *d, uint64_t window_us, uint64_t max_bytes);
void eb_dedupe_free(eb_dedupe *d);
/* Seq of a remembered (source, id) (and its append time through *ts_us), or
 * 0 when unknown or expired at now_us. An absent source is the empty one. */
uint64_t eb_dedupe_find(eb_dedupe *d, eb_str source, eb_str id, uint64_t now_us,
                        uint64_t *ts_us);
/* The same for the latest event with this id, whatever its source. */
uint64_t eb_dedupe_find_id(eb_dedupe *d, eb_str id, uint64_t now_us, uint64_t *ts_us);
/* Remembers (source, id) -> seq appended at ts_us. */
void eb_dedupe_add(eb_dedupe *d, eb_str source, eb_str id, uint64_t seq, uint64_t ts_us);
/* Forgets the entries of seqs in [lo, hi): a publish that failed (its seqs
 * are handed out again). Walks the table: for the rare failure only. */
void eb_dedupe_forget_seqs(eb_dedupe *d, uint64_t lo, uint64_t hi);
/* Drops entries older than now_us - window. */
void eb_dedupe_expire(eb_dedupe *d, uint64_t now_us);

#endif
