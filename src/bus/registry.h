/* registry.h - the schema registry: per event type, an ordered list of
 * JSON Schema versions and a compatibility mode.
 *
 * Schemas are compiled once when registered (or replayed at startup) and
 * never on the publish path. The registry itself is memory only; the bus
 * persists each registration as a meta record and replays them at startup
 * through eb_registry_apply(). Loop thread only. */
#ifndef EB_BUS_REGISTRY_H
#define EB_BUS_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "schema/schema.h"
#include "util/buf.h"
#include "util/map.h"

/* One registered version of a type's schema. */
typedef struct eb_schema_ver {
    uint32_t   version;       /* 1, 2, ... */
    char      *text;          /* the schema as registered (compact JSON), owned */
    size_t     len;           /* its length */
    eb_schema *compiled;      /* compiled validator, owned */
    uint64_t   registered_us; /* when it was registered */
} eb_schema_ver;

/* All versions of one event type. */
typedef struct eb_subject {
    char          *type;     /* event type name, owned */
    eb_compat_mode compat;   /* mode for the next registration */
    eb_schema_ver *vers;     /* versions in order; vers[i].version == i + 1 */
    size_t         nvers;    /* count */
    size_t         cap;      /* allocated */
    bool           pending;  /* a registration is being made durable */
} eb_subject;

typedef struct eb_registry {
    eb_map subjects; /* type -> eb_subject* */
    size_t versions; /* schema versions, all types */
} eb_registry;

void eb_registry_init(eb_registry *r);
void eb_registry_free(eb_registry *r);

eb_subject *eb_registry_subject(const eb_registry *r, const char *type, size_t n);
/* The version `version` (0 = latest) of type's schema, or NULL. */
const eb_schema_ver *eb_registry_get(const eb_registry *r, const char *type,
                                     size_t n, uint32_t version);

/* The outcome of checking a candidate schema for a type. */
typedef struct eb_registry_verdict {
    eb_compat_mode    mode;      /* mode the check used */
    uint32_t          next;      /* version it would get */
    uint32_t          same_as;   /* non-zero: identical to this existing version */
    eb_compat_report  report;    /* breaking changes (owned; freed by _done) */
    eb_buf            error;     /* compile error message when invalid */
} eb_registry_verdict;

/* Compiles `schema` and checks it against the latest version of `type`
 * under `mode` (or the subject's mode when mode_given is false; backward for
 * a new type). Returns 0 when it may be registered, EB_ESYNTAX/EB_EINVAL if
 * it does not compile (message in out->error), EB_ECONFLICT if it breaks
 * compatibility (out->report lists why). On 0, *compiled (if non-NULL)
 * receives the compiled schema, owned by the caller. Always call
 * eb_registry_check_done(out) afterwards. */
int eb_registry_check(eb_registry *r, const char *type, size_t n, const char *schema,
                      size_t len, bool mode_given, eb_compat_mode mode,
                      eb_registry_verdict *out, eb_schema **compiled);
void eb_registry_check_done(eb_registry_verdict *c);

/* Installs version `version` of type (taking ownership of compiled, which
 * may be NULL to compile here). Used after the registration is durable and
 * when replaying meta records. Returns 0, EB_ENOMEM, or EB_ECORRUPT if the
 * version is not the next one or the schema does not compile. */
int eb_registry_apply(eb_registry *r, const char *type, size_t n, uint32_t version,
                      eb_compat_mode mode, const char *schema, size_t len,
                      uint64_t ts_us, eb_schema *compiled);

const char *eb_compat_mode_name(eb_compat_mode m);
int eb_compat_mode_parse(const char *s, size_t n, eb_compat_mode *m);

#endif
