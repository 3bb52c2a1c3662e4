/* heap.c - the intrusive binary min-heap of heap.h. */
#include "util/heap.h"

#include <stdlib.h>

#include "util/xmalloc.h"

void eb_heap_init(eb_heap *h)
{
    h->v = NULL;
    h->n = h->cap = 0;
}

void eb_heap_free(eb_heap *h)
{
    free(h->v);
    eb_heap_init(h);
}

static void set(eb_heap *h, size_t i, eb_heap_node *n)
{
    h->v[i] = n;
    n->idx = (uint32_t)i;
}

static void up(eb_heap *h, size_t i)
{
    eb_heap_node *n = h->v[i];
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (h->v[p]->key <= n->key)
            break;
        set(h, i, h->v[p]);
        i = p;
    }
    set(h, i, n);
}

static void down(eb_heap *h, size_t i)
{
    eb_heap_node *n = h->v[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && h->v[c + 1]->key < h->v[c]->key)
            c++;
        if (h->v[c]->key >= n->key)
            break;
        set(h, i, h->v[c]);
        i = c;
    }
    set(h, i, n);
}

void eb_heap_push(eb_heap *h, eb_heap_node *n)
{
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64;
        h->v = eb_xrealloc(h->v, cap * sizeof *h->v);
        h->cap = cap;
    }
    h->v[h->n] = n;
    n->idx = (uint32_t)h->n++;
    up(h, n->idx);
}

void eb_heap_remove(eb_heap *h, eb_heap_node *n)
{
    size_t i = n->idx;
    if (i == EB_HEAP_NONE)
        return;
    n->idx = EB_HEAP_NONE;
    eb_heap_node *last = h->v[--h->n];
    if (i == h->n)
        return;
    set(h, i, last);
    up(h, i);
    down(h, last->idx);
}

void eb_heap_fix(eb_heap *h, eb_heap_node *n)
{
    up(h, n->idx);
    down(h, n->idx);
}
