/* heap.h - an intrusive binary min-heap of timers, keyed by a 64-bit time.
 *
 * The caller embeds an eb_heap_node in its own struct and passes pointers to
 * it; the heap keeps each node's index so a node can be removed or re-keyed
 * in O(log n) (libuv's timer heap works the same way). The heap owns only
 * its array of pointers, never the nodes. Not thread-safe. */
#ifndef EB_UTIL_HEAP_H
#define EB_UTIL_HEAP_H

#include <stddef.h>
#include <stdint.h>

#define EB_HEAP_NONE UINT32_MAX /* idx of a node not in the heap */

typedef struct eb_heap_node {
    uint64_t key; /* the time it fires; change it only through eb_heap_fix */
    uint32_t idx; /* position in the heap, EB_HEAP_NONE when out */
} eb_heap_node;

typedef struct eb_heap {
    eb_heap_node **v;
    size_t         n, cap;
} eb_heap;

void eb_heap_init(eb_heap *h);
void eb_heap_free(eb_heap *h);
/* Marks n as not in any heap (call once when n is made). */
static inline void eb_heap_node_init(eb_heap_node *n) { n->idx = EB_HEAP_NONE; }
/* Adds n (with its key set). Aborts on allocation failure. */
void eb_heap_push(eb_heap *h, eb_heap_node *n);
/* Removes n if it is in the heap; no-op otherwise. */
void eb_heap_remove(eb_heap *h, eb_heap_node *n);
/* Restores the order after n->key changed (n in the heap). */
void eb_heap_fix(eb_heap *h, eb_heap_node *n);
/* The node with the smallest key, or NULL if empty. Borrowed. */
static inline eb_heap_node *eb_heap_min(const eb_heap *h) { return h->n ? h->v[0] : NULL; }

#endif
