/* write.c - the streaming JSON writer (json.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json/json.h"

static const char hexd[] = "0123456789abcdef";

/* 1 for bytes that need escaping in a JSON string, or checking (non-ASCII:
 * must be valid UTF-8). One lookup per byte on the plain-ASCII path. */
static const unsigned char needs_esc[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* '"' */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, /* '\\' */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x80-0xff */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
};

/* True when none of the 8 bytes of x needs escaping or checking: no byte
 * below 0x20, no '"', no '\\', none at 0x80 or above. The classic SWAR
 * tests ("has less than", "has zero") are exact for "any byte". */
static bool plain8(uint64_t x)
{
    const uint64_t ones = 0x0101010101010101u, high = 0x8080808080808080u;
    uint64_t q = x ^ (ones * '"'), b = x ^ (ones * '\\');
    uint64_t t = ((x - ones * 0x20) & ~x) | ((q - ones) & ~q) | ((b - ones) & ~b) | x;
    return (t & high) == 0;
}

void eb_json_escape(eb_buf *out, const char *s, size_t n)
{
    if (!eb_buf_reserve(out, n + 2))
        return;
    out->data[out->len++] = '"';
    size_t run = 0, i = 0;
    while (i < n) {
        uint64_t x;
        if (n - i >= 8 && (memcpy(&x, s + i, 8), plain8(x))) {
            i += 8; /* eight plain bytes at once */
            continue;
        }
        unsigned char c = (unsigned char)s[i];
        if (!needs_esc[c]) {
            i++;
            continue;
        }
        if (c >= 0x80) {
            size_t k = eb_json_utf8_len(s + i, n - i);
            if (k) {
                i += k;
                continue;
            }
            eb_buf_append(out, s + run, i - run);
            eb_buf_append(out, "\\ufffd", 6); /* not UTF-8: the replacement character */
            run = ++i;
            continue;
        }
        eb_buf_append(out, s + run, i - run);
        run = ++i;
        char e[6] = {'\\', 0};
        switch (c) {
        case '"': e[1] = '"'; break;
        case '\\': e[1] = '\\'; break;
        case '\n': e[1] = 'n'; break;
        case '\r': e[1] = 'r'; break;
        case '\t': e[1] = 't'; break;
        case '\b': e[1] = 'b'; break;
        case '\f': e[1] = 'f'; break;
        default:
            e[1] = 'u'; e[2] = '0'; e[3] = '0';
            e[4] = hexd[c >> 4]; e[5] = hexd[c & 15];
            eb_buf_append(out, e, 6);
            continue;
        }
        eb_buf_append(out, e, 2);
    }
    eb_buf_append(out, s + run, n - run);
    eb_buf_putc(out, '"');
}

void eb_jw_init(eb_jw *w, eb_buf *out)
{
    memset(w, 0, sizeof *w);
    w->out = out;
}

/* Emits the separator a new value (or key) needs at the current level. */
static void before_value(eb_jw *w)
{
    if (w->after_key) {
        w->after_key = false;
        return;
    }
    if (!w->depth)
        return;
    uint32_t d = w->depth - 1;
    uint64_t bit = 1ull << (d % 64);
    if (w->has_items[d / 64] & bit)
        eb_buf_putc(w->out, ',');
    else
        w->has_items[d / 64] |= bit;
}

static void open_c(eb_jw *w, char c)
{
    before_value(w);
    eb_buf_putc(w->out, c);
    if (w->depth < EB_JW_MAX_DEPTH) {
        uint32_t d = w->depth++;
        w->has_items[d / 64] &= ~(1ull << (d % 64));
    }
}

static void close_c(eb_jw *w, char c)
{
    if (w->depth)
        w->depth--;
    eb_buf_putc(w->out, c);
}

void eb_jw_obj_open(eb_jw *w) { open_c(w, '{'); }
void eb_jw_obj_close(eb_jw *w) { close_c(w, '}'); }
void eb_jw_arr_open(eb_jw *w) { open_c(w, '['); }
void eb_jw_arr_close(eb_jw *w) { close_c(w, ']'); }

void eb_jw_keyn(eb_jw *w, const char *key, size_t n)
{
    before_value(w);
    eb_json_escape(w->out, key, n);
    eb_buf_putc(w->out, ':');
    w->after_key = true;
}

void eb_jw_key(eb_jw *w, const char *key) { eb_jw_keyn(w, key, strlen(key)); }

void eb_jw_key_lit(eb_jw *w, const char *quoted_colon, size_t n)
{
    before_value(w);
    eb_buf_append(w->out, quoted_colon, n);
    w->after_key = true;
}

void eb_jw_strn(eb_jw *w, const char *s, size_t n)
{
    before_value(w);
    eb_json_escape(w->out, s, n);
}

void eb_jw_str(eb_jw *w, const char *s)
{
    if (!s) {
        eb_jw_null(w);
        return;
    }
    eb_jw_strn(w, s, strlen(s));
}

/* Writes u in decimal, after a '-' when neg. */
static void put_decimal(eb_jw *w, uint64_t u, bool neg)
{
    before_value(w);
    char b[24], *p = b + sizeof b;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (neg)
        *--p = '-';
    eb_buf_append(w->out, p, (size_t)(b + sizeof b - p));
}

void eb_jw_int(eb_jw *w, int64_t v)
{
    put_decimal(w, v < 0 ? 0 - (uint64_t)v : (uint64_t)v, v < 0);
}

void eb_jw_uint(eb_jw *w, uint64_t v)
{
    put_decimal(w, v, false);
}

void eb_jw_double(eb_jw *w, double v)
{
    if (!isfinite(v)) {
        eb_jw_null(w);
        return;
    }
    before_value(w);
    char b[40];
    int n = snprintf(b, sizeof b, "%.15g", v);
    if (strtod(b, NULL) != v)
        n = snprintf(b, sizeof b, "%.17g", v);
    eb_buf_append(w->out, b, (size_t)n);
}

void eb_jw_bool(eb_jw *w, bool v)
{
    before_value(w);
    eb_buf_puts(w->out, v ? "true" : "false");
}

void eb_jw_null(eb_jw *w)
{
    before_value(w);
    eb_buf_append(w->out, "null", 4);
}

void eb_jw_raw(eb_jw *w, const char *json, size_t n)
{
    before_value(w);
    eb_buf_append(w->out, json, n);
}

void eb_jw_value(eb_jw *w, const eb_json *v)
{
    /* Iterative walk: nested depth is bounded by the parser, but keep the
     * C stack flat anyway. */
    const eb_json *stack[EB_JW_MAX_DEPTH];
    uint32_t sp = 0;
    const eb_json *n = v;
    while (n) {
        if (sp && n != v && stack[sp - 1]->type == EB_JSON_OBJECT)
            eb_jw_keyn(w, n->key, n->key_len);
        switch (n->type) {
        case EB_JSON_NULL:   eb_jw_null(w); break;
        case EB_JSON_TRUE:   eb_jw_bool(w, true); break;
        case EB_JSON_FALSE:  eb_jw_bool(w, false); break;
        case EB_JSON_NUMBER: eb_jw_raw(w, n->str, n->len); break;
        case EB_JSON_STRING: eb_jw_strn(w, n->str, n->len); break;
        case EB_JSON_ARRAY:
        case EB_JSON_OBJECT:
            if (n->type == EB_JSON_ARRAY)
                eb_jw_arr_open(w);
            else
                eb_jw_obj_open(w);
            if (n->child && sp < EB_JW_MAX_DEPTH) {
                stack[sp++] = n;
                n = n->child;
                continue;
            }
            if (n->type == EB_JSON_ARRAY)
                eb_jw_arr_close(w);
            else
                eb_jw_obj_close(w);
            break;
        }
        /* Move to the next sibling, closing finished containers. */
        while (n && n != v && !n->next && sp) {
            n = stack[--sp];
            if (n->type == EB_JSON_ARRAY)
                eb_jw_arr_close(w);
            else
                eb_jw_obj_close(w);
        }
        n = (n && n != v) ? n->next : NULL;
    }
}
