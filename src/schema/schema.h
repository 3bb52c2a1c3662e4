/* schema.h - JSON Schema: compile once, validate many times; and the
 * compatibility checker used by the schema registry.
 *
 * Pure library: no I/O (external documents come through a resolver
 * callback). Dialects: draft 2020-12 (default when "$schema" is absent) and
 * draft-07. A compiled schema is immutable and may be used by several
 * threads at once; validation allocates little beyond the error list and
 * its work is bounded (compile depth, validation steps: validate.c).
 * Keyword coverage, formats asserted, bounds: ARCHITECTURE.md, "src/schema". */
#ifndef EB_SCHEMA_H
#define EB_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "json/json.h"
#include "util/buf.h"

typedef struct eb_schema eb_schema;

typedef enum eb_schema_draft { EB_DRAFT_2020_12 = 0, EB_DRAFT_07 } eb_schema_draft;

typedef struct eb_schema_opts {
    eb_schema_draft default_draft; /* when "$schema" is absent */
    /* Loads the document at an absolute URI into out (JSON text); 0 or an
     * error. NULL: external references fail to compile. */
    int  (*resolve)(void *arg, const char *uri, eb_buf *out);
    void  *resolve_arg;
    bool   no_format_assert;       /* treat "format" as an annotation only */
} eb_schema_opts;

/* Compiles the schema text. On success *out is owned by the caller
 * (eb_schema_free). On failure returns EB_ESYNTAX (not JSON), EB_EINVAL
 * (not a valid schema) or EB_EUNSUPP, with a message naming the schema
 * location in err (may be NULL). */
int  eb_schema_compile(const char *json, size_t len, const eb_schema_opts *o,
                       eb_schema **out, eb_buf *err);
void eb_schema_free(eb_schema *s);

/* One violation. Strings are owned by the error list. */
typedef struct eb_schema_error {
    char *path;        /* JSON Pointer into the instance ("" = the root) */
    char *schema_path; /* JSON Pointer into the schema, ending in the keyword */
    char *message;     /* plain words */
} eb_schema_error;

/* A bounded list of violations, reusable across validations. */
typedef struct eb_schema_errors {
    eb_schema_error *items;
    size_t           n, cap;
    size_t           max;       /* bound (default 100) */
    bool             truncated; /* more violations than max */
} eb_schema_errors;

void eb_schema_errors_init(eb_schema_errors *e, size_t max);
void eb_schema_errors_reset(eb_schema_errors *e);
void eb_schema_errors_free(eb_schema_errors *e);
static inline size_t eb_schema_errors_count(const eb_schema_errors *e) { return e->n; }
static inline const eb_schema_error *eb_schema_errors_at(const eb_schema_errors *e, size_t i)
{
    return &e->items[i];
}

/* Validates instance. Returns 0 when valid, EB_ESCHEMA when not. With errs
 * NULL it stops at the first violation (the fast path); otherwise every
 * violation (up to errs->max) is appended, in document order. */
int eb_schema_validate(const eb_schema *s, const eb_json *instance, eb_schema_errors *errs);

/* --- compatibility -------------------------------------------------------- */

typedef enum eb_compat_mode {
    EB_COMPAT_NONE = 0, /* anything goes */
    EB_COMPAT_BACKWARD, /* readers on the new schema read data written with the old */
    EB_COMPAT_FORWARD,  /* readers on the old schema read data written with the new */
    EB_COMPAT_FULL      /* both */
} eb_compat_mode;

typedef struct eb_compat_change {
    char *pointer;     /* JSON Pointer into the schemas where it happens */
    char *message;     /* plain words: `property "currency" became required` */
    bool  undecidable; /* could not be verified, reported rather than passed */
} eb_compat_change;

typedef struct eb_compat_report {
    eb_compat_change *items;
    size_t            n, cap;
} eb_compat_report;

void eb_compat_report_init(eb_compat_report *r);
void eb_compat_report_free(eb_compat_report *r);
static inline size_t eb_compat_report_count(const eb_compat_report *r) { return r->n; }
static inline const eb_compat_change *eb_compat_report_at(const eb_compat_report *r, size_t i)
{
    return &r->items[i];
}

/* Lists every change from old_json to new_json that breaks `mode` (and
 * what cannot be decided). Returns 0 when compatible, EB_ECONFLICT when the
 * report holds at least one entry, EB_ESYNTAX if either is not JSON. */
int eb_schema_compat(const char *old_json, size_t old_len, const char *new_json,
                     size_t new_len, eb_compat_mode mode, eb_compat_report *r);

#endif
