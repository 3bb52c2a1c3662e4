/* read.c - reading events out of the events store: browsing (a scan with
 * filters), one event by id (the id lookup, then the dedupe window and a
 * generated id's time), and one key's stream (the key lookup); the
 * lookups are the store's (store.h). Every read
 * hands borrowed views to the caller's function; nothing is copied. */
#include <string.h>

#include "bus/bus_int.h"
#include "eventbus/err.h"

/* --- reading events ------------------------------------------------------ */

typedef struct browse_ctx {
    const eb_browse *q;
    eb_event_fn      fn;
    void            *arg;
    size_t           found;   /* events written */
    size_t           scanned; /* records looked at */
    uint64_t         last;    /* last seq looked at */
    bool             done;    /* until reached */
} browse_ctx;

#define BROWSE_SCAN_MAX 100000 /* records one call may look at */

static int browse_one(void *arg, const eb_store_rec *rec)
{
    browse_ctx *c = arg;
    c->scanned++;
    c->last = rec->seq;
    if (c->q->until_us && rec->ts_us >= c->q->until_us) {
        c->done = true;
        return 1;
    }
    eb_event_view v;
    if (!eb__bus_public_event(rec, &v))
        return 0;
    if (c->q->type.ptr && (v.type.len != c->q->type.len ||
                           memcmp(v.type.ptr, c->q->type.ptr, v.type.len) != 0))
        return c->scanned >= BROWSE_SCAN_MAX;
    c->fn(c->arg, rec->seq, rec->ts_us, &v);
    c->found++;
    return c->found >= c->q->limit || c->scanned >= BROWSE_SCAN_MAX;
}

int eb_bus_browse(eb_bus *bus, const eb_browse *q, eb_event_fn fn, void *arg,
                  uint64_t *next_after)
{
    uint64_t from = q->after_seq + 1;
    if (q->since_us) {
        uint64_t s = 0;
        if (eb_store_seek_time(bus->events, q->since_us, &s) == 0 && s > from)
            from = s;
        else if (s == 0)
            from = eb_store_durable_seq(bus->events); /* nothing that late */
    }
    uint64_t first = eb_store_first_seq(bus->events);
    if (from < first)
        from = first;
    browse_ctx c = {q, fn, arg, 0, 0, from - 1, false};
    while (!c.done && c.found < q->limit && c.scanned < BROWSE_SCAN_MAX &&
           c.last + 1 < eb_store_durable_seq(bus->events)) {
        uint64_t before = c.last;
        int rc = eb_store_scan(bus->events, c.last + 1, 1000, browse_one, &c);
        if (rc && rc != EB_ENOTFOUND)
            return rc;
        if (c.last == before)
            break;
    }
    bool more = !c.done && c.last + 1 < eb_store_durable_seq(bus->events);
    *next_after = more ? c.last : 0;
    return 0;
}

/* Decodes the ms timestamp of a generated (ULID) id; 0 if not one. */
static uint64_t ulid_ms(const char *id, size_t n)
{
    if (n != EB_EVENT_ID_LEN)
        return 0;
    uint64_t v = 0;
    for (size_t i = 0; i < 10; i++) {
        const char *p = strchr("0123456789ABCDEFGHJKMNPQRSTVWXYZ", id[i]);
        if (!p || !id[i])
            return 0;
        v = v << 5 | (uint64_t)(p - "0123456789ABCDEFGHJKMNPQRSTVWXYZ");
    }
    return v; /* 50 bits read: 2 zero pad bits, then the 48-bit time */
}

typedef struct find_ctx {
    const char *id;
    size_t      n;
    const eb_str *source; /* NULL: any */
    uint64_t    stop_us; /* give up past this append time */
    size_t      scanned;
    eb_event_fn fn;
    void       *arg;
    bool        found;
    bool        stop;    /* gave up */
    uint64_t    last;
} find_ctx;

/* Whether v's source is src (NULL: any; length 0: none or the empty one). */
static bool source_is(const eb_event_view *v, const eb_str *src)
{
    if (!src)
        return true;
    char buf[EB_EVENT_MAX_ATTR];
    eb_str s;
    if (eb_event_source(v, buf, &s) != 0)
        return false;
    return s.len == src->len && (s.len == 0 || memcmp(s.ptr, src->ptr, s.len) == 0);
}

static int find_one(void *arg, const eb_store_rec *rec)
{
    find_ctx *c = arg;
    c->last = rec->seq;
    eb_event_view v;
    if (rec->ts_us > c->stop_us || ++c->scanned > BROWSE_SCAN_MAX) {
        c->stop = true;
        return 1;
    }
    if (!eb__bus_public_event(rec, &v))
        return 0;
    if (v.id.len == c->n && memcmp(v.id.ptr, c->id, c->n) == 0 && source_is(&v, c->source)) {
        c->fn(c->arg, rec->seq, rec->ts_us, &v);
        c->found = true;
        return 1;
    }
    return 0;
}

/* Reads the one record at seq into c (find_one checks its id). */
static int read_at(eb_bus *bus, uint64_t seq, find_ctx *c)
{
    bus->lookup_reads++;
    c->last = seq - 1;
    return eb_store_scan(bus->events, seq, 1, find_one, c);
}

#define LOOKUP_TRIES 16 /* records one lookup reads at most (hash collisions) */

/* Looks an event up by id (and source): through the lookup (one record
 * read; one more for each newer event whose hash collides, up to
 * LOOKUP_TRIES); if that misses (an index entry lost to memory, or more
 * collisions), client ids through the dedupe window, generated ids by the
 * time they carry (seek, then a short scan). */
int eb_bus_get_event_from(eb_bus *bus, const eb_str *source, const char *id, size_t n,
                          eb_event_fn fn, void *arg)
{
    size_t sl = source ? source->len : 0;
    const char *sp = source ? source->ptr : NULL;
    uint64_t at = UINT64_MAX;
    /* A hit that is another event's record (hashes collide): the next
     * older one with the hash, a bounded number of times. */
    for (int tries = 0; tries < LOOKUP_TRIES; tries++) {
        at = source ? eb_store_lookup_source_id(bus->events, sp, sl, id, n, at)
                    : eb_store_lookup_id_below(bus->events, id, n, at);
        if (!at)
            break;
        find_ctx one = {id, n, source, UINT64_MAX, 0, fn, arg, false, false, 0};
        int rc = read_at(bus, at, &one);
        if (rc && rc != EB_ENOTFOUND)
            return rc;
        if (one.found)
            return 0;
    }
    uint64_t ts = 0, now = eb__bus_now_us();
    uint64_t seq = source ? eb_dedupe_find(&bus->dedupe, (eb_str){sp, sl}, (eb_str){id, n}, now, &ts)
                          : eb_dedupe_find_id(&bus->dedupe, (eb_str){id, n}, now, &ts);
    uint64_t from = seq, ms = ulid_ms(id, n);
    find_ctx c = {id, n, source, UINT64_MAX, 0, fn, arg, false, false, 0};
    if (!seq && ms) {
        if (eb_store_seek_time(bus->events, ms * 1000u, &from) != 0)
            return EB_ENOTFOUND;
        c.stop_us = ms * 1000u + 60u * 1000000u; /* appended within a minute of its id */
    }
    if (!from)
        return EB_ENOTFOUND;
    c.last = from - 1;
    while (!c.found && !c.stop &&
           c.last + 1 < eb_store_durable_seq(bus->events)) {
        uint64_t before = c.last;
        int rc = eb_store_scan(bus->events, c.last + 1, seq ? 1 : 1000, find_one, &c);
        if (rc || c.last == before || seq)
            break;
    }
    return c.found ? 0 : EB_ENOTFOUND;
}

int eb_bus_get_event(eb_bus *bus, const char *id, size_t n, eb_event_fn fn, void *arg)
{
    return eb_bus_get_event_from(bus, NULL, id, n, fn, arg);
}

typedef struct key_read {
    eb_event_fn fn;
    void       *arg;
    uint64_t    seq; /* the record wanted */
} key_read;

static int key_one(void *arg, const eb_store_rec *rec)
{
    key_read *c = arg;
    eb_event_view v;
    /* A scan starts at the oldest retained record when seq is older:
     * retention may have removed it since the lookup. */
    if (rec->seq == c->seq && eb__bus_public_event(rec, &v))
        c->fn(c->arg, rec->seq, rec->ts_us, &v);
    return 1;
}

int eb_bus_key_events(eb_bus *bus, const char *key, size_t n, uint64_t from_version,
                      size_t limit, eb_event_fn fn, void *arg, uint64_t *next_version,
                      uint64_t *current)
{
    uint64_t seqs[1000], first = 0;
    if (limit > 1000)
        limit = 1000;
    *current = eb_store_key_version(bus->events, key, n);
    size_t k = eb_store_key_seqs(bus->events, key, n, from_version, seqs, limit, &first);
    bus->lookup_reads += k;
    key_read c = {fn, arg, 0};
    for (size_t i = 0; i < k; i++) {
        c.seq = seqs[i];
        int rc = eb_store_scan(bus->events, seqs[i], 1, key_one, &c);
        if (rc && rc != EB_ENOTFOUND)
            return rc;
    }
    /* Format-1 records carry no version: count from the first. */
    uint64_t last = k ? first + k - 1 : 0;
    *next_version = k ? last + 1 : (from_version > *current ? from_version : *current + 1);
    return 0;
}

uint64_t eb_bus_lookup_reads(const eb_bus *bus) { return bus->lookup_reads; }

