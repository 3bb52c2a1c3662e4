/* lag.c - counting every group's lag at startup, whatever the number of
 * groups and (mostly) the log's length.
 *
 * Each group needs the number of events of its types in [its cursor, head).
 * The distinct cursors cut the range into intervals; for each interval the
 * events are counted per type (a list of (interval, count) per type,
 * appended in order) by eb__bus_count_types: the events store's own counts
 * of the whole sealed segments inside it (the log engine's segment
 * summaries), and a walk of the rest -- the part of the cursor's segment
 * past it and the active segment. Then for each type the groups it matches
 * (match.h) each add the events of that type in the intervals at or past
 * their own cursor (a suffix sum and a binary search). Cost: one decode per
 * event walked, plus O(types x matching groups x log) -- never groups x
 * events. Memory: one entry per (type, interval) that holds an event,
 * freed at the end.
 *
 * One group (eb__bus_count_group, at creation or a change of its config):
 * the same counts by type over [its cursor, head) -- the summaries, the
 * tail's chunks (tail.h) and at most the partial chunks and the rest of
 * the cursor's segment walked -- added up for the types the group matches.
 * A group with a content filter is counted by the walk of lagwalk.c (its
 * filter looks at each event), off the request path and shared by every
 * filtered group, at creation, a change of its config and startup alike.
 *
 * A replay's request (eb__bus_count_matching): the events of its range the
 * group (and the replay's types) match, from the same counts by type. */
#include <stdlib.h>
#include <string.h>

#include "bus/bus_int.h"
#include "eventbus/err.h"
#include "util/xmalloc.h"

typedef struct tcount {
    size_t n, cap;
    struct { size_t j; uint64_t c; } e[]; /* interval j, events of the type in it */
} tcount;

typedef struct walk {
    eb_map    types;   /* type -> tcount* */
    uint64_t *cuts;    /* distinct cursors, ascending */
    size_t    ncuts, j; /* j: the interval being counted */
} walk;

static int u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Adds n events of type to the current interval (intervals come in order). */
static void count_type(void *arg, const char *type, size_t len, uint64_t n)
{
    walk *w = arg;
    tcount *t = eb_map_get(&w->types, type, len);
    if (t && t->n && t->e[t->n - 1].j == w->j) {
        t->e[t->n - 1].c += n;
        return;
    }
    if (!t || t->n == t->cap) {
        size_t cap = t ? t->cap * 2 : 4;
        tcount *nt = eb_xrealloc(t, sizeof *nt + cap * sizeof nt->e[0]);
        eb_map_put(&w->types, type, len, nt, NULL);
        if (!t)
            nt->n = 0;
        nt->cap = cap;
        t = nt;
    }
    t->e[t->n].j = w->j;
    t->e[t->n].c = n;
    t->n++;
}

/* Index of cursor c among the cuts (it is one of them). */
static size_t cut_of(const walk *w, uint64_t c)
{
    uint64_t *p = bsearch(&c, w->cuts, w->ncuts, sizeof *w->cuts, u64_cmp);
    return p ? (size_t)(p - w->cuts) : w->ncuts;
}

/* Events of type list t at or past interval j (t's counts are suffix sums). */
static uint64_t past(const tcount *t, size_t j)
{
    size_t lo = 0, hi = t->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (t->e[mid].j < j)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < t->n ? t->e[lo].c : 0;
}

static void add_up(eb_bus *bus, walk *w, uint64_t *matching, eb_group **gs, size_t ng)
{
    size_t it = 0;
    const eb_map_slot *s;
    while ((s = eb_map_next(&w->types, &it))) {
        tcount *t = s->val;
        for (size_t i = t->n - 1; i-- > 0;)
            t->e[i].c += t->e[i + 1].c;
        void *const *m;
        size_t nm = eb_matcher_match(&bus->grp.matcher, s->key, s->klen, &m);
        for (size_t k = 0; k < nm; k++) {
            eb_group *g = m[k];
            uint64_t c = eb_group_cursor(g);
            size_t j = cut_of(w, c);
            if (j == w->ncuts)
                continue; /* cursor at or past head: nothing ahead */
            /* gs is sorted by pointer: find g's slot */
            size_t lo = 0, hi = ng;
            while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if ((uintptr_t)gs[mid] < (uintptr_t)g)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            if (lo < ng && gs[lo] == g)
                matching[lo] += past(t, j);
        }
    }
}

int eb__bus_count_lags(eb_bus *bus, uint64_t head)
{
    size_t ng = bus->grp.by_name.len, it = 0, i = 0;
    if (ng == 0)
        return 0;
    eb_group **gs = eb_xmalloc(ng * sizeof *gs);
    uint64_t *matching = eb_xcalloc(ng, sizeof *matching);
    walk w = {.cuts = eb_xmalloc(ng * sizeof *w.cuts)};
    eb_map_init(&w.types);
    int rc = 0;
    eb_group *g;
    while ((g = eb__bus_group_next(bus, &it))) {
        gs[i] = g;
        uint64_t c = eb_group_cursor(g);
        if (c < head && !eb_group_has_filter(g)) /* those walk (count_filtered) */
            w.cuts[w.ncuts++] = c;
        i++;
    }
    if (w.ncuts) {
        qsort(gs, ng, sizeof *gs, eb_matcher_ptr_cmp);
        qsort(w.cuts, w.ncuts, sizeof *w.cuts, u64_cmp);
        size_t u = 1;
        for (size_t k = 1; k < w.ncuts; k++)
            if (w.cuts[k] != w.cuts[u - 1])
                w.cuts[u++] = w.cuts[k];
        w.ncuts = u;
        for (w.j = 0; w.j < w.ncuts && rc == 0; w.j++) {
            uint64_t to = w.j + 1 < w.ncuts ? w.cuts[w.j + 1] : head;
            rc = eb__bus_count_types(bus, w.cuts[w.j], to, count_type, &w);
        }
        if (rc == 0)
            add_up(bus, &w, matching, gs, ng);
    }
    if (rc == 0) {
        for (size_t k = 0; k < ng; k++)
            if (!eb_group_has_filter(gs[k]))
                eb_group_set_ahead(gs[k], matching[k], head);
        for (size_t k = 0; k < ng; k++) /* their filters look at each event: */
            if (eb_group_has_filter(gs[k]))
                eb__lagwalk_add(bus, gs[k]); /* one walk for all, off the request path */
    }
    size_t ti = 0;
    const eb_map_slot *s;
    while ((s = eb_map_next(&w.types, &ti)))
        free(s->val);
    eb_map_free(&w.types);
    free(w.cuts);
    free(matching);
    free(gs);
    return rc;
}

/* --- one group (created or reconfigured) -------------------------------------- */

typedef struct one_ctx {
    eb_bus  *bus;
    eb_group *g;
    uint64_t n;
} one_ctx;

static void count_one_type(void *arg, const char *type, size_t len, uint64_t n)
{
    one_ctx *c = arg;
    void *const *m;
    size_t nm = eb_matcher_match(&c->bus->grp.matcher, type, len, &m);
    void *key = c->g;
    if (nm && bsearch(&key, m, nm, sizeof *m, eb_matcher_ptr_cmp))
        c->n += n;
}

int eb__bus_count_group(eb_bus *bus, eb_group *g, uint64_t head)
{
    if (eb_group_has_filter(g)) { /* its filter looks at each event: the walk */
        eb__lagwalk_add(bus, g);
        return 0;
    }
    eb__lagwalk_remove(bus, g); /* a count under way for an earlier filter */
    one_ctx c = {bus, g, 0};
    uint64_t from = eb_group_cursor(g);
    int rc = from < head ? eb__bus_count_types(bus, from, head, count_one_type, &c) : 0;
    if (rc == 0)
        eb_group_set_ahead_exact(g, c.n, head);
    return rc;
}

/* --- a replay's range (its request) -------------------------------------------- */

typedef struct match_ctx {
    const eb_group_cfg *cfg;
    char              **types; /* the replay's subset, or NULL */
    size_t              ntypes;
    uint64_t            n;
} match_ctx;

static void count_match_type(void *arg, const char *type, size_t len, uint64_t n)
{
    match_ctx *c = arg;
    if (!eb_group_cfg_matches(c->cfg, type, len))
        return;
    bool in = !c->types;
    for (size_t i = 0; !in && i < c->ntypes; i++)
        in = eb_group_type_match(c->types[i], type, len);
    if (in)
        c->n += n;
}

bool eb__bus_count_matching(void *arg, eb_group *g, uint64_t from, uint64_t to, char **types,
                            size_t ntypes, uint64_t *n)
{
    eb_bus *bus = arg;
    if (eb_group_has_filter(g)) /* its filter looks at each event */
        return false;
    match_ctx c = {eb_group_config(g), ntypes ? types : NULL, ntypes, 0};
    if (from < to && eb__bus_count_types(bus, from, to, count_match_type, &c) != 0)
        return false;
    *n = c.n;
    return true;
}
