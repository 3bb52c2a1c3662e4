/* snapshot.c - meta snapshots: when the meta store has grown by
 * --meta-snapshot-bytes since the last one, the whole state (its contents
 * written by codec.c) is appended as one atomic batch, and once that is
 * durable the records before it are dropped (eb_store_drop_before). A
 * clean stop writes one too when anything changed since the last: it keeps
 * each group's position (the floor of its cursor, where acks in order
 * moved it) and shortens the next start's meta replay. Never while a schema
 * registration is pending (see eb__bus_maybe_snapshot). */
#include <stdlib.h>

#include "bus/bus_int.h"
#include "eventbus/err.h"
#include "util/xmalloc.h"

#define SNAPSHOT_CHECK_US 1000000u
#define DEFAULT_SNAPSHOT_BYTES ((uint64_t)64 << 20)

static void snapshot_done(eb_bus *bus, pending_op *op)
{
    bus->grp.snapshotting = false;
    if (op->status == 0 && bus->meta) {
        eb_store_drop_before(eb_meta_store(bus->meta), op->wait_seq);
        eb_store_stats st;
        eb_store_stats_get(eb_meta_store(bus->meta), &st);
        bus->grp.snap_bytes = st.bytes;
        bus->grp.snap_next = eb_store_next_seq(eb_meta_store(bus->meta));
    }
}

/* Writes the whole state after an EB_META_SNAP record, as one batch. */
static int snapshot(eb_bus *bus)
{
    eb_outbox ob;
    eb_outbox_init(&ob);
    int rc = eb__snapshot_write(&ob, &bus->reg, &bus->grp.by_name, &bus->tokens);
    if (rc == 0)
        rc = eb__bus_delay_snapshot(bus, &ob);
    if (rc) {
        eb_outbox_free(&ob);
        return rc;
    }
    pending_op *op = eb_xcalloc(1, sizeof *op);
    eb_store_rec_in *recs = eb_xmalloc(ob.n * sizeof *recs);
    *op = (pending_op){.bus = bus, .complete = snapshot_done};
    for (size_t i = 0; i < ob.n; i++)
        recs[i] = (eb_store_rec_in){ob.recs[i].kind, 0, ob.text.data + ob.recs[i].off,
                                  (uint32_t)ob.recs[i].len};
    rc = eb_meta_append_batch(bus->meta, recs, ob.n, &op->wait_seq, eb__bus_on_durable, op);
    free(recs);
    eb_outbox_free(&ob);
    if (rc)
        free(op);
    else
        bus->grp.snapshotting = true;
    return rc;
}

void eb__bus_maybe_snapshot(eb_bus *bus, uint64_t now)
{
    /* A schema registration enters the registry only once its record is
     * durable, but that record precedes the snapshot in the log, and replay
     * forgets everything before a snapshot: a snapshot written while one
     * is pending would lose it. Wait (the next tick retries) until none is;
     * group changes are in memory when appended, so the snapshot has them. */
    if (now - bus->grp.last_snap_check < SNAPSHOT_CHECK_US || bus->grp.snapshotting ||
        bus->schemas_pending)
        return;
    bus->grp.last_snap_check = now;
    eb_store_stats st;
    eb_store_stats_get(eb_meta_store(bus->meta), &st);
    uint64_t limit = bus->opts.meta_snapshot_bytes ? bus->opts.meta_snapshot_bytes
                                                   : DEFAULT_SNAPSHOT_BYTES;
    if (st.bytes > bus->grp.snap_bytes + limit)
        snapshot(bus);
}

void eb__bus_snapshot_at_close(eb_bus *bus)
{
    if (!bus->meta || !bus->grp.timer.data ||
        (bus->grp.by_name.len == 0 && !eb__bus_delay_pending(bus)))
        return; /* not started, or nothing a snapshot would move */
    eb_store_stats st;
    eb_store_stats_get(eb_meta_store(bus->meta), &st);
    if (st.bytes > bus->grp.snap_bytes ||
        eb_store_next_seq(eb_meta_store(bus->meta)) > bus->grp.snap_next)
        snapshot(bus);
}

void eb__bus_snapshot_start(eb_bus *bus)
{
    eb_store_stats st;
    eb_store_stats_get(eb_meta_store(bus->meta), &st);
    bus->grp.snap_bytes = st.bytes;
    bus->grp.snap_next = eb_store_next_seq(eb_meta_store(bus->meta));
}
