/* eventbus.h - the public API of libeventbus, the C client for eventbusd.
 *
 * Everything a program needs to talk to an eventbus server lives here, behind
 * opaque types. The error codes (eb_err, eb_strerror) live in eventbus/err.h
 * and the version macros in eventbus/version.h, both included here: the
 * server's internal layers return the same codes, so one eb_strerror()
 * explains any status.
 *
 * Conventions:
 *   - Functions return int: 0 (EB_OK) on success, a negative eb_err otherwise.
 *   - The library never prints and never exits.
 */
#ifndef EVENTBUS_H
#define EVENTBUS_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "eventbus/err.h"
#include "eventbus/version.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ==========================================================================
 * libeventbus: the client
 *
 * An eb_client is one HTTP/1.1 keep-alive connection to one eventbusd (made
 * on first use, remade after a failure; one per server of a list). Every
 * call blocks until the server
 * answers, the call's timeout passes, or the cancel flag is raised.
 *
 * Failover: the URL may be a comma-separated list of servers (nodes of one
 * bus). A call goes to the server that answered last and moves to the next
 * one of the list (round robin, each tried at most once per call) when that
 * one cannot be reached, its connection breaks or times out, or it answers
 * 503. A request that may have reached the server moves on only when it is
 * safe to send twice: a publish is, because every event it sends has an id
 * (the library generates one, before the first try, for an event given
 * without), so a second copy is a duplicate the server drops; acks and
 * nacks (by delivery id), pulls, reads and PUTs are too; eb_request moves
 * on after such a failure only for GET, HEAD, PUT, DELETE and OPTIONS.
 * Leader: several eventbusd nodes on one PostgreSQL database have one
 * leader; the others relay requests to it and name it in their answers
 * (header Eventbus-Leader). When the named URL is one of the list (compared as
 * scheme, host, port and prefix), the calls after that answer go to it
 * directly, the others staying as fallbacks; a URL not in the list is
 * never contacted.
 *
 * Threads: a handle is not thread-safe; use one handle per thread (handles
 * share nothing, and the library has no global state). eb_consume() starts
 * a helper thread with its own handle while it runs.
 *
 * Errors: every call returns 0 or a negative eb_err. After any call,
 * eb_client_error() tells what happened: the server's HTTP status, error
 * code, message and details, or a local reason (cannot connect, timed out).
 * When the server refused a request, the code is mapped from its answer:
 *   400 -> EB_EINVAL (EB_ESYNTAX for malformed_json), 404 -> EB_ENOTFOUND,
 *   401 -> EB_EAUTH, 403 -> EB_EDENIED, 409 -> EB_ECONFLICT, 413 -> EB_ETOOBIG, 422 -> EB_ESCHEMA,
 *   503 -> EB_ECLOSED, anything else -> EB_ESERVER.
 * No answer: EB_ECONNECT (cannot connect, or the connection broke),
 * EB_ETIMEDOUT, EB_ECANCELED (cancel flag), EB_EPROTO (not HTTP, or an
 * answer that is not the JSON the API documents).
 *
 * Growing without breaking (ABI): every struct the caller allocates (the
 * *_opts structs, eb_message, eb_groups_config, eb_publish_result,
 * eb_schemas_result, eb_settle_result, eb_consume_stats) starts with
 * `size`, which the caller sets to sizeof the struct it was compiled with:
 *     eb_publish_opts o = {.size = sizeof o, .key = "order-42"};
 * New fields are only ever added at the end. The library reads and writes
 * only the first `size` bytes: a program built against an older header gets
 * the defaults for fields it does not know; one built against a newer
 * header works with an older library as long as the fields that library
 * does not know are zero (else EB_EUNSUPP). A size smaller than the first
 * version of the struct is EB_EINVAL. Arrays are arrays of pointers, and
 * the structs the library allocates are read through pointers only, so
 * neither changes stride when a struct grows.
 *
 * Ownership: strings passed in are only read during the call. Results are
 * written into caller-provided structs, or returned through `T **out`
 * parameters that the caller owns and frees with the matching function:
 * eb_free for strings, eb_events_free for event lists, eb_result_free for
 * the typed results (eb_receipts, eb_schemas_verdict, eb_schemas_registry,
 * eb_schemas_type, eb_groups_info, eb_groups_all, eb_stats_info). Every
 * pointer inside a result lives as long as the result. For a typed result
 * `out` may be NULL: the call is made, the answer checked, nothing kept.
 * ========================================================================== */

typedef struct eb_client eb_client;

typedef struct eb_client_opts {
    size_t      size;               /* sizeof(eb_client_opts) */
    const char *url;                /* "http://host:port[/prefix]", "https://host:port[/prefix]"
                                       (TLS 1.2+, the server's certificate verified
                                       against cafile or the system store and its name
                                       or IP checked) or "host:port"
                                       (IPv6: "[::1]:8470"); or a comma-separated list
                                       of up to 16 of them, tried in turn (Failover
                                       above; spaces around a URL ignored; the token
                                       and cafile serve all); NULL: EVENTBUS_URL from
                                       the environment (a list too), else
                                       http://127.0.0.1:8470. Copied. */
    uint32_t    connect_timeout_ms; /* 0: 5000 */
    uint32_t    timeout_ms;         /* per request and server tried, 0: 30000 (a long
                                       poll adds its wait) */
    const volatile sig_atomic_t *cancel; /* optional: while *cancel != 0 every blocking
                                       call returns EB_ECANCELED (checked at least every
                                       100 ms). A call started with the flag up sends
                                       nothing; one cut short may or may not have taken
                                       effect (as with a timeout). Not owned; must
                                       outlive the client. */
    const char *token;              /* API token sent as "Authorization: Bearer <token>"
                                       (1 to 512 of [A-Za-z0-9-._~+/=]); NULL:
                                       EVENTBUS_TOKEN from the environment, else none;
                                       "": none. Copied. */
    const char *cafile;             /* https: PEM file of the CAs to trust instead of the
                                       system store; NULL: EVENTBUS_CACERT from the
                                       environment, else the system store; "": the
                                       system store. Read by eb_client_new (EB_EINVAL
                                       if unusable). */
} eb_client_opts;

/* Creates a client (no connection is made yet). opts may be NULL. On success
 * *out is a handle the caller owns and frees with eb_client_free(). Returns
 * EB_EINVAL for an unusable URL or opts->size, EB_ENOMEM. */
int eb_client_new(const eb_client_opts *opts, eb_client **out);
/* Closes the connection and frees everything the client owns (its error
 * detail included). NULL is a no-op. */
void eb_client_free(eb_client *c);
/* The normalized base URL of the server in use, "http://host:port[/prefix]":
 * the one that answered last, or the leader it named (the first of the list
 * before any answer).
 * Owned by c, valid as long as c (calls may change which URL it returns). */
const char *eb_client_url(const eb_client *c);

/* One entry of an error's details, parsed (see eb_error). */
typedef struct eb_error_detail {
    int64_t     index;   /* the refused event of a batch; -1: none */
    const char *path;    /* JSON Pointer into the input (schema violations,
                            breaking changes; "" is the root); NULL: none */
    const char *field;   /* the request field at fault; NULL: none */
    const char *message; /* never NULL ("" if the server gave none) */
} eb_error_detail;

/* What the last call on c did. Owned by c; valid until the next call on c
 * (or eb_client_free). All strings are non-NULL. The library allocates this
 * struct: fields may be added at the end. */
typedef struct eb_error {
    int         code;        /* the eb_err the last call returned (EB_OK after success) */
    int         http_status; /* the server's HTTP status; 0 when no answer came */
    const char *server_code; /* the server's error code ("schema_violation"); "" if none */
    const char *message;     /* the server's message, or a local explanation ("" if OK) */
    const char *details;     /* the server's details: a JSON array as text ("[]" if none) */
    size_t      ndetails;    /* the same details, parsed (objects of the array) */
    const eb_error_detail *const *detail;
} eb_error;
const eb_error *eb_client_error(const eb_client *c);

/* The body of the last answer on c, whatever its status, as the server sent
 * it (JSON text, NUL-terminated; "" when none came). *len (may be NULL) gets
 * its length. Owned by c; valid until the next call on c. After a call that
 * returned an eb_events list the body went to the list (eb_events_json). */
const char *eb_client_answer(const eb_client *c, size_t *len);

/* Frees a string the library returned through a `char **` parameter. */
void eb_free(void *p);
/* Frees a typed result (eb_receipts, eb_schemas_verdict, eb_schemas_registry,
 * eb_schemas_type, eb_groups_info, eb_groups_all, eb_stats_info) and every
 * string and list inside it. NULL is a no-op. */
void eb_result_free(const void *result);

/* The version of the libeventbus loaded at run time, as EB_VERSION_HEX
 * (0xMMmmpp); compare with the EB_VERSION_* macros a program was built
 * with. *str (may be NULL) gets "MAJOR.MINOR.PATCH", static, owned by the
 * library. */
unsigned eb_version(const char **str);

/* Any request: method ("GET", "POST", ...), path ("/v1/stats", with its
 * query string, taken as is), optional JSON body. *status (may be NULL) gets
 * the HTTP status, *answer (may be NULL) the answer body, NUL-terminated,
 * caller-owned (eb_free), set whenever an answer came, error or not.
 * Returns 0 on 2xx, the mapped error otherwise. */
int eb_request(eb_client *c, const char *method, const char *path, const char *body,
               size_t body_len, int *status, char **answer);

/* --- JSON text ------------------------------------------------------------- */

/* Checks that text[0..len) is one JSON value (RFC 8259, as strict as the
 * server). On failure *line and *column (1-based bytes; may be NULL) locate
 * the fault and why (why_cap bytes, may be NULL) gets a short reason
 * ("expected ',' or '}'"). Returns 0, EB_ESYNTAX, EB_ETOOBIG / EB_EDEPTH
 * (past 16 MiB / 128 levels), EB_ENOMEM. */
int eb_json_check(const char *text, size_t len, uint32_t *line, uint32_t *column, char *why,
                  size_t why_cap);
/* Re-indents the JSON text[0..len) for people: one member or element per
 * line, two spaces per level, `"key": value`, empty containers as {} and
 * [], strings re-escaped minimally, numbers as written; no final newline.
 * *out is caller-owned (eb_free). EB_ESYNTAX if text is not JSON. */
int eb_json_pretty(const char *text, size_t len, char **out);

/* --- publishing ----------------------------------------------------------- */

typedef struct eb_publish_opts {
    size_t      size;           /* sizeof(eb_publish_opts) */
    const char *id;             /* client-chosen id (<= 128 bytes) for deduplication;
                                   NULL: the library generates a ULID before the first
                                   try (so a copy sent again is a duplicate) */
    const char *key;            /* ordering key; NULL: none */
    const char *source;         /* who produced it ("order-service"); NULL: none */
    const char *subject;        /* NULL: none */
    const char *correlation_id; /* NULL: the event's own id */
    const char *causation_id;   /* NULL: none */
    uint32_t    version;        /* schema version to validate against; 0: the latest */
    /* added after 0.1.0: optimistic concurrency (needs key). When check_version is
     * set the server refuses the event (EB_ECONFLICT, server code
     * "version_conflict", the key's current version in the error's
     * details) unless the key's current version is expected_version (0:
     * the key must not exist yet). */
    bool        check_version;
    uint64_t    expected_version;
    /* added after 0.1.0: delayed delivery. The event is stored (and the call
     * returns) at once, but no consumer group gets it before this time:
     * deliver_at is RFC 3339 ("2026-12-01T09:00:00Z"), delay a duration
     * with a unit ("90s", "15m", "2h"); at most one of them (NULL: none).
     * A time in the past means now; more than the server's --max-delay
     * (30 days) ahead is refused (EB_EINVAL, naming the field). */
    const char *deliver_at;
    const char *delay;
} eb_publish_opts;

/* The server's receipt: the event is durable. Plain data. */
typedef struct eb_publish_result {
    size_t   size;      /* sizeof(eb_publish_result), set by whoever allocates it */
    char     id[129];   /* the event id (generated or the client's) */
    uint64_t seq;       /* its position in the log */
    char     time[40];  /* append time, RFC 3339 UTC */
    bool     duplicate; /* a repeat of an id seen within the dedupe window:
                           nothing was written, seq/time are the original's */
    /* added after 0.1.0: */
    uint64_t key_version; /* the event's version within its key (1, 2, ...); 0: no key
                             (or a duplicate) */
    char     deliver_at[40]; /* a delayed event: when groups get it (RFC 3339); "" if not */
} eb_publish_result;

/* Publishes one event of `type` whose data is the JSON text `data` (NULL:
 * null). data is checked locally first (EB_ESYNTAX, nothing sent). opts and
 * res may be NULL (res->size set by the caller). Returns once the server has
 * it on disk. */
int eb_publish(eb_client *c, const char *type, const char *data, const eb_publish_opts *opts,
               eb_publish_result *res);

/* One event of a batch. */
typedef struct eb_message {
    size_t                 size; /* sizeof(eb_message) */
    const char            *type;
    const char            *data; /* JSON text; NULL: null */
    const eb_publish_opts *opts; /* NULL: none */
} eb_message;

/* The receipts of a batch, in order. Caller-owned: eb_result_free(). */
typedef struct eb_receipts {
    size_t                          n;
    const eb_publish_result *const *results; /* n receipts */
} eb_receipts;

/* Publishes n (1..1000) events atomically: all are written, or none (the
 * error details then list every refused event by index). msgs is an array
 * of n pointers. *out (may be NULL) gets the receipts. */
int eb_publish_batch(eb_client *c, const eb_message *const *msgs, size_t n, eb_receipts **out);

/* Publishes ready-made envelope JSON as docs/api.md describes it: one event
 * object (`{"type":...,"data":...}`) or an array of them (a batch). *out
 * (may be NULL) gets a receipt per event the server accepted. */
int eb_publish_json(eb_client *c, const char *json, size_t len, eb_receipts **out);

/* --- reading events --------------------------------------------------------- */

/* One event, as the server shows it. Every pointer is owned by the eb_events
 * list it came from and valid until eb_events_free(). Strings are
 * NUL-terminated; absent attributes are NULL. Allocated by the library:
 * fields may be added at the end. */
typedef struct eb_event {
    const char *id;
    const char *type;
    const char *source;
    const char *key;
    const char *subject;
    const char *correlation_id;
    const char *causation_id;
    uint64_t    seq;          /* position in the log */
    const char *time;         /* append time, RFC 3339 */
    uint32_t    version;      /* schema version its data was validated against; 0: none */
    const char *data;         /* the data member: JSON text as the producer sent it */
    size_t      data_len;
    const char *json;         /* the whole event object as the server sent it */
    size_t      json_len;
    /* events from eb_pull() (NULL / 0 otherwise): */
    const char *delivery_id;  /* the handle for eb_ack / eb_nack / eb_extend */
    uint32_t    attempt;      /* 1 on the first delivery */
    const char *deadline;     /* ack before this (RFC 3339) or it is redelivered */
    /* dead letters from eb_dlq_list() (NULL / 0 otherwise): */
    const char *error;        /* the last failure's message */
    uint32_t    attempts;     /* deliveries made */
    const char *consumer;     /* the consumer of the last attempt */
    const char *failed_at;    /* RFC 3339: the last failure */
    /* added after 0.1.0: */
    uint64_t    key_version;  /* its version within its key (1, 2, ...); 0: no key */
    const char *first_failed_at; /* RFC 3339: the first failure */
    size_t      nerrors;
    const struct eb_dlq_error *const *errors; /* the last few failures, oldest first */
    const char *deliver_at;   /* a delayed event: its time (RFC 3339); NULL if not */
    uint64_t    published_seq;/* a delayed event as a group gets it: the seq its publish
                                 answered (its seq is where it was appended when due); 0 */
} eb_event;

/* One failed attempt of a dead letter (eb_event.errors). Owned by its list. */
typedef struct eb_dlq_error {
    uint32_t    attempt;  /* the delivery's attempt number */
    const char *at;       /* RFC 3339 */
    const char *consumer; /* "" if none */
    const char *error;
} eb_dlq_error;

/* A list of events; opaque, caller-owned, freed with eb_events_free(). */
typedef struct eb_events eb_events;
size_t          eb_events_count(const eb_events *l);
/* Event i (< count), or NULL. Owned by l. */
const eb_event *eb_events_at(const eb_events *l, size_t i);
/* The cursor of the next page (browse: next after_seq; DLQ: next "after"),
 * or NULL at the end. Owned by l. */
const char     *eb_events_next(const eb_events *l);
/* The answer the list was parsed from (JSON text). Owned by l. */
const char     *eb_events_json(const eb_events *l);
void            eb_events_free(eb_events *l);

/* Reads one value of an event's data by JSON Pointer (RFC 6901: "" is the
 * data itself, "/customer/email", "/items/0/sku"). A string is copied into
 * out (cap bytes, NUL-terminated; EB_ETOOBIG if it does not fit); a number
 * is returned as a double. EB_ENOTFOUND if nothing is there, EB_EINVAL if
 * the value has another type. Parses ev->data on each call; allocates
 * nothing that outlives it. */
int eb_data_string(const eb_event *ev, const char *pointer, char *out, size_t cap);
int eb_data_number(const eb_event *ev, const char *pointer, double *out);

/* One event by id (any retained event, client-chosen or generated id);
 * *out is a list of one. EB_ENOTFOUND if absent. */
int eb_events_get(eb_client *c, const char *id, eb_events **out);

/* Options of eb_events_get_opts (size first: docs/client.md). */
typedef struct eb_get_opts {
    size_t      size;   /* sizeof(eb_get_opts) */
    /* Only the event with the id from this source (CloudEvents ids are
     * unique per source); "": the one published without a source; NULL:
     * the newest with the id, from any source (as eb_events_get). */
    const char *source;
} eb_get_opts;
/* eb_events_get with options (o may be NULL: the defaults). The strings of
 * o are borrowed during the call; *out as eb_events_get. */
int eb_events_get_opts(eb_client *c, const char *id, const eb_get_opts *o, eb_events **out);

typedef struct eb_browse_opts {
    size_t      size;      /* sizeof(eb_browse_opts) */
    const char *type;      /* exact type; NULL: all */
    const char *since;     /* RFC 3339 or a duration back from now ("2h"); NULL: the start */
    const char *until;     /* same forms; NULL: no end */
    uint64_t    after_seq; /* only events after this seq; 0: from the first */
    uint32_t    limit;     /* 1..1000; 0: 100 */
} eb_browse_opts;
/* Reads the log, oldest first (GET /v1/events). opts may be NULL. */
int eb_events_browse(eb_client *c, const eb_browse_opts *opts, eb_events **out);

/* added after 0.1.0 */
typedef struct eb_stream_opts {
    size_t   size;         /* sizeof(eb_stream_opts) */
    uint64_t from_version; /* the first version to read; 0: the oldest retained */
    uint32_t limit;        /* 1..1000; 0: 100 */
} eb_stream_opts;
/* Reads one key's stream in version order (GET /v1/events?key=): the
 * events' key_version say where each stands; eb_events_next() gives the
 * from_version of the next page (an empty page is the end). The server
 * reads only the events returned. opts may be NULL. */
int eb_events_stream(eb_client *c, const char *key, const eb_stream_opts *opts, eb_events **out);

/* --- schema registry ------------------------------------------------------ */

typedef struct eb_schemas_result {
    size_t   size;              /* sizeof(eb_schemas_result), set by the caller */
    uint32_t version;           /* the version number the schema has */
    bool     existing;          /* identical to an existing version: nothing written */
    char     compatibility[16]; /* the type's mode: backward, forward, full, none */
} eb_schemas_result;

/* Registers `schema` (JSON Schema text) as the next version of `type`.
 * compat (NULL: keep the type's mode; "backward" for a new type) sets the
 * mode. A schema that breaks the mode is EB_ECONFLICT and the error's
 * details list every breaking change. res may be NULL. */
int eb_schemas_register(eb_client *c, const char *type, const char *schema, const char *compat,
                       eb_schemas_result *res);

/* One breaking change found by a compatibility check. */
typedef struct eb_schemas_change {
    const char *path;        /* JSON Pointer into the schema ("" is its root) */
    const char *message;
    bool        undecidable; /* could not be verified either way */
} eb_schemas_change;

/* The verdict of eb_schemas_check(). Caller-owned: eb_result_free(). */
typedef struct eb_schemas_verdict {
    bool                           compatible;
    bool                           existing;      /* identical to version `version` */
    uint32_t                       version;       /* the version it would get (or has) */
    const char                    *compatibility; /* the mode it was checked under */
    size_t                         nchanges;
    const eb_schemas_change *const *changes;       /* every breaking change */
} eb_schemas_verdict;

/* The same checks as eb_schemas_register, nothing written. *out gets the
 * verdict (an incompatible schema is still 0: see (*out)->compatible). */
int eb_schemas_check(eb_client *c, const char *type, const char *schema, const char *compat,
                     eb_schemas_verdict **out);

/* One registered version of a type's schema. */
typedef struct eb_schemas_version {
    uint32_t    version;
    const char *registered_at; /* RFC 3339 */
    const char *schema;        /* the schema, JSON text as the server sent it */
    size_t      schema_len;
} eb_schemas_version;

/* A type of the registry. */
typedef struct eb_schemas_type {
    const char              *type;
    const char              *compatibility; /* its mode; NULL when a given version was asked */
    size_t                   nversions;     /* its versions, oldest first (0 when a given */
    const uint32_t          *versions;      /*   version was asked) */
    const eb_schemas_version *version;       /* eb_schemas_get: the version asked for (the
                                               latest for 0); NULL in a list */
} eb_schemas_type;

/* Every type of the registry (GET /v1/schemas). Caller-owned: eb_result_free(). */
typedef struct eb_schemas_registry {
    size_t                         n;
    const eb_schemas_type *const   *types;
} eb_schemas_registry;
int eb_schemas_list(eb_client *c, eb_schemas_registry **out);
/* One type with its latest version (version 0) or one given version.
 * *out is caller-owned: eb_result_free(). EB_ENOTFOUND if absent. */
int eb_schemas_get(eb_client *c, const char *type, uint32_t version, eb_schemas_type **out);

/* --- consumer groups -------------------------------------------------------- */

/* A group's configuration. Zero / NULL fields are left to the server's
 * defaults (see docs/api.md). Pointers are only read during the call. */
typedef struct eb_groups_config {
    size_t             size;       /* sizeof(eb_groups_config) */
    const char *const *types;      /* event type patterns: "order.created", "*.created", "order.>" */
    size_t       ntypes;           /* >= 1 */
    const char  *start;            /* creation only: "latest" (default), "earliest", RFC 3339 */
    uint32_t     max_attempts;     /* deliveries before dead-lettering (server: 4) */
    uint32_t     backoff_initial_ms;
    double       backoff_multiplier;
    uint32_t     backoff_max_ms;
    bool         has_jitter;       /* send backoff_jitter (0 is a valid value) */
    double       backoff_jitter;   /* 0..1 */
    uint32_t     ack_timeout_ms;   /* lease of a pulled event (server: 30000) */
    const char  *ordering;         /* "none" (default) or "key" */
    uint32_t     max_in_flight;    /* leases outstanding across all consumers; 0: no cap */
    double       rate_limit;       /* deliveries per second (token bucket); 0: none */
    const char  *filter;           /* JSON text of a filter object (docs/api.md); NULL: none */
    bool         has_max_in_flight; /* send max_in_flight even when 0 (a patch removing the cap) */
    bool         has_rate_limit;    /* send rate_limit even when 0 (a patch removing the limit) */
    /* Push delivery (docs/api.md, "Push delivery"): with push_url the server
     * POSTs the group's events to it (webhooks, Standard Webhooks signed);
     * the group then refuses pulls. 0 / NULL members take the server's
     * defaults (a patch: keep their value). */
    const char        *push_url;        /* http:// or https:// */
    const char        *push_secret;     /* "whsec_<base64>"; NULL on an update keeps it */
    const char *const *push_headers;    /* extra request headers, "Name: value" */
    size_t             npush_headers;
    uint32_t           push_timeout_ms;   /* per POST (server: 10000) */
    uint32_t           push_max_in_flight; /* events being POSTed at once (server: 100) */
    uint32_t           push_batch;        /* events per POST (server: 1) */
    const char        *push_format;     /* "event" (default) or "cloudevents" */
    bool               push_remove;     /* patch: stop pushing (a pulled group again) */
} eb_groups_config;

/* A consumer of a group, as the server last saw it. */
typedef struct eb_groups_consumer {
    const char *name;
    const char *last_pull; /* RFC 3339 */
    uint64_t    in_flight; /* events leased to it */
} eb_groups_consumer;

/* A group as the server shows it. Which parts are filled depends on the
 * call: eb_groups_list and eb_stats give the state summary (name, paused,
 * lag, in_flight, retry_scheduled, dead_letters); eb_groups_get and eb_stats
 * everything; eb_groups_put the name and the configuration (has_config).
 * Caller-owned through the call's result: eb_result_free(). */
typedef struct eb_groups_info {
    const char *name;
    bool        paused;
    uint64_t    lag;             /* matching events not yet acked or dead-lettered */
    uint64_t    in_flight;       /* leased, not yet acked */
    uint64_t    retry_scheduled; /* failed, waiting for their retry */
    uint64_t    dead_letters;    /* in the DLQ */
    bool        has_detail;      /* the fields below up to consumers are set (but
                                    ready, set in lists too) */
    uint64_t    cursor;          /* next log seq the group examines */
    uint64_t    head;            /* the log's next seq */
    uint64_t    ready;           /* waiting for a pull, replays' backlogs included:
                                    lag = ready + in_flight + retry_scheduled
                                    + blocked_by_key */
    uint64_t    blocked_by_key;  /* waiting behind an earlier event of their key */
    uint64_t    oldest_unacked_age_ms;
    struct {
        uint64_t delivered, acked, nacked, expired, redelivered, dead_lettered, redriven,
                 replayed, purged, retention_skipped;
    } counters;
    size_t                          nconsumers;
    const eb_groups_consumer *const *consumers;
    bool        has_config;      /* the configuration below is set */
    size_t             ntypes;
    const char *const *types;
    const char *start;           /* NULL when the server did not say */
    uint32_t    max_attempts;
    uint32_t    ack_timeout_ms;
    uint32_t    backoff_initial_ms;
    double      backoff_multiplier;
    uint32_t    backoff_max_ms;
    double      backoff_jitter;
    const char *ordering;        /* "none" or "key" */
    uint32_t    max_in_flight;   /* configuration: 0 = no cap */
    double      rate_limit;      /* configuration: deliveries per second, 0 = none */
    uint64_t    throttled;       /* detail: pulls cut short by the two above */
    const char *filter;          /* configuration: the filter's JSON text, NULL if none */
    uint64_t    delayed;         /* delayed events of its types not due yet (not in lag) */
    /* Push delivery: configuration (has_push) and state (push_circuit set) */
    bool        has_push;        /* the group is pushed to push_url */
    const char *push_url;
    const char *push_secret;     /* masked ("whsec_\u2026abcd"): the server never shows it */
    uint32_t    push_timeout_ms, push_max_in_flight, push_batch;
    const char *push_format;     /* "event" or "cloudevents" */
    const char *push_circuit;    /* its endpoint's circuit: "closed", "open", "half_open";
                                    NULL when the answer had no push state */
    uint32_t    push_failures;   /* consecutive failed POSTs to the endpoint */
    uint64_t    push_in_flight;  /* events being POSTed */
    bool        lag_counting;    /* the lag of a group with a filter is still being
                                    counted by the server (off the request path):
                                    lag and ready are a lower bound until false */
} eb_groups_info;

/* Every group (GET /v1/groups). Caller-owned: eb_result_free(). */
typedef struct eb_groups_all {
    size_t                      n;
    const eb_groups_info *const *groups;
} eb_groups_all;

/* Creates the group or replaces its whole configuration (PUT
 * /v1/groups/{group}): members not set take the server's defaults, also
 * for an existing group (to change some members only: eb_groups_patch).
 * *created (may be NULL) tells which; *out (may be NULL; eb_result_free)
 * the configuration now in force. */
int eb_groups_put(eb_client *c, const char *group, const eb_groups_config *cfg, bool *created,
                  eb_groups_info **out);
/* Changes only the members of the group's configuration that `changes`
 * sets (PATCH /v1/groups/{group}, a JSON merge patch made of them): a
 * member left 0 / NULL (has_jitter false, ntypes 0) keeps its value. The
 * group must exist (EB_ENOTFOUND); start is refused (creation only). The
 * server applies the change atomically (no read-modify-write race). *out
 * (may be NULL; eb_result_free) is the configuration now in force;
 * `changes` is borrowed for the call. */
int eb_groups_patch(eb_client *c, const char *group, const eb_groups_config *changes,
                    eb_groups_info **out);
/* Deletes the group, its pending deliveries and its dead letters. */
int eb_groups_delete(eb_client *c, const char *group);
/* Stops / restarts deliveries to the group (events keep accumulating). */
int eb_groups_pause(eb_client *c, const char *group);
int eb_groups_resume(eb_client *c, const char *group);
/* GET /v1/groups and GET /v1/groups/{group}, parsed. *out is caller-owned
 * (eb_result_free); out may be NULL for eb_groups_get (an existence check). */
int eb_groups_list(eb_client *c, eb_groups_all **out);
int eb_groups_get(eb_client *c, const char *group, eb_groups_info **out);

/* One sample of a group's history: its state when taken, and what its
 * counters moved by during the interval that ends then. */
typedef struct eb_groups_sample {
    const char *ts;             /* RFC 3339 */
    uint64_t    lag;
    uint64_t    delivered, acked, nacked, dead_lettered; /* during the interval */
    uint64_t    dead_letters;   /* DLQ depth */
    uint64_t    oldest_unacked_ms;
} eb_groups_sample;
/* A group's recent samples, oldest first (the server keeps 720, one every
 * interval_ms: an hour at its default 5 s; memory only). Caller-owned:
 * eb_result_free(). */
typedef struct eb_groups_samples {
    uint32_t                       interval_ms;
    size_t                         n;
    const eb_groups_sample *const *samples;
} eb_groups_samples;
/* GET /v1/groups/{group}/history, parsed into *out. */
int eb_groups_history(eb_client *c, const char *group, eb_groups_samples **out);

/* --- delivery --------------------------------------------------------------- */

/* Leases up to max (1..1000; 0: 100) events of the group to `consumer`,
 * waiting up to wait_ms (0..60000) for at least one. *out may hold zero
 * events. Each must be acked, nacked or extended before its deadline. */
int eb_pull(eb_client *c, const char *group, const char *consumer, uint32_t max,
            uint32_t wait_ms, eb_events **out);

/* Outcome of ack / nack / extend: ids the server settled, and ids it did not
 * know (lease expired and redelivered, or already settled). */
typedef struct eb_settle_result {
    size_t   size; /* sizeof(eb_settle_result), set by the caller */
    uint32_t done;
    uint32_t unknown;
} eb_settle_result;

/* ids are delivery ids (eb_event.delivery_id). res may be NULL. */
int eb_ack(eb_client *c, const char *group, const char *const *ids, size_t n,
           eb_settle_result *res);
/* A failed attempt: redelivered after the group's backoff (or delay_ms when
 * >= 0), dead-lettered once max_attempts is reached. error (may be NULL) is
 * kept with the event. */
int eb_nack(eb_client *c, const char *group, const char *const *ids, size_t n,
            const char *error, int64_t delay_ms, eb_settle_result *res);
/* A non-retryable failure: the events go straight to the group's dead
 * letters with the error, whatever attempts remain (a validation error that
 * no retry can fix). */
int eb_nack_dead_letter(eb_client *c, const char *group, const char *const *ids, size_t n,
                        const char *error, eb_settle_result *res);
/* Pushes the deadlines ms further (0: the group's ack timeout). */
int eb_extend(eb_client *c, const char *group, const char *const *ids, size_t n, uint32_t ms,
              eb_settle_result *res);

/* --- dead letters, replay, stats ---------------------------------------- */

/* One page of the group's dead letters (limit 0: 100; after NULL: the
 * first page; eb_events_next() gives the next page's cursor). */
int eb_dlq_list(eb_client *c, const char *group, uint32_t limit, const char *after,
                eb_events **out);
/* Puts dead letters back for delivery (attempts start over): the events
 * whose ids are given, or all when n == 0. *redriven may be NULL. */
int eb_dlq_redrive(eb_client *c, const char *group, const char *const *event_ids, size_t n,
                   uint64_t *redriven);
/* Drops one dead letter (event_id) or all (NULL). *purged may be NULL. */
int eb_dlq_purge(eb_client *c, const char *group, const char *event_id, uint64_t *purged);

typedef struct eb_replay_opts {
    size_t             size;      /* sizeof(eb_replay_opts) */
    const char        *since;     /* "2h" or RFC 3339; NULL: use since_seq */
    uint64_t           since_seq; /* used when since is NULL */
    const char        *until;     /* same forms; NULL and until_seq 0: up to now */
    uint64_t           until_seq;
    const char *const *types;     /* only these types; NULL: the group's */
    size_t             ntypes;
    bool               dry_run;   /* only count what would be requeued (changes nothing) */
} eb_replay_opts;
/* Delivers a past range of the log to the group again. *requeued gets the
 * events queued (with dry_run: that would be), *expired those already
 * removed by retention (either may be NULL). */
int eb_replay(eb_client *c, const char *group, const eb_replay_opts *opts, uint64_t *requeued,
              uint64_t *expired);

/* The figures of the bus (GET /v1/stats). Caller-owned: eb_result_free(). */
typedef struct eb_stats_info {
    uint64_t published;      /* events published since the log began */
    uint64_t first_seq;      /* the oldest seq the log holds */
    uint64_t head_seq;       /* the next seq the log will assign */
    uint64_t bytes;          /* the log's size on disk */
    uint64_t segments;
    double   publish_p50_ms; /* bucket upper bounds of the publish histogram */
    double   publish_p99_ms;
    size_t                      ngroups;
    const eb_groups_info *const *groups; /* every group, in full (has_detail) */
} eb_stats_info;
int eb_stats(eb_client *c, eb_stats_info **out);

/* --- the consumer loop ------------------------------------------------------ */

/* A handler's return value for a non-retryable failure: the event is
 * dead-lettered at once (eb_nack_dead_letter) with the message in err. */
#define EB_HANDLER_DEAD_LETTER (-31000)

/* Handles one event. Return 0 to ack it; EB_HANDLER_DEAD_LETTER to send it
 * straight to the dead letters; anything else nacks it (retried after the
 * group's backoff) with the message written into err (err_cap bytes; if
 * left empty, eb_strerror of the return value). ev is valid during the call only. The handler may use the
 * consuming client (to publish, say): the loop does not use it meanwhile. */
typedef int (*eb_handler)(const eb_event *ev, void *arg, char *err, size_t err_cap);

typedef struct eb_consume_stats {
    size_t   size;      /* sizeof(eb_consume_stats), set by the caller */
    uint64_t handled;   /* handler calls */
    uint64_t acked;     /* acks the server confirmed */
    uint64_t nacked;    /* handler failures nacked */
    uint64_t released;  /* leased but not handled when the loop stopped: nacked
                           with delay 0 so another consumer gets them at once */
    uint64_t extended;  /* deadline extensions made for slow handlers */
    uint64_t lost;      /* acks/nacks the server did not know (lease had expired:
                           the event was or will be delivered again) */
    uint64_t dead_lettered; /* handler returns of EB_HANDLER_DEAD_LETTER settled */
} eb_consume_stats;

typedef struct eb_consume_opts {
    size_t       size;            /* sizeof(eb_consume_opts) */
    void        *arg;             /* passed to the handler */
    uint32_t     max;             /* events per pull; 0: 10 */
    uint32_t     wait_ms;         /* long-poll wait; 0: 20000 */
    uint32_t     extend_every_ms; /* while a pulled batch is not settled, extend its
                                     deadlines this often; 0: a third of the group's
                                     ack timeout */
    bool         no_extend;       /* never extend */
    const volatile sig_atomic_t *stop; /* raise (e.g. from a signal handler) to stop:
                                     the running handler finishes, its batch is
                                     settled, waits are cut short (<= 100 ms) */
    uint64_t     max_events;      /* stop after this many handler calls; 0: no limit */
    uint32_t     idle_ms;         /* stop once no event came for this long; 0: never */
    uint32_t     retry_max_ms;    /* keep retrying an unreachable / stopping server
                                     this long (backoff 100 ms .. 5 s); 0: forever */
    eb_consume_stats *stats;      /* optional (stats->size set), filled as the loop runs */
} eb_consume_opts;

/* Runs the consumer loop on `group` as `consumer`: long-polls, calls the
 * handler per event in order, acks the successes (one request per batch),
 * nacks each failure with the handler's message, and extends the deadlines
 * of a batch still being handled from a helper thread (its own connection)
 * so slow handlers keep their lease. Returns 0 when stopped by the flag,
 * max_events or idle_ms; an error when the group is gone or a request was
 * refused (eb_client_error tells why), or the server stayed unreachable
 * past retry_max_ms. opts may be NULL. */
int eb_consume(eb_client *c, const char *group, const char *consumer, eb_handler handler,
               const eb_consume_opts *opts);

#ifdef __cplusplus
}
#endif
#endif /* EVENTBUS_H */
