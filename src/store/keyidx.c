/* keyidx.c - per-key streams and the id lookup (see keyidx.h). */
#include "store/keyidx.h"
#include "util/xmalloc.h"

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

uint64_t eb__keyidx_id_hash(const char *id, size_t n)
{
    uint64_t h = fnv(FNV_BASIS, id, n);
    return h ? h : 1;
}

uint64_t eb__keyidx_source_id_hash(const char *src, size_t slen, const char *id, size_t n)
{
    unsigned char len[4] = {(unsigned char)slen, (unsigned char)(slen >> 8),
                            (unsigned char)(slen >> 16), (unsigned char)(slen >> 24)};
    uint64_t h = fnv(fnv(fnv(FNV_BASIS, len, 4), src, slen), id, n);
    return h ? h : 1;
}

int eb__keyidx_add_id(eb_keyidx *x, const char *id, size_t n, uint64_t seq)
{
    eb_imap_put(&x->ids, eb__keyidx_id_hash(id, n), (void *)(uintptr_t)seq);
    return 0;
}

uint64_t eb__keyidx_find_id(const eb_keyidx *x, const char *id, size_t n)
{
    return (uint64_t)(uintptr_t)eb_imap_get(&x->ids, eb__keyidx_id_hash(id, n));
}

int eb__keyidx_add_source_id(eb_keyidx *x, const char *src, size_t slen, const char *id,
                             size_t n, uint64_t seq)
{
    eb_imap_put(&x->srcids, eb__keyidx_source_id_hash(src, slen, id, n),
                (void *)(uintptr_t)seq);
    return 0;
}

uint64_t eb__keyidx_find_source_id(const eb_keyidx *x, const char *src, size_t slen,
                                   const char *id, size_t n)
{
    return (uint64_t)(uintptr_t)eb_imap_get(&x->srcids,
                                            eb__keyidx_source_id_hash(src, slen, id, n));
}
