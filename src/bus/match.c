/* match.c - the type -> groups index (match.h): a map from each pattern to
 * the groups that listed it (with each group's place in the list, so adding
 * and removing one is O(1) whatever the number of groups), and a per-type
 * cache of the answers. */
#include <stdlib.h>
#include <string.h>

#include "bus/match.h"
#include "bus/subject_match.h"
#include "util/imap.h"
#include "util/xmalloc.h"

typedef struct eb__mlist {
    eb_imap at; /* group -> its index in g, plus 1 (pattern lists only) */
    size_t  n, cap;
    void   *g[];
} eb__mlist;

static uint64_t key_of(const void *group)
{
    return (uint64_t)(uintptr_t)group;
}

static void mlist_free(eb__mlist *l)
{
    if (l) {
        eb_imap_free(&l->at);
        free(l);
    }
}

void eb_matcher_init(eb_matcher *m)
{
    memset(m, 0, sizeof *m);
    eb_map_init(&m->pats);
    eb_map_init(&m->cache);
}

static void free_lists(eb_map *map)
{
    size_t it = 0;
    const eb_map_slot *s;
    while ((s = eb_map_next(map, &it)))
        mlist_free(s->val);
    eb_map_free(map);
    eb_map_init(map);
}

static void cache_clear(eb_matcher *m)
{
    if (m->cache.len)
        free_lists(&m->cache);
}

void eb_matcher_clear(eb_matcher *m)
{
    free_lists(&m->pats);
    cache_clear(m);
}

void eb_matcher_free(eb_matcher *m)
{
    eb_matcher_clear(m);
    eb_map_free(&m->pats);
    eb_map_free(&m->cache);
    free(m->scratch);
    memset(m, 0, sizeof *m);
}

void eb_matcher_add(eb_matcher *m, void *group, const char *pattern)
{
    size_t pl = strlen(pattern);
    eb__mlist *l = eb_map_get(&m->pats, pattern, pl);
    if (l && eb_imap_get(&l->at, key_of(group)))
        return;
    if (!l || l->n == l->cap) {
        size_t cap = l ? l->cap * 2 : 2;
        eb__mlist *nl = eb_xrealloc(l, sizeof *nl + cap * sizeof nl->g[0]);
        if (!l) {
            nl->n = 0;
            eb_imap_init(&nl->at);
        }
        nl->cap = cap;
        eb_map_put(&m->pats, pattern, pl, nl, NULL);
        l = nl;
    }
    l->g[l->n++] = group;
    eb_imap_put(&l->at, key_of(group), (void *)(uintptr_t)l->n);
    cache_clear(m);
}

void eb_matcher_remove(eb_matcher *m, void *group, const char *pattern)
{
    size_t pl = strlen(pattern);
    eb__mlist *l = eb_map_get(&m->pats, pattern, pl);
    if (!l)
        return;
    uintptr_t at = (uintptr_t)eb_imap_del(&l->at, key_of(group));
    if (!at)
        return;
    void *last = l->g[--l->n];
    if (at - 1 != l->n) { /* the last one takes its place */
        l->g[at - 1] = last;
        eb_imap_put(&l->at, key_of(last), (void *)at);
    }
    if (l->n == 0)
        mlist_free(eb_map_del(&m->pats, pattern, pl));
    cache_clear(m);
}

/* Appends pattern key's groups to the scratch answer. */
static void gather(eb_matcher *m, size_t *k, const char *key, size_t kl)
{
    eb__mlist *l = eb_map_get(&m->pats, key, kl);
    if (!l || !l->n)
        return;
    if (*k + l->n > m->scap) {
        size_t cap = m->scap ? m->scap : 16;
        while (cap < *k + l->n)
            cap *= 2;
        m->scratch = eb_xrealloc(m->scratch, cap * sizeof *m->scratch);
        m->scap = cap;
    }
    memcpy(m->scratch + *k, l->g, l->n * sizeof l->g[0]);
    *k += l->n;
}

int eb_matcher_ptr_cmp(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t) * (void *const *)a, y = (uintptr_t) * (void *const *)b;
    return x < y ? -1 : x > y;
}

size_t eb_matcher_match(eb_matcher *m, const char *t, size_t n, void *const **out)
{
    static void *const none[1];
    *out = none;
    eb__mlist *c = eb_map_get(&m->cache, t, n);
    if (c) {
        *out = c->g;
        return c->n;
    }
    size_t k = 0;
    gather(m, &k, t, n); /* the groups that named the type itself */
    size_t it = 0;
    const eb_map_slot *p;
    while ((p = eb_map_next(&m->pats, &it))) /* patterns: once per type, then cached */
        if (eb_subject_has_wildcard(p->key) && eb_subject_match(p->key, t, n))
            gather(m, &k, p->key, p->klen);
    if (k > 1) { /* a group listed under two matching patterns counts once */
        qsort(m->scratch, k, sizeof m->scratch[0], eb_matcher_ptr_cmp);
        size_t u = 1;
        for (size_t i = 1; i < k; i++)
            if (m->scratch[i] != m->scratch[u - 1])
                m->scratch[u++] = m->scratch[i];
        k = u;
    }
    if (m->cache.len >= EB_MATCHER_CACHE)
        cache_clear(m);
    c = eb_xmalloc(sizeof *c + (k ? k : 1) * sizeof c->g[0]);
    eb_imap_init(&c->at); /* answers are not indexed */
    c->n = c->cap = k;
    if (k) /* scratch is NULL until a type first matches a group */
        memcpy(c->g, m->scratch, k * sizeof c->g[0]);
    eb_map_put(&m->cache, t, n, c, NULL);
    *out = c->g;
    return k;
}
