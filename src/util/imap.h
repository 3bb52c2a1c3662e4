/* imap.h - an open-addressing hash map from non-zero uint64_t keys to
 * pointers (key 0 marks an empty slot). Used for deliveries by sequence
 * number. Linear probing, backward-shift deletion, load <= 0.5.
 * Not thread-safe. */
#ifndef EB_UTIL_IMAP_H
#define EB_UTIL_IMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct eb_imap_slot {
    uint64_t key; /* 0 = empty */
    void    *val;
} eb_imap_slot;

typedef struct eb_imap {
    eb_imap_slot *slots;
    size_t        cap; /* 0 or a power of two */
    size_t        len;
} eb_imap;

void  eb_imap_init(eb_imap *m);
void  eb_imap_free(eb_imap *m);
void *eb_imap_get(const eb_imap *m, uint64_t key);
/* Sets key (non-zero) to val, replacing. Aborts on allocation failure. */
void  eb_imap_put(eb_imap *m, uint64_t key, void *val);
/* Makes room for n more keys (no growth during their puts). */
void  eb_imap_reserve(eb_imap *m, size_t n);
/* Hints that key is about to be looked up or put (prefetches its home slot). */
void  eb_imap_prefetch(const eb_imap *m, uint64_t key);
/* Removes key; returns its value or NULL. */
void *eb_imap_del(eb_imap *m, uint64_t key);
/* Iteration from *it = 0; NULL at the end. No changes while iterating. */
const eb_imap_slot *eb_imap_next(const eb_imap *m, size_t *it);

#endif
