/* group_dlv.c - deliveries and their states (READY FIFO, INFLIGHT and
 * RETRY in the timer heap, BLOCKED behind an earlier event of the same key
 * when ordering is by key), and the per-class live lists. The lowest layer
 * of the engine: it calls no other engine file. */
#include <stdlib.h>
#include <string.h>

#include "bus/group_int.h"
#include "eventbus/err.h"
#include "util/xmalloc.h"

/* --- small helpers -------------------------------------------------------- */

void eb__set_str(char **dst, const char *s, size_t n)
{
    free(*dst);
    *dst = s ? eb_xstrndup(s, n) : NULL;
}

/* --- delivery states --------------------------------------------------------- */

void eb__dlv_ready(eb_group *g, eb_dlv *d)
{
    d->state = EB_DLV_READY;
    d->next = NULL;
    if (g->rq_tail)
        g->rq_tail->next = d;
    else
        g->rq_head = d;
    g->rq_tail = d;
    g->ready++;
}

void eb__dlv_schedule(eb_group *g, eb_dlv *d, uint64_t now)
{
    if (d->inherited) { /* a lease read back: in flight to its holder until its
                           * deadline; one that passed while the node was down
                           * expires at the next tick, a failed attempt as ever */
        d->inherited = 0;
        d->state = EB_DLV_INFLIGHT;
        g->in_flight++;
        (*g->env.leases)++;
        eb_heap_push(&g->timers, &d->tm);
        return;
    }
    if (d->tm.key <= now) {
        eb__dlv_ready(g, d);
        return;
    }
    eb_heap_push(&g->timers, &d->tm);
    d->state = EB_DLV_RETRY;
    g->retry++;
}

static void live_add(eb_group *g, eb_dlv *d)
{
    d->lnext = NULL;
    d->lprev = g->ltail[d->cls];
    if (d->lprev)
        d->lprev->lnext = d;
    else
        g->lhead[d->cls] = d;
    g->ltail[d->cls] = d;
    g->live++;
    if (d->fl)
        d->fl->live++;
}

static void live_remove(eb_group *g, eb_dlv *d)
{
    if (d->lprev)
        d->lprev->lnext = d->lnext;
    else
        g->lhead[d->cls] = d->lnext;
    if (d->lnext)
        d->lnext->lprev = d->lprev;
    else
        g->ltail[d->cls] = d->lprev;
    g->live--;
    if (d->fl)
        d->fl->live--;
}

void eb__dlv_free(eb_dlv *d)
{
    free(d->last_error);
    eb__hist_free(d->fh);
    free(d);
}

/* --- failure histories ------------------------------------------------------ */

static void failure_clear(eb_failure *f)
{
    free((char *)f->consumer);
    free((char *)f->error);
}

void eb__hist_free(failhist *h)
{
    if (!h)
        return;
    for (uint32_t i = 0; i < h->n; i++)
        failure_clear(&h->v[i]);
    free(h);
}

void eb__failinfo_free(failinfo *fi)
{
    free(fi->error);
    eb__hist_free(fi->fh);
    free(fi);
}

void eb__hist_push(failhist **hp, uint32_t attempt, uint64_t at, eb_str who, eb_str err,
                   uint64_t first_us)
{
    failhist *h = *hp;
    if (!h) {
        h = eb_xcalloc(1, sizeof *h);
        h->first_us = first_us ? first_us : at;
        *hp = h;
    }
    char *w = eb_xstrndup(who.ptr ? who.ptr : "", who.len);
    char *e = eb_xstrndup(err.ptr ? err.ptr : "", err.len);
    if (h->n == EB_FAIL_HISTORY) {
        failure_clear(&h->v[0]);
        memmove(&h->v[0], &h->v[1], (EB_FAIL_HISTORY - 1) * sizeof h->v[0]);
        h->n--;
    }
    h->v[h->n++] = (eb_failure){attempt, at, w, e};
}

void eb__hist_merge(failhist **dst, failhist *src)
{
    if (!src)
        return;
    if (!*dst) {
        *dst = src;
        return;
    }
    for (uint32_t i = 0; i < src->n; i++) {
        const eb_failure *f = &src->v[i];
        eb__hist_push(dst, f->attempt, f->at_us, (eb_str){f->consumer, strlen(f->consumer)},
                      (eb_str){f->error, strlen(f->error)}, 0);
    }
    eb__hist_free(src);
}

/* Lets the next delivery of d's key go. */
static void key_release(eb_group *g, eb_dlv *d, uint64_t now)
{
    keyq *kq = d->kq;
    if (!kq || kq->active != d)
        return;
    eb_dlv *nx = kq->head;
    if (nx) {
        kq->head = nx->next;
        if (!kq->head)
            kq->tail = NULL;
        kq->active = nx;
        g->blocked--;
        eb__dlv_schedule(g, nx, now);
        return;
    }
    eb_map_del(&g->keys[d->cls == CLS_REPLAY], kq->key, kq->klen);
    free(kq);
}

void eb__dlv_finish(eb_group *g, eb_dlv *d, uint64_t now)
{
    eb_heap_remove(&g->timers, &d->tm);
    eb_imap_del(&g->dlvs[d->cls], d->seq);
    live_remove(g, d);
    key_release(g, d, now);
    eb__dlv_free(d);
}

/* --- the event of a delivery ------------------------------------------------- */

typedef struct read_one {
    uint64_t seq;
    eb_buf  *out;
    bool     found;
} read_one;

static int copy_rec(void *arg, const eb_store_rec *rec)
{
    read_one *r = arg;
    if (rec->seq == r->seq && rec->type == EB_REC_EVENT) {
        eb_buf_append(r->out, rec->data, rec->len);
        r->found = true;
    }
    return 1;
}

int eb__dlv_event(eb_group *g, const eb_dlv *d, eb_buf *out)
{
    if (d->cls == CLS_DLQ) {
        eb_buf_append(out, d->payload, d->len);
        return 0;
    }
    const char *p = eb_reccache_get(g->env.cache, d->cpos, d->len);
    if (p) {
        eb_buf_append(out, p, d->len);
        return 0;
    }
    read_one r = {d->seq, out, false};
    if (d->seq >= eb_store_first_seq(g->env.events))
        eb_store_scan(g->env.events, d->seq, 1, copy_rec, &r);
    return r.found ? 0 : EB_ENOTFOUND;
}

void eb__dlv_gone(eb_group *g, eb_dlv *d, uint64_t now)
{
    if (d->cls == CLS_MAIN)
        eb_rangeset_add(&g->main.done, d->seq, d->seq + 1);
    else if (d->cls == CLS_REPLAY)
        eb__flow_replay_done(g, d->seq, d->seq + 1);
    g->ctr.retention_skipped++;
    eb__dlv_finish(g, d, now);
}

eb_dlv *eb__dlv_new(eb_group *g, int cls, uint64_t seq, uint64_t ts, flow *fl)
{
    eb_dlv *d = eb_xcalloc(1, sizeof *d);
    d->seq = seq;
    d->ts_us = ts;
    d->cls = (uint8_t)cls;
    d->fl = fl;
    d->cpos = EB_RECCACHE_NONE;
    eb_heap_node_init(&d->tm);
    eb_imap_put(&g->dlvs[cls], seq, d);
    live_add(g, d);
    failinfo *fi = eb_imap_del(&g->fails, eb__fail_key(cls, seq));
    if (fi) {
        d->fails = d->attempt = fi->fails;
        d->tm.key = fi->due;
        if (fi->lease_att > fi->fails) { /* leased before the restart */
            d->attempt = fi->lease_att;
            d->tm.key = fi->lease_until;
            d->inherited = 1;
        }
        d->last_error = fi->error;
        d->fh = fi->fh;
        free(fi);
    }
    return d;
}

void eb__dlv_admit(eb_group *g, eb_dlv *d, eb_str key, uint64_t now)
{
    if (g->cfg.ordering == EB_ORDER_KEY && key.len && d->cls != CLS_DLQ) {
        eb_map *m = &g->keys[d->cls == CLS_REPLAY];
        keyq *kq = eb_map_get(m, key.ptr, key.len);
        if (!kq) {
            kq = eb_xcalloc(1, sizeof *kq + key.len + 1);
            memcpy(kq->key, key.ptr, key.len);
            kq->klen = key.len;
            eb_map_put(m, key.ptr, key.len, kq, NULL);
        }
        d->kq = kq;
        if (kq->active) {
            d->state = EB_DLV_BLOCKED;
            d->next = NULL;
            if (kq->tail)
                kq->tail->next = d;
            else
                kq->head = d;
            kq->tail = d;
            g->blocked++;
            return;
        }
        kq->active = d;
    }
    eb__dlv_schedule(g, d, now);
}
