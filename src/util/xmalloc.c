/* xmalloc.c - the daemon's allocation policy: abort with a clear message on
 * allocation failure (see xmalloc.h). */
#include "util/xmalloc.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static void (*oom_handler)(size_t n);

_Noreturn void eb_oom(size_t n)
{
    fprintf(stderr, "eventbusd: out of memory allocating %zu bytes\n", n);
    fflush(stderr);
    abort();
}

void *eb_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        eb_oom(n);
    return p;
}

void *eb_xcalloc(size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        eb_oom(SIZE_MAX);
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        eb_oom(n * size);
    return p;
}

#define HUGE_BYTES ((size_t)2 << 20)

static size_t huge_round(size_t n)
{
    if (n > SIZE_MAX - 2 * HUGE_BYTES)
        eb_oom(SIZE_MAX);
    return (n + HUGE_BYTES - 1) / HUGE_BYTES * HUGE_BYTES;
}

void *eb_xcalloc_huge(size_t n)
{
    if (n < HUGE_BYTES)
        return eb_xcalloc(n, 1);
    size_t bytes = huge_round(n), span = bytes + HUGE_BYTES;
    char *m = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        eb_oom(bytes);
    /* keep the 2 MiB-aligned part, give back what is before and after it */
    size_t head = (HUGE_BYTES - (uintptr_t)m % HUGE_BYTES) % HUGE_BYTES;
    if (head)
        munmap(m, head);
    if (span - head - bytes)
        munmap(m + head + bytes, span - head - bytes);
    (void)madvise(m + head, bytes, MADV_HUGEPAGE); /* a hint: fine if refused */
    return m + head;
}

void eb_free_huge(void *p, size_t n)
{
    if (n < HUGE_BYTES)
        free(p);
    else if (p)
        munmap(p, huge_round(n));
}

void *eb_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        eb_oom(n);
    return q;
}

char *eb_xstrdup(const char *s)
{
    size_t n = strlen(s);
    char *p = eb_xmalloc(n + 1);
    memcpy(p, s, n + 1);
    return p;
}

char *eb_xstrndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *p = eb_xmalloc(len + 1);
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

void eb_set_oom_handler(void (*fn)(size_t n)) { oom_handler = fn; }

void eb__alloc_failed(size_t n)
{
    if (oom_handler)
        oom_handler(n);
}
