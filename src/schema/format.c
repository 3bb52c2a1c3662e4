/* format.c - the "format" values asserted: date-time, date, time,
 * duration, email, hostname (with IDNA2008 A-labels, idna.c), ipv4, ipv6,
 * uri, uri-reference, uuid, json-pointer, regex. Unknown formats are
 * annotations (always valid). */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "schema/idna.h"
#include "schema/internal.h"

int eb__schema_format_id(const char *name)
{
    static const struct { const char *n; int id; } f[] = {
        {"date-time", F_DATETIME}, {"date", F_DATE}, {"time", F_TIME},
        {"duration", F_DURATION}, {"email", F_EMAIL}, {"hostname", F_HOSTNAME},
        {"ipv4", F_IPV4}, {"ipv6", F_IPV6}, {"uri", F_URI}, {"uri-reference", F_URIREF},
        {"uuid", F_UUID}, {"json-pointer", F_JSONPTR}, {"regex", F_REGEX}};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        if (!strcmp(name, f[i].n))
            return f[i].id;
    return F_NONE;
}

static bool digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i]))
            return false;
    return true;
}

static int num(const char *s, size_t n)
{
    int v = 0;
    for (size_t i = 0; i < n; i++)
        v = v * 10 + (s[i] - '0');
    return v;
}

static bool leap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

static bool is_date(const char *s, size_t n)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (n != 10 || s[4] != '-' || s[7] != '-' || !digits(s, 4) || !digits(s + 5, 2) ||
        !digits(s + 8, 2))
        return false;
    int y = num(s, 4), m = num(s + 5, 2), d = num(s + 8, 2);
    if (m < 1 || m > 12 || d < 1)
        return false;
    return d <= mdays[m - 1] + (m == 2 && leap(y));
}

/* RFC 3339 full-time: hh:mm:ss[.frac](Z|+hh:mm|-hh:mm); leap second 60
 * only at 23:59 UTC. */
static bool is_time(const char *s, size_t n)
{
    if (n < 9 || s[2] != ':' || s[5] != ':' || !digits(s, 2) || !digits(s + 3, 2) ||
        !digits(s + 6, 2))
        return false;
    int h = num(s, 2), m = num(s + 3, 2), sec = num(s + 6, 2);
    size_t i = 8;
    if (i < n && s[i] == '.') {
        size_t j = ++i;
        while (i < n && isdigit((unsigned char)s[i]))
            i++;
        if (i == j)
            return false;
    }
    if (i >= n)
        return false;
    int oh = 0, om = 0, sign = 0;
    if ((s[i] == 'Z' || s[i] == 'z') && i + 1 == n) {
    } else if ((s[i] == '+' || s[i] == '-') && i + 6 == n && s[i + 3] == ':' &&
               digits(s + i + 1, 2) && digits(s + i + 4, 2)) {
        sign = s[i] == '+' ? 1 : -1;
        oh = num(s + i + 1, 2);
        om = num(s + i + 4, 2);
        if (oh > 23 || om > 59)
            return false;
    } else {
        return false;
    }
    if (h > 23 || m > 59 || sec > 60)
        return false;
    if (sec == 60) { /* leap second: 23:59:60 in UTC */
        int utc = ((h * 60 + m) - sign * (oh * 60 + om) + 1440) % 1440;
        if (utc != 23 * 60 + 59)
            return false;
    }
    return true;
}

static bool is_datetime(const char *s, size_t n)
{
    return n > 11 && (s[10] == 'T' || s[10] == 't') && is_date(s, 10) &&
           is_time(s + 11, n - 11);
}

/* ISO 8601 duration as RFC 3339 appendix A: P[nY][nM][nD][T[nH][nM][nS]] or PnW. */
static bool is_duration(const char *s, size_t n)
{
    if (n < 2 || s[0] != 'P')
        return false;
    const char *units = "YMDTHMS";
    size_t i = 1, u = 0;
    bool any = false, in_time = false, time_any = false;
    if (n >= 3 && s[n - 1] == 'W')
        return digits(s + 1, n - 2);
    while (i < n) {
        if (s[i] == 'T') {
            if (in_time)
                return false;
            in_time = true;
            i++;
            u = 4;
            continue;
        }
        size_t j = i;
        while (i < n && isdigit((unsigned char)s[i]))
            i++;
        if (i == j || i >= n)
            return false;
        /* s[i] may be NUL (from \u0000): strchr would find the terminator */
        const char *p = s[i] ? strchr(units + u, s[i]) : NULL;
        if (!p || (in_time && p - units < 4) || (!in_time && p - units > 2))
            return false;
        /* After the first unit, each must be the next one (RFC 3339 app. A):
         * P1Y2D and PT1H2S are not durations. */
        if (any && !(in_time && time_any == false) && (size_t)(p - units) != u)
            return false;
        u = (size_t)(p - units) + 1;
        any = true;
        time_any |= in_time;
        i++;
    }
    return any && (!in_time || time_any);
}

static inline bool ascii_alpha(char c) { return (unsigned)((c | 0x20) - 'a') < 26u; }
static inline bool ascii_ldh(char c)
{
    return ascii_alpha(c) || (unsigned)(c - '0') < 10u || c == '-';
}

/* The A-label starting at s (it starts with "xn--"), up to the next '.' or
 * e: LDH, 5-63 octets, no trailing '-', and a valid U-label inside. Its
 * length goes to *len; 0 when it is not valid. */
static size_t alabel(const char *s, const char *e, eb__idna_label *r)
{
    const char *dot = memchr(s, '.', (size_t)(e - s));
    size_t len = (size_t)((dot ? dot : e) - s);
    if (len > 63 || s[len - 1] == '-')
        return 0;
    for (size_t i = 4; i < len; i++)
        if (!ascii_ldh(s[i]))
            return 0;
    *r = eb__idna_check_alabel(s, len);
    return r->ok ? len : 0;
}

/* RFC 1123 host name: LDH labels of 1-63 octets; an A-label ("xn--", RFC
 * 5890 section 2.3.2.1) must hold a valid U-label (idna.c). A name with a
 * right-to-left label must meet the Bidi rule in every label (RFC 5893);
 * an LDH label meets it when it starts with a letter. One pass, no calls
 * unless there is an A-label: this runs on every "email" and "hostname". */
static bool is_hostname(const char *s, size_t n)
{
    if (n == 0 || n > 253)
        return false;
    bool rtl = false, bidi = true;
    size_t label = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '.') {
            if (label == 0 || s[i - 1] == '-')
                return false;
            label = 0;
            continue;
        }
        if (label == 0) { /* a label starts */
            if (n - i > 4 && s[i + 2] == '-' && s[i + 3] == '-' && (c | 0x20) == 'x' &&
                (s[i + 1] | 0x20) == 'n') {
                eb__idna_label r;
                if (!(label = alabel(s + i, s + n, &r)))
                    return false;
                rtl |= r.rtl;
                bidi &= r.bidi_ok;
                i += label - 1;
                continue;
            }
            bidi &= ascii_alpha(c);
        }
        if (!(ascii_alpha(c) || (unsigned)(c - '0') < 10u || (c == '-' && label > 0)) ||
            ++label > 63)
            return false;
    }
    return label > 0 && s[n - 1] != '-' && (!rtl || bidi);
}

static bool is_ipv4(const char *s, size_t n)
{
    char b[16];
    if (n >= sizeof b || memchr(s, '\0', n)) /* C string below: no NUL inside */
        return false;
    memcpy(b, s, n);
    b[n] = '\0';
    int parts = 0;
    for (const char *p = b; *p;) {
        const char *q = p;
        while (isdigit((unsigned char)*q))
            q++;
        if (q == p || q - p > 3 || (q - p > 1 && *p == '0') || num(p, (size_t)(q - p)) > 255)
            return false;
        parts++;
        if (*q == '.')
            q++;
        else if (*q)
            return false;
        p = q;
    }
    return parts == 4 && b[n - 1] != '.';
}

static bool is_ipv6(const char *s, size_t n)
{
    char b[64];
    struct in6_addr a;
    if (n >= sizeof b || memchr(s, '%', n) || memchr(s, '\0', n))
        return false;
    memcpy(b, s, n);
    b[n] = '\0';
    return inet_pton(AF_INET6, b, &a) == 1;
}

static bool is_email(const char *s, size_t n)
{
    if (n > 2 && s[0] == '"') { /* quoted local part: split on the last '@' */
        const char *last = s + n;
        while (last > s && last[-1] != '@')
            last--;
        if (last <= s + 2 || last[-2] != '"')
            return false;
        return is_hostname(last, (size_t)(s + n - last));
    }
    const char *at = memchr(s, '@', n);
    if (!at || at == s || at == s + n - 1 || memchr(at + 1, '@', (size_t)(s + n - at - 1)))
        return false;
    size_t local = (size_t)(at - s);
    if (s[0] == '.' || s[local - 1] == '.')
        return false;
    for (size_t i = 0; i < local; i++)
        if ((s[i] == '.' && s[i + 1] == '.') || (unsigned char)s[i] <= ' ' || s[i] == '"')
            return false;
    const char *dom = at + 1;
    size_t dl = (size_t)(s + n - dom);
    if (dom[0] == '[' && dom[dl - 1] == ']')
        return is_ipv4(dom + 1, dl - 2) ||
               (dl > 7 && !strncmp(dom + 1, "IPv6:", 5) && is_ipv6(dom + 6, dl - 7));
    return is_hostname(dom, dl);
}

static bool is_uuid(const char *s, size_t n)
{
    if (n != 36)
        return false;
    for (size_t i = 0; i < n; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
            return false;
    }
    return true;
}

static bool is_json_pointer(const char *s, size_t n)
{
    if (n && s[0] != '/')
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] == '~' && (i + 1 >= n || (s[i + 1] != '0' && s[i + 1] != '1')))
            return false;
    return true;
}

/* --- RFC 3986 URI and URI-reference ------------------------------------------ */

static bool unreserved(char c) { return isalnum((unsigned char)c) || (c && strchr("-._~", c)); }
static bool sub_delim(char c) { return c && strchr("!$&'()*+,;=", c); }

/* Consumes one pchar-like unit at *p (percent escapes whole); `extra` lists
 * the other characters allowed. */
static bool unit(const char **p, const char *e, const char *extra)
{
    char c = **p;
    if (c == '%') {
        if (e - *p < 3 || !isxdigit((unsigned char)(*p)[1]) || !isxdigit((unsigned char)(*p)[2]))
            return false;
        *p += 3;
        return true;
    }
    if (unreserved(c) || sub_delim(c) || (c && strchr(extra, c))) {
        (*p)++;
        return true;
    }
    return false;
}

/* Consumes *( pchar-ish / extra ) up to a stop character. */
static bool run(const char **p, const char *e, const char *extra, const char *stops)
{
    while (*p < e && !strchr(stops, **p))
        if (!unit(p, e, extra))
            return false;
    return true;
}

static bool ip_literal(const char *s, size_t n)
{
    if (n > 1 && (s[0] == 'v' || s[0] == 'V')) { /* IPvFuture */
        const char *p = s + 1, *e = s + n;
        while (p < e && isxdigit((unsigned char)*p))
            p++;
        if (p == s + 1 || p >= e || *p != '.')
            return false;
        p++;
        return p < e && run(&p, e, ":", "");
    }
    /* inet_pton accepts leading zeros in an embedded IPv4 part: refuse them */
    const char *dot = memchr(s, '.', n);
    if (dot) {
        const char *q = dot;
        while (q > s && q[-1] != ':')
            q--;
        if (!is_ipv4(q, (size_t)(s + n - q)))
            return false;
    }
    return is_ipv6(s, n);
}

static bool authority(const char *s, const char *e)
{
    const char *at = NULL;
    for (const char *p = s; p < e; p++)
        if (*p == '@') {
            if (at)
                return false; /* more than one '@' */
            at = p;
        }
    const char *p = s;
    if (at) {
        if (!run(&p, at, ":", "@") || p != at)
            return false;
        p = at + 1;
    }
    if (p < e && *p == '[') {
        const char *close = memchr(p, ']', (size_t)(e - p));
        if (!close || !ip_literal(p + 1, (size_t)(close - p - 1)))
            return false;
        p = close + 1;
    } else {
        if (!run(&p, e, "", ":"))
            return false;
    }
    if (p < e && *p == ':') {
        for (p++; p < e; p++)
            if (!isdigit((unsigned char)*p))
                return false;
    }
    return p == e;
}

/* hier-part or relative-part, then query and fragment. */
static bool uri_rest(const char *p, const char *e, bool relative)
{
    if (e - p >= 2 && p[0] == '/' && p[1] == '/') {
        const char *a = p + 2, *ae = a;
        while (ae < e && !strchr("/?#", *ae))
            ae++;
        if (!authority(a, ae))
            return false;
        p = ae;
    } else if (relative) { /* path-noscheme: no ':' before the first '/' */
        const char *q = p;
        while (q < e && !strchr("/?#", *q))
            if (*q++ == ':')
                return false;
    }
    if (!run(&p, e, ":@/", "?#"))
        return false;
    if (p < e && *p == '?') {
        p++;
        if (!run(&p, e, ":@/?", "#"))
            return false;
    }
    if (p < e && *p == '#') {
        p++;
        if (!run(&p, e, ":@/?", ""))
            return false;
    }
    return p == e;
}

static size_t scheme(const char *s, size_t n)
{
    if (!n || !isalpha((unsigned char)s[0]))
        return 0;
    size_t i = 1;
    while (i < n && (isalnum((unsigned char)s[i]) || s[i] == '+' || s[i] == '-' || s[i] == '.'))
        i++;
    return i < n && s[i] == ':' ? i : 0;
}

static bool is_uri(const char *s, size_t n)
{
    size_t k = scheme(s, n);
    return k && uri_rest(s + k + 1, s + n, false);
}

static bool is_uri_ref(const char *s, size_t n)
{
    return is_uri(s, n) || uri_rest(s, s + n, true);
}

static bool is_regex(const char *s, size_t n)
{
    int ec;
    PCRE2_SIZE eo;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)s, n, PCRE2_UTF, &ec, &eo, NULL);
    if (!re)
        return false;
    pcre2_code_free(re);
    return true;
}

bool eb__schema_format_ok(int format, const char *s, size_t n)
{
    switch (format) {
    case F_DATETIME: return is_datetime(s, n);
    case F_DATE:     return is_date(s, n);
    case F_TIME:     return is_time(s, n);
    case F_DURATION: return is_duration(s, n);
    case F_EMAIL:    return is_email(s, n);
    case F_HOSTNAME: return is_hostname(s, n);
    case F_IPV4:     return is_ipv4(s, n);
    case F_IPV6:     return is_ipv6(s, n);
    case F_URI:      return is_uri(s, n);
    case F_URIREF:   return is_uri_ref(s, n);
    case F_UUID:     return is_uuid(s, n);
    case F_JSONPTR:  return is_json_pointer(s, n);
    case F_REGEX:    return is_regex(s, n);
    default:         return true;
    }
}
