/* pct.c - percent-decoding (see pct.h). */
#include "util/pct.h"

#include "eventbus/err.h"

static int hexv(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int eb_pct_decode(const char *s, size_t n, char *out, size_t cap, size_t *outn, int mode)
{
    size_t o = 0;
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int hi, lo;
        if (c == '%' && i + 2 < n &&
            (hi = hexv(s[i + 1])) >= 0 && (lo = hexv(s[i + 2])) >= 0 && (hi | lo)) {
            c = (char)(hi << 4 | lo);
            i += 2;
        } else if ((c == '%' || c == '\0') && mode == EB_PCT_STRICT) {
            rc = EB_ESYNTAX;
            break;
        }
        if (o + 1 >= cap) {
            rc = EB_ETOOBIG;
            break;
        }
        out[o++] = c;
    }
    if (cap)
        out[o] = '\0';
    if (outn)
        *outn = o;
    return rc;
}
