/* xmalloc.h - the one allocation policy (as redis's zmalloc does it).
 *
 * The daemon never tries to recover from a failed allocation: every server
 * allocation goes through eb_x*(), which on failure writes "eventbusd: out of
 * memory allocating N bytes" to stderr and abort()s. Recovery code that is
 * never run is never tested, and the branches it needed were wrong (half-made
 * DLQ entries, leases that never expired, "redrive these ids" read as "redrive
 * all"), so they are gone.
 *
 * Code shared with libeventbus (src/util/buf.c, src/json) must not abort: a
 * library returns EB_ENOMEM. It allocates with plain malloc and, on failure,
 * calls eb__alloc_failed(n), which runs the handler set by
 * eb_set_oom_handler() and returns if there is none. The daemon sets eb_oom
 * as the handler at start, so in the daemon a buffer or JSON document never
 * reports a failure either; the library sets nothing and gets EB_ENOMEM. */
#ifndef EB_UTIL_XMALLOC_H
#define EB_UTIL_XMALLOC_H

#include <stddef.h>

/* Writes "eventbusd: out of memory allocating n bytes" to stderr, aborts. */
_Noreturn void eb_oom(size_t n);

/* malloc/calloc/realloc/strdup/strndup that never return NULL (eb_oom
 * instead). A size of 0 allocates 1 byte, so the result is never NULL. The
 * caller owns the result (free()). */
void *eb_xmalloc(size_t n);
void *eb_xcalloc(size_t n, size_t size);
void *eb_xrealloc(void *p, size_t n);
char *eb_xstrdup(const char *s);
char *eb_xstrndup(const char *s, size_t n);
/* n zeroed bytes for a large table touched at random: from 2 MiB on, a
 * private mapping (pages zeroed by the kernel when first touched, so
 * untouched ones cost no RSS), 2 MiB-aligned and offered to transparent
 * huge pages (madvise: fewer TLB misses and page faults); below, eb_xcalloc.
 * Never NULL; the caller owns it and releases it with eb_free_huge(p, n),
 * the same n. */
void *eb_xcalloc_huge(size_t n);
void  eb_free_huge(void *p, size_t n);

/* The handler shared code calls when an allocation of n bytes fails; NULL
 * (the default) = return, and let the caller report EB_ENOMEM. Set once at
 * start, before any thread runs. */
void eb_set_oom_handler(void (*fn)(size_t n));
void eb__alloc_failed(size_t n);

#endif
