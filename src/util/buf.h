/* buf.h - a growable byte buffer, the one output sink shared by the JSON
 * writer, the HTTP layer and the log tools.
 *
 * Allocation failure is sticky: after one failed growth, every append is a
 * no-op and eb_buf_failed() reports it, so writers can check once at the end
 * (like a FILE's error flag). In the daemon a failed growth aborts instead
 * (the handler of util/xmalloc.h), so there the flag never sets; the client
 * library, which shares this code, sees it and returns EB_ENOMEM. */
#ifndef EB_UTIL_BUF_H
#define EB_UTIL_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct eb_buf {
    char  *data;   /* owned; NUL-terminated whenever len < cap */
    size_t len;    /* bytes used */
    size_t cap;    /* bytes allocated */
    bool   oom;    /* set once an allocation failed; appends then do nothing */
} eb_buf;

#define EB_BUF_INIT {NULL, 0, 0, false}

void eb_buf_init(eb_buf *b);
void eb_buf_free(eb_buf *b);
/* Empties the buffer, keeping its memory, and clears the oom flag. */
void eb_buf_reset(eb_buf *b);
/* Makes room for at least n more bytes; returns false (and sets oom) on failure. */
bool eb_buf_reserve(eb_buf *b, size_t n);
void eb_buf_append(eb_buf *b, const void *p, size_t n);
void eb_buf_puts(eb_buf *b, const char *s);
void eb_buf_printf(eb_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Takes the contents; the caller owns the returned pointer (free()) and the
 * buffer is left empty. Returns NULL if the buffer failed or is empty and
 * could not be allocated. */
char *eb_buf_steal(eb_buf *b, size_t *len);

static inline bool eb_buf_failed(const eb_buf *b) { return b->oom; }

static inline void eb_buf_putc(eb_buf *b, char c)
{
    if (b->len + 1 < b->cap || eb_buf_reserve(b, 1)) {
        b->data[b->len++] = c;
        b->data[b->len] = '\0';
    }
}

#endif
