/* history.c - the per-group history: every history_interval_ms (5 s) the
 * timer samples each group's lag, DLQ depth, oldest unacked age and the
 * change of its counters into a ring of EB_HISTORY_SAMPLES, for the
 * dashboard's charts and `eventbus groups history` (bus.h,
 * eb_bus_group_history). Memory only, bounded per group; the rings follow
 * the group table (a deleted group's ring goes with it, so a group created
 * again under the name starts a new one). A ring (28 KiB) is made at a
 * group's first activity (lag, a lease, a dead letter, a delivery since
 * start), so idle groups cost none, and at most --history-groups rings
 * exist: a group that becomes active past that has no history (its
 * samples stay empty). */
#include <stdlib.h>
#include <string.h>

#include "bus/bus_int.h"
#include "eventbus/err.h"
#include "util/xmalloc.h"

#define DEFAULT_INTERVAL_MS 5000

/* One sample, compact (40 bytes; counts saturate at 2^32 - 1). */
typedef struct hsample {
    uint64_t t_ms;    /* ms since the epoch */
    uint32_t lag, delivered, acked, nacked, dead_lettered, dead_letters, oldest_ms;
} hsample;

typedef struct hring {
    eb_group_counters last;    /* counters at the previous sample */
    size_t            head, n; /* next slot, samples kept */
    hsample           s[EB_HISTORY_SAMPLES];
} hring;

static uint32_t sat(uint64_t v)
{
    return v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

static uint32_t delta(uint64_t now, uint64_t before)
{
    return now >= before ? sat(now - before) : 0;
}

static uint32_t interval_ms(const eb_bus *bus)
{
    return bus->opts.history_interval_ms ? bus->opts.history_interval_ms : DEFAULT_INTERVAL_MS;
}

typedef struct tick_ctx {
    eb_bus  *bus;
    eb_map   old, fresh;  /* rings before this round, rings after */
    size_t   rings;       /* rings kept so far (old ones not yet visited too) */
    uint64_t now;
} tick_ctx;

/* Whether anything ever happened in the group (since start): until then a
 * ring would hold only zeros. */
static bool active(const eb_group_info *in)
{
    const eb_group_counters *k = &in->counters;
    return in->lag || in->dead_letters || in->oldest_unacked_us || k->delivered || k->acked ||
           k->nacked || k->dead_lettered;
}

static void sample_one(void *arg, const eb_group_info *in)
{
    tick_ctx *c = arg;
    size_t n = strlen(in->name);
    hring *r = eb_map_del(&c->old, in->name, n);
    /* a new ring's `last` is zero, as a group's counters start (at creation
     * or start-up) */
    if (!r) {
        if (!active(in))
            return;
        if (c->rings >= c->bus->opts.history_groups)
            return;
        r = eb_xcalloc(1, sizeof *r);
        c->rings++;
    }
    eb_map_put(&c->fresh, in->name, n, r, NULL);
    const eb_group_counters *k = &in->counters;
    hsample *s = &r->s[r->head];
    s->t_ms = c->now / 1000u;
    s->lag = sat(in->lag);
    s->delivered = delta(k->delivered, r->last.delivered);
    s->acked = delta(k->acked, r->last.acked);
    s->nacked = delta(k->nacked, r->last.nacked);
    s->dead_lettered = delta(k->dead_lettered, r->last.dead_lettered);
    s->dead_letters = sat(in->dead_letters);
    s->oldest_ms = in->oldest_unacked_us && in->oldest_unacked_us < c->now
                      ? sat((c->now - in->oldest_unacked_us) / 1000u)
                      : 0;
    r->last = *k;
    r->head = (r->head + 1) % EB_HISTORY_SAMPLES;
    if (r->n < EB_HISTORY_SAMPLES)
        r->n++;
}

static void free_rings(eb_map *m)
{
    size_t it = 0;
    const eb_map_slot *s;
    while ((s = eb_map_next(m, &it)))
        free(s->val);
    eb_map_free(m);
}

void eb__bus_history_tick(eb_bus *bus, uint64_t now)
{
    eb_bus_groups *gr = &bus->grp;
    if (now < gr->history_next_us)
        return;
    gr->history_next_us = now + interval_ms(bus) * 1000ull;
    tick_ctx c = {.bus = bus, .old = gr->history, .rings = gr->history.len, .now = now};
    eb_map_init(&c.fresh);
    eb_bus_groups_each(bus, sample_one, &c);
    free_rings(&c.old); /* the rings of groups that went away */
    gr->history = c.fresh;
}

void eb__bus_history_forget(eb_bus *bus, const char *name, size_t n)
{
    free(eb_map_del(&bus->grp.history, name, n));
}

void eb__bus_history_free(eb_bus *bus)
{
    free_rings(&bus->grp.history);
    eb_map_init(&bus->grp.history);
}

int eb_bus_group_history(eb_bus *bus, const char *name, size_t n, uint32_t *interval,
                         eb_group_sample_fn fn, void *arg)
{
    if (!eb__bus_group(bus, name, n))
        return EB_ENOTFOUND;
    *interval = interval_ms(bus);
    const hring *r = eb_map_get(&bus->grp.history, name, n);
    if (!r)
        return 0;
    size_t first = (r->head + EB_HISTORY_SAMPLES - r->n) % EB_HISTORY_SAMPLES;
    for (size_t i = 0; i < r->n; i++) {
        const hsample *s = &r->s[(first + i) % EB_HISTORY_SAMPLES];
        eb_group_sample o = {
            .ts_us = s->t_ms * 1000u,
            .lag = s->lag,
            .delivered = s->delivered,
            .acked = s->acked,
            .nacked = s->nacked,
            .dead_lettered = s->dead_lettered,
            .dead_letters = s->dead_letters,
            .oldest_unacked_ms = s->oldest_ms,
        };
        fn(arg, &o);
    }
    return 0;
}
