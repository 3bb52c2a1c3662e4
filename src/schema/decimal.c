/* decimal.c - exact comparison and divisibility of JSON number literals
 * (decimal.h). */
#include "schema/decimal.h"

#include <string.h>

#define EXP_CAP 1000000000000LL /* exponents past it are clamped: still exact for
                                   comparing and dividing literals of 1000 chars */

void eb__dec_of(const eb_json *num, eb_dec *out)
{
    const char *p = num->str, *e = num->str + num->len;
    out->neg = false;
    out->n = 0;
    out->exp = 0;
    if (p < e && *p == '-') {
        out->neg = true;
        p++;
    }
    bool frac = false;
    for (; p < e && *p != 'e' && *p != 'E'; p++) {
        if (*p == '.') {
            frac = true;
            continue;
        }
        if (out->n || *p != '0') /* no leading zeros */
            if (out->n < sizeof out->d)
                out->d[out->n++] = *p;
        if (frac)
            out->exp--;
    }
    if (p < e) { /* exponent */
        p++;
        bool eneg = p < e && *p == '-';
        if (p < e && (*p == '-' || *p == '+'))
            p++;
        int64_t x = 0;
        for (; p < e; p++)
            if (x < EXP_CAP)
                x = x * 10 + (*p - '0');
        out->exp += eneg ? -x : x;
    }
    while (out->n && out->d[out->n - 1] == '0') { /* no trailing zeros */
        out->n--;
        out->exp++;
    }
    if (!out->n)
        out->neg = false, out->exp = 0;
}

static int mag_cmp(const eb_dec *a, const eb_dec *b)
{
    int64_t ta = (int64_t)a->n + a->exp, tb = (int64_t)b->n + b->exp; /* digits before the point */
    if (ta != tb)
        return ta < tb ? -1 : 1;
    uint32_t k = a->n < b->n ? a->n : b->n;
    int c = memcmp(a->d, b->d, k);
    if (c)
        return c < 0 ? -1 : 1;
    return a->n == b->n ? 0 : a->n < b->n ? -1 : 1; /* more (non-zero) digits: larger */
}

int eb__dec_cmp(const eb_dec *a, const eb_dec *b)
{
    if (!a->n || !b->n)
        return !a->n && !b->n ? 0 : !a->n ? (b->neg ? 1 : -1) : (a->neg ? -1 : 1);
    if (a->neg != b->neg)
        return a->neg ? -1 : 1;
    int c = mag_cmp(a, b);
    return a->neg ? -c : c;
}

int eb__num_cmp(const eb_json *a, const eb_json *b)
{
    if ((a->flags & EB_JSON_F_INT) && (b->flags & EB_JSON_F_INT))
        return a->i64 < b->i64 ? -1 : a->i64 > b->i64;
    eb_dec x, y;
    eb__dec_of(a, &x);
    eb__dec_of(b, &y);
    return eb__dec_cmp(&x, &y);
}

/* Divides the digit string d[0..n) by k in place (leading zero dropped);
 * returns the remainder. */
static unsigned div_small(char *d, uint32_t *n, unsigned k)
{
    unsigned r = 0;
    uint32_t o = 0;
    for (uint32_t i = 0; i < *n; i++) {
        unsigned cur = r * 10 + (unsigned)(d[i] - '0');
        char q = (char)('0' + cur / k);
        r = cur % k;
        if (o || q != '0')
            d[o++] = q;
    }
    *n = o;
    return r;
}

/* Whether 2^p (k = 2) or 5^p (k = 5) divides the digit string x. */
static bool divisible_pow(const char *x, uint32_t n, unsigned k, int64_t p)
{
    char t[sizeof ((eb_dec *)0)->d];
    memcpy(t, x, n);
    for (int64_t i = 0; i < p; i++)
        if (!n || div_small(t, &n, k))
            return false;
    return true;
}

/* a >= b for digit strings without leading zeros. */
static bool ge(const char *a, uint32_t an, const char *b, uint32_t bn)
{
    if (an != bn)
        return an > bn;
    return memcmp(a, b, an) >= 0;
}

/* Whether the digit string r divides x (both without leading zeros; r > 0). */
static bool divides(const char *r, uint32_t rn, const char *x, uint32_t xn)
{
    if (rn <= 18) { /* fits: one pass with 128-bit products */
        uint64_t m = 0, rem = 0;
        for (uint32_t i = 0; i < rn; i++)
            m = m * 10 + (uint64_t)(r[i] - '0');
        for (uint32_t i = 0; i < xn; i++)
            rem = (uint64_t)(((unsigned __int128)rem * 10 + (uint64_t)(x[i] - '0')) % m);
        return rem == 0;
    }
    /* long division, base 10: rem = rem*10 + digit, then subtract r while it fits */
    char rem[sizeof ((eb_dec *)0)->d + 1];
    uint32_t remn = 0;
    for (uint32_t i = 0; i < xn; i++) {
        if (remn || x[i] != '0')
            rem[remn++] = x[i];
        while (ge(rem, remn, r, rn)) {
            int borrow = 0; /* rem -= r, right-aligned */
            for (uint32_t k = 0; k < remn; k++) {
                int rd = k < rn ? r[rn - 1 - k] - '0' : 0;
                int v = rem[remn - 1 - k] - '0' - rd - borrow;
                borrow = v < 0;
                rem[remn - 1 - k] = (char)('0' + (v < 0 ? v + 10 : v));
            }
            uint32_t z = 0;
            while (z < remn && rem[z] == '0')
                z++;
            memmove(rem, rem + z, remn - z);
            remn -= z;
        }
    }
    return remn == 0;
}

/* x = X·10^ex, m = M·10^em with no trailing zeros in X or M. x/m is an
 * integer iff ex >= em (else 10 would divide X) and M | X·10^(ex-em):
 * with M = 2^a·5^b·R, gcd(R, 10) = 1, that is R | X, 2^(a-e) | X and
 * 5^(b-e) | X. */
bool eb__num_multiple(const eb_json *x, const eb_json *m)
{
    if ((x->flags & EB_JSON_F_INT) && (m->flags & EB_JSON_F_INT) && m->i64 > 0)
        return x->i64 % m->i64 == 0;
    eb_dec X, M;
    eb__dec_of(x, &X);
    eb__dec_of(m, &M);
    if (!X.n)
        return true;
    if (!M.n)
        return false;
    int64_t e = X.exp - M.exp;
    if (e < 0)
        return false;
    int64_t a = 0, b = 0;
    char t[sizeof M.d];
    uint32_t tn = M.n, saved;
    memcpy(t, M.d, tn);
    for (;;) { /* strip the factors 2 and 5 of M */
        char u[sizeof M.d];
        memcpy(u, t, tn);
        saved = tn;
        if (div_small(u, &saved, 2) == 0) {
            memcpy(t, u, saved);
            tn = saved;
            a++;
            continue;
        }
        saved = tn;
        memcpy(u, t, tn);
        if (div_small(u, &saved, 5) == 0) {
            memcpy(t, u, saved);
            tn = saved;
            b++;
            continue;
        }
        break;
    }
    if (a > e && !divisible_pow(X.d, X.n, 2, a - e))
        return false;
    if (b > e && !divisible_pow(X.d, X.n, 5, b - e))
        return false;
    return divides(t, tn, X.d, X.n);
}
