/* map.c - open-addressing hash map (see map.h). */
#include "util/map.h"

#include <stdlib.h>
#include <string.h>

#include "util/xmalloc.h"

/* FNV-1a on 8-byte words with a final avalanche: fast for short keys
 * (type names, ids) and good enough against accidental clustering. */
uint32_t eb_hash(const void *p, size_t n)
{
    const unsigned char *s = p;
    uint64_t h = 0xcbf29ce484222325ull ^ n;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ w) * 0x100000001b3ull;
        h ^= h >> 29;
        s += 8;
        n -= 8;
    }
    while (n--)
        h = (h ^ *s++) * 0x100000001b3ull;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return (uint32_t)h;
}

void eb_map_init(eb_map *m)
{
    m->slots = NULL;
    m->cap = m->len = 0;
}

void eb_map_free(eb_map *m)
{
    for (size_t i = 0; i < m->cap; i++)
        free(m->slots[i].key);
    free(m->slots);
    eb_map_init(m);
}

static size_t find(const eb_map *m, const char *key, size_t klen, uint32_t h)
{
    size_t mask = m->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        const eb_map_slot *s = &m->slots[i];
        if (!s->key)
            return i;
        if (s->hash == h && s->klen == klen && memcmp(s->key, key, klen) == 0)
            return i;
    }
}

static void grow(eb_map *m)
{
    size_t ncap = m->cap ? m->cap * 2 : 16;
    eb_map_slot *ns = eb_xcalloc(ncap, sizeof *ns);
    eb_map old = *m;
    m->slots = ns;
    m->cap = ncap;
    for (size_t i = 0; i < old.cap; i++) {
        eb_map_slot *s = &old.slots[i];
        if (s->key)
            m->slots[find(m, s->key, s->klen, s->hash)] = *s;
    }
    free(old.slots);
}

void *eb_map_get(const eb_map *m, const char *key, size_t klen)
{
    if (!m->len)
        return NULL;
    const eb_map_slot *s = &m->slots[find(m, key, klen, eb_hash(key, klen))];
    return s->key ? s->val : NULL;
}

void eb_map_put(eb_map *m, const char *key, size_t klen, void *val, void **old)
{
    if (old)
        *old = NULL;
    if ((m->len + 1) * 4 > m->cap * 3)
        grow(m);
    uint32_t h = eb_hash(key, klen);
    eb_map_slot *s = &m->slots[find(m, key, klen, h)];
    if (s->key) {
        if (old)
            *old = s->val;
        s->val = val;
        return;
    }
    char *k = eb_xmalloc(klen + 1);
    memcpy(k, key, klen);
    k[klen] = '\0';
    *s = (eb_map_slot){k, (uint32_t)klen, h, val};
    m->len++;
}

void *eb_map_del(eb_map *m, const char *key, size_t klen)
{
    if (!m->len)
        return NULL;
    size_t mask = m->cap - 1;
    size_t i = find(m, key, klen, eb_hash(key, klen));
    if (!m->slots[i].key)
        return NULL;
    void *val = m->slots[i].val;
    free(m->slots[i].key);
    m->slots[i].key = NULL;
    m->len--;
    /* Backward-shift: move later members of the probe run into the hole. */
    for (size_t j = (i + 1) & mask; m->slots[j].key; j = (j + 1) & mask) {
        size_t home = m->slots[j].hash & mask;
        int between = (i <= j) ? (i < home && home <= j) : (i < home || home <= j);
        if (between)
            continue;
        m->slots[i] = m->slots[j];
        m->slots[j].key = NULL;
        i = j;
    }
    return val;
}

const eb_map_slot *eb_map_next(const eb_map *m, size_t *it)
{
    while (*it < m->cap) {
        const eb_map_slot *s = &m->slots[(*it)++];
        if (s->key)
            return s;
    }
    return NULL;
}
