/* fuzz_util.c - helpers shared by the fuzz targets (fuzz.h). */
#include "fuzz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void eb__fuzz_fail(const char *file, int line, const char *what)
{
    fprintf(stderr, "%s:%d: property broken: %s\n", file, line, what);
    abort();
}

bool eb__fuzz_json_same(const eb_json *a, const eb_json *b)
{
    if (!a || !b)
        return a == b;
    if (a->type != b->type || a->len != b->len)
        return false;
    switch (a->type) {
    case EB_JSON_NUMBER:
        if (a->flags != b->flags || ((a->flags & EB_JSON_F_INT) && a->i64 != b->i64))
            return false;
        return memcmp(a->str, b->str, a->len) == 0;
    case EB_JSON_STRING:
        return memcmp(a->str, b->str, a->len) == 0;
    case EB_JSON_ARRAY:
    case EB_JSON_OBJECT: {
        const eb_json *x = a->child, *y = b->child;
        for (; x && y; x = x->next, y = y->next) {
            bool keyed = a->type == EB_JSON_OBJECT;
            if (keyed && (x->key_len != y->key_len || memcmp(x->key, y->key, x->key_len)))
                return false;
            if (!eb__fuzz_json_same(x, y))
                return false;
        }
        return !x && !y;
    }
    default:
        return true;
    }
}

uint64_t eb__fuzz_take(const uint8_t **p, const uint8_t *end, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n && i < 8; i++)
        if (*p < end)
            v |= (uint64_t)*(*p)++ << (8 * i);
    return v;
}
