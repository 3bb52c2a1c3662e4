/* compile.c - turns a JSON Schema document into a tree of compiled nodes
 * (internal.h), once: keyword values pre-parsed, regexes JIT-compiled,
 * "$ref"s resolved to nodes. Two passes per document: index the resources
 * ("$id"), anchors and dynamic anchors; then compile from the root, compiling
 * reference targets on demand (a node map makes cycles terminate). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eventbus.h"
#include "schema/internal.h"
#include "schema/uri.h"

#define DEFAULT_BASE "urn:eventbus:schema"
#define MAX_NODES 100000
/* Nested compile_node calls: subschema nesting plus "$ref" hops to targets
 * not compiled yet. Each level costs a few KiB of C stack (URI buffers);
 * without a bound a chain of a few thousand "$ref"s overflowed it. */
#define MAX_COMPILE_DEPTH 200
/* External documents loaded through the resolver for one schema: a
 * resolver that answers every URI let relative "$ref"s chain through tens
 * of thousands of documents. */
#define MAX_DOCS 256

typedef struct cctx {
    eb_schema *s;
    eb_buf    *err;
    int        rc;
    int        depth; /* compile_node calls in progress */
} cctx;

static int cfail(cctx *c, const char *ptr, const char *fmt, const char *arg)
    __attribute__((format(printf, 3, 0)));

static int cfail(cctx *c, const char *ptr, const char *fmt, const char *arg)
{
    if (!c->rc) {
        c->rc = EB_EINVAL;
        if (c->err) {
            eb_buf_reset(c->err);
            eb_buf_printf(c->err, "at %s: ", *ptr ? ptr : "(root)");
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
            eb_buf_printf(c->err, fmt, arg);
#pragma GCC diagnostic pop
        }
    }
    return c->rc;
}

static char *ptr_join(const char *base, const char *tok)
{
    eb_buf b = EB_BUF_INIT;
    eb_buf_puts(&b, base);
    eb_buf_putc(&b, '/');
    for (const char *p = tok; *p; p++) {
        if (*p == '~')
            eb_buf_puts(&b, "~0");
        else if (*p == '/')
            eb_buf_puts(&b, "~1");
        else
            eb_buf_putc(&b, *p);
    }
    return eb_buf_steal(&b, NULL);
}

static char *ptr_index(const char *base, const char *kw, size_t i)
{
    eb_buf b = EB_BUF_INIT;
    eb_buf_printf(&b, "%s/%s/%zu", base, kw, i);
    return eb_buf_steal(&b, NULL);
}

/* --- pass 1: resources and anchors ------------------------------------------- */

static bool is_draft7(const eb_json *root, bool dflt)
{
    const eb_json *sc = eb_json_get(root, "$schema");
    if (eb_json_is(sc, EB_JSON_STRING)) {
        if (strstr(sc->str, "draft-07") || strstr(sc->str, "draft-06") ||
            strstr(sc->str, "draft-04"))
            return true;
        if (strstr(sc->str, "2020-12") || strstr(sc->str, "2019-09"))
            return false;
    }
    return dflt;
}

static const char *const schema_kw_single[] = {
    "additionalProperties", "propertyNames", "not", "if", "then", "else", "contains",
    "unevaluatedProperties", "unevaluatedItems", "additionalItems", "items"};
static const char *const schema_kw_array[] = {"allOf", "anyOf", "oneOf", "prefixItems", "items"};
static const char *const schema_kw_map[] = {"properties", "patternProperties", "$defs",
                                            "definitions", "dependentSchemas", "dependencies"};

static int put_str(eb_map *m, const char *k, const void *v)
{
    return eb_map_put(m, k, strlen(k), (void *)(uintptr_t)v, NULL);
}

static void index_node(cctx *c, const eb_json *n, const char *base, bool d7, int depth);

static void index_children(cctx *c, const eb_json *n, const char *base, bool d7, int depth)
{
    for (const eb_json *m = n->child; m; m = m->next) {
        for (size_t i = 0; i < sizeof schema_kw_single / sizeof *schema_kw_single; i++)
            if (!strcmp(m->key, schema_kw_single[i]) && m->type != EB_JSON_ARRAY)
                index_node(c, m, base, d7, depth + 1);
        for (size_t i = 0; i < sizeof schema_kw_array / sizeof *schema_kw_array; i++)
            if (!strcmp(m->key, schema_kw_array[i]) && m->type == EB_JSON_ARRAY)
                for (const eb_json *e = m->child; e; e = e->next)
                    index_node(c, e, base, d7, depth + 1);
        for (size_t i = 0; i < sizeof schema_kw_map / sizeof *schema_kw_map; i++)
            if (!strcmp(m->key, schema_kw_map[i]) && m->type == EB_JSON_OBJECT)
                for (const eb_json *e = m->child; e; e = e->next)
                    index_node(c, e, base, d7, depth + 1);
    }
}

/* Records n's "$id" (a new resource and base), "$anchor" and
 * "$dynamicAnchor", then walks its subschemas. */
static void index_node(cctx *c, const eb_json *n, const char *base, bool d7, int depth)
{
    if (n->type != EB_JSON_OBJECT || depth > 200)
        return;
    char here[2048];
    snprintf(here, sizeof here, "%s", base);
    const eb_json *id = eb_json_get(n, d7 ? "$id" : "$id");
    bool has_ref = d7 && eb_json_get(n, "$ref"); /* draft-07: $ref hides siblings */
    if (eb_json_is(id, EB_JSON_STRING) && !has_ref) {
        if (d7 && id->str[0] == '#') { /* draft-07 location-independent anchor */
            char a[2200];
            snprintf(a, sizeof a, "%s%s", base, id->str);
            put_str(&c->s->anchors, a, n);
        } else {
            eb__uri_resolve(base, id->str, here, sizeof here);
            char *h = strchr(here, '#');
            if (h && h[1] == '\0')
                *h = '\0';
            put_str(&c->s->ids, here, n);
            char key[32];
            snprintf(key, sizeof key, "%p", (const void *)n);
            void *old = NULL;
            eb_map_put(&c->s->bases, key, strlen(key), strdup(here), &old);
            free(old);
        }
    }
    const eb_json *anc = eb_json_get(n, "$anchor"), *dyn = eb_json_get(n, "$dynamicAnchor");
    char a[2200];
    if (eb_json_is(anc, EB_JSON_STRING)) {
        snprintf(a, sizeof a, "%s#%s", here, anc->str);
        put_str(&c->s->anchors, a, n);
    }
    if (eb_json_is(dyn, EB_JSON_STRING)) {
        snprintf(a, sizeof a, "%s#%s", here, dyn->str);
        put_str(&c->s->anchors, a, n);
        put_str(&c->s->dyn_anchors, a, n);
    }
    index_children(c, n, here, d7, depth);
}

/* Parses text as a document stored under uri, indexes it; returns its root.
 * Duplicate keys are refused: a keyword given twice is ambiguous (and each
 * keyword is compiled once per schema object). */
static const eb_json *add_doc(cctx *c, const char *uri, const char *text, size_t len, bool d7)
{
    eb_json_doc *d = eb_json_doc_new();
    eb_json_error je = {0};
    const eb_json_opts jo = {.reject_dup_keys = true};
    if (!d || eb_json_parse(d, text, len, &jo, &je) != 0) {
        eb_json_doc_free(d);
        if (c->err && !c->rc) {
            eb_buf_reset(c->err);
            eb_buf_printf(c->err, "schema is not valid JSON (line %u, column %u: %s)", je.line,
                          je.column, je.msg);
        }
        c->rc = c->rc ? c->rc : EB_ESYNTAX;
        return NULL;
    }
    eb_map_put(&c->s->docs, uri, strlen(uri), d, NULL);
    const eb_json *root = eb_json_root(d);
    put_str(&c->s->ids, uri, root);
    char key[32];
    snprintf(key, sizeof key, "%p", (const void *)root);
    put_str(&c->s->bases, key, strdup(uri));
    index_node(c, root, uri, is_draft7(root, d7), 0);
    return root;
}

/* --- references --------------------------------------------------------------- */

static const char *base_of(cctx *c, const eb_json *resource_root);

/* Follows a JSON Pointer fragment from root; *base becomes the base URI in
 * force at the target (the innermost "$id" passed on the way). */
static const eb_json *follow_pointer(cctx *c, const eb_json *root, const char *frag,
                                     char *base, size_t cap)
{
    const eb_json *n = root;
    const char *p = frag;
    while (n && *p == '/') {
        const char *b = n != root ? base_of(c, n) : NULL;
        if (b)
            snprintf(base, cap, "%s", b);
        p++;
        char tok[512];
        size_t t = 0;
        while (*p && *p != '/' && t < sizeof tok - 1) {
            if (*p == '~' && p[1] == '0') {
                tok[t++] = '~';
                p += 2;
            } else if (*p == '~' && p[1] == '1') {
                tok[t++] = '/';
                p += 2;
            } else if (*p == '%' && p[1] && p[2]) {
                char hx[3] = {p[1], p[2], 0};
                tok[t++] = (char)strtol(hx, NULL, 16);
                p += 3;
            } else {
                tok[t++] = *p++;
            }
        }
        tok[t] = '\0';
        if (n->type == EB_JSON_OBJECT) {
            n = eb_json_getn(n, tok, t);
        } else if (n->type == EB_JSON_ARRAY) {
            char *end;
            long i = strtol(tok, &end, 10);
            n = (*end || i < 0) ? NULL : eb_json_at(n, (size_t)i);
        } else {
            n = NULL;
        }
    }
    return *p ? NULL : n;
}

static const char *base_of(cctx *c, const eb_json *resource_root)
{
    char key[32];
    snprintf(key, sizeof key, "%p", (const void *)resource_root);
    return eb_map_get(&c->s->bases, key, strlen(key));
}

/* Finds the JSON node a reference names; loads external documents through
 * the resolver. Sets *target_base to the base URI in force there. */
static const eb_json *resolve(cctx *c, const char *base, const char *ref, bool d7,
                              char *target_base, size_t cap)
{
    char abs[2048], doc[2048];
    const char *frag;
    eb__uri_resolve(base, ref, abs, sizeof abs);
    eb__uri_split(abs, doc, sizeof doc, &frag);
    const eb_json *root = eb_map_get(&c->s->ids, doc, strlen(doc));
    if (!root && c->s->opts.resolve) {
        if (c->s->docs.len > MAX_DOCS) {
            cfail(c, "", "schema references too many documents (over %s)", "256");
            return NULL;
        }
        eb_buf text = EB_BUF_INIT;
        if (c->s->opts.resolve(c->s->opts.resolve_arg, doc, &text) == 0)
            root = add_doc(c, doc, text.data ? text.data : "", text.len, d7);
        eb_buf_free(&text);
    }
    if (!root)
        return NULL;
    snprintf(target_base, cap, "%s", doc);
    if (!*frag)
        return root;
    if (frag[0] == '/')
        return follow_pointer(c, root, frag, target_base, cap);
    return eb_map_get(&c->s->anchors, abs, strlen(abs));
}

/* --- pass 2: compiling nodes ----------------------------------------------------- */

static sn *compile_node(cctx *c, const eb_json *n, const char *base, bool d7, const char *ptr);

static sn *new_sn(cctx *c, const eb_json *n, const char *ptr)
{
    if (c->s->nall >= MAX_NODES) {
        cfail(c, ptr, "schema too large (over %s subschemas)", "100000");
        return NULL;
    }
    sn *s = calloc(1, sizeof *s);
    if (!s || !(s->ptr = strdup(ptr))) {
        free(s);
        c->rc = EB_ENOMEM;
        return NULL;
    }
    if (c->s->nall == c->s->capall) {
        size_t cap = c->s->capall ? c->s->capall * 2 : 64;
        sn **a = realloc(c->s->all, cap * sizeof *a);
        if (!a) {
            free(s->ptr);
            free(s);
            c->rc = EB_ENOMEM;
            return NULL;
        }
        c->s->all = a;
        c->s->capall = cap;
    }
    c->s->all[c->s->nall++] = s;
    s->boolean = -1;
    s->min_len = s->max_len = s->min_items = s->max_items = -1;
    s->min_props = s->max_props = s->min_contains = s->max_contains = -1;
    eb_imap_put(&c->s->nodes, (uint64_t)(uintptr_t)n, s);
    return s;
}

static sn *sub(cctx *c, const eb_json *v, const char *base, bool d7, const char *ptr,
               const char *kw)
{
    char *p = ptr_join(ptr, kw);
    sn *r = p ? compile_node(c, v, base, d7, p) : NULL;
    free(p);
    return r;
}

static int get_count(cctx *c, const eb_json *v, const char *ptr, const char *kw, int64_t *out)
{
    if (!eb_json_is_integral(v) || eb_json_num(v) < 0)
        return cfail(c, ptr, "\"%s\" must be a non-negative integer", kw);
    double d = eb_json_num(v); /* 1e300 is integral too: no count gets there */
    *out = d >= 9223372036854775807.0 ? INT64_MAX : (int64_t)d;
    return 0;
}

static int get_number(cctx *c, const eb_json *v, const char *ptr, const char *kw, double *out)
{
    if (!eb_json_is(v, EB_JSON_NUMBER))
        return cfail(c, ptr, "\"%s\" must be a number", kw);
    *out = eb_json_num(v);
    return 0;
}

static int parse_types(cctx *c, sn *s, const eb_json *v)
{
    static const struct { const char *n; uint32_t b; } names[] = {
        {"null", T_NULL}, {"boolean", T_BOOL}, {"object", T_OBJ}, {"array", T_ARR},
        {"number", T_NUM}, {"string", T_STR}, {"integer", T_INT}};
    const eb_json *one = v->type == EB_JSON_ARRAY ? v->child : v;
    for (; one; one = v->type == EB_JSON_ARRAY ? one->next : NULL) {
        uint32_t bit = 0;
        for (size_t i = 0; one->type == EB_JSON_STRING && i < 7; i++)
            if (!strcmp(one->str, names[i].n))
                bit = names[i].b;
        if (!bit)
            return cfail(c, s->ptr, "\"type\" has an unknown type %s",
                         one->type == EB_JSON_STRING ? one->str : "(not a string)");
        s->types |= bit;
    }
    return 0;
}

/* ECMA-262 spells Unicode properties by long name (\p{Letter}); PCRE2
 * 10.42 knows the short ones (\p{L}). Rewrites the general categories. */
static void ecma_to_pcre(const char *src, size_t len, eb_buf *out)
{
    static const struct { const char *lng, *shrt; } cats[] = {
        {"Letter", "L"}, {"Lowercase_Letter", "Ll"}, {"Uppercase_Letter", "Lu"},
        {"Titlecase_Letter", "Lt"}, {"Modifier_Letter", "Lm"}, {"Other_Letter", "Lo"},
        {"Mark", "M"}, {"Number", "N"}, {"Decimal_Number", "Nd"}, {"digit", "Nd"},
        {"Letter_Number", "Nl"}, {"Other_Number", "No"}, {"Punctuation", "P"},
        {"Symbol", "S"}, {"Separator", "Z"}, {"Space_Separator", "Zs"}, {"Other", "C"},
        {"Control", "Cc"}};
    for (size_t i = 0; i < len; i++) {
        if (src[i] == '\\' && i + 2 < len && (src[i + 1] == 'p' || src[i + 1] == 'P') &&
            src[i + 2] == '{') {
            const char *end = memchr(src + i + 3, '}', len - i - 3);
            bool done = false;
            for (size_t k = 0; end && k < sizeof cats / sizeof cats[0] && !done; k++)
                if (strlen(cats[k].lng) == (size_t)(end - src - i - 3) &&
                    !memcmp(src + i + 3, cats[k].lng, strlen(cats[k].lng))) {
                    eb_buf_printf(out, "\\%c{%s}", src[i + 1], cats[k].shrt);
                    i = (size_t)(end - src);
                    done = true;
                }
            if (done)
                continue;
        }
        if (src[i] == '\\' && i + 1 < len) {
            eb_buf_append(out, src + i, 2);
            i++;
            continue;
        }
        eb_buf_putc(out, src[i]);
    }
}

/* JSON Schema regexes are ECMA-262; PCRE2 in UTF mode is close. "\d" and
 * "\w" are ASCII-only in both (no PCRE2_UCP), as ECMA-262 requires. */
static pcre2_code *compile_re(cctx *c, const char *src, size_t len, const char *ptr)
{
    int ec;
    PCRE2_SIZE eo;
    eb_buf t = EB_BUF_INIT;
    ecma_to_pcre(src, len, &t);
    pcre2_code *re = eb_buf_failed(&t) ? NULL
                                       : pcre2_compile((PCRE2_SPTR)(t.data ? t.data : ""), t.len,
                                                       PCRE2_UTF | PCRE2_DOLLAR_ENDONLY, &ec,
                                                       &eo, NULL);
    eb_buf_free(&t);
    if (!re) {
        char msg[160];
        pcre2_get_error_message(ec, (PCRE2_UCHAR *)msg, sizeof msg);
        cfail(c, ptr, "invalid regular expression: %s", msg);
        return NULL;
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    return re;
}

static int compile_list(cctx *c, sn_list *l, const eb_json *v, const char *base, bool d7,
                        const char *ptr, const char *kw)
{
    if (!eb_json_is(v, EB_JSON_ARRAY) || (v->len == 0 && strcmp(kw, "prefixItems") &&
                                          strcmp(kw, "items")))
        return cfail(c, ptr, "\"%s\" must be a non-empty array of schemas", kw);
    l->v = calloc(v->len ? v->len : 1, sizeof *l->v);
    if (!l->v)
        return c->rc = EB_ENOMEM;
    size_t i = 0;
    for (const eb_json *e = v->child; e && !c->rc; e = e->next, i++) {
        char *p = ptr_index(ptr, kw, i);
        l->v[i] = compile_node(c, e, base, d7, p);
        free(p);
    }
    l->n = i;
    return c->rc;
}

static int compile_props(cctx *c, sn_prop **out, size_t *nout, const eb_json *v,
                         const char *base, bool d7, const char *ptr, const char *kw)
{
    if (!eb_json_is(v, EB_JSON_OBJECT))
        return cfail(c, ptr, "\"%s\" must be an object", kw);
    *out = calloc(v->len ? v->len : 1, sizeof **out);
    if (!*out)
        return c->rc = EB_ENOMEM;
    char *kp = ptr_join(ptr, kw);
    size_t i = 0;
    for (const eb_json *m = v->child; m && !c->rc; m = m->next, i++) {
        (*out)[i] = (sn_prop){m->key, m->key_len, NULL};
        char *p = ptr_join(kp, m->key);
        (*out)[i].s = compile_node(c, m, base, d7, p);
        free(p);
    }
    free(kp);
    *nout = i;
    return c->rc;
}

static int compile_patterns(cctx *c, sn *s, const eb_json *v, const char *base, bool d7)
{
    if (!eb_json_is(v, EB_JSON_OBJECT))
        return cfail(c, s->ptr, "\"patternProperties\" must be an object%s", "");
    s->pats = calloc(v->len ? v->len : 1, sizeof *s->pats);
    if (!s->pats)
        return c->rc = EB_ENOMEM;
    char *kp = ptr_join(s->ptr, "patternProperties");
    for (const eb_json *m = v->child; m && !c->rc; m = m->next) {
        char *p = ptr_join(kp, m->key);
        sn_pat *pt = &s->pats[s->npats];
        pt->src = m->key;
        pt->re = compile_re(c, m->key, m->key_len, p);
        if (pt->re) {
            s->npats++;
            pt->s = compile_node(c, m, base, d7, p);
        }
        free(p);
    }
    free(kp);
    return c->rc;
}

/* draft-07 "dependencies": arrays are dependentRequired, schemas
 * dependentSchemas. 2020-12 "dependentSchemas". */
static int compile_deps(cctx *c, sn *s, const eb_json *v, const char *base, bool d7,
                        const char *kw)
{
    if (!eb_json_is(v, EB_JSON_OBJECT))
        return cfail(c, s->ptr, "\"%s\" must be an object", kw);
    s->dep_schemas = calloc(v->len ? v->len : 1, sizeof *s->dep_schemas);
    if (!s->dep_schemas)
        return c->rc = EB_ENOMEM;
    char *kp = ptr_join(s->ptr, kw);
    for (const eb_json *m = v->child; m && !c->rc; m = m->next) {
        if (m->type == EB_JSON_ARRAY) {
            s->dep_req = v; /* validate.c skips non-array members */
            continue;
        }
        char *p = ptr_join(kp, m->key);
        s->dep_schemas[s->ndep].key = m->key;
        s->dep_schemas[s->ndep].klen = m->key_len;
        s->dep_schemas[s->ndep].s = compile_node(c, m, base, d7, p);
        s->ndep++;
        free(p);
    }
    free(kp);
    return c->rc;
}

static sn *compile_ref(cctx *c, const char *ref, const char *base, bool d7, const char *ptr)
{
    char tbase[2048];
    const eb_json *t = resolve(c, base, ref, d7, tbase, sizeof tbase);
    if (!t) {
        cfail(c, ptr, "cannot resolve \"$ref\": %s", ref);
        return NULL;
    }
    sn *done = eb_imap_get(&c->s->nodes, (uint64_t)(uintptr_t)t);
    if (done)
        return done;
    const char *b = base_of(c, t);
    char *p = ptr_join(ptr, "$ref");
    sn *r = compile_node(c, t, b ? b : tbase, d7, p);
    free(p);
    return r;
}

/* Applies one keyword of an object schema. Unknown keywords are
 * annotations and ignored, as the specification says. */
static int keyword(cctx *c, sn *s, const eb_json *m, const char *base, bool d7)
{
    const char *k = m->key;
    const char *p = s->ptr;
    if (!strcmp(k, "type"))
        return parse_types(c, s, m);
    if (!strcmp(k, "enum")) {
        if (m->type != EB_JSON_ARRAY)
            return cfail(c, p, "\"enum\" must be an array%s", "");
        s->enum_ = m;
        return 0;
    }
    if (!strcmp(k, "const")) { s->const_ = m; return 0; }
    if (!strcmp(k, "minimum")) { s->has |= H_MIN; return get_number(c, m, p, k, &s->min); }
    if (!strcmp(k, "maximum")) { s->has |= H_MAX; return get_number(c, m, p, k, &s->max); }
    if (!strcmp(k, "exclusiveMinimum")) { s->has |= H_XMIN; return get_number(c, m, p, k, &s->xmin); }
    if (!strcmp(k, "exclusiveMaximum")) { s->has |= H_XMAX; return get_number(c, m, p, k, &s->xmax); }
    if (!strcmp(k, "multipleOf")) {
        s->has |= H_MULT;
        if (get_number(c, m, p, k, &s->mult) || s->mult <= 0)
            return cfail(c, p, "\"multipleOf\" must be a number above 0%s", "");
        return 0;
    }
    if (!strcmp(k, "minLength")) return get_count(c, m, p, k, &s->min_len);
    if (!strcmp(k, "maxLength")) return get_count(c, m, p, k, &s->max_len);
    if (!strcmp(k, "minItems")) return get_count(c, m, p, k, &s->min_items);
    if (!strcmp(k, "maxItems")) return get_count(c, m, p, k, &s->max_items);
    if (!strcmp(k, "minProperties")) return get_count(c, m, p, k, &s->min_props);
    if (!strcmp(k, "maxProperties")) return get_count(c, m, p, k, &s->max_props);
    if (!strcmp(k, "minContains")) return get_count(c, m, p, k, &s->min_contains);
    if (!strcmp(k, "maxContains")) return get_count(c, m, p, k, &s->max_contains);
    if (!strcmp(k, "uniqueItems")) { s->unique = m->type == EB_JSON_TRUE; return 0; }
    if (!strcmp(k, "pattern")) {
        if (m->type != EB_JSON_STRING)
            return cfail(c, p, "\"pattern\" must be a string%s", "");
        s->pattern_src = m->str;
        s->pattern = compile_re(c, m->str, m->len, p);
        return c->rc;
    }
    if (!strcmp(k, "format")) {
        if (m->type == EB_JSON_STRING && !c->s->opts.no_format_assert) {
            s->format = eb__schema_format_id(m->str);
            s->format_name = m->str;
        }
        return 0;
    }
    if (!strcmp(k, "required")) {
        if (m->type != EB_JSON_ARRAY)
            return cfail(c, p, "\"required\" must be an array of strings%s", "");
        for (const eb_json *e = m->child; e; e = e->next)
            if (e->type != EB_JSON_STRING)
                return cfail(c, p, "\"required\" must be an array of strings%s", "");
        s->required = m;
        return 0;
    }
    if (!strcmp(k, "properties"))
        return compile_props(c, &s->props, &s->nprops, m, base, d7, p, k);
    if (!strcmp(k, "patternProperties"))
        return compile_patterns(c, s, m, base, d7);
    if (!strcmp(k, "additionalProperties")) return !(s->additional = sub(c, m, base, d7, p, k));
    if (!strcmp(k, "propertyNames")) return !(s->prop_names = sub(c, m, base, d7, p, k));
    if (!strcmp(k, "dependentRequired")) {
        if (m->type != EB_JSON_OBJECT)
            return cfail(c, p, "\"dependentRequired\" must be an object%s", "");
        s->dep_req = m;
        return 0;
    }
    if (!strcmp(k, "dependentSchemas") || (d7 && !strcmp(k, "dependencies")))
        return compile_deps(c, s, m, base, d7, k);
    if (!strcmp(k, "prefixItems") && !d7)
        return compile_list(c, &s->prefix, m, base, d7, p, k);
    if (!strcmp(k, "items")) {
        if (d7 && m->type == EB_JSON_ARRAY)
            return compile_list(c, &s->prefix, m, base, d7, p, k);
        if (d7 && s->items) /* additionalItems came first: items array decides */
            return 0;
        return !(s->items = sub(c, m, base, d7, p, k));
    }
    if (!strcmp(k, "additionalItems") && d7)
        return 0; /* handled after all keywords (needs "items" to be an array) */
    if (!strcmp(k, "contains")) return !(s->contains = sub(c, m, base, d7, p, k));
    if (!strcmp(k, "allOf")) return compile_list(c, &s->all_of, m, base, d7, p, k);
    if (!strcmp(k, "anyOf")) return compile_list(c, &s->any_of, m, base, d7, p, k);
    if (!strcmp(k, "oneOf")) return compile_list(c, &s->one_of, m, base, d7, p, k);
    if (!strcmp(k, "not")) return !(s->not_ = sub(c, m, base, d7, p, k));
    if (!strcmp(k, "if")) return !(s->if_ = sub(c, m, base, d7, p, k));
    if (!strcmp(k, "then")) return !(s->then_ = sub(c, m, base, d7, p, k));
    if (!strcmp(k, "else")) return !(s->else_ = sub(c, m, base, d7, p, k));
    if (!strcmp(k, "unevaluatedProperties") && !d7)
        return !(s->uneval_props = sub(c, m, base, d7, p, k));
    if (!strcmp(k, "unevaluatedItems") && !d7)
        return !(s->uneval_items = sub(c, m, base, d7, p, k));
    if (!strcmp(k, "$dynamicAnchor") && !d7 && m->type == EB_JSON_STRING) {
        s->dyn_anchor = m->str;
        return 0;
    }
    if (!strcmp(k, "$ref") || (!strcmp(k, "$dynamicRef") && !d7)) {
        if (m->type != EB_JSON_STRING)
            return cfail(c, p, "\"%s\" must be a string", k);
        sn *t = compile_ref(c, m->str, base, d7, p);
        if (!strcmp(k, "$ref"))
            s->ref = t;
        else {
            s->dyn_ref = t;
            const char *h = strchr(m->str, '#');
            if (h && h[1] && h[1] != '/')
                s->dyn_anchor_name = h + 1;
        }
        return t ? 0 : c->rc;
    }
    return 0;
}

/* draft-07 "additionalItems" applies only when "items" is an array. */
static void draft7_additional_items(cctx *c, sn *s, const eb_json *n, const char *base)
{
    const eb_json *items = eb_json_get(n, "items"), *ai = eb_json_get(n, "additionalItems");
    if (ai && eb_json_is(items, EB_JSON_ARRAY))
        s->items = sub(c, ai, base, true, s->ptr, "additionalItems");
}

static sn *compile_new_node(cctx *c, const eb_json *n, const char *base, bool d7,
                            const char *ptr)
{
    sn *s;
    if (n->type != EB_JSON_OBJECT && !eb_json_is_bool(n)) {
        cfail(c, ptr, "a schema must be an object or a boolean, got %s",
              eb_json_type_name((eb_json_type)n->type));
        return NULL;
    }
    if (!(s = new_sn(c, n, ptr)))
        return NULL;
    s->draft7 = d7;
    if (n->type != EB_JSON_OBJECT) {
        s->boolean = n->type == EB_JSON_TRUE;
        return s;
    }
    const char *b = base_of(c, n); /* a resource of its own? */
    if (b)
        base = s->res_base = b;
    if (eb_json_get(n, "$schema") && b)
        d7 = s->draft7 = is_draft7(n, d7);
    const eb_json *ref = d7 ? eb_json_get(n, "$ref") : NULL;
    if (ref) { /* draft-07: $ref overrides every sibling */
        keyword(c, s, ref, base, d7);
        return c->rc ? NULL : s;
    }
    for (const eb_json *m = n->child; m && !c->rc; m = m->next)
        keyword(c, s, m, base, d7);
    if (d7 && !c->rc)
        draft7_additional_items(c, s, n, base);
    return c->rc ? NULL : s;
}

/* The compiled node of n: compiled now, or earlier (cycles end here). */
static sn *compile_node(cctx *c, const eb_json *n, const char *base, bool d7, const char *ptr)
{
    if (c->rc)
        return NULL;
    sn *s = eb_imap_get(&c->s->nodes, (uint64_t)(uintptr_t)n);
    if (s)
        return s;
    if (c->depth >= MAX_COMPILE_DEPTH) {
        cfail(c, ptr, "schema nests too deeply (over %s levels of subschemas and \"$ref\"s)",
              "200");
        return NULL;
    }
    c->depth++;
    s = compile_new_node(c, n, base, d7, ptr);
    c->depth--;
    return s;
}

/* Dynamic anchors may be reached only through "$dynamicRef" scopes: compile
 * them all so validation can jump to any of them. */
static void compile_dynamic_anchors(cctx *c, bool d7)
{
    size_t it = 0;
    const eb_map_slot *m;
    while (!c->rc && (m = eb_map_next(&c->s->dyn_anchors, &it))) {
        const eb_json *n = m->val;
        if (eb_imap_get(&c->s->nodes, (uint64_t)(uintptr_t)n))
            continue;
        char base[2048];
        snprintf(base, sizeof base, "%.*s", (int)(strchr(m->key, '#') - m->key), m->key);
        compile_node(c, n, base, d7, m->key);
    }
}

/* --- public ---------------------------------------------------------------------- */

static void free_sn(sn *s)
{
    free(s->ptr);
    if (s->pattern)
        pcre2_code_free(s->pattern);
    for (size_t i = 0; i < s->npats; i++)
        pcre2_code_free(s->pats[i].re);
    free(s->pats);
    free(s->props);
    free(s->dep_schemas);
    free(s->prefix.v);
    free(s->all_of.v);
    free(s->any_of.v);
    free(s->one_of.v);
    free(s);
}

void eb_schema_free(eb_schema *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->nall; i++)
        free_sn(s->all[i]);
    free(s->all);
    size_t it = 0;
    const eb_map_slot *m;
    while ((m = eb_map_next(&s->docs, &it)))
        eb_json_doc_free(m->val);
    it = 0;
    while ((m = eb_map_next(&s->bases, &it)))
        free(m->val);
    eb_map_free(&s->docs);
    eb_map_free(&s->ids);
    eb_map_free(&s->anchors);
    eb_map_free(&s->dyn_anchors);
    eb_map_free(&s->bases);
    eb_imap_free(&s->nodes);
    free(s);
}

int eb_schema_compile(const char *json, size_t len, const eb_schema_opts *o, eb_schema **out,
                      eb_buf *err)
{
    eb_schema *s = calloc(1, sizeof *s);
    if (!s)
        return EB_ENOMEM;
    if (o)
        s->opts = *o;
    cctx c = {s, err, 0, 0};
    bool d7 = s->opts.default_draft == EB_DRAFT_07;
    const eb_json *root = add_doc(&c, DEFAULT_BASE, json, len, d7);
    if (root) {
        const char *b = base_of(&c, root);
        s->root = compile_node(&c, root, b ? b : DEFAULT_BASE, is_draft7(root, d7), "");
        compile_dynamic_anchors(&c, d7);
    }
    if (c.rc || !s->root) {
        int rc = c.rc ? c.rc : EB_EINVAL;
        eb_schema_free(s);
        return rc;
    }
    *out = s;
    return 0;
}
