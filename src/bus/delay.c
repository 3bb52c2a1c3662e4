/* delay.c - delayed delivery: events published with deliver_at or delay.
 *
 * Such an event is stored at once, like any other, but as a record of type
 * EB_REC_DELAYED (format 3: its due time in the header), which groups,
 * their lag and the startup lag walk skip. The bus keeps every pending one
 * in a min-heap on (due, seq) -- 24 bytes each, no copy of the event -- and
 * one libuv timer for the earliest: nothing runs while they wait. When
 * entries fall due the bus reads each record back and appends a copy of it
 * (type EB_REC_EVENT, the header's origin = the seq published) as one
 * batch: groups see the copy where it was appended, in due order, and
 * count, filter, order by key, replay and retain it like any event.
 *
 * Persistence, through the meta store (codec.c owns the format, meta.h the
 * kind EB_META_DELAY): each delayed publish appends a record listing its
 * (seq, due, type) in the same loop turn as the events append, with "u",
 * the events seq below which every delayed record is listed by a meta
 * record appended so far; each release appends, once its copies are
 * durable, a record with "w", the (due, seq) released up to (releases go
 * in heap order, so that is a watermark). A snapshot restates the heap, w
 * and u. At start the meta replay rebuilds the heap; then the events
 * written from u on (normally nothing; after a crash, what was appended
 * since the last such record) are scanned for delayed records and due
 * copies, which repairs a meta record lost to the crash in either
 * direction. A listed seq whose record is not (or no longer) a delayed
 * record with that due time is dropped when it falls due (the append
 * failed and the seq was reused, or retention removed it: counted as
 * expired). See ARCHITECTURE.md, "Delayed delivery". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus/bus_int.h"
#include "eventbus/err.h"
#include "util/duration.h"
#include "util/xmalloc.h"

#define RELEASE_MAX 1000           /* copies one release appends */
#define RELEASES_IN_FLIGHT 16      /* appends not yet durable at once */
#define RETRY_MS 100u              /* after a failed release */
#define MAX_SLEEP_MS 1000u         /* the timer looks at least this often */
#define SNAP_CHUNK 8192            /* entries per snapshot record */

/* A release: copies appended as one batch, not durable yet. */
struct release_op {
    release_op  *next;      /* the next one appended */
    uint64_t     first_seq; /* of its copies */
    size_t       n;
    eb_delay_ent e[];       /* in release order */
};

/* --- the heap ------------------------------------------------------------ */

static bool before(const eb_delay_ent *a, const eb_delay_ent *b)
{
    return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

static void sift_down(eb_bus_delay *d, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        if (l < d->n && before(&d->h[l], &d->h[m]))
            m = l;
        if (l + 1 < d->n && before(&d->h[l + 1], &d->h[m]))
            m = l + 1;
        if (m == i)
            return;
        eb_delay_ent t = d->h[i];
        d->h[i] = d->h[m];
        d->h[m] = t;
        i = m;
    }
}

static void push(eb_bus_delay *d, eb_delay_ent e)
{
    if (d->n == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 1024;
        d->h = eb_xrealloc(d->h, d->cap * sizeof *d->h);
    }
    size_t i = d->n++;
    while (i > 0 && before(&e, &d->h[(i - 1) / 2])) {
        d->h[i] = d->h[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    d->h[i] = e;
}

static eb_delay_ent pop(eb_bus_delay *d)
{
    eb_delay_ent top = d->h[0];
    d->h[0] = d->h[--d->n];
    if (d->n)
        sift_down(d, 0);
    return top;
}

/* --- types --------------------------------------------------------------- */

static uint32_t intern(eb_bus_delay *d, const char *t, size_t n)
{
    void *v = eb_map_get(&d->tid_of, t, n);
    if (v)
        return (uint32_t)((uintptr_t)v - 1);
    if (d->nt == d->tcap) {
        d->tcap = d->tcap ? d->tcap * 2 : 16;
        d->tname = eb_xrealloc(d->tname, d->tcap * sizeof *d->tname);
        d->tcount = eb_xrealloc(d->tcount, d->tcap * sizeof *d->tcount);
    }
    d->tname[d->nt] = eb_xstrndup(t, n);
    d->tcount[d->nt] = 0;
    eb_map_put(&d->tid_of, t, n, (void *)(uintptr_t)(d->nt + 1), NULL);
    return (uint32_t)d->nt++;
}

static void add(eb_bus_delay *d, uint64_t due, uint64_t seq, uint32_t tid)
{
    if (d->loading) { /* the start: appended, one heapify at the end (tidy) */
        if (d->n == d->cap) {
            d->cap = d->cap ? d->cap * 2 : 1024;
            d->h = eb_xrealloc(d->h, d->cap * sizeof *d->h);
        }
        d->h[d->n++] = (eb_delay_ent){due, seq, tid};
    } else {
        push(d, (eb_delay_ent){due, seq, tid});
    }
    d->tcount[tid]++;
    d->dirty = true;
}

static void gone(eb_bus_delay *d, const eb_delay_ent *e)
{
    if (d->tcount[e->tid])
        d->tcount[e->tid]--;
    d->dirty = true;
}

static bool released(const eb_bus_delay *d, uint64_t due, uint64_t seq)
{
    return due < d->w_due || (due == d->w_due && seq <= d->w_seq);
}

static void note_released(eb_bus_delay *d, uint64_t due, uint64_t seq)
{
    if (!released(d, due, seq))
        d->w_due = due, d->w_seq = seq;
}

/* The events seq below which every delayed record is listed in a meta
 * record appended so far (a release in flight is not yet recorded). */
static uint64_t cover(eb_bus *bus)
{
    uint64_t next = eb_store_next_seq(bus->events);
    const release_op *ro = bus->delay.rq_head;
    return ro && ro->first_seq < next ? ro->first_seq : next;
}

static void noop_done(void *arg, int status)
{
    (void)arg;
    (void)status; /* a lost record is repaired by the next start's scan from u */
}

/* Appends an EB_META_DELAY record (not waited for: see the top). */
static void write_rec(eb_bus *bus, uint64_t u, bool has_w, const eb_str *types, size_t nt,
                      const eb_delay_ent *e, size_t n)
{
    eb_bus_delay *d = &bus->delay;
    eb_buf_reset(&d->rec);
    eb_jw w;
    eb_jw_init(&w, &d->rec);
    eb__rec_delay(&w, u, has_w, d->w_due, d->w_seq, types, nt, e, n);
    (void)eb_meta_append(bus->meta, EB_META_DELAY, d->rec.data, d->rec.len, noop_done, NULL);
}

/* --- the timer ----------------------------------------------------------- */

static void on_timer(uv_timer_t *t);

static void arm(eb_bus *bus)
{
    eb_bus_delay *d = &bus->delay;
    if (!d->timer.data || bus->closing)
        return;
    if (d->n == 0 || d->rq_ops >= RELEASES_IN_FLIGHT) {
        uv_timer_stop(&d->timer);
        d->timer_due = 0;
        return;
    }
    uint64_t due = d->h[0].due, now = eb__bus_now_us();
    if (due < d->retry_us)
        due = d->retry_us; /* a release failed: not before the retry */
    if (d->timer_due == due)
        return;
    d->timer_due = due;
    uint64_t ms = due > now ? (due - now + 999) / 1000 : 0; /* never before it */
    /* Due times are wall-clock, libuv's timers monotonic: look again at
     * least once a second, so a step of the clock delays nothing long. */
    uv_timer_start(&d->timer, on_timer, ms < MAX_SLEEP_MS ? ms : MAX_SLEEP_MS, 0);
}

/* --- releasing ----------------------------------------------------------- */

/* One record a release wants, and where its copy goes. */
typedef struct want {
    uint64_t seq, due;
    size_t   pos;      /* in the release (due order) */
} want;

/* A run of consecutive seqs read with one scan (one read of the store). */
typedef struct run_read {
    const want *w;
    size_t      n;
    eb_buf     *raw;   /* the records, back to back */
    size_t     *off, *len; /* by pos; len 0: not found */
} run_read;

static int read_run(void *arg, const eb_store_rec *rec)
{
    run_read *r = arg;
    if (rec->seq < r->w[0].seq)
        return 0; /* retention: the scan started at the oldest kept */
    uint64_t i = rec->seq - r->w[0].seq;
    if (i >= r->n)
        return 1;
    const want *w = &r->w[i];
    eb_event_view v;
    if (rec->type == EB_REC_DELAYED && eb_event_decode(rec->data, rec->len, &v) == 0 &&
        v.deliver_us == w->due && v.origin_seq == 0) {
        r->off[w->pos] = r->raw->len;
        r->len[w->pos] = rec->len;
        eb_buf_append(r->raw, rec->data, rec->len);
    }
    return i + 1 == r->n;
}

static int want_cmp(const void *a, const void *b)
{
    const want *x = a, *y = b;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void count_copies(eb_bus *bus, const release_op *ro)
{
    eb_bus_delay *d = &bus->delay;
    for (size_t i = 0; i < ro->n; i++) {
        eb_event_view v;
        if (eb_event_decode(d->copies.data + d->offs[i], d->recs[i].len, &v) == 0)
            eb__bus_groups_released(bus, &v, ro->first_seq + i);
    }
}

static void release(eb_bus *bus);

/* A release's copies are durable (or failed: back into the heap). */
static void settle(eb_bus *bus, pending_op *op, bool go_on);

static void release_done(eb_bus *bus, pending_op *op)
{
    settle(bus, op, true);
}

/* The same, for a release written on the loop thread: release() goes on. */
static void release_done_quiet(eb_bus *bus, pending_op *op)
{
    settle(bus, op, false);
}

static void settle(eb_bus *bus, pending_op *op, bool go_on)
{
    eb_bus_delay *d = &bus->delay;
    release_op *ro = op->extra;
    if (d->rq_head == ro) { /* completions come in append order */
        d->rq_head = ro->next;
        if (!d->rq_head)
            d->rq_tail = NULL;
        d->rq_ops--;
        d->rq_events -= ro->n;
    }
    if (op->status) { /* nothing written: back into the heap, tried again */
        for (size_t i = 0; i < ro->n; i++)
            push(d, ro->e[i]);
        free(ro);
        d->retry_us = eb__bus_now_us() + RETRY_MS * 1000u;
        d->timer_due = 0;
        arm(bus);
        return;
    }
    for (size_t i = 0; i < ro->n; i++)
        gone(d, &ro->e[i]);
    d->released += ro->n;
    const eb_delay_ent *last = &ro->e[ro->n - 1];
    note_released(d, last->due, last->seq);
    free(ro);
    if (bus->meta && !bus->closing)
        write_rec(bus, cover(bus), true, NULL, 0, NULL, 0);
    d->timer_due = 0;
    if (!go_on)
        return;
    if (d->n && d->h[0].due <= eb__bus_now_us())
        release(bus); /* more fell due meanwhile */
    else
        arm(bus);
}

/* Pops the due entries (up to RELEASE_MAX) in due order and reads their
 * records -- in seq order, a run of consecutive seqs with one scan -- then
 * writes their copies into d->copies in due order. Entries whose record is
 * gone are dropped (and counted when retention removed it). */
static size_t gather(eb_bus *bus, uint64_t now, release_op **out)
{
    eb_bus_delay *d = &bus->delay;
    release_op *ro = eb_xmalloc(sizeof *ro + RELEASE_MAX * sizeof ro->e[0]);
    size_t k = 0;
    while (d->n && d->h[0].due <= now && k < RELEASE_MAX) {
        eb_delay_ent e = pop(d);
        if (released(d, e.due, e.seq) ||
            (k && ro->e[k - 1].due == e.due && ro->e[k - 1].seq == e.seq))
            continue; /* listed twice (a record and the start's scan) */
        d->wants[k] = (want){e.seq, e.due, k};
        ro->e[k++] = e;
    }
    qsort(d->wants, k, sizeof *d->wants, want_cmp);
    eb_buf_reset(&d->raw);
    memset(d->rlen, 0, k * sizeof *d->rlen);
    for (size_t i = 0; i < k;) {
        size_t j = i + 1;
        while (j < k && d->wants[j].seq == d->wants[j - 1].seq + 1)
            j++;
        run_read r = {d->wants + i, j - i, &d->raw, d->roff, d->rlen};
        int rc = eb_store_scan(bus->events, d->wants[i].seq, j - i, read_run, &r);
        if (rc && rc != EB_ENOTFOUND) { /* a read error: all back, tried later */
            for (size_t m = 0; m < k; m++)
                push(d, ro->e[m]);
            ro->n = 0;
            *out = ro;
            d->retry_us = now + RETRY_MS * 1000u;
            return 0;
        }
        i = j;
    }
    eb_buf_reset(&d->copies);
    uint64_t first = eb_store_first_seq(bus->events);
    size_t n = 0;
    for (size_t m = 0; m < k; m++) {
        eb_delay_ent e = ro->e[m];
        if (!d->rlen[m]) {
            if (e.seq < first)
                d->expired++; /* retention removed it before its time */
            gone(d, &e);
            continue;
        }
        d->offs[n] = d->copies.len;
        eb_event_due_copy(d->raw.data + d->roff[m], d->rlen[m], e.seq, &d->copies);
        ro->e[n++] = e;
    }
    ro->n = n;
    *out = ro;
    return n;
}

/* Appends one release of what is due; 0 if there was none (or no room). */
static int release_one(eb_bus *bus)
{
    eb_bus_delay *d = &bus->delay;
    if (d->rq_ops >= RELEASES_IN_FLIGHT || bus->closing || !bus->events ||
        eb__bus_now_us() < d->retry_us)
        return 0;
    release_op *ro;
    size_t n = gather(bus, eb__bus_now_us(), &ro);
    if (n == 0) {
        free(ro);
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        size_t end = i + 1 < n ? d->offs[i + 1] : d->copies.len;
        d->recs[i] = (eb_store_rec_in){EB_REC_EVENT, 0, d->copies.data + d->offs[i],
                                       (uint32_t)(end - d->offs[i])};
    }
    pending_op *op = eb_xcalloc(1, sizeof *op);
    *op = (pending_op){.bus = bus, .complete = release_done, .extra = ro};
    uint64_t seq = 0, ts = 0;
    int rc = eb_store_append(bus->events, d->recs, n, true, &seq, &ts, eb__bus_on_durable, op);
    if (rc < 0) {
        op->status = rc;
        release_done_quiet(bus, op); /* not queued: pushed back, retried later */
        free(op);
        return 0;
    }
    ro->first_seq = seq;
    ro->next = NULL;
    if (d->rq_tail)
        d->rq_tail->next = ro;
    else
        d->rq_head = ro;
    d->rq_tail = ro;
    d->rq_ops++;
    d->rq_events += n;
    count_copies(bus, ro);
    if (rc == 1) { /* written on this thread (--fsync interval|never) */
        eb__bus_pulls_wake(bus);
        op->status = 0;
        op->complete = release_done_quiet;
        eb__bus_complete(bus, op);
    }
    return 1;
}

/* Appends releases while entries are due (several may be in flight: the
 * next is not held up by the previous one's sync), then re-arms. */
static void release(eb_bus *bus)
{
    while (release_one(bus)) {
    }
    bus->delay.timer_due = 0;
    arm(bus);
}

static void on_timer(uv_timer_t *t)
{
    eb_bus *bus = t->data;
    bus->delay.timer_due = 0;
    release(bus);
}

/* --- publishing ---------------------------------------------------------- */

int eb__bus_delay_due(eb_bus *bus, eb_event_in *ev, uint64_t now, size_t *batch,
                      eb_field_error *err)
{
    ev->deliver_us = 0;
    if (!ev->deliver_at.ptr && !ev->delay.ptr)
        return 0;
    const char *field = ev->deliver_at.ptr ? "/deliver_at" : "/delay";
    snprintf(err->field, sizeof err->field, "%s", field);
    if (ev->deliver_at.ptr && ev->delay.ptr) {
        snprintf(err->message, sizeof err->message, "give deliver_at or delay, not both");
        return EB_EINVAL;
    }
    uint64_t due = 0, us = 0;
    if (ev->deliver_at.ptr) {
        if (eb_time_parse(ev->deliver_at.ptr, ev->deliver_at.len, &due) != 0) {
            snprintf(err->message, sizeof err->message,
                     "must be an RFC 3339 time, like 2026-11-23T06:25:37Z");
            return EB_EINVAL;
        }
    } else {
        if (eb_duration_parse(ev->delay.ptr, ev->delay.len, 0, &us) != 0) {
            snprintf(err->message, sizeof err->message,
                     "must be a duration with a unit, like \"90s\", \"15m\" or \"2h\"");
            return EB_EINVAL;
        }
        due = now + us;
        if (due < now)
            due = UINT64_MAX;
    }
    uint64_t max_ms = bus->opts.max_delay_ms;
    if (due > now && due - now > max_ms * 1000u) {
        snprintf(err->message, sizeof err->message,
                 "more than the server's --max-delay (%llu s) ahead",
                 (unsigned long long)(max_ms / 1000u));
        return EB_EINVAL;
    }
    if (due <= now)
        return 0; /* now or in the past: delivered now, as any event */
    if (bus->delay.n + bus->delay.rq_events + *batch >= bus->opts.max_delayed) {
        snprintf(err->message, sizeof err->message,
                 "the server holds --max-delayed (%llu) delayed events already",
                 (unsigned long long)bus->opts.max_delayed);
        return EB_ERANGE;
    }
    (*batch)++;
    /* Releases go in due order: never before what was released already. */
    ev->deliver_us = due > bus->delay.w_due ? due : bus->delay.w_due + 1;
    return 0;
}

void eb__bus_delay_published(eb_bus *bus, const eb_event_in *evs, const eb_pub_result *res,
                             size_t n)
{
    eb_bus_delay *d = &bus->delay;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += !res[i].duplicate && evs[i].deliver_us;
    if (k == 0)
        return;
    eb_delay_ent *e = k <= 64 ? d->scratch : eb_xmalloc(k * sizeof *e);
    eb_str *types = eb_xmalloc(k * sizeof *types);
    size_t nt = 0, j = 0;
    for (size_t i = 0; i < n; i++) {
        const eb_event_in *ev = &evs[i];
        if (res[i].duplicate || !ev->deliver_us)
            continue;
        size_t t = 0; /* the record's own small type list */
        while (t < nt && !(types[t].len == ev->type.len &&
                           !memcmp(types[t].ptr, ev->type.ptr, ev->type.len)))
            t++;
        if (t == nt)
            types[nt++] = ev->type;
        e[j++] = (eb_delay_ent){ev->deliver_us, res[i].seq, (uint32_t)t};
        add(d, ev->deliver_us, res[i].seq, intern(d, ev->type.ptr, ev->type.len));
    }
    write_rec(bus, cover(bus), false, types, nt, e, k);
    if (e != d->scratch)
        free(e);
    free(types);
    arm(bus);
}

void eb__bus_delay_unpublished(eb_bus *bus, uint64_t lo, uint64_t hi)
{
    eb_bus_delay *d = &bus->delay;
    size_t k = 0;
    for (size_t i = 0; i < d->n; i++) {
        if (d->h[i].seq >= lo && d->h[i].seq < hi)
            gone(d, &d->h[i]);
        else
            d->h[k++] = d->h[i];
    }
    if (k == d->n)
        return;
    d->n = k;
    for (size_t i = d->n / 2; i-- > 0;)
        sift_down(d, i);
    d->timer_due = 0;
    arm(bus);
}

/* --- what groups see ------------------------------------------------------ */

static void recount(eb_bus *bus)
{
    eb_bus_delay *d = &bus->delay;
    eb_imap_free(&d->per_group);
    eb_imap_init(&d->per_group);
    for (size_t t = 0; t < d->nt; t++) {
        if (!d->tcount[t])
            continue;
        void *const *m;
        size_t nm = eb_matcher_match(&bus->grp.matcher, d->tname[t], strlen(d->tname[t]), &m);
        for (size_t k = 0; k < nm; k++) {
            uintptr_t c = (uintptr_t)eb_imap_get(&d->per_group, (uint64_t)(uintptr_t)m[k]);
            eb_imap_put(&d->per_group, (uint64_t)(uintptr_t)m[k],
                        (void *)(c + (uintptr_t)d->tcount[t]));
        }
    }
    d->dirty = false;
}

uint64_t eb__bus_delay_for_group(eb_bus *bus, const eb_group *g)
{
    eb_bus_delay *d = &bus->delay;
    if (d->n == 0 && !d->rq_head)
        return 0;
    if (d->dirty || d->groups_gen != bus->grp.gen) {
        recount(bus);
        d->groups_gen = bus->grp.gen;
    }
    return (uint64_t)(uintptr_t)eb_imap_get(&d->per_group, (uint64_t)(uintptr_t)g);
}

void eb__bus_delay_stats(eb_bus *bus, eb_bus_stats *out)
{
    eb_bus_delay *d = &bus->delay;
    out->delayed = d->n + d->rq_events;
    out->delayed_released = d->released;
    out->delayed_expired = d->expired;
    out->delayed_next_us = d->n ? d->h[0].due : 0;
}

/* --- the meta replay, the start's scan, snapshots ------------------------- */

void eb__bus_delay_reset(eb_bus *bus)
{
    eb_bus_delay *d = &bus->delay;
    d->n = 0;
    for (size_t t = 0; t < d->nt; t++)
        d->tcount[t] = 0;
    d->w_due = d->w_seq = 0;
    d->upto = 0;
    d->dirty = true;
}

int eb__bus_delay_apply(eb_bus *bus, const eb_json *rec)
{
    eb_bus_delay *d = &bus->delay;
    eb_rec_delay r;
    if (eb__rec_delay_decode(rec, &r) != 0)
        return EB_ECORRUPT;
    if (r.has_u)
        d->upto = r.u;
    if (r.has_w)
        note_released(d, r.w_due, r.w_seq);
    size_t nt = r.types ? r.types->len : 0;
    uint32_t small[16], *tid = nt <= 16 ? small : eb_xmalloc(nt * sizeof *tid);
    size_t i = 0;
    for (const eb_json *t = r.types ? r.types->child : NULL; t; t = t->next, i++) {
        if (t->type != EB_JSON_STRING) {
            nt = 0;
            break;
        }
        tid[i] = intern(d, t->str, t->len);
    }
    int rc = 0;
    for (const eb_json *s = r.entries ? r.entries->child : NULL; s && rc == 0; s = s->next) {
        uint64_t seq, due;
        uint32_t ti;
        if (eb__rec_delay_entry(s, &seq, &due, &ti) != 0 || ti >= nt)
            rc = EB_ECORRUPT;
        else
            add(d, due, seq, tid[ti]);
    }
    if (tid != small)
        free(tid);
    return rc;
}

static int scan_one(void *arg, const eb_store_rec *rec)
{
    eb_bus *bus = arg;
    eb_event_view v;
    if ((rec->type != EB_REC_DELAYED && rec->type != EB_REC_EVENT) ||
        eb_event_decode(rec->data, rec->len, &v) != 0 || !v.deliver_us)
        return 0;
    if (rec->type == EB_REC_DELAYED)
        add(&bus->delay, v.deliver_us, rec->seq, intern(&bus->delay, v.type.ptr, v.type.len));
    else if (v.origin_seq)
        note_released(&bus->delay, v.deliver_us, v.origin_seq);
    return 0;
}

static int ent_cmp(const void *a, const void *b)
{
    const eb_delay_ent *x = a, *y = b;
    return before(x, y) ? -1 : before(y, x) ? 1 : 0;
}

/* Drops what is released or listed twice (a record and the start's scan,
 * or two records) and rebuilds the heap: sorted on (due, seq), which is a
 * heap already. */
static void tidy(eb_bus_delay *d)
{
    if (d->n > 1) /* (h is NULL when nothing was read) */
        qsort(d->h, d->n, sizeof *d->h, ent_cmp);
    size_t k = 0;
    for (size_t i = 0; i < d->n; i++) {
        bool twice = k && d->h[k - 1].due == d->h[i].due && d->h[k - 1].seq == d->h[i].seq;
        if (twice || released(d, d->h[i].due, d->h[i].seq))
            gone(d, &d->h[i]);
        else
            d->h[k++] = d->h[i];
    }
    d->n = k;
}

/* Every known type, for a record listing entries (freed by the caller). */
static eb_str *all_types(const eb_bus_delay *d)
{
    eb_str *types = eb_xmalloc((d->nt ? d->nt : 1) * sizeof *types);
    for (size_t t = 0; t < d->nt; t++)
        types[t] = (eb_str){d->tname[t], strlen(d->tname[t])};
    return types;
}

/* The start's record: it lists what the scan of [from, next) found, and
 * only then (on its last chunk) says u = next. Without the list, a crash
 * before the next snapshot would replay u = next and never scan those
 * events again: each would wait forever, unlisted. The records survive a
 * crash as a prefix, so u comes after everything it vouches for. */
static void write_finds(eb_bus *bus, uint64_t from, uint64_t next)
{
    eb_bus_delay *d = &bus->delay;
    eb_str *types = all_types(d);
    eb_delay_ent *chunk = eb_xmalloc(SNAP_CHUNK * sizeof *chunk);
    size_t i = 0;
    for (;;) {
        size_t k = 0;
        for (; i < d->n && k < SNAP_CHUNK; i++)
            if (d->h[i].seq >= from)
                chunk[k++] = d->h[i];
        bool last = i == d->n;
        write_rec(bus, last ? next : 0, last, types, d->nt, chunk, k);
        if (last)
            break;
    }
    free(chunk);
    free(types);
}

int eb__bus_delay_start(eb_bus *bus)
{
    eb_bus_delay *d = &bus->delay;
    uint64_t next = eb_store_next_seq(bus->events), from = d->upto;
    if (from > next)
        from = next; /* listed past what the crash kept */
    if (from < eb_store_first_seq(bus->events))
        from = eb_store_first_seq(bus->events);
    int rc = eb__bus_walk_events(bus, from, scan_one, bus);
    if (rc)
        return rc;
    tidy(d);
    d->loading = false;
    d->upto = next;
    if (from < next || d->n) /* the scan's finds, and where the next one starts */
        write_finds(bus, from, next);
    if (uv_timer_init(bus->loop, &d->timer))
        return EB_EIO;
    d->timer.data = bus;
    bus->handles++;
    arm(bus);
    return 0;
}

int eb__bus_delay_snapshot(eb_bus *bus, eb_outbox *ob)
{
    eb_bus_delay *d = &bus->delay;
    const release_op *ro = d->rq_head;
    size_t hi = 0, ri = 0;
    eb_str *types = all_types(d);
    eb_delay_ent *chunk = eb_xmalloc(SNAP_CHUNK * sizeof *chunk);
    /* The heap, then a release in flight (not recorded as released yet);
     * the first record also restates u and w. */
    bool first = true;
    do {
        size_t k = 0;
        while (k < SNAP_CHUNK && (hi < d->n || ro)) {
            if (hi < d->n) {
                chunk[k++] = d->h[hi++];
                continue;
            }
            chunk[k++] = ro->e[ri++];
            if (ri == ro->n)
                ro = ro->next, ri = 0;
        }
        eb_jw w;
        eb_outbox_begin(ob, EB_META_DELAY, &w);
        eb__rec_delay(&w, first ? cover(bus) : 0, first, d->w_due, d->w_seq, types, d->nt, chunk,
                      k);
        eb_outbox_end(ob);
        first = false;
    } while (hi < d->n || ro);
    free(chunk);
    free(types);
    return eb_buf_failed(&ob->text) ? EB_ENOMEM : 0;
}

bool eb__bus_delay_pending(const eb_bus *bus)
{
    return bus->delay.n || bus->delay.rq_head;
}

/* --- life ------------------------------------------------------------------ */

void eb__bus_delay_init(eb_bus *bus)
{
    eb_bus_delay *d = &bus->delay;
    eb_map_init(&d->tid_of);
    eb_imap_init(&d->per_group);
    eb_buf_init(&d->rec);
    eb_buf_init(&d->copies);
    d->recs = eb_xmalloc(RELEASE_MAX * sizeof *d->recs);
    d->offs = eb_xmalloc(RELEASE_MAX * sizeof *d->offs);
    d->wants = eb_xmalloc(RELEASE_MAX * sizeof *d->wants);
    d->roff = eb_xmalloc(RELEASE_MAX * sizeof *d->roff);
    d->rlen = eb_xmalloc(RELEASE_MAX * sizeof *d->rlen);
    eb_buf_init(&d->raw);
    d->dirty = true;
    d->loading = true; /* until eb__bus_delay_start */
}

void eb__bus_delay_close(eb_bus *bus)
{
    eb_bus_delay *d = &bus->delay;
    if (d->timer.data) {
        uv_timer_stop(&d->timer);
        uv_close((uv_handle_t *)&d->timer, eb__bus_handle_closed);
    }
}

void eb__bus_delay_free(eb_bus *bus)
{
    eb_bus_delay *d = &bus->delay;
    for (size_t t = 0; t < d->nt; t++)
        free(d->tname[t]);
    free(d->tname);
    free(d->tcount);
    free(d->h);
    eb_map_free(&d->tid_of);
    eb_imap_free(&d->per_group);
    eb_buf_free(&d->rec);
    eb_buf_free(&d->copies);
    free(d->recs);
    free(d->offs);
    free(d->wants);
    free(d->roff);
    free(d->rlen);
    eb_buf_free(&d->raw);
}
