/* validate.c - checks an instance against a compiled schema.
 *
 * One walk over schema and instance together. With an error list, every
 * violation is recorded (up to its bound) with the instance pointer, the
 * schema pointer and a message; without one, the walk stops at the first
 * violation. Applicators that only ask "is it valid?" (anyOf, oneOf, not,
 * if, contains) always take the fast path. unevaluatedProperties/Items use
 * the annotations of the keywords around them, kept as one bit per member
 * or item of the instance (evset). Nothing is allocated unless an instance
 * has more than 256 members, uniqueItems meets an array of more than 32
 * items, or the error list grows.
 *
 * Work is bounded: applicators can make a small schema evaluate the same
 * instance exponentially often ({"anyOf":[{"$ref":"#"},{"$ref":"#"}]}), so
 * one validation may take at most MAX_STEPS_BASE + MAX_STEPS_PER_BYTE per
 * byte of the instance subschema evaluations; past that the instance is
 * refused with one error saying why. Legitimate schemas use a few steps per
 * instance value. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eventbus/err.h"
#include "schema/decimal.h"
#include "schema/internal.h"
#include "util/xmalloc.h"

#define MAX_DEPTH 256  /* instance nesting + reference hops */
#define MAX_SCOPE 128  /* dynamic scope (resources entered) */
#define MAX_STEPS_BASE 100000u /* subschema evaluations per validation... */
#define MAX_STEPS_PER_BYTE 16u /* ...plus this many per byte of the instance */
#define UNIQUE_SCAN_MAX 32     /* uniqueItems: pairwise up to this many items */

typedef struct pseg {
    const char *key; /* member name, or NULL for an array index */
    size_t      len;
    size_t      idx;
} pseg;

typedef struct vctx {
    const eb_schema  *s;
    eb_schema_errors *errs;      /* NULL: stop at the first violation */
    pseg              path[MAX_DEPTH];
    int               depth;     /* instance path length */
    int               hops;      /* nested validate calls (recursion bound) */
    const sres       *scope[MAX_SCOPE]; /* dynamic scope: resources entered, outermost first */
    int               nscope;
    const sres       *top;       /* scope[nscope - 1], NULL when empty */
    pcre2_match_data *md;
    uint64_t          steps;     /* subschema evaluations so far */
    uint64_t          max_steps; /* the budget; past it every evaluation fails */
} vctx;

/* Evaluated members (objects) or items (arrays) of one instance. */
typedef struct evset {
    uint64_t *bits;
    size_t    words;
    uint64_t  local[4];
} evset;

static void ev_init(evset *e, size_t n)
{
    e->words = (n + 63) / 64;
    e->bits = e->words <= 4 ? e->local : eb_xcalloc(e->words, 8);
    memset(e->bits, 0, e->words * 8);
}
static void ev_free(evset *e) { if (e->bits != e->local) free(e->bits); }
static void ev_set(evset *e, size_t i) { if (e && i / 64 < e->words) e->bits[i / 64] |= 1ull << (i % 64); }
static bool ev_get(const evset *e, size_t i) { return i / 64 < e->words && (e->bits[i / 64] >> (i % 64)) & 1; }
static void ev_merge(evset *to, const evset *from)
{
    if (!to)
        return;
    for (size_t i = 0; i < to->words && i < from->words; i++)
        to->bits[i] |= from->bits[i];
}

static bool validate(vctx *v, const sn *s, const eb_json *inst, evset *ev);
static bool push_key(vctx *v, const eb_json *m);

/* --- errors -------------------------------------------------------------------- */

static void append_ptr(eb_buf *b, const vctx *v)
{
    for (int i = 0; i < v->depth; i++) {
        eb_buf_putc(b, '/');
        if (!v->path[i].key) {
            eb_buf_printf(b, "%zu", v->path[i].idx);
            continue;
        }
        for (size_t k = 0; k < v->path[i].len; k++) {
            char ch = v->path[i].key[k];
            if (ch == '~')
                eb_buf_puts(b, "~0");
            else if (ch == '/')
                eb_buf_puts(b, "~1");
            else
                eb_buf_putc(b, ch);
        }
    }
}

static void report(vctx *v, const sn *s, const char *kw, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void report(vctx *v, const sn *s, const char *kw, const char *fmt, ...)
{
    eb_schema_errors *e = v->errs;
    if (!e)
        return;
    if (e->n >= e->max) {
        e->truncated = true;
        return;
    }
    if (e->n == e->cap) {
        size_t cap = e->cap ? e->cap * 2 : 8;
        e->items = eb_xrealloc(e->items, cap * sizeof *e->items);
        e->cap = cap;
    }
    eb_buf path = EB_BUF_INIT, sp = EB_BUF_INIT, msg = EB_BUF_INIT;
    append_ptr(&path, v);
    eb_buf_printf(&sp, "%s/%s", s->ptr, kw);
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    eb_buf_puts(&msg, tmp);
    eb_schema_error *it = &e->items[e->n++];
    it->path = eb_buf_steal(&path, NULL);
    it->schema_path = eb_buf_steal(&sp, NULL);
    it->message = eb_buf_steal(&msg, NULL);
}

void eb_schema_errors_init(eb_schema_errors *e, size_t max)
{
    memset(e, 0, sizeof *e);
    e->max = max ? max : 100;
}

void eb_schema_errors_reset(eb_schema_errors *e)
{
    for (size_t i = 0; i < e->n; i++) {
        free(e->items[i].path);
        free(e->items[i].schema_path);
        free(e->items[i].message);
    }
    e->n = 0;
    e->truncated = false;
}

void eb_schema_errors_free(eb_schema_errors *e)
{
    eb_schema_errors_reset(e);
    free(e->items);
    e->items = NULL;
    e->cap = 0;
}

/* Runs a sub-validation that only needs the answer. */
static bool probe(vctx *v, const sn *s, const eb_json *inst, evset *ev)
{
    eb_schema_errors *saved = v->errs;
    v->errs = NULL;
    bool ok = validate(v, s, inst, ev);
    v->errs = saved;
    return ok;
}

/* --- scalar keywords ------------------------------------------------------------ */

static uint32_t type_bit(const eb_json *i)
{
    switch (i->type) {
    case EB_JSON_NULL:   return T_NULL;
    case EB_JSON_TRUE:
    case EB_JSON_FALSE:  return T_BOOL;
    case EB_JSON_OBJECT: return T_OBJ;
    case EB_JSON_ARRAY:  return T_ARR;
    case EB_JSON_STRING: return T_STR;
    default:             return eb_json_is_integral(i) ? (T_NUM | T_INT) : T_NUM;
    }
}

static void type_names(uint32_t t, char *out, size_t n)
{
    static const char *names[] = {"null", "boolean", "object", "array", "number", "string",
                                  "integer"};
    out[0] = '\0';
    for (int i = 0; i < 7; i++)
        if (t & (1u << i))
            snprintf(out + strlen(out), n - strlen(out), "%s%s", *out ? " or " : "", names[i]);
}

static bool check_type(vctx *v, const sn *s, const eb_json *i)
{
    uint32_t b = type_bit(i);
    if (!s->types || (s->types & b) || ((s->types & T_NUM) && (b & T_INT)))
        return true;
    char want[80];
    type_names(s->types, want, sizeof want);
    report(v, s, "type", "expected %s, got %s", want,
           b & T_INT ? "integer" : eb_json_type_name((eb_json_type)i->type));
    return false;
}

static bool check_enum_const(vctx *v, const sn *s, const eb_json *i)
{
    bool ok = true;
    if (s->const_ && !eb_json_equal(s->const_, i)) {
        report(v, s, "const", "value does not equal the constant");
        ok = false;
    }
    if (s->enum_) {
        bool found = false;
        for (const eb_json *e = s->enum_->child; e && !found; e = e->next)
            found = eb_json_equal(e, i);
        if (!found) {
            report(v, s, "enum", "value is not one of the %u allowed values", s->enum_->len);
            ok = false;
        }
    }
    return ok;
}

static bool check_number(vctx *v, const sn *s, const eb_json *i)
{
    if (i->type != EB_JSON_NUMBER || !s->has)
        return true;
    /* Exact, on the literals (issue 13: doubles accepted 9007199254740993
     * under maximum 9007199254740992, and 1.0000000001 as a multiple of 1). */
    bool ok = true;
    if ((s->has & H_MIN) && eb__num_cmp(i, s->min_n) < 0)
        ok = false, report(v, s, "minimum", "value %s is less than minimum %s", i->str,
                           s->min_n->str);
    if ((s->has & H_MAX) && eb__num_cmp(i, s->max_n) > 0)
        ok = false, report(v, s, "maximum", "value %s is greater than maximum %s", i->str,
                           s->max_n->str);
    if ((s->has & H_XMIN) && eb__num_cmp(i, s->xmin_n) <= 0)
        ok = false, report(v, s, "exclusiveMinimum", "value %s must be greater than %s", i->str,
                           s->xmin_n->str);
    if ((s->has & H_XMAX) && eb__num_cmp(i, s->xmax_n) >= 0)
        ok = false, report(v, s, "exclusiveMaximum", "value %s must be less than %s", i->str,
                           s->xmax_n->str);
    if ((s->has & H_MULT) && !eb__num_multiple(i, s->mult_n))
        ok = false, report(v, s, "multipleOf", "value %s is not a multiple of %s", i->str,
                           s->mult_n->str);
    return ok;
}

static bool check_string(vctx *v, const sn *s, const eb_json *i)
{
    if (i->type != EB_JSON_STRING)
        return true;
    bool ok = true;
    if (s->min_len >= 0 || s->max_len >= 0) {
        size_t n = eb_json_strlen_cp(i);
        if (s->min_len >= 0 && n < (size_t)s->min_len)
            ok = false, report(v, s, "minLength", "string is %zu characters, fewer than %lld",
                               n, (long long)s->min_len);
        if (s->max_len >= 0 && n > (size_t)s->max_len)
            ok = false, report(v, s, "maxLength", "string is %zu characters, more than %lld",
                               n, (long long)s->max_len);
    }
    if (s->pattern && pcre2_match(s->pattern, (PCRE2_SPTR)i->str, i->len, 0, 0, v->md, NULL) < 0)
        ok = false, report(v, s, "pattern", "string does not match pattern \"%s\"", s->pattern_src);
    if (s->format && !eb__schema_format_ok(s->format, i->str, i->len))
        ok = false, report(v, s, "format", "string is not a valid %s", s->format_name);
    return ok;
}

/* --- objects --------------------------------------------------------------------- */

static bool push_key(vctx *v, const eb_json *m)
{
    if (v->depth >= MAX_DEPTH)
        return false;
    v->path[v->depth++] = (pseg){m->key, m->key_len, 0};
    return true;
}

static bool push_idx(vctx *v, size_t i)
{
    if (v->depth >= MAX_DEPTH)
        return false;
    v->path[v->depth++] = (pseg){NULL, 0, i};
    return true;
}

static bool re_match(vctx *v, pcre2_code *re, const char *s, size_t n)
{
    return pcre2_match(re, (PCRE2_SPTR)s, n, 0, 0, v->md, NULL) >= 0;
}

static bool check_required(vctx *v, const sn *s, const eb_json *i)
{
    bool ok = true;
    for (const eb_json *r = s->required ? s->required->child : NULL; r; r = r->next)
        if (!eb_json_getn(i, r->str, r->len)) {
            ok = false;
            if (!v->errs)
                return false;
            /* Point at the missing member itself: /data/currency. */
            eb_json name = {.key = r->str, .key_len = r->len};
            bool pushed = push_key(v, &name);
            report(v, s, "required", "required property \"%s\" missing", r->str);
            v->depth -= pushed;
        }
    for (const eb_json *d = s->dep_req ? s->dep_req->child : NULL; d; d = d->next) {
        if (d->type != EB_JSON_ARRAY || !eb_json_getn(i, d->key, d->key_len))
            continue;
        for (const eb_json *r = d->child; r; r = r->next)
            if (r->type == EB_JSON_STRING && !eb_json_getn(i, r->str, r->len)) {
                ok = false;
                report(v, s, s->draft7 ? "dependencies" : "dependentRequired",
                       "property \"%s\" is required when \"%s\" is present", r->str, d->key);
            }
    }
    return ok;
}

static bool check_counts(vctx *v, const sn *s, size_t n, const char *what, int64_t lo,
                         int64_t hi, const char *kwlo, const char *kwhi)
{
    if (lo >= 0 && n < (size_t)lo) {
        report(v, s, kwlo, "%s has %zu, fewer than %lld", what, n, (long long)lo);
        return false;
    }
    if (hi >= 0 && n > (size_t)hi) {
        report(v, s, kwhi, "%s has %zu, more than %lld", what, n, (long long)hi);
        return false;
    }
    return true;
}

/* properties, patternProperties, additionalProperties for one member. */
static bool check_member(vctx *v, const sn *s, const eb_json *m, size_t idx, evset *ev)
{
    bool ok = true, matched = false;
    for (size_t k = 0; k < s->nprops; k++)
        if (s->props[k].klen == m->key_len && !memcmp(s->props[k].key, m->key, m->key_len)) {
            matched = true;
            ok = validate(v, s->props[k].s, m, NULL) && ok;
            break;
        }
    for (size_t k = 0; k < s->npats && (ok || v->errs); k++)
        if (re_match(v, s->pats[k].re, m->key, m->key_len)) {
            matched = true;
            ok = validate(v, s->pats[k].s, m, NULL) && ok;
        }
    if (!matched && s->additional) {
        matched = true;
        if (s->additional->boolean == 0) {
            v->depth--;
            report(v, s, "additionalProperties", "property \"%s\" is not allowed", m->key);
            v->depth++;
            ok = false;
        } else {
            ok = validate(v, s->additional, m, NULL) && ok;
        }
    }
    if (matched && ok)
        ev_set(ev, idx);
    return ok;
}

static bool check_object(vctx *v, const sn *s, const eb_json *i, evset *ev)
{
    bool ok = check_required(v, s, i);
    ok = check_counts(v, s, i->len, "object", s->min_props, s->max_props, "minProperties",
                      "maxProperties") && ok;
    if (!ok && !v->errs)
        return false;
    size_t idx = 0;
    for (const eb_json *m = i->child; m && (ok || v->errs); m = m->next, idx++) {
        if (!push_key(v, m))
            return false;
        if (s->prop_names) {
            eb_json name = {.type = EB_JSON_STRING, .len = m->key_len, .str = m->key};
            if (!probe(v, s->prop_names, &name, NULL)) {
                v->depth--;
                report(v, s, "propertyNames", "property name \"%s\" is not allowed", m->key);
                v->depth++;
                ok = false;
            }
        }
        if (s->nprops || s->npats || s->additional)
            ok = check_member(v, s, m, idx, ev) && ok;
        v->depth--;
    }
    for (size_t k = 0; k < s->ndep && (ok || v->errs); k++)
        if (eb_json_getn(i, s->dep_schemas[k].key, s->dep_schemas[k].klen))
            ok = validate(v, s->dep_schemas[k].s, i, ev) && ok;
    return ok;
}

/* --- arrays ---------------------------------------------------------------------- */

/* A hash consistent with eb_json_equal: equal values hash equal (numbers
 * by value, object members in any order). Objects with duplicate keys,
 * which the API refuses, are the exception: eb_json_equal matches members
 * by their first occurrence there. */
static uint64_t mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    return h ^ (h >> 33);
}

static uint64_t bytes_hash(const char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t k = 0; k < n; k++)
        h = (h ^ (unsigned char)p[k]) * 0x100000001b3ull;
    return mix(h);
}

static uint64_t value_hash(const eb_json *x)
{
    switch (x->type) {
    case EB_JSON_NUMBER: {
        double d = eb_json_num(x);
        uint64_t bits;
        if (d == 0)
            d = 0; /* -0 == 0 */
        memcpy(&bits, &d, sizeof bits);
        return mix(bits ^ 0x4e);
    }
    case EB_JSON_STRING:
        return bytes_hash(x->str, x->len);
    case EB_JSON_ARRAY: {
        uint64_t h = 0xa7;
        for (const eb_json *e = x->child; e; e = e->next)
            h = mix(h * 31 + value_hash(e));
        return h;
    }
    case EB_JSON_OBJECT: {
        uint64_t h = 0x0b; /* members in any order: a sum of their hashes */
        for (const eb_json *m = x->child; m; m = m->next)
            h += mix(bytes_hash(m->key, m->key_len) ^ value_hash(m));
        return mix(h);
    }
    default:
        return mix(x->type);
    }
}

typedef struct hashed_item {
    uint64_t       hash;
    size_t         idx;
    const eb_json *v;
} hashed_item;

static int by_hash(const void *a, const void *b)
{
    const hashed_item *x = a, *y = b;
    if (x->hash != y->hash)
        return x->hash < y->hash ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* The first pair (lowest a, then lowest b) of equal items, through sorted
 * hashes: O(n log n) where comparing every pair would be quadratic. */
static bool first_equal_pair(const eb_json *arr, size_t *pa, size_t *pb)
{
    hashed_item *h = eb_xmalloc(arr->len * sizeof *h);
    size_t n = 0;
    for (const eb_json *e = arr->child; e; e = e->next, n++)
        h[n] = (hashed_item){value_hash(e), n, e};
    qsort(h, n, sizeof *h, by_hash);
    bool found = false;
    for (size_t k = 0; k < n; k++) {
        if (found && h[k].idx > *pa)
            continue; /* cannot give a lower first index */
        for (size_t m = k + 1; m < n && h[m].hash == h[k].hash; m++)
            if (eb_json_equal(h[k].v, h[m].v)) { /* the lowest b for this a */
                *pa = h[k].idx;
                *pb = h[m].idx;
                found = true;
                break;
            }
    }
    free(h);
    return found;
}

static bool check_unique(vctx *v, const sn *s, const eb_json *i)
{
    size_t a = 0, b = 0;
    bool dup = false;
    if (i->len > UNIQUE_SCAN_MAX) {
        dup = first_equal_pair(i, &a, &b);
    } else {
        size_t ia = 0;
        for (const eb_json *x = i->child; x && !dup; x = x->next, ia++) {
            size_t ib = ia + 1;
            for (const eb_json *y = x->next; y; y = y->next, ib++)
                if (eb_json_equal(x, y)) {
                    dup = true;
                    a = ia;
                    b = ib;
                    break;
                }
        }
    }
    if (dup)
        report(v, s, "uniqueItems", "items %zu and %zu are equal", a, b);
    return !dup;
}

static bool check_contains(vctx *v, const sn *s, const eb_json *i, evset *ev)
{
    size_t hits = 0, idx = 0;
    for (const eb_json *e = i->child; e; e = e->next, idx++)
        if (probe(v, s->contains, e, NULL)) {
            hits++;
            ev_set(ev, idx);
        }
    int64_t lo = s->min_contains >= 0 ? s->min_contains : 1;
    if (hits < (size_t)lo) {
        report(v, s, s->min_contains >= 0 ? "minContains" : "contains",
               "array contains %zu matching items, fewer than %lld", hits, (long long)lo);
        return false;
    }
    if (s->max_contains >= 0 && hits > (size_t)s->max_contains) {
        report(v, s, "maxContains", "array contains %zu matching items, more than %lld", hits,
               (long long)s->max_contains);
        return false;
    }
    return true;
}

static bool check_array(vctx *v, const sn *s, const eb_json *i, evset *ev)
{
    bool ok = check_counts(v, s, i->len, "array", s->min_items, s->max_items, "minItems",
                           "maxItems");
    if (ok && s->unique)
        ok = check_unique(v, s, i);
    size_t idx = 0;
    for (const eb_json *e = i->child; e && (ok || v->errs); e = e->next, idx++) {
        const sn *is = idx < s->prefix.n ? s->prefix.v[idx] : s->items;
        if (!is)
            continue;
        if (!push_idx(v, idx))
            return false;
        bool good = validate(v, is, e, NULL);
        v->depth--;
        if (good)
            ev_set(ev, idx);
        ok = good && ok;
    }
    if (s->contains && (ok || v->errs))
        ok = check_contains(v, s, i, ev) && ok;
    return ok;
}

/* --- applicators ------------------------------------------------------------------ */

static bool check_combinators(vctx *v, const sn *s, const eb_json *i, evset *ev)
{
    bool ok = true;
    for (size_t k = 0; k < s->all_of.n && (ok || v->errs); k++)
        ok = validate(v, s->all_of.v[k], i, ev) && ok;
    if (s->any_of.n && (ok || v->errs)) {
        bool any = false;
        for (size_t k = 0; k < s->any_of.n; k++) { /* all branches: annotations count */
            if (any && !ev)
                break;
            evset tmp;
            ev_init(&tmp, ev ? i->len : 0);
            if (probe(v, s->any_of.v[k], i, ev ? &tmp : NULL)) {
                any = true;
                ev_merge(ev, &tmp);
            }
            ev_free(&tmp);
        }
        if (!any) {
            report(v, s, "anyOf", "value matches none of the %zu alternatives", s->any_of.n);
            ok = false;
        }
    }
    if (s->one_of.n && (ok || v->errs)) {
        size_t hits = 0;
        for (size_t k = 0; k < s->one_of.n; k++) {
            evset tmp;
            ev_init(&tmp, i->len);
            if (probe(v, s->one_of.v[k], i, &tmp)) {
                hits++;
                ev_merge(ev, &tmp);
            }
            ev_free(&tmp);
        }
        if (hits != 1) {
            report(v, s, "oneOf", "value matches %zu of the alternatives, not exactly one", hits);
            ok = false;
        }
    }
    if (s->not_ && (ok || v->errs) && probe(v, s->not_, i, NULL)) {
        report(v, s, "not", "value must not match the \"not\" schema");
        ok = false;
    }
    if (s->if_ && (ok || v->errs)) {
        evset tmp;
        ev_init(&tmp, ev ? i->len : 0);
        bool cond = probe(v, s->if_, i, ev ? &tmp : NULL);
        if (cond)
            ev_merge(ev, &tmp);
        ev_free(&tmp);
        if (cond) {
            if (s->then_)
                ok = validate(v, s->then_, i, ev) && ok;
        } else if (s->else_) {
            ok = validate(v, s->else_, i, ev) && ok;
        }
    }
    return ok;
}

/* $dynamicRef: when the static target carries the named $dynamicAnchor, the
 * outermost resource in the dynamic scope with that anchor wins. The scope
 * holds every resource evaluation passed through, also those entered by a
 * "$ref" to a subschema inside them rather than to their root. */
static const sn *dynamic_target(vctx *v, const sn *s)
{
    const sn *t = s->dyn_ref;
    if (!s->dyn_anchor_name || !t || !t->dyn_anchor || strcmp(t->dyn_anchor, s->dyn_anchor_name))
        return t;
    for (int k = 0; k < v->nscope; k++) {
        char key[2300];
        snprintf(key, sizeof key, "%s#%s", v->scope[k]->base, s->dyn_anchor_name);
        const eb_json *n = eb_map_get(&v->s->dyn_anchors, key, strlen(key));
        const sn *hit = n ? eb_imap_get(&v->s->nodes, (uint64_t)(uintptr_t)n) : NULL;
        if (hit)
            return hit;
    }
    return t;
}

static bool check_unevaluated(vctx *v, const sn *s, const eb_json *i, evset *ev)
{
    bool ok = true;
    size_t idx = 0;
    if (s->uneval_props && i->type == EB_JSON_OBJECT) {
        for (const eb_json *m = i->child; m && (ok || v->errs); m = m->next, idx++) {
            if (ev_get(ev, idx))
                continue;
            if (!push_key(v, m))
                return false;
            bool good = s->uneval_props->boolean == 0 ? false : validate(v, s->uneval_props, m, NULL);
            v->depth--;
            if (!good && s->uneval_props->boolean == 0)
                report(v, s, "unevaluatedProperties", "property \"%s\" is not allowed", m->key);
            if (good)
                ev_set(ev, idx);
            ok = good && ok;
        }
    }
    if (s->uneval_items && i->type == EB_JSON_ARRAY) {
        for (const eb_json *e = i->child; e && (ok || v->errs); e = e->next, idx++) {
            if (ev_get(ev, idx))
                continue;
            if (!push_idx(v, idx))
                return false;
            bool good = validate(v, s->uneval_items, e, NULL);
            v->depth--;
            if (!good && s->uneval_items->boolean == 0)
                report(v, s, "unevaluatedItems", "item %zu is not allowed", idx);
            if (good)
                ev_set(ev, idx);
            ok = good && ok;
        }
    }
    return ok;
}

/* Validates an object schema; evaluated members/items go to ev (may be NULL). */
static bool validate_object_schema(vctx *v, const sn *s, const eb_json *i, evset *ev)
{
    bool ok = check_type(v, s, i);
    if (ok || v->errs)
        ok = check_enum_const(v, s, i) && ok;
    if (ok || v->errs)
        ok = check_number(v, s, i) && ok;
    if (ok || v->errs)
        ok = check_string(v, s, i) && ok;
    if ((ok || v->errs) && s->ref)
        ok = validate(v, s->ref, i, ev) && ok;
    if ((ok || v->errs) && s->dyn_ref)
        ok = validate(v, dynamic_target(v, s), i, ev) && ok;
    if ((ok || v->errs) && i->type == EB_JSON_OBJECT)
        ok = check_object(v, s, i, ev) && ok;
    if ((ok || v->errs) && i->type == EB_JSON_ARRAY)
        ok = check_array(v, s, i, ev) && ok;
    if (ok || v->errs)
        ok = check_combinators(v, s, i, ev) && ok;
    if ((ok || v->errs) && (s->uneval_props || s->uneval_items))
        ok = check_unevaluated(v, s, i, ev) && ok;
    return ok;
}

static bool validate(vctx *v, const sn *s, const eb_json *inst, evset *ev)
{
    if (s->boolean >= 0) {
        if (!s->boolean)
            report(v, s, "", "no value is allowed here (schema is false)");
        return s->boolean;
    }
    if (++v->steps > v->max_steps)
        return false; /* over budget: eb_schema_validate explains */
    if (++v->hops > 4 * MAX_DEPTH) { /* runaway reference cycle */
        v->hops--;
        report(v, s, "$ref", "schema references nest too deeply");
        return false;
    }
    const sres *outer = v->top;
    bool pushed = s->res != outer && v->nscope < MAX_SCOPE;
    if (pushed)
        v->scope[v->nscope++] = v->top = s->res;
    /* A schema with unevaluated* needs the annotations of its own keywords
     * even when the caller does not. */
    evset own, *use = ev;
    bool need_own = s->uneval_props || s->uneval_items;
    if (need_own) {
        ev_init(&own, inst->len);
        use = &own;
    }
    bool ok = validate_object_schema(v, s, inst, use);
    if (need_own) {
        if (ok)
            ev_merge(ev, &own);
        ev_free(&own);
    }
    if (pushed) {
        v->nscope--;
        v->top = outer;
    }
    v->hops--;
    return ok;
}

int eb_schema_validate(const eb_schema *s, const eb_json *instance, eb_schema_errors *errs)
{
    static _Thread_local pcre2_match_data *md; /* one per thread, kept */
    if (!md && !(md = pcre2_match_data_create(1, NULL)))
        return EB_ENOMEM;
    vctx v;
    v.s = s;
    v.errs = errs;
    v.depth = v.hops = v.nscope = 0;
    v.top = NULL;
    v.md = md;
    v.steps = 0;
    v.max_steps = MAX_STEPS_BASE + (uint64_t)MAX_STEPS_PER_BYTE * instance->src_len;
    bool ok;
    if (instance->type == EB_JSON_OBJECT || instance->type == EB_JSON_ARRAY) {
        evset ev;
        ev_init(&ev, instance->len);
        ok = validate(&v, s->root, instance, &ev);
        ev_free(&ev);
    } else {
        ok = validate(&v, s->root, instance, NULL);
    }
    if (v.steps > v.max_steps && errs) { /* what was found so far is not the reason */
        eb_schema_errors_reset(errs);
        v.depth = 0;
        report(&v, s->root, "", "validation stopped after %llu steps: the schema is too "
               "complex for this instance (applicators evaluate it too many times)",
               (unsigned long long)v.max_steps);
    }
    return ok ? 0 : EB_ESCHEMA;
}
