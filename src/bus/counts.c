/* counts.c - the bus's event counters (plain structs; src/api renders
 * them): events in the log and per type, counted from the events store once
 * at open and kept counting on every append, so they survive a restart;
 * the same per process (since start); duplicates and refused events by
 * type. The type table is bounded (opts.max_types, --max-types): types beyond it
 * fold into "_other", and the number of folded types is counted. */
#include <stdlib.h>
#include <string.h>

#include "bus/bus_int.h"
#include "eventbus/err.h"
#include "util/xmalloc.h"

/* The counters of type t; past the bound, "_other" (events more events
 * of a folded type counted as folded). */
static eb_bus_type_counts *type_slot_n(eb_bus_counts *c, const char *t, size_t n,
                                       uint64_t events)
{
    eb_bus_type_counts *tc = eb_map_get(&c->by_type, t, n);
    if (tc)
        return tc;
    if (c->by_type.len >= c->max_types) {
        c->folded_events += events;
        return &c->other;
    }
    tc = eb_xcalloc(1, sizeof *tc);
    eb_map_put(&c->by_type, t, n, tc, NULL);
    return tc;
}

static eb_bus_type_counts *type_slot(eb_bus_counts *c, const char *t, size_t n)
{
    return type_slot_n(c, t, n, 1);
}

void eb__bus_counts_init(eb_bus_counts *c, size_t max_types)
{
    memset(c, 0, sizeof *c);
    c->max_types = max_types;
    eb_map_init(&c->by_type);
}

void eb__bus_counts_free(eb_bus_counts *c)
{
    size_t it = 0;
    const eb_map_slot *s;
    while ((s = eb_map_next(&c->by_type, &it)))
        free(s->val);
    eb_map_free(&c->by_type);
}

void eb__bus_count_published(eb_bus *bus, const char *type, size_t n)
{
    eb_bus_type_counts *tc = type_slot(&bus->counts, type, n);
    tc->log++;
    tc->since_start++;
    bus->counts.log++;
    bus->counts.since_start++;
}

void eb__bus_count_duplicate(eb_bus *bus, const char *type, size_t n)
{
    type_slot(&bus->counts, type, n)->duplicates++;
    bus->counts.duplicates++;
}

void eb__bus_count_rejected(eb_bus *bus, const char *type, size_t n)
{
    type_slot(&bus->counts, type, n)->schema_rejected++;
    bus->counts.schema_rejected++;
}

/* --- counting the log at open ---------------------------------------------------- */

typedef struct type_walk {
    eb_bus_type_count_fn fn;
    void                *arg;
    eb_tail             *tail; /* also counted into it (at open), or NULL */
    uint64_t            *reads; /* records read (the bus's count_reads) */
} type_walk;

static int walk_one(void *arg, const eb_store_rec *rec)
{
    type_walk *w = arg;
    if (w->reads)
        (*w->reads)++;
    eb_event_view v;
    if (rec->type == EB_REC_EVENT && eb_event_decode(rec->data, rec->len, &v) == 0) {
        w->fn(w->arg, v.type.ptr, v.type.len, 1);
        if (w->tail)
            eb__tail_add(w->tail, rec->seq, v.type.ptr, v.type.len, 1);
    }
    return 0;
}

/* Counts [from, to), which the store does not count: the tail's whole
 * chunks, and a walk of the rest. */
static int count_uncovered(eb_bus *bus, uint64_t from, uint64_t to, type_walk *w)
{
    uint64_t lo, hi;
    eb__tail_count(&bus->tail, from, to, &lo, &hi, w->fn, w->arg);
    if (lo == hi)
        return eb__bus_walk_range(bus, from, to, walk_one, w);
    int rc = from < lo ? eb__bus_walk_range(bus, from, lo, walk_one, w) : 0;
    if (rc == 0 && hi < to)
        rc = eb__bus_walk_range(bus, hi, to, walk_one, w);
    return rc;
}

int eb__bus_count_types(eb_bus *bus, uint64_t from, uint64_t to, eb_bus_type_count_fn fn,
                        void *arg)
{
    if (from >= to)
        return 0;
    uint64_t lo, hi;
    int rc = eb_store_type_counts(bus->events, from, to, &lo, &hi, fn, arg);
    type_walk w = {fn, arg, NULL, &bus->count_reads};
    if (rc == 0 && from < lo)
        rc = count_uncovered(bus, from, lo, &w);
    if (rc == 0 && hi < to)
        rc = count_uncovered(bus, hi < from ? from : hi, to, &w);
    return rc;
}

static void count_log(void *arg, const char *type, size_t len, uint64_t n)
{
    eb_bus *bus = arg;
    type_slot_n(&bus->counts, type, len, n)->log += n;
    bus->counts.log += n;
}

/* Counts the events kept in the events store, per type, at open (what
 * retention dropped is no longer counted): the store's own counts of its
 * sealed segments, and one walk of the rest, which fills the tail's counts
 * (tail.h) from where the store's counts end. */
int eb__bus_count_log(eb_bus *bus)
{
    uint64_t from = eb_store_first_seq(bus->events), to = eb_store_durable_seq(bus->events);
    uint64_t lo = from, hi = from;
    int rc = from < to ? eb_store_type_counts(bus->events, from, to, &lo, &hi, count_log, bus)
                       : 0;
    type_walk w = {count_log, bus, NULL, &bus->count_reads};
    if (rc == 0 && from < lo)
        rc = eb__bus_walk_range(bus, from, lo, walk_one, &w);
    eb__tail_reset(&bus->tail, hi);
    w.tail = &bus->tail;
    if (rc == 0 && hi < to)
        rc = eb__bus_walk_range(bus, hi, to, walk_one, &w);
    if (rc == 0)
        eb__tail_seen(&bus->tail, to);
    else
        eb__tail_invalidate(&bus->tail);
    return rc;
}

static void ignore_counts(void *arg, const char *type, size_t len, uint64_t n)
{
    (void)arg, (void)type, (void)len, (void)n;
}

/* Trimming only saves memory and never costs exactness: the tail claims
 * only the chunks it holds, and a range it does not hold is walked. */
void eb__bus_tail_tidy(eb_bus *bus)
{
    if (bus->tail.n < 64)
        return; /* a few chunks: not worth asking */
    uint64_t lo, hi, to = eb_store_durable_seq(bus->events);
    if (bus->tail.from < to &&
        eb_store_type_counts(bus->events, bus->tail.from, to, &lo, &hi, ignore_counts, NULL) == 0 &&
        lo < hi)
        eb__tail_trim(&bus->tail, hi); /* the store counts up to hi itself */
}

/* After appends that failed (their seqs handed out again): the tail's
 * counts from here on only. */
void eb__bus_tail_restart(eb_bus *bus)
{
    eb__tail_reset(&bus->tail, eb_store_next_seq(bus->events));
}

uint64_t eb_bus_count_reads(const eb_bus *bus)
{
    return bus->count_reads;
}

void eb_bus_types_each(eb_bus *bus, eb_bus_types_fn fn, void *arg)
{
    size_t it = 0;
    const eb_map_slot *s;
    while ((s = eb_map_next(&bus->counts.by_type, &it)))
        fn(arg, s->key, s->val);
    const eb_bus_type_counts *o = &bus->counts.other;
    if (o->log || o->since_start || o->duplicates || o->schema_rejected)
        fn(arg, "_other", o);
}
