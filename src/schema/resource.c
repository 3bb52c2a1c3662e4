/* resource.c - the documents a schema is made of, and how references find
 * their targets. Loading a document indexes it: every resource (the root
 * and each subschema with "$id") with its base URI and dialect, every
 * "$anchor" and "$dynamicAnchor". A dialect comes from "$schema": draft-07
 * and 2020-12 are known by URI; any other meta-schema is loaded like a
 * reference and its "$vocabulary" says which keyword families apply.
 * Documents are looked up in this order: already loaded, the bundled
 * meta-schemas (metaschemas/), the caller's resolver. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eventbus/err.h"
#include "schema/internal.h"
#include "schema/uri.h"
#include "util/pct.h"
#include "util/xmalloc.h"

#define MAX_INDEX_DEPTH 200
#define MAX_META_HOPS 4 /* meta-schema of a meta-schema of ... */

static const char *const schema_kw_single[] = {
    "additionalProperties", "propertyNames", "not", "if", "then", "else", "contains",
    "unevaluatedProperties", "unevaluatedItems", "additionalItems", "items"};
static const char *const schema_kw_array[] = {"allOf", "anyOf", "oneOf", "prefixItems", "items"};
static const char *const schema_kw_map[] = {"properties", "patternProperties", "$defs",
                                            "definitions", "dependentSchemas", "dependencies"};

int eb__cfail(cctx *c, const char *ptr, const char *fmt, const char *arg)
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

static void put_ptr(eb_map *m, const char *k, const void *v)
{
    eb_map_put(m, k, strlen(k), (void *)(uintptr_t)v, NULL);
}

const sres *eb__res_of(const eb_schema *s, const eb_json *n)
{
    return eb_imap_get(&s->res, (uint64_t)(uintptr_t)n);
}

const sres *eb__res_of_uri(const eb_schema *s, const char *uri)
{
    const eb_json *root = eb_map_get(&s->ids, uri, strlen(uri));
    return root ? eb__res_of(s, root) : NULL;
}

/* --- dialects ------------------------------------------------------------------ */

#define DIALECT_REFUSED 0xFFFFFFFFu /* a draft we do not implement */

/* "$schema" URIs known without loading them; "#" and "http(s)" ignored.
 * 2019-09, draft-06 and draft-04 differ from what we implement ($recursiveRef,
 * exclusiveMaximum as a boolean, ...): refused, not read as another draft. */
static unsigned known_dialect(const char *uri)
{
    static const struct { const char *tail; unsigned d; } known[] = {
        {"://json-schema.org/draft/2020-12/schema", DIALECT_2020},
        {"://json-schema.org/draft/2019-09/schema", DIALECT_REFUSED},
        {"://json-schema.org/draft-07/schema", DIALECT_D7},
        {"://json-schema.org/draft-06/schema", DIALECT_REFUSED},
        {"://json-schema.org/draft-04/schema", DIALECT_REFUSED},
        {"://json-schema.org/draft-03/schema", DIALECT_REFUSED}};
    const char *p = !strncmp(uri, "https", 5) ? uri + 5 : !strncmp(uri, "http", 4) ? uri + 4 : NULL;
    for (size_t i = 0; p && i < sizeof known / sizeof *known; i++) {
        size_t n = strlen(known[i].tail);
        if (!strncmp(p, known[i].tail, n) && (!p[n] || !strcmp(p + n, "#")))
            return known[i].d;
    }
    return 0;
}

/* The V_* bit of a 2020-12 vocabulary URI, or 0 when unknown. */
static unsigned vocab_bit(const char *uri)
{
    static const char pfx[] = "https://json-schema.org/draft/2020-12/vocab/";
    static const struct { const char *n; unsigned v; } names[] = {
        {"core", V_CORE}, {"applicator", V_APPLICATOR}, {"unevaluated", V_UNEVAL},
        {"validation", V_VALIDATION}, {"meta-data", V_METADATA},
        {"format-annotation", V_FMT_ANNOT}, {"format-assertion", V_FMT_ASSERT},
        {"content", V_CONTENT}};
    if (strncmp(uri, pfx, sizeof pfx - 1))
        return 0;
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (!strcmp(uri + sizeof pfx - 1, names[i].n))
            return names[i].v;
    return 0;
}

/* The vocabularies a meta-schema's "$vocabulary" object turns on. A
 * required vocabulary (true) we do not implement makes the schema
 * unusable (EB_EUNSUPP); an optional one (false) is ignored. */
static unsigned vocabularies(cctx *c, const eb_json *voc)
{
    unsigned d = V_CORE;
    for (const eb_json *m = voc->child; m; m = m->next) {
        unsigned bit = vocab_bit(m->key);
        if (!bit && m->type == EB_JSON_TRUE && !c->rc) {
            c->rc = EB_EUNSUPP;
            if (c->err) {
                eb_buf_reset(c->err);
                eb_buf_printf(c->err, "the meta-schema requires vocabulary %s, which is not "
                              "supported", m->key);
            }
        }
        d |= bit;
    }
    return d;
}

/* A "$schema" we cannot honour: the schema is refused (EB_EUNSUPP, the
 * API answers 422 naming "$schema") rather than read as another draft. */
static unsigned refuse_dialect(cctx *c, const char *uri, const char *why)
{
    if (!c->rc) {
        c->rc = EB_EUNSUPP;
        if (c->err) {
            eb_buf_reset(c->err);
            eb_buf_printf(c->err, "\"$schema\": \"%.300s\" %s; eventbus validates JSON Schema "
                          "draft 2020-12 and draft-07", uri, why);
        }
    }
    return DIALECT_2020;
}

/* The dialect a meta-schema we load names, for one whose own "$schema" is
 * itself (it cannot say more than its name). */
static unsigned dialect_by_name(cctx *c, const char *uri, unsigned inherited)
{
    if (strstr(uri, "draft-07"))
        return DIALECT_D7;
    if (strstr(uri, "2020-12"))
        return DIALECT_2020;
    if (strstr(uri, "2019-09") || strstr(uri, "draft-06") || strstr(uri, "draft-04"))
        return refuse_dialect(c, uri, "names a draft that is not supported");
    return inherited;
}

/* The dialect n's "$schema" selects (inherited when there is none). */
static unsigned dialect_of(cctx *c, const eb_json *n, unsigned inherited, int hops)
{
    const eb_json *sc = eb_json_get(n, "$schema");
    if (!eb_json_is(sc, EB_JSON_STRING))
        return inherited;
    unsigned d = known_dialect(sc->str);
    if (d == DIALECT_REFUSED)
        return refuse_dialect(c, sc->str, "names a draft that is not supported");
    if (d)
        return d;
    char doc[2048];
    const char *frag;
    eb__uri_split(sc->str, doc, sizeof doc, &frag);
    const eb_json *meta = hops < MAX_META_HOPS ? eb__load_doc(c, doc, inherited) : NULL;
    if (!meta || meta->type != EB_JSON_OBJECT)
        return refuse_dialect(c, sc->str, "is not a meta-schema eventbus knows");
    /* The meta-schema's own dialect gives the draft; its "$vocabulary"
     * (2019-09 and later) the keyword families. */
    d = meta == n ? dialect_by_name(c, sc->str, inherited) : dialect_of(c, meta, inherited, hops + 1);
    const eb_json *voc = eb_json_get(meta, "$vocabulary");
    if (!(d & V_DRAFT7) && eb_json_is(voc, EB_JSON_OBJECT))
        d = vocabularies(c, voc);
    return d;
}

/* --- indexing -------------------------------------------------------------------- */

static void index_node(cctx *c, const eb_json *n, const char *base, unsigned dialect,
                       int depth, bool doc_root);

static void index_children(cctx *c, const eb_json *n, const char *base, unsigned dialect,
                           int depth)
{
    for (const eb_json *m = n->child; m; m = m->next) {
        for (size_t i = 0; i < sizeof schema_kw_single / sizeof *schema_kw_single; i++)
            if (!strcmp(m->key, schema_kw_single[i]) && m->type != EB_JSON_ARRAY)
                index_node(c, m, base, dialect, depth + 1, false);
        for (size_t i = 0; i < sizeof schema_kw_array / sizeof *schema_kw_array; i++)
            if (!strcmp(m->key, schema_kw_array[i]) && m->type == EB_JSON_ARRAY)
                for (const eb_json *e = m->child; e; e = e->next)
                    index_node(c, e, base, dialect, depth + 1, false);
        for (size_t i = 0; i < sizeof schema_kw_map / sizeof *schema_kw_map; i++)
            if (!strcmp(m->key, schema_kw_map[i]) && m->type == EB_JSON_OBJECT)
                for (const eb_json *e = m->child; e; e = e->next)
                    index_node(c, e, base, dialect, depth + 1, false);
    }
}

/* Records a new resource rooted at n. */
static void add_resource(cctx *c, const eb_json *n, const char *base, unsigned dialect)
{
    sres *r = eb_xcalloc(1, sizeof *r);
    r->base = eb_xstrdup(base);
    eb_imap_put(&c->s->res, (uint64_t)(uintptr_t)n, r);
    r->dialect = dialect;
    put_ptr(&c->s->ids, base, n);
}

/* Records n's "$id" (a new resource and base), "$anchor" and
 * "$dynamicAnchor", then walks its subschemas. */
static void index_node(cctx *c, const eb_json *n, const char *base, unsigned dialect,
                       int depth, bool doc_root)
{
    if (n->type != EB_JSON_OBJECT || depth > MAX_INDEX_DEPTH || c->rc) {
        if (doc_root) /* true / false */
            add_resource(c, n, base, dialect);
        return;
    }
    char here[2048];
    snprintf(here, sizeof here, "%s", base);
    unsigned d = dialect_of(c, n, dialect, 0);
    bool d7 = d & V_DRAFT7;
    const eb_json *id = eb_json_get(n, "$id");
    bool has_ref = d7 && eb_json_get(n, "$ref"); /* draft-07: $ref hides siblings */
    bool new_res = doc_root;
    if (eb_json_is(id, EB_JSON_STRING) && !has_ref) {
        if (d7 && id->str[0] == '#') { /* draft-07 location-independent anchor */
            char a[2200];
            snprintf(a, sizeof a, "%s%s", base, id->str);
            put_ptr(&c->s->anchors, a, n);
        } else {
            eb__uri_resolve(base, id->str, here, sizeof here);
            char *h = strchr(here, '#');
            if (h && h[1] == '\0')
                *h = '\0';
            new_res = true;
        }
    }
    if (new_res)
        add_resource(c, n, here, d);
    else
        d = dialect; /* "$schema" counts at resource roots only */
    const eb_json *anc = eb_json_get(n, "$anchor"), *dyn = eb_json_get(n, "$dynamicAnchor");
    char a[2200];
    if (eb_json_is(anc, EB_JSON_STRING)) {
        snprintf(a, sizeof a, "%s#%s", here, anc->str);
        put_ptr(&c->s->anchors, a, n);
    }
    if (eb_json_is(dyn, EB_JSON_STRING)) {
        snprintf(a, sizeof a, "%s#%s", here, dyn->str);
        put_ptr(&c->s->anchors, a, n);
        put_ptr(&c->s->dyn_anchors, a, n);
    }
    index_children(c, n, here, d, depth);
}

/* External documents loaded through the resolver for one schema: a
 * resolver that answers every URI let relative "$ref"s chain through tens
 * of thousands of documents. */
#define MAX_DOCS 256

const eb_json *eb__add_doc(cctx *c, const char *uri, const char *text, size_t len,
                           unsigned dialect)
{
    eb_json_doc *d = eb_json_doc_new();
    eb_json_error je = {0};
    /* Duplicate keys are refused: a keyword given twice is ambiguous. */
    const eb_json_opts jo = {.reject_dup_keys = true};
    if (!d || eb_json_parse(d, text, len, &jo, &je) != 0) {
        eb_json_doc_free(d);
        if (c->err && !c->rc) {
            eb_buf_reset(c->err);
            if (strcmp(uri, EB__DEFAULT_BASE))
                eb_buf_printf(c->err, "%s: ", uri);
            eb_buf_printf(c->err, "schema is not valid JSON (line %u, column %u: %s)", je.line,
                          je.column, je.msg);
        }
        c->rc = c->rc ? c->rc : EB_ESYNTAX;
        return NULL;
    }
    eb_map_put(&c->s->docs, uri, strlen(uri), d, NULL);
    const eb_json *root = eb_json_root(d);
    put_ptr(&c->s->ids, uri, root); /* by the URI it was loaded from, too */
    index_node(c, root, uri, dialect, 0, true);
    return root;
}

static const eb__embedded_doc *embedded(const char *uri)
{
    for (const eb__embedded_doc *e = eb__metaschemas; e->uri; e++)
        if (!strcmp(e->uri, uri))
            return e;
    return NULL;
}

const eb_json *eb__load_doc(cctx *c, const char *uri, unsigned dialect)
{
    const eb_json *root = eb_map_get(&c->s->ids, uri, strlen(uri));
    if (root || c->rc)
        return root;
    const eb__embedded_doc *e = embedded(uri);
    if (e)
        return eb__add_doc(c, uri, e->text, e->len, dialect);
    if (!c->s->opts.resolve)
        return NULL;
    if (c->s->docs.len > MAX_DOCS) { /* relative refs could chain endless documents */
        if (!c->rc && c->err) {
            eb_buf_reset(c->err);
            eb_buf_printf(c->err, "schema references too many documents (over %d)", MAX_DOCS);
        }
        c->rc = c->rc ? c->rc : EB_EINVAL;
        return NULL;
    }
    eb_buf text = EB_BUF_INIT;
    if (c->s->opts.resolve(c->s->opts.resolve_arg, uri, &text) == 0)
        root = eb__add_doc(c, uri, text.data ? text.data : "", text.len, dialect);
    eb_buf_free(&text);
    return root;
}

/* --- references ------------------------------------------------------------------ */

/* One JSON Pointer token from *p (up to the next '/') into tok, escapes
 * undone in the order of RFC 6901 §6: percent-escapes of the URI fragment
 * first (a malformed one kept as written), then "~0" and "~1". Returns its
 * length; a token longer than cap - 1 is cut short. */
static size_t pointer_token(const char **p, char *tok, size_t cap)
{
    const char *q = *p;
    size_t rawn = strcspn(q, "/"), n, t = 0;
    eb_pct_decode(q, rawn, tok, cap, &n, EB_PCT_LENIENT);
    for (size_t i = 0; i < n; i++) {
        if (tok[i] == '~' && i + 1 < n && (tok[i + 1] == '0' || tok[i + 1] == '1')) {
            tok[t++] = tok[i + 1] == '0' ? '~' : '/';
            i++;
        } else {
            tok[t++] = tok[i];
        }
    }
    tok[t] = '\0';
    *p = q + rawn;
    return t;
}

/* Follows a JSON Pointer fragment from root; *res becomes the resource in
 * force at the target (the innermost "$id" passed on the way). */
static const eb_json *follow_pointer(const eb_schema *s, const eb_json *root, const char *frag,
                                     const sres **res)
{
    const eb_json *n = root;
    const char *p = frag;
    while (n && *p == '/') {
        const sres *r = n != root ? eb__res_of(s, n) : NULL;
        if (r)
            *res = r;
        p++;
        char tok[512];
        size_t t = pointer_token(&p, tok, sizeof tok);
        if (n->type == EB_JSON_OBJECT) {
            n = eb_json_getn(n, tok, t);
        } else if (n->type == EB_JSON_ARRAY) {
            char *end;
            long i = strtol(tok, &end, 10);
            n = (*end || i < 0 || !t) ? NULL : eb_json_at(n, (size_t)i);
        } else {
            n = NULL;
        }
    }
    return *p ? NULL : n;
}

const eb_json *eb__resolve(cctx *c, const sres *from, const char *ref, const sres **to)
{
    char abs[2048], doc[2048];
    const char *frag;
    eb__uri_resolve(from->base, ref, abs, sizeof abs);
    eb__uri_split(abs, doc, sizeof doc, &frag);
    const eb_json *root = eb__load_doc(c, doc, from->dialect);
    const sres *r = root ? eb__res_of_uri(c->s, doc) : NULL;
    if (!r)
        return NULL;
    *to = r;
    if (!*frag)
        return root;
    if (frag[0] == '/')
        return follow_pointer(c->s, root, frag, to);
    const eb_json *t = eb_map_get(&c->s->anchors, abs, strlen(abs));
    if (!t && strcmp(r->base, doc)) { /* loaded under another URI than its "$id" */
        char a[2200];
        snprintf(a, sizeof a, "%s#%s", r->base, frag);
        t = eb_map_get(&c->s->anchors, a, strlen(a));
    }
    return t;
}
