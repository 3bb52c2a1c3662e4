/* base64.c - RFC 4648 base64 (see base64.h). */
#include "util/base64.h"

#include <stdint.h>

#include "eventbus/err.h"

static const char enc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void eb_base64_encode(eb_buf *out, const void *p, size_t n)
{
    const unsigned char *s = p;
    if (!eb_buf_reserve(out, (n + 2) / 3 * 4 + 1))
        return;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16;
        if (i + 1 < n) v |= (uint32_t)s[i + 1] << 8;
        if (i + 2 < n) v |= s[i + 2];
        char q[4] = {enc[v >> 18], enc[(v >> 12) & 63], i + 1 < n ? enc[(v >> 6) & 63] : '=',
                     i + 2 < n ? enc[v & 63] : '='};
        eb_buf_append(out, q, 4);
    }
}

static int dec(char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

int eb_base64_decode(eb_buf *out, const char *s, size_t n)
{
    if (n % 4)
        return EB_ESYNTAX;
    for (size_t i = 0; i < n; i += 4) {
        int a = dec(s[i]), b = dec(s[i + 1]);
        int c = s[i + 2] == '=' ? -2 : dec(s[i + 2]), d = s[i + 3] == '=' ? -2 : dec(s[i + 3]);
        bool last = i + 4 == n;
        if (a < 0 || b < 0 || c == -1 || d == -1 || (!last && (c < 0 || d < 0)) ||
            (c == -2 && d != -2))
            return EB_ESYNTAX;
        uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)(c < 0 ? 0 : c) << 6 |
                     (uint32_t)(d < 0 ? 0 : d);
        unsigned char o[3] = {(unsigned char)(v >> 16), (unsigned char)(v >> 8), (unsigned char)v};
        eb_buf_append(out, o, c < 0 ? 1 : d < 0 ? 2 : 3);
    }
    return 0;
}
