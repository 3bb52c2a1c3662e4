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
    eb_imap_init(&x->ids);
    eb_imap_init(&x->srcids);
    eb_imap_init(&x->ids_older);
    eb_imap_init(&x->srcids_older);
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
    eb_imap_free(&x->ids);
    eb_imap_free(&x->srcids);
    eb_imap_free(&x->ids_older);
    eb_imap_free(&x->srcids_older);
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

/* Puts the pending ids into their maps: room made once, every slot
 * prefetched, then the puts (in order). */
static void flush(eb_keyidx *x)
{
    size_t n = x->npend, nsrc = 0;
    if (n == 0)
        return;
    for (size_t i = 0; i < n; i++)
        nsrc += x->pend[i].by_source != 0;
    eb_imap_reserve(&x->ids, n - nsrc);
    eb_imap_reserve(&x->srcids, nsrc);
    for (size_t i = 0; i < n; i++)
        eb_imap_prefetch(x->pend[i].by_source ? &x->srcids : &x->ids, x->pend[i].h);
    for (size_t i = 0; i < n; i++) {
        const struct eb__keyidx_pend *p = &x->pend[i];
        if (p->by_source)
            chain_put(&x->srcids, &x->srcids_older, p->h, p->seq);
        else
            chain_put(&x->ids, &x->ids_older, p->h, p->seq);
    }
    x->npend = 0;
}

static void pend(eb_keyidx *x, uint64_t h, uint64_t seq, int by_source)
{
    if (x->npend == EB_KEYIDX_PENDING)
        flush(x);
    x->pend[x->npend++] = (struct eb__keyidx_pend){h, seq, by_source};
}

int eb__keyidx_add_id(eb_keyidx *x, const char *id, size_t n, uint64_t seq)
{
    pend(x, eb__keyidx_id_hash(id, n), seq, 0);
    return 0;
}

uint64_t eb__keyidx_find_id(eb_keyidx *x, const char *id, size_t n, uint64_t below)
{
    flush(x);
    return chain_find(&x->ids, &x->ids_older, eb__keyidx_id_hash(id, n), below);
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
    flush(x);
    return chain_find(&x->srcids, &x->srcids_older, eb__keyidx_source_id_hash(src, slen, id, n),
                      below);
}
