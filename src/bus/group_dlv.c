/* group_dlv.c - deliveries and their states (READY FIFO, INFLIGHT and
 * RETRY in the timer heap, BLOCKED behind an earlier event of the same key
 * when ordering is by key), and the per-class live lists. The lowest layer
 * of the engine: it calls no other engine file. */
#include <stdlib.h>
#include <string.h>

#include "bus/group_int.h"
#include "eventbus/err.h"

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
    if (d->cls != CLS_DLQ)
        free(d->payload);
    free(d->last_error);
    free(d);
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

eb_dlv *eb__dlv_new(eb_group *g, int cls, uint64_t seq, uint64_t ts, flow *fl)
{
    eb_dlv *d = eb_xcalloc(1, sizeof *d);
    d->seq = seq;
    d->ts_us = ts;
    d->cls = (uint8_t)cls;
    d->fl = fl;
    eb_heap_node_init(&d->tm);
    eb_imap_put(&g->dlvs[cls], seq, d);
    live_add(g, d);
    failinfo *fi = eb_imap_del(&g->fails, eb__fail_key(cls, seq));
    if (fi) {
        d->fails = d->attempt = fi->fails;
        d->tm.key = fi->due;
        d->last_error = fi->error;
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
