/* group_routes.h - what the consumer-group route files share: groups.c
 * (admin, and these helpers), deliveries.c (pull, ack/nack/extend), dlq.c
 * (dead letters, replay). Not for the rest of src/api. */
#ifndef EB_API_GROUP_ROUTES_H
#define EB_API_GROUP_ROUTES_H

#include "api/api.h"

/* An answer waiting for durability: the cb arg of a bus change. */
typedef struct deferred {
    eb_http_req *req;
    int          status; /* HTTP status on success */
    size_t       len;
    char        *body;   /* small, or allocated */
    char         small[64];
} deferred;

/* groups.c: the deferred answer of a bus change. */
/* The cb arg for a change answered on req (freed by the callback). */
deferred *eb__api_defer(eb_http_req *req);
void      eb__api_deferred_free(deferred *d);
/* The bus change callback: answers d's status and body, or the failure. */
void      eb__api_on_durable_answer(void *arg, int status);
/* Answers the outcome of a bus change call that returned rc < 0. */
void      eb__api_change_failed(eb_http_req *req, int rc);
/* A bus change called with d returned rc, and api->out holds its answer:
 * sends it now (rc 1: durable already), keeps it in d for the bus's
 * callback (rc 0), or answers the error (rc < 0). */
void      eb__api_change_made(eb_api *api, eb_http_req *req, deferred *d, int rc, int status);
/* Answers {"<key>": n} (after a change call returned rc on d). */
void      eb__api_answer_count(eb_api *api, eb_http_req *req, deferred *d, int rc,
                               const char *key, size_t n);

/* groups.c: body checks (each answers 400 naming the field and returns
 * false/NULL on a fault). */
/* Every member of obj is one of `allowed` (NULL-terminated). */
bool eb__api_only_fields(eb_http_req *req, const eb_json *obj, const char *const *allowed);
/* An optional integer member in [lo, hi]; *out keeps its default if absent. */
bool eb__api_int_field(eb_http_req *req, const eb_json *obj, const char *key, int64_t lo,
                       int64_t hi, int64_t *out);
/* The body as an object (an empty body as {} when empty_ok). */
const eb_json *eb__api_body_object(eb_api *api, eb_http_req *req, bool empty_ok);
/* deliveries.c: the "ids" member, a non-empty array of (up to 10,000) strings. */
const eb_json *eb__api_ids_field(eb_http_req *req, const eb_json *b, const char *what);

#endif
