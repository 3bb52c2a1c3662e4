/* group_types.h - the plain types of consumer groups, shared by the engine,
 * the bus's command API and the API layer: a group's configuration (parsed
 * from and written as JSON with field-named errors), its counters, and a
 * point-in-time view of it. No engine state. */
#ifndef EB_BUS_GROUP_TYPES_H
#define EB_BUS_GROUP_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bus/event.h"
#include "bus/filter.h"
#include "json/json.h"
#include "util/hist.h"

#define EB_GROUP_MAX_NAME 128
#define EB_GROUP_MAX_TYPES 64

typedef enum eb_ordering { EB_ORDER_NONE = 0, EB_ORDER_KEY } eb_ordering;
enum { EB_START_LATEST = 0, EB_START_EARLIEST, EB_START_TIME };

/* A pushed group's delivery (the "push" member of its config; push_cfg.c). */
typedef enum eb_push_format { EB_PUSH_EVENT = 0, EB_PUSH_CLOUDEVENTS } eb_push_format;
#define EB_PUSH_MAX_URL 2048
#define EB_PUSH_MAX_HEADERS 32
#define EB_PUSH_MAX_HEADER 1024   /* bytes of one "Name: value" */
#define EB_PUSH_MAX_BATCH 100
#define EB_PUSH_MASK_TAIL 4       /* characters of a secret the view shows */
typedef struct eb_push_cfg {
    char          *url;            /* http:// or https://; owned */
    char          *secret;         /* "whsec_<base64 of 24..64 bytes>"; owned. As parsed
                                      from a view it may be the masked text (masked) */
    bool           masked;         /* secret is the view's masked text: keep the current */
    char          *prev_secret;    /* the one before the last rotation, or NULL; owned */
    uint64_t       prev_until_us;  /* signed with too until then */
    char          *headers[EB_PUSH_MAX_HEADERS]; /* "Name: value"; owned */
    size_t         nheaders;
    uint32_t       timeout_ms;     /* per POST (10000) */
    uint32_t       max_in_flight;  /* events being POSTed at once (100) */
    uint32_t       batch;          /* events per POST (1) */
    eb_push_format format;         /* event */
    uint32_t       circuit_failures;  /* consecutive failures that open the circuit (5) */
    uint32_t       rotation_grace_ms; /* a rotated-out secret still signs (86400000) */
} eb_push_cfg;

/* A group's configuration (PUT /v1/groups/{group}). */
typedef struct eb_group_cfg {
    char       *types[EB_GROUP_MAX_TYPES]; /* patterns: "a.b", "*.b", "a.>"; owned */
    size_t      ntypes;
    int         start;              /* EB_START_* (creation only) */
    uint64_t    start_us;           /* for EB_START_TIME */
    uint32_t    max_attempts;       /* deliveries before dead-lettering (4) */
    uint32_t    backoff_initial_ms; /* 1000 */
    double      backoff_multiplier; /* 2 */
    uint32_t    backoff_max_ms;     /* 300000 */
    double      backoff_jitter;     /* 0..1, 0.2 */
    uint32_t    ack_timeout_ms;     /* 30000 */
    eb_ordering ordering;           /* none */
    uint32_t    max_in_flight;      /* leases outstanding across consumers; 0: no cap */
    double      rate_limit;         /* deliveries per second (token bucket, burst of one
                                       second's worth); 0: none */
    eb_filter  *filter;             /* NULL: every event of the types; owned */
    char       *filter_json;        /* its JSON text as given (compact); owned */
    eb_push_cfg *push;              /* NULL: pulled; else delivered by eventbusd; owned */
} eb_group_cfg;

/* Parses and checks a config object; unknown fields and bad values are
 * errors naming the field. Missing fields take the defaults above.
 * Returns 0 or EB_EINVAL. cfg must be released with eb_group_cfg_free. */
int  eb_group_cfg_parse(const eb_json *obj, eb_group_cfg *cfg, eb_field_error *err);
void eb_group_cfg_free(eb_group_cfg *cfg);
/* Writes cfg as the API shows it: a push secret masked ("whsec_…abcd"). */
void eb_group_cfg_write(eb_jw *w, const eb_group_cfg *cfg);

/* Helpers of the config parsers (group_cfg.c, push_cfg.c): an error naming
 * field (returns EB_EINVAL); an integer member in [lo, hi]. */
int  eb__cfg_err(eb_field_error *err, const char *field, const char *msg);
int  eb__cfg_u32(const eb_json *v, const char *field, uint32_t lo, uint32_t hi, uint32_t *out,
                 eb_field_error *err);

/* --- push (push_cfg.c) --- */
/* Parses the "push" member (field names under /push). 0 or EB_EINVAL. */
int  eb_push_cfg_parse(const eb_json *v, eb_push_cfg **out, eb_field_error *err);
void eb_push_cfg_free(eb_push_cfg *p);
void eb_push_cfg_write(eb_jw *w, const eb_push_cfg *p);
/* The masked form of secret into out: "whsec_…" and its last 4 characters. */
void eb_push_secret_mask(const char *secret, char out[32]);
/* Settles the secrets of a new push config against the group's old one
 * (NULL: none): a masked secret must be the old one's mask and keeps it (and
 * its previous one); no secret keeps the old; a different full secret
 * rotates: the old becomes the previous until now + rotation_grace_ms.
 * 0, or EB_EINVAL with err naming /push/secret. */
int  eb_push_cfg_resolve(eb_push_cfg *nw, const eb_push_cfg *old, uint64_t now_us,
                         eb_field_error *err);
/* The HMAC key of a secret: the base64 after "whsec_" decoded into out.
 * 0 or EB_EINVAL. */
int  eb_push_secret_key(const char *secret, eb_buf *out);
/* True if event type t (length n) matches pattern p (the grammar is
 * bus/subject_match.h: "*" one segment, ">" or a last "*" the rest). */
bool eb_group_type_match(const char *p, const char *t, size_t n);
bool eb_group_cfg_matches(const eb_group_cfg *cfg, const char *t, size_t n);
/* True if the event passes cfg's filter (always without one). */
bool eb_group_cfg_passes(const eb_group_cfg *cfg, const eb_filter_event *ev);
/* True if s is a valid type name or pattern (bus/subject_match.h). */
bool eb_group_pattern_valid(const char *s, size_t n);


/* Per-group counters (since start) for /v1/stats and /metrics. */
typedef struct eb_group_counters {
    uint64_t delivered, acked, nacked, expired, redelivered, dead_lettered, redriven,
        replayed, purged;
    uint64_t retention_skipped; /* log seqs deleted by retention before the group examined them */
    uint64_t throttled;         /* pulls given fewer events (or none) by max_in_flight or
                                   rate_limit while events were ready */
} eb_group_counters;

/* A point-in-time view of a group. */
typedef struct eb_group_info {
    const char        *name;
    const eb_group_cfg *cfg;
    bool               paused;
    uint64_t           cursor;           /* main flow's next seq to examine */
    uint64_t           head;             /* the events store's next seq (set by the bus) */
    uint64_t           lag;              /* matching events not yet finished */
    /* lag = ready + in_flight + retry_scheduled + blocked; ready counts the
     * events not examined yet (past the cursor, owed by a replay) too */
    uint64_t           ready, in_flight, retry_scheduled, blocked;
    uint64_t           dead_letters;     /* in the DLQ (not redriven) */
    uint64_t           oldest_unacked_us;/* append time of the oldest pending, 0 if none */
    uint64_t           delayed;          /* delayed events of its types not due yet (not in
                                            lag; a filter is not applied: set by the bus) */
    eb_group_counters  counters;
    /* The lag of a group with a filter is being counted off the request
     * path (after its creation, a change of its config or a restart): lag
     * is what was found so far, a lower bound, until this is false. */
    bool               lag_counting;
} eb_group_info;

/* A pushed group's delivery state, filled by the push module (src/push)
 * through the provider it gives the bus (eb_bus_set_push_state). */
typedef enum eb_circuit { EB_CIRCUIT_CLOSED = 0, EB_CIRCUIT_OPEN, EB_CIRCUIT_HALF_OPEN } eb_circuit;
typedef struct eb_push_state {
    eb_circuit  circuit;        /* of the group's endpoint (URL origin) */
    uint32_t    failures;       /* consecutive failed POSTs to the endpoint */
    uint64_t    next_probe_us;  /* open: when the half-open probe may go; else 0 */
    uint64_t    hold_until_us;  /* Retry-After: no POST to the endpoint before; 0: none */
    uint32_t    in_flight;      /* events of the group being POSTed */
    /* the group's POSTs since start, by outcome: */
    uint64_t    ok, http_error, timeout, conn_error, throttled, refused;
    uint64_t    opened;         /* times the endpoint's circuit opened */
    const char *last_error;     /* the last failure ("" if none) */
    const eb_hist *latency;     /* POST to a 2xx answer (µs) */
} eb_push_state;

/* One delivery leased by a pull. Borrowed: valid during the pull's
 * callback only (event points into the bus's memory). */
typedef struct eb_delivery {
    uint64_t    seq, ts_us;  /* the event's */
    const void *event;       /* the stored event (eb_event_decode reads it) */
    uint32_t    len;
    uint32_t    attempt;     /* 1 for the first delivery */
    char        id[48];      /* delivery id "<class><seq>.<attempt>", NUL-terminated */
} eb_delivery;

/* A consumer a group has seen. Borrowed during the callback that gets it. */
typedef struct eb_consumer_info {
    const char *name;
    uint64_t    last_pull_us;
    uint32_t    in_flight;
} eb_consumer_info;
typedef void (*eb_consumer_fn)(void *arg, const eb_consumer_info *c);

/* One failed attempt of a delivery. */
typedef struct eb_failure {
    uint32_t    attempt;  /* the delivery's attempt number */
    uint64_t    at_us;    /* when it failed */
    const char *consumer; /* who held it ("" if none) */
    const char *error;
} eb_failure;

/* A dead letter. Borrowed during the callback that gets it. */
typedef struct eb_dead_letter {
    uint64_t    seq, ts_us;   /* the event's */
    const void *event;        /* its stored copy (eb_event_decode reads it) */
    uint32_t    len;
    const char *error;        /* last failure */
    const char *consumer;     /* who held it last ("" if none) */
    uint32_t    attempts;
    uint64_t    failed_at_us; /* the last failure */
    uint64_t    first_failed_at_us;
    const eb_failure *errors; /* the last few failures, oldest first (>= 1) */
    size_t      nerrors;
} eb_dead_letter;
typedef void (*eb_dead_letter_fn)(void *arg, const eb_dead_letter *dl);

#endif
