/* group.h - consumer groups: subscriptions held by the server, pull
 * delivery with leases, ack/nack/extend, retries with backoff, dead letters,
 * replay and per-key ordering.
 *
 * Model (one eb_group per group; loop thread only):
 *
 *   events log:  ... [ ......... cursor) ............ durable head
 *                      pending:         |  not yet examined
 *                      deliveries       |  (`ahead` counts matches)
 *                      not yet acked    |
 *
 *   - cursor: next events-log seq the group examines. Examining a record
 *     whose type matches creates a delivery (eb_dlv) in state READY.
 *   - A pull leases READY deliveries to a consumer (INFLIGHT, deadline =
 *     now + ack_timeout). ack removes it; nack or a missed deadline is a
 *     failed attempt: RETRY until now + backoff(attempt) (or the nack's
 *     delay), then READY again; once max_attempts deliveries failed it moves
 *     to the dead-letter queue, which keeps a copy of the event (so the
 *     log's retention cannot take it while the group exists).
 *   - ordering "key": at most one delivery per key is READY/INFLIGHT/RETRY;
 *     later ones with the same key wait (BLOCKED) in publish order.
 *   - Replay adds a range [from, to) with its own cursor; its deliveries
 *     are independent of the main flow's (flag `replay`).
 *   - The pending window is bounded (max_pending); cursors stop advancing
 *     while it is full, so memory stays bounded whatever the lag.
 *
 * Persistence is the bus's job (bus.c): every state change here that must
 * survive a crash is reported through eb_group_hooks so the bus can write a
 * meta record before answering; at startup the bus replays those records
 * into the same functions (eb_group_replay_*).
 */
#ifndef EB_BUS_GROUP_H
#define EB_BUS_GROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bus/event.h"
#include "json/json.h"
#include "log/log.h"
#include "util/imap.h"
#include "util/map.h"

#define EB_GROUP_MAX_NAME 128
#define EB_GROUP_MAX_TYPES 64
#define EB_GROUP_MAX_PENDING 100000 /* deliveries held in memory per group */

typedef enum eb_ordering { EB_ORDER_NONE = 0, EB_ORDER_KEY } eb_ordering;
enum { EB_START_LATEST = 0, EB_START_EARLIEST, EB_START_TIME };

/* A group's configuration (PUT /v1/groups/{group}). */
typedef struct eb_group_cfg {
    char       *types[EB_GROUP_MAX_TYPES]; /* patterns: "a.b", "a.*", "*"; owned */
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
} eb_group_cfg;

/* Parses and checks a config object; unknown fields and bad values are
 * errors naming the field. Missing fields take the defaults above.
 * Returns 0 or EB_EINVAL. cfg must be released with eb_group_cfg_free. */
int  eb_group_cfg_parse(const eb_json *obj, eb_group_cfg *cfg, eb_field_error *err);
void eb_group_cfg_free(eb_group_cfg *cfg);
void eb_group_cfg_write(eb_jw *w, const eb_group_cfg *cfg);
/* True if event type t (length n) matches pattern p:
 * "*" anything; "a.*" any type starting "a." (one or more segments). */
bool eb_group_type_match(const char *p, const char *t, size_t n);
bool eb_group_cfg_matches(const eb_group_cfg *cfg, const char *t, size_t n);

typedef struct eb_group eb_group;
typedef struct eb_dlv eb_dlv;

/* --- the engine ---------------------------------------------------------- */

typedef enum eb_dlv_state {
    EB_DLV_READY = 0, /* waiting for a pull */
    EB_DLV_INFLIGHT,  /* leased to a consumer until `when` */
    EB_DLV_RETRY,     /* failed; READY again at `when` */
    EB_DLV_BLOCKED    /* ordering=key: waits for an earlier event of its key */
} eb_dlv_state;

typedef struct eb_key_state eb_key_state;
typedef struct eb_consumer eb_consumer;

/* One event pending for one group (main flow or a replay). */
struct eb_dlv {
    uint64_t      seq;       /* event seq in the events log */
    uint64_t      ts_us;     /* its append time */
    uint64_t      when;      /* INFLIGHT: deadline; RETRY: due (µs, realtime) */
    uint32_t      attempt;   /* deliveries made so far */
    uint32_t      heap_idx;  /* position in the group's timer heap, or UINT32_MAX */
    uint8_t       state;     /* eb_dlv_state */
    bool          replay;    /* from a replay range */
    eb_dlv       *next;      /* ready FIFO or key wait list */
    eb_key_state *ks;        /* ordering=key: its key's state */
    eb_consumer  *consumer;  /* INFLIGHT: who has it */
    char         *last_error;/* last failure message (owned) */
    uint32_t      len;       /* stored payload length */
    char         *payload;   /* stored event payload copy (owned) */
};

#endif
