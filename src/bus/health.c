/* health.c - the stores' state as the daemon reports it: a store out of
 * space refuses appends with EB_ENOSPC, one whose database is unreachable
 * (the PostgreSQL engine) with EB_ECONNECT, and both recover by themselves
 * (the engine probes with backoff); here the change of state is noticed on the timer,
 * logged once each way, and the group lag (counted ahead at publish, also
 * for the publishes that then failed) is counted again on recovery. */
#include "bus/bus_int.h"
#include "eventbus/err.h"
#include "util/logger.h"

#define CHECK_EVERY_TICKS 25 /* ~250 ms at the groups' 10 ms tick */

static int store_error(eb_store *s)
{
    eb_store_stats st;
    eb_store_stats_get(s, &st);
    return st.error;
}

int eb_bus_storage_error(eb_bus *bus, const char **which)
{
    *which = "";
    if (!bus->events || !bus->meta)
        return 0;
    int rc = store_error(bus->events);
    if (rc) {
        *which = "events";
        return rc;
    }
    rc = store_error(eb_meta_store(bus->meta));
    if (rc)
        *which = "meta";
    return rc;
}

void eb__bus_check_storage(eb_bus *bus)
{
    if (++bus->storage_ticks < CHECK_EVERY_TICKS)
        return;
    bus->storage_ticks = 0;
    const char *which;
    int rc = eb_bus_storage_error(bus, &which);
    if (rc == bus->storage_err)
        return;
    uint64_t now = eb__bus_now_us();
    if (rc == EB_ENOSPC)
        EB_WARN("storage full (%s log): writes are refused (507 storage_full) until space "
                "is freed; probing with backoff", which);
    else if (rc == EB_ECONNECT)
        EB_WARN("storage unreachable (%s store): writes are refused (503 "
                "storage_unavailable) until the database answers; reconnecting with backoff",
                which);
    else if (rc)
        EB_ERROR("storage failed (%s log): %s; writes are refused until a restart", which,
                 eb_strerror(rc));
    else
        EB_INFO("storage writable again after %.1f s: writes accepted",
                (double)(now - bus->storage_since_us) / 1e6);
    if ((bus->storage_err == EB_ENOSPC || bus->storage_err == EB_ECONNECT) && rc == 0) {
        eb__bus_tail_restart(bus);   /* their seqs are handed out again */
        eb__bus_groups_recount(bus); /* publishes that failed were counted ahead */
    }
    bus->storage_err = rc;
    bus->storage_since_us = now;
}
