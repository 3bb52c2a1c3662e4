/* event.h - the event envelope: what a producer sends, how it is checked,
 * and how it is stored in the log and written back out.
 *
 * A producer's envelope (native JSON or CloudEvents, mapped by src/api) is
 * parsed into an eb_event_in. eb_event_check() enforces the envelope rules
 * (type name syntax, id and key bounds); eb_event_encode() turns it into the
 * log record payload: a fixed binary prefix (so consumer filters never parse
 * JSON) followed by the event as compact JSON without seq and time, which
 * the log's record header carries. On the way out, eb_event_write() splices
 * seq and time in front of the stored JSON: no re-serialization.
 *
 * Stored payload, format 2 (little-endian; format 1 is format 2 without
 * bytes 16..23: a 16-byte header and key_version 0, still read back):
 *   off size field
 *   0   1    format (1)
 *   1   1    type_len   (1..128)
 *   2   1    id_len     (1..128)
 *   3   1    flags      (EB_EVENT_F_*; bit 0: id was generated)
 *   4   2    key_len    (0..1024)
 *   6   2    reserved (0)
 *   8   4    schema_version the data was validated against (0 = none)
 *   12  4    json_len
 *   16  8    key_version: the event's version within its key (1, 2, ...;
 *            0 = no key)
 *   24  ...  type, id, key bytes, then json_len bytes of JSON:
 *
 * Format 3 (delayed events: publish with deliver_at or delay) is format 2
 * with 16 more header bytes before the strings (a 40-byte header):
 *   24  8    deliver_at, µs since the epoch
 *   32  8    origin: 0 in the record the publish wrote (record type
 *            EB_REC_DELAYED, which groups skip); in the copy appended when
 *            it falls due (record type EB_REC_EVENT, what groups deliver),
 *            the seq of that record
 *   40  ...  type, id, key, JSON as in format 2
 *            {"id":..,"type":..,"source":..,"version":..,"key":..,
 *             "correlationId":..,"causationId":..,"subject":..,
 *             "datacontenttype":..,"extensions":{..},"data":..}
 */
#ifndef EB_BUS_EVENT_H
#define EB_BUS_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "json/json.h"
#include "util/buf.h"

#define EB_EVENT_FORMAT 2
#define EB_EVENT_FORMAT_V1 1     /* read back: 16-byte header, no key_version */
#define EB_EVENT_HDR_V1_SIZE 16
#define EB_REC_EVENT 1 /* log record type of an event in the events log */
#define EB_REC_DELAYED 2 /* a delayed event until its time (groups skip it) */
#define EB_EVENT_FORMAT_DELAYED 3 /* format 2 + deliver_at + origin */
#define EB_EVENT_HDR_V3_SIZE 40
#define EB_EVENT_F_GENERATED_ID 0x01 /* stored flags: the id was generated */
#define EB_EVENT_HDR_SIZE 24
#define EB_EVENT_MAX_TYPE 128
#define EB_EVENT_MAX_ID 128
#define EB_EVENT_MAX_KEY 1024
#define EB_EVENT_MAX_ATTR 1024 /* source, correlationId, subject, ... */
#define EB_EVENT_ID_LEN 26     /* generated ids: ULID, Crockford base32 */

/* A string field of an envelope: points into a parsed document or a
 * request; not owned. ptr == NULL means absent. */
typedef struct eb_str {
    const char *ptr;
    size_t      len;
} eb_str;

/* An event as a producer sent it, before it has a seq. All pointers are
 * borrowed from the request being served and must outlive the publish call. */
typedef struct eb_event_in {
    eb_str         type;            /* required: [A-Za-z0-9][A-Za-z0-9._-]*, <= 128 */
    eb_str         id;              /* optional; generated (ULID) when absent */
    eb_str         source;          /* optional producer name */
    eb_str         key;             /* optional ordering key */
    eb_str         correlation_id;  /* optional; defaults to the event id */
    eb_str         causation_id;    /* optional */
    eb_str         subject;         /* optional (CloudEvents) */
    eb_str         datacontenttype; /* optional (CloudEvents) */
    int64_t        version;         /* schema version to validate against; 0 = latest */
    const eb_json *data;            /* the payload; NULL = no data (null) */
    eb_str         data_raw;        /* data as JSON text, if available verbatim */
    const eb_json *extensions;      /* optional object of extra attributes */
    bool           expect_version;  /* optimistic concurrency: check the key's */
    uint64_t       expected_version; /* current version is this (0 = the key
                                      * must not exist yet); no check if !expect */
    uint64_t       key_version;     /* set by the bus: the version this event gets */
    eb_str         deliver_at;      /* optional: RFC 3339 time to deliver at */
    eb_str         delay;           /* optional: duration to deliver after ("90s") */
    uint64_t       deliver_us;      /* set by the bus: 0 = now, else its due time */
    char           id_buf[EB_EVENT_ID_LEN + 1]; /* storage for a generated id */
} eb_event_in;

/* A stored event decoded from a log record payload; points into it. */
typedef struct eb_event_view {
    eb_str   type;
    eb_str   id;
    eb_str   key;
    uint32_t schema_version;
    uint64_t key_version; /* version within its key; 0 = no key (or format 1) */
    uint8_t  flags;  /* EB_EVENT_F_* */
    uint8_t  format; /* EB_EVENT_FORMAT, EB_EVENT_FORMAT_V1 or _DELAYED */
    uint64_t deliver_us; /* format 3: when it is delivered; 0 otherwise */
    uint64_t origin_seq; /* format 3: in a due copy, the seq published */
    eb_str   json;   /* the stored JSON object (no seq/time) */
} eb_event_view;

/* One problem with an envelope, naming the field. */
typedef struct eb_field_error {
    char field[64];    /* JSON Pointer of the field, e.g. "/type" */
    char message[256]; /* plain words */
} eb_field_error;

/* Parses a native envelope object into *ev (borrowing from the node).
 * Unknown top-level fields are errors (they are usually typos). Returns 0 or
 * EB_EINVAL with *err naming the field. `body` is the text the node was
 * parsed from (for the raw data span); may be NULL. */
int eb_event_from_json(const eb_json *obj, const char *body, eb_event_in *ev,
                       eb_field_error *err);

/* True if ev's id was generated by eb_event_check (not client-supplied). */
static inline bool eb_event_id_generated(const eb_event_in *ev)
{
    return ev->id.ptr == ev->id_buf;
}

/* Checks envelope rules and fills defaults: generates an id when absent.
 * Returns 0 or EB_EINVAL with *err naming the field. */
int eb_event_check(eb_event_in *ev, eb_field_error *err);

/* True if s is a valid event type name: 1-128 chars of [A-Za-z0-9._-],
 * starting with a letter or digit (case-sensitive: CloudEvents types such
 * as com.example.OrderCreated are common). */
bool eb_event_type_valid(const char *s, size_t n);

/* Generates a new ULID into out[27] (26 chars + NUL): 48-bit ms time then
 * 80 random bits, monotonic within a process. Thread-safe. */
void eb_event_new_id(char out[EB_EVENT_ID_LEN + 1]);

/* Appends the stored payload of ev to out (validated schema version given;
 * ev->key_version stored as is). ev must have passed eb_event_check(). */
void eb_event_encode(const eb_event_in *ev, uint32_t schema_version, eb_buf *out);

/* Appends a copy of a stored format-3 payload with its origin set (the
 * record a delayed event becomes when due); EB_EINVAL if not format 3. */
int eb_event_due_copy(const void *payload, size_t len, uint64_t origin_seq, eb_buf *out);

/* Decodes a stored payload; returns 0 or EB_ECORRUPT. */
int eb_event_decode(const void *payload, size_t len, eb_event_view *v);
/* The source of a decoded event, read from its stored JSON without parsing
 * all of it (the encoder writes it right after id and type): *out views
 * the JSON, or, when it is escaped there, buf (EB_EVENT_MAX_ATTR bytes),
 * decoded. {NULL, 0}: the event has none (the empty source, as dedupe
 * defines it). 0, or -1 if the JSON is not as the encoder writes it. */
int eb_event_source(const eb_event_view *v, char *buf, eb_str *out);

/* Writes the delivered form of a stored event as one JSON value:
 * {"seq":N,"time":"RFC 3339",["key_version":N,]["deliver_at":"RFC 3339",
 * ["published_seq":N,]]<stored members>}, with
 * "version" (the schema version the data was validated against) among the
 * stored members whenever the header has one. */
void eb_event_write(eb_jw *w, uint64_t seq, uint64_t ts_us, const eb_event_view *v);
/* The same members into an object the caller opened (and closes, after
 * adding its own members: a pull adds "delivery"). */
void eb_event_write_members(eb_jw *w, uint64_t seq, uint64_t ts_us, const eb_event_view *v);

/* Formats a µs timestamp as RFC 3339 UTC with microseconds into out[32]. */
size_t eb_time_format(uint64_t ts_us, char out[32]);
/* Writes member `key` with ts_us as an RFC 3339 string (eb_time_format). */
void eb_time_write(eb_jw *w, const char *key, uint64_t ts_us);
/* Parses an RFC 3339 timestamp into µs since the epoch; 0 or EB_EINVAL. */
int eb_time_parse(const char *s, size_t n, uint64_t *ts_us);

#endif
