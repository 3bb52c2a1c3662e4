/* bus.h - the domain of eventbus and its command API: publishing, the
 * schema registry, reading events, consumer groups and monitoring. The one
 * door into the bus: src/api calls only what is declared here (and the
 * plain types of event.h, group_types.h and registry.h) and renders the
 * plain results. Knows nothing of HTTP.
 *
 * Threads: every eb_bus_* call is made on the loop thread given to
 * eb_bus_open(); completion callbacks run on that thread too. The bus owns
 * two logs (src/log): `events/` for events and `meta/` for its own state
 * changes (schema registrations, later group state). Their writer threads
 * hand durable batches back to the loop with a uv_async.
 *
 * Durability: a publish or registration callback reporting status 0 means
 * the record is on disk under the fsync policy. */
#ifndef EB_BUS_H
#define EB_BUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "bus/event.h"
#include "bus/group_types.h"
#include "bus/registry.h"
#include "store/store.h"
#include "util/hist.h"

typedef struct eb_bus eb_bus;

typedef struct eb_bus_opts {
    const char     *data_dir;          /* where the engine keeps the stores */
    const eb_store_engine *engine;     /* opens both stores (borrowed) */
    eb_store_sync   fsync;             /* for both stores */
    uint32_t        fsync_interval_ms; /* for EB_STORE_SYNC_INTERVAL */
    uint64_t        retention_ms;      /* events store: 0 = forever */
    uint64_t        retention_bytes;   /* events store: 0 = unlimited */
    uint64_t        dedupe_window_ms;  /* idempotent publish window */
    uint32_t        max_event_bytes;   /* stored size bound for one event */
    bool            require_schemas;   /* refuse types with no schema */
    uint64_t        meta_snapshot_bytes; /* meta log growth between snapshots (64 MiB) */
    /* Memory bounds (0 = the default): */
    uint64_t        dedupe_max_bytes;  /* dedupe window: oldest ids forgotten past it (64 MiB) */
    size_t          max_schemas;       /* schema versions, all types (1000) */
    size_t          max_groups;        /* consumer groups (1000) */
    uint64_t        max_in_flight_total; /* leases, all groups (1,000,000) */
    uint32_t        history_interval_ms; /* per-group samples every (0: 5000) */
    uint64_t        max_delay_ms;      /* deliver_at/delay at most this far ahead (0: 30 days) */
    uint64_t        max_delayed;       /* delayed events waiting at once (0: 1,000,000) */
    size_t          max_types;         /* event types counted by name; the rest fold
                                        * into "_other" (0: 1000) */
    uint64_t        delivery_cache_bytes; /* recent records read for deliveries (16 MiB) */
    size_t          history_groups;    /* groups with a history ring (1000) */
    uint32_t        lag_walk_records;  /* records (and filter evaluations) the lag
                                        * walk of filtered groups takes per loop
                                        * turn (0: 1024) */
} eb_bus_opts;

#define EB_BUS_DEFAULT_DEDUPE_MAX_BYTES (64ull << 20)
#define EB_BUS_DEFAULT_MAX_SCHEMAS 1000
#define EB_BUS_DEFAULT_MAX_GROUPS 1000
#define EB_BUS_DEFAULT_MAX_IN_FLIGHT_TOTAL 1000000
#define EB_BUS_DEFAULT_MAX_DELAY_MS (30ull * 86400 * 1000)
#define EB_BUS_DEFAULT_MAX_DELAYED 1000000
#define EB_BUS_DEFAULT_DELIVERY_CACHE_BYTES (16ull << 20)
#define EB_BUS_DEFAULT_HISTORY_GROUPS 1000
#define EB_BUS_DEFAULT_LAG_WALK_RECORDS 1024

/* What startup found, for the startup log line. */
typedef struct eb_bus_report {
    eb_store_recovery events; /* events store recovery */
    eb_store_recovery meta;   /* meta store recovery */
    size_t          schemas; /* schema versions loaded */
    size_t          dedupe_ids; /* ids refilled into the dedupe window */
    size_t          groups;  /* consumer groups loaded */
} eb_bus_report;

/* Opens (recovering) the stores under opts->data_dir. *out is owned by the
 * caller until eb_bus_close(). */
int eb_bus_open(uv_loop_t *loop, const eb_bus_opts *opts, eb_bus **out,
                eb_bus_report *rep);
/* Waits for pending appends, syncs and closes everything; frees bus. */
void eb_bus_close(eb_bus *bus);


/* --- publishing ---------------------------------------------------------- */

/* Why one event of a publish was refused. */
typedef enum eb_pub_fault {
    EB_PUB_OK = 0,
    EB_PUB_INVALID,        /* envelope rule broken (field in .field) */
    EB_PUB_SCHEMA,         /* data breaks its schema (violations listed) */
    EB_PUB_NO_VERSION,     /* names a schema version that does not exist */
    EB_PUB_NO_SCHEMA,      /* --require-schemas and the type has none */
    EB_PUB_TOO_BIG,        /* stored event over max_event_bytes */
    EB_PUB_VERSION_CONFLICT, /* expected_version is not the key's current version */
    EB_PUB_LIMIT           /* --max-delayed delayed events wait already */
} eb_pub_fault;

/* The faults found in a publish, by event index; reused across calls.
 * Owns its strings. */
typedef struct eb_pub_errors {
    eb_buf text;     /* the entries' strings, NUL-terminated, back to back */
    struct { size_t index; eb_pub_fault kind; size_t path, schema_path, message;
             uint64_t current; } *v;
    size_t cap;      /* of v */
    size_t count;    /* faults found (the first 1000) */
    size_t kept;     /* entries in v (count, unless out of memory) */
    eb_pub_fault first; /* kind of the first fault (decides the status) */
    char   summary[200]; /* one-line message for the first fault */
} eb_pub_errors;

/* One fault, for rendering. Strings borrowed until the next publish. */
typedef struct eb_pub_error {
    size_t       index;       /* the event's index in the publish */
    eb_pub_fault kind;
    const char  *path;        /* JSON pointer: into data for EB_PUB_SCHEMA, else the field */
    const char  *schema_path; /* EB_PUB_SCHEMA: the keyword's location, else NULL */
    const char  *message;
    uint64_t     current_version; /* EB_PUB_VERSION_CONFLICT: the key's version */
} eb_pub_error;

void eb_pub_errors_init(eb_pub_errors *e);
void eb_pub_errors_free(eb_pub_errors *e);
/* Entry i (< e->kept) of e. */
void eb_pub_errors_at(const eb_pub_errors *e, size_t i, eb_pub_error *out);

/* The outcome for one published event. */
typedef struct eb_pub_result {
    uint64_t seq;       /* its sequence number (the original one if duplicate) */
    uint64_t ts_us;     /* its append time */
    bool     duplicate; /* id already published within the dedupe window */
    uint64_t key_version; /* its version within its key (0: no key, or a duplicate) */
    uint64_t deliver_us;  /* delayed: when groups get it (0: now, or a duplicate) */
    char     id[EB_EVENT_MAX_ID + 1]; /* its id (generated or given) */
} eb_pub_result;

/* Called once per accepted publish on the loop thread: status 0 when every
 * event is durable (results[i] for evs[i]), or a storage error. results is
 * owned by the bus and valid during the call only. */
typedef void (*eb_bus_pub_cb)(void *arg, int status, const eb_pub_result *results, size_t n);

/* Publishes n events atomically: all are checked first (envelope, schema,
 * expected versions: events of one key in order, after the key's current
 * version, each new keyed event getting the next version);
 * if any fails, nothing is written, errs describes every fault and the
 * return is EB_EINVAL (cb is never called). Otherwise the new events are
 * appended in one durable write and cb fires once; returns 0. evs are
 * borrowed during the call only (ids may be generated into them). */
int eb_bus_publish(eb_bus *bus, eb_event_in *evs, size_t n, eb_pub_errors *errs,
                   eb_bus_pub_cb cb, void *arg);

/* --- schema registry ----------------------------------------------------- */

/* Called when a registration is durable (status 0) or failed. */
typedef void (*eb_bus_done_cb)(void *arg, int status);

/* Registers the next version of type's schema after the same checks as
 * eb_registry_check (see registry.h; `chk` receives the outcome and must be
 * released with eb_registry_check_done). Returns 0 and later calls cb, or an
 * error at once (cb not called): EB_ESYNTAX/EB_EINVAL (schema invalid),
 * EB_ECONFLICT (incompatible, or chk->same_as set: already registered, in
 * which case nothing is written and the caller answers with that version),
 * EB_EBUSY-like EB_EFULL if another registration of the type is pending,
 * EB_ERANGE if the registry holds opts.max_schemas versions already. */
int eb_bus_register_schema(eb_bus *bus, const char *type, size_t n, const char *schema,
                           size_t len, bool mode_given, eb_compat_mode mode,
                           eb_registry_verdict *chk, eb_bus_done_cb cb, void *arg);

/* Checks a schema as eb_bus_register_schema would, writing nothing: the
 * returns and `chk` of eb_registry_check (release it with
 * eb_registry_check_done). */
int eb_bus_schema_check(eb_bus *bus, const char *type, size_t n, const char *schema, size_t len,
                        bool mode_given, eb_compat_mode mode, eb_registry_verdict *chk);
/* The registered versions of type (NULL if none). Borrowed until the next
 * bus call. */
const eb_subject *eb_bus_schema_subject(eb_bus *bus, const char *type, size_t n);
/* Calls fn for each type with at least one version (in no order). */
typedef void (*eb_subject_fn)(void *arg, const eb_subject *s);
void eb_bus_schemas_each(eb_bus *bus, eb_subject_fn fn, void *arg);

/* --- reading events ------------------------------------------------------ */

/* A browse query over the events log (GET /v1/events). */
typedef struct eb_browse {
    eb_str   type;      /* only this type (exact) if set */
    uint64_t since_us;  /* append time >= since (0 = any) */
    uint64_t until_us;  /* append time < until (0 = any) */
    uint64_t after_seq; /* seq > after_seq */
    size_t   limit;     /* at most this many (1..1000) */
} eb_browse;

/* One stored event, decoded; v's views are borrowed during the call. */
typedef void (*eb_event_fn)(void *arg, uint64_t seq, uint64_t ts_us, const eb_event_view *v);
/* Calls fn for each matching event, oldest first, and sets *next_after to
 * the seq to continue after (0 when the store was exhausted). Scans at
 * most a bounded number of records per call. */
int eb_bus_browse(eb_bus *bus, const eb_browse *q, eb_event_fn fn, void *arg,
                  uint64_t *next_after);
/* Finds one event by id and calls fn with it; EB_ENOTFOUND if unknown.
 * Any retained event is found through the id lookup (one record read). */
int eb_bus_get_event(eb_bus *bus, const char *id, size_t n, eb_event_fn fn, void *arg);
/* The same for the event with this id from this source (CloudEvents ids
 * are unique per source): source NULL: any (the newest with the id, as
 * eb_bus_get_event); a source of length 0: the empty one (events published
 * without a source). Found through the (source, id) lookup (one record
 * read), whatever other sources published with the same id. */
int eb_bus_get_event_from(eb_bus *bus, const eb_str *source, const char *id, size_t n,
                          eb_event_fn fn, void *arg);

/* Reads key's stream: up to limit (1..1000) durable events of versions
 * >= from_version (0 or 1: from the oldest retained), in version order,
 * through the key lookup (work proportional to the events returned).
 * *next_version is the version to continue from (0 when none is durable
 * yet); *current the key's current version. 0 or a storage error. */
int eb_bus_key_events(eb_bus *bus, const char *key, size_t n, uint64_t from_version,
                      size_t limit, eb_event_fn fn, void *arg, uint64_t *next_version,
                      uint64_t *current);
/* Records read by key-stream and id lookups since open (a debug stat, for
 * tests that check a read's cost as a ratio). */
uint64_t eb_bus_lookup_reads(const eb_bus *bus);
/* Records read since open to count groups' lag and events by type (what
 * the store's counts and the tail's do not cover; for tests and diagnosis). */
uint64_t eb_bus_count_reads(const eb_bus *bus);

/* --- consumer groups: the command API (groups.c, pull.c) -------------------
 * The only door to consumer groups: the API layer never sees the engine,
 * its outbox or the stores. Groups are named (name, n); a command naming a
 * group that does not exist returns EB_ENOTFOUND.
 *
 * Changes take an eb_bus_done_cb and follow libuv's rule, with a fast
 * path like uv_try_write's: a call returns
 *   < 0  an error; cb is never called and nothing was written;
 *     0  the change is made in memory and cb fires exactly once, later
 *        (never inside the call), when its meta records are durable
 *        (status 0) or could not be written (the storage error);
 *     1  the change is made and already durable under the fsync policy
 *        (written on the loop thread, or nothing to write); cb is not
 *        called: answer now.
 * What the caller answers with (counts, unknown ids) comes back at once in
 * out-parameters, filled before the call returns. */

/* Creates group `name` or updates its config (taking cfg's strings; an
 * update keeps where the group started); *created tells which. EB_ERANGE
 * when creating one more than opts.max_groups. */
int eb_bus_group_put(eb_bus *bus, const char *name, eb_group_cfg *cfg, bool *created,
                     eb_bus_done_cb cb, void *arg);
int eb_bus_group_delete(eb_bus *bus, const char *name, eb_bus_done_cb cb, void *arg);
int eb_bus_group_pause(eb_bus *bus, const char *name, bool paused, eb_bus_done_cb cb,
                       void *arg);

/* Whether group `name` exists (no state changes). */
bool eb_bus_group_exists(eb_bus *bus, const char *name, size_t n);
/* A group's view: 0, or EB_ENOTFOUND. out's strings and cfg are borrowed
 * until the next bus call. */
int eb_bus_group_info(eb_bus *bus, const char *name, size_t n, eb_group_info *out);
/* Calls fn with each group's view (borrowed during the call). */
typedef void (*eb_group_info_fn)(void *arg, const eb_group_info *info);
void eb_bus_groups_each(eb_bus *bus, eb_group_info_fn fn, void *arg);
/* Calls fn with each consumer the group has seen; 0 or EB_ENOTFOUND. */
int eb_bus_group_consumers(eb_bus *bus, const char *name, size_t n, eb_consumer_fn fn,
                           void *arg);

/* ack, nack or extend a list of delivery ids. */
typedef enum eb_settle_op { EB_SETTLE_ACK, EB_SETTLE_NACK, EB_SETTLE_EXTEND } eb_settle_op;
typedef struct eb_settle_req {
    eb_settle_op  op;
    const eb_str *ids;      /* the delivery ids (borrowed during the call) */
    size_t        n;
    const char   *error;    /* nack: the failure, NUL-terminated (NULL: "nacked") */
    int64_t       delay_ms; /* nack: retry delay; -1 = the group's backoff */
    uint32_t      ms;       /* extend: the lease from now; 0 = the ack timeout */
    uint8_t      *unknown;  /* out, n flags: 1 where the id named no delivery in flight */
    bool          dead_letter; /* nack: straight to the DLQ, whatever attempts remain */
} eb_settle_req;
/* *settled receives how many ids named a delivery in flight. */
int eb_bus_settle(eb_bus *bus, const char *group, size_t glen, const eb_settle_req *req,
                  size_t *settled, eb_bus_done_cb cb, void *arg);

/* Redrives (or purges) the dead letters with the given event ids, all
 * when n == 0; *count receives how many. */
int eb_bus_dlq_redrive(eb_bus *bus, const char *group, size_t glen, const eb_str *ids, size_t n,
                       size_t *count, eb_bus_done_cb cb, void *arg);
int eb_bus_dlq_purge(eb_bus *bus, const char *group, size_t glen, const eb_str *ids, size_t n,
                     size_t *count, eb_bus_done_cb cb, void *arg);
/* Calls fn for up to limit dead letters with seq > after (borrowed views);
 * *next is the cursor of the next page (0 if none). 0 or EB_ENOTFOUND. */
int eb_bus_dlq_list(eb_bus *bus, const char *group, size_t glen, uint64_t after, size_t limit,
                    eb_dead_letter_fn fn, void *arg, uint64_t *next);

/* One end of a replay range: a seq, or an append time (the first event at
 * or after it; the durable head if none). */
typedef struct eb_replay_bound {
    bool     by_seq;
    uint64_t v;        /* seq, or time in µs since the epoch */
} eb_replay_bound;
typedef struct eb_replay_req {
    eb_replay_bound since;
    bool            has_until;  /* else: up to the durable head */
    eb_replay_bound until;
    char          **types;      /* subset of the group's types, or NULL */
    size_t          ntypes;
    bool            dry_run;    /* only count: change nothing, write nothing (returns 1) */
} eb_replay_req;
/* Queues again the group's events of [since, until); *requeued counts
 * them, *expired the seqs of the range already removed by retention. With
 * req->dry_run, counts what a replay would requeue and returns 1. */
int eb_bus_replay(eb_bus *bus, const char *group, size_t glen, const eb_replay_req *req,
                  uint64_t *requeued, uint64_t *expired, eb_bus_done_cb cb, void *arg);

/* Pull answer: status 0 with n leased deliveries (borrowed: valid during
 * the call) and their lease end, or EB_ENOTFOUND if the group went away,
 * EB_ECLOSED at shutdown or when the requester left. */
typedef void (*eb_bus_pull_cb)(void *arg, int status, const eb_delivery *dl, size_t n,
                               uint64_t deadline_us);
/* Whether the requester still waits (a long poll whose client left is
 * answered without leasing anything). */
typedef bool (*eb_bus_alive_fn)(void *arg);
/* Leases up to max (1..1000) deliveries of the group to consumer; if none
 * is ready, waits up to wait_ms for some. Returns 0 and calls cb exactly
 * once (maybe before returning), or an error (cb not called). */
int eb_bus_pull(eb_bus *bus, const char *group, size_t glen, const char *consumer, size_t clen,
                size_t max, uint32_t wait_ms, eb_bus_pull_cb cb, eb_bus_alive_fn alive,
                void *arg);
/* Answers every waiting pull with what it has (for shutdown). */
void eb_bus_flush_pulls(eb_bus *bus);

/* --- push delivery hooks (groups.c) -----------------------------------------
 * The push module (src/push) is a client of this API like src/api; it
 * learns of group changes through one observer and lends its state to the
 * group views through one provider. Both are optional (NULL: none). */

/* Called on the loop thread after a group is put, paused or deleted (the
 * change is made in memory; cb may not call the bus: defer the work). */
typedef void (*eb_group_observer_fn)(void *arg, const char *group);
void eb_bus_set_group_observer(eb_bus *bus, eb_group_observer_fn fn, void *arg);
/* Fills *out for pushed group `group`; false if it has no state. */
typedef bool (*eb_push_state_fn)(void *arg, const char *group, size_t n, eb_push_state *out);
void eb_bus_set_push_state(eb_bus *bus, eb_push_state_fn fn, void *arg);
/* The push state of a group: 0, or EB_ENOTFOUND (no such group, not pushed,
 * or no push module). out's pointers are borrowed until the next bus call. */
int eb_bus_group_push_state(eb_bus *bus, const char *name, size_t n, eb_push_state *out);

/* --- API tokens (tokens.c) ----------------------------------------------
 * The bus keeps API tokens as durable state (meta records, snapshots) and
 * never sees a secret: the API layer hashes the presented secret and asks
 * for the token with that hash. Scopes are opaque strings to the bus; the
 * API layer parses and checks them. */

#define EB_TOKEN_NAME_MAX  64    /* bytes of a token's name */
#define EB_TOKEN_MAX_SCOPES 32   /* scopes one token may carry */
#define EB_TOKEN_SCOPE_MAX 200   /* bytes of one scope */
#define EB_TOKENS_MAX      1000  /* tokens the bus keeps */
#define EB_TOKEN_HASH_LEN  32    /* SHA-256 of the secret */

typedef struct eb_token {
    char     name[EB_TOKEN_NAME_MAX + 1];
    uint8_t  hash[EB_TOKEN_HASH_LEN];
    char   **scopes;      /* nscopes NUL-terminated strings */
    size_t   nscopes;
    uint64_t created_us;
    uint64_t expires_us;  /* 0 = never */
} eb_token;

/* Creates or replaces token t->name (its fields are copied). Follows the
 * group commands' rule: < 0 an error (EB_EFULL: EB_TOKENS_MAX reached,
 * EB_EINVAL: more than EB_TOKEN_MAX_SCOPES), 0 and cb fires once the
 * record is durable; the token is usable from then on. */
int eb_bus_token_put(eb_bus *bus, const eb_token *t, eb_bus_done_cb cb, void *arg);
/* Revokes token `name` at once (it stops working before this returns) and
 * calls cb when the revocation is durable; EB_ENOTFOUND if unknown. */
int eb_bus_token_delete(eb_bus *bus, const char *name, size_t n, eb_bus_done_cb cb, void *arg);
/* The token whose secret hashes to hash, or NULL; borrowed until the next
 * token change. The hash is compared in constant time. */
const eb_token *eb_bus_token_by_hash(eb_bus *bus, const uint8_t hash[EB_TOKEN_HASH_LEN]);
/* Token `name`, or NULL (borrowed as above). */
const eb_token *eb_bus_token_get(eb_bus *bus, const char *name, size_t n);
/* Calls fn with each token (borrowed during the call), in no order. */
typedef void (*eb_token_fn)(void *arg, const eb_token *t);
void eb_bus_tokens_each(eb_bus *bus, eb_token_fn fn, void *arg);

/* --- per-group history (history.c) -------------------------------------------
 * Every history_interval_ms the bus samples each group into a ring of
 * EB_HISTORY_SAMPLES (an hour at the default 5 s); memory: 40 bytes a
 * sample, ~28 KiB a group. Kept in memory only: a restart starts
 * empty. Counters are the change over the interval that ends at ts_us. */
#define EB_HISTORY_SAMPLES 720
typedef struct eb_group_sample {
    uint64_t ts_us;          /* when it was taken */
    uint64_t lag;            /* matching events not yet finished */
    uint64_t delivered, acked, nacked, dead_lettered; /* during the interval */
    uint64_t dead_letters;   /* DLQ depth */
    uint64_t oldest_unacked_ms; /* age of the oldest pending event, 0 if none */
} eb_group_sample;
typedef void (*eb_group_sample_fn)(void *arg, const eb_group_sample *s);
/* Calls fn for each kept sample of the group, oldest first, after setting
 * *interval_ms; 0 or EB_ENOTFOUND. */
int eb_bus_group_history(eb_bus *bus, const char *name, size_t n, uint32_t *interval_ms,
                         eb_group_sample_fn fn, void *arg);

/* --- monitoring ------------------------------------------------------------ */

/* Publish latency (request to durable answer), measured by the API. */
void eb_bus_observe_publish(eb_bus *bus, uint64_t us);

/* Figures of the bus; the histograms are borrowed until the next bus call. */
typedef struct eb_bus_stats {
    uint64_t       published;   /* events in the events store (counted from it at
                                   open, then on every append; not duplicates) */
    uint64_t       published_since_start; /* events appended by this process */
    uint64_t       duplicates;  /* events answered as duplicates, since start */
    uint64_t       schema_rejected; /* events refused by their schema, since start */
    uint64_t       types_folded;    /* events counted under "_other" (type table full) */
    bool           degraded;    /* a store refuses appends (eb_bus_storage_error) */
    uint64_t       first_seq;   /* oldest event kept */
    uint64_t       head_seq;    /* next seq of the events store */
    uint64_t       bytes;       /* events store size on disk */
    uint64_t       segments;
    uint64_t       syncs;       /* fdatasync calls of the events store */
    uint64_t       dedupe_ids;     /* ids in the dedupe window */
    uint64_t       dedupe_bytes;   /* their memory (estimated, see dedupe.c) */
    uint64_t       dedupe_evicted; /* ids forgotten before their time (bound) */
    uint64_t       in_flight;      /* leases, all groups */
    uint64_t       notices_dropped; /* eventbus.dead_letter notices not published */
    uint64_t       delayed;          /* delayed events waiting for their time */
    uint64_t       delayed_released; /* delayed events released to groups, since start */
    uint64_t       delayed_expired;  /* delayed events retention removed before their time */
    uint64_t       delayed_next_us;  /* the earliest one's time (0: none) */
    uint64_t       ids_in_memory;    /* id lookup entries in memory (store.h) */
    const eb_hist *publish_hist;  /* request to durable answer (µs) */
    const eb_hist *delivery_hist; /* append to ack (µs) */
    /* The lag walk of groups with a filter (off the request path): records
     * read, loop turns and laps (passes) taken since open, groups being
     * counted now. */
    uint64_t       lag_walk_reads, lag_walk_turns, lag_walk_laps, lag_counting;
} eb_bus_stats;
void eb_bus_stats_get(eb_bus *bus, eb_bus_stats *out);
/* The stores' state: 0; EB_ENOSPC while one is out of space (writes are
 * refused with it, and it recovers by itself once space is freed);
 * EB_ECONNECT while its database is unreachable (the same, once it
 * answers again); or the error that broke one. *which names the store ("events", "meta"). */
int  eb_bus_storage_error(eb_bus *bus, const char **which);
/* Counters of one event type. */
typedef struct eb_bus_type_counts {
    uint64_t log;             /* in the events store (survives a restart) */
    uint64_t since_start;     /* appended by this process */
    uint64_t duplicates;      /* answered as duplicates, since start */
    uint64_t schema_rejected; /* refused by the type's schema, since start */
} eb_bus_type_counts;
/* By default at most this many types are counted by name (opts.max_types);
 * the rest fold into "_other". */
#define EB_BUS_DEFAULT_MAX_TYPES 1000
/* Calls fn with each event type's counters (borrowed for the call), then
 * "_other" if any type was folded. */
typedef void (*eb_bus_types_fn)(void *arg, const char *type, const eb_bus_type_counts *c);
void eb_bus_types_each(eb_bus *bus, eb_bus_types_fn fn, void *arg);

#endif
