/* keyidx.c - per-key streams and the id lookup (see keyidx.h). */
#include "store/keyidx.h"
#include "util/xmalloc.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "eventbus/err.h"

/* One key's stream: versions base .. base + n - 1 at seqs[0 .. n-1]. */
typedef struct eb_keystream {
    uint64_t  base;
    size_t    n, cap;
    uint64_t *seqs;
} eb_keystream;

void eb__keyidx_init(eb_keyidx *x)
{
    memset(x, 0, sizeof *x);
    eb_map_init(&x->keys);
    x->gens = eb_xcalloc(1, sizeof *x->gens); /* zeroed: empty maps */
    x->ngens = 1;
}

static void gen_free(eb__keyidx_gen *g)
{
    eb_imap_free(&g->ids);
    eb_imap_free(&g->srcids);
    eb_imap_free(&g->ids_older);
    eb_imap_free(&g->srcids_older);
}

void eb__keyidx_free(eb_keyidx *x)
{
    size_t it = 0;
    const eb_map_slot *s;
    while ((s = eb_map_next(&x->keys, &it))) {
        eb_keystream *ks = s->val;
        free(ks->seqs);
        free(ks);
    }
    eb_map_free(&x->keys);
    for (size_t i = 0; i < x->ngens; i++)
        gen_free(&x->gens[i]);
    free(x->gens);
    free(x->pend);
}

uint64_t eb__keyidx_version(const eb_keyidx *x, const char *key, size_t n)
{
    const eb_keystream *ks = eb_map_get(&x->keys, key, n);
    return ks && ks->n ? ks->base + ks->n - 1 : 0;
}

int eb__keyidx_add(eb_keyidx *x, const char *key, size_t n, uint64_t version, uint64_t seq)
{
    eb_keystream *ks = eb_map_get(&x->keys, key, n);
    if (!ks) {
        ks = eb_xcalloc(1, sizeof *ks);
        eb_map_put(&x->keys, key, n, ks, NULL);
    }
    uint64_t next = ks->n ? ks->base + ks->n : (version ? version : 1);
    if (version && version != next) { /* a gap (events lost to damage): restart */
        ks->n = 0;
        next = version;
    }
    if (ks->n == 0)
        ks->base = next;
    if (ks->n == ks->cap) {
        size_t cap = ks->cap ? ks->cap * 2 : 4;
        ks->seqs = eb_xrealloc(ks->seqs, cap * sizeof *ks->seqs);
        ks->cap = cap;
    }
    ks->seqs[ks->n++] = seq;
    return 0;
}

/* Forgets the versions whose events retention removed (seq < min_seq),
 * keeping the newest so the key's version is not forgotten. */
static void trim(eb_keystream *ks, uint64_t min_seq)
{
    size_t lo = 0, hi = ks->n ? ks->n - 1 : 0; /* first index with seq >= min_seq */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ks->seqs[mid] < min_seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return;
    memmove(ks->seqs, ks->seqs + lo, (ks->n - lo) * sizeof *ks->seqs);
    ks->n -= lo;
    ks->base += lo;
}

size_t eb__keyidx_range(eb_keyidx *x, const char *key, size_t n, uint64_t from_version,
                        uint64_t min_seq, uint64_t below_seq, uint64_t *seqs, size_t max,
                        uint64_t *first_version)
{
    eb_keystream *ks = eb_map_get(&x->keys, key, n);
    *first_version = 0;
    if (!ks || ks->n == 0)
        return 0;
    trim(ks, min_seq);
    if (from_version < ks->base)
        from_version = ks->base;
    size_t i = (size_t)(from_version - ks->base), k = 0;
    for (; i < ks->n && k < max && ks->seqs[i] < below_seq; i++) {
        if (ks->seqs[i] < min_seq)
            continue;
        if (k == 0)
            *first_version = ks->base + i;
        seqs[k++] = ks->seqs[i];
    }
    return k;
}

/* FNV-1a, 64 bits; never 0 (the map's empty key). */
static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

#define FNV_BASIS 0xcbf29ce484222325ull

static uint64_t       hash_mask = UINT64_MAX;
static pthread_once_t hash_once = PTHREAD_ONCE_INIT;

static void hash_bits_from_env(void)
{
    const char *e = getenv("EB_TEST_ID_HASH_BITS");
    int bits = e ? atoi(e) : 0;
    if (bits > 0 && bits < 64)
        hash_mask = (1ull << bits) - 1;
}

void eb__keyidx_test_hash_bits(int bits)
{
    pthread_once(&hash_once, hash_bits_from_env);
    hash_mask = bits > 0 && bits < 64 ? (1ull << bits) - 1 : UINT64_MAX;
}

static uint64_t finish(uint64_t h)
{
    pthread_once(&hash_once, hash_bits_from_env);
    h &= hash_mask;
    return h ? h : 1;
}

uint64_t eb__keyidx_id_hash(const char *id, size_t n)
{
    return finish(fnv(FNV_BASIS, id, n));
}

uint64_t eb__keyidx_source_id_hash(const char *src, size_t slen, const char *id, size_t n)
{
    unsigned char len[4] = {(unsigned char)slen, (unsigned char)(slen >> 8),
                            (unsigned char)(slen >> 16), (unsigned char)(slen >> 24)};
    return finish(fnv(fnv(fnv(FNV_BASIS, len, 4), src, slen), id, n));
}

static uint64_t get_seq(const eb_imap *m, uint64_t k)
{
    return (uint64_t)(uintptr_t)eb_imap_get(m, k);
}

/* Adds seq to hash h's chain, which runs from map's newest through older
 * in decreasing seqs (seqs come in increasing order: then seq is the new
 * head; one out of order goes in its place, a repeat is ignored). */
static void chain_put(eb_imap *map, eb_imap *older, uint64_t h, uint64_t seq)
{
    uint64_t cur = get_seq(map, h);
    if (cur < seq) {
        if (cur)
            eb_imap_put(older, seq, (void *)(uintptr_t)cur);
        eb_imap_put(map, h, (void *)(uintptr_t)seq);
        return;
    }
    uint64_t next = 0;
    while (cur != seq && (next = get_seq(older, cur)) >= seq)
        cur = next;
    if (cur == seq || next == seq)
        return;
    if (next)
        eb_imap_put(older, seq, (void *)(uintptr_t)next);
    eb_imap_put(older, cur, (void *)(uintptr_t)seq);
}

/* The newest seq of hash h below `below`, walking the chain. */
static uint64_t chain_find(const eb_imap *map, const eb_imap *older, uint64_t h, uint64_t below)
{
    uint64_t seq = get_seq(map, h);
    while (seq && seq >= below)
        seq = get_seq(older, seq);
    return seq;
}

/* Puts the oldest n pending ids into the newest generation's maps: room
 * made once, then by chunks every slot prefetched and the puts (in order). */
static void flush_some(eb_keyidx *x, size_t n)
{
    eb__keyidx_gen *g = &x->gens[x->ngens - 1];
    const struct eb__keyidx_pend *pe = x->pend + x->phead;
    size_t nsrc = 0;
    for (size_t i = 0; i < n; i++)
        nsrc += pe[i].by_source != 0;
    eb_imap_reserve(&g->ids, n - nsrc);
    eb_imap_reserve(&g->srcids, nsrc);
    for (size_t i = 0; i < n; i += EB_KEYIDX_PENDING) {
        size_t end = i + EB_KEYIDX_PENDING < n ? i + EB_KEYIDX_PENDING : n;
        for (size_t j = i; j < end; j++)
            eb_imap_prefetch(pe[j].by_source ? &g->srcids : &g->ids, pe[j].h);
        for (size_t j = i; j < end; j++) {
            const struct eb__keyidx_pend *p = &pe[j];
            if (p->by_source)
                chain_put(&g->srcids, &g->srcids_older, p->h, p->seq);
            else
                chain_put(&g->ids, &g->ids_older, p->h, p->seq);
            if (p->seq > g->max_seq)
                g->max_seq = p->seq;
        }
    }
    x->phead += n;
    if (x->phead == x->npend)
        x->phead = x->npend = 0;
}

static void pend(eb_keyidx *x, uint64_t h, uint64_t seq, int by_source)
{
    size_t waiting = x->npend - x->phead;
    if (waiting >= EB_KEYIDX_LAZY_MAX || (x->eager && waiting >= EB_KEYIDX_PENDING))
        /* twice what comes: a backlog drains as many adds later */
        flush_some(x, waiting < 2 * EB_KEYIDX_PENDING ? waiting : 2 * EB_KEYIDX_PENDING);
    if (x->npend == x->pend_cap) {
        if (x->phead >= x->npend / 2 && x->phead) { /* reuse the room of the put ones */
            memmove(x->pend, x->pend + x->phead, (x->npend - x->phead) * sizeof *x->pend);
            x->npend -= x->phead;
            x->phead = 0;
        }
        if (x->npend == x->pend_cap) {
            x->pend_cap = x->pend_cap ? x->pend_cap * 2 : 1024;
            x->pend = eb_xrealloc(x->pend, x->pend_cap * sizeof *x->pend);
        }
    }
    x->pend[x->npend++] = (struct eb__keyidx_pend){h, seq, by_source};
}

/* The newest seq of hash h below `below` over every generation (each has
 * its own chain; a seq out of order may sit in a newer one). */
static uint64_t find(eb_keyidx *x, int by_source, uint64_t h, uint64_t below)
{
    /* The waiting ids are read, not put: a lookup costs a pass over them
     * (~1 ms at 256k), never a stall putting them all; from now on until
     * the next cut they are put as they come, and the backlog with them. */
    x->eager = true;
    uint64_t best = 0;
    for (size_t i = x->phead; i < x->npend; i++) {
        const struct eb__keyidx_pend *p = &x->pend[i];
        if (p->h == h && p->seq < below && p->seq > best && (p->by_source != 0) == (by_source != 0))
            best = p->seq;
    }
    for (size_t i = 0; i < x->ngens; i++) {
        const eb__keyidx_gen *g = &x->gens[i];
        uint64_t seq = by_source ? chain_find(&g->srcids, &g->srcids_older, h, below)
                                 : chain_find(&g->ids, &g->ids_older, h, below);
        if (seq > best)
            best = seq;
    }
    return best;
}

int eb__keyidx_add_id(eb_keyidx *x, const char *id, size_t n, uint64_t seq)
{
    pend(x, eb__keyidx_id_hash(id, n), seq, 0);
    return 0;
}

int eb__keyidx_add_id_hash(eb_keyidx *x, uint64_t h, uint64_t seq)
{
    pend(x, h, seq, 0);
    return 0;
}

int eb__keyidx_add_source_id_hash(eb_keyidx *x, uint64_t h, uint64_t seq)
{
    pend(x, h, seq, 1);
    return 0;
}

uint64_t eb__keyidx_find_id(eb_keyidx *x, const char *id, size_t n, uint64_t below)
{
    return find(x, 0, eb__keyidx_id_hash(id, n), below);
}

int eb__keyidx_add_source_id(eb_keyidx *x, const char *src, size_t slen, const char *id,
                             size_t n, uint64_t seq)
{
    pend(x, eb__keyidx_source_id_hash(src, slen, id, n), seq, 1);
    return 0;
}

uint64_t eb__keyidx_find_source_id(eb_keyidx *x, const char *src, size_t slen,
                                   const char *id, size_t n, uint64_t below)
{
    return find(x, 1, eb__keyidx_source_id_hash(src, slen, id, n), below);
}

void eb__keyidx_ids_cut(eb_keyidx *x, uint64_t covered)
{
    /* pending ids the cut covers are dropped, never put */
    while (x->phead < x->npend && x->pend[x->phead].seq < covered) {
        if (x->pend[x->phead].seq >= x->gone_below)
            x->gone_below = x->pend[x->phead].seq + 1;
        x->phead++;
    }
    if (x->phead == x->npend)
        x->phead = x->npend = 0;
    x->eager = false; /* until a lookup comes again */
    size_t k = 0; /* the oldest first, and never the newest (it takes adds) */
    while (k + 1 < x->ngens && x->gens[k].max_seq < covered) {
        if (x->gens[k].max_seq >= x->gone_below)
            x->gone_below = x->gens[k].max_seq + 1;
        gen_free(&x->gens[k]);
        k++;
    }
    if (k) {
        memmove(x->gens, x->gens + k, (x->ngens - k) * sizeof *x->gens);
        x->ngens -= k;
    }
    eb__keyidx_gen *last = &x->gens[x->ngens - 1];
    if (last->max_seq == 0)
        return; /* nothing added since the last cut: it stays the newest */
    if (last->max_seq < covered) { /* all of it covered already: free it now */
        if (last->max_seq >= x->gone_below)
            x->gone_below = last->max_seq + 1;
        gen_free(last);
        memset(last, 0, sizeof *last);
        return;
    }
    x->gens = eb_xrealloc(x->gens, (x->ngens + 1) * sizeof *x->gens);
    memset(&x->gens[x->ngens++], 0, sizeof *x->gens);
}

uint64_t eb__keyidx_ids_gone_below(const eb_keyidx *x)
{
    return x->gone_below;
}

uint64_t eb__keyidx_ids_held(const eb_keyidx *x)
{
    uint64_t n = x->npend - x->phead;
    for (size_t i = 0; i < x->ngens; i++) {
        const eb__keyidx_gen *g = &x->gens[i];
        n += g->ids.len + g->srcids.len + g->ids_older.len + g->srcids_older.len;
    }
    return n;
}
