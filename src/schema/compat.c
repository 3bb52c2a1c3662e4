/* compat.c - schema compatibility: which changes from an old schema to a
 * new one break a compatibility mode, in plain words.
 *
 * One question answered structurally: is B narrower than A anywhere, i.e.
 * does B reject a value A accepted? BACKWARD asks it with A = old, B = new
 * (readers on the new schema must read old data); FORWARD with A = new,
 * B = old; FULL both. Properties, items, additionalProperties and local
 * "$ref"s are followed; what cannot be compared structurally (a changed
 * pattern, reshaped oneOf/anyOf/allOf/not/if) is reported as undecidable
 * instead of being passed silently.
 *
 * Work is bounded: each (A node, B node, direction) pair is compared once
 * (local "$ref"s make the walk a graph: {"properties":{"a":{"$ref":"#"},
 * "b":{"$ref":"#"}}} would otherwise branch 2^64 ways), at most MAX_PAIRS
 * pairs are compared and MAX_CHANGES changes listed; past either bound the
 * report says it stopped, which counts as not compatible. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eventbus/err.h"
#include "schema/schema.h"
#include "util/map.h"
#include "util/xmalloc.h"

#define MAX_DEPTH 64
#define MAX_PAIRS 100000
#define MAX_CHANGES 1000

static const eb_json TRUE_NODE = {.type = EB_JSON_TRUE};
static const eb_json EMPTY_OBJECT = {.type = EB_JSON_OBJECT};

typedef struct cmp {
    const eb_json    *root_a, *root_b; /* documents, for local $refs */
    eb_compat_report *r;
    const char       *dir;             /* " (backward)" etc. for messages */
    bool              forward;         /* A is the new schema */
    eb_map            seen;            /* (a, b, forward) pairs compared */
    bool              gave_up;         /* a bound was reached and reported */
} cmp;

void eb_compat_report_init(eb_compat_report *r)
{
    memset(r, 0, sizeof *r);
}

void eb_compat_report_free(eb_compat_report *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->items[i].pointer);
        free(r->items[i].message);
    }
    free(r->items);
    memset(r, 0, sizeof *r);
}

static void add(cmp *c, const char *ptr, bool undecidable, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void add(cmp *c, const char *ptr, bool undecidable, const char *fmt, ...)
{
    eb_compat_report *r = c->r;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (r->n >= MAX_CHANGES) { /* the last entry says the list stops */
        if (c->gave_up)
            return;
        c->gave_up = true;
        ptr = "";
        undecidable = true;
        snprintf(msg, sizeof msg, "more than %d changes: the rest are not listed", MAX_CHANGES);
    }
    for (size_t i = 0; i < r->n; i++) /* FULL checks both ways: say it once */
        if (!strcmp(r->items[i].message, msg) && !strcmp(r->items[i].pointer, ptr))
            return;
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 16;
        r->items = eb_xrealloc(r->items, cap * sizeof *r->items);
        r->cap = cap;
    }
    r->items[r->n].pointer = eb_xstrdup(ptr);
    r->items[r->n].message = eb_xstrdup(msg);
    r->items[r->n].undecidable = undecidable;
    r->n++;
}

/* The old and new value of something, in the order the user thinks of it. */
#define OLDV(a, b) (c->forward ? (b) : (a))
#define NEWV(a, b) (c->forward ? (a) : (b))

static const eb_json *deref(const eb_json *root, const eb_json *s)
{
    for (int hops = 0; hops < 16 && eb_json_is(s, EB_JSON_OBJECT); hops++) {
        const eb_json *ref = eb_json_get(s, "$ref");
        if (!eb_json_is(ref, EB_JSON_STRING) || ref->str[0] != '#' || s->len != 1)
            return s;
        const eb_json *n = root;
        const char *p = ref->str + 1;
        while (n && *p == '/') {
            char tok[256];
            size_t t = 0;
            for (p++; *p && *p != '/' && t < sizeof tok - 1; p++)
                tok[t++] = (*p == '~' && p[1] == '1') ? (p++, '/') : (*p == '~' && p[1] == '0') ? (p++, '~') : *p;
            tok[t] = '\0';
            n = eb_json_get(n, tok);
        }
        if (!n)
            return s;
        s = n;
    }
    return s;
}

static bool is_true_schema(const eb_json *s)
{
    return !s || s->type == EB_JSON_TRUE || (s->type == EB_JSON_OBJECT && s->len == 0);
}

static bool is_false_schema(const eb_json *s)
{
    return s && s->type == EB_JSON_FALSE;
}

/* Type bits: null 1, boolean 2, object 4, array 8, number 16, string 32, integer 64. */
static unsigned types_of(const eb_json *s)
{
    static const char *names[] = {"null", "boolean", "object", "array", "number", "string",
                                  "integer"};
    const eb_json *t = eb_json_get(s, "type");
    if (!t)
        return 127;
    unsigned m = 0;
    for (const eb_json *e = t->type == EB_JSON_ARRAY ? t->child : t; e;
         e = t->type == EB_JSON_ARRAY ? e->next : NULL)
        for (unsigned i = 0; i < 7; i++)
            if (e->type == EB_JSON_STRING && !strcmp(e->str, names[i]))
                m |= 1u << i;
    if (m & 16)
        m |= 64; /* number includes integer */
    return m;
}

static void type_str(const eb_json *s, char *out, size_t n)
{
    const eb_json *t = eb_json_get(s, "type");
    out[0] = '\0';
    if (!t) {
        snprintf(out, n, "any");
        return;
    }
    for (const eb_json *e = t->type == EB_JSON_ARRAY ? t->child : t; e;
         e = t->type == EB_JSON_ARRAY ? e->next : NULL)
        if (e->type == EB_JSON_STRING)
            snprintf(out + strlen(out), n - strlen(out), "%s%s", *out ? "|" : "", e->str);
}

static void what(char *out, size_t n, const char *name)
{
    if (*name)
        snprintf(out, n, "\"%s\"", name);
    else
        snprintf(out, n, "the value");
}

static void check_types(cmp *c, const eb_json *a, const eb_json *b, const char *ptr,
                        const char *w)
{
    unsigned ta = types_of(a), tb = types_of(b);
    if ((ta & ~tb) == 0)
        return;
    char sa[80], sb[80];
    type_str(a, sa, sizeof sa);
    type_str(b, sb, sizeof sb);
    add(c, ptr, false, "type of %s changed from %s to %s", w, OLDV(sa, sb), NEWV(sa, sb));
}

static void check_enum(cmp *c, const eb_json *a, const eb_json *b, const char *ptr, const char *w)
{
    const eb_json *ea = eb_json_get(a, "enum"), *eb = eb_json_get(b, "enum");
    if (eb_json_is(eb, EB_JSON_ARRAY) && !ea) {
        add(c, ptr, false, "%s %s an enum", w, c->forward ? "lost" : "gained");
        return;
    }
    if (!eb_json_is(ea, EB_JSON_ARRAY) || !eb_json_is(eb, EB_JSON_ARRAY))
        return;
    for (const eb_json *x = ea->child; x; x = x->next) {
        bool found = false;
        for (const eb_json *y = eb->child; y && !found; y = y->next)
            found = eb_json_equal(x, y);
        if (found)
            continue;
        eb_buf v = EB_BUF_INIT;
        eb_jw jw;
        eb_jw_init(&jw, &v);
        eb_jw_value(&jw, x);
        add(c, ptr, false, "enum of %s %s %s", w, c->forward ? "gained" : "lost", v.data);
        eb_buf_free(&v);
    }
}

static void check_const(cmp *c, const eb_json *a, const eb_json *b, const char *ptr,
                        const char *w)
{
    const eb_json *ca = eb_json_get(a, "const"), *cb = eb_json_get(b, "const");
    if (cb && (!ca || !eb_json_equal(ca, cb)))
        add(c, ptr, false, "const of %s %s", w, ca ? "changed" : (c->forward ? "removed" : "added"));
}

/* A lower bound (minimum, minLength...) that rose, or an upper that fell. */
static void check_bound(cmp *c, const eb_json *a, const eb_json *b, const char *kw, bool lower,
                        const char *ptr, const char *w)
{
    const eb_json *va = eb_json_get(a, kw), *vb = eb_json_get(b, kw);
    if (!eb_json_is(vb, EB_JSON_NUMBER))
        return;
    double x = va ? eb_json_num(va) : (lower ? -INFINITY : INFINITY), y = eb_json_num(vb);
    if (lower ? y <= x : y >= x)
        return;
    if (!va)
        add(c, ptr, false, "%s of %s %s (%s)", kw, w, c->forward ? "removed" : "added", vb->str);
    else
        add(c, ptr, false, "%s of %s %s from %s to %s", kw, w,
            lower == !c->forward ? "raised" : "lowered", OLDV(va->str, vb->str),
            NEWV(va->str, vb->str));
}

static void check_bounds(cmp *c, const eb_json *a, const eb_json *b, const char *ptr,
                         const char *w)
{
    static const struct { const char *kw; bool lower; } k[] = {
        {"minimum", true}, {"exclusiveMinimum", true}, {"maximum", false},
        {"exclusiveMaximum", false}, {"minLength", true}, {"maxLength", false},
        {"minItems", true}, {"maxItems", false}, {"minProperties", true},
        {"maxProperties", false}, {"minContains", true}, {"maxContains", false}};
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++)
        check_bound(c, a, b, k[i].kw, k[i].lower, ptr, w);
    const eb_json *ma = eb_json_get(a, "multipleOf"), *mb = eb_json_get(b, "multipleOf");
    if (eb_json_is(mb, EB_JSON_NUMBER)) {
        double q = ma ? eb_json_num(ma) / eb_json_num(mb) : 0.5;
        if (!ma || fabs(q - round(q)) > 1e-9)
            add(c, ptr, false, "multipleOf of %s %s", w, ma ? "changed" : (c->forward ? "removed" : "added"));
    }
}

static void check_strings(cmp *c, const eb_json *a, const eb_json *b, const char *ptr,
                          const char *w)
{
    const eb_json *pa = eb_json_get(a, "pattern"), *pb = eb_json_get(b, "pattern");
    if (pb && !pa)
        add(c, ptr, false, "pattern of %s %s", w, c->forward ? "removed" : "added");
    else if (pb && pa && !eb_json_equal(pa, pb))
        add(c, ptr, true, "pattern of %s changed from \"%s\" to \"%s\": cannot verify", w,
            OLDV(pa->str, pb->str), NEWV(pa->str, pb->str));
    const eb_json *fa = eb_json_get(a, "format"), *fb = eb_json_get(b, "format");
    if (fb && (!fa || !eb_json_equal(fa, fb)))
        add(c, ptr, false, "format of %s %s", w, fa ? "changed" : (c->forward ? "removed" : "added"));
}

static void narrower(cmp *c, const eb_json *a, const eb_json *b, const char *ptr,
                     const char *name, int depth);

static char *join(const char *ptr, const char *kw, const char *key)
{
    eb_buf p = EB_BUF_INIT;
    eb_buf_printf(&p, "%s/%s", ptr, kw);
    if (key) {
        eb_buf_putc(&p, '/');
        for (const char *k = key; *k; k++)
            eb_buf_puts(&p, *k == '/' ? "~1" : *k == '~' ? "~0" : (char[]){*k, 0});
    }
    return eb_buf_steal(&p, NULL);
}

static bool in_array(const eb_json *arr, const char *s)
{
    for (const eb_json *e = eb_json_is(arr, EB_JSON_ARRAY) ? arr->child : NULL; e; e = e->next)
        if (e->type == EB_JSON_STRING && !strcmp(e->str, s))
            return true;
    return false;
}

static void check_required(cmp *c, const eb_json *a, const eb_json *b, const char *ptr)
{
    const eb_json *rb = eb_json_get(b, "required");
    for (const eb_json *e = eb_json_is(rb, EB_JSON_ARRAY) ? rb->child : NULL; e; e = e->next)
        if (e->type == EB_JSON_STRING && !in_array(eb_json_get(a, "required"), e->str))
            add(c, ptr, false, c->forward ? "property \"%s\" is no longer required"
                                          : "property \"%s\" became required", e->str);
}

/* The schema a property name gets in an object schema: its own, a matching
 * patternProperties one (reported as undecidable), or additionalProperties. */
static const eb_json *schema_for(const eb_json *s, const char *key, bool *by_pattern)
{
    const eb_json *p = eb_json_get(eb_json_get(s, "properties"), key);
    *by_pattern = false;
    if (p)
        return p;
    const eb_json *pp = eb_json_get(s, "patternProperties");
    if (eb_json_is(pp, EB_JSON_OBJECT) && pp->len) {
        *by_pattern = true;
        return NULL;
    }
    return eb_json_get(s, "additionalProperties"); /* NULL = anything */
}

static void check_properties(cmp *c, const eb_json *a, const eb_json *b, const char *ptr,
                             int depth)
{
    const eb_json *pa = eb_json_get(a, "properties"), *pb = eb_json_get(b, "properties");
    /* every property either side names */
    const eb_json *sides[2] = {pa, pb};
    for (int side = 0; side < 2; side++) {
        for (const eb_json *m = eb_json_is(sides[side], EB_JSON_OBJECT) ? sides[side]->child : NULL;
             m; m = m->next) {
            if (side == 1 && eb_json_get(pa, m->key))
                continue; /* already compared from A's side */
            bool pat_a, pat_b;
            const eb_json *sa = schema_for(a, m->key, &pat_a), *sb = schema_for(b, m->key, &pat_b);
            char *p = join(ptr, "properties", m->key);
            if (pat_a || pat_b) {
                add(c, p, true, "property \"%s\" meets patternProperties: cannot verify", m->key);
            } else if (is_false_schema(sb) && !is_false_schema(sa)) {
                bool removed = side == 0;
                add(c, p, false, "property \"%s\" %s while %s schema forbids additional properties",
                    m->key, removed != c->forward ? "was removed" : "was added",
                    c->forward ? "the old" : "the new");
            } else if (is_true_schema(sa) && !is_true_schema(sb) && side == 1) {
                add(c, p, false, "property \"%s\" %s while %s schema did not forbid additional "
                    "properties (old data may hold any value there)", m->key,
                    c->forward ? "was removed" : "was added", c->forward ? "the new" : "the old");
            } else if (sb) {
                narrower(c, sa ? sa : &TRUE_NODE, sb, p, m->key, depth + 1);
            }
            free(p);
        }
    }
    const eb_json *aa = eb_json_get(a, "additionalProperties"),
                  *ab = eb_json_get(b, "additionalProperties");
    if (is_false_schema(ab) && !is_false_schema(aa))
        add(c, ptr, false, "additionalProperties %s", c->forward ? "opened" : "closed");
    else if (ab && !is_true_schema(ab) && !is_false_schema(aa)) {
        char *p = join(ptr, "additionalProperties", NULL);
        narrower(c, aa ? aa : &TRUE_NODE, ab, p, "additional properties",
                 depth + 1);
        free(p);
    }
}

static void check_items(cmp *c, const eb_json *a, const eb_json *b, const char *ptr,
                        const char *w, int depth)
{
    const eb_json *ia = eb_json_get(a, "items"), *ib = eb_json_get(b, "items");
    if (eb_json_is(ia, EB_JSON_ARRAY) || eb_json_is(ib, EB_JSON_ARRAY) ||
        eb_json_get(a, "prefixItems") || eb_json_get(b, "prefixItems")) {
        const eb_json *xa = eb_json_get(a, "prefixItems"), *xb = eb_json_get(b, "prefixItems");
        if (!eb_json_equal(xa, xb) || (eb_json_is(ia, EB_JSON_ARRAY) && !eb_json_equal(ia, ib)))
            add(c, ptr, true, "tuple items of %s changed: cannot verify", w);
    }
    if (ib && !eb_json_is(ib, EB_JSON_ARRAY)) {
        char *p = join(ptr, "items", NULL);
        char nm[200];
        snprintf(nm, sizeof nm, "%.150s items", w);
        if (is_false_schema(ib) && !is_false_schema(ia))
            add(c, p, false, "items of %s %s", w, c->forward ? "allowed" : "forbidden");
        else
            narrower(c, ia && !eb_json_is(ia, EB_JSON_ARRAY) ? ia : &TRUE_NODE,
                     ib, p, nm, depth + 1);
        free(p);
    }
}

static void check_combinators(cmp *c, const eb_json *a, const eb_json *b, const char *ptr,
                              const char *w)
{
    static const char *kws[] = {"allOf", "anyOf", "oneOf", "not", "if", "then", "else",
                                "dependentSchemas", "dependencies", "propertyNames",
                                "contains", "unevaluatedProperties", "unevaluatedItems",
                                "$dynamicRef", "dependentRequired", "uniqueItems"};
    for (size_t i = 0; i < sizeof kws / sizeof kws[0]; i++) {
        const eb_json *x = eb_json_get(a, kws[i]), *y = eb_json_get(b, kws[i]);
        if (y && !eb_json_equal(x, y)) {
            char *p = join(ptr, kws[i], NULL);
            add(c, p, true, "%s of %s %s: cannot verify", kws[i], w, x ? "changed" : "added");
            free(p);
        }
    }
}

/* True the first time (a, b) is compared in this direction; false when it
 * was compared before or the work bound is reached (reported once). */
static bool first_visit(cmp *c, const eb_json *a, const eb_json *b)
{
    struct { const void *a, *b; uintptr_t fwd; } key = {a, b, c->forward};
    if (eb_map_get(&c->seen, (const char *)&key, sizeof key))
        return false;
    if (c->seen.len >= MAX_PAIRS) {
        if (!c->gave_up) {
            c->gave_up = true;
            add(c, "", true, "schemas too large to compare (over %d subschema pairs): "
                "cannot verify", MAX_PAIRS);
        }
        return false;
    }
    eb_map_put(&c->seen, (const char *)&key, sizeof key, (void *)1, NULL);
    return true;
}

/* Reports where schema b rejects values schema a accepts. */
static void narrower(cmp *c, const eb_json *a, const eb_json *b, const char *ptr,
                     const char *name, int depth)
{
    a = deref(c->forward ? c->root_b : c->root_a, a);
    b = deref(c->forward ? c->root_a : c->root_b, b);
    char w[160];
    what(w, sizeof w, name);
    if (depth > MAX_DEPTH || is_false_schema(a) || is_true_schema(b) || !first_visit(c, a, b))
        return;
    if (is_false_schema(b)) {
        add(c, ptr, false, "%s %s", w, c->forward ? "was false (accepted nothing) before"
                                                  : "no longer accepts any value");
        return;
    }
    if (a->type == EB_JSON_TRUE)
        a = &EMPTY_OBJECT;
    if (eb_json_get(b, "$ref") && !eb_json_equal(eb_json_get(a, "$ref"), eb_json_get(b, "$ref")))
        add(c, ptr, true, "$ref of %s changed: cannot verify", w);
    check_types(c, a, b, ptr, w);
    check_enum(c, a, b, ptr, w);
    check_const(c, a, b, ptr, w);
    check_bounds(c, a, b, ptr, w);
    check_strings(c, a, b, ptr, w);
    check_required(c, a, b, ptr);
    check_properties(c, a, b, ptr, depth);
    check_items(c, a, b, ptr, w, depth);
    check_combinators(c, a, b, ptr, w);
}

int eb_schema_compat(const char *old_json, size_t old_len, const char *new_json,
                     size_t new_len, eb_compat_mode mode, eb_compat_report *r)
{
    eb_json_doc *da = eb_json_doc_new(), *db = eb_json_doc_new();
    int rc = (!da || !db) ? EB_ENOMEM : 0;
    if (!rc && (eb_json_parse(da, old_json, old_len, NULL, NULL) ||
                eb_json_parse(db, new_json, new_len, NULL, NULL)))
        rc = EB_ESYNTAX;
    if (!rc) {
        const eb_json *o = eb_json_root(da), *n = eb_json_root(db);
        cmp c = {o, n, r, "", false, EB_MAP_INIT, false};
        if (mode == EB_COMPAT_BACKWARD || mode == EB_COMPAT_FULL)
            narrower(&c, o, n, "", "", 0);
        if (mode == EB_COMPAT_FORWARD || mode == EB_COMPAT_FULL) {
            c.forward = true;
            c.root_a = o; /* root_a/root_b stay old/new; deref picks by direction */
            c.root_b = n;
            narrower(&c, n, o, "", "", 0);
        }
        rc = r->n ? EB_ECONFLICT : 0;
        eb_map_free(&c.seen);
    }
    eb_json_doc_free(da);
    eb_json_doc_free(db);
    return rc;
}
