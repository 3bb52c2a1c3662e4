/* internal.h - the compiled form of a JSON Schema, shared by compile.c,
 * validate.c and format.c. Not part of the schema API. */
#ifndef EB_SCHEMA_INTERNAL_H
#define EB_SCHEMA_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "schema/schema.h"
#include "util/imap.h"
#include "util/map.h"

/* Type bits of "type". */
enum { T_NULL = 1, T_BOOL = 2, T_OBJ = 4, T_ARR = 8, T_NUM = 16, T_STR = 32, T_INT = 64 };

/* Which numeric bounds are set. */
enum { H_MIN = 1, H_MAX = 2, H_XMIN = 4, H_XMAX = 8, H_MULT = 16 };

/* Formats asserted. */
enum { F_NONE = 0, F_DATETIME, F_DATE, F_TIME, F_DURATION, F_EMAIL, F_HOSTNAME, F_IPV4,
       F_IPV6, F_URI, F_URIREF, F_UUID, F_JSONPTR, F_REGEX };

/* Dialect of a schema resource: the vocabularies in force ("$vocabulary"
 * of its meta-schema) and whether draft-07 rules apply. */
enum { V_CORE = 1, V_APPLICATOR = 2, V_UNEVAL = 4, V_VALIDATION = 8, V_METADATA = 16,
       V_FMT_ANNOT = 32, V_FMT_ASSERT = 64, V_CONTENT = 128, V_DRAFT7 = 256 };
#define DIALECT_2020 (V_CORE | V_APPLICATOR | V_UNEVAL | V_VALIDATION | V_METADATA | \
                      V_FMT_ANNOT | V_CONTENT)
#define DIALECT_D7 (V_DRAFT7 | V_CORE | V_APPLICATOR | V_VALIDATION | V_METADATA | \
                    V_FMT_ANNOT | V_CONTENT)

/* A schema resource: a document root or a subschema with "$id". */
typedef struct sres {
    char    *base;    /* its absolute base URI, no fragment (owned) */
    unsigned dialect; /* V_* bits */
} sres;

/* A document compiled into the library (gen_metaschemas.py). */
typedef struct eb__embedded_doc {
    const char *uri;  /* "$id" without a trailing '#' */
    size_t      len;
    const char *text; /* JSON */
} eb__embedded_doc;

/* The bundled draft-07 and 2020-12 meta-schemas; ends with a NULL uri. */
extern const eb__embedded_doc eb__metaschemas[];

typedef struct sn sn;

typedef struct sn_prop {
    const char *key;  /* property name (points into the schema document) */
    uint32_t    klen;
    sn         *s;    /* its schema */
} sn_prop;

typedef struct sn_pat {
    pcre2_code *re;   /* compiled with JIT */
    const char *src;  /* the pattern text */
    sn         *s;
} sn_pat;

typedef struct sn_list {
    sn   **v;
    size_t n;
} sn_list;

/* One compiled schema object (or boolean schema). Pointers to eb_json
 * values point into documents the eb_schema keeps alive. */
struct sn {
    char          *ptr;        /* JSON Pointer of this schema (for errors) */
    int8_t         boolean;    /* -1: object schema; 0: false; 1: true */
    bool           draft7;     /* draft-07 semantics */
    uint32_t       types;      /* T_* mask; 0 = no "type" */
    const eb_json *enum_;      /* "enum" array */
    const eb_json *const_;     /* "const" value */
    unsigned       has;        /* H_* bits */
    double         min, max, xmin, xmax, mult; /* for messages */
    const eb_json *min_n, *max_n, *xmin_n, *xmax_n, *mult_n; /* the literals: compared exactly */
    int64_t        min_len, max_len;      /* -1 = unset */
    int64_t        min_items, max_items;
    int64_t        min_props, max_props;
    int64_t        min_contains, max_contains;
    bool           unique;
    pcre2_code    *pattern;
    const char    *pattern_src;
    int            format;     /* F_* */
    const char    *format_name;
    sn_prop       *props;      /* "properties" */
    size_t         nprops;
    sn_pat        *pats;       /* "patternProperties" */
    size_t         npats;
    sn            *additional; /* "additionalProperties" */
    sn            *prop_names; /* "propertyNames" */
    const eb_json *required;   /* array of names */
    const eb_json *dep_req;    /* "dependentRequired" (or draft-07 dependencies arrays) */
    sn_prop       *dep_schemas;
    size_t         ndep;
    sn_list        prefix;     /* "prefixItems" (draft-07 "items" array) */
    sn            *items;      /* "items" (draft-07 "additionalItems" after an array) */
    sn            *contains;
    sn_list        all_of, any_of, one_of;
    sn            *not_, *if_, *then_, *else_;
    sn            *ref;        /* resolved "$ref" */
    sn            *dyn_ref;    /* resolved "$dynamicRef" (static target) */
    const char    *dyn_anchor_name; /* "$dynamicRef" fragment when it names a dynamic anchor */
    const char    *dyn_anchor; /* this resource's "$dynamicAnchor" */
    sn            *uneval_props;
    sn            *uneval_items;
    const sres    *res;        /* the resource this schema belongs to */
};

struct eb_schema {
    sn          *root;
    eb_map       docs;    /* absolute URI (no fragment) -> eb_json_doc* kept alive */
    eb_imap      nodes;   /* (uintptr_t)eb_json* -> sn* */
    eb_map       ids;     /* absolute URI (no fragment) -> const eb_json* (resource root) */
    eb_map       anchors; /* "uri#name" -> const eb_json* */
    eb_map       dyn_anchors; /* "uri#name" -> const eb_json* (dynamic anchors) */
    eb_imap      res;     /* (uintptr_t) resource root eb_json* -> sres* (owned) */
    sn         **all;     /* every node, for freeing */
    size_t       nall, capall;
    eb_schema_opts opts;
};

/* Compilation state (compile.c, resource.c). */
#define EB__DEFAULT_BASE "urn:eventbus:schema"
typedef struct cctx {
    eb_schema *s;
    eb_buf    *err; /* message of the first failure (may be NULL) */
    int        rc;  /* first failure, 0 while none */
    int        depth; /* compile_node calls in progress */
} cctx;

/* resource.c */
/* Records the first failure (EB_EINVAL) with a message naming ptr. */
int eb__cfail(cctx *c, const char *ptr, const char *fmt, const char *arg)
    __attribute__((format(printf, 3, 0)));
/* Parses text as the document at uri and indexes its resources and anchors. */
const eb_json *eb__add_doc(cctx *c, const char *uri, const char *text, size_t len,
                           unsigned dialect);
/* The root of the document at uri: loaded already, bundled, or resolved. */
const eb_json *eb__load_doc(cctx *c, const char *uri, unsigned dialect);
/* The node ref names, seen from resource `from`; *to = the resource there. */
const eb_json *eb__resolve(cctx *c, const sres *from, const char *ref, const sres **to);
/* The resource rooted at n / with base URI uri, or NULL. */
const sres *eb__res_of(const eb_schema *s, const eb_json *n);
const sres *eb__res_of_uri(const eb_schema *s, const char *uri);

/* format.c */
int  eb__schema_format_id(const char *name);
bool eb__schema_format_ok(int format, const char *s, size_t n);

#endif
