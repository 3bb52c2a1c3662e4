/* json.h - strict RFC 8259 JSON: an arena-based parser and a streaming writer.
 *
 * Shared by the server, the client library and the CLI. The parser builds a
 * tree of eb_json nodes in one arena owned by an eb_json_doc; a doc is meant
 * to be reused across parses (the arena is kept, so steady state does no
 * malloc at all). Numbers keep their original text, so big integers and exact
 * decimals round-trip through eb_jw_value().
 *
 * Strictness: no trailing commas, comments, leading zeros, NaN/Infinity,
 * invalid UTF-8, lone surrogates (\uD800 alone), control characters in
 * strings, or trailing garbage. Duplicate object keys are rejected when
 * eb_json_opts.reject_dup_keys is set (used for event envelopes).
 *
 * Bounds: depth (default 128) and size (default 16 MiB) are checked; going
 * past either is an error (EB_EDEPTH / EB_ETOOBIG), never a crash. The parser
 * is not recursive, so no bound is needed for stack safety. A number literal
 * longer than 1000 characters is a syntax error whose message names the
 * value's JSON Pointer. Duplicate-key checks cost O(1) per key (a hash table
 * past 16 members), so a whole object is linear.
 */
#ifndef EB_JSON_H
#define EB_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

typedef enum eb_json_type {
    EB_JSON_NULL = 0,
    EB_JSON_FALSE,
    EB_JSON_TRUE,
    EB_JSON_NUMBER,
    EB_JSON_STRING,
    EB_JSON_ARRAY,
    EB_JSON_OBJECT
} eb_json_type;

/* Flags on a node. */
#define EB_JSON_F_INT 0x01 /* NUMBER: integer literal (no '.', no exponent) that fits int64 */

/* One value in a parsed document. Everything a node points to lives in the
 * document's arena: valid until the doc is re-parsed or freed. Read-only for
 * users. Children of arrays and objects form a singly linked list in document
 * order through `next`. */
typedef struct eb_json eb_json;
struct eb_json {
    uint8_t     type;     /* eb_json_type */
    uint8_t     flags;    /* EB_JSON_F_* */
    uint32_t    len;      /* STRING: decoded bytes; NUMBER: text bytes;
                             ARRAY/OBJECT: number of children */
    const char *str;      /* STRING: decoded UTF-8, NUL-terminated (may hold
                             \0 inside when the JSON had \u0000: use len);
                             NUMBER: original text, NUL-terminated */
    eb_json    *child;    /* ARRAY/OBJECT: first element or member */
    eb_json    *next;     /* next sibling in the parent, or NULL */
    const char *key;      /* member of an OBJECT: decoded key, NUL-terminated */
    uint32_t    key_len;  /* its length in bytes */
    uint32_t    src_off;  /* the value's span in the parsed text: offset... */
    uint32_t    src_len;  /* ...and length (raw pass-through of sub-documents) */
    int64_t     i64;      /* NUMBER with EB_JSON_F_INT: the value */
};

typedef struct eb_json_opts {
    uint32_t max_depth;       /* 0 = default (128) */
    size_t   max_bytes;       /* 0 = default (16 MiB) */
    bool     reject_dup_keys; /* an object with a repeated key is an error */
    uint32_t max_number;      /* characters in a number literal; 0 = default (1000) */
} eb_json_opts;

#define EB_JSON_DEFAULT_DEPTH 128
#define EB_JSON_DEFAULT_MAX_BYTES ((size_t)16 << 20)
#define EB_JSON_DEFAULT_MAX_NUMBER 1000

/* Where and why a parse failed. line and column are 1-based; column counts
 * bytes. msg is a short lowercase reason ("expected ',' or '}'"). */
typedef struct eb_json_error {
    size_t   offset;
    uint32_t line;
    uint32_t column;
    char     msg[96];
} eb_json_error;

typedef struct eb_json_doc eb_json_doc;

/* Creates an empty document (with its arena). NULL on out of memory.
 * The caller owns it and frees it with eb_json_doc_free(). */
eb_json_doc *eb_json_doc_new(void);
void eb_json_doc_free(eb_json_doc *doc);

/* Parses text[0..len) into doc, discarding whatever doc held before (its
 * arena is reused). The text is not retained: nodes hold copies, plus the
 * byte offsets src_off/src_len into it. opts may be NULL (defaults); err may
 * be NULL. Returns 0, or EB_ESYNTAX, EB_EDEPTH, EB_ETOOBIG, EB_ENOMEM with
 * *err filled. On error the doc holds no tree (eb_json_root returns NULL). */
int eb_json_parse(eb_json_doc *doc, const char *text, size_t len,
                  const eb_json_opts *opts, eb_json_error *err);

/* The root value of the last successful parse, or NULL. Owned by doc. */
const eb_json *eb_json_root(const eb_json_doc *doc);

/* --- reading a tree ------------------------------------------------------ */

/* Member of an object by key (first match), or NULL if absent or obj is not
 * an object. Linear in the member count. */
const eb_json *eb_json_get(const eb_json *obj, const char *key);
const eb_json *eb_json_getn(const eb_json *obj, const char *key, size_t klen);
/* True if member m's key is exactly key (all of it: a key holding \u0000
 * is never equal to a C string that stops there). */
bool eb_json_key_is(const eb_json *m, const char *key);
/* Element i of an array, or NULL. Linear in i. */
const eb_json *eb_json_at(const eb_json *arr, size_t i);

/* The number as a double (strtod of the original text for non-integers;
 * may be +-HUGE_VAL for overflow). 0 for non-numbers. */
double eb_json_num(const eb_json *v);
/* True if v is a number whose value is mathematically an integer
 * (1, 1.0, 1e2), whatever its spelling. */
bool eb_json_is_integral(const eb_json *v);
/* Deep equality as JSON Schema defines it: numbers by value (1 == 1.0),
 * object members regardless of order. */
bool eb_json_equal(const eb_json *a, const eb_json *b);
/* Number of Unicode code points in a STRING node (for minLength etc). */
size_t eb_json_strlen_cp(const eb_json *v);

static inline bool eb_json_is(const eb_json *v, eb_json_type t) { return v && v->type == t; }
static inline bool eb_json_is_bool(const eb_json *v)
{
    return v && (v->type == EB_JSON_TRUE || v->type == EB_JSON_FALSE);
}
const char *eb_json_type_name(eb_json_type t); /* "null", "boolean", "number", ... */

/* --- writing ------------------------------------------------------------- */

/* A streaming writer into an eb_buf. It inserts commas and colons itself;
 * the caller states structure: obj_open, key, value, ..., obj_close.
 * Errors (out of memory) are sticky in the buffer: check eb_buf_failed(out)
 * once at the end. Nesting beyond EB_JW_MAX_DEPTH is a programming error. */
#define EB_JW_MAX_DEPTH 256

typedef struct eb_jw {
    eb_buf  *out;                           /* not owned */
    uint32_t depth;                         /* open containers */
    bool     after_key;                     /* a key was written, value next */
    uint64_t has_items[EB_JW_MAX_DEPTH / 64]; /* bit per level: needs a comma */
} eb_jw;

void eb_jw_init(eb_jw *w, eb_buf *out);
void eb_jw_obj_open(eb_jw *w);
void eb_jw_obj_close(eb_jw *w);
void eb_jw_arr_open(eb_jw *w);
void eb_jw_arr_close(eb_jw *w);
void eb_jw_key(eb_jw *w, const char *key);
void eb_jw_keyn(eb_jw *w, const char *key, size_t n);
/* A key the program itself spells (a literal: nothing to escape), given
 * with its quotes and colon and written in one append: EB_JW_KEY(w, "id")
 * writes what eb_jw_key(w, "id") does, without the escaper's per-call cost
 * (rendering many small objects: publish results, stored events). */
void eb_jw_key_lit(eb_jw *w, const char *quoted_colon, size_t n);
#define EB_JW_KEY(w, lit) eb_jw_key_lit((w), "\"" lit "\":", sizeof("\"" lit "\":") - 1)
void eb_jw_str(eb_jw *w, const char *s);               /* NULL writes null */
void eb_jw_strn(eb_jw *w, const char *s, size_t n);
void eb_jw_int(eb_jw *w, int64_t v);
void eb_jw_uint(eb_jw *w, uint64_t v);
void eb_jw_double(eb_jw *w, double v);                 /* shortest round-trip; non-finite writes null */
void eb_jw_bool(eb_jw *w, bool v);
void eb_jw_null(eb_jw *w);
/* Inserts already-serialized JSON text as one value (trusted, not checked). */
void eb_jw_raw(eb_jw *w, const char *json, size_t n);
/* Serializes a parsed node (compact; numbers keep their original text). */
void eb_jw_value(eb_jw *w, const eb_json *v);
/* Writes target with the JSON merge patch (RFC 7396) applied: members of
 * a patch object replace the target's (recursively for objects), null
 * members remove them; a patch that is not an object replaces the target.
 * target may be NULL (absent). Duplicate keys in patch: the first counts. */
void eb_json_merge_patch(eb_jw *w, const eb_json *target, const eb_json *patch);

/* Appends s[0..n) as a quoted, escaped JSON string. Bytes that are not
 * valid UTF-8 are written as U+FFFD, so the output is always valid JSON
 * (callers that must not alter text check it first: eb_json_utf8_valid). */
void eb_json_escape(eb_buf *out, const char *s, size_t n);

/* Length of the valid UTF-8 sequence at s[0..n) (1 for ASCII), or 0 when
 * none starts there (overlong, surrogate, over U+10FFFF, cut short). */
size_t eb_json_utf8_len(const char *s, size_t n);
/* True if s[0..n) is valid UTF-8 (NUL bytes included). */
bool eb_json_utf8_valid(const char *s, size_t n);

#endif /* EB_JSON_H */
