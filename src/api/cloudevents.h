/* cloudevents.h - CloudEvents 1.0 over HTTP, mapped onto our envelope.
 *
 * Structured mode (Content-Type: application/cloudevents+json) and batch
 * mode (application/cloudevents-batch+json): the body is a CloudEvent JSON
 * object (or an array of them). Binary mode: attributes in ce-* headers,
 * the body is the data (JSON content types only).
 *
 * Mapping: id, source, type, subject, datacontenttype -> same fields; data
 * -> data; extension attributes partitionkey -> key, correlationid ->
 * correlationId, causationid -> causationId, schemaversion -> version; every
 * other attribute (time, dataschema, extensions) is kept under
 * "extensions", where it keeps its JSON type; names must be [a-z0-9]{1,20},
 * values strings, 32-bit integers or booleans (null: absent), time RFC 3339.
 * specversion must be "1.0"; id, source and type are required as the spec
 * says. data_base64 is refused (JSON data only). Out: ce_out.c. */
#ifndef EB_API_CLOUDEVENTS_H
#define EB_API_CLOUDEVENTS_H

#include "bus/ce_write.h"
#include "bus/event.h"
#include "http/http.h"

typedef enum eb_ce_mode {
    EB_CE_NONE = 0,   /* native envelope */
    EB_CE_STRUCTURED, /* application/cloudevents+json */
    EB_CE_BATCH,      /* application/cloudevents-batch+json */
    EB_CE_BINARY      /* ce-specversion header present */
} eb_ce_mode;

eb_ce_mode eb_ce_detect(const eb_http_req *req);

/* Scratch memory for the synthetic "extensions" objects (and binary-mode
 * strings) of one request: chunks that never move, reused across requests.
 * Reset it before mapping a request's events; what the mapped events point
 * to stays valid until the next reset. */
typedef struct eb_ce_chunk eb_ce_chunk;
typedef struct eb_ce_scratch {
    eb_ce_chunk *head; /* chunks in use, newest first */
    eb_ce_chunk *free; /* chunks kept for reuse */
} eb_ce_scratch;

void eb_ce_scratch_reset(eb_ce_scratch *s);
void eb_ce_scratch_free(eb_ce_scratch *s);

/* Structured: maps the CloudEvent object obj (parsed from body) into *ev. */
int eb_ce_from_json(eb_ce_scratch *sc, const eb_json *obj, const char *body,
                    eb_event_in *ev, eb_field_error *err);
/* Binary: maps headers + body into *ev, parsing the body into doc. */
int eb_ce_from_binary(eb_ce_scratch *sc, const eb_http_req *req, eb_json_doc *doc,
                      eb_event_in *ev, eb_field_error *err);


/* --- out (ce_out.c) -------------------------------------------------------- */

#define EB_CE_JSON "application/cloudevents+json"
#define EB_CE_BATCH_JSON "application/cloudevents-batch+json"

/* Whether the request's Accept header lists mtype. */
bool eb_ce_accepts(const eb_http_req *req, const char *mtype);

/* eb_ce_write, eb_ce_delivery, eb_ce_name_valid: bus/ce_write.h */

#endif
