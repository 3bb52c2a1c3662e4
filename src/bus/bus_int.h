/* bus_int.h - the bus's insides, shared by its files. Not for src/api.
 *
 * Who calls whom (no circle):
 *   bus.c      opening the stores (reporting every retained event to the
 *              store's lookups), registration, the meta replay's
 *              dispatch; calls groups.c, durable.c, codec.c
 *   publish.c  publishing; calls bus.c (the lookups), groups.c, delay.c,
 *              durable.c
 *   read.c     browsing, events by id, key streams (the store's lookups)
 *   groups.c   the group table and group commands, the timer, monitoring
 *              figures; calls pull.c, snapshot.c, durable.c, codec.c and the
 *              engine (group.h)
 *   pull.c     pulls and long polls; calls the engine
 *   snapshot.c meta snapshots; calls codec.c and durable.c
 *   lag.c      every group's lag counted in one walk at startup; calls the
 *              engine, match.c and lagwalk.c
 *   lagwalk.c  filtered groups' lag counted in slices per loop turn; calls
 *              the engine and match.c
 *   match.c    the type -> groups index (no calls)
 *   delay.c    delayed events: the due-time heap, releases, its meta
 *              records (through codec.c); calls groups.c and pull.c
 *   durable.c  completions of appends (writer thread -> loop) and the clock
 *   codec.c    every meta record's format and the snapshot's contents */
#ifndef EB_BUS_INT_H
#define EB_BUS_INT_H

#include <pthread.h>

#include "bus/bus.h"
#include "bus/codec.h"
#include "bus/dedupe.h"
#include "bus/group.h"
#include "bus/match.h"
#include "bus/meta.h"
#include "bus/tail.h"
#include "util/heap.h"
#include "util/hist.h"

/* An operation waiting for the log to make it durable. */
typedef struct pending_op pending_op;
struct pending_op {
    pending_op        *next;     /* in done_q or waiters */
    /* What to do when the append is durable (or failed: op->status). Runs
     * on the loop thread; the op is freed after it returns. */
    void             (*complete)(eb_bus *bus, pending_op *op);
    int                status;   /* set by the writer thread */
    uint64_t           wait_seq; /* for duplicate-only ops: durable past this */
    eb_bus_pub_cb      pub_cb;   /* publish completion, or NULL */
    eb_bus_done_cb     done_cb;  /* registration or group change completion */
    void              *arg;      /* caller's */
    eb_bus            *bus;      /* owner */
    void              *extra;    /* registration: the staged version */
    size_t             n;        /* results */
    eb_pub_result      res[];    /* one per published event */
};

/* A schema version staged until its meta record is durable. */
typedef struct staged_schema {
    char          *type;
    uint32_t       version;
    eb_compat_mode mode;
    char          *text;
    size_t         len;
    uint64_t       ts_us;
    eb_schema     *compiled;
} staged_schema;


/* A long-poll pull waiting for deliveries. */
typedef struct pull_waiter {
    struct pull_waiter *prev, *next;
    eb_group           *g;
    uint64_t            deadline_us;
    size_t              max;
    eb_bus_pull_cb      cb;
    eb_bus_alive_fn     alive;
    void               *arg;
    size_t              clen;
    char                consumer[];
} pull_waiter;

#define EB_PULL_MAX 1000 /* deliveries one pull may lease */

/* Consumer groups and monitoring state (groups.c, pull.c). */
typedef struct eb_bus_groups {
    eb_map        by_name;     /* name -> eb_group */
    eb_matcher    matcher;     /* event type -> the groups that want it */
    eb_imap       armed;       /* group pointer -> its node in due (groups.c) */
    eb_heap       due;         /* armed groups by when the timer must visit them */
    uint64_t      last_full_tick; /* every group visited (once a second) */
    uv_timer_t    timer;       /* leases, retries, waiters, snapshots */
    eb_outbox     ob;          /* records of the operation being made */
    eb_delivery  *dl;          /* scratch: one pull's deliveries */
    size_t        dl_cap;
    eb_buf        dl_events;   /* scratch: their events, back to back */
    eb_reccache   cache;       /* records read for deliveries (eb_group_env.cache) */
    pull_waiter  *waiters;     /* long polls, oldest first */
    pull_waiter  *waiters_tail;
    uint64_t      in_flight;     /* leases, all groups (eb_group_env.leases) */
    eb_hist       publish_hist;  /* request to durable answer */
    eb_hist       delivery_hist; /* append to ack */
    uint64_t      snap_bytes;    /* meta log size after the last snapshot */
    uint64_t      snap_next;     /* meta next seq after the last snapshot (a size can
                                    lag: PostgreSQL grows by pages) */
    uint64_t      last_snap_check;
    bool          snapshotting;  /* a snapshot is being made durable */
    eb_buf        dl_text;       /* dead-letter notices to publish: "[{..},{..}" */
    size_t        dl_n;          /* notices in dl_text */
    uint64_t      dl_failed;     /* notices that could not be published */
    eb_map        history;       /* name -> per-group sample ring (history.c) */
    uint64_t      history_next_us; /* when the next samples are due */
    uint64_t      gen;           /* counts changes of the type -> groups index */
} eb_bus_groups;

/* delay.c: delayed events waiting for their time (see there). */
typedef struct release_op release_op;
typedef struct eb_bus_delay {
    eb_delay_ent *h;           /* min-heap on (due, seq) */
    size_t        n, cap;
    eb_map        tid_of;      /* type -> its index + 1 */
    char        **tname;       /* by index */
    uint64_t     *tcount;      /* pending events of each type */
    size_t        nt, tcap;
    uint64_t      w_due, w_seq; /* released up to (inclusive) */
    uint64_t      upto;        /* replay: delayed records below are listed */
    release_op   *rq_head, *rq_tail; /* releases in flight, in append order */
    size_t        rq_ops, rq_events;
    uint64_t      retry_us;    /* after a failed release: not before this */
    bool          loading;     /* the meta replay: entries appended, heapified once */
    uv_timer_t    timer;       /* for the earliest entry only */
    uint64_t      timer_due;   /* what it is armed for (0: not armed) */
    uint64_t      released, expired;
    eb_imap       per_group;   /* group pointer -> pending of its types */
    bool          dirty;       /* per_group must be counted again */
    uint64_t      groups_gen;  /* eb_bus_groups.gen it was counted at */
    eb_buf        rec;         /* scratch: one meta record */
    eb_buf        copies;      /* scratch: one release's records */
    eb_store_rec_in *recs;     /* RELEASE_MAX */
    size_t       *offs;        /* RELEASE_MAX */
    struct want  *wants;       /* RELEASE_MAX: one release's records by seq */
    size_t       *roff, *rlen; /* RELEASE_MAX: where each is in raw */
    eb_buf        raw;         /* scratch: the records read */
    eb_delay_ent  scratch[64];
} eb_bus_delay;
void     eb__bus_delay_init(eb_bus *bus);
/* After the meta replay: the scan from the listed point, the timer. */
int      eb__bus_delay_start(eb_bus *bus);
void     eb__bus_delay_close(eb_bus *bus); /* stops and closes the timer */
void     eb__bus_delay_free(eb_bus *bus);
/* Resolves ev's deliver_at/delay into ev->deliver_us (0: now). EB_EINVAL
 * (bad value, both, too far ahead) or EB_ERANGE (--max-delayed reached)
 * with *err naming the field. */
int      eb__bus_delay_due(eb_bus *bus, eb_event_in *ev, uint64_t now, size_t *batch,
                           eb_field_error *err); /* *batch: delayed ones so far in the request */
/* After an append: schedules the delayed ones and lists them in the meta store. */
void     eb__bus_delay_published(eb_bus *bus, const eb_event_in *evs, const eb_pub_result *res,
                                 size_t n);
/* A publish failed (nothing written, its seqs handed out again): its
 * delayed events in [lo, hi) leave the heap (their meta record, if durable,
 * is harmless: a listed seq is checked against its record when due). */
void     eb__bus_delay_unpublished(eb_bus *bus, uint64_t lo, uint64_t hi);
int      eb__bus_delay_apply(eb_bus *bus, const eb_json *rec); /* EB_META_DELAY at replay */
void     eb__bus_delay_reset(eb_bus *bus);                     /* EB_META_SNAP at replay */
int      eb__bus_delay_snapshot(eb_bus *bus, eb_outbox *ob);
bool     eb__bus_delay_pending(const eb_bus *bus);
uint64_t eb__bus_delay_for_group(eb_bus *bus, const eb_group *g);
void     eb__bus_delay_stats(eb_bus *bus, eb_bus_stats *out);

/* The events store record rec as an event a reader sees (browse, get, key
 * streams, the lookups): an event or a delayed event, not the copy a
 * delayed event becomes when due (groups deliver that one). */
static inline bool eb__bus_public_event(const eb_store_rec *rec, eb_event_view *v)
{
    return (rec->type == EB_REC_EVENT || rec->type == EB_REC_DELAYED) &&
           eb_event_decode(rec->data, rec->len, v) == 0 && v->origin_seq == 0;
}

/* counts.c: event counters (see eb_bus_stats, eb_bus_type_counts). */
typedef struct eb_bus_counts {
    eb_map             by_type;   /* type -> eb_bus_type_counts* (bounded) */
    eb_bus_type_counts other;     /* types past max_types */
    size_t             max_types; /* types counted by name (opts.max_types) */
    uint64_t           folded_events;
    uint64_t           log, since_start, duplicates, schema_rejected;
} eb_bus_counts;
void eb__bus_counts_init(eb_bus_counts *c, size_t max_types);
void eb__bus_counts_free(eb_bus_counts *c);
int  eb__bus_count_log(eb_bus *bus);
void eb__bus_tail_restart(eb_bus *bus);
/* Drops the tail's chunks the store counts by now (the timer, once a second). */
void eb__bus_tail_tidy(eb_bus *bus);
/* Counts the events by type with from <= seq < to: fn(arg, type, len, n),
 * possibly several times for one type (the counts add up). What the events
 * store counts itself (eb_store_type_counts: whole sealed segments in the
 * log engine) is not read; the rest is walked and decoded (counts.c). */
typedef void (*eb_bus_type_count_fn)(void *arg, const char *type, size_t len, uint64_t n);
int  eb__bus_count_types(eb_bus *bus, uint64_t from, uint64_t to, eb_bus_type_count_fn fn,
                         void *arg);
int  eb__bus_walk_events(eb_bus *bus, uint64_t from, eb_store_scan_cb fn, void *arg);
/* The same for the records in [from, stop) only. */
int  eb__bus_walk_range(eb_bus *bus, uint64_t from, uint64_t stop, eb_store_scan_cb fn,
                        void *arg);
void eb__bus_count_published(eb_bus *bus, const char *type, size_t n);
void eb__bus_count_duplicate(eb_bus *bus, const char *type, size_t n);
void eb__bus_count_rejected(eb_bus *bus, const char *type, size_t n);

/* lagwalk.c: the lag of groups with a filter, counted off the request
 * path, in slices of at most opts.lag_walk_records per loop turn. A group
 * is in g exactly while eb_group_counting(g). */
typedef struct eb_lagwalk {
    eb_group **g;        /* the groups being counted (at most max_groups) */
    size_t     n, cap;
    uv_idle_t  idle;     /* one slice per loop turn while running */
    bool       running;
    uint64_t   pos;      /* the lap's position: groups behind it wait */
    uint64_t   reads, turns, laps; /* since open (eb_bus_stats) */
} eb_lagwalk;
int  eb__lagwalk_init(eb_bus *bus);
/* Stops the walk, forgets its groups (not freed) and closes the handle. */
void eb__lagwalk_close(eb_bus *bus);
/* Counts g's lag anew by the walk (created, config changed, restart,
 * recount); at once if there is nothing to read. */
void eb__lagwalk_add(eb_bus *bus, eb_group *g);
/* g leaves the walk (deleted, or no filter any more); its count is 0. */
void eb__lagwalk_remove(eb_bus *bus, eb_group *g);
/* Resumes a walk that waited for appends to be durable (the timer). */
void eb__lagwalk_kick(eb_bus *bus);
void eb__lagwalk_turn(uv_idle_t *h);
void eb__lagwalk_stats(const eb_bus *bus, eb_bus_stats *out);

struct eb_bus {
    uv_loop_t      *loop;     /* the loop everything runs on */
    eb_bus_opts     opts;     /* copy; data_dir owned */
    eb_store       *events;   /* the events store */
    eb_meta        *meta;     /* the bus's own state store */
    eb_registry     reg;      /* schema registry */
    eb_dedupe       dedupe;   /* idempotent publish window */
    uint64_t        lookup_reads; /* records read by key-stream and id lookups */
    uint64_t        count_reads;  /* records read to count lag and types (eb_bus_count_reads) */
    uint64_t        lookups_lost; /* lookup entries the store could not make */
    uv_async_t      async;    /* wakes the loop for done_q */
    pthread_mutex_t done_mu;  /* guards done_q */
    pending_op     *done_q;   /* completed ops, newest first */
    pending_op     *waiters;  /* duplicate-only ops waiting for durability */
    eb_buf          enc;      /* scratch: encoded events of one publish */
    eb_store_rec_in  *recs;     /* scratch: records of one publish */
    size_t         *offs;     /* scratch: each record's offset in enc */
    size_t          recs_cap; /* allocated, both arrays */
    uint32_t       *bidx;     /* scratch: the batch's two hash indexes (publish.c) */
    size_t          bidx_cap; /* slots of each, a power of two >= 2 x batch */
    eb_schema_errors verrs;   /* scratch: schema violations of one event */
    eb_json_doc    *scratch_doc; /* scratch for replays and lookups */
    int             closing;  /* eb_bus_close started */
    eb_bus_groups   grp;      /* consumer groups */
    eb_bus_delay    delay;    /* delayed events (delay.c) */
    eb_map          tokens;   /* API tokens: name -> eb_token (tokens.c) */
    eb_map          token_hash; /* hash (32 bytes) -> eb_token */
    eb_bus_counts   counts;   /* event counters (counts.c) */
    eb_tail         tail;     /* counts by type of the log's tail (tail.h) */
    int             handles;  /* libuv handles still open (freed at 0) */
    size_t          schemas_pending;  /* registrations being made durable */
    int             storage_err;      /* last seen eb_bus_storage_error (health.c) */
    uint64_t        storage_since_us; /* when it changed */
    unsigned        storage_ticks;    /* timer ticks since the last look */
    eb_group_observer_fn observer;    /* push delivery hooks (groups.c) */
    void           *observer_arg;
    eb_push_state_fn push_state;
    void           *push_state_arg;
    eb_lagwalk      lagwalk;  /* filtered groups' lag, off the request path */
};

/* bus.c: a libuv handle of the bus closed (the last one frees the bus). */
void eb__bus_handle_closed(uv_handle_t *h);
/* bus.c: completes duplicate-only publishes whose originals are durable
 * now (all of them with status when it is non-zero). */
void eb__bus_release_waiters(eb_bus *bus, int status);
/* bus.c: enters an appended event into the store's key and id lookups
 * (publish.c after an append, bus.c's rebuild at open). */
void eb__bus_index_event(eb_bus *bus, eb_str key, uint64_t key_version, eb_str source, eb_str id,
                         uint64_t seq);

/* durable.c */
uint64_t eb__bus_now_us(void);
/* Runs on a log writer thread: queues op for the loop and wakes it. */
void eb__bus_on_durable(void *arg, int status);
/* Runs op->complete and frees op (loop thread). */
void eb__bus_complete(eb_bus *bus, pending_op *op);
/* Completes every op the writer threads queued, in order; returns the last
 * non-zero status seen (0 if all succeeded). */
int  eb__bus_drain(eb_bus *bus);

/* health.c: on the timer, notices and logs a change of the stores' state. */
void eb__bus_check_storage(eb_bus *bus);

/* groups.c */
int  eb__bus_groups_init(eb_bus *bus);
/* Counts every group's lag again from the events store. */
void eb__bus_groups_recount(eb_bus *bus);
/* After both logs are open and the meta log replayed. */
int  eb__bus_groups_start(eb_bus *bus);
/* Answers waiting pulls, stops the timer (the caller closes its handle)
 * and frees the groups. */
void eb__bus_groups_close(eb_bus *bus);
/* Applies one group meta record at startup. */
int  eb__bus_groups_apply(eb_bus *bus, uint16_t kind, const eb_json *rec);
/* A snapshot record was read: forget every group. */
void eb__bus_groups_reset(eb_bus *bus);
void eb__bus_groups_published(eb_bus *bus, const eb_event_in *evs, const eb_pub_result *res,
                              size_t n);
/* A delayed event's due copy was appended: counted for the groups it matches. */
void eb__bus_groups_released(eb_bus *bus, const eb_event_view *v, uint64_t seq);
/* What the groups' filters look at in a stored event, parsed into the
 * bus's scratch document (valid until its next use); false if its JSON
 * cannot be read (a filter then lets it pass). */
bool eb__bus_filter_event(eb_bus *bus, const eb_event_view *v, eb_filter_event *fe);

/* Makes the timer visit g at the next tick, then when its next lease or
 * retry falls due (groups.c). */
void eb__bus_group_arm(eb_bus *bus, eb_group *g);

/* The group table (groups.c owns it). */
static inline eb_group *eb__bus_group(eb_bus *bus, const char *name, size_t n)
{
    return eb_map_get(&bus->grp.by_name, name, n);
}
/* Iterates the groups: start with *it = 0; NULL at the end. */
static inline eb_group *eb__bus_group_next(eb_bus *bus, size_t *it)
{
    const eb_map_slot *s = eb_map_next(&bus->grp.by_name, it);
    return s ? s->val : NULL;
}

/* tokens.c */
/* Applies a token record at startup (EB_META_TOKEN or EB_META_TOKEN_DEL). */
int  eb__bus_tokens_apply(eb_bus *bus, uint16_t kind, const eb_json *rec);
/* Forgets every token (a snapshot record was read; closing). */
void eb__bus_tokens_reset(eb_bus *bus);
/* lag.c */
/* Sets every group's count of matching events ahead of its cursor, in one
 * walk of the events store up to head (at startup). */
int  eb__bus_count_lags(eb_bus *bus, uint64_t head);
/* lag.c: counts one group's lag (created, or its config changed) from the
 * counts by type, without walking the log (but for a content filter). */
int  eb__bus_count_group(eb_bus *bus, eb_group *g, uint64_t head);
/* lag.c: eb_group_env.count_matching (arg = the bus): a replay's range
 * counted by type, without reading it (false for a group with a filter). */
bool eb__bus_count_matching(void *arg, eb_group *g, uint64_t from, uint64_t to, char **types,
                            size_t ntypes, uint64_t *n);

/* history.c */
/* Samples every group when due (called by the timer). */
void eb__bus_history_tick(eb_bus *bus, uint64_t now);
/* A group was deleted: its history goes (a new one of the name starts afresh). */
void eb__bus_history_forget(eb_bus *bus, const char *name, size_t n);
void eb__bus_history_free(eb_bus *bus);

/* snapshot.c */
/* Notes the meta store's size at startup (the growth is counted from it). */
void eb__bus_snapshot_start(eb_bus *bus);
/* Writes a snapshot if the meta store grew enough (checked once a second). */
void eb__bus_maybe_snapshot(eb_bus *bus, uint64_t now);
/* At a clean stop: writes a snapshot if the meta store grew since the last
 * one (the stores' close makes it durable). */
void eb__bus_snapshot_at_close(eb_bus *bus);

/* pull.c */
/* Serves the waiting pulls that can be served now or waited long enough. */
void eb__bus_pulls_wake(eb_bus *bus);

/* dead_stream.c: the eventbus.dead_letter events. The group env's
 * on_dead_letter (arg = the bus) notes one; publish sends what was noted
 * (after a commit: never from inside the engine). */
void eb__bus_dead_lettered(void *arg, const char *group, const eb_dead_letter *dl);
void eb__bus_dead_letters_publish(eb_bus *bus);
/* Answers the waiting pulls of g (all when g is NULL) with status. */
void eb__bus_pulls_answer(eb_bus *bus, eb_group *g, int status);

#endif
