/* compile.c - turns a JSON Schema document into a tree of compiled nodes
 * (internal.h), once: keyword values pre-parsed, regexes JIT-compiled,
 * "$ref"s resolved to nodes. Two passes per document: index the resources
 * ("$id"), anchors and dynamic anchors (resource.c); then compile from the
 * root, compiling reference targets on demand (a node map makes cycles
 * terminate). Each node is compiled under its resource's dialect: draft-07
 * rules, and only the keywords of the vocabularies in force. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eventbus/err.h"
#include "schema/internal.h"
#include "schema/uri.h"
#include "util/xmalloc.h"

#define MAX_NODES 100000
/* Nested compile_node calls: subschema nesting plus "$ref" hops to targets
 * not compiled yet. Each level costs a few KiB of C stack (URI buffers);
 * without a bound a chain of a few thousand "$ref"s overflowed it. */
#define MAX_COMPILE_DEPTH 200

#define cfail eb__cfail

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

/* --- pass 2: compiling nodes ----------------------------------------------------- */

static sn *compile_node(cctx *c, const eb_json *n, const sres *r, const char *ptr);

static sn *new_sn(cctx *c, const eb_json *n, const char *ptr)
{
    if (c->s->nall >= MAX_NODES) {
        cfail(c, ptr, "schema too large (over %s subschemas)", "100000");
        return NULL;
    }
    sn *s = eb_xcalloc(1, sizeof *s);
    s->ptr = eb_xstrdup(ptr);
    if (c->s->nall == c->s->capall) {
        size_t cap = c->s->capall ? c->s->capall * 2 : 64;
        c->s->all = eb_xrealloc(c->s->all, cap * sizeof *c->s->all);
        c->s->capall = cap;
    }
    c->s->all[c->s->nall++] = s;
    s->boolean = -1;
    s->min_len = s->max_len = s->min_items = s->max_items = -1;
    s->min_props = s->max_props = s->min_contains = s->max_contains = -1;
    eb_imap_put(&c->s->nodes, (uint64_t)(uintptr_t)n, s);
    return s;
}

static sn *sub(cctx *c, const eb_json *v, const sres *r, const char *ptr, const char *kw)
{
    char *p = ptr_join(ptr, kw);
    sn *s = p ? compile_node(c, v, r, p) : NULL;
    free(p);
    return s;
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

#define ECMA_WS "\\p{Zs}\\x{FEFF}\\x{2028}\\x{2029}"

/* ECMA-262 spells Unicode properties by long name (\p{Letter}); PCRE2
 * 10.42 knows the short ones (\p{L}). Rewrites the general categories,
 * and \s / \S to ECMA-262's Unicode white space. */
static void ecma_to_pcre(const char *src, size_t len, eb_buf *out)
{
    static const struct { const char *lng, *shrt; } cats[] = {
        {"Letter", "L"}, {"Lowercase_Letter", "Ll"}, {"Uppercase_Letter", "Lu"},
        {"Titlecase_Letter", "Lt"}, {"Modifier_Letter", "Lm"}, {"Other_Letter", "Lo"},
        {"Mark", "M"}, {"Number", "N"}, {"Decimal_Number", "Nd"}, {"digit", "Nd"},
        {"Letter_Number", "Nl"}, {"Other_Number", "No"}, {"Punctuation", "P"},
        {"Symbol", "S"}, {"Separator", "Z"}, {"Space_Separator", "Zs"}, {"Other", "C"},
        {"Control", "Cc"}};
    bool in_class = false;
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
        if (src[i] == '\\' && i + 1 < len && (src[i + 1] == 's' || src[i + 1] == 'S')) {
            /* ECMA-262 \s is WhiteSpace and LineTerminator: Unicode Zs,
             * U+FEFF, U+2028, U+2029 besides PCRE2's ASCII \s. (\S inside a
             * class keeps PCRE2's meaning: a class cannot hold a negation.) */
            if (in_class)
                eb_buf_puts(out, src[i + 1] == 's' ? "\\s" ECMA_WS : "\\S");
            else
                eb_buf_puts(out, src[i + 1] == 's' ? "[\\s" ECMA_WS "]" : "[^\\s" ECMA_WS "]");
            i++;
            continue;
        }
        if (src[i] == '\\' && i + 1 < len) {
            eb_buf_append(out, src + i, 2);
            i++;
            continue;
        }
        if (src[i] == '[' && !in_class)
            in_class = true;
        else if (src[i] == ']' && in_class)
            in_class = false;
        eb_buf_putc(out, src[i]);
    }
}

/* JSON Schema regexes are ECMA-262; PCRE2 in UTF mode is close. "\d",
 * "\w" and "\b" are ASCII-only in both (no PCRE2_UCP), as ECMA-262
 * requires; "\s" is rewritten (ecma_to_pcre). */
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

static int compile_list(cctx *c, sn_list *l, const eb_json *v, const sres *r, const char *ptr,
                        const char *kw)
{
    if (!eb_json_is(v, EB_JSON_ARRAY) || (v->len == 0 && strcmp(kw, "prefixItems") &&
                                          strcmp(kw, "items")))
        return cfail(c, ptr, "\"%s\" must be a non-empty array of schemas", kw);
    l->v = eb_xcalloc(v->len, sizeof *l->v);
    size_t i = 0;
    for (const eb_json *e = v->child; e && !c->rc; e = e->next, i++) {
        char *p = ptr_index(ptr, kw, i);
        l->v[i] = compile_node(c, e, r, p);
        free(p);
    }
    l->n = i;
    return c->rc;
}

static int compile_props(cctx *c, sn_prop **out, size_t *nout, const eb_json *v,
                         const sres *r, const char *ptr, const char *kw)
{
    if (!eb_json_is(v, EB_JSON_OBJECT))
        return cfail(c, ptr, "\"%s\" must be an object", kw);
    *out = eb_xcalloc(v->len, sizeof **out);
    char *kp = ptr_join(ptr, kw);
    size_t i = 0;
    for (const eb_json *m = v->child; m && !c->rc; m = m->next, i++) {
        (*out)[i] = (sn_prop){m->key, m->key_len, NULL};
        char *p = ptr_join(kp, m->key);
        (*out)[i].s = compile_node(c, m, r, p);
        free(p);
    }
    free(kp);
    *nout = i;
    return c->rc;
}

static int compile_patterns(cctx *c, sn *s, const eb_json *v, const sres *r)
{
    if (!eb_json_is(v, EB_JSON_OBJECT))
        return cfail(c, s->ptr, "\"patternProperties\" must be an object%s", "");
    s->pats = eb_xcalloc(v->len, sizeof *s->pats);
    char *kp = ptr_join(s->ptr, "patternProperties");
    for (const eb_json *m = v->child; m && !c->rc; m = m->next) {
        char *p = ptr_join(kp, m->key);
        sn_pat *pt = &s->pats[s->npats];
        pt->src = m->key;
        pt->re = compile_re(c, m->key, m->key_len, p);
        if (pt->re) {
            s->npats++;
            pt->s = compile_node(c, m, r, p);
        }
        free(p);
    }
    free(kp);
    return c->rc;
}

/* draft-07 "dependencies": arrays are dependentRequired, schemas
 * dependentSchemas. 2020-12 "dependentSchemas". */
static int compile_deps(cctx *c, sn *s, const eb_json *v, const sres *r, const char *kw)
{
    if (!eb_json_is(v, EB_JSON_OBJECT))
        return cfail(c, s->ptr, "\"%s\" must be an object", kw);
    s->dep_schemas = eb_xcalloc(v->len, sizeof *s->dep_schemas);
    char *kp = ptr_join(s->ptr, kw);
    for (const eb_json *m = v->child; m && !c->rc; m = m->next) {
        if (m->type == EB_JSON_ARRAY) {
            s->dep_req = v; /* validate.c skips non-array members */
            continue;
        }
        char *p = ptr_join(kp, m->key);
        s->dep_schemas[s->ndep].key = m->key;
        s->dep_schemas[s->ndep].klen = m->key_len;
        s->dep_schemas[s->ndep].s = compile_node(c, m, r, p);
        s->ndep++;
        free(p);
    }
    free(kp);
    return c->rc;
}

static sn *compile_ref(cctx *c, const char *ref, const sres *r, const char *ptr)
{
    const sres *tr = r;
    const eb_json *t = eb__resolve(c, r, ref, &tr);
    if (!t) {
        cfail(c, ptr, "cannot resolve \"$ref\": %s", ref);
        return NULL;
    }
    sn *done = eb_imap_get(&c->s->nodes, (uint64_t)(uintptr_t)t);
    if (done)
        return done;
    char *p = ptr_join(ptr, "$ref");
    sn *target = compile_node(c, t, tr, p);
    free(p);
    return target;
}

/* The vocabulary (V_*) a keyword belongs to; 0 for core and unknown ones. */
static unsigned keyword_vocabulary(const char *k)
{
    static const struct { const char *k; unsigned v; } t[] = {
        {"type", V_VALIDATION}, {"enum", V_VALIDATION}, {"const", V_VALIDATION},
        {"multipleOf", V_VALIDATION}, {"maximum", V_VALIDATION},
        {"exclusiveMaximum", V_VALIDATION}, {"minimum", V_VALIDATION},
        {"exclusiveMinimum", V_VALIDATION}, {"maxLength", V_VALIDATION},
        {"minLength", V_VALIDATION}, {"pattern", V_VALIDATION}, {"maxItems", V_VALIDATION},
        {"minItems", V_VALIDATION}, {"uniqueItems", V_VALIDATION},
        {"maxContains", V_VALIDATION}, {"minContains", V_VALIDATION},
        {"maxProperties", V_VALIDATION}, {"minProperties", V_VALIDATION},
        {"required", V_VALIDATION}, {"dependentRequired", V_VALIDATION},
        {"format", V_FMT_ANNOT | V_FMT_ASSERT},
        {"unevaluatedProperties", V_UNEVAL}, {"unevaluatedItems", V_UNEVAL},
        {"prefixItems", V_APPLICATOR}, {"items", V_APPLICATOR}, {"contains", V_APPLICATOR},
        {"additionalProperties", V_APPLICATOR}, {"properties", V_APPLICATOR},
        {"patternProperties", V_APPLICATOR}, {"dependentSchemas", V_APPLICATOR},
        {"propertyNames", V_APPLICATOR}, {"if", V_APPLICATOR}, {"then", V_APPLICATOR},
        {"else", V_APPLICATOR}, {"allOf", V_APPLICATOR}, {"anyOf", V_APPLICATOR},
        {"oneOf", V_APPLICATOR}, {"not", V_APPLICATOR}, {"additionalItems", V_APPLICATOR},
        {"dependencies", V_APPLICATOR}};
    for (size_t i = 0; i < sizeof t / sizeof *t; i++)
        if (!strcmp(k, t[i].k))
            return t[i].v;
    return 0;
}

/* Applies one keyword of an object schema. Unknown keywords are
 * annotations and ignored, as the specification says. */
static int keyword(cctx *c, sn *s, const eb_json *m, const sres *r)
{
    const char *k = m->key;
    const char *p = s->ptr;
    bool d7 = r->dialect & V_DRAFT7;
    unsigned vocab = keyword_vocabulary(k);
    if (vocab && !(r->dialect & vocab))
        return 0; /* its vocabulary is off: an unknown keyword */
    if (!strcmp(k, "type"))
        return parse_types(c, s, m);
    if (!strcmp(k, "enum")) {
        if (m->type != EB_JSON_ARRAY)
            return cfail(c, p, "\"enum\" must be an array%s", "");
        s->enum_ = m;
        return 0;
    }
    if (!strcmp(k, "const")) { s->const_ = m; return 0; }
    if (!strcmp(k, "minimum")) { s->has |= H_MIN; s->min_n = m; return get_number(c, m, p, k, &s->min); }
    if (!strcmp(k, "maximum")) { s->has |= H_MAX; s->max_n = m; return get_number(c, m, p, k, &s->max); }
    if (!strcmp(k, "exclusiveMinimum")) { s->has |= H_XMIN; s->xmin_n = m; return get_number(c, m, p, k, &s->xmin); }
    if (!strcmp(k, "exclusiveMaximum")) { s->has |= H_XMAX; s->xmax_n = m; return get_number(c, m, p, k, &s->xmax); }
    if (!strcmp(k, "multipleOf")) {
        s->has |= H_MULT;
        s->mult_n = m;
        if (get_number(c, m, p, k, &s->mult) || m->str[0] == '-' || !strpbrk(m->str, "123456789") ||
            strcspn(m->str, "123456789") > strcspn(m->str, "eE"))
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
        if (m->type == EB_JSON_STRING &&
            ((r->dialect & V_FMT_ASSERT) || !c->s->opts.no_format_assert)) {
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
        return compile_props(c, &s->props, &s->nprops, m, r, p, k);
    if (!strcmp(k, "patternProperties"))
        return compile_patterns(c, s, m, r);
    if (!strcmp(k, "additionalProperties")) return !(s->additional = sub(c, m, r, p, k));
    if (!strcmp(k, "propertyNames")) return !(s->prop_names = sub(c, m, r, p, k));
    if (!strcmp(k, "dependentRequired")) {
        if (m->type != EB_JSON_OBJECT)
            return cfail(c, p, "\"dependentRequired\" must be an object%s", "");
        s->dep_req = m;
        return 0;
    }
    if (!strcmp(k, "dependentSchemas") || (d7 && !strcmp(k, "dependencies")))
        return compile_deps(c, s, m, r, k);
    if (!strcmp(k, "prefixItems") && !d7)
        return compile_list(c, &s->prefix, m, r, p, k);
    if (!strcmp(k, "items")) {
        if (d7 && m->type == EB_JSON_ARRAY)
            return compile_list(c, &s->prefix, m, r, p, k);
        if (d7 && s->items) /* additionalItems came first: items array decides */
            return 0;
        return !(s->items = sub(c, m, r, p, k));
    }
    if (!strcmp(k, "additionalItems") && d7)
        return 0; /* handled after all keywords (needs "items" to be an array) */
    if (!strcmp(k, "contains")) return !(s->contains = sub(c, m, r, p, k));
    if (!strcmp(k, "allOf")) return compile_list(c, &s->all_of, m, r, p, k);
    if (!strcmp(k, "anyOf")) return compile_list(c, &s->any_of, m, r, p, k);
    if (!strcmp(k, "oneOf")) return compile_list(c, &s->one_of, m, r, p, k);
    if (!strcmp(k, "not")) return !(s->not_ = sub(c, m, r, p, k));
    if (!strcmp(k, "if")) return !(s->if_ = sub(c, m, r, p, k));
    if (!strcmp(k, "then")) return !(s->then_ = sub(c, m, r, p, k));
    if (!strcmp(k, "else")) return !(s->else_ = sub(c, m, r, p, k));
    if (!strcmp(k, "unevaluatedProperties") && !d7)
        return !(s->uneval_props = sub(c, m, r, p, k));
    if (!strcmp(k, "unevaluatedItems") && !d7)
        return !(s->uneval_items = sub(c, m, r, p, k));
    if (!strcmp(k, "$dynamicAnchor") && !d7 && m->type == EB_JSON_STRING) {
        s->dyn_anchor = m->str;
        return 0;
    }
    if (!strcmp(k, "$ref") || (!strcmp(k, "$dynamicRef") && !d7)) {
        if (m->type != EB_JSON_STRING)
            return cfail(c, p, "\"%s\" must be a string", k);
        sn *t = compile_ref(c, m->str, r, p);
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
static void draft7_additional_items(cctx *c, sn *s, const eb_json *n, const sres *r)
{
    const eb_json *items = eb_json_get(n, "items"), *ai = eb_json_get(n, "additionalItems");
    if (ai && eb_json_is(items, EB_JSON_ARRAY))
        s->items = sub(c, ai, r, s->ptr, "additionalItems");
}

static sn *compile_new_node(cctx *c, const eb_json *n, const sres *r, const char *ptr)
{
    sn *s;
    if (n->type != EB_JSON_OBJECT && !eb_json_is_bool(n)) {
        cfail(c, ptr, "a schema must be an object or a boolean, got %s",
              eb_json_type_name((eb_json_type)n->type));
        return NULL;
    }
    if (!(s = new_sn(c, n, ptr)))
        return NULL;
    const sres *own = eb__res_of(c->s, n); /* a resource of its own? */
    if (own)
        r = own;
    bool d7 = r->dialect & V_DRAFT7;
    s->draft7 = d7;
    s->res = r;
    if (n->type != EB_JSON_OBJECT) {
        s->boolean = n->type == EB_JSON_TRUE;
        return s;
    }
    const eb_json *ref = d7 ? eb_json_get(n, "$ref") : NULL;
    if (ref) { /* draft-07: $ref overrides every sibling */
        keyword(c, s, ref, r);
        return c->rc ? NULL : s;
    }
    for (const eb_json *m = n->child; m && !c->rc; m = m->next)
        keyword(c, s, m, r);
    if (d7 && !c->rc)
        draft7_additional_items(c, s, n, r);
    return c->rc ? NULL : s;
}

/* The compiled node of n: compiled now, or earlier (cycles end here). */
static sn *compile_node(cctx *c, const eb_json *n, const sres *r, const char *ptr)
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
    s = compile_new_node(c, n, r, ptr);
    c->depth--;
    return s;
}

/* Dynamic anchors may be reached only through "$dynamicRef" scopes: compile
 * them all so validation can jump to any of them. */
static void compile_dynamic_anchors(cctx *c)
{
    size_t it = 0;
    const eb_map_slot *m;
    while (!c->rc && (m = eb_map_next(&c->s->dyn_anchors, &it))) {
        const eb_json *n = m->val;
        if (eb_imap_get(&c->s->nodes, (uint64_t)(uintptr_t)n))
            continue;
        char base[2048];
        snprintf(base, sizeof base, "%.*s", (int)(strchr(m->key, '#') - m->key), m->key);
        const sres *r = eb__res_of_uri(c->s, base);
        if (r)
            compile_node(c, n, r, m->key);
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
    const eb_imap_slot *r;
    while ((r = eb_imap_next(&s->res, &it))) {
        free(((sres *)r->val)->base);
        free(r->val);
    }
    eb_map_free(&s->docs);
    eb_map_free(&s->ids);
    eb_map_free(&s->anchors);
    eb_map_free(&s->dyn_anchors);
    eb_imap_free(&s->res);
    eb_imap_free(&s->nodes);
    free(s);
}

int eb_schema_compile(const char *json, size_t len, const eb_schema_opts *o, eb_schema **out,
                      eb_buf *err)
{
    eb_schema *s = eb_xcalloc(1, sizeof *s);
    if (o)
        s->opts = *o;
    cctx c = {s, err, 0, 0};
    unsigned dialect = s->opts.default_draft == EB_DRAFT_07 ? DIALECT_D7 : DIALECT_2020;
    const eb_json *root = eb__add_doc(&c, EB__DEFAULT_BASE, json, len, dialect);
    const sres *r = root ? eb__res_of(s, root) : NULL;
    if (r && !c.rc) {
        s->root = compile_node(&c, root, r, "");
        compile_dynamic_anchors(&c);
    }
    if (c.rc || !s->root) {
        int rc = c.rc ? c.rc : EB_EINVAL;
        eb_schema_free(s);
        return rc;
    }
    *out = s;
    return 0;
}
