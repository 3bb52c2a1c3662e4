/* group.c - the consumer-group engine (see group.h for the model).
 *
 * Memory only, loop thread only. Deliveries live in one hash map per class
 * (main, replay, redriven dead letter) keyed by seq, in a FIFO while READY,
 * in a binary heap by time while INFLIGHT (deadline) or RETRY (due), and in
 * a per-class list in creation order (its head is the oldest unacked). */
#include "bus/group.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eventbus.h"
#include "util/base64.h"

enum { CLS_MAIN = 0, CLS_REPLAY = 1, CLS_DLQ = 2, NCLS = 3 };
static const char cls_char[NCLS] = {'m', 'r', 'd'};

typedef enum eb_dlv_state {
    EB_DLV_READY = 0, /* waiting for a pull */
    EB_DLV_INFLIGHT,  /* leased to a consumer until `when` */
    EB_DLV_RETRY,     /* failed; READY again at `when` */
    EB_DLV_BLOCKED    /* ordering=key: waits for an earlier event of its key */
} eb_dlv_state;

#define FILL_CHUNK 1024 /* records one scan call looks at */

/* Per ordering key: the active delivery and the ones waiting behind it. */
typedef struct keyq {
    eb_dlv *active;
    eb_dlv *head, *tail; /* BLOCKED, in publish order (via dlv->next) */
    size_t  klen;
    char    key[];
} keyq;

/* A walk over the events log: the main flow or one replay. */
typedef struct flow {
    uint64_t     id;       /* 0 = main; replay id otherwise */
    uint64_t     from, to; /* range (main: base, UINT64_MAX) */
    uint64_t     cursor;   /* next seq to examine */
    char       **types;    /* replay subset; NULL = the group's types */
    size_t       ntypes;
    eb_rangeset  done;     /* seqs finished (acked or dead-lettered) */
    size_t       live;     /* deliveries alive from this flow */
    struct flow *next;
} flow;

/* A dead letter, with a copy of the stored event. */
typedef struct dead {
    uint64_t seq, ts_us, failed_at;
    uint32_t attempts;
    bool     redriven; /* delivered again (class d) until acked */
    char    *error, *consumer;
    char     id[EB_EVENT_MAX_ID + 1]; /* event id */
    uint32_t len;
    char    *payload;
} dead;

typedef struct eb_consumer {
    uint64_t last_pull_us;
    uint32_t in_flight;
    char     name[];
} eb_consumer;

struct eb_dlv {
    uint64_t     seq, ts_us;
    uint64_t     when;     /* INFLIGHT: deadline; RETRY/BLOCKED: due (µs) */
    uint32_t     attempt;  /* deliveries made */
    uint32_t     fails;    /* failed attempts */
    uint32_t     heap_idx; /* UINT32_MAX when not in the heap */
    uint8_t      state;    /* eb_dlv_state */
    uint8_t      cls;
    eb_dlv      *next;     /* ready FIFO or key wait list */
    eb_dlv      *lprev, *lnext; /* live list of its class */
    keyq        *kq;
    flow        *fl;
    dead        *dl;       /* class d: its dead letter (owns the payload) */
    eb_consumer *consumer;
    char        *last_error;
    uint32_t     len;
    char        *payload;  /* owned unless class d */
};

typedef struct failinfo {
    uint32_t fails;
    uint64_t due;
    char    *error;
} failinfo;

struct eb_group {
    char          *name;
    eb_group_cfg   cfg;
    eb_group_env   env;
    bool           paused;
    flow           main;
    flow          *replays;
    uint64_t       next_replay_id;
    eb_imap        dlvs[NCLS];     /* seq -> eb_dlv */
    eb_dlv        *lhead[NCLS], *ltail[NCLS];
    eb_dlv        *rq_head, *rq_tail; /* READY FIFO */
    eb_dlv       **heap;
    size_t         heap_n, heap_cap;
    eb_map         keys[2];        /* main / replay: key -> keyq */
    eb_imap        dlq;            /* seq -> dead */
    eb_map         dlq_ids;        /* event id -> dead */
    uint64_t      *dlq_seqs;       /* sorted, for paging */
    size_t         ndlq, dlq_cap;
    size_t         ndead;          /* not redriven */
    eb_map         consumers;      /* name -> eb_consumer */
    eb_imap        fails;          /* (cls<<62|seq) -> failinfo, from meta replay */
    uint64_t       ahead;          /* matching events past the main cursor */
    size_t         live, ready, in_flight, retry, blocked;
    eb_rangeset    ack_m, ack_r;   /* gathered acks for the next flush */
    eb_buf         ack_d;          /* gathered class-d acks: "seq,seq" */
    eb_buf         fail_items;     /* gathered FAIL entries: "[..],[..]" */
    eb_group_counters ctr;
    uint64_t       rng;
    uint64_t       last_sweep_us;  /* consumers table last swept */
};

#define CONSUMER_IDLE_US (3600ull * 1000000u) /* forget consumers idle this long */
#define SWEEP_EVERY_US (10ull * 1000000u)

/* --- outbox ----------------------------------------------------------------- */

void eb_outbox_init(eb_outbox *o)
{
    memset(o, 0, sizeof *o);
    eb_buf_init(&o->text);
}

void eb_outbox_free(eb_outbox *o)
{
    eb_buf_free(&o->text);
    free(o->recs);
    memset(o, 0, sizeof *o);
}

void eb_outbox_reset(eb_outbox *o)
{
    eb_buf_reset(&o->text);
    o->n = 0;
}

eb_jw *eb_outbox_begin(eb_outbox *o, uint16_t kind, eb_jw *w)
{
    if (o->n == o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 8;
        void *r = realloc(o->recs, cap * sizeof *o->recs);
        if (!r) {
            o->text.oom = true;
            cap = o->cap;
        } else {
            o->recs = r;
            o->cap = cap;
        }
    }
    if (o->n < o->cap) {
        o->recs[o->n].kind = kind;
        o->recs[o->n].off = o->text.len;
    }
    eb_jw_init(w, &o->text);
    return w;
}

int eb_outbox_end(eb_outbox *o)
{
    if (eb_buf_failed(&o->text) || o->n >= o->cap)
        return EB_ENOMEM;
    o->recs[o->n].len = o->text.len - o->recs[o->n].off;
    o->n++;
    return 0;
}

/* Opens a record {"g":name, ... */
static eb_jw *rec_open(eb_group *g, eb_outbox *ob, uint16_t kind, eb_jw *w)
{
    eb_outbox_begin(ob, kind, w);
    eb_jw_obj_open(w);
    eb_jw_key(w, "g");
    eb_jw_str(w, g->name);
    return w;
}

static void rec_close(eb_outbox *ob, eb_jw *w)
{
    eb_jw_obj_close(w);
    eb_outbox_end(ob);
}

/* --- small helpers -------------------------------------------------------- */

static char *dup_n(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

static uint64_t fail_key(int cls, uint64_t seq)
{
    return (uint64_t)cls << 62 | seq;
}

static double rnd(eb_group *g)
{
    uint64_t x = g->rng; /* xorshift64 */
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    g->rng = x;
    return (double)(x >> 11) / (double)(1ull << 53);
}

/* Delay before attempt fails+1, in µs: exponential with jitter. */
static uint64_t backoff_us(eb_group *g, uint32_t fails)
{
    double d = g->cfg.backoff_initial_ms;
    for (uint32_t i = 1; i < fails && d < g->cfg.backoff_max_ms; i++)
        d *= g->cfg.backoff_multiplier;
    if (d > g->cfg.backoff_max_ms)
        d = g->cfg.backoff_max_ms;
    d *= 1.0 + g->cfg.backoff_jitter * (2.0 * rnd(g) - 1.0);
    return d > 0 ? (uint64_t)(d * 1000.0) : 0;
}

/* --- the timer heap ---------------------------------------------------------- */

static void heap_set(eb_group *g, size_t i, eb_dlv *d)
{
    g->heap[i] = d;
    d->heap_idx = (uint32_t)i;
}

static void heap_up(eb_group *g, size_t i)
{
    eb_dlv *d = g->heap[i];
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (g->heap[p]->when <= d->when)
            break;
        heap_set(g, i, g->heap[p]);
        i = p;
    }
    heap_set(g, i, d);
}

static void heap_down(eb_group *g, size_t i)
{
    eb_dlv *d = g->heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= g->heap_n)
            break;
        if (c + 1 < g->heap_n && g->heap[c + 1]->when < g->heap[c]->when)
            c++;
        if (g->heap[c]->when >= d->when)
            break;
        heap_set(g, i, g->heap[c]);
        i = c;
    }
    heap_set(g, i, d);
}

static int heap_push(eb_group *g, eb_dlv *d)
{
    if (g->heap_n == g->heap_cap) {
        size_t cap = g->heap_cap ? g->heap_cap * 2 : 64;
        eb_dlv **h = realloc(g->heap, cap * sizeof *h);
        if (!h)
            return EB_ENOMEM;
        g->heap = h;
        g->heap_cap = cap;
    }
    g->heap[g->heap_n] = d;
    d->heap_idx = (uint32_t)g->heap_n++;
    heap_up(g, d->heap_idx);
    return 0;
}

static void heap_remove(eb_group *g, eb_dlv *d)
{
    size_t i = d->heap_idx;
    if (i == UINT32_MAX)
        return;
    d->heap_idx = UINT32_MAX;
    eb_dlv *last = g->heap[--g->heap_n];
    if (i == g->heap_n)
        return;
    heap_set(g, i, last);
    heap_up(g, i);
    heap_down(g, last->heap_idx);
}

static void heap_fix(eb_group *g, eb_dlv *d)
{
    heap_up(g, d->heap_idx);
    heap_down(g, d->heap_idx);
}

/* --- delivery states --------------------------------------------------------- */

static void make_ready(eb_group *g, eb_dlv *d)
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

/* RETRY until d->when, or READY if that has passed. */
static void schedule(eb_group *g, eb_dlv *d, uint64_t now)
{
    if (d->when <= now || heap_push(g, d) != 0) {
        make_ready(g, d);
        return;
    }
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

static void dlv_free(eb_dlv *d)
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
        schedule(g, nx, now);
        return;
    }
    eb_map_del(&g->keys[d->cls == CLS_REPLAY], kq->key, kq->klen);
    free(kq);
}

/* Removes a delivery that is finished (acked or dead-lettered). */
static void finish(eb_group *g, eb_dlv *d, uint64_t now)
{
    heap_remove(g, d);
    eb_imap_del(&g->dlvs[d->cls], d->seq);
    live_remove(g, d);
    key_release(g, d, now);
    dlv_free(d);
}

/* Marks seq done in every replay flow that covers it. */
static void replay_done(eb_group *g, uint64_t a, uint64_t b)
{
    for (flow *f = g->replays; f; f = f->next)
        if (a < f->to && b > f->from)
            eb_rangeset_add(&f->done, a > f->from ? a : f->from, b < f->to ? b : f->to);
}

/* --- dead letters ------------------------------------------------------------- */

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

static int dlq_insert(eb_group *g, dead *e)
{
    if (g->ndlq == g->dlq_cap) {
        size_t cap = g->dlq_cap ? g->dlq_cap * 2 : 16;
        uint64_t *s = realloc(g->dlq_seqs, cap * sizeof *s);
        if (!s)
            return EB_ENOMEM;
        g->dlq_seqs = s;
        g->dlq_cap = cap;
    }
    if (eb_imap_put(&g->dlq, e->seq, e) || eb_map_put(&g->dlq_ids, e->id, strlen(e->id), e, NULL))
        return EB_ENOMEM;
    size_t i = dlq_pos(g, e->seq);
    memmove(&g->dlq_seqs[i + 1], &g->dlq_seqs[i], (g->ndlq - i) * sizeof *g->dlq_seqs);
    g->dlq_seqs[i] = e->seq;
    g->ndlq++;
    if (!e->redriven)
        g->ndead++;
    return 0;
}

static void dead_free(dead *e)
{
    free(e->error);
    free(e->consumer);
    free(e->payload);
    free(e);
}

static void dlq_remove(eb_group *g, uint64_t seq)
{
    dead *e = eb_imap_del(&g->dlq, seq);
    if (!e)
        return;
    eb_map_del(&g->dlq_ids, e->id, strlen(e->id));
    size_t i = dlq_pos(g, seq);
    if (i < g->ndlq && g->dlq_seqs[i] == seq) {
        memmove(&g->dlq_seqs[i], &g->dlq_seqs[i + 1], (g->ndlq - i - 1) * sizeof *g->dlq_seqs);
        g->ndlq--;
    }
    if (!e->redriven)
        g->ndead--;
    dead_free(e);
}

static void set_str(char **dst, const char *s, size_t n)
{
    free(*dst);
    *dst = s ? dup_n(s, n) : NULL;
}

/* Writes a DEAD record for e. */
static void dead_record(eb_group *g, const dead *e, int cls, bool with_payload, eb_outbox *ob)
{
    eb_jw w;
    rec_open(g, ob, EB_META_DEAD, &w);
    eb_jw_key(&w, "c");
    eb_jw_strn(&w, &cls_char[cls], 1);
    eb_jw_key(&w, "s");
    eb_jw_uint(&w, e->seq);
    eb_jw_key(&w, "t");
    eb_jw_uint(&w, e->ts_us);
    eb_jw_key(&w, "n");
    eb_jw_uint(&w, e->attempts);
    eb_jw_key(&w, "e");
    eb_jw_str(&w, e->error ? e->error : "");
    eb_jw_key(&w, "who");
    eb_jw_str(&w, e->consumer ? e->consumer : "");
    eb_jw_key(&w, "at");
    eb_jw_uint(&w, e->failed_at);
    if (with_payload) {
        eb_jw_key(&w, "p");
        eb_buf *o = &ob->text;
        eb_jw_raw(&w, "\"", 1);
        eb_base64_encode(o, e->payload, e->len);
        eb_buf_putc(o, '"');
    }
    rec_close(ob, &w);
}

/* Moves d to the dead-letter queue. */
static void dead_letter(eb_group *g, eb_dlv *d, uint64_t now, eb_outbox *ob)
{
    dead *e = d->dl ? d->dl : eb_imap_get(&g->dlq, d->seq); /* a replay may die twice */
    bool fresh = !e;
    if (fresh) {
        eb_event_view v;
        e = calloc(1, sizeof *e);
        if (!e || eb_event_decode(d->payload, d->len, &v) != 0) {
            free(e);
            return; /* cannot happen for a decoded event; keep it in flight */
        }
        e->seq = d->seq;
        e->ts_us = d->ts_us;
        memcpy(e->id, v.id.ptr, v.id.len);
        e->payload = d->payload;
        e->len = d->len;
        d->payload = NULL;
    } else if (e->redriven) {
        e->redriven = false;
        g->ndead++;
    }
    e->attempts = d->fails;
    e->failed_at = now;
    set_str(&e->error, d->last_error, d->last_error ? strlen(d->last_error) : 0);
    set_str(&e->consumer, d->consumer ? d->consumer->name : NULL,
            d->consumer ? strlen(d->consumer->name) : 0);
    if (fresh && dlq_insert(g, e) != 0) {
        dead_free(e);
        return;
    }
    if (d->cls == CLS_MAIN)
        eb_rangeset_add(&g->main.done, d->seq, d->seq + 1);
    else if (d->cls == CLS_REPLAY)
        replay_done(g, d->seq, d->seq + 1);
    dead_record(g, e, d->cls, fresh, ob);
    g->ctr.dead_lettered++;
    finish(g, d, now);
}

/* --- creating deliveries ------------------------------------------------------ */

static eb_dlv *dlv_new(eb_group *g, int cls, uint64_t seq, uint64_t ts, flow *fl)
{
    eb_dlv *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->seq = seq;
    d->ts_us = ts;
    d->cls = (uint8_t)cls;
    d->fl = fl;
    d->heap_idx = UINT32_MAX;
    if (eb_imap_put(&g->dlvs[cls], seq, d) != 0) {
        free(d);
        return NULL;
    }
    live_add(g, d);
    failinfo *fi = eb_imap_del(&g->fails, fail_key(cls, seq));
    if (fi) {
        d->fails = d->attempt = fi->fails;
        d->when = fi->due;
        d->last_error = fi->error;
        free(fi);
    }
    return d;
}

/* Queues d behind its key if it has one and ordering is by key. */
static void admit(eb_group *g, eb_dlv *d, eb_str key, uint64_t now)
{
    if (g->cfg.ordering == EB_ORDER_KEY && key.len && d->cls != CLS_DLQ) {
        eb_map *m = &g->keys[d->cls == CLS_REPLAY];
        keyq *kq = eb_map_get(m, key.ptr, key.len);
        if (!kq && (kq = calloc(1, sizeof *kq + key.len + 1))) {
            memcpy(kq->key, key.ptr, key.len);
            kq->klen = key.len;
            if (eb_map_put(m, key.ptr, key.len, kq, NULL)) {
                free(kq);
                kq = NULL;
            }
        }
        if (kq) {
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
    }
    schedule(g, d, now);
}

static bool flow_matches(const eb_group *g, const flow *f, eb_str type)
{
    if (!eb_group_cfg_matches(&g->cfg, type.ptr, type.len))
        return false;
    if (!f->types)
        return true;
    for (size_t i = 0; i < f->ntypes; i++)
        if (eb_group_type_match(f->types[i], type.ptr, type.len))
            return true;
    return false;
}

typedef struct fill_ctx {
    eb_group *g;
    flow     *f;
    size_t    want;
    uint64_t  stop;  /* examine seqs below this */
    uint64_t  now;
    int       rc;
} fill_ctx;

static int fill_one(void *arg, const eb_log_rec *rec)
{
    fill_ctx *c = arg;
    eb_group *g = c->g;
    flow *f = c->f;
    if (rec->seq >= c->stop)
        return 1;
    f->cursor = rec->seq + 1;
    eb_event_view v;
    if (rec->type != EB_REC_EVENT || eb_event_decode(rec->data, rec->len, &v) != 0)
        return 0;
    if (!flow_matches(g, f, v.type))
        return 0;
    int cls = f->id ? CLS_REPLAY : CLS_MAIN;
    if (!f->id && g->ahead)
        g->ahead--;
    if (eb_rangeset_has(&f->done, rec->seq) || eb_imap_get(&g->dlvs[cls], rec->seq))
        return 0;
    eb_dlv *d = dlv_new(g, cls, rec->seq, rec->ts_us, f);
    if (!d || !(d->payload = malloc(rec->len ? rec->len : 1))) {
        if (d)
            finish(g, d, c->now);
        f->cursor = rec->seq; /* look again later */
        c->rc = EB_ENOMEM;
        return 1;
    }
    memcpy(d->payload, rec->data, rec->len);
    d->len = rec->len;
    admit(g, d, v.key, c->now);
    return g->ready >= c->want || g->live >= EB_GROUP_MAX_PENDING;
}

/* Examines one chunk of flow f; true if it moved. */
static bool fill_flow(eb_group *g, flow *f, size_t want, uint64_t durable, uint64_t now)
{
    uint64_t stop = f->to < durable ? f->to : durable;
    uint64_t first = eb_log_first_seq(g->env.events);
    if (f->cursor < first) { /* gone to retention before we got there: count it */
        g->ctr.retention_skipped += first - f->cursor;
        f->cursor = first;
        if (!f->id)
            eb_group_count_ahead(g, durable);
    }
    if (f->cursor >= stop)
        return false;
    uint64_t before = f->cursor;
    fill_ctx c = {g, f, want, stop, now, 0};
    eb_log_scan(g->env.events, f->cursor, FILL_CHUNK, fill_one, &c);
    if (f->cursor == before && c.rc == 0)
        f->cursor = stop; /* nothing readable below stop: should not happen */
    return f->cursor != before;
}

/* Examines events until `want` deliveries are READY, the window is full or
 * every flow has reached the durable head. */
static void fill(eb_group *g, size_t want, uint64_t durable, uint64_t now)
{
    while (g->ready < want && g->live < EB_GROUP_MAX_PENDING) {
        bool moved = fill_flow(g, &g->main, want, durable, now);
        for (flow *f = g->replays; !moved && f; f = f->next)
            moved = fill_flow(g, f, want, durable, now);
        if (!moved)
            break;
    }
}

/* --- the group ---------------------------------------------------------------- */

static void flow_init(flow *f, uint64_t id, uint64_t from, uint64_t to)
{
    memset(f, 0, sizeof *f);
    f->id = id;
    f->from = f->cursor = from;
    f->to = to;
    eb_rangeset_init(&f->done);
}

static void flow_free(flow *f)
{
    for (size_t i = 0; i < f->ntypes; i++)
        free(f->types[i]);
    free(f->types);
    eb_rangeset_free(&f->done);
}

int eb_group_new(const char *name, eb_group_cfg *cfg, uint64_t base, const eb_group_env *env,
                 eb_group **out)
{
    eb_group *g = calloc(1, sizeof *g);
    if (!g || !(g->name = strdup(name))) {
        free(g);
        return EB_ENOMEM;
    }
    g->cfg = *cfg;
    memset(cfg, 0, sizeof *cfg);
    g->env = *env;
    flow_init(&g->main, 0, base, UINT64_MAX);
    g->next_replay_id = 1;
    for (int i = 0; i < NCLS; i++)
        eb_imap_init(&g->dlvs[i]);
    eb_map_init(&g->keys[0]);
    eb_map_init(&g->keys[1]);
    eb_imap_init(&g->dlq);
    eb_map_init(&g->dlq_ids);
    eb_map_init(&g->consumers);
    eb_imap_init(&g->fails);
    eb_rangeset_init(&g->ack_m);
    eb_rangeset_init(&g->ack_r);
    eb_buf_init(&g->ack_d);
    eb_buf_init(&g->fail_items);
    g->rng = eb_hash(name, strlen(name)) | 1u;
    g->rng ^= env->now_us() << 1;
    *out = g;
    return 0;
}

void eb_group_free(eb_group *g)
{
    if (!g)
        return;
    for (int c = 0; c < NCLS; c++) {
        for (eb_dlv *d = g->lhead[c], *nx; d; d = nx) {
            nx = d->lnext;
            dlv_free(d);
        }
        eb_imap_free(&g->dlvs[c]);
    }
    for (int k = 0; k < 2; k++) {
        size_t it = 0;
        const eb_map_slot *s;
        while ((s = eb_map_next(&g->keys[k], &it)))
            free(s->val);
        eb_map_free(&g->keys[k]);
    }
    size_t it = 0;
    const eb_imap_slot *is;
    while ((is = eb_imap_next(&g->dlq, &it)))
        dead_free(is->val);
    it = 0;
    while ((is = eb_imap_next(&g->fails, &it))) {
        failinfo *fi = is->val;
        free(fi->error);
        free(fi);
    }
    it = 0;
    const eb_map_slot *s;
    while ((s = eb_map_next(&g->consumers, &it)))
        free(s->val);
    eb_imap_free(&g->dlq);
    eb_imap_free(&g->fails);
    eb_map_free(&g->dlq_ids);
    eb_map_free(&g->consumers);
    free(g->dlq_seqs);
    free(g->heap);
    flow_free(&g->main);
    for (flow *f = g->replays, *nx; f; f = nx) {
        nx = f->next;
        flow_free(f);
        free(f);
    }
    eb_rangeset_free(&g->ack_m);
    eb_rangeset_free(&g->ack_r);
    eb_buf_free(&g->ack_d);
    eb_buf_free(&g->fail_items);
    eb_group_cfg_free(&g->cfg);
    free(g->name);
    free(g);
}

const char *eb_group_name(const eb_group *g) { return g->name; }
const eb_group_cfg *eb_group_config(const eb_group *g) { return &g->cfg; }
bool eb_group_paused(const eb_group *g) { return g->paused; }
void eb_group_set_paused(eb_group *g, bool paused) { g->paused = paused; }

/* The lowest seq the main flow may still need: below it all is finished. */
static uint64_t main_floor(const eb_group *g)
{
    uint64_t f = g->main.cursor;
    if (g->lhead[CLS_MAIN] && g->lhead[CLS_MAIN]->seq < f)
        f = g->lhead[CLS_MAIN]->seq;
    return f;
}

uint64_t eb_group_base(const eb_group *g) { return main_floor(g); }

void eb_group_set_config(eb_group *g, eb_group_cfg *cfg)
{
    eb_group_cfg_free(&g->cfg);
    int start = g->cfg.start;
    uint64_t start_us = g->cfg.start_us;
    g->cfg = *cfg;
    g->cfg.start = start; /* where it started is history */
    g->cfg.start_us = start_us;
    memset(cfg, 0, sizeof *cfg);
}

typedef struct count_ctx {
    eb_group *g;
    uint64_t  stop, next, n;
    char    **types; /* replay subset or NULL */
    size_t    ntypes;
} count_ctx;

static int count_one(void *arg, const eb_log_rec *rec)
{
    count_ctx *c = arg;
    if (rec->seq >= c->stop)
        return 1;
    c->next = rec->seq + 1;
    eb_event_view v;
    if (rec->type != EB_REC_EVENT || eb_event_decode(rec->data, rec->len, &v) != 0)
        return 0;
    flow tmp = {.types = c->types, .ntypes = c->ntypes};
    if (flow_matches(c->g, &tmp, v.type))
        c->n++;
    return 0;
}

/* Matching events in [from, stop). */
static uint64_t count_range(eb_group *g, uint64_t from, uint64_t stop, char **types,
                            size_t ntypes)
{
    count_ctx c = {g, stop, from, 0, ntypes ? types : NULL, ntypes};
    while (c.next < stop) {
        uint64_t before = c.next;
        if (eb_log_scan(g->env.events, c.next, 65536, count_one, &c) != 0 || c.next == before)
            break;
    }
    return c.n;
}

int eb_group_count_ahead(eb_group *g, uint64_t head)
{
    g->ahead = count_range(g, g->main.cursor, head, NULL, 0);
    return 0;
}

void eb_group_published(eb_group *g, const char *type, size_t n, uint64_t count)
{
    if (eb_group_cfg_matches(&g->cfg, type, n))
        g->ahead += count;
}

bool eb_group_has_ready(eb_group *g, uint64_t durable)
{
    if (g->paused)
        return false;
    if (g->ready == 0 && g->live < EB_GROUP_MAX_PENDING)
        fill(g, 1, durable, g->env.now_us());
    return g->ready > 0;
}

/* --- pull ---------------------------------------------------------------------- */

static eb_consumer *consumer_get(eb_group *g, const char *name, size_t n)
{
    eb_consumer *c = eb_map_get(&g->consumers, name, n);
    if (c)
        return c;
    if (!(c = calloc(1, sizeof *c + n + 1)))
        return NULL;
    memcpy(c->name, name, n);
    if (eb_map_put(&g->consumers, name, n, c, NULL)) {
        free(c);
        return NULL;
    }
    return c;
}

/* Appends the decimal digits of v. */
static void put_u64(eb_buf *o, uint64_t v)
{
    char t[20];
    int n = 0;
    do
        t[n++] = (char)('0' + v % 10);
    while ((v /= 10));
    while (n)
        eb_buf_putc(o, t[--n]);
}

/* Writes d as its event plus "delivery"; `deadline` is its formatted
 * lease end (the same for every event of one pull). */
static void write_delivery(eb_jw *w, const eb_dlv *d, const char *deadline)
{
    eb_event_view v;
    if (eb_event_decode(d->payload, d->len, &v) != 0)
        return;
    eb_event_write(w, d->seq, d->ts_us, &v);
    eb_buf *o = w->out;
    if (o->len && o->data[o->len - 1] == '}')
        o->len--; /* reopen the event object to add its delivery */
    eb_buf_puts(o, ",\"delivery\":{\"id\":\"");
    eb_buf_putc(o, cls_char[d->cls]);
    put_u64(o, d->seq);
    eb_buf_putc(o, '.');
    put_u64(o, d->attempt);
    eb_buf_puts(o, "\",\"attempt\":");
    put_u64(o, d->attempt);
    eb_buf_puts(o, ",\"deadline\":\"");
    eb_buf_puts(o, deadline);
    eb_buf_puts(o, "\"}}");
}

int eb_group_pull(eb_group *g, const char *consumer, size_t clen, size_t max, uint64_t durable,
                  eb_jw *w)
{
    uint64_t now = g->env.now_us();
    eb_consumer *c = consumer_get(g, consumer, clen);
    if (!c)
        return EB_ENOMEM;
    c->last_pull_us = now;
    if (g->paused)
        return 0;
    if (g->ready < max)
        fill(g, max, durable, now);
    size_t n = 0;
    uint64_t deadline = now + (uint64_t)g->cfg.ack_timeout_ms * 1000u;
    char dl[32];
    eb_time_format(deadline, dl);
    while (n < max && g->rq_head) {
        eb_dlv *d = g->rq_head;
        g->rq_head = d->next;
        if (!g->rq_head)
            g->rq_tail = NULL;
        g->ready--;
        d->next = NULL;
        d->state = EB_DLV_INFLIGHT;
        d->attempt++;
        d->when = deadline;
        d->consumer = c;
        c->in_flight++;
        g->in_flight++;
        heap_push(g, d);
        write_delivery(w, d, dl);
        g->ctr.delivered++;
        if (d->attempt > 1)
            g->ctr.redelivered++;
        n++;
    }
    return (int)n;
}

/* --- ack, nack, extend --------------------------------------------------------- */

/* Parses "<cls><seq>.<attempt>" and finds the in-flight delivery. */
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
    if (i != n || seq == 0)
        return NULL;
    eb_dlv *d = eb_imap_get(&g->dlvs[cls], seq);
    if (!d || d->state != EB_DLV_INFLIGHT || d->attempt != att)
        return NULL;
    return d;
}

static void lease_end(eb_group *g, eb_dlv *d)
{
    heap_remove(g, d);
    if (d->consumer && d->consumer->in_flight)
        d->consumer->in_flight--;
    g->in_flight--;
}

eb_dlv_outcome eb_group_ack(eb_group *g, const char *id, size_t n)
{
    eb_dlv *d = find_inflight(g, id, n);
    if (!d)
        return EB_DLV_UNKNOWN;
    uint64_t now = g->env.now_us();
    lease_end(g, d);
    if (d->cls == CLS_MAIN) {
        eb_rangeset_add(&g->ack_m, d->seq, d->seq + 1);
        eb_rangeset_add(&g->main.done, d->seq, d->seq + 1);
    } else if (d->cls == CLS_REPLAY) {
        eb_rangeset_add(&g->ack_r, d->seq, d->seq + 1);
        replay_done(g, d->seq, d->seq + 1);
    } else {
        eb_buf_printf(&g->ack_d, "%s%llu", g->ack_d.len ? "," : "", (unsigned long long)d->seq);
    }
    if (g->env.on_latency && now > d->ts_us)
        g->env.on_latency(g->env.arg, now - d->ts_us);
    g->ctr.acked++;
    uint64_t seq = d->seq;
    int cls = d->cls;
    finish(g, d, now);
    if (cls == CLS_DLQ)
        dlq_remove(g, seq);
    return EB_DLV_OK;
}

/* A failed attempt: retry later or dead-letter. delay_ms < 0: backoff. */
static void fail(eb_group *g, eb_dlv *d, const char *err, int64_t delay_ms, uint64_t now,
                 eb_outbox *ob)
{
    lease_end(g, d);
    d->fails++;
    set_str(&d->last_error, err, strlen(err));
    if (d->fails >= g->cfg.max_attempts) {
        dead_letter(g, d, now, ob);
        return;
    }
    d->when = now + (delay_ms >= 0 ? (uint64_t)delay_ms * 1000u : backoff_us(g, d->fails));
    eb_buf *b = &g->fail_items;
    if (b->len)
        eb_buf_putc(b, ',');
    eb_buf_printf(b, "[\"%c\",%llu,%u,%llu,", cls_char[d->cls], (unsigned long long)d->seq,
                  d->fails, (unsigned long long)d->when);
    eb_json_escape(b, err, strlen(err));
    eb_buf_putc(b, ']');
    schedule(g, d, now);
}

eb_dlv_outcome eb_group_nack(eb_group *g, const char *id, size_t n, const char *err,
                             int64_t delay_ms, eb_outbox *ob)
{
    eb_dlv *d = find_inflight(g, id, n);
    if (!d)
        return EB_DLV_UNKNOWN;
    g->ctr.nacked++;
    fail(g, d, err && *err ? err : "nacked", delay_ms, g->env.now_us(), ob);
    return EB_DLV_OK;
}

eb_dlv_outcome eb_group_extend(eb_group *g, const char *id, size_t n, uint32_t ms)
{
    eb_dlv *d = find_inflight(g, id, n);
    if (!d)
        return EB_DLV_UNKNOWN;
    d->when = g->env.now_us() + (uint64_t)(ms ? ms : g->cfg.ack_timeout_ms) * 1000u;
    heap_fix(g, d);
    return EB_DLV_OK;
}

static void write_ranges(eb_jw *w, const char *key, const eb_rangeset *s)
{
    eb_jw_key(w, key);
    eb_jw_arr_open(w);
    for (size_t i = 0; i < s->n; i++) {
        eb_jw_arr_open(w);
        eb_jw_uint(w, s->r[i].a);
        eb_jw_uint(w, s->r[i].b);
        eb_jw_arr_close(w);
    }
    eb_jw_arr_close(w);
}

int eb_group_flush(eb_group *g, eb_outbox *ob)
{
    eb_jw w;
    if (g->ack_m.n || g->ack_r.n || g->ack_d.len) {
        rec_open(g, ob, EB_META_ACK, &w);
        if (g->ack_m.n)
            write_ranges(&w, "m", &g->ack_m);
        if (g->ack_r.n)
            write_ranges(&w, "r", &g->ack_r);
        if (g->ack_d.len) {
            eb_jw_key(&w, "d");
            eb_jw_raw(&w, "[", 1);
            eb_buf_append(&ob->text, g->ack_d.data, g->ack_d.len);
            eb_buf_putc(&ob->text, ']');
        }
        rec_close(ob, &w);
        eb_rangeset_clear(&g->ack_m);
        eb_rangeset_clear(&g->ack_r);
        eb_buf_reset(&g->ack_d);
    }
    if (g->fail_items.len) {
        rec_open(g, ob, EB_META_FAIL, &w);
        eb_jw_key(&w, "f");
        eb_jw_raw(&w, "[", 1);
        eb_buf_append(&ob->text, g->fail_items.data, g->fail_items.len);
        eb_buf_putc(&ob->text, ']');
        rec_close(ob, &w);
        eb_buf_reset(&g->fail_items);
    }
    return eb_buf_failed(&ob->text) ? EB_ENOMEM : 0;
}

/* Drops replay flows that are done: walked to their end, nothing alive. */
static void reap_flows(eb_group *g)
{
    flow **pp = &g->replays;
    while (*pp) {
        flow *f = *pp;
        if (f->cursor >= f->to && f->live == 0) {
            *pp = f->next;
            flow_free(f);
            free(f);
        } else {
            pp = &f->next;
        }
    }
}

/* Forgets consumers that hold nothing and have not pulled for an hour, so
 * the table does not grow with every name ever seen. */
static void sweep_consumers(eb_group *g, uint64_t now)
{
    eb_consumer **idle = malloc((g->consumers.len ? g->consumers.len : 1) * sizeof *idle);
    if (!idle)
        return;
    size_t n = 0, it = 0;
    const eb_map_slot *s;
    while ((s = eb_map_next(&g->consumers, &it))) {
        eb_consumer *c = s->val;
        if (!c->in_flight && now > c->last_pull_us + CONSUMER_IDLE_US)
            idle[n++] = c;
    }
    for (size_t i = 0; i < n; i++) { /* the map is not walked while it changes */
        eb_map_del(&g->consumers, idle[i]->name, strlen(idle[i]->name));
        free(idle[i]);
    }
    free(idle);
}

void eb_group_tick(eb_group *g, eb_outbox *ob)
{
    uint64_t now = g->env.now_us();
    while (g->heap_n && g->heap[0]->when <= now) {
        eb_dlv *d = g->heap[0];
        if (d->state == EB_DLV_INFLIGHT) {
            g->ctr.expired++;
            fail(g, d, "ack deadline exceeded", -1, now, ob);
        } else {
            heap_remove(g, d);
            g->retry--;
            make_ready(g, d);
        }
    }
    eb_rangeset_trim_below(&g->main.done, main_floor(g));
    reap_flows(g);
    if (now - g->last_sweep_us >= SWEEP_EVERY_US) {
        g->last_sweep_us = now;
        sweep_consumers(g, now);
    }
}

/* --- info -------------------------------------------------------------------- */

void eb_group_info_get(eb_group *g, eb_group_info *o)
{
    memset(o, 0, sizeof *o);
    o->name = g->name;
    o->cfg = &g->cfg;
    o->paused = g->paused;
    o->ready = g->ready;
    o->in_flight = g->in_flight;
    o->retry_scheduled = g->retry;
    o->blocked = g->blocked;
    o->dead_letters = g->ndead;
    o->lag = g->ahead + g->live;
    uint64_t oldest = 0;
    for (int c = 0; c < NCLS; c++)
        if (g->lhead[c] && (!oldest || g->lhead[c]->ts_us < oldest))
            oldest = g->lhead[c]->ts_us;
    if (!oldest && g->ahead) { /* not examined yet: the next one is the oldest */
        uint64_t durable = eb_log_durable_seq(g->env.events);
        fill(g, 1, durable, g->env.now_us());
        for (int c = 0; c < NCLS; c++)
            if (g->lhead[c] && (!oldest || g->lhead[c]->ts_us < oldest))
                oldest = g->lhead[c]->ts_us;
        o->lag = g->ahead + g->live;
        o->ready = g->ready;
    }
    o->oldest_unacked_us = oldest;
    o->cursor = g->main.cursor;
    o->counters = g->ctr;
}

void eb_group_write_consumers(eb_group *g, eb_jw *w)
{
    size_t it = 0;
    const eb_map_slot *s;
    while ((s = eb_map_next(&g->consumers, &it))) {
        const eb_consumer *c = s->val;
        char t[40];
        eb_time_format(c->last_pull_us, t);
        eb_jw_obj_open(w);
        eb_jw_key(w, "name");
        eb_jw_str(w, c->name);
        eb_jw_key(w, "last_pull");
        eb_jw_str(w, t);
        eb_jw_key(w, "in_flight");
        eb_jw_uint(w, c->in_flight);
        eb_jw_obj_close(w);
    }
}

/* --- dead-letter queue operations -------------------------------------------- */

void eb_group_dlq_list(eb_group *g, uint64_t after, size_t limit, eb_jw *w, uint64_t *next)
{
    *next = 0;
    size_t n = 0;
    for (size_t i = dlq_pos(g, after + 1); i < g->ndlq; i++) {
        dead *e = eb_imap_get(&g->dlq, g->dlq_seqs[i]);
        if (!e || e->redriven)
            continue;
        if (n == limit) {
            *next = g->dlq_seqs[i - 1];
            break;
        }
        eb_event_view v;
        if (eb_event_decode(e->payload, e->len, &v) != 0)
            continue;
        char at[40];
        eb_time_format(e->failed_at, at);
        eb_jw_obj_open(w);
        eb_jw_key(w, "event");
        eb_event_write(w, e->seq, e->ts_us, &v);
        eb_jw_key(w, "error");
        eb_jw_str(w, e->error ? e->error : "");
        eb_jw_key(w, "attempts");
        eb_jw_uint(w, e->attempts);
        eb_jw_key(w, "consumer");
        eb_jw_str(w, e->consumer ? e->consumer : "");
        eb_jw_key(w, "failed_at");
        eb_jw_str(w, at);
        eb_jw_obj_close(w);
        n++;
    }
}

/* Collects the dead letters named by ids (all when n == 0). */
static size_t pick_dead(eb_group *g, const eb_str *ids, size_t n, dead ***out)
{
    size_t cap = n ? n : g->ndlq, k = 0;
    dead **v = malloc((cap ? cap : 1) * sizeof *v);
    *out = v;
    if (!v)
        return 0;
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

static void seqs_record(eb_group *g, uint16_t kind, dead **v, size_t k, eb_outbox *ob)
{
    eb_jw w;
    rec_open(g, ob, kind, &w);
    eb_jw_key(&w, "s");
    eb_jw_arr_open(&w);
    for (size_t i = 0; i < k; i++)
        eb_jw_uint(&w, v[i]->seq);
    eb_jw_arr_close(&w);
    rec_close(ob, &w);
}

/* Turns dead letter e into a delivery again. */
static void redrive_one(eb_group *g, dead *e, uint64_t now)
{
    eb_dlv *d = eb_imap_get(&g->dlvs[CLS_DLQ], e->seq);
    if (d)
        return;
    if (!(d = dlv_new(g, CLS_DLQ, e->seq, e->ts_us, NULL)))
        return;
    d->dl = e;
    d->payload = e->payload;
    d->len = e->len;
    if (!e->redriven) {
        e->redriven = true;
        g->ndead--;
    }
    schedule(g, d, now); /* fresh attempts, or those replayed at startup */
}

size_t eb_group_dlq_redrive(eb_group *g, const eb_str *ids, size_t n, eb_outbox *ob)
{
    dead **v;
    size_t k = pick_dead(g, ids, n, &v);
    uint64_t now = g->env.now_us();
    for (size_t i = 0; i < k; i++)
        redrive_one(g, v[i], now);
    if (k)
        seqs_record(g, EB_META_REDRIVE, v, k, ob);
    free(v);
    g->ctr.redriven += k;
    return k;
}

size_t eb_group_dlq_purge(eb_group *g, const eb_str *ids, size_t n, eb_outbox *ob)
{
    dead **v;
    size_t k = pick_dead(g, ids, n, &v);
    if (k)
        seqs_record(g, EB_META_PURGE, v, k, ob);
    for (size_t i = 0; i < k; i++)
        dlq_remove(g, v[i]->seq);
    free(v);
    g->ctr.purged += k;
    return k;
}

/* --- replay ----------------------------------------------------------------- */

static flow *replay_flow_new(eb_group *g, uint64_t id, uint64_t from, uint64_t to, char **types,
                             size_t ntypes)
{
    flow *f = malloc(sizeof *f);
    if (!f)
        return NULL;
    flow_init(f, id, from, to);
    if (ntypes) {
        f->types = calloc(ntypes, sizeof *f->types);
        for (size_t i = 0; f->types && i < ntypes; i++)
            if ((f->types[i] = strdup(types[i])))
                f->ntypes++;
    }
    flow **pp = &g->replays; /* keep creation order */
    while (*pp)
        pp = &(*pp)->next;
    *pp = f;
    if (id >= g->next_replay_id)
        g->next_replay_id = id + 1;
    return f;
}

static void replay_record(eb_group *g, const flow *f, eb_outbox *ob)
{
    eb_jw w;
    rec_open(g, ob, EB_META_REPLAY, &w);
    eb_jw_key(&w, "id");
    eb_jw_uint(&w, f->id);
    eb_jw_key(&w, "from");
    eb_jw_uint(&w, f->from);
    eb_jw_key(&w, "to");
    eb_jw_uint(&w, f->to);
    eb_jw_key(&w, "types");
    if (f->types) {
        eb_jw_arr_open(&w);
        for (size_t i = 0; i < f->ntypes; i++)
            eb_jw_str(&w, f->types[i]);
        eb_jw_arr_close(&w);
    } else {
        eb_jw_null(&w);
    }
    rec_close(ob, &w);
}

int eb_group_replay(eb_group *g, uint64_t from, uint64_t to, char **types, size_t ntypes,
                    uint64_t *requeued, uint64_t *expired, eb_outbox *ob)
{
    uint64_t first = eb_log_first_seq(g->env.events);
    uint64_t durable = eb_log_durable_seq(g->env.events);
    if (from < 1)
        from = 1;
    if (to > durable)
        to = durable;
    *expired = from < first ? (to < first ? to : first) - from : 0;
    *requeued = 0;
    if (to <= from)
        return 0;
    uint64_t start = from < first ? first : from;
    *requeued = count_range(g, start, to, types, ntypes);
    if (*requeued == 0)
        return 0;
    flow *f = replay_flow_new(g, g->next_replay_id, start, to, types, ntypes);
    if (!f)
        return EB_ENOMEM;
    replay_record(g, f, ob);
    g->ctr.replayed += *requeued;
    return eb_buf_failed(&ob->text) ? EB_ENOMEM : 0;
}

/* --- meta replay and snapshots ----------------------------------------------- */

static int cls_of(const eb_json *c)
{
    if (!eb_json_is(c, EB_JSON_STRING) || c->len != 1)
        return -1;
    const char *p = memchr(cls_char, c->str[0], NCLS);
    return p ? (int)(p - cls_char) : -1;
}

static uint64_t jnum(const eb_json *v)
{
    return v && v->type == EB_JSON_NUMBER && (v->flags & EB_JSON_F_INT) && v->i64 >= 0
               ? (uint64_t)v->i64
               : 0;
}

static void apply_ranges(const eb_json *arr, eb_group *g, bool main)
{
    if (!eb_json_is(arr, EB_JSON_ARRAY))
        return;
    for (const eb_json *r = arr->child; r; r = r->next) {
        uint64_t a = jnum(eb_json_at(r, 0)), b = jnum(eb_json_at(r, 1));
        if (main)
            eb_rangeset_add(&g->main.done, a, b);
        else
            replay_done(g, a, b);
    }
}

static void apply_ack(eb_group *g, const eb_json *rec)
{
    apply_ranges(eb_json_get(rec, "m"), g, true);
    apply_ranges(eb_json_get(rec, "r"), g, false);
    const eb_json *d = eb_json_get(rec, "d");
    for (const eb_json *s = eb_json_is(d, EB_JSON_ARRAY) ? d->child : NULL; s; s = s->next)
        dlq_remove(g, jnum(s));
}

static int apply_fail(eb_group *g, const eb_json *rec)
{
    const eb_json *f = eb_json_get(rec, "f");
    for (const eb_json *e = eb_json_is(f, EB_JSON_ARRAY) ? f->child : NULL; e; e = e->next) {
        int cls = cls_of(eb_json_at(e, 0));
        const eb_json *err = eb_json_at(e, 4);
        if (cls < 0 || !eb_json_is(err, EB_JSON_STRING))
            return EB_ECORRUPT;
        uint64_t k = fail_key(cls, jnum(eb_json_at(e, 1)));
        failinfo *fi = eb_imap_get(&g->fails, k);
        if (!fi) {
            if (!(fi = calloc(1, sizeof *fi)) || eb_imap_put(&g->fails, k, fi)) {
                free(fi);
                return EB_ENOMEM;
            }
        }
        fi->fails = (uint32_t)jnum(eb_json_at(e, 2));
        fi->due = jnum(eb_json_at(e, 3));
        set_str(&fi->error, err->str, err->len);
    }
    return 0;
}

static void drop_failinfo(eb_group *g, int cls, uint64_t seq)
{
    failinfo *fi = eb_imap_del(&g->fails, fail_key(cls, seq));
    if (fi) {
        free(fi->error);
        free(fi);
    }
}

static int apply_dead(eb_group *g, const eb_json *rec)
{
    int cls = cls_of(eb_json_get(rec, "c"));
    uint64_t seq = jnum(eb_json_get(rec, "s"));
    const eb_json *p = eb_json_get(rec, "p"), *e = eb_json_get(rec, "e"),
                  *who = eb_json_get(rec, "who");
    if (cls < 0 || !seq || !eb_json_is(e, EB_JSON_STRING) || !eb_json_is(who, EB_JSON_STRING))
        return EB_ECORRUPT;
    drop_failinfo(g, cls, seq);
    dead *d = eb_imap_get(&g->dlq, seq);
    bool fresh = !d;
    if (fresh) {
        eb_buf pl = EB_BUF_INIT;
        eb_event_view v;
        if (!eb_json_is(p, EB_JSON_STRING) || eb_base64_decode(&pl, p->str, p->len) ||
            eb_buf_failed(&pl) || eb_event_decode(pl.data, pl.len, &v)) {
            eb_buf_free(&pl);
            return EB_ECORRUPT;
        }
        if (!(d = calloc(1, sizeof *d))) {
            eb_buf_free(&pl);
            return EB_ENOMEM;
        }
        memcpy(d->id, v.id.ptr, v.id.len);
        d->seq = seq;
        d->len = (uint32_t)pl.len;
        d->payload = eb_buf_steal(&pl, NULL);
    } else if (d->redriven) {
        d->redriven = false;
        g->ndead++;
    }
    d->ts_us = jnum(eb_json_get(rec, "t"));
    d->attempts = (uint32_t)jnum(eb_json_get(rec, "n"));
    d->failed_at = jnum(eb_json_get(rec, "at"));
    set_str(&d->error, e->str, e->len);
    set_str(&d->consumer, who->str, who->len);
    if (fresh && dlq_insert(g, d) != 0) {
        dead_free(d);
        return EB_ENOMEM;
    }
    if (cls == CLS_MAIN)
        eb_rangeset_add(&g->main.done, seq, seq + 1);
    else if (cls == CLS_REPLAY)
        replay_done(g, seq, seq + 1);
    return 0;
}

static void apply_seqs(eb_group *g, const eb_json *rec, bool redrive)
{
    const eb_json *s = eb_json_get(rec, "s");
    for (const eb_json *e = eb_json_is(s, EB_JSON_ARRAY) ? s->child : NULL; e; e = e->next) {
        dead *d = eb_imap_get(&g->dlq, jnum(e));
        if (!d)
            continue;
        if (!redrive) {
            dlq_remove(g, d->seq);
        } else if (!d->redriven) {
            d->redriven = true;
            g->ndead--;
            drop_failinfo(g, CLS_DLQ, d->seq);
        }
    }
}

static int apply_replay(eb_group *g, const eb_json *rec)
{
    const eb_json *t = eb_json_get(rec, "types");
    char *types[EB_GROUP_MAX_TYPES];
    size_t n = 0;
    for (const eb_json *e = eb_json_is(t, EB_JSON_ARRAY) ? t->child : NULL;
         e && n < EB_GROUP_MAX_TYPES; e = e->next)
        if (e->type == EB_JSON_STRING)
            types[n++] = (char *)e->str;
    uint64_t id = jnum(eb_json_get(rec, "id"));
    if (!id)
        return EB_ECORRUPT;
    return replay_flow_new(g, id, jnum(eb_json_get(rec, "from")), jnum(eb_json_get(rec, "to")),
                           types, n)
               ? 0
               : EB_ENOMEM;
}

static void apply_done(eb_group *g, const eb_json *rec)
{
    uint64_t id = jnum(eb_json_get(rec, "flow"));
    flow *f = id ? NULL : &g->main;
    for (flow *r = g->replays; !f && r; r = r->next)
        if (r->id == id)
            f = r;
    const eb_json *arr = eb_json_get(rec, "r");
    for (const eb_json *r = f && eb_json_is(arr, EB_JSON_ARRAY) ? arr->child : NULL; r;
         r = r->next)
        eb_rangeset_add(&f->done, jnum(eb_json_at(r, 0)), jnum(eb_json_at(r, 1)));
}

int eb_group_apply(eb_group *g, uint16_t kind, const eb_json *rec)
{
    switch (kind) {
    case EB_META_ACK:     apply_ack(g, rec); return 0;
    case EB_META_FAIL:    return apply_fail(g, rec);
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
    for (size_t i = 0; i < g->ndlq; i++) {
        dead *e = eb_imap_get(&g->dlq, g->dlq_seqs[i]);
        if (e && e->redriven) {
            e->redriven = false; /* redrive_one counts it again */
            g->ndead++;
            redrive_one(g, e, now);
        }
    }
}

static void done_record(eb_group *g, const flow *f, uint64_t floor, eb_outbox *ob)
{
    eb_rangeset tmp = f->done;
    eb_jw w;
    rec_open(g, ob, EB_META_DONE, &w);
    eb_jw_key(&w, "flow");
    eb_jw_uint(&w, f->id);
    eb_jw_key(&w, "r");
    eb_jw_arr_open(&w);
    for (size_t i = 0; i < tmp.n; i++) {
        if (tmp.r[i].b <= floor)
            continue;
        eb_jw_arr_open(&w);
        eb_jw_uint(&w, tmp.r[i].a > floor ? tmp.r[i].a : floor);
        eb_jw_uint(&w, tmp.r[i].b);
        eb_jw_arr_close(&w);
    }
    eb_jw_arr_close(&w);
    rec_close(ob, &w);
}

/* FAIL entries for live deliveries with failed attempts. */
static void fails_record(eb_group *g)
{
    eb_buf *b = &g->fail_items;
    for (int c = 0; c < NCLS; c++) {
        for (eb_dlv *d = g->lhead[c]; d; d = d->lnext) {
            if (!d->fails)
                continue;
            if (b->len)
                eb_buf_putc(b, ',');
            uint64_t due = d->state == EB_DLV_INFLIGHT ? 0 : d->when;
            eb_buf_printf(b, "[\"%c\",%llu,%u,%llu,", cls_char[c], (unsigned long long)d->seq,
                          d->fails, (unsigned long long)due);
            const char *err = d->last_error ? d->last_error : "";
            eb_json_escape(b, err, strlen(err));
            eb_buf_putc(b, ']');
        }
    }
}

int eb_group_snapshot(eb_group *g, eb_outbox *ob)
{
    /* The caller wrote the GROUP record (config, base = eb_group_base()). */
    uint64_t floor = main_floor(g);
    done_record(g, &g->main, floor, ob);
    for (flow *f = g->replays; f; f = f->next) {
        replay_record(g, f, ob);
        done_record(g, f, 0, ob);
    }
    for (size_t i = 0; i < g->ndlq; i++) {
        dead *e = eb_imap_get(&g->dlq, g->dlq_seqs[i]);
        if (e)
            dead_record(g, e, CLS_DLQ, true, ob);
    }
    dead **v = NULL;
    size_t k = 0;
    if (g->ndlq && (v = malloc(g->ndlq * sizeof *v)))
        for (size_t i = 0; i < g->ndlq; i++) {
            dead *e = eb_imap_get(&g->dlq, g->dlq_seqs[i]);
            if (e && e->redriven)
                v[k++] = e;
        }
    if (k)
        seqs_record(g, EB_META_REDRIVE, v, k, ob);
    free(v);
    /* Gathered acks and fails are flushed by the caller before a snapshot,
     * so fail_items is empty here and holds only the snapshot's entries. */
    eb_rangeset_clear(&g->ack_m);
    eb_rangeset_clear(&g->ack_r);
    eb_buf_reset(&g->ack_d);
    eb_buf_reset(&g->fail_items);
    fails_record(g);
    return eb_group_flush(g, ob);
}
