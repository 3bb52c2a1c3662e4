/* imap.c - uint64_t-keyed hash map (see imap.h). */
#include "util/imap.h"

#include <stdlib.h>

#include "util/xmalloc.h"

/* Tables of 2 MiB and more (131,072 slots: the id lookups, a group's
 * deliveries) go to huge pages (eb_xcalloc_huge): every get and put lands
 * on a random slot, and with 4 KiB pages each is a TLB miss too (measured:
 * eb_imap_put 10% of publishing's CPU). */
static eb_imap_slot *slots_new(size_t cap)
{
    if (cap > SIZE_MAX / sizeof(eb_imap_slot))
        eb_oom(SIZE_MAX);
    return eb_xcalloc_huge(cap * sizeof(eb_imap_slot));
}

static size_t slot_of(uint64_t k, size_t mask)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    return (size_t)k & mask;
}

void eb_imap_init(eb_imap *m)
{
    m->slots = NULL;
    m->cap = m->len = 0;
}

void eb_imap_free(eb_imap *m)
{
    eb_free_huge(m->slots, m->cap * sizeof *m->slots);
    eb_imap_init(m);
}

static size_t find(const eb_imap *m, uint64_t key)
{
    size_t mask = m->cap - 1, i = slot_of(key, mask);
    while (m->slots[i].key && m->slots[i].key != key)
        i = (i + 1) & mask;
    return i;
}

static void grow(eb_imap *m)
{
    size_t ncap = m->cap ? m->cap * 2 : 64;
    eb_imap_slot *ns = slots_new(ncap);
    eb_imap old = *m;
    m->slots = ns;
    m->cap = ncap;
    for (size_t i = 0; i < old.cap; i++)
        if (old.slots[i].key)
            m->slots[find(m, old.slots[i].key)] = old.slots[i];
    eb_free_huge(old.slots, old.cap * sizeof *old.slots);
}

void *eb_imap_get(const eb_imap *m, uint64_t key)
{
    if (!m->len)
        return NULL;
    const eb_imap_slot *s = &m->slots[find(m, key)];
    return s->key ? s->val : NULL;
}

void eb_imap_put(eb_imap *m, uint64_t key, void *val)
{
    if ((m->len + 1) * 2 > m->cap)
        grow(m);
    eb_imap_slot *s = &m->slots[find(m, key)];
    if (!s->key)
        m->len++;
    s->key = key;
    s->val = val;
}

void eb_imap_reserve(eb_imap *m, size_t n)
{
    while ((m->len + n) * 2 > m->cap)
        grow(m);
}

void eb_imap_prefetch(const eb_imap *m, uint64_t key)
{
    if (m->cap)
        __builtin_prefetch(&m->slots[slot_of(key, m->cap - 1)], 1);
}

void *eb_imap_del(eb_imap *m, uint64_t key)
{
    if (!m->len)
        return NULL;
    size_t mask = m->cap - 1, i = find(m, key);
    if (!m->slots[i].key)
        return NULL;
    void *val = m->slots[i].val;
    m->slots[i].key = 0;
    m->len--;
    for (size_t j = (i + 1) & mask; m->slots[j].key; j = (j + 1) & mask) {
        size_t home = slot_of(m->slots[j].key, mask);
        int between = (i <= j) ? (i < home && home <= j) : (i < home || home <= j);
        if (between)
            continue;
        m->slots[i] = m->slots[j];
        m->slots[j].key = 0;
        i = j;
    }
    return val;
}

const eb_imap_slot *eb_imap_next(const eb_imap *m, size_t *it)
{
    while (*it < m->cap) {
        const eb_imap_slot *s = &m->slots[(*it)++];
        if (s->key)
            return s;
    }
    return NULL;
}
