/* pct.h - percent-decoding (RFC 3986 §2.1), the one decoder of eventbus:
 * API path segments and query values, URI fragments in JSON Schema $refs. */
#ifndef EB_UTIL_PCT_H
#define EB_UTIL_PCT_H

#include <stddef.h>

enum {
    EB_PCT_STRICT = 0,  /* a '%' not followed by two hex digits, an escape
                           that decodes to NUL, or a NUL byte, is EB_ESYNTAX */
    EB_PCT_LENIENT = 1, /* such a '%' (or "%00", or NUL) is copied as it stands */
};

/* Decodes s[0..n) into out (cap bytes, NUL-terminated; cap >= 1), *outn
 * (may be NULL) gets the decoded length. Returns 0, EB_ESYNTAX (strict
 * mode; see above) or EB_ETOOBIG when out is too small (out then holds the
 * part that fitted, terminated). Never reads past s + n. */
int eb_pct_decode(const char *s, size_t n, char *out, size_t cap, size_t *outn, int mode);

#endif
