/* group.h - consumer groups: subscriptions held by the server, pull
 * delivery with leases, ack/nack/extend, retries with backoff, dead letters,
 * redrive, replay and per-key ordering. The engine is memory only and runs
 * on the loop thread; it reads events from the events log and describes
 * every state change that must survive a crash as a meta record in its
 * outbox, which the bus (groups.c) appends before answering.
 *
 * Model, per group:
 *
 *   events log:  ... base ........ cursor ................ durable head
 *                     |  pending    |  not yet examined (`ahead` matches)
 *
 *   - A flow walks the events log: the main flow from `base` forever, each
 *     replay from its `from` to its `to`. Examining a record whose type
 *     matches creates a delivery (eb_dlv) unless the flow's `done` set
 *     (acked or dead-lettered seqs) holds it. Flows fill lazily: only as
 *     far as pulls need, and never past EB_GROUP_MAX_PENDING deliveries.
 *   - A pull leases READY deliveries (INFLIGHT until a deadline); ack
 *     finishes one; nack or a missed deadline is a failed attempt: RETRY
 *     after the backoff (or the nack's delay), then READY again; after
 *     max_attempts the event moves to the dead-letter queue, which keeps a
 *     copy of the stored event (so retention cannot take it).
 *   - ordering "key": one delivery per key is active (READY, INFLIGHT or
 *     RETRY); later ones wait (BLOCKED) in publish order.
 *   - Redrive turns dead letters back into deliveries (class 'd') with
 *     fresh attempts.
 *
 * Delivery ids are "<class><seq>.<attempt>", class m (main), r (replay) or
 * d (redriven dead letter); an ack naming an older attempt is stale.
 */
#ifndef EB_BUS_GROUP_H
#define EB_BUS_GROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bus/event.h"
#include "bus/group_types.h"
#include "bus/outbox.h"
#include "bus/reccache.h"
#include "json/json.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/imap.h"
#include "util/map.h"
#include "util/rangeset.h"

#define EB_GROUP_MAX_PENDING 100000 /* deliveries held in memory per group */

/* --- meta records (stable: on disk in DATA/meta) --------------------------
 * Payloads are compact JSON; "g" names the group. */
enum {
    EB_META_GROUP = 32,    /* {"g","cfg":{..},"base":seq,"paused":b} create/update */
    EB_META_GROUP_DEL,     /* {"g"} */
    EB_META_GROUP_PAUSE,   /* {"g","paused":b} */
    EB_META_ACK,           /* {"g","m":[[a,b],..],"r":[[a,b],..],"d":[seq,..]} */
    EB_META_FAIL,          /* {"g","f":[[cls,seq,fails,due_us,"err"],..]} failed attempts */
    EB_META_DEAD,          /* {"g","c":cls,"s","t","n","e","who","at","p":base64} */
    EB_META_REDRIVE,       /* {"g","s":[seq,..]} */
    EB_META_PURGE,         /* {"g","s":[seq,..]} */
    EB_META_REPLAY,        /* {"g","id","from","to","types":[..]|null} */
    EB_META_DONE,          /* {"g","flow":id,"r":[[a,b],..]} snapshot of a flow's done set */
    EB_META_SNAP,          /* {} a snapshot starts: forget all state */
    EB_META_LEASE = 43,    /* {"g","l":[[cls,first,n,attempt,deadline_us],..]} leases given */
};

typedef struct eb_group eb_group;
typedef struct eb_dlv eb_dlv;

/* Reads the events a group needs (borrowed, must outlive the group). */
typedef struct eb_group_env {
    eb_store *events;
    uint64_t (*now_us)(void);
    /* Called with each acked event's append-to-ack latency (µs). */
    void    (*on_latency)(void *arg, uint64_t us);
    void     *arg;
    uint64_t *leases;     /* leases of every group (shared, the bus's) */
    uint64_t  max_leases; /* pulls lease nothing more past it */
    /* Called when a delivery is dead-lettered (dl borrowed during the call;
     * not during the meta replay). May be NULL. */
    void    (*on_dead_letter)(void *arg, const char *group, const eb_dead_letter *dl);
    /* The recent-records cache shared by every group (the bus's): a
     * delivery keeps its event's position there, not a copy. */
    eb_reccache *cache;
    /* Records read to count lag (shared, the bus's: eb_bus_count_reads);
     * NULL: not counted. */
    uint64_t *count_reads;
    /* The main flow's cursor jumped past events retention removed: the
     * group's lag must be counted again (the bus: from the counts by type,
     * or by its walk off the request path for a filter). NULL: the engine
     * walks [cursor, durable) itself. */
    void (*recount)(void *arg, eb_group *g);
    /* Counts the events of [from, to) that g's config and `types` (when
     * ntypes) match without reading them (the bus: the counts by type,
     * lag.c) into *n; false when it cannot (a filter looks at each event:
     * the engine reads the range). NULL: the engine reads it. */
    bool (*count_matching)(void *arg, eb_group *g, uint64_t from, uint64_t to, char **types,
                           size_t ntypes, uint64_t *n);
} eb_group_env;

/* Creates a group at `base` (the first seq it will consider). Takes cfg's
 * strings (cfg is left empty). Owned by the caller (eb_group_free). */
eb_group *eb_group_new(const char *name, eb_group_cfg *cfg, uint64_t base,
                       const eb_group_env *env);
void eb_group_free(eb_group *g);
const char *eb_group_name(const eb_group *g);
const eb_group_cfg *eb_group_config(const eb_group *g);
uint64_t eb_group_base(const eb_group *g);
/* Replaces the config (types change what the main flow matches from its
 * cursor on); takes cfg's strings. */
void eb_group_set_config(eb_group *g, eb_group_cfg *cfg);
void eb_group_set_paused(eb_group *g, bool paused);
bool eb_group_paused(const eb_group *g);
/* Fills *out from g (no change to g); out's strings are borrowed from g. */
void eb_group_info_get(const eb_group *g, eb_group_info *out);
/* When matching events wait but none has been examined yet, examines the
 * next so that eb_group_info_get can tell the oldest unacked one's age. */
void eb_group_examine_next(eb_group *g, uint64_t durable);

/* Counts the matching events between the main cursor and `head` (called
 * after open and after a config change) and adds those published later
 * (eb_group_published). */
int  eb_group_count_ahead(eb_group *g, uint64_t head);
/* The same when the caller counted: `matching` events of g's types lie in
 * [eb_group_cursor(g), head) (the bus counts every group in one walk at
 * startup); those finished already (acked out of order) are taken off. */
void eb_group_set_ahead(eb_group *g, uint64_t matching, uint64_t head);
/* The same, taking off only the finished seqs above the cursor that the
 * config matches now (each read: a change of the group's config). */
void eb_group_set_ahead_exact(eb_group *g, uint64_t matching, uint64_t head);
/* For a caller that walks the log itself (lag.c: one walk for every group
 * with a filter at startup): whether g's lag counts event seq of this type
 * if its filter passes (past the cursor, of its types, not finished), and
 * the count found. */
bool eb_group_counts_seq(const eb_group *g, uint64_t seq, eb_str type);
void eb_group_set_counted(eb_group *g, uint64_t ahead);
/* Counting off the request path (lagwalk.c walks the log in slices while
 * the group serves): begin forgets g's count and counts [cursor, to) anew
 * (to: the events store's next seq; what is appended from there on is
 * counted by eb_group_published); the walk hands each event it read to
 * eb_group_count_seen in seq order, then says how far it got with
 * eb_group_count_moved; end adds what it found. A pull that examines an
 * event below `to` meanwhile takes it off the walk's count if the walk
 * counted it, and the walk skips it if it had not reached it yet, so
 * nothing is counted twice or missed. eb_group_counting: not finished
 * (its lag is then a lower bound); stop abandons the count (ahead 0). */
void eb_group_count_begin(eb_group *g, uint64_t to);
bool eb_group_counting(const eb_group *g);
uint64_t eb_group_count_next(const eb_group *g);
uint64_t eb_group_count_to(const eb_group *g);
/* Event seq (of this type; fe: what its filter looks at, NULL if the
 * event's JSON could not be read: counted) was read by the walk. */
void eb_group_count_seen(eb_group *g, uint64_t seq, eb_str type, const eb_filter_event *fe);
/* The walk read every record below `upto`; true when g's count is
 * complete (then ended: lag exact). */
bool eb_group_count_moved(eb_group *g, uint64_t upto);
void eb_group_count_stop(eb_group *g);
/* The main flow's next seq to examine. */
uint64_t eb_group_cursor(const eb_group *g);
/* After the meta replay: turns redriven dead letters back into deliveries. */
void eb_group_loaded(eb_group *g);
/* When the server is ready to serve (after the meta replay and the lag
 * count): the rate_limit bucket starts empty and refills from now. The
 * bucket is memory only and a crash may have come just after it was
 * drained, so starting empty keeps the bound (at most rate x t + one
 * second's worth over any t) across restarts and SIGKILL, writing nothing. */
void eb_group_bucket_start(eb_group *g, uint64_t now);
/* count events of g's types were published (the bus finds the groups a
 * type matches through its index, match.h); fe (may be NULL: counted as
 * passing) is what the group's filter looks at, for a group that has one. */
void eb_group_published(eb_group *g, uint64_t count, const eb_filter_event *fe);
/* True if g has a filter (its events are counted one by one). */
bool eb_group_has_filter(const eb_group *g);

/* True if a pull could be served now (READY deliveries or events to
 * examine below `durable`). */
bool eb_group_has_ready(eb_group *g, uint64_t durable);

/* Leases up to max READY deliveries to `consumer`, describing each in
 * out[0..max) and the lease end in *deadline_us. The events are copied into
 * `events` (the caller's scratch, reset here), read from the cache or the
 * events store: out[i].event points into it, valid until the next engine
 * call. A delivery whose event retention removed before it was leased is
 * skipped (counted in retention_skipped). Returns the count. */
size_t eb_group_pull(eb_group *g, const char *consumer, size_t clen, size_t max,
                     uint64_t durable, eb_delivery *out, uint64_t *deadline_us, eb_buf *events);

/* Outcome of one id in ack/nack/extend. */
typedef enum { EB_DLV_OK = 0, EB_DLV_UNKNOWN } eb_dlv_outcome;

/* ack, nack and extend each take one delivery id and write the records of
 * what they will do (gathered for eb_group_flush; a dead letter's into ob
 * at once), but change nothing yet: the delivery stays in flight to its
 * holder, off the timer, and its id is "unknown" to another settle, until
 * eb_group_settled says whether the records were made durable. *key names
 * the settle there. */
eb_dlv_outcome eb_group_ack(eb_group *g, const char *id, size_t n, uint64_t *key);
/* nack with dead_letter: a non-retryable failure, dead-lettered at once. */
eb_dlv_outcome eb_group_nack(eb_group *g, const char *id, size_t n, const char *err,
                             int64_t delay_ms, bool dead_letter, eb_outbox *ob, uint64_t *key);
eb_dlv_outcome eb_group_extend(eb_group *g, const char *id, size_t n, uint32_t ms,
                               uint64_t *key);
/* The records of settles keys[0..n) are durable: the settles are applied
 * as written; or they failed (durable false): each delivery is in flight
 * as before (its lease written again with the next records), so the
 * holder may settle it again. */
void eb_group_settled(eb_group *g, const uint64_t *keys, size_t n, bool durable);
/* Unique among the groups of this process: a group deleted and made again
 * under its name is another one. */
uint64_t eb_group_uid(const eb_group *g);
/* Writes the acks and failed attempts gathered since the last flush as
 * EB_META_ACK / EB_META_FAIL records (nothing if none). */
int  eb_group_flush(eb_group *g, eb_outbox *ob);
/* Expires leases and retry delays due by now; failures go to ob. */
void eb_group_tick(eb_group *g, eb_outbox *ob);
/* True if eb_group_tick or eb_group_flush has work at `now` (a lease or
 * retry due, finished seqs to trim, replay flows, a consumer sweep due,
 * gathered records): the timer skips idle groups at this O(1) cost. */
bool eb_group_due(const eb_group *g, uint64_t now);
/* When g's next lease or retry falls due (µs), 0 if none. */
uint64_t eb_group_next_due(const eb_group *g);
/* Calls fn for each consumer seen (borrowed views, during the call). */
void eb_group_consumers_each(const eb_group *g, eb_consumer_fn fn, void *arg);

/* --- dead letters, redrive, replay ----------------------------------------- */

/* Calls fn for up to limit dead letters with seq > after (borrowed views,
 * during the call); *next is the cursor for the next page (0 if none). */
void eb_group_dlq_list(const eb_group *g, uint64_t after, size_t limit, eb_dead_letter_fn fn,
                       void *arg, uint64_t *next);
/* Redrives the dead letters with the given event ids (all when n == 0). */
size_t eb_group_dlq_redrive(eb_group *g, const eb_str *ids, size_t n, eb_outbox *ob);
size_t eb_group_dlq_purge(eb_group *g, const eb_str *ids, size_t n, eb_outbox *ob);

/* Queues again the events of [from, to) matching the group (and `types`
 * when given); *requeued counts them, *expired counts the seqs of the
 * range already removed by retention. With ob NULL only counts (a dry run). */
void eb_group_replay(eb_group *g, uint64_t from, uint64_t to, char **types, size_t ntypes,
                     uint64_t *requeued, uint64_t *expired, eb_outbox *ob);

/* --- meta replay at startup ------------------------------------------------ */

/* Applies one group-level meta record (ACK, FAIL, DEAD, REDRIVE, PURGE,
 * REPLAY, DONE) to g. */
int  eb_group_apply(eb_group *g, uint16_t kind, const eb_json *rec);
/* Writes g's whole state as meta records (for a snapshot), the pending
 * settles' records after it. */
int  eb_group_snapshot(eb_group *g, eb_outbox *ob);

#endif
