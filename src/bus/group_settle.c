/* group_settle.c - settling deliveries by id (ack, nack, extend) and failed
 * attempts (nacks, missed deadlines).
 *
 * A settle is applied only once its records are durable. The request
 * writes the records (into the group's gathers, or the outbox for a dead
 * letter) and leaves the delivery in flight to its holder, marked pending
 * (g->pend) and off the timer heap: it neither expires nor can be settled
 * again ("unknown") meanwhile. The bus (groups.c) then calls
 * eb_group_settled: durable, the settle is applied as it was written;
 * failed (the append was refused: the database or the disk is away), the
 * delivery is back in flight as it was, its deadline unchanged, so the
 * holder's retry writes the records again and is answered once they are
 * durable. A 2xx to an ack is a committed ack, and a 503 (or 507) changed
 * nothing. A snapshot taken meanwhile restates the delivery as in flight
 * and then writes its pending records after it (eb_group_snapshot). */
#include <stdlib.h>
#include <string.h>

#include "bus/group_int.h"
#include "eventbus/err.h"

enum { P_ACK, P_NACK, P_EXTEND };

/* A settle whose records are not durable yet. */
typedef struct pend {
    uint8_t  op;      /* P_ACK, P_NACK, P_EXTEND */
    bool     final;   /* nack: dead-lettered */
    uint32_t attempt; /* the delivery's, when asked */
    uint64_t at;      /* when asked (µs) */
    uint64_t until;   /* extend: the new deadline; nack: when due again */
    char    *error;   /* nack: the failure */
} pend;

static double rnd(eb_group *g)
{
    uint64_t x = g->rng; /* xorshift64 */
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    g->rng = x;
    return (double)(x >> 11) / (double)(1ull << 53);
}

uint64_t eb__backoff_us(eb_group *g, uint32_t fails)
{
    double d = g->cfg.backoff_initial_ms;
    for (uint32_t i = 1; i < fails && d < g->cfg.backoff_max_ms; i++)
        d *= g->cfg.backoff_multiplier;
    if (d > g->cfg.backoff_max_ms)
        d = g->cfg.backoff_max_ms;
    d *= 1.0 + g->cfg.backoff_jitter * (2.0 * rnd(g) - 1.0);
    return d > 0 ? (uint64_t)(d * 1000.0) : 0;
}

/* --- finding the delivery ------------------------------------------------------ */

/* True if (cls, seq) has a lease read back at startup as attempt att whose
 * delivery the flows have not made yet (made, it leaves the map). */
static bool lease_unexamined(eb_group *g, int cls, uint64_t seq, uint64_t att)
{
    const failinfo *fi = g->fails.len ? eb_imap_get(&g->fails, eb__fail_key(cls, seq)) : NULL;
    return fi && fi->lease_att == att;
}

/* Parses "<cls><seq>.<attempt>" and finds the in-flight delivery (not one
 * whose settle is pending). */
static eb_dlv *find_inflight(eb_group *g, const char *id, size_t n)
{
    if (n < 4 || n > 40)
        return NULL;
    int cls = id[0] == 'm' ? CLS_MAIN : id[0] == 'r' ? CLS_REPLAY : id[0] == 'd' ? CLS_DLQ : -1;
    if (cls < 0)
        return NULL;
    uint64_t seq = 0, att = 0;
    size_t i = 1;
    while (i < n && id[i] >= '0' && id[i] <= '9' && seq < UINT64_MAX / 10)
        seq = seq * 10 + (uint64_t)(id[i++] - '0');
    if (i == 1 || i >= n || id[i++] != '.' || i == n)
        return NULL;
    while (i < n && id[i] >= '0' && id[i] <= '9' && att < UINT32_MAX)
        att = att * 10 + (uint64_t)(id[i++] - '0');
    if (i != n || seq == 0 || seq >> 62)
        return NULL;
    eb_dlv *d = eb_imap_get(&g->dlvs[cls], seq);
    if (!d && cls != CLS_DLQ && lease_unexamined(g, cls, seq, att))
        d = eb__flow_examine_to(g, cls, seq); /* its holder's ack, nack or extension */
    if (!d || d->state != EB_DLV_INFLIGHT || d->attempt != att)
        return NULL;
    if (g->pend.len && eb_imap_get(&g->pend, eb__fail_key(cls, seq)))
        return NULL; /* settled already, not durable yet */
    return d;
}

/* --- applying ---------------------------------------------------------------------- */

static void lease_end(eb_group *g, eb_dlv *d)
{
    eb_heap_remove(&g->timers, &d->tm);
    if (d->consumer && d->consumer->in_flight)
        d->consumer->in_flight--;
    g->in_flight--;
    (*g->env.leases)--;
}

void eb__dlv_fail(eb_group *g, eb_dlv *d, const char *err, uint64_t due, bool final, uint64_t at,
                  eb_outbox *ob)
{
    lease_end(g, d);
    d->fails++;
    eb__set_str(&d->last_error, err, strlen(err));
    const char *who = d->consumer ? d->consumer->name : "";
    eb__hist_push(&d->fh, d->attempt, at, (eb_str){who, strlen(who)}, (eb_str){err, strlen(err)},
                  0);
    if (final) {
        eb__dead_letter(g, d, at, ob);
        return;
    }
    d->tm.key = due;
    if (ob)
        eb__rec_fail_gather(g, d->cls, d->seq, d->fails, d->tm.key, err,
                            d->fh ? &d->fh->v[d->fh->n - 1] : NULL, d->fh ? d->fh->first_us : 0);
    eb__dlv_schedule(g, d, g->env.now_us());
}

static void ack_apply(eb_group *g, eb_dlv *d)
{
    uint64_t now = g->env.now_us();
    lease_end(g, d);
    if (d->cls == CLS_MAIN)
        eb_rangeset_add(&g->main.done, d->seq, d->seq + 1);
    else if (d->cls == CLS_REPLAY)
        eb__flow_replay_done(g, d->seq, d->seq + 1);
    if (g->env.on_latency && now > d->ts_us)
        g->env.on_latency(g->env.arg, now - d->ts_us);
    g->ctr.acked++;
    uint64_t seq = d->seq;
    int cls = d->cls;
    eb__dlv_finish(g, d, now);
    if (cls == CLS_DLQ)
        eb__dlq_remove(g, seq);
}

static void pend_apply(eb_group *g, eb_dlv *d, const pend *p)
{
    switch (p->op) {
    case P_ACK:
        ack_apply(g, d);
        break;
    case P_EXTEND:
        d->tm.key = p->until;
        eb_heap_push(&g->timers, &d->tm);
        break;
    default:
        g->ctr.nacked++;
        eb__dlv_fail(g, d, p->error, p->until, p->final, p->at, NULL);
        break;
    }
}

/* --- records ------------------------------------------------------------------------ */

/* Writes what settle p will do to d: an ACK range, a LEASE run, a FAIL
 * entry (gathered for the next flush) or a DEAD record (into ob). */
static void pend_records(eb_group *g, const eb_dlv *d, const pend *p, eb_outbox *ob)
{
    if (p->op == P_ACK) {
        if (d->cls == CLS_MAIN)
            eb_rangeset_add(&g->ack_m, d->seq, d->seq + 1);
        else if (d->cls == CLS_REPLAY)
            eb_rangeset_add(&g->ack_r, d->seq, d->seq + 1);
        else
            eb_buf_printf(&g->ack_d, "%s%llu", g->ack_d.len ? "," : "",
                          (unsigned long long)d->seq);
    } else if (p->op == P_EXTEND) {
        eb__rec_lease_gather(g, d->cls, d->seq, d->attempt, p->until);
    } else if (p->final) {
        eb__dead_record(g, d, p->at, p->error, ob);
    } else {
        const char *who = d->consumer ? d->consumer->name : "";
        eb_failure f = {d->attempt, p->at, who, p->error};
        eb__rec_fail_gather(g, d->cls, d->seq, d->fails + 1, p->until, p->error, &f,
                            d->fh ? d->fh->first_us : p->at);
    }
}

/* The records of every pending settle: the gathered ones (deaths false),
 * or the DEAD records into ob. */
static void pending_records(eb_group *g, eb_outbox *ob, bool deaths)
{
    size_t it = 0;
    const eb_imap_slot *s;
    while ((s = eb_imap_next(&g->pend, &it))) {
        const pend *p = s->val;
        eb_dlv *d = eb_imap_get(&g->dlvs[s->key >> 62], s->key & ~(3ull << 62));
        if (d && (p->op == P_NACK && p->final) == deaths)
            pend_records(g, d, p, ob);
    }
}

int eb_group_snapshot(eb_group *g, eb_outbox *ob)
{
    /* The state as memory holds it (a pending settle's delivery in flight),
     * then what the pending settles write after it: replayed in this
     * order, they end as the settles will once durable. Were their batch
     * to fail, so would this later one. */
    eb__rec_group_state(g, ob);
    pending_records(g, ob, false);
    int rc = eb_group_flush(g, ob);
    pending_records(g, ob, true); /* after the leases they end */
    return rc ? rc : eb_buf_failed(&ob->text) ? EB_ENOMEM : 0;
}

/* --- the commands ------------------------------------------------------------------- */

/* Marks d's settle pending and writes its records; *key names it for
 * eb_group_settled. */
static void pend_start(eb_group *g, eb_dlv *d, pend *p, eb_outbox *ob, uint64_t *key)
{
    *key = eb__fail_key(d->cls, d->seq);
    p->attempt = d->attempt;
    eb_heap_remove(&g->timers, &d->tm); /* neither expires nor settles again meanwhile */
    eb_imap_put(&g->pend, *key, p);
    pend_records(g, d, p, ob);
}

/* The in-flight delivery id names, and a settle of it to fill (NULL if
 * none: "unknown"). */
static pend *pend_of(eb_group *g, const char *id, size_t n, int op, eb_dlv **d)
{
    *d = find_inflight(g, id, n);
    if (!*d)
        return NULL;
    pend *p = eb_xcalloc(1, sizeof *p);
    p->op = (uint8_t)op;
    p->at = g->env.now_us();
    return p;
}

eb_dlv_outcome eb_group_ack(eb_group *g, const char *id, size_t n, uint64_t *key)
{
    eb_dlv *d;
    pend *p = pend_of(g, id, n, P_ACK, &d);
    if (p)
        pend_start(g, d, p, NULL, key);
    return p ? EB_DLV_OK : EB_DLV_UNKNOWN;
}

eb_dlv_outcome eb_group_nack(eb_group *g, const char *id, size_t n, const char *err,
                             int64_t delay_ms, bool dead_letter, eb_outbox *ob, uint64_t *key)
{
    eb_dlv *d;
    pend *p = pend_of(g, id, n, P_NACK, &d);
    if (!p)
        return EB_DLV_UNKNOWN;
    p->final = dead_letter || d->fails + 1 >= g->cfg.max_attempts;
    p->until = p->at + (delay_ms >= 0 ? (uint64_t)delay_ms * 1000u
                                      : eb__backoff_us(g, d->fails + 1));
    p->error = eb_xstrdup(err && *err ? err : "nacked");
    pend_start(g, d, p, ob, key);
    return EB_DLV_OK;
}

eb_dlv_outcome eb_group_extend(eb_group *g, const char *id, size_t n, uint32_t ms, uint64_t *key)
{
    eb_dlv *d;
    pend *p = pend_of(g, id, n, P_EXTEND, &d);
    if (!p)
        return EB_DLV_UNKNOWN;
    p->until = p->at + (uint64_t)(ms ? ms : g->cfg.ack_timeout_ms) * 1000u;
    pend_start(g, d, p, NULL, key);
    return EB_DLV_OK;
}

void eb_group_settled(eb_group *g, const uint64_t *keys, size_t n, bool durable)
{
    for (size_t i = 0; i < n; i++) {
        pend *p = eb_imap_del(&g->pend, keys[i]);
        if (!p)
            continue;
        eb_dlv *d = eb_imap_get(&g->dlvs[keys[i] >> 62], keys[i] & ~(3ull << 62));
        if (d && d->state == EB_DLV_INFLIGHT && d->attempt == p->attempt) {
            if (durable) {
                pend_apply(g, d, p);
            } else { /* in flight as it was; its lease record may have gone
                      * with the failed batch: written again */
                eb_heap_push(&g->timers, &d->tm);
                eb__rec_lease_gather(g, d->cls, d->seq, d->attempt, d->tm.key);
            }
        }
        free(p->error);
        free(p);
    }
}

void eb__settle_free(eb_group *g)
{
    size_t it = 0;
    const eb_imap_slot *s;
    while ((s = eb_imap_next(&g->pend, &it))) {
        pend *p = s->val;
        free(p->error);
        free(p);
    }
    eb_imap_free(&g->pend);
}
