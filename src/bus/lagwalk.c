/* lagwalk.c - the lag of groups with a content filter, counted off the
 * request path.
 *
 * A filter looks at each event's data, so the counts by type (lag.c) cannot
 * tell how many events of a range pass it: the range must be read. Reading
 * it inside the request that created (or changed) the group, or inside the
 * startup, blocked every other client for as long as the log is long. Here
 * the request only enters the group into one walk shared by every group
 * being counted, and answers; the walk reads the log in slices on the loop,
 * one slice per loop turn (a uv_idle handle: the loop polls for I/O between
 * slices without waiting), each at most opts.lag_walk_records records read
 * and as many filter evaluations, so other clients are served between
 * slices. Slices on the loop rather than a worker thread: the stores are
 * single-threaded (store.h), and the groups the walk counts are the loop's.
 *
 * Meanwhile the group delivers; its lag is what was found so far (a lower
 * bound) with lag_counting true, and exact once its walk ends. The
 * engine's side (eb_group_count_*, group.h) keeps the count exact while
 * pulls, acks and publishes go on: each group counts [its cursor, to), `to`
 * being the store's next seq when it began (what is appended from there on
 * is counted at append, as for every group); an event its flow examines
 * first is skipped by the walk, one the walk counted first is taken off
 * when the flow examines it.
 *
 * One walk, in laps: a lap reads forward from the lowest `next` of its
 * groups, and a group counts a record only at or past its own `next`; a
 * group that joins behind the lap's position waits for the next lap (a
 * lap does not go back), so any number of groups created during a lap
 * cost at most one more pass over their range, not one each. Deleting a
 * group or changing its config leaves or restarts its count. Records read
 * are counted in lag_walk_reads, not in count_reads (the request path's). */
#include <stdlib.h>
#include <string.h>

#include "bus/bus_int.h"
#include "eventbus/err.h"
#include "util/xmalloc.h"

static void start(eb_bus *bus)
{
    eb_lagwalk *w = &bus->lagwalk;
    if (!w->running && w->n && w->idle.data && !bus->closing) {
        uv_idle_start(&w->idle, eb__lagwalk_turn);
        w->running = true;
    }
}

static void stop(eb_lagwalk *w)
{
    if (w->running)
        uv_idle_stop(&w->idle);
    w->running = false;
    if (w->n == 0)
        w->pos = 0; /* the next group starts a new lap */
}

static void drop_at(eb_lagwalk *w, size_t i)
{
    w->g[i] = w->g[--w->n];
}

static void remove_member(eb_bus *bus, eb_group *g)
{
    eb_lagwalk *w = &bus->lagwalk;
    for (size_t i = 0; i < w->n; i++)
        if (w->g[i] == g) {
            drop_at(w, i);
            break;
        }
    if (w->n == 0)
        stop(w);
}

void eb__lagwalk_add(eb_bus *bus, eb_group *g)
{
    eb_lagwalk *w = &bus->lagwalk;
    bool member = eb_group_counting(g);
    eb_group_count_begin(g, eb_store_next_seq(bus->events));
    if (eb_group_count_moved(g, eb_group_cursor(g))) { /* nothing to read: exact now */
        if (member)
            remove_member(bus, g);
        return;
    }
    if (!member) {
        if (w->n == w->cap) {
            w->cap = w->cap ? w->cap * 2 : 16;
            w->g = eb_xrealloc(w->g, w->cap * sizeof *w->g);
        }
        w->g[w->n++] = g;
    }
    start(bus);
}

void eb__lagwalk_remove(eb_bus *bus, eb_group *g)
{
    if (!eb_group_counting(g))
        return;
    eb_group_count_stop(g);
    remove_member(bus, g);
}

void eb__lagwalk_kick(eb_bus *bus)
{
    start(bus);
}

/* --- one slice ------------------------------------------------------------------- */

typedef struct slice_ctx {
    eb_bus  *bus;
    uint64_t from;    /* groups behind this wait for the next lap */
    uint64_t maxto;   /* no group counts at or past this */
    uint64_t last;    /* the last seq read */
    size_t   reads, evals, budget;
    bool     any, stopped, full;
} slice_ctx;

/* Hands one event to the counting groups it concerns (found through the
 * type index: the cost is the matching groups, not all of them); its JSON
 * is parsed once for all of their filters. */
static void seen(slice_ctx *c, uint64_t seq, const eb_event_view *v)
{
    eb_bus *bus = c->bus;
    void *const *m;
    size_t nm = eb_matcher_match(&bus->grp.matcher, v->type.ptr, v->type.len, &m);
    int ok = -1; /* not parsed yet */
    eb_filter_event fe;
    for (size_t k = 0; k < nm; k++) {
        eb_group *g = m[k];
        uint64_t next = eb_group_count_next(g);
        if (!eb_group_counting(g) || next < c->from || seq < next ||
            seq >= eb_group_count_to(g) || !eb_group_counts_seq(g, seq, v->type))
            continue;
        if (ok < 0)
            ok = eb__bus_filter_event(bus, v, &fe);
        c->evals++;
        eb_group_count_seen(g, seq, v->type, ok ? &fe : NULL); /* unreadable: counted */
    }
}

static int slice_one(void *arg, const eb_store_rec *rec)
{
    slice_ctx *c = arg;
    if (rec->seq >= c->maxto) {
        c->full = true;
        return 1;
    }
    c->last = rec->seq;
    c->any = true;
    c->reads++;
    eb_event_view v;
    if (rec->type == EB_REC_EVENT && eb_event_decode(rec->data, rec->len, &v) == 0)
        seen(c, rec->seq, &v);
    if (c->reads >= c->budget || c->evals >= c->budget) {
        c->stopped = true;
        return 1;
    }
    return 0;
}

/* Where the walk reads this turn: the lowest `next` at or past the lap's
 * position, or, when no group is left there, a new lap from the lowest
 * of all (a group's flow may have passed its `next`: what lies below its
 * cursor is not counted, so its count moves there at once). Ends the
 * counts that are complete. */
static uint64_t walk_from(eb_bus *bus, uint64_t *maxto)
{
    eb_lagwalk *w = &bus->lagwalk;
    uint64_t from = UINT64_MAX, lowest = UINT64_MAX;
    *maxto = 0;
    for (size_t i = w->n; i-- > 0;) {
        eb_group *g = w->g[i];
        if (eb_group_count_moved(g, eb_group_cursor(g))) {
            drop_at(w, i);
            continue;
        }
        uint64_t next = eb_group_count_next(g), to = eb_group_count_to(g);
        lowest = next < lowest ? next : lowest;
        if (next >= w->pos && next < from)
            from = next;
        *maxto = to > *maxto ? to : *maxto;
    }
    if ((from == UINT64_MAX || w->pos == 0) && lowest != UINT64_MAX) {
        w->laps++;
        from = lowest; /* a new lap */
    }
    w->pos = from;
    return from;
}

void eb__lagwalk_turn(uv_idle_t *h)
{
    eb_bus *bus = h->data;
    eb_lagwalk *w = &bus->lagwalk;
    uint64_t maxto = 0, from = bus->closing || !bus->events ? UINT64_MAX : walk_from(bus, &maxto);
    uint64_t durable = from == UINT64_MAX ? 0 : eb_store_durable_seq(bus->events);
    if (w->n == 0 || from >= durable) {
        stop(w); /* done, or waiting for appends to be durable: the timer kicks */
        return;
    }
    w->turns++;
    slice_ctx c = {.bus = bus, .from = from, .maxto = maxto,
                   .budget = bus->opts.lag_walk_records};
    int rc = eb_store_scan(bus->events, from, c.budget, slice_one, &c);
    w->reads += c.reads;
    if (rc && rc != EB_ENOTFOUND) {
        stop(w); /* a read failed: tried again at the next tick */
        return;
    }
    /* Every record below upto was read (or is gone). */
    uint64_t upto = c.full ? maxto : c.stopped ? c.last + 1 : durable;
    if (c.any && !c.full && !c.stopped && c.last + 1 > upto)
        upto = c.last + 1; /* made durable during the scan, and read */
    for (size_t i = w->n; i-- > 0;) /* those of this lap (the others read nothing) */
        if (eb_group_count_next(w->g[i]) >= from && eb_group_count_moved(w->g[i], upto))
            drop_at(w, i);
    w->pos = upto;
    if (w->n == 0)
        stop(w);
}

/* --- life ----------------------------------------------------------------------- */

int eb__lagwalk_init(eb_bus *bus)
{
    eb_lagwalk *w = &bus->lagwalk;
    memset(w, 0, sizeof *w);
    if (!bus->opts.lag_walk_records)
        bus->opts.lag_walk_records = EB_BUS_DEFAULT_LAG_WALK_RECORDS;
    if (uv_idle_init(bus->loop, &w->idle))
        return EB_EIO;
    w->idle.data = bus;
    bus->handles++;
    return 0;
}

void eb__lagwalk_close(eb_bus *bus)
{
    eb_lagwalk *w = &bus->lagwalk;
    stop(w);
    for (size_t i = 0; i < w->n; i++)
        eb_group_count_stop(w->g[i]);
    free(w->g);
    w->g = NULL;
    w->n = w->cap = 0;
    if (w->idle.data)
        uv_close((uv_handle_t *)&w->idle, eb__bus_handle_closed);
}

void eb__lagwalk_stats(const eb_bus *bus, eb_bus_stats *out)
{
    out->lag_walk_reads = bus->lagwalk.reads;
    out->lag_walk_turns = bus->lagwalk.turns;
    out->lag_counting = bus->lagwalk.n;
    out->lag_walk_laps = bus->lagwalk.laps;
}
