/* group_load.c - the meta replay at startup: applies a group's records
 * (decoded by codec.c) to its engine, then turns redriven dead letters back
 * into deliveries once every record is read. */
#include <stdlib.h>
#include <string.h>

#include "bus/group_int.h"
#include "eventbus/err.h"

static void apply_ranges(eb_group *g, eb_rec_iter it, bool main)
{
    uint64_t a, b;
    while (eb__rec_next_range(&it, &a, &b)) {
        if (main)
            eb_rangeset_add(&g->main.done, a, b);
        else
            eb__flow_replay_done(g, a, b);
    }
}

static void drop_failinfo(eb_group *g, int cls, uint64_t seq);

/* Acked: a lease read back for those seqs is over (its failinfo goes, so
 * the map holds only leases still open as the replay goes). */
static void drop_leases(eb_group *g, int cls, eb_rec_iter it)
{
    uint64_t a, b;
    while (g->fails.len && eb__rec_next_range(&it, &a, &b)) {
        if (b - a > EB_GROUP_MAX_PENDING)
            continue; /* not one tick's acks: no lease is open there */
        for (uint64_t s = a; s < b; s++)
            drop_failinfo(g, cls, s);
    }
}

static void apply_ack(eb_group *g, const eb_json *rec)
{
    eb_rec_ack r;
    eb__rec_ack_decode(rec, &r);
    drop_leases(g, CLS_MAIN, r.m);
    drop_leases(g, CLS_REPLAY, r.r);
    apply_ranges(g, r.m, true);
    apply_ranges(g, r.r, false);
    uint64_t seq;
    while (eb__rec_next_seq(&r.d, &seq))
        eb__dlq_remove(g, seq);
}

/* What the replay read of (cls, seq) so far: made if none. */
static failinfo *failinfo_of(eb_group *g, int cls, uint64_t seq)
{
    uint64_t k = eb__fail_key(cls, seq);
    failinfo *fi = eb_imap_get(&g->fails, k);
    if (!fi) {
        fi = eb_xcalloc(1, sizeof *fi);
        eb_imap_put(&g->fails, k, fi);
    }
    return fi;
}

static int apply_fail(eb_group *g, const eb_json *rec)
{
    eb_rec_iter it = eb__rec_fail_items(rec);
    eb_rec_fail f;
    int rc;
    while ((rc = eb__rec_next_fail(&it, &f)) == 1) {
        failinfo *fi = failinfo_of(g, f.cls, f.seq);
        fi->fails = f.fails;
        fi->due = f.due;
        if (f.fails >= fi->lease_att) /* that lease failed (expired, nacked) */
            fi->lease_att = 0, fi->lease_until = 0;
        eb__set_str(&fi->error, f.error.ptr, f.error.len);
        if (f.has_detail)
            eb__hist_push(&fi->fh, f.attempt, f.at, f.consumer, f.error, f.first);
    }
    return rc;
}

/* Leases given before the restart: each seq's delivery is admitted in
 * flight until the deadline (eb__dlv_schedule), so no other consumer gets
 * it meanwhile and its holder's ack (same id) is taken. */
static int apply_lease(eb_group *g, const eb_json *rec)
{
    eb_rec_iter it = eb__rec_lease_items(rec);
    eb_rec_lease l;
    int rc;
    while ((rc = eb__rec_next_lease(&it, &l)) == 1) {
        for (uint64_t s = l.first; s < l.first + l.n; s++) {
            failinfo *fi = failinfo_of(g, l.cls, s);
            fi->lease_att = l.attempt;
            fi->lease_until = l.deadline;
        }
    }
    return rc;
}

static void drop_failinfo(eb_group *g, int cls, uint64_t seq)
{
    failinfo *fi = eb_imap_del(&g->fails, eb__fail_key(cls, seq));
    if (fi)
        eb__failinfo_free(fi);
}

/* A dead letter read back: a fresh one carries its event's copy. */
static int dead_new(const eb_rec_dead *r, dead **out)
{
    eb_buf pl = EB_BUF_INIT;
    eb_event_view v;
    dead *d = NULL;
    int rc = eb__rec_dead_payload(r, &pl, &v);
    if (rc) {
        eb_buf_free(&pl);
        return rc;
    }
    d = eb_xcalloc(1, sizeof *d);
    memcpy(d->id, v.id.ptr, v.id.len);
    d->seq = r->seq;
    d->len = (uint32_t)pl.len;
    d->payload = eb_buf_steal(&pl, NULL);
    *out = d;
    return 0;
}

/* A DEAD record carries the dead letter's whole history (none if written
 * before histories: then the last failure alone is shown). */
static int apply_hist(dead *d, eb_rec_dead *r)
{
    eb__hist_free(d->fh);
    d->fh = NULL;
    uint32_t attempt;
    uint64_t at;
    eb_str who, err;
    int rc;
    while ((rc = eb__rec_next_hist(&r->hist, &attempt, &at, &who, &err)) == 1)
        eb__hist_push(&d->fh, attempt, at, who, err, r->first);
    return rc;
}

static int apply_dead(eb_group *g, const eb_json *rec)
{
    eb_rec_dead r;
    if (eb__rec_dead_decode(rec, &r) != 0)
        return EB_ECORRUPT;
    drop_failinfo(g, r.cls, r.seq);
    dead *d = eb_imap_get(&g->dlq, r.seq);
    bool fresh = !d;
    if (fresh) {
        int rc = dead_new(&r, &d);
        if (rc)
            return rc;
    } else if (d->redriven) {
        d->redriven = false;
        g->ndead++;
    }
    d->ts_us = r.ts_us;
    d->attempts = r.attempts;
    d->failed_at = r.failed_at;
    int hrc = apply_hist(d, &r);
    if (hrc) {
        if (fresh)
            eb__dead_free(d);
        return hrc;
    }
    eb__set_str(&d->error, r.error.ptr, r.error.len);
    eb__set_str(&d->consumer, r.consumer.ptr, r.consumer.len);
    if (fresh)
        eb__dlq_insert(g, d);
    if (r.cls == CLS_MAIN)
        eb_rangeset_add(&g->main.done, r.seq, r.seq + 1);
    else if (r.cls == CLS_REPLAY)
        eb__flow_replay_done(g, r.seq, r.seq + 1);
    return 0;
}

static void apply_seqs(eb_group *g, const eb_json *rec, bool redrive)
{
    eb_rec_iter it = eb__rec_seqs_decode(rec);
    uint64_t seq;
    while (eb__rec_next_seq(&it, &seq)) {
        dead *d = eb_imap_get(&g->dlq, seq);
        if (!d)
            continue;
        if (!redrive) {
            eb__dlq_remove(g, d->seq);
        } else if (!d->redriven) {
            d->redriven = true;
            g->ndead--;
            drop_failinfo(g, CLS_DLQ, d->seq);
        }
    }
}

static int apply_replay(eb_group *g, const eb_json *rec)
{
    eb_rec_replay r;
    if (eb__rec_replay_decode(rec, &r) != 0)
        return EB_ECORRUPT;
    eb__flow_replay_new(g, r.id, r.from, r.to, r.types, r.ntypes);
    return 0;
}

static void apply_done(eb_group *g, const eb_json *rec)
{
    eb_rec_done r;
    eb__rec_done_decode(rec, &r);
    flow *f = r.flow ? NULL : &g->main;
    for (flow *x = g->replays; !f && x; x = x->next)
        if (x->id == r.flow)
            f = x;
    uint64_t a, b;
    while (f && eb__rec_next_range(&r.r, &a, &b))
        eb_rangeset_add(&f->done, a, b);
}

int eb_group_apply(eb_group *g, uint16_t kind, const eb_json *rec)
{
    switch (kind) {
    case EB_META_ACK:     apply_ack(g, rec); return 0;
    case EB_META_FAIL:    return apply_fail(g, rec);
    case EB_META_LEASE:   return apply_lease(g, rec);
    case EB_META_DEAD:    return apply_dead(g, rec);
    case EB_META_REDRIVE: apply_seqs(g, rec, true); return 0;
    case EB_META_PURGE:   apply_seqs(g, rec, false); return 0;
    case EB_META_REPLAY:  return apply_replay(g, rec);
    case EB_META_DONE:    apply_done(g, rec); return 0;
    default:              return 0;
    }
}

void eb_group_loaded(eb_group *g)
{
    uint64_t now = g->env.now_us();
    /* The main cursor read back is the floor of the last group record; what
     * was finished above it in order (the acks read back) is passed. */
    g->main.cursor = eb_rangeset_skip(&g->main.done, g->main.cursor);
    eb_rangeset_trim_below(&g->main.done, g->main.cursor);
    for (flow *f = g->replays; f; f = f->next) /* scans the flow's range once */
        eb__flow_count_backlog(g, f);
    for (size_t i = 0; i < g->ndlq; i++) {
        dead *e = eb_imap_get(&g->dlq, g->dlq_seqs[i]);
        if (e && e->redriven) {
            e->redriven = false; /* eb__dlq_redrive_one counts it again */
            g->ndead++;
            eb__dlq_redrive_one(g, e, now);
        }
    }
}
