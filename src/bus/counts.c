/* counts.c - the bus's event counters (plain structs; src/api renders
 * them): events in the log and per type, counted from the events store once
 * at open and kept counting on every append, so they survive a restart;
 * the same per process (since start); duplicates and refused events by
 * type. The type table is bounded (EB_BUS_MAX_TYPES): types beyond it
 * fold into "_other", and the number of folded types is counted. */
#include <stdlib.h>
#include <string.h>

#include "bus/bus_int.h"
#include "eventbus/err.h"
#include "util/xmalloc.h"

static eb_bus_type_counts *type_slot(eb_bus_counts *c, const char *t, size_t n)
{
    eb_bus_type_counts *tc = eb_map_get(&c->by_type, t, n);
    if (tc)
        return tc;
    if (c->by_type.len >= EB_BUS_MAX_TYPES) {
        c->folded_events++;
        return &c->other;
    }
    tc = eb_xcalloc(1, sizeof *tc);
    eb_map_put(&c->by_type, t, n, tc, NULL);
    return tc;
}

void eb__bus_counts_init(eb_bus_counts *c)
{
    memset(c, 0, sizeof *c);
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

static int count_one(void *arg, const eb_store_rec *rec)
{
    eb_bus *bus = arg;
    eb_event_view v;
    if (rec->type != EB_REC_EVENT || eb_event_decode(rec->data, rec->len, &v) != 0)
        return 0;
    type_slot(&bus->counts, v.type.ptr, v.type.len)->log++;
    bus->counts.log++;
    return 0;
}

/* Counts the events kept in the events store, per type: one pass at open
 * (the log is read once; what retention dropped is no longer counted). */
int eb__bus_count_log(eb_bus *bus)
{
    return eb__bus_walk_events(bus, eb_store_first_seq(bus->events), count_one, bus);
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
