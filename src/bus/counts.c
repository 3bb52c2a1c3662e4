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
} type_walk;

static int walk_one(void *arg, const eb_store_rec *rec)
{
    type_walk *w = arg;
    eb_event_view v;
    if (rec->type == EB_REC_EVENT && eb_event_decode(rec->data, rec->len, &v) == 0)
        w->fn(w->arg, v.type.ptr, v.type.len, 1);
    return 0;
}

int eb__bus_count_types(eb_bus *bus, uint64_t from, uint64_t to, eb_bus_type_count_fn fn,
                        void *arg)
{
    if (from >= to)
        return 0;
    uint64_t lo, hi;
    int rc = eb_store_type_counts(bus->events, from, to, &lo, &hi, fn, arg);
    type_walk w = {fn, arg};
    if (rc == 0 && from < lo)
        rc = eb__bus_walk_range(bus, from, lo, walk_one, &w);
    if (rc == 0 && hi < to)
        rc = eb__bus_walk_range(bus, hi, to, walk_one, &w);
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
 * sealed segments, and a walk of the rest. */
int eb__bus_count_log(eb_bus *bus)
{
    return eb__bus_count_types(bus, eb_store_first_seq(bus->events),
                               eb_store_durable_seq(bus->events), count_log, bus);
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
