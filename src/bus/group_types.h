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

#define EB_GROUP_MAX_NAME 128
#define EB_GROUP_MAX_TYPES 64

typedef enum eb_ordering { EB_ORDER_NONE = 0, EB_ORDER_KEY } eb_ordering;
enum { EB_START_LATEST = 0, EB_START_EARLIEST, EB_START_TIME };

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
} eb_group_cfg;

/* Parses and checks a config object; unknown fields and bad values are
 * errors naming the field. Missing fields take the defaults above.
 * Returns 0 or EB_EINVAL. cfg must be released with eb_group_cfg_free. */
int  eb_group_cfg_parse(const eb_json *obj, eb_group_cfg *cfg, eb_field_error *err);
void eb_group_cfg_free(eb_group_cfg *cfg);
void eb_group_cfg_write(eb_jw *w, const eb_group_cfg *cfg);
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
} eb_group_info;

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
