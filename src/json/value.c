/* value.c - reading a parsed tree: lookups, numbers, equality (json.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "json/json.h"

const eb_json *eb_json_getn(const eb_json *obj, const char *key, size_t klen)
{
    if (!obj || obj->type != EB_JSON_OBJECT)
        return NULL;
    for (const eb_json *m = obj->child; m; m = m->next)
        if (m->key_len == klen && memcmp(m->key, key, klen) == 0)
            return m;
    return NULL;
}

const eb_json *eb_json_get(const eb_json *obj, const char *key)
{
    return eb_json_getn(obj, key, strlen(key));
}

bool eb_json_key_is(const eb_json *m, const char *key)
{
    size_t n = strlen(key);
    return m && m->key && m->key_len == n && memcmp(m->key, key, n) == 0;
}

const eb_json *eb_json_at(const eb_json *arr, size_t i)
{
    if (!arr || arr->type != EB_JSON_ARRAY)
        return NULL;
    const eb_json *e = arr->child;
    while (e && i--)
        e = e->next;
    return e;
}

/* Clinger's fast path for a JSON number text: with at most 15 significant
 * digits the digits are an exact double, and so is 10^e for |e| <= 22, so
 * one multiply or divide rounds exactly as strtod does. false: use strtod. */
static bool fast_decimal(const char *s, double *out)
{
    static const double pow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                   1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                   1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    bool neg = *s == '-';
    s += neg;
    uint64_t m = 0;
    int digits = 0, exp10 = 0;
    for (bool frac = false;; s++) {
        if (*s == '.' && !frac) {
            frac = true;
            continue;
        }
        if (*s < '0' || *s > '9')
            break;
        if ((m || *s != '0') && ++digits > 15)
            return false;
        m = m * 10 + (uint64_t)(*s - '0');
        exp10 -= frac;
    }
    if (*s == 'e' || *s == 'E') {
        s++;
        bool eneg = *s == '-';
        s += *s == '-' || *s == '+';
        int e = 0;
        for (; *s >= '0' && *s <= '9'; s++)
            if ((e = e * 10 + (*s - '0')) > 1000)
                return false;
        exp10 += eneg ? -e : e;
    }
    if (*s || exp10 < -22 || exp10 > 22)
        return false;
    double d = exp10 < 0 ? (double)m / pow10[-exp10] : (double)m * pow10[exp10];
    *out = neg ? -d : d;
    return true;
}

double eb_json_num(const eb_json *v)
{
    if (!v || v->type != EB_JSON_NUMBER)
        return 0;
    if (v->flags & EB_JSON_F_INT)
        return (double)v->i64;
    double d;
    return fast_decimal(v->str, &d) ? d : strtod(v->str, NULL);
}

bool eb_json_is_integral(const eb_json *v)
{
    if (!v || v->type != EB_JSON_NUMBER)
        return false;
    if (v->flags & EB_JSON_F_INT)
        return true;
    double d = eb_json_num(v);
    return isfinite(d) ? floor(d) == d : false;
}

static bool num_equal(const eb_json *a, const eb_json *b)
{
    if ((a->flags & b->flags & EB_JSON_F_INT))
        return a->i64 == b->i64;
    if (a->len == b->len && memcmp(a->str, b->str, a->len) == 0)
        return true;
    return eb_json_num(a) == eb_json_num(b);
}

static bool obj_equal(const eb_json *a, const eb_json *b)
{
    if (a->len != b->len)
        return false;
    for (const eb_json *m = a->child; m; m = m->next) {
        const eb_json *o = eb_json_getn(b, m->key, m->key_len);
        if (!o || !eb_json_equal(m, o))
            return false;
    }
    return true;
}

bool eb_json_equal(const eb_json *a, const eb_json *b)
{
    if (!a || !b)
        return a == b;
    if (a->type != b->type)
        return false;
    switch (a->type) {
    case EB_JSON_NUMBER:
        return num_equal(a, b);
    case EB_JSON_STRING:
        return a->len == b->len && memcmp(a->str, b->str, a->len) == 0;
    case EB_JSON_ARRAY: {
        if (a->len != b->len)
            return false;
        for (const eb_json *x = a->child, *y = b->child; x; x = x->next, y = y->next)
            if (!eb_json_equal(x, y))
                return false;
        return true;
    }
    case EB_JSON_OBJECT:
        return obj_equal(a, b);
    default:
        return true;
    }
}

size_t eb_json_strlen_cp(const eb_json *v)
{
    if (!v || v->type != EB_JSON_STRING)
        return 0;
    size_t n = 0;
    for (uint32_t i = 0; i < v->len; i++)
        n += ((unsigned char)v->str[i] & 0xC0) != 0x80;
    return n;
}

const char *eb_json_type_name(eb_json_type t)
{
    switch (t) {
    case EB_JSON_NULL:   return "null";
    case EB_JSON_FALSE:
    case EB_JSON_TRUE:   return "boolean";
    case EB_JSON_NUMBER: return "number";
    case EB_JSON_STRING: return "string";
    case EB_JSON_ARRAY:  return "array";
    case EB_JSON_OBJECT: return "object";
    }
    return "unknown";
}
