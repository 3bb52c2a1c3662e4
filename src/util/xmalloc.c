/* xmalloc.c - the daemon's allocation policy: abort with a clear message on
 * allocation failure (see xmalloc.h). */
#include "util/xmalloc.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
