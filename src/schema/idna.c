/* idna.c - IDNA2008 A-labels for the "hostname" format: Punycode decoding
 * (RFC 3492; encoding too, to insist on the canonical form) and the
 * U-label rules of RFC 5891 section 5.4: every code
 * point PVALID, or CONTEXTJ/CONTEXTO with its rule met (RFC 5892 appendix
 * A), no leading combining mark, no "--" in positions 3-4, and the Bidi
 * rule (RFC 5893), which format.c applies across the whole name. Character
 * data: the generated table in idna_data.c (gen_idna.py). */
#include <string.h>
#include <strings.h>

#include "schema/idna.h"

/* Attribute bits of a code point (gen_idna.py). */
#define IDNA_CLASS(a)  ((a) & 3u)         /* 0 not allowed, 1 PVALID, 2 CONTEXTJ, 3 CONTEXTO */
#define IDNA_JOIN(a)   (((a) >> 2) & 7u)  /* Joining_Type */
#define IDNA_BIDI(a)   (((a) >> 5) & 15u) /* Bidi_Class (B_*) */
#define IDNA_SCRIPT(a) (((a) >> 9) & 3u)  /* S_* */
#define IDNA_VIRAMA    (1u << 11)         /* Canonical_Combining_Class = Virama */
#define IDNA_MARK      (1u << 12)         /* General_Category M* */

enum { PVALID = 1, CONTEXTJ = 2, CONTEXTO = 3 };
enum { J_NONE = 0, J_T = 1, J_L = 2, J_R = 3, J_D = 4 };
enum { B_OTHER = 0, B_L, B_R, B_AL, B_AN, B_EN, B_ES, B_CS, B_ET, B_ON, B_BN, B_NSM };
enum { S_OTHER = 0, S_GREEK = 1, S_HEBREW = 2, S_JAPANESE = 3 /* Hiragana, Katakana, Han */ };

#define MAX_ULABEL 64 /* a 63-octet A-label decodes to fewer code points */

static unsigned attr(uint32_t cp)
{
    size_t lo = 0, hi = eb__idna_nranges;
    while (hi - lo > 1) { /* the last range starting at or before cp */
        size_t mid = lo + (hi - lo) / 2;
        if (eb__idna_starts[mid] <= cp)
            lo = mid;
        else
            hi = mid;
    }
    return eb__idna_attrs[lo];
}

/* --- Punycode (RFC 3492 section 6.2) ----------------------------------------- */

enum { P_BASE = 36, P_TMIN = 1, P_TMAX = 26, P_SKEW = 38, P_DAMP = 700, P_BIAS = 72,
       P_N = 128 };

static int digit_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0' + 26;
    if (c >= 'a' && c <= 'z')
        return c - 'a';
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    return -1;
}

static uint32_t adapt(uint32_t delta, uint32_t npoints, bool first)
{
    delta = first ? delta / P_DAMP : delta / 2;
    delta += delta / npoints;
    uint32_t k = 0;
    while (delta > ((P_BASE - P_TMIN) * P_TMAX) / 2) {
        delta /= P_BASE - P_TMIN;
        k += P_BASE;
    }
    return k + (P_BASE - P_TMIN + 1) * delta / (delta + P_SKEW);
}

/* Reads one generalized variable-length integer from *p; false on error. */
static bool read_delta(const char **p, const char *e, uint32_t bias, uint32_t *i)
{
    uint32_t w = 1;
    for (uint32_t k = P_BASE;; k += P_BASE) {
        int d = *p < e ? digit_value(*(*p)++) : -1;
        if (d < 0 || (uint32_t)d > (UINT32_MAX - *i) / w)
            return false;
        *i += (uint32_t)d * w;
        uint32_t t = k <= bias ? P_TMIN : k >= bias + P_TMAX ? P_TMAX : k - bias;
        if ((uint32_t)d < t)
            return true;
        if (w > UINT32_MAX / (P_BASE - t))
            return false;
        w *= P_BASE - t;
    }
}

int eb__punycode_decode(const char *s, size_t n, uint32_t *out, size_t cap)
{
    const char *e = s + n, *delim = NULL;
    for (const char *p = s; p < e; p++)
        if (*p == '-')
            delim = p;
    size_t o = 0;
    for (const char *p = s; delim && p < delim; p++) { /* basic code points, any case */
        if ((unsigned char)*p >= 0x80 || o >= cap)
            return -1;
        out[o++] = (uint32_t)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
    }
    const char *p = delim ? delim + 1 : s;
    uint32_t cp = P_N, i = 0, bias = P_BIAS;
    while (p < e) {
        uint32_t old = i;
        if (!read_delta(&p, e, bias, &i))
            return -1;
        bias = adapt(i - old, (uint32_t)o + 1, old == 0);
        if (i / (o + 1) > 0x10FFFF - cp)
            return -1;
        cp += i / (uint32_t)(o + 1);
        i %= (uint32_t)(o + 1);
        if ((cp >= 0xD800 && cp <= 0xDFFF) || o >= cap)
            return -1;
        memmove(out + i + 1, out + i, (o - i) * sizeof *out);
        out[i++] = cp;
        o++;
    }
    return (int)o;
}

static char digit_char(uint32_t d) { return (char)(d < 26 ? 'a' + d : '0' + d - 26); }

/* Writes q as a generalized variable-length integer; false when out is full. */
static bool write_delta(uint32_t q, uint32_t bias, char *out, size_t cap, size_t *o)
{
    for (uint32_t k = P_BASE;; k += P_BASE) {
        uint32_t t = k <= bias ? P_TMIN : k >= bias + P_TMAX ? P_TMAX : k - bias;
        if (*o >= cap)
            return false;
        if (q < t) {
            out[(*o)++] = digit_char(q);
            return true;
        }
        out[(*o)++] = digit_char(t + (q - t) % (P_BASE - t));
        q = (q - t) / (P_BASE - t);
    }
}

int eb__punycode_encode(const uint32_t *u, size_t n, char *out, size_t cap)
{
    size_t o = 0, basic = 0;
    for (size_t k = 0; k < n; k++)
        if (u[k] < 0x80) {
            if (o >= cap)
                return -1;
            out[o++] = (char)u[k];
            basic++;
        }
    if (basic) {
        if (o >= cap)
            return -1;
        out[o++] = '-';
    }
    uint32_t cp = P_N, delta = 0, bias = P_BIAS;
    for (size_t h = basic; h < n;) {
        uint32_t m = UINT32_MAX; /* the smallest code point not yet handled */
        for (size_t k = 0; k < n; k++)
            if (u[k] >= cp && u[k] < m)
                m = u[k];
        if ((m - cp) > (UINT32_MAX - delta) / (h + 1))
            return -1;
        delta += (m - cp) * (uint32_t)(h + 1);
        cp = m;
        for (size_t k = 0; k < n; k++) {
            if (u[k] < cp && ++delta == 0)
                return -1;
            if (u[k] != cp)
                continue;
            if (!write_delta(delta, bias, out, cap, &o))
                return -1;
            bias = adapt(delta, (uint32_t)h + 1, h == basic);
            delta = 0;
            h++;
        }
        delta++;
        cp++;
    }
    return (int)o;
}

/* --- contextual rules (RFC 5892 appendix A) ---------------------------------- */

/* A.1: ZERO WIDTH NON-JOINER after a Virama, or inside a joining context:
 * (L|D) T* ZWNJ T* (R|D). */
static bool zwnj_ok(const uint32_t *u, size_t n, size_t i)
{
    if (i > 0 && (attr(u[i - 1]) & IDNA_VIRAMA))
        return true;
    size_t j = i;
    while (j > 0 && IDNA_JOIN(attr(u[j - 1])) == J_T)
        j--;
    unsigned before = j > 0 ? IDNA_JOIN(attr(u[j - 1])) : J_NONE;
    if (before != J_L && before != J_D)
        return false;
    j = i + 1;
    while (j < n && IDNA_JOIN(attr(u[j])) == J_T)
        j++;
    unsigned after = j < n ? IDNA_JOIN(attr(u[j])) : J_NONE;
    return after == J_R || after == J_D;
}

static bool any_in(const uint32_t *u, size_t n, uint32_t lo, uint32_t hi)
{
    for (size_t k = 0; k < n; k++)
        if (u[k] >= lo && u[k] <= hi)
            return true;
    return false;
}

static bool any_japanese(const uint32_t *u, size_t n)
{
    for (size_t k = 0; k < n; k++)
        if (IDNA_SCRIPT(attr(u[k])) == S_JAPANESE)
            return true;
    return false;
}

/* A.3-A.9 for the CONTEXTO code point u[i]. */
static bool contexto_ok(const uint32_t *u, size_t n, size_t i)
{
    uint32_t c = u[i];
    switch (c) {
    case 0x00B7: /* MIDDLE DOT: between two 'l' (Catalan) */
        return i > 0 && i + 1 < n && u[i - 1] == 'l' && u[i + 1] == 'l';
    case 0x0375: /* GREEK KERAIA: before Greek */
        return i + 1 < n && IDNA_SCRIPT(attr(u[i + 1])) == S_GREEK;
    case 0x05F3: /* HEBREW GERESH, GERSHAYIM: after Hebrew */
    case 0x05F4:
        return i > 0 && IDNA_SCRIPT(attr(u[i - 1])) == S_HEBREW;
    case 0x30FB: /* KATAKANA MIDDLE DOT: with Hiragana, Katakana or Han */
        return any_japanese(u, n);
    default:
        break;
    }
    if (c >= 0x0660 && c <= 0x0669) /* ARABIC-INDIC digits: not mixed with extended ones */
        return !any_in(u, n, 0x06F0, 0x06F9);
    if (c >= 0x06F0 && c <= 0x06F9)
        return !any_in(u, n, 0x0660, 0x0669);
    return false;
}

/* --- Bidi rule (RFC 5893 section 2) ------------------------------------------ */

static bool bidi_ok(const uint32_t *u, size_t n)
{
    unsigned first = IDNA_BIDI(attr(u[0]));
    bool rtl = first == B_R || first == B_AL;
    if (!rtl && first != B_L) /* rule 1 */
        return false;
    bool en = false, an = false;
    for (size_t k = 0; k < n; k++) { /* rules 2 and 5 */
        unsigned b = IDNA_BIDI(attr(u[k]));
        en |= b == B_EN;
        an |= b == B_AN;
        bool common = b == B_EN || b == B_ES || b == B_CS || b == B_ET || b == B_ON ||
                      b == B_BN || b == B_NSM;
        if (!common && !(rtl ? (b == B_R || b == B_AL || b == B_AN) : b == B_L))
            return false;
    }
    size_t last = n;
    while (last > 1 && IDNA_BIDI(attr(u[last - 1])) == B_NSM)
        last--;
    unsigned end = IDNA_BIDI(attr(u[last - 1])); /* rules 3 and 6 */
    if (rtl)
        return (end == B_R || end == B_AL || end == B_EN || end == B_AN) && !(en && an);
    return end == B_L || end == B_EN;
}

static bool has_rtl(const uint32_t *u, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        unsigned b = IDNA_BIDI(attr(u[k]));
        if (b == B_R || b == B_AL || b == B_AN)
            return true;
    }
    return false;
}

/* --- U-labels ------------------------------------------------------------------ */

static bool ulabel_ok(const uint32_t *u, size_t n)
{
    bool non_ascii = false;
    for (size_t k = 0; k < n; k++)
        non_ascii |= u[k] >= 0x80;
    if (!n || !non_ascii) /* Punycode of plain ASCII is a fake A-label */
        return false;
    if (u[0] == '-' || u[n - 1] == '-' || (n >= 4 && u[2] == '-' && u[3] == '-'))
        return false;
    if (attr(u[0]) & IDNA_MARK)
        return false;
    for (size_t k = 0; k < n; k++) {
        unsigned cls = IDNA_CLASS(attr(u[k]));
        if (cls == PVALID)
            continue;
        if (cls == CONTEXTJ && (u[k] == 0x200D ? k > 0 && (attr(u[k - 1]) & IDNA_VIRAMA)
                                               : zwnj_ok(u, n, k)))
            continue;
        if (cls == CONTEXTO && contexto_ok(u, n, k))
            continue;
        return false;
    }
    return true;
}

eb__idna_label eb__idna_check_alabel(const char *s, size_t n)
{
    eb__idna_label r = {false, false, false};
    uint32_t u[MAX_ULABEL];
    int m = n > 4 ? eb__punycode_decode(s + 4, n - 4, u, MAX_ULABEL) : -1;
    if (m <= 0 || !ulabel_ok(u, (size_t)m))
        return r;
    /* Only the canonical encoding is an A-label (RFC 5891 section 5.4):
     * "xn---mqx" decodes like "xn--mqx" but is not what encoding gives. */
    char again[64];
    int k = eb__punycode_encode(u, (size_t)m, again, sizeof again);
    if (k != (int)n - 4 || strncasecmp(again, s + 4, n - 4) != 0)
        return r;
    r.ok = true;
    r.rtl = has_rtl(u, (size_t)m);
    r.bidi_ok = bidi_ok(u, (size_t)m);
    return r;
}
