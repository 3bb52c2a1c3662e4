/* idna.h - IDNA2008 A-label checks for the "hostname" format (RFC 5890-5893):
 * Punycode decoding and the validity of the U-label it encodes. */
#ifndef EB_SCHEMA_IDNA_H
#define EB_SCHEMA_IDNA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Generated from the Unicode Character Database by gen_idna.py: ranges
 * covering every code point, eb__idna_starts[i] the first of range i and
 * eb__idna_attrs[i] its attributes (IDNA_* in idna.c). */
extern const size_t   eb__idna_nranges;
extern const uint32_t eb__idna_starts[];
extern const uint16_t eb__idna_attrs[];

/* Decodes the Punycode in s[0..n) (RFC 3492; the part after "xn--") into
 * out (at most cap code points). Returns the count, or -1 if s is not valid
 * Punycode or decodes to more than cap code points. */
int eb__punycode_decode(const char *s, size_t n, uint32_t *out, size_t cap);

/* Encodes u[0..n) as Punycode into out (no "xn--", not NUL-terminated).
 * Returns the length, or -1 if it does not fit in cap bytes. */
int eb__punycode_encode(const uint32_t *u, size_t n, char *out, size_t cap);

/* The verdict on one label of a host name. */
typedef struct eb__idna_label {
    bool ok;       /* a valid LDH label or A-label (RFC 5891 section 5.4) */
    bool rtl;      /* holds a right-to-left character (Bidi R, AL or AN) */
    bool bidi_ok;  /* satisfies the Bidi rule (RFC 5893 section 2) */
} eb__idna_label;

/* Checks one A-label s[0..n) ("xn--" included, any case): Punycode that
 * decodes to a U-label whose code points are all PVALID or satisfy their
 * CONTEXTJ/CONTEXTO rules (RFC 5892), with no leading combining mark and no
 * "--" in positions 3-4, and s the canonical encoding of it (compared
 * case-insensitively). The label is not checked to be in NFC. */
eb__idna_label eb__idna_check_alabel(const char *s, size_t n);

#endif
