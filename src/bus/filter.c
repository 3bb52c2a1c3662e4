/* filter.c - group filters: compiling the JSON form into a tree of fields
 * and conditions (with errors naming the path) and matching events against
 * it (the grammar is in filter.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus/filter.h"
#include "eventbus/err.h"
#include "util/xmalloc.h"

#define MAX_STR 1024

typedef enum { C_STR, C_NUM, C_TRUE, C_FALSE, C_NULL, C_PREFIX, C_NUMERIC, C_EXISTS, C_BUT } ckind;
enum { OP_LT, OP_LE, OP_EQ, OP_GE, OP_GT };

typedef struct cond {
    ckind        k;
    char        *s;      /* C_STR, C_PREFIX */
    size_t       slen;
    double       n;      /* C_NUM */
    bool         yes;    /* C_EXISTS */
    int          op[2];  /* C_NUMERIC: op[1] < 0 if one bound */
    double       v[2];
    struct cond *but;    /* C_BUT: literals or one prefix */
    size_t       nbut;
} cond;

typedef struct fnode {
    char         *name;
    struct fnode *kids;   /* an object pattern ... */
    size_t        nkids;
    cond         *conds;  /* ... or a list of conditions */
    size_t        nconds;
} fnode;

struct eb_filter {
    fnode  root;
    size_t nconds; /* while compiling: the bound */
};

typedef struct cctx {
    eb_filter      *f;
    eb_field_error *err;
    char            path[64];
} cctx;

static int fail(cctx *c, const char *msg)
{
    snprintf(c->err->field, sizeof c->err->field, "%s", c->path);
    snprintf(c->err->message, sizeof c->err->message, "%s", msg);
    return EB_EINVAL;
}

/* Appends "/seg" to the path; returns the old length to restore. */
static size_t push(cctx *c, const char *seg, size_t n)
{
    size_t old = strlen(c->path);
    snprintf(c->path + old, sizeof c->path - old, "/%.*s", (int)(n > 40 ? 40 : n), seg);
    return old;
}

static void pushi(cctx *c, size_t i)
{
    char b[24];
    snprintf(b, sizeof b, "%zu", i);
    push(c, b, strlen(b));
}

static void cond_free(cond *x)
{
    free(x->s);
    for (size_t i = 0; i < x->nbut; i++)
        cond_free(&x->but[i]);
    free(x->but);
}

static void node_free(fnode *n)
{
    free(n->name);
    for (size_t i = 0; i < n->nkids; i++)
        node_free(&n->kids[i]);
    free(n->kids);
    for (size_t i = 0; i < n->nconds; i++)
        cond_free(&n->conds[i]);
    free(n->conds);
}

void eb_filter_free(eb_filter *f)
{
    if (!f)
        return;
    node_free(&f->root);
    free(f);
}

static int set_str(cctx *c, cond *x, const eb_json *v)
{
    if (v->len > MAX_STR)
        return fail(c, "strings in a filter are at most 1024 bytes");
    x->s = eb_xmalloc(v->len + 1);
    memcpy(x->s, v->str, v->len + 1);
    x->slen = v->len;
    return 0;
}

static int literal(cctx *c, const eb_json *v, cond *x)
{
    switch (v->type) {
    case EB_JSON_STRING: x->k = C_STR; return set_str(c, x, v);
    case EB_JSON_NUMBER: x->k = C_NUM; x->n = eb_json_num(v); return 0;
    case EB_JSON_TRUE:   x->k = C_TRUE; return 0;
    case EB_JSON_FALSE:  x->k = C_FALSE; return 0;
    case EB_JSON_NULL:   x->k = C_NULL; return 0;
    default: return fail(c, "must be a string, number, true, false or null");
    }
}

static int op_of(const eb_json *v)
{
    static const char *const ops[] = {"<", "<=", "=", ">=", ">"};
    for (int i = 0; v && v->type == EB_JSON_STRING && i < 5; i++)
        if (!strcmp(v->str, ops[i]))
            return i;
    return -1;
}

static int numeric(cctx *c, const eb_json *v, cond *x)
{
    x->k = C_NUMERIC;
    x->op[1] = -1;
    if (!eb_json_is(v, EB_JSON_ARRAY) || (v->len != 2 && v->len != 4))
        return fail(c, "must be [op, number] or [op, number, op, number] with op one of "
                       "<, <=, =, >=, >");
    for (size_t i = 0; i < v->len / 2; i++) {
        const eb_json *n = eb_json_at(v, 2 * i + 1);
        x->op[i] = op_of(eb_json_at(v, 2 * i));
        if (x->op[i] < 0 || !eb_json_is(n, EB_JSON_NUMBER) || !isfinite(eb_json_num(n)))
            return fail(c, "must be [op, number] or [op, number, op, number] with op one of "
                           "<, <=, =, >=, >");
        x->v[i] = eb_json_num(n);
    }
    return 0;
}

static int anything_but(cctx *c, const eb_json *v, cond *x)
{
    x->k = C_BUT;
    size_t n = eb_json_is(v, EB_JSON_ARRAY) ? v->len : 1;
    if (n == 0)
        return fail(c, "must not be an empty list");
    x->but = eb_xcalloc(n, sizeof *x->but);
    const eb_json *p = eb_json_is(v, EB_JSON_OBJECT) ? eb_json_get(v, "prefix") : NULL;
    if (p) {
        x->nbut = 1;
        x->but[0].k = C_PREFIX;
        if (v->len != 1 || !eb_json_is(p, EB_JSON_STRING))
            return fail(c, "must be a literal, a list of literals or {\"prefix\": string}");
        return set_str(c, &x->but[0], p);
    }
    const eb_json *e = eb_json_is(v, EB_JSON_ARRAY) ? v->child : v;
    for (size_t i = 0; i < n; i++, e = e->next) {
        x->nbut++;
        int rc = literal(c, e, &x->but[i]);
        if (rc)
            return rc;
    }
    return 0;
}

/* One entry of a field's list. */
static int entry(cctx *c, const eb_json *v, cond *x)
{
    if (v->type != EB_JSON_OBJECT)
        return literal(c, v, x);
    const eb_json *m = v->child;
    if (v->len != 1)
        return fail(c, "an operator object has one member: prefix, numeric, exists or "
                       "anything-but");
    size_t old = push(c, m->key, m->key_len);
    int rc;
    if (eb_json_key_is(m, "prefix")) {
        x->k = C_PREFIX;
        rc = m->type == EB_JSON_STRING ? set_str(c, x, m) : fail(c, "must be a string");
    } else if (eb_json_key_is(m, "numeric")) {
        rc = numeric(c, m, x);
    } else if (eb_json_key_is(m, "exists")) {
        x->k = C_EXISTS;
        x->yes = m->type == EB_JSON_TRUE;
        rc = eb_json_is_bool(m) ? 0 : fail(c, "must be true or false");
    } else if (eb_json_key_is(m, "anything-but")) {
        rc = anything_but(c, m, x);
    } else {
        rc = fail(c, "unknown operator (allowed: prefix, numeric, exists, anything-but)");
    }
    c->path[old] = '\0';
    return rc;
}

static int field(cctx *c, const eb_json *v, fnode *n, int depth);

static int object(cctx *c, const eb_json *v, fnode *n, int depth)
{
    if (depth > EB_FILTER_MAX_DEPTH)
        return fail(c, "nested too deep (at most 8 levels)");
    if (v->len == 0)
        return fail(c, "must not be an empty object");
    n->kids = eb_xcalloc(v->len, sizeof *n->kids);
    for (const eb_json *m = v->child; m; m = m->next) {
        fnode *k = &n->kids[n->nkids++];
        k->name = eb_xstrndup(m->key, m->key_len);
        size_t old = push(c, m->key, m->key_len);
        int rc = field(c, m, k, depth + 1);
        if (rc)
            return rc;
        c->path[old] = '\0';
    }
    return 0;
}

/* A field: an object pattern (descend) or a non-empty list of entries. */
static int field(cctx *c, const eb_json *v, fnode *n, int depth)
{
    if (v->type == EB_JSON_OBJECT)
        return object(c, v, n, depth);
    if (v->type != EB_JSON_ARRAY || v->len == 0)
        return fail(c, "must be a non-empty list of values or conditions, or an object");
    if ((c->f->nconds += v->len) > EB_FILTER_MAX_CONDS)
        return fail(c, "too many conditions (at most 256 in a filter)");
    n->conds = eb_xcalloc(v->len, sizeof *n->conds);
    size_t i = 0;
    for (const eb_json *e = v->child; e; e = e->next, i++) {
        size_t old = strlen(c->path);
        pushi(c, i);
        n->nconds++;
        int rc = entry(c, e, &n->conds[i]);
        if (rc)
            return rc;
        c->path[old] = '\0';
    }
    return 0;
}

int eb_filter_compile(const eb_json *v, const char *at, eb_filter **out, eb_field_error *err)
{
    static const char *const tops[] = {"source", "subject", "key", "extensions", "data"};
    *out = NULL;
    eb_filter *f = eb_xcalloc(1, sizeof *f);
    cctx c = {f, err, ""};
    snprintf(c.path, sizeof c.path, "%s", at);
    int rc = eb_json_is(v, EB_JSON_OBJECT) ? 0
             : fail(&c, "a filter is an object of source, subject, key, extensions, data");
    for (const eb_json *m = v && !rc ? v->child : NULL; m && !rc; m = m->next) {
        bool ok = false;
        for (size_t i = 0; i < 5; i++)
            ok |= eb_json_key_is(m, tops[i]);
        if (!ok) {
            push(&c, m->key, m->key_len);
            rc = fail(&c, "unknown field (allowed: source, subject, key, extensions, data)");
        } else if (eb_json_key_is(m, "extensions") && m->type != EB_JSON_OBJECT) {
            push(&c, m->key, m->key_len);
            rc = fail(&c, "must be an object of extension names");
        }
    }
    if (!rc)
        rc = object(&c, v, &f->root, 0);
    if (rc) {
        eb_filter_free(f);
        return rc;
    }
    *out = f;
    return 0;
}

/* --- matching ------------------------------------------------------------------ */

static bool cmp(int op, double a, double b)
{
    switch (op) {
    case OP_LT: return a < b;
    case OP_LE: return a <= b;
    case OP_EQ: return a == b;
    case OP_GE: return a >= b;
    default:    return a > b;
    }
}

/* One condition against one (non-array) value. */
static bool cond_one(const cond *x, const eb_json *v)
{
    switch (x->k) {
    case C_STR:
        return v->type == EB_JSON_STRING && v->len == x->slen && !memcmp(v->str, x->s, x->slen);
    case C_NUM:     return v->type == EB_JSON_NUMBER && eb_json_num(v) == x->n;
    case C_TRUE:    return v->type == EB_JSON_TRUE;
    case C_FALSE:   return v->type == EB_JSON_FALSE;
    case C_NULL:    return v->type == EB_JSON_NULL;
    case C_PREFIX:
        return v->type == EB_JSON_STRING && v->len >= x->slen && !memcmp(v->str, x->s, x->slen);
    case C_NUMERIC: {
        if (v->type != EB_JSON_NUMBER)
            return false;
        double d = eb_json_num(v);
        return cmp(x->op[0], d, x->v[0]) && (x->op[1] < 0 || cmp(x->op[1], d, x->v[1]));
    }
    case C_BUT:
        for (size_t i = 0; i < x->nbut; i++)
            if (cond_one(&x->but[i], v))
                return false;
        return true;
    default: return true; /* C_EXISTS: handled by the caller */
    }
}

static bool cond_match(const cond *x, const eb_json *v)
{
    if (x->k == C_EXISTS)
        return x->yes == (v != NULL);
    if (!v)
        return false;
    if (v->type != EB_JSON_ARRAY)
        return cond_one(x, v);
    for (const eb_json *e = v->child; e; e = e->next)
        if (cond_one(x, e))
            return true;
    return false;
}

static bool node_match(const fnode *n, const eb_json *v)
{
    if (n->nconds) {
        for (size_t i = 0; i < n->nconds; i++)
            if (cond_match(&n->conds[i], v))
                return true;
        return false;
    }
    for (size_t i = 0; i < n->nkids; i++) {
        const eb_json *m = eb_json_is(v, EB_JSON_OBJECT) ? eb_json_get(v, n->kids[i].name) : NULL;
        if (!node_match(&n->kids[i], m))
            return false;
    }
    return true;
}

bool eb_filter_match(const eb_filter *f, const eb_filter_event *ev)
{
    for (size_t i = 0; i < f->root.nkids; i++) {
        const fnode *k = &f->root.kids[i];
        const eb_json *v = NULL;
        eb_json tmp = {.type = EB_JSON_STRING};
        const eb_str *s = !strcmp(k->name, "source")    ? &ev->source
                          : !strcmp(k->name, "subject") ? &ev->subject
                          : !strcmp(k->name, "key")     ? &ev->key
                                                        : NULL;
        if (s) {
            tmp.str = s->ptr;
            tmp.len = (uint32_t)s->len;
            v = s->ptr ? &tmp : NULL;
        } else {
            v = !strcmp(k->name, "data") ? ev->data : ev->extensions;
        }
        if (!node_match(k, v))
            return false;
    }
    return true;
}

void eb_filter_event_of(const eb_json *env, eb_filter_event *out)
{
    static const char *const names[] = {"source", "subject", "key"};
    eb_str *dst[] = {&out->source, &out->subject, &out->key};
    for (size_t i = 0; i < 3; i++) {
        const eb_json *s = eb_json_get(env, names[i]);
        *dst[i] = eb_json_is(s, EB_JSON_STRING) ? (eb_str){s->str, s->len} : (eb_str){NULL, 0};
    }
    out->extensions = eb_json_get(env, "extensions");
    out->data = eb_json_get(env, "data");
}
