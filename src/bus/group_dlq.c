/* group_dlq.c - a group's dead-letter queue: dead-lettering a delivery
 * (keeping a copy of its event, so retention cannot take it), paging,
 * redrive (dead letters become class-d deliveries again) and purge. */
#include <stdlib.h>
#include <string.h>

#include "bus/group_int.h"
#include "eventbus/err.h"

static size_t dlq_pos(const eb_group *g, uint64_t seq)
{
    size_t lo = 0, hi = g->ndlq;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (g->dlq_seqs[mid] < seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

void eb__dlq_insert(eb_group *g, dead *e)
{
    if (g->ndlq == g->dlq_cap) {
        g->dlq_cap = g->dlq_cap ? g->dlq_cap * 2 : 16;
        g->dlq_seqs = eb_xrealloc(g->dlq_seqs, g->dlq_cap * sizeof *g->dlq_seqs);
    }
    eb_imap_put(&g->dlq, e->seq, e);
    if (e->id[0])
        eb_map_put(&g->dlq_ids, e->id, strlen(e->id), e, NULL);
    size_t i = dlq_pos(g, e->seq);
    memmove(&g->dlq_seqs[i + 1], &g->dlq_seqs[i], (g->ndlq - i) * sizeof *g->dlq_seqs);
    g->dlq_seqs[i] = e->seq;
    g->ndlq++;
    if (!e->redriven)
        g->ndead++;
}

void eb__dead_free(dead *e)
{
    eb__hist_free(e->fh);
    free(e->error);
    free(e->consumer);
    free(e->payload);
    free(e);
}

void eb__dlq_remove(eb_group *g, uint64_t seq)
{
    dead *e = eb_imap_del(&g->dlq, seq);
    if (!e)
        return;
    if (e->id[0])
        eb_map_del(&g->dlq_ids, e->id, strlen(e->id));
    size_t i = dlq_pos(g, seq);
    if (i < g->ndlq && g->dlq_seqs[i] == seq) {
        memmove(&g->dlq_seqs[i], &g->dlq_seqs[i + 1], (g->ndlq - i - 1) * sizeof *g->dlq_seqs);
        g->ndlq--;
    }
    if (!e->redriven)
        g->ndead--;
    eb__dead_free(e);
}

void eb__dead_view(const dead *e, eb_dead_letter *out, eb_failure *one)
{
    const char *err = e->error ? e->error : "", *who = e->consumer ? e->consumer : "";
    *one = (eb_failure){e->attempts, e->failed_at, who, err};
    *out = (eb_dead_letter){.seq = e->seq, .ts_us = e->ts_us, .event = e->payload,
                            .len = e->len, .error = err, .consumer = who,
                            .attempts = e->attempts, .failed_at_us = e->failed_at,
                            .first_failed_at_us = e->fh ? e->fh->first_us : e->failed_at,
                            .errors = e->fh && e->fh->n ? e->fh->v : one,
                            .nerrors = e->fh && e->fh->n ? e->fh->n : 1};
}

/* Moves d to the dead-letter queue. */
void eb__dead_letter(eb_group *g, eb_dlv *d, uint64_t now, eb_outbox *ob)
{
    dead *e = d->dl ? d->dl : eb_imap_get(&g->dlq, d->seq); /* a replay may die twice */
    bool fresh = !e;
    if (fresh) {
        eb_buf ev = EB_BUF_INIT; /* a dead letter keeps a copy of its event */
        if (eb__dlv_event(g, d, &ev) != 0) { /* retention took it: nothing to keep */
            eb_buf_free(&ev);
            eb__dlv_gone(g, d, now);
            return;
        }
        eb_event_view v;
        e = eb_xcalloc(1, sizeof *e);
        e->seq = d->seq;
        e->ts_us = d->ts_us;
        /* A stored event always decodes (checked at publish, CRC-checked on
         * read); were it not to, it is dead-lettered by seq, without an id. */
        if (eb_event_decode(ev.data, ev.len, &v) == 0)
            memcpy(e->id, v.id.ptr, v.id.len);
        size_t len;
        e->payload = eb_buf_steal(&ev, &len);
        e->len = (uint32_t)len;
    } else if (e->redriven) {
        e->redriven = false;
        g->ndead++;
    }
    if (!fresh && !e->fh && e->failed_at) /* read from a record from before histories */
        eb__hist_push(&e->fh, e->attempts, e->failed_at,
                      (eb_str){e->consumer, e->consumer ? strlen(e->consumer) : 0},
                      (eb_str){e->error, e->error ? strlen(e->error) : 0}, 0);
    e->attempts = d->fails;
    e->failed_at = now;
    eb__hist_merge(&e->fh, d->fh); /* a redriven one keeps its earlier failures */
    d->fh = NULL;
    eb__set_str(&e->error, d->last_error, d->last_error ? strlen(d->last_error) : 0);
    eb__set_str(&e->consumer, d->consumer ? d->consumer->name : NULL,
            d->consumer ? strlen(d->consumer->name) : 0);
    if (fresh)
        eb__dlq_insert(g, e);
    if (d->cls == CLS_MAIN)
        eb_rangeset_add(&g->main.done, d->seq, d->seq + 1);
    else if (d->cls == CLS_REPLAY)
        eb__flow_replay_done(g, d->seq, d->seq + 1);
    if (ob) /* NULL: written already (eb__dead_record) */
        eb__rec_dead(g, e, d->cls, fresh, ob);
    g->ctr.dead_lettered++;
    if (g->env.on_dead_letter) {
        eb_failure one;
        eb_dead_letter v;
        eb__dead_view(e, &v, &one);
        g->env.on_dead_letter(g->env.arg, g->name, &v);
    }
    eb__dlv_finish(g, d, now);
}

/* A copy of h's failures (NULL if none). */
static failhist *hist_copy(const failhist *h)
{
    failhist *c = NULL;
    for (uint32_t i = 0; h && i < h->n; i++) {
        const eb_failure *f = &h->v[i];
        eb__hist_push(&c, f->attempt, f->at_us, (eb_str){f->consumer, strlen(f->consumer)},
                      (eb_str){f->error, strlen(f->error)}, h->first_us);
    }
    return c;
}

void eb__dead_record(eb_group *g, const eb_dlv *d, uint64_t at, const char *err, eb_outbox *ob)
{
    dead *e = d->dl ? d->dl : eb_imap_get(&g->dlq, d->seq), t = {0};
    bool fresh = !e;
    eb_buf ev = EB_BUF_INIT;
    if (fresh) {
        if (eb__dlv_event(g, d, &ev) != 0) { /* retention took it: nothing to keep */
            eb_buf_free(&ev);
            return;
        }
        t.seq = d->seq;
        t.ts_us = d->ts_us;
        t.payload = ev.data;
        t.len = (uint32_t)ev.len;
    } else {
        t = *e; /* borrowed, but for the history below */
    }
    /* The history eb__dead_letter will make: the dead letter's (or its one
     * failure, read from a record from before histories), then the
     * delivery's with this failure. */
    failhist *h = fresh ? NULL : hist_copy(e->fh), *dh = hist_copy(d->fh);
    if (!fresh && !e->fh && e->failed_at)
        eb__hist_push(&h, e->attempts, e->failed_at,
                      (eb_str){e->consumer, e->consumer ? strlen(e->consumer) : 0},
                      (eb_str){e->error, e->error ? strlen(e->error) : 0}, 0);
    const char *who = d->consumer ? d->consumer->name : "";
    eb__hist_push(&dh, d->attempt, at, (eb_str){who, strlen(who)}, (eb_str){err, strlen(err)}, 0);
    eb__hist_merge(&h, dh);
    t.fh = h;
    t.attempts = d->fails + 1;
    t.failed_at = at;
    t.error = (char *)err;
    t.consumer = d->consumer ? d->consumer->name : NULL;
    eb__rec_dead(g, &t, d->cls, fresh, ob);
    eb__hist_free(h);
    eb_buf_free(&ev);
}

void eb_group_dlq_list(const eb_group *g, uint64_t after, size_t limit, eb_dead_letter_fn fn,
                       void *arg, uint64_t *next)
{
    *next = 0;
    size_t n = 0;
    for (size_t i = dlq_pos(g, after + 1); i < g->ndlq; i++) {
        const dead *e = eb_imap_get(&g->dlq, g->dlq_seqs[i]);
        if (!e || e->redriven)
            continue;
        if (n == limit) {
            *next = g->dlq_seqs[i - 1];
            break;
        }
        eb_failure one;
        eb_dead_letter dl;
        eb__dead_view(e, &dl, &one);
        fn(arg, &dl);
        n++;
    }
}

/* Collects the dead letters named by ids (all when n == 0). */
static size_t pick_dead(eb_group *g, const eb_str *ids, size_t n, dead ***out)
{
    size_t cap = n ? n : g->ndlq, k = 0;
    dead **v = eb_xmalloc(cap * sizeof *v);
    *out = v;
    if (n) {
        for (size_t i = 0; i < n; i++) {
            dead *e = eb_map_get(&g->dlq_ids, ids[i].ptr, ids[i].len);
            bool seen = false;
            for (size_t j = 0; e && j < k; j++)
                seen |= v[j] == e;
            if (e && !e->redriven && !seen)
                v[k++] = e;
        }
    } else {
        for (size_t i = 0; i < g->ndlq; i++) {
            dead *e = eb_imap_get(&g->dlq, g->dlq_seqs[i]);
            if (e && !e->redriven)
                v[k++] = e;
        }
    }
    return k;
}

void eb__dlq_redrive_one(eb_group *g, dead *e, uint64_t now)
{
    eb_dlv *d = eb_imap_get(&g->dlvs[CLS_DLQ], e->seq);
    if (d)
        return;
    d = eb__dlv_new(g, CLS_DLQ, e->seq, e->ts_us, NULL);
    d->dl = e;
    d->payload = e->payload;
    d->len = e->len;
    if (!e->redriven) {
        e->redriven = true;
        g->ndead--;
    }
    eb__dlv_schedule(g, d, now); /* fresh attempts, or those replayed at startup */
}

size_t eb_group_dlq_redrive(eb_group *g, const eb_str *ids, size_t n, eb_outbox *ob)
{
    dead **v;
    size_t k = pick_dead(g, ids, n, &v);
    uint64_t now = g->env.now_us();
    for (size_t i = 0; i < k; i++)
        eb__dlq_redrive_one(g, v[i], now);
    if (k)
        eb__rec_seqs(g, EB_META_REDRIVE, v, k, ob);
    free(v);
    g->ctr.redriven += k;
    return k;
}

size_t eb_group_dlq_purge(eb_group *g, const eb_str *ids, size_t n, eb_outbox *ob)
{
    dead **v;
    size_t k = pick_dead(g, ids, n, &v);
    if (k)
        eb__rec_seqs(g, EB_META_PURGE, v, k, ob);
    for (size_t i = 0; i < k; i++)
        eb__dlq_remove(g, v[i]->seq);
    free(v);
    g->ctr.purged += k;
    return k;
}
