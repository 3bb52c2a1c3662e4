/* pull.c - pulls and long polls: leasing deliveries for a pull, waiting
 * pulls (oldest first) served when deliveries become ready or their wait
 * ends, and answering them all at shutdown. Calls the engine only. */
#include <stdlib.h>
#include <string.h>

#include "bus/bus_int.h"
#include "eventbus/err.h"
#include "util/xmalloc.h"

static uint64_t durable_head(eb_bus *bus)
{
    return eb_store_durable_seq(bus->events);
}

/* --- pulls and long polls ----------------------------------------------------------- */

/* True while the global lease budget (--max-in-flight-total, shared by all
 * groups through eb_group_env.leases) has room: a long poll waits otherwise. */
static bool budget_left(const eb_bus *bus)
{
    return bus->grp.in_flight < bus->opts.max_in_flight_total;
}

static void waiter_unlink(eb_bus *bus, pull_waiter *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        bus->grp.waiters = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        bus->grp.waiters_tail = w->prev;
}

/* Leases and answers: the deliveries go to cb as views into the bus's
 * scratch (the events copied there from the cache or the store for this
 * answer only: a delivery holds no copy of its event). */
static void answer_pull(eb_bus *bus, eb_group *g, const char *consumer, size_t clen, size_t max,
                        eb_bus_pull_cb cb, void *arg)
{
    eb_bus_groups *gr = &bus->grp;
    if (max > gr->dl_cap) {
        gr->dl = eb_xrealloc(gr->dl, max * sizeof *gr->dl);
        gr->dl_cap = max;
    }
    uint64_t deadline = 0;
    eb__bus_group_arm(bus, g);
    size_t n = eb_group_pull(g, consumer, clen, max, durable_head(bus), gr->dl, &deadline,
                             &gr->dl_events);
    cb(arg, 0, gr->dl, n, deadline);
}

int eb_bus_pull(eb_bus *bus, const char *group, size_t glen, const char *consumer, size_t clen,
                size_t max, uint32_t wait_ms, eb_bus_pull_cb cb, eb_bus_alive_fn alive,
                void *arg)
{
    if (bus->closing)
        return EB_ECLOSED;
    eb_group *g = eb__bus_group(bus, group, glen);
    if (!g)
        return EB_ENOTFOUND;
    if (max == 0 || max > EB_PULL_MAX)
        return EB_EINVAL;
    if (wait_ms == 0 || (budget_left(bus) && eb_group_has_ready(g, durable_head(bus)))) {
        answer_pull(bus, g, consumer, clen, max, cb, arg);
        return 0;
    }
    pull_waiter *w = eb_xcalloc(1, sizeof *w + clen + 1);
    *w = (pull_waiter){.g = g, .max = max, .cb = cb, .alive = alive, .arg = arg, .clen = clen,
                       .deadline_us = eb__bus_now_us() + (uint64_t)wait_ms * 1000u};
    memcpy(w->consumer, consumer, clen);
    w->prev = bus->grp.waiters_tail;
    if (w->prev)
        w->prev->next = w;
    else
        bus->grp.waiters = w;
    bus->grp.waiters_tail = w;
    return 0;
}

/* Serves every waiter that can be served or has waited long enough. */
static void serve_waiters(eb_bus *bus, bool all)
{
    uint64_t now = eb__bus_now_us(), durable = durable_head(bus);
    for (pull_waiter *w = bus->grp.waiters, *nx; w; w = nx) {
        nx = w->next;
        bool gone = w->alive && !w->alive(w->arg);
        bool ready = !gone && budget_left(bus) && eb_group_has_ready(w->g, durable);
        if (!gone && !ready && !all && now < w->deadline_us)
            continue;
        waiter_unlink(bus, w);
        if (gone)
            w->cb(w->arg, EB_ECLOSED, NULL, 0, 0);
        else
            answer_pull(bus, w->g, w->consumer, w->clen, w->max, w->cb, w->arg);
        free(w);
        nx = bus->grp.waiters; /* a callback may have changed the list: restart */
        if (!all)
            durable = durable_head(bus);
    }
}

void eb__bus_pulls_answer(eb_bus *bus, eb_group *g, int status)
{
    for (pull_waiter *w = bus->grp.waiters, *nx; w; w = nx) {
        nx = w->next;
        if (g && w->g != g)
            continue;
        waiter_unlink(bus, w);
        w->cb(w->arg, status, NULL, 0, 0);
        free(w);
        nx = bus->grp.waiters;
    }
}

void eb__bus_pulls_wake(eb_bus *bus)
{
    if (bus->grp.waiters && bus->events)
        serve_waiters(bus, false);
}

void eb_bus_flush_pulls(eb_bus *bus)
{
    if (bus->events)
        serve_waiters(bus, true);
}
