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

typedef struct eb_api_opts {
    size_t   max_batch;        /* events per batch request (default 1000) */
    uint32_t max_depth;        /* JSON nesting bound (default 128) */
    /* /metrics: per-group series for this many groups, those with the
     * largest lag (the others are summed in eventbus_groups_*); 0: 1000,
     * EB_API_METRICS_NO_GROUPS: none. */
    uint32_t metrics_groups;
} eb_api_opts;
#define EB_API_METRICS_NO_GROUPS UINT32_MAX

/* Creates the API over bus (borrowed; must outlive the api). */
int  eb_api_new(eb_bus *bus, const eb_api_opts *o, eb_api **out);
void eb_api_free(eb_api *api);
/* Marks the API as stopping: new requests answer 503. */
void eb_api_shutdown(eb_api *api);
/* The entry point for every request (the eb_http_handler's body). */
void eb_api_handle(eb_api *api, eb_http_req *req);

/* --- shared by the route files (api internal) ---------------------------- */

/* Per-request path parameters captured by the router ({type}, {n}, ...). */
#define EB_API_MAX_PARAMS 4
typedef struct eb_api_params {
    eb_str v[EB_API_MAX_PARAMS]; /* percent-decoded values, in path order */
    size_t n;
} eb_api_params;

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
};

void eb__api_error(eb_http_req *req, int status, const char *code, const char *message,
                   const char *details_json);
/* Answers a write the stores could not make: 507 storage_full (with
 * Retry-After) for EB_ENOSPC, 503 shutting_down for EB_ECLOSED, 500
 * internal otherwise. */
void eb__api_write_failed(eb_http_req *req, int rc);
/* Answers out (JSON) with status. */
void eb__api_reply(eb_api *api, eb_http_req *req, int status);
/* Parses the request body as JSON into api->doc; answers 400/413/415 and
 * returns NULL on failure. */
const eb_json *eb__api_body(eb_api *api, eb_http_req *req, bool dup_keys_ok);
/* Value of query parameter name (raw, not decoded), or .ptr NULL. */
eb_str eb__api_query(const eb_http_req *req, const char *name);
/* Wall-clock time in µs since the epoch. */
uint64_t eb__api_now_us(void);
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
