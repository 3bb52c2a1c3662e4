/* group.c - the consumer-group engine (model in group.h, insides in
 * group_int.h): the group's lifecycle, pulls (leases), the timer tick
 * (expiries), consumers and info. Settling by delivery id is in
 * group_settle.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus/group_int.h"
#include "eventbus/err.h"

const char eb__cls_char[NCLS] = {'m', 'r', 'd'};

#define CONSUMER_IDLE_US (3600ull * 1000000u) /* forget consumers idle this long */
#define SWEEP_EVERY_US (10ull * 1000000u)

/* --- the group ---------------------------------------------------------------- */

eb_group *eb_group_new(const char *name, eb_group_cfg *cfg, uint64_t base,
                       const eb_group_env *env)
{
    eb_group *g = eb_xcalloc(1, sizeof *g);
    g->name = eb_xstrdup(name);
    g->cfg = *cfg;
    memset(cfg, 0, sizeof *cfg);
    g->env = *env;
    eb__flow_init(&g->main, 0, base, UINT64_MAX);
    g->next_replay_id = 1;
    for (int i = 0; i < NCLS; i++)
        eb_imap_init(&g->dlvs[i]);
    eb_map_init(&g->keys[0]);
    eb_map_init(&g->keys[1]);
    eb_imap_init(&g->dlq);
    eb_map_init(&g->dlq_ids);
    eb_map_init(&g->consumers);
    eb_imap_init(&g->fails);
    eb_imap_init(&g->pend);
    static uint64_t uids; /* loop thread only */
    g->uid = ++uids;
    eb_heap_init(&g->timers);
    eb_rangeset_init(&g->ack_m);
    eb_rangeset_init(&g->ack_r);
    eb_buf_init(&g->ack_d);
    eb_buf_init(&g->fail_items);
    eb_buf_init(&g->lease_items);
    g->rng = eb_hash(name, strlen(name)) | 1u;
    g->rng ^= env->now_us() << 1;
    return g;
}

/* Frees every value of m (plain allocations) and m. */
static void free_map_vals(eb_map *m)
{
    size_t it = 0;
    const eb_map_slot *s;
    while ((s = eb_map_next(m, &it)))
        free(s->val);
    eb_map_free(m);
}

/* Frees the deliveries, the dead letters and the failures read back. */
static void free_items(eb_group *g)
{
    for (int c = 0; c < NCLS; c++) {
        for (eb_dlv *d = g->lhead[c], *nx; d; d = nx) {
            nx = d->lnext;
            eb__dlv_free(d);
        }
        eb_imap_free(&g->dlvs[c]);
    }
    size_t it = 0;
    const eb_imap_slot *is;
    while ((is = eb_imap_next(&g->dlq, &it)))
        eb__dead_free(is->val);
    it = 0;
    while ((is = eb_imap_next(&g->fails, &it)))
        eb__failinfo_free(is->val);
    eb_imap_free(&g->dlq);
    eb_imap_free(&g->fails);
    eb_json_doc_free(g->fdoc);
    eb_map_free(&g->dlq_ids);
    free(g->dlq_seqs);
}

void eb_group_free(eb_group *g)
{
    if (!g)
        return;
    *g->env.leases -= g->in_flight; /* its leases go with it */
    eb__settle_free(g);
    free_items(g);
    free_map_vals(&g->keys[0]);
    free_map_vals(&g->keys[1]);
    free_map_vals(&g->consumers);
    eb_heap_free(&g->timers);
    eb__flow_free(&g->main);
    for (flow *f = g->replays, *nx; f; f = nx) {
        nx = f->next;
        eb__flow_free(f);
        free(f);
    }
    eb_rangeset_free(&g->ack_m);
    eb_rangeset_free(&g->ack_r);
    eb_buf_free(&g->ack_d);
    eb_buf_free(&g->fail_items);
    eb_buf_free(&g->lease_items);
    eb_group_cfg_free(&g->cfg);
    free(g->name);
    free(g);
}

const char *eb_group_name(const eb_group *g) { return g->name; }
uint64_t eb_group_uid(const eb_group *g) { return g->uid; }
const eb_group_cfg *eb_group_config(const eb_group *g) { return &g->cfg; }
bool eb_group_paused(const eb_group *g) { return g->paused; }
void eb_group_set_paused(eb_group *g, bool paused) { g->paused = paused; }

uint64_t eb_group_base(const eb_group *g) { return eb__group_floor(g); }

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

/* --- pull ---------------------------------------------------------------------- */

static eb_consumer *consumer_get(eb_group *g, const char *name, size_t n)
{
    eb_consumer *c = eb_map_get(&g->consumers, name, n);
    if (c)
        return c;
    c = eb_xcalloc(1, sizeof *c + n + 1);
    memcpy(c->name, name, n);
    eb_map_put(&g->consumers, name, n, c, NULL);
    return c;
}

/* Writes the decimal digits of v at p; returns the end. */
static char *put_u64(char *p, uint64_t v)
{
    char t[20];
    int n = 0;
    do
        t[n++] = (char)('0' + v % 10);
    while ((v /= 10));
    while (n)
        *p++ = t[--n];
    return p;
}

/* Describes d for the pull's caller: "<class><seq>.<attempt>" and views. */
static void describe(const eb_dlv *d, eb_delivery *o)
{
    o->seq = d->seq;
    o->ts_us = d->ts_us;
    o->event = NULL; /* set by eb_group_pull once every event is copied */
    o->len = d->len;
    o->attempt = d->attempt;
    char *p = o->id;
    *p++ = eb__cls_char[d->cls];
    p = put_u64(p, d->seq);
    *p++ = '.';
    p = put_u64(p, d->attempt);
    *p = '\0';
}

/* Tops up the rate_limit bucket: rate tokens a second, one second's worth
 * at most (and at least one, so a rate under 1/s still delivers). */
static void refill(eb_group *g, uint64_t now)
{
    double cap = g->cfg.rate_limit < 1 ? 1 : g->cfg.rate_limit;
    if (!g->refill_us || now < g->refill_us)
        g->tokens = cap;
    else
        g->tokens += (double)(now - g->refill_us) / 1e6 * g->cfg.rate_limit;
    if (g->tokens > cap)
        g->tokens = cap;
    g->refill_us = now;
}

void eb_group_bucket_start(eb_group *g, uint64_t now)
{
    g->tokens = 0;
    g->refill_us = now ? now : 1;
}

size_t eb__group_allowance(eb_group *g, size_t max, uint64_t now)
{
    size_t n = max;
    if (g->cfg.max_in_flight) {
        size_t room = g->in_flight >= g->cfg.max_in_flight ? 0 : g->cfg.max_in_flight - g->in_flight;
        n = room < n ? room : n;
    }
    if (g->cfg.rate_limit > 0) {
        refill(g, now);
        n = g->tokens < (double)n ? (size_t)g->tokens : n;
    }
    return n;
}

size_t eb_group_pull(eb_group *g, const char *consumer, size_t clen, size_t max, uint64_t durable,
                  eb_delivery *out, uint64_t *deadline_us, eb_buf *events)
{
    eb_buf_reset(events);
    uint64_t now = g->env.now_us();
    eb_consumer *c = consumer_get(g, consumer, clen);
    c->last_pull_us = now;
    if (g->paused)
        return 0;
    size_t allow = eb__group_allowance(g, max, now);
    if (allow < max) {
        if (g->ready < max)
            eb__group_fill(g, max, durable, now);
        if (g->ready > allow)
            g->ctr.throttled++;
        max = allow;
    } else if (g->ready < max) {
        eb__group_fill(g, max, durable, now);
    }
    size_t n = 0;
    uint64_t deadline = now + (uint64_t)g->cfg.ack_timeout_ms * 1000u;
    *deadline_us = deadline;
    uint64_t budget = *g->env.leases < g->env.max_leases ? g->env.max_leases - *g->env.leases : 0;
    if (max > budget)
        max = (size_t)budget; /* the global in-flight budget is spent */
    while (n < max && g->rq_head) {
        eb_dlv *d = g->rq_head;
        g->rq_head = d->next;
        if (!g->rq_head)
            g->rq_tail = NULL;
        g->ready--;
        d->next = NULL;
        if (eb__dlv_event(g, d, events) != 0) {
            eb__dlv_gone(g, d, now);
            continue;
        }
        d->state = EB_DLV_INFLIGHT;
        d->attempt++;
        d->tm.key = deadline;
        d->consumer = c;
        c->in_flight++;
        g->in_flight++;
        (*g->env.leases)++;
        eb_heap_push(&g->timers, &d->tm);
        eb__rec_lease_gather(g, d->cls, d->seq, d->attempt, deadline);
        describe(d, &out[n]);
        g->ctr.delivered++;
        if (d->attempt > 1)
            g->ctr.redelivered++;
        n++;
    }
    if (g->cfg.rate_limit > 0)
        g->tokens -= (double)n;
    size_t off = 0; /* the events, back to back in `events`, in out's order */
    for (size_t i = 0; i < n; i++) {
        out[i].event = events->data + off;
        off += out[i].len;
    }
    return n;
}

/* Forgets consumers that hold nothing and have not pulled for an hour, so
 * the table does not grow with every name ever seen. */
static void sweep_consumers(eb_group *g, uint64_t now)
{
    eb_consumer **idle = eb_xmalloc(g->consumers.len * sizeof *idle);
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

bool eb_group_due(const eb_group *g, uint64_t now)
{
    eb_heap_node *top = eb_heap_min(&g->timers);
    return (top && top->key <= now) || g->main.done.n || g->replays ||
           (g->consumers.len && now - g->last_sweep_us >= SWEEP_EVERY_US) || g->ack_m.n ||
           g->ack_r.n || g->ack_d.len || g->fail_items.len || g->lrun.n || g->lease_items.len;
}

uint64_t eb_group_next_due(const eb_group *g)
{
    eb_heap_node *top = eb_heap_min(&g->timers);
    return top ? top->key : 0;
}

void eb_group_tick(eb_group *g, eb_outbox *ob)
{
    uint64_t now = g->env.now_us();
    eb_heap_node *top;
    while ((top = eb_heap_min(&g->timers)) && top->key <= now) {
        eb_dlv *d = eb__dlv_of(top);
        if (d->state == EB_DLV_INFLIGHT) {
            g->ctr.expired++;
            eb__dlv_fail(g, d, "ack deadline exceeded", now + eb__backoff_us(g, d->fails + 1),
                         d->fails + 1 >= g->cfg.max_attempts, now, ob);
        } else {
            eb_heap_remove(&g->timers, &d->tm);
            g->retry--;
            eb__dlv_ready(g, d);
        }
    }
    eb_rangeset_trim_below(&g->main.done, eb__group_floor(g));
    eb__group_reap_flows(g);
    if (now - g->last_sweep_us >= SWEEP_EVERY_US) {
        g->last_sweep_us = now;
        sweep_consumers(g, now);
    }
}

/* --- info -------------------------------------------------------------------- */

static uint64_t oldest_live(const eb_group *g)
{
    uint64_t oldest = 0;
    for (int c = 0; c < NCLS; c++)
        if (g->lhead[c] && (!oldest || g->lhead[c]->ts_us < oldest))
            oldest = g->lhead[c]->ts_us;
    return oldest;
}

void eb_group_examine_next(eb_group *g, uint64_t durable)
{
    if ((g->ahead || g->cnt.n) && !oldest_live(g)) /* not examined yet: the next one is the oldest */
        eb__group_fill(g, 1, durable, g->env.now_us());
}

void eb_group_info_get(const eb_group *g, eb_group_info *o)
{
    memset(o, 0, sizeof *o);
    o->name = g->name;
    o->cfg = &g->cfg;
    o->paused = g->paused;
    o->in_flight = g->in_flight;
    o->retry_scheduled = g->retry;
    o->blocked = g->blocked;
    o->dead_letters = g->ndead;
    uint64_t owed = g->ahead + g->cnt.n; /* not examined yet: past the cursor (what a
                                             * count under way found so far), or owed by a replay */
    for (const flow *f = g->replays; f; f = f->next)
        owed += f->backlog;
    o->lag = owed + g->live;
    /* each one not examined yet waits for a pull too (examined lazily, at a
     * pull): lag = ready + in_flight + retry_scheduled + blocked */
    o->ready = g->ready + owed;
    o->oldest_unacked_us = oldest_live(g);
    o->cursor = g->main.cursor;
    o->lag_counting = g->cnt.on;
    o->counters = g->ctr;
}

void eb_group_consumers_each(const eb_group *g, eb_consumer_fn fn, void *arg)
{
    size_t it = 0;
    const eb_map_slot *sl;
    while ((sl = eb_map_next(&g->consumers, &it))) {
        const eb_consumer *c = sl->val;
        eb_consumer_info ci = {c->name, c->last_pull_us, c->in_flight};
        fn(arg, &ci);
    }
}
