/* api.h - the HTTP API of eventbusd: routes map requests onto bus calls.
 *
 * JSON in, bus calls, JSON out. Every handler runs on the loop thread and
 * answers exactly once, possibly later (a publish answers after fsync).
 * Error answers share one shape: {"error":{"code","message","details"}}. */
#ifndef EB_API_H
#define EB_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api/cloudevents.h"
#include "bus/bus.h"
#include "http/http.h"
#include "json/json.h"

typedef struct eb_api eb_api;

typedef enum eb_auth_mode { EB_AUTH_NONE = 0, EB_AUTH_TOKEN } eb_auth_mode;

typedef struct eb_api_opts {
    size_t       max_batch;       /* events per batch request (default 1000) */
    uint32_t     max_depth;       /* JSON nesting bound (default 128) */
    eb_auth_mode auth;            /* none: every route open */
    bool         metrics_public;  /* /metrics without a token */
    uint32_t     auth_fail_limit; /* failed authentications before backoff (0: never) */
    /* /metrics: per-group series for this many groups, those with the
     * largest lag (the others are summed in eventbus_groups_*); 0: 1000,
     * EB_API_METRICS_NO_GROUPS: none. */
    uint32_t     metrics_groups;
} eb_api_opts;
#define EB_API_METRICS_NO_GROUPS UINT32_MAX

/* Creates the API over bus (borrowed; must outlive the api). */
int  eb_api_new(eb_bus *bus, const eb_api_opts *o, eb_api **out);
void eb_api_free(eb_api *api);
/* The eb_http_answer_fn to give the HTTP server (ud: the api). */
void eb_api_on_answer(void *ud, const eb_http_req *req, int status, const char *body,
                      size_t len);
/* Marks the API as stopping: new requests answer 503. */
void eb_api_shutdown(eb_api *api);
/* The entry point for every request (the eb_http_handler's body). */
void eb_api_handle(eb_api *api, eb_http_req *req);

/* Creates token `name` with the given scopes (checked: EB_EINVAL if one is
 * not valid) and no expiry, replacing one of that name; the secret
 * ("ebt_..." NUL-terminated) is written into secret at once, and cb fires
 * when the token is durable (the usual 0/error/cb rule of bus commands). */
#define EB_API_SECRET_LEN 47 /* "ebt_" + 43 base64url characters */
int eb_api_token_create(eb_api *api, const char *name, const char *const *scopes, size_t n,
                        char secret[EB_API_SECRET_LEN + 1], eb_bus_done_cb cb, void *arg);

/* --- shared by the route files (api internal) ---------------------------- */

/* What a route needs (the route table in api.c; auth.c checks it). A row
 * that names no scope gets EB_SCOPE_UNSET, which is checked as admin: a
 * route added without a thought for its scope fails closed, not open. */
typedef enum eb_scope {
    EB_SCOPE_UNSET = 0, EB_SCOPE_OPEN, EB_SCOPE_PUBLISH, EB_SCOPE_CONSUME, EB_SCOPE_READ,
    EB_SCOPE_SCHEMAS_WRITE, EB_SCOPE_GROUPS_WRITE, EB_SCOPE_METRICS, EB_SCOPE_ADMIN,
    EB_SCOPE_TOKEN /* any valid token, whatever its scopes (GET /v1/tokens/self) */
} eb_scope;

#define EB_API_SECRET_MAX 512 /* longest secret the header parser takes */
#define EB_AUTH_SLOTS 4096    /* addresses the backoff remembers */

/* One address's recent failures (direct-mapped table). */
typedef struct eb_auth_slot {
    uint8_t  addr[16]; /* IPv6, or IPv4-mapped */
    bool     used;
    uint32_t fails;
    uint64_t until_us; /* refused until then */
} eb_auth_slot;

/* An audited request (writes of groups, schemas, tokens): logged when answered. */
typedef struct eb_api_audit {
    char who[EB_TOKEN_NAME_MAX + 2];
    char route[220];
} eb_api_audit;

/* Per-request path parameters captured by the router ({type}, {n}, ...). */
#define EB_API_MAX_PARAMS 4
typedef struct eb_api_params {
    eb_str v[EB_API_MAX_PARAMS]; /* percent-decoded values, in path order */
    size_t n;
} eb_api_params;

/* Answers counted by route (0: none matched) and status class (1xx..5xx). */
#define EB_API_MAX_ROUTES 40
struct eb_api {
    eb_bus       *bus;      /* borrowed */
    eb_api_opts   opts;
    eb_json_doc  *doc;      /* scratch: the request body */
    eb_buf        out;      /* scratch: the answer */
    eb_buf        pull_out; /* scratch: a pull's answer (may be made while out is in use) */
    eb_event_in  *evs;      /* scratch: envelopes of one publish */
    size_t        evs_cap;
    eb_pub_errors perrs;    /* scratch: publish faults */
    eb_ce_scratch ce;       /* scratch: CloudEvents extension objects */
    eb_json_doc  *ce_doc;   /* scratch: a stored event written as a CloudEvent */
    bool          stopping; /* shutting down: answer 503 */
    const eb_token *who;    /* the current request's token (auth token), or NULL */
    struct {
        eb_auth_slot slots[EB_AUTH_SLOTS];
        uint64_t     failures; /* 401s: unknown, malformed or expired token */
        uint64_t     backoffs; /* 429s while an address backs off */
    } auth;
    uint64_t      answers[EB_API_MAX_ROUTES + 1][5]; /* access.c */
};

/* auth.c */
/* Parses an Authorization value "Bearer <token68>" (any case, spaces
 * around); 0 with *secret viewing into v, or EB_EINVAL. */
int  eb__api_bearer(const char *v, size_t n, eb_str *secret);
/* True if s is a scope a token may carry. */
bool eb__api_scope_valid(const char *s, size_t n);
const char *eb__api_scope_name(eb_scope s);
bool eb__api_token_has(const eb_token *t, eb_scope want, eb_str subject);
/* Checks the request against the route's scope (subject: the group of a
 * consume route). True: go on (api->who is the token, or NULL under auth
 * none); false: answered (401, 403 or 429). Publish routes check only the
 * token; their handler calls eb__api_may_publish with the types. */
bool eb__api_authorize(eb_api *api, eb_http_req *req, eb_scope want, eb_str subject);
bool eb__api_may_publish(eb_api *api, eb_http_req *req, const eb_str *types, size_t n);
void eb__api_forbidden(eb_http_req *req, eb_scope want, eb_str subject);
void eb__api_hash_secret(const char *s, size_t n, uint8_t out[EB_TOKEN_HASH_LEN]);
int  eb__api_new_secret(char out[EB_API_SECRET_LEN + 1]);
/* Marks req as audited; eb__api_respond logs it. */
void eb__api_audit_begin(eb_api *api, eb_http_req *req, const char *method);
/* Every answer of the API goes through here (the audit log). */
void eb__api_respond(eb_http_req *req, int status, const char *content_type, const char *body,
                     size_t len);
/* tokens.c: /v1/tokens */
void eb__api_token_post(eb_api *api, eb_http_req *req, const eb_api_params *p);
void eb__api_token_list(eb_api *api, eb_http_req *req, const eb_api_params *p);
void eb__api_token_delete(eb_api *api, eb_http_req *req, const eb_api_params *p);
void eb__api_token_self(eb_api *api, eb_http_req *req, const eb_api_params *p);

/* access.c: the answer hook (count by route and class; the access log and
 * every 4xx/5xx cause at debug); the /metrics family of those counts. */
void eb__api_prom_requests(const eb_api *api, eb_buf *o);
/* "GET", "POST", ... ("OTHER") of an EB_HTTP_* method. */
const char *eb__api_method_name(int m);
/* The route of a tag (1-based; api.c), or NULL. */
const char *eb__api_route_name(unsigned tag, const char **method);

void eb__api_error(eb_http_req *req, int status, const char *code, const char *message,
                   const char *details_json);
/* Answers a write the stores could not make: 507 storage_full (with
 * Retry-After) for EB_ENOSPC, 503 storage_unavailable (Retry-After) for
 * EB_ECONNECT (the database is unreachable), 503 shutting_down for
 * EB_ECLOSED, 500 internal otherwise. */
void eb__api_write_failed(eb_http_req *req, int rc);
/* Answers a read the stores could not make: 503 storage_unavailable
 * (Retry-After) for EB_ECONNECT, 500 internal otherwise. */
void eb__api_read_failed(eb_http_req *req, int rc);
/* Answers out (JSON) with status. */
void eb__api_reply(eb_api *api, eb_http_req *req, int status);
/* Parses the request body as JSON into api->doc; answers 400/413/415 and
 * returns NULL on failure. */
const eb_json *eb__api_body(eb_api *api, eb_http_req *req, bool dup_keys_ok);
/* Value of query parameter name, decoded as forms encode it (percent
 * escapes, '+' a space) into buf (cap bytes, NUL-terminated), or .ptr NULL
 * if absent. A bad escape, an encoded NUL or a value over cap answers 400
 * naming the parameter as "?name" and sets *bad. */
eb_str eb__api_query(eb_http_req *req, const char *name, char *buf, size_t cap, bool *bad);
/* Whether the query has parameter name (its value unread). */
bool eb__api_query_has(const eb_http_req *req, const char *name);
/* Wall-clock time in µs since the epoch. */
uint64_t eb__api_now_us(void);
/* metrics_proc.c: /metrics families by type, build info, storage state;
 * the process_* metrics from /proc. */
void eb__api_prom_events(eb_bus *bus, const eb_bus_stats *st, eb_buf *o);
void eb__api_prom_process(eb_buf *o);
/* The # HELP and # TYPE lines of a metric family (monitor.c). */
void eb__api_prom_head(eb_buf *o, const char *name, const char *type, const char *help);
/* push_view.c: a pushed group's "push" member (nothing for a pulled group)
 * and the eventbus_push_* families of /metrics. */
void eb__api_write_push(eb_bus *bus, eb_jw *w, const eb_group_info *in, bool detail);
/* A pushed group's circuit ("closed", "open", "half_open", static), or NULL
 * for a pulled group (or no push state yet). */
const char *eb__api_push_circuit(eb_bus *bus, const eb_group_info *in);
void eb__api_prom_push(eb_bus *bus, eb_buf *o);
/* Answers 400 invalid_request naming field. */
void eb__api_bad_field(eb_http_req *req, const char *field, const char *message);

void eb__api_publish(eb_api *api, eb_http_req *req, const eb_api_params *p);
void eb__api_publish_batch(eb_api *api, eb_http_req *req, const eb_api_params *p);
void eb__api_browse(eb_api *api, eb_http_req *req, const eb_api_params *p);
void eb__api_get_event(eb_api *api, eb_http_req *req, const eb_api_params *p);
void eb__api_schema_put(eb_api *api, eb_http_req *req, const eb_api_params *p);
void eb__api_schema_check(eb_api *api, eb_http_req *req, const eb_api_params *p);
void eb__api_schema_list(eb_api *api, eb_http_req *req, const eb_api_params *p);
void eb__api_schema_get(eb_api *api, eb_http_req *req, const eb_api_params *p);
void eb__api_schema_version(eb_api *api, eb_http_req *req, const eb_api_params *p);
void eb__api_group_put(eb_api *api, eb_http_req *req, const eb_api_params *p);
void eb__api_group_patch(eb_api *api, eb_http_req *req, const eb_api_params *p);
void eb__api_group_list(eb_api *api, eb_http_req *req, const eb_api_params *p);
void eb__api_group_get(eb_api *api, eb_http_req *req, const eb_api_params *p);
void eb__api_group_delete(eb_api *api, eb_http_req *req, const eb_api_params *p);
void eb__api_group_pause(eb_api *api, eb_http_req *req, const eb_api_params *p);
void eb__api_group_resume(eb_api *api, eb_http_req *req, const eb_api_params *p);
void eb__api_group_pull(eb_api *api, eb_http_req *req, const eb_api_params *p);
void eb__api_group_ack(eb_api *api, eb_http_req *req, const eb_api_params *p);
void eb__api_group_nack(eb_api *api, eb_http_req *req, const eb_api_params *p);
void eb__api_group_extend(eb_api *api, eb_http_req *req, const eb_api_params *p);
void eb__api_group_replay(eb_api *api, eb_http_req *req, const eb_api_params *p);
void eb__api_dlq_list(eb_api *api, eb_http_req *req, const eb_api_params *p);
void eb__api_dlq_redrive(eb_api *api, eb_http_req *req, const eb_api_params *p);
void eb__api_dlq_purge(eb_api *api, eb_http_req *req, const eb_api_params *p);
/* Whether p->v[0] names a group; if not, answers 404 and returns false. */
bool eb__api_find_group(eb_api *api, eb_http_req *req, const eb_api_params *p);
/* Starts an answer in api->out: w writes into it (eb__api_reply sends it). */
void eb__api_begin(eb_api *api, eb_jw *w);
/* Writes members k: v (unsigned integers) into an open object. */
typedef struct eb_api_kv {
    const char *k;
    uint64_t    v;
} eb_api_kv;
void eb__api_write_uints(eb_jw *w, const eb_api_kv *kv, size_t n);
#define EB_API_UINTS(w, ...)                                                              \
    eb__api_write_uints(w, (const eb_api_kv[]){__VA_ARGS__},                              \
                        sizeof((const eb_api_kv[]){__VA_ARGS__}) / sizeof(eb_api_kv))
/* Query parameter `name` as an integer in [lo, hi] into *out (left as is
 * when absent); false after answering 400 naming "?name". */
bool eb__api_query_u64(eb_http_req *req, const char *name, uint64_t lo, uint64_t hi,
                       uint64_t *out);
void eb__api_group_history(eb_api *api, eb_http_req *req, const eb_api_params *p);
void eb__api_overview(eb_api *api, eb_http_req *req, const eb_api_params *p);
void eb__api_ui(eb_api *api, eb_http_req *req, const eb_api_params *p);
/* monitor.c: group views into api->out, and the monitoring routes. */
void eb__api_render_groups(eb_api *api);
void eb__api_render_group(eb_api *api, const eb_group_info *in);
/* Appends v escaped as a Prometheus label value (backslash, double quote
 * and newline escaped). */
void eb__api_prom_label(eb_buf *o, const char *v);
void eb__api_stats(eb_api *api, eb_http_req *req, const eb_api_params *p);
void eb__api_metrics(eb_api *api, eb_http_req *req, const eb_api_params *p);

#endif
