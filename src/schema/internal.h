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
    double         min, max, xmin, xmax, mult;
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
    const char    *res_base;   /* resource roots: their base URI (owned by bases) */
};

struct eb_schema {
    sn          *root;
    eb_map       docs;    /* absolute URI (no fragment) -> eb_json_doc* kept alive */
    eb_imap      nodes;   /* (uintptr_t)eb_json* -> sn* */
    eb_map       ids;     /* absolute URI (no fragment) -> const eb_json* (resource root) */
    eb_map       anchors; /* "uri#name" -> const eb_json* */
    eb_map       dyn_anchors; /* "uri#name" -> const eb_json* (dynamic anchors) */
    eb_map       bases;   /* "%p" of a resource root -> its base URI (char*) */
    sn         **all;     /* every node, for freeing */
    size_t       nall, capall;
    eb_schema_opts opts;
};

/* format.c */
int  eb__schema_format_id(const char *name);
bool eb__schema_format_ok(int format, const char *s, size_t n);

#endif
