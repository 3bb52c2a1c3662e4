/* group_flow.c - flows: the walks of a group over the events store (the
 * main flow and each replay). Filling turns matching records into
 * deliveries, lazily and within EB_GROUP_MAX_PENDING; counting finds the
 * lag; a replay adds a flow over a past range. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bus/group_int.h"
#include "eventbus/err.h"

#define FILL_CHUNK 1024 /* records one scan call looks at */

/* Marks seq done in every replay flow that covers it; what a flow had not
 * examined yet leaves its backlog. */
void eb__flow_replay_done(eb_group *g, uint64_t a, uint64_t b)
{
    for (flow *f = g->replays; f; f = f->next) {
        if (!(a < f->to && b > f->from))
            continue;
        uint64_t lo = a > f->from ? a : f->from, hi = b < f->to ? b : f->to;
        uint64_t ahead_lo = lo > f->cursor ? lo : f->cursor;
        uint64_t before = ahead_lo < hi ? eb_rangeset_count(&f->done, ahead_lo, hi) : 0;
        eb_rangeset_add(&f->done, lo, hi);
        uint64_t added = ahead_lo < hi ? eb_rangeset_count(&f->done, ahead_lo, hi) - before : 0;
        f->backlog -= added < f->backlog ? added : f->backlog;
    }
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

/* True if the stored event passes the group's filter (its JSON parsed into
 * the group's scratch document); an event that cannot be read passes. */
static bool passes(eb_group *g, const eb_event_view *v)
{
    if (!g->cfg.filter)
        return true;
    if (!g->fdoc && !(g->fdoc = eb_json_doc_new()))
        return true;
    if (eb_json_parse(g->fdoc, v->json.ptr, v->json.len, NULL, NULL) != 0)
        return true;
    eb_filter_event fe;
    eb_filter_event_of(eb_json_root(g->fdoc), &fe);
    return eb_filter_match(g->cfg.filter, &fe);
}

/* The main flow examined a matching event: it leaves the count of those
 * not examined yet -- the walk's, while one counts below `to` and has
 * counted it (one it has not reached it will skip: below the cursor). */
static void main_examined(eb_group *g, uint64_t seq)
{
    if (g->cnt.on && seq < g->cnt.to) {
        if (seq < g->cnt.next && g->cnt.n)
            g->cnt.n--;
    } else if (g->ahead) {
        g->ahead--;
    }
}

typedef struct fill_ctx {
    eb_group *g;
    flow     *f;
    size_t    want;
    uint64_t  stop;  /* examine seqs below this */
    uint64_t  now;
} fill_ctx;

static int fill_one(void *arg, const eb_store_rec *rec)
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
    if (!flow_matches(g, f, v.type) || !passes(g, &v))
        return 0; /* not for this group: handled, never in its lag */
    int cls = f->id ? CLS_REPLAY : CLS_MAIN;
    if (eb_rangeset_has(&f->done, rec->seq))
        return 0; /* acked or dead-lettered: not in ahead */
    if (!f->id)
        main_examined(g, rec->seq);
    if (f->id && f->backlog)
        f->backlog--;
    if (eb_imap_get(&g->dlvs[cls], rec->seq))
        return 0;
    eb_dlv *d = eb__dlv_new(g, cls, rec->seq, rec->ts_us, f);
    d->cpos = eb_reccache_put(g->env.cache, rec->data, rec->len); /* no copy of its own */
    d->len = rec->len;
    eb__dlv_admit(g, d, v.key, c->now);
    return g->ready >= c->want || g->live >= EB_GROUP_MAX_PENDING;
}

/* Examines one chunk of flow f, below `limit`; true if it moved. */
static bool fill_flow(eb_group *g, flow *f, size_t want, uint64_t durable, uint64_t limit,
                      uint64_t now)
{
    uint64_t stop = f->to < durable ? f->to : durable;
    if (limit < stop)
        stop = limit;
    uint64_t first = eb_store_first_seq(g->env.events);
    if (f->cursor < first) { /* gone to retention before we got there: count it */
        g->ctr.retention_skipped += first - f->cursor;
        f->cursor = first;
        if (!f->id && g->env.recount)
            g->env.recount(g->env.arg, g); /* by the counts, or off the request path */
        else if (!f->id)
            eb_group_count_ahead(g, durable);
    }
    if (f->cursor >= stop)
        return false;
    uint64_t before = f->cursor;
    fill_ctx c = {g, f, want, stop, now};
    eb_store_scan(g->env.events, f->cursor, FILL_CHUNK, fill_one, &c);
    if (f->cursor == before)
        f->cursor = stop; /* nothing readable below stop: should not happen */
    return f->cursor != before;
}

/* Examines events until `want` deliveries are READY, the window is full or
 * every flow has reached the durable head. */
void eb__group_fill(eb_group *g, size_t want, uint64_t durable, uint64_t now)
{
    while (g->ready < want && g->live < EB_GROUP_MAX_PENDING) {
        bool moved = fill_flow(g, &g->main, want, durable, UINT64_MAX, now);
        for (flow *f = g->replays; !moved && f; f = f->next)
            moved = fill_flow(g, f, want, durable, UINT64_MAX, now);
        if (!moved)
            break;
    }
}

/* Examines flow f up to and including seq, within the deliveries a group
 * holds. */
static void examine_flow_to(eb_group *g, flow *f, uint64_t seq, uint64_t durable, uint64_t now)
{
    while (f->cursor <= seq && g->live < EB_GROUP_MAX_PENDING)
        if (!fill_flow(g, f, SIZE_MAX, durable, seq + 1, now))
            break;
}

eb_dlv *eb__flow_examine_to(eb_group *g, int cls, uint64_t seq)
{
    uint64_t durable = eb_store_durable_seq(g->env.events), now = g->env.now_us();
    if (cls == CLS_MAIN)
        examine_flow_to(g, &g->main, seq, durable, now);
    for (flow *f = cls == CLS_REPLAY ? g->replays : NULL; f; f = f->next)
        if (seq >= f->from && seq < f->to && !eb_imap_get(&g->dlvs[cls], seq))
            examine_flow_to(g, f, seq, durable, now);
    return eb_imap_get(&g->dlvs[cls], seq);
}

void eb__flow_init(flow *f, uint64_t id, uint64_t from, uint64_t to)
{
    memset(f, 0, sizeof *f);
    f->id = id;
    f->from = f->cursor = from;
    f->to = to;
    eb_rangeset_init(&f->done);
}

void eb__flow_free(flow *f)
{
    for (size_t i = 0; i < f->ntypes; i++)
        free(f->types[i]);
    free(f->types);
    eb_rangeset_free(&f->done);
}

typedef struct count_ctx {
    eb_group          *g;
    uint64_t           stop, next, n;
    char             **types; /* replay subset or NULL */
    size_t             ntypes;
    const eb_rangeset *skip;  /* seqs not to count (done), or NULL */
} count_ctx;

static int count_one(void *arg, const eb_store_rec *rec)
{
    count_ctx *c = arg;
    if (rec->seq >= c->stop)
        return 1;
    c->next = rec->seq + 1;
    if (c->g->env.count_reads)
        (*c->g->env.count_reads)++;
    eb_event_view v;
    if (rec->type != EB_REC_EVENT || eb_event_decode(rec->data, rec->len, &v) != 0)
        return 0;
    flow tmp = {.types = c->types, .ntypes = c->ntypes};
    if (flow_matches(c->g, &tmp, v.type) && !(c->skip && eb_rangeset_has(c->skip, rec->seq)) &&
        passes(c->g, &v))
        c->n++;
    return 0;
}

/* Matching events in [from, stop), but those in skip. */
static uint64_t count_range(eb_group *g, uint64_t from, uint64_t stop, char **types,
                            size_t ntypes, const eb_rangeset *skip)
{
    count_ctx c = {g, stop, from, 0, ntypes ? types : NULL, ntypes, skip};
    while (c.next < stop) {
        uint64_t before = c.next;
        if (eb_store_scan(g->env.events, c.next, 65536, count_one, &c) != 0 || c.next == before)
            break;
    }
    return c.n;
}

void eb_group_set_ahead(eb_group *g, uint64_t matching, uint64_t head)
{
    /* The main flow's done set holds the seqs finished above the cursor
     * (acks out of order, dead letters) as read back at startup. */
    uint64_t done = eb_rangeset_count(&g->main.done, g->main.cursor, head);
    g->ahead = matching > done ? matching - done : 0;
}

void eb_group_set_ahead_exact(eb_group *g, uint64_t matching, uint64_t head)
{
    /* The done set is a window of what was finished out of order (not the
     * log): its records are read, and only those the config matches now
     * are taken off (after a change of types, others may be in it). */
    uint64_t done = 0;
    const eb_rangeset *d = &g->main.done;
    for (size_t i = 0; i < d->n; i++) {
        uint64_t a = d->r[i].a < g->main.cursor ? g->main.cursor : d->r[i].a;
        uint64_t b = d->r[i].b < head ? d->r[i].b : head;
        if (a < b)
            done += count_range(g, a, b, NULL, 0, NULL);
    }
    g->ahead = matching > done ? matching - done : 0;
}

bool eb_group_counts_seq(const eb_group *g, uint64_t seq, eb_str type)
{
    return seq >= g->main.cursor && eb_group_cfg_matches(&g->cfg, type.ptr, type.len) &&
           !eb_rangeset_has(&g->main.done, seq);
}

void eb_group_set_counted(eb_group *g, uint64_t ahead)
{
    g->ahead = ahead;
}

void eb_group_count_begin(eb_group *g, uint64_t to)
{
    g->cnt.on = true;
    g->cnt.to = to;
    g->cnt.next = g->main.cursor;
    g->cnt.n = 0;
    g->ahead = 0; /* from now on: what is published at or past `to` */
}

bool eb_group_counting(const eb_group *g)
{
    return g->cnt.on;
}

uint64_t eb_group_count_next(const eb_group *g)
{
    return g->cnt.next;
}

uint64_t eb_group_count_to(const eb_group *g)
{
    return g->cnt.to;
}

void eb_group_count_seen(eb_group *g, uint64_t seq, eb_str type, const eb_filter_event *fe)
{
    if (g->cnt.on && seq >= g->cnt.next && seq < g->cnt.to && eb_group_counts_seq(g, seq, type) &&
        (!fe || eb_group_cfg_passes(&g->cfg, fe)))
        g->cnt.n++;
}

bool eb_group_count_moved(eb_group *g, uint64_t upto)
{
    if (!g->cnt.on)
        return false;
    if (upto > g->cnt.next)
        g->cnt.next = upto < g->cnt.to ? upto : g->cnt.to;
    if (g->cnt.next < g->cnt.to)
        return false;
    g->ahead += g->cnt.n;
    g->cnt.on = false;
    g->cnt.n = 0;
    return true;
}

void eb_group_count_stop(eb_group *g)
{
    g->cnt.on = false;
    g->cnt.n = 0;
    g->ahead = 0;
}

void eb__flow_count_backlog(eb_group *g, flow *f)
{
    f->backlog = count_range(g, f->cursor, f->to, f->types, f->ntypes, &f->done);
}

int eb_group_count_ahead(eb_group *g, uint64_t head)
{
    /* Past the cursor, the seqs acked or dead-lettered before a restart
     * (main.done) are not lag: the cursor only moves past them later. */
    g->ahead = count_range(g, g->main.cursor, head, NULL, 0, &g->main.done);
    return 0;
}

uint64_t eb_group_cursor(const eb_group *g)
{
    return g->main.cursor;
}

bool eb_group_has_filter(const eb_group *g)
{
    return g->cfg.filter != NULL;
}

void eb_group_published(eb_group *g, uint64_t count, const eb_filter_event *fe)
{
    if (!fe || eb_group_cfg_passes(&g->cfg, fe))
        g->ahead += count;
}

bool eb_group_has_ready(eb_group *g, uint64_t durable)
{
    if (g->paused)
        return false;
    if (g->ready == 0 && g->ahead == 0 && !g->cnt.on && !g->replays)
        return false; /* nothing of its types published: a wake-up costs O(1) */
    uint64_t now = g->env.now_us();
    if (g->ready == 0 && g->live < EB_GROUP_MAX_PENDING)
        eb__group_fill(g, 1, durable, now);
    /* flow control: the group's own (max_in_flight, rate_limit) and the
     * leases of all groups (--max-in-flight-total) */
    return g->ready > 0 && eb__group_allowance(g, 1, now) > 0 &&
           *g->env.leases < g->env.max_leases;
}

/* Drops replay flows that are done: walked to their end, nothing alive. */
void eb__group_reap_flows(eb_group *g)
{
    flow **pp = &g->replays;
    while (*pp) {
        flow *f = *pp;
        if (f->cursor >= f->to && f->live == 0) {
            *pp = f->next;
            eb__flow_free(f);
            free(f);
        } else {
            pp = &f->next;
        }
    }
}

flow *eb__flow_replay_new(eb_group *g, uint64_t id, uint64_t from, uint64_t to, char **types,
                             size_t ntypes)
{
    flow *f = eb_xmalloc(sizeof *f);
    eb__flow_init(f, id, from, to);
    if (ntypes) {
        f->types = eb_xcalloc(ntypes, sizeof *f->types);
        for (size_t i = 0; i < ntypes; i++)
            f->types[i] = eb_xstrdup(types[i]);
        f->ntypes = ntypes;
    }
    flow **pp = &g->replays; /* keep creation order */
    while (*pp)
        pp = &(*pp)->next;
    *pp = f;
    if (id >= g->next_replay_id)
        g->next_replay_id = id + 1;
    return f;
}

void eb_group_replay(eb_group *g, uint64_t from, uint64_t to, char **types, size_t ntypes,
                     uint64_t *requeued, uint64_t *expired, eb_outbox *ob)
{
    uint64_t first = eb_store_first_seq(g->env.events);
    uint64_t durable = eb_store_durable_seq(g->env.events);
    if (from < 1)
        from = 1;
    if (to > durable)
        to = durable;
    *expired = from < first ? (to < first ? to : first) - from : 0;
    *requeued = 0;
    if (to <= from)
        return;
    uint64_t start = from < first ? first : from;
    if (!g->env.count_matching ||
        !g->env.count_matching(g->env.arg, g, start, to, types, ntypes, requeued))
        *requeued = count_range(g, start, to, types, ntypes, NULL); /* a filter: read */
    if (*requeued == 0 || !ob) /* nothing to do, or a dry run */
        return;
    flow *f = eb__flow_replay_new(g, g->next_replay_id, start, to, types, ntypes);
    f->backlog = *requeued;
    eb__rec_replay(g, f, ob);
    g->ctr.replayed += *requeued;
}
