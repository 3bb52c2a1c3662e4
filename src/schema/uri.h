/* uri.h - URI reference resolution for schema identifiers. */
#ifndef EB_SCHEMA_URI_H
#define EB_SCHEMA_URI_H

#include <stddef.h>

/* Resolves ref against base (RFC 3986 section 5, simplified) into out. */
void eb__uri_resolve(const char *base, const char *ref, char *out, size_t cap);
/* Splits uri into the document part (copied to doc) and its fragment
 * (pointing into uri, without '#'; "" when none). */
void eb__uri_split(const char *uri, char *doc, size_t cap, const char **frag);

#endif
