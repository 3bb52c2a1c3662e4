/* parse.c - the strict, arena-based, non-recursive JSON parser (json.h).
 *
 * One pass over the text builds eb_json nodes in the document's arena.
 * Containers are tracked on an explicit stack (depth-bounded), so hostile
 * nesting can never overflow the C stack. Strings are validated as UTF-8
 * and unescaped into the arena; numbers are checked against the RFC 8259
 * grammar and keep their text (plus an int64 when they fit). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eventbus/err.h"
#include "json/json.h"
#include "util/xmalloc.h"

#define CHUNK_MIN 8192

typedef struct chunk {
    struct chunk *next;
    size_t        cap;  /* bytes in mem */
    size_t        used; /* bytes handed out */
    _Alignas(16) char mem[];
} chunk;

/* A parent under construction: where its next child is linked. */
typedef struct frame {
    eb_json *node;  /* the array or object */
    eb_json *last;  /* its last child so far */
} frame;

/* One key of a large object in the duplicate-key table. */
typedef struct key_slot {
    const eb_json *obj; /* NULL = empty */
    const char    *key;
    uint32_t       len;
    uint32_t       hash;
} key_slot;

struct eb_json_doc {
    chunk   *chunks;  /* in use, newest first */
    chunk   *spare;   /* kept for reuse */
    frame   *stack;   /* open containers */
    uint32_t stack_cap;
    eb_json *root;
    key_slot *keys;   /* duplicate-key table: (object, key) of large objects */
    size_t   keys_cap; /* slots, a power of two */
    size_t   keys_used;
};

/* --- arena ------------------------------------------------------------- */

static void *arena_alloc(eb_json_doc *d, size_t n)
{
    n = (n + 7) & ~(size_t)7;
    chunk *c = d->chunks;
    if (!c || c->used + n > c->cap) {
        chunk **pp = &d->spare;
        while (*pp && (*pp)->cap < n)
            pp = &(*pp)->next;
        if (*pp) {
            c = *pp;
            *pp = c->next;
        } else {
            size_t cap = n > CHUNK_MIN ? n : CHUNK_MIN;
            if (d->chunks && d->chunks->cap * 2 > cap && d->chunks->cap < (1u << 22))
                cap = d->chunks->cap * 2;
            if (!(c = malloc(sizeof *c + cap))) {
                eb__alloc_failed(sizeof *c + cap);
                return NULL;
            }
            c->cap = cap;
        }
        c->used = 0;
        c->next = d->chunks;
        d->chunks = c;
    }
    void *p = c->mem + c->used;
    c->used += n;
    return p;
}

static void arena_reset(eb_json_doc *d)
{
    while (d->chunks) {
        chunk *c = d->chunks;
        d->chunks = c->next;
        c->next = d->spare;
        d->spare = c;
    }
    d->root = NULL;
}

eb_json_doc *eb_json_doc_new(void)
{
    eb_json_doc *d = calloc(1, sizeof *d);
    if (!d)
        eb__alloc_failed(sizeof *d);
    return d;
}

void eb_json_doc_free(eb_json_doc *d)
{
    if (!d)
        return;
    arena_reset(d);
    while (d->spare) {
        chunk *c = d->spare;
        d->spare = c->next;
        free(c);
    }
    free(d->stack);
    free(d->keys);
    free(d);
}

const eb_json *eb_json_root(const eb_json_doc *d)
{
    return d ? d->root : NULL;
}

/* --- the parser -------------------------------------------------------- */

typedef struct parser {
    eb_json_doc   *doc;
    const char    *s;     /* text */
    const char    *p;     /* cursor */
    const char    *end;
    uint32_t       max_depth;
    uint32_t       depth;
    bool           dup_keys;
    eb_json_error *err;
    int            rc;
    uint32_t       max_number; /* characters in a number literal */
    const char    *key;        /* key of the value being parsed (objects) */
    uint32_t       key_len;
} parser;

static int fail(parser *ps, const char *at, int rc, const char *msg)
{
    if (ps->rc)
        return ps->rc;
    ps->rc = rc;
    if (ps->err) {
        size_t off = (size_t)(at - ps->s);
        uint32_t line = 1, col = 1;
        for (const char *q = ps->s; q < at; q++) {
            if (*q == '\n') {
                line++;
                col = 1;
            } else {
                col++;
            }
        }
        ps->err->offset = off;
        ps->err->line = line;
        ps->err->column = col;
        snprintf(ps->err->msg, sizeof ps->err->msg, "%s", msg);
    }
    return rc;
}

static inline void skip_ws(parser *ps)
{
    const char *p = ps->p, *e = ps->end;
    while (p < e && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    ps->p = p;
}

static eb_json *new_node(parser *ps, uint8_t type, const char *start)
{
    eb_json *n = arena_alloc(ps->doc, sizeof *n);
    if (!n) {
        fail(ps, start, EB_ENOMEM, "out of memory");
        return NULL;
    }
    memset(n, 0, sizeof *n);
    n->type = type;
    n->src_off = (uint32_t)(start - ps->s);
    return n;
}

/* Length of the valid UTF-8 sequence at p (non-ASCII lead), or 0. */
static size_t utf8_seq(const unsigned char *p, const unsigned char *e)
{
    unsigned c = p[0];
    if (c >= 0xC2 && c <= 0xDF)
        return (e - p >= 2 && (p[1] & 0xC0) == 0x80) ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if (e - p < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80)
            return 0;
        if (c == 0xE0 && p[1] < 0xA0)
            return 0; /* overlong */
        if (c == 0xED && p[1] >= 0xA0)
            return 0; /* UTF-16 surrogate encoded in UTF-8 */
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (e - p < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 ||
            (p[3] & 0xC0) != 0x80)
            return 0;
        if (c == 0xF0 && p[1] < 0x90)
            return 0; /* overlong */
        if (c == 0xF4 && p[1] >= 0x90)
            return 0; /* > U+10FFFF */
        return 4;
    }
    return 0;
}

size_t eb_json_utf8_len(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    if (!n)
        return 0;
    return p[0] < 0x80 ? 1 : utf8_seq(p, p + n);
}

bool eb_json_utf8_valid(const char *s, size_t n)
{
    for (size_t i = 0, k; i < n; i += k)
        if (!(k = eb_json_utf8_len(s + i, n - i)))
            return false;
    return true;
}

static int hex4(const char *p, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
        else return -1;
    }
    *out = v;
    return 0;
}

static char *put_utf8(char *d, unsigned cp)
{
    if (cp < 0x80) {
        *d++ = (char)cp;
    } else if (cp < 0x800) {
        *d++ = (char)(0xC0 | (cp >> 6));
        *d++ = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *d++ = (char)(0xE0 | (cp >> 12));
        *d++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *d++ = (char)(0x80 | (cp & 0x3F));
    } else {
        *d++ = (char)(0xF0 | (cp >> 18));
        *d++ = (char)(0x80 | ((cp >> 12) & 0x3F));
        *d++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *d++ = (char)(0x80 | (cp & 0x3F));
    }
    return d;
}

/* Decodes one escape at *pp (just after the backslash) into d. */
static char *unescape(parser *ps, const char **pp, char *d)
{
    const char *p = *pp;
    if (p >= ps->end) {
        fail(ps, p, EB_ESYNTAX, "unterminated string");
        return NULL;
    }
    switch (*p) {
    case '"': *d++ = '"'; break;
    case '\\': *d++ = '\\'; break;
    case '/': *d++ = '/'; break;
    case 'b': *d++ = '\b'; break;
    case 'f': *d++ = '\f'; break;
    case 'n': *d++ = '\n'; break;
    case 'r': *d++ = '\r'; break;
    case 't': *d++ = '\t'; break;
    case 'u': {
        unsigned cp, lo;
        if (ps->end - p < 5 || hex4(p + 1, &cp)) {
            fail(ps, p, EB_ESYNTAX, "invalid \\u escape");
            return NULL;
        }
        p += 4;
        if (cp >= 0xDC00 && cp <= 0xDFFF) {
            fail(ps, p - 5, EB_ESYNTAX, "lone low surrogate in \\u escape");
            return NULL;
        }
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (ps->end - p < 7 || p[1] != '\\' || p[2] != 'u' || hex4(p + 3, &lo) ||
                lo < 0xDC00 || lo > 0xDFFF) {
                fail(ps, p - 5, EB_ESYNTAX, "lone high surrogate in \\u escape");
                return NULL;
            }
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            p += 6;
        }
        d = put_utf8(d, cp);
        break;
    }
    default:
        fail(ps, p - 1, EB_ESYNTAX, "invalid escape in string");
        return NULL;
    }
    *pp = p + 1;
    return d;
}

/* Parses a string at ps->p (on the opening quote). The decoded text is
 * never longer than the source, so one arena block of that size holds it. */
static int parse_string(parser *ps, const char **out, uint32_t *out_len)
{
    const char *start = ps->p + 1, *p = start, *e = ps->end;
    /* Fast scan: plain ASCII up to the closing quote. */
    while (p < e) {
        unsigned char c = (unsigned char)*p;
        if (c == '"' || c == '\\' || c < 0x20 || c >= 0x80)
            break;
        p++;
    }
    if (p >= e)
        return fail(ps, ps->p, EB_ESYNTAX, "unterminated string");
    if (*p == '"') {
        size_t n = (size_t)(p - start);
        char *d = arena_alloc(ps->doc, n + 1);
        if (!d)
            return fail(ps, start, EB_ENOMEM, "out of memory");
        memcpy(d, start, n);
        d[n] = '\0';
        *out = d;
        *out_len = (uint32_t)n;
        ps->p = p + 1;
        return 0;
    }
    /* Slow path: escapes, UTF-8, or an error. Find the end first. */
    const char *q = p;
    while (q < e && *q != '"') {
        if (*q == '\\')
            q++;
        q++;
    }
    if (q >= e)
        return fail(ps, ps->p, EB_ESYNTAX, "unterminated string");
    char *buf = arena_alloc(ps->doc, (size_t)(q - start) + 1), *d = buf;
    if (!buf)
        return fail(ps, start, EB_ENOMEM, "out of memory");
    memcpy(d, start, (size_t)(p - start));
    d += p - start;
    while (p < q) {
        unsigned char c = (unsigned char)*p;
        if (c == '\\') {
            p++;
            if (!(d = unescape(ps, &p, d)))
                return ps->rc;
        } else if (c < 0x20) {
            return fail(ps, p, EB_ESYNTAX, "control character in string");
        } else if (c < 0x80) {
            *d++ = (char)c;
            p++;
        } else {
            size_t n = utf8_seq((const unsigned char *)p, (const unsigned char *)q);
            if (!n)
                return fail(ps, p, EB_ESYNTAX, "invalid UTF-8 in string");
            memcpy(d, p, n);
            d += n;
            p += n;
        }
    }
    *d = '\0';
    *out = buf;
    *out_len = (uint32_t)(d - buf);
    ps->p = q + 1;
    return 0;
}

/* Appends one JSON Pointer token (RFC 6901 escaped) to out. */
static void path_token(char *out, size_t cap, const char *k, size_t n)
{
    size_t at = strlen(out);
    if (at + 1 < cap)
        out[at++] = '/';
    for (size_t i = 0; i < n && at + 2 < cap; i++) {
        if (k[i] == '~' || k[i] == '/') {
            out[at++] = '~';
            out[at++] = k[i] == '~' ? '0' : '1';
        } else {
            out[at++] = k[i];
        }
    }
    out[at < cap ? at : cap - 1] = '\0';
}

/* The JSON Pointer of the value being parsed ("/data/items/3/price"),
 * from the open containers; cut short at cap. */
static void current_path(const parser *ps, char *out, size_t cap)
{
    out[0] = '\0';
    const frame *st = ps->doc->stack;
    for (uint32_t i = 0; i < ps->depth; i++) {
        const eb_json *c = st[i].node;
        if (i + 1 < ps->depth) {
            const eb_json *child = st[i + 1].node;
            if (c->type == EB_JSON_OBJECT) {
                path_token(out, cap, child->key, child->key_len);
            } else {
                char idx[16];
                snprintf(idx, sizeof idx, "%u", c->len - 1);
                path_token(out, cap, idx, strlen(idx));
            }
        } else if (c->type == EB_JSON_OBJECT) {
            path_token(out, cap, ps->key, ps->key_len);
        } else {
            char idx[16];
            snprintf(idx, sizeof idx, "%u", c->len);
            path_token(out, cap, idx, strlen(idx));
        }
    }
}

/* A number literal over the bound (issue 13: a 61,440-digit integer was
 * stored, and clients such as Python's json refuse past 4,300 digits). */
static int number_too_long(parser *ps, const char *start)
{
    char path[64], msg[160]; /* (err->msg keeps the first 95 bytes) */
    current_path(ps, path, sizeof path);
    snprintf(msg, sizeof msg, "number at %s longer than %u characters",
             path[0] ? path : "/", ps->max_number);
    return fail(ps, start, EB_ESYNTAX, msg);
}

static int parse_number(parser *ps, eb_json *n)
{
    const char *p = ps->p, *e = ps->end, *start = p;
    bool neg = false, is_int = true;
    if (p < e && *p == '-') {
        neg = true;
        p++;
    }
    if (p >= e || *p < '0' || *p > '9')
        return fail(ps, start, EB_ESYNTAX, "invalid number");
    uint64_t v = 0;
    bool overflow = false;
    if (*p == '0') {
        p++;
        if (p < e && *p >= '0' && *p <= '9')
            return fail(ps, start, EB_ESYNTAX, "leading zero in number");
    } else {
        while (p < e && *p >= '0' && *p <= '9') {
            unsigned dgt = (unsigned)(*p - '0');
            if (v > (UINT64_MAX - dgt) / 10)
                overflow = true;
            else
                v = v * 10 + dgt;
            p++;
        }
    }
    if (p < e && *p == '.') {
        is_int = false;
        p++;
        if (p >= e || *p < '0' || *p > '9')
            return fail(ps, p, EB_ESYNTAX, "digit expected after decimal point");
        while (p < e && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        is_int = false;
        p++;
        if (p < e && (*p == '+' || *p == '-'))
            p++;
        if (p >= e || *p < '0' || *p > '9')
            return fail(ps, p, EB_ESYNTAX, "digit expected in exponent");
        while (p < e && *p >= '0' && *p <= '9')
            p++;
    }
    size_t len = (size_t)(p - start);
    if (len > ps->max_number)
        return number_too_long(ps, start);
    char *t = arena_alloc(ps->doc, len + 1);
    if (!t)
        return fail(ps, start, EB_ENOMEM, "out of memory");
    memcpy(t, start, len);
    t[len] = '\0';
    n->str = t;
    n->len = (uint32_t)len;
    if (is_int && !overflow && (neg ? v <= (uint64_t)INT64_MAX + 1 : v <= (uint64_t)INT64_MAX)) {
        n->flags |= EB_JSON_F_INT;
        n->i64 = neg ? (int64_t)(0 - v) : (int64_t)v;
    }
    ps->p = p;
    return 0;
}

static int parse_literal(parser *ps, eb_json *n)
{
    const char *p = ps->p;
    size_t left = (size_t)(ps->end - p);
    if (left >= 4 && !memcmp(p, "true", 4)) {
        n->type = EB_JSON_TRUE;
        ps->p += 4;
    } else if (left >= 5 && !memcmp(p, "false", 5)) {
        n->type = EB_JSON_FALSE;
        ps->p += 5;
    } else if (left >= 4 && !memcmp(p, "null", 4)) {
        n->type = EB_JSON_NULL;
        ps->p += 4;
    } else {
        return fail(ps, p, EB_ESYNTAX, "unexpected character");
    }
    return 0;
}

/* --- duplicate keys ---------------------------------------------------------
 * A small object is scanned; past DUP_SCAN members its keys go into one
 * open-addressing table per parse, keyed by (object, key), so an object of
 * n keys costs O(n), not O(n^2) (issue 13: a 1 MB object of distinct keys
 * held the event loop for 23 s). */
#define DUP_SCAN 16

static uint32_t key_hash(const eb_json *obj, const char *k, uint32_t n)
{
    uint64_t h = 0xcbf29ce484222325u ^ (uint64_t)(uintptr_t)obj; /* FNV-1a */
    for (uint32_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)k[i]) * 0x100000001b3u;
    return (uint32_t)(h ^ (h >> 32));
}

/* Finds (obj, k) in the table, inserting it when absent: 1 = was there,
 * 0 = inserted, <0 = out of memory. */
static int keys_put(eb_json_doc *d, const eb_json *obj, const char *k, uint32_t n);

static int keys_grow(eb_json_doc *d)
{
    size_t cap = d->keys_cap ? d->keys_cap * 2 : 256;
    key_slot *old = d->keys;
    size_t old_cap = d->keys_cap;
    if (!(d->keys = calloc(cap, sizeof *d->keys))) {
        d->keys = old;
        return EB_ENOMEM;
    }
    d->keys_cap = cap;
    d->keys_used = 0;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].obj)
            keys_put(d, old[i].obj, old[i].key, old[i].len);
    free(old);
    return 0;
}

static int keys_put(eb_json_doc *d, const eb_json *obj, const char *k, uint32_t n)
{
    if ((d->keys_used + 1) * 2 > d->keys_cap && keys_grow(d))
        return EB_ENOMEM;
    uint32_t h = key_hash(obj, k, n);
    size_t mask = d->keys_cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        key_slot *e = &d->keys[i];
        if (!e->obj) {
            *e = (key_slot){obj, k, n, h};
            d->keys_used++;
            return 0;
        }
        if (e->hash == h && e->obj == obj && e->len == n && memcmp(e->key, k, n) == 0)
            return 1;
    }
}

/* 1 if obj already has key k (k not yet linked), 0 if not, <0 on OOM. */
static int dup_key(eb_json_doc *d, const eb_json *obj, const char *k, uint32_t n)
{
    if (obj->len < DUP_SCAN) {
        for (const eb_json *m = obj->child; m; m = m->next)
            if (m->key_len == n && memcmp(m->key, k, n) == 0)
                return 1;
        return 0;
    }
    if (obj->len == DUP_SCAN) /* grown large: its keys so far go into the table */
        for (const eb_json *m = obj->child; m; m = m->next)
            if (keys_put(d, obj, m->key, m->key_len) < 0)
                return EB_ENOMEM;
    return keys_put(d, obj, k, n);
}

/* Empties the table for the next parse; a big one (a hostile document's)
 * is not kept. */
static void keys_reset(eb_json_doc *d)
{
    if (d->keys_cap > 4096) {
        free(d->keys);
        d->keys = NULL;
        d->keys_cap = 0;
    } else if (d->keys_used) {
        memset(d->keys, 0, d->keys_cap * sizeof *d->keys);
    }
    d->keys_used = 0;
}

static int push(parser *ps, eb_json *n)
{
    if (ps->depth >= ps->max_depth)
        return fail(ps, ps->p, EB_EDEPTH, "nesting too deep");
    if (ps->depth == ps->doc->stack_cap) {
        uint32_t cap = ps->doc->stack_cap ? ps->doc->stack_cap * 2 : 32;
        frame *f = realloc(ps->doc->stack, cap * sizeof *f);
        if (!f) {
            eb__alloc_failed(cap * sizeof *f);
            return fail(ps, ps->p, EB_ENOMEM, "out of memory");
        }
        ps->doc->stack = f;
        ps->doc->stack_cap = cap;
    }
    ps->doc->stack[ps->depth++] = (frame){n, NULL};
    return 0;
}

/* Links v as the next child of the innermost open container. */
static void link_child(parser *ps, eb_json *v)
{
    frame *f = &ps->doc->stack[ps->depth - 1];
    if (f->last)
        f->last->next = v;
    else
        f->node->child = v;
    f->last = v;
    f->node->len++;
}

/* Parses one value at ps->p: a scalar completely, a container's opening. */
static eb_json *value_start(parser *ps)
{
    skip_ws(ps);
    if (ps->p >= ps->end) {
        fail(ps, ps->p, EB_ESYNTAX, "unexpected end of input");
        return NULL;
    }
    const char *start = ps->p;
    char c = *start;
    eb_json *n;
    switch (c) {
    case '{':
    case '[':
        if (!(n = new_node(ps, c == '{' ? EB_JSON_OBJECT : EB_JSON_ARRAY, start)))
            return NULL;
        ps->p++;
        return n;
    case '"':
        if (!(n = new_node(ps, EB_JSON_STRING, start)) || parse_string(ps, &n->str, &n->len))
            return NULL;
        break;
    default:
        if (!(n = new_node(ps, EB_JSON_NUMBER, start)))
            return NULL;
        if ((c == '-' || (c >= '0' && c <= '9')) ? parse_number(ps, n) : parse_literal(ps, n))
            return NULL;
        break;
    }
    n->src_len = (uint32_t)(ps->p - start);
    return n;
}

/* Reads `"key" :` inside an object into k. */
static int read_key(parser *ps, eb_json *obj, const char **k, uint32_t *kl)
{
    skip_ws(ps);
    if (ps->p >= ps->end || *ps->p != '"')
        return fail(ps, ps->p, EB_ESYNTAX, "expected string key");
    if (parse_string(ps, k, kl))
        return ps->rc;
    if (ps->dup_keys) {
        int dup = dup_key(ps->doc, obj, *k, *kl);
        if (dup < 0)
            return fail(ps, ps->p, EB_ENOMEM, "out of memory");
        if (dup)
            return fail(ps, ps->p, EB_ESYNTAX, "duplicate key in object");
    }
    skip_ws(ps);
    if (ps->p >= ps->end || *ps->p != ':')
        return fail(ps, ps->p, EB_ESYNTAX, "expected ':' after key");
    ps->p++;
    return 0;
}

/* Closes the innermost container at ps->p (on ']' or '}'). */
static void close_container(parser *ps)
{
    eb_json *n = ps->doc->stack[--ps->depth].node;
    ps->p++;
    n->src_len = (uint32_t)(ps->p - (ps->s + n->src_off));
}

static int parse_tree(parser *ps)
{
    eb_json *v = value_start(ps);
    if (!v)
        return ps->rc;
    ps->doc->root = v;
    if (v->type == EB_JSON_ARRAY || v->type == EB_JSON_OBJECT) {
        if (push(ps, v))
            return ps->rc;
    }
    while (ps->depth) {
        frame *f = &ps->doc->stack[ps->depth - 1];
        bool obj = f->node->type == EB_JSON_OBJECT;
        skip_ws(ps);
        if (ps->p >= ps->end)
            return fail(ps, ps->p, EB_ESYNTAX, "unexpected end of input");
        char c = *ps->p;
        if (c == (obj ? '}' : ']')) {
            close_container(ps); /* empty or after a value (comma handled below) */
            continue;
        }
        if (f->last) {
            if (c != ',')
                return fail(ps, ps->p, EB_ESYNTAX, obj ? "expected ',' or '}'" : "expected ',' or ']'");
            ps->p++;
            skip_ws(ps);
            if (ps->p < ps->end && (*ps->p == '}' || *ps->p == ']'))
                return fail(ps, ps->p, EB_ESYNTAX, "trailing comma");
        }
        const char *k = NULL;
        uint32_t kl = 0;
        if (obj && read_key(ps, f->node, &k, &kl))
            return ps->rc;
        ps->key = k;
        ps->key_len = kl;
        if (!(v = value_start(ps)))
            return ps->rc;
        v->key = k;
        v->key_len = kl;
        link_child(ps, v);
        if ((v->type == EB_JSON_ARRAY || v->type == EB_JSON_OBJECT) && push(ps, v))
            return ps->rc;
    }
    return 0;
}

int eb_json_parse(eb_json_doc *doc, const char *text, size_t len, const eb_json_opts *opts,
                  eb_json_error *err)
{
    arena_reset(doc);
    keys_reset(doc);
    parser ps = {doc, text, text, text + len, EB_JSON_DEFAULT_DEPTH, 0, false, err, 0,
                 EB_JSON_DEFAULT_MAX_NUMBER, NULL, 0};
    size_t max_bytes = EB_JSON_DEFAULT_MAX_BYTES;
    if (opts) {
        if (opts->max_number)
            ps.max_number = opts->max_number;
        if (opts->max_depth)
            ps.max_depth = opts->max_depth;
        if (opts->max_bytes)
            max_bytes = opts->max_bytes;
        ps.dup_keys = opts->reject_dup_keys;
    }
    if (len > max_bytes || len > UINT32_MAX)
        return fail(&ps, text, EB_ETOOBIG, "document too large");
    int rc = parse_tree(&ps);
    if (rc == 0) {
        skip_ws(&ps);
        if (ps.p != ps.end)
            rc = fail(&ps, ps.p, EB_ESYNTAX, "unexpected data after the JSON value");
    }
    if (rc)
        doc->root = NULL;
    return rc;
}
