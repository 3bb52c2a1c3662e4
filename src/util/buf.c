/* buf.c - growable byte buffer (see buf.h). */
#include "util/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "util/xmalloc.h"

void eb_buf_init(eb_buf *b)
{
    b->data = NULL;
    b->len = b->cap = 0;
    b->oom = false;
}

void eb_buf_free(eb_buf *b)
{
    free(b->data);
    eb_buf_init(b);
}

void eb_buf_reset(eb_buf *b)
{
    b->len = 0;
    b->oom = false;
    if (b->data)
        b->data[0] = '\0';
}

bool eb_buf_reserve(eb_buf *b, size_t n)
{
    if (b->oom)
        return false;
    if (b->len + n < b->cap) /* keep one byte for the NUL */
        return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap <= b->len + n) {
        if (cap > SIZE_MAX / 2) {
            eb__alloc_failed(SIZE_MAX);
            b->oom = true;
            return false;
        }
        cap *= 2;
    }
    char *p = realloc(b->data, cap);
    if (!p) {
        eb__alloc_failed(cap);
        b->oom = true;
        return false;
    }
    b->data = p;
    b->cap = cap;
    b->data[b->len] = '\0'; /* a fresh buffer is "" too (eb_buf_steal of nothing) */
    return true;
}

void eb_buf_append(eb_buf *b, const void *p, size_t n)
{
    if (n == 0 || !eb_buf_reserve(b, n))
        return;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void eb_buf_puts(eb_buf *b, const char *s)
{
    eb_buf_append(b, s, strlen(s));
}

void eb_buf_printf(eb_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char tmp[256];
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof tmp) {
        eb_buf_append(b, tmp, (size_t)n);
        return;
    }
    if (!eb_buf_reserve(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

char *eb_buf_steal(eb_buf *b, size_t *len)
{
    if (b->oom) {
        eb_buf_free(b);
        if (len)
            *len = 0;
        return NULL;
    }
    if (!b->data && !eb_buf_reserve(b, 0))
        return NULL;
    char *p = b->data;
    if (len)
        *len = b->len;
    eb_buf_init(b);
    return p;
}
