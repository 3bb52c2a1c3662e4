/* base64.h - RFC 4648 base64 (standard alphabet, padded), for binary
 * payloads carried inside JSON meta records. */
#ifndef EB_UTIL_BASE64_H
#define EB_UTIL_BASE64_H

#include <stddef.h>

#include "util/buf.h"

/* Appends the encoding of p[0..n) to out. */
void eb_base64_encode(eb_buf *out, const void *p, size_t n);
/* Decodes s[0..n) into out (appending). Returns 0 or EB_ESYNTAX. */
int  eb_base64_decode(eb_buf *out, const char *s, size_t n);

#endif
