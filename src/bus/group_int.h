/* group_int.h - the consumer-group engine's insides, shared by its files.
 * Not for use outside src/bus/group*.c and src/bus/codec.c.
 *
 * The engine is split by job:
 *   group.c        the group: lifecycle, pulls, the timer tick, consumers,
 *                  info
 *   group_settle.c ack, nack, extend: applied once their records are
 *                  durable; failed attempts
 *   group_dlq.c    the dead-letter queue: dead-lettering, paging, redrive,
 *                  purge
 *   group_flow.c   flows: filling deliveries from the events store,
 *                  counting matches, replay
 *   group_dlv.c    deliveries: states and per-key ordering
 *   group_load.c   the meta replay at startup (applies decoded records)
 *   codec.c        every meta record's format (encode and decode) and
 *                  snapshots: the one owner of the meta-record formats
 *   outbox.c       the records a change produces, waiting to be appended
 *
 * Memory only, loop thread only. Deliveries live in one hash map per class
 * (main, replay, redriven dead letter) keyed by seq, in a FIFO while READY,
 * in a timer heap (util/heap) while INFLIGHT (deadline) or RETRY (due), and
 * in a per-class list in creation order (its head is the oldest unacked). */
#ifndef EB_BUS_GROUP_INT_H
#define EB_BUS_GROUP_INT_H

#include <stddef.h>

#include "bus/group.h"
#include "util/heap.h"
#include "util/xmalloc.h"

enum { CLS_MAIN = 0, CLS_REPLAY = 1, CLS_DLQ = 2, NCLS = 3 };
/* The class letters of delivery ids and meta records: 'm', 'r', 'd'. */
extern const char eb__cls_char[NCLS];

typedef enum eb_dlv_state {
    EB_DLV_READY = 0, /* waiting for a pull */
    EB_DLV_INFLIGHT,  /* leased to a consumer until `tm.key` */
    EB_DLV_RETRY,     /* failed; READY again at `tm.key` */
    EB_DLV_BLOCKED    /* ordering=key: waits for an earlier event of its key */
} eb_dlv_state;

/* Per ordering key: the active delivery and the ones waiting behind it. */
typedef struct keyq {
    eb_dlv *active;
    eb_dlv *head, *tail; /* BLOCKED, in publish order (via dlv->next) */
    size_t  klen;
    char    key[];
} keyq;

/* A walk over the events store: the main flow or one replay. */
typedef struct flow {
    uint64_t     id;       /* 0 = main; replay id otherwise */
    uint64_t     from, to; /* range (main: base, UINT64_MAX) */
    uint64_t     cursor;   /* next seq to examine */
    char       **types;    /* replay subset; NULL = the group's types */
    size_t       ntypes;
    eb_rangeset  done;     /* seqs finished (acked or dead-lettered) */
    size_t       live;     /* deliveries alive from this flow */
    uint64_t     backlog;  /* replays: matching seqs in [cursor, to) not done (in lag) */
    struct flow *next;
} flow;

/* The last few failed attempts of a delivery or dead letter (strings
 * owned), and when the first failed. */
#define EB_FAIL_HISTORY 5
typedef struct failhist {
    uint64_t   first_us;
    uint32_t   n;
    eb_failure v[EB_FAIL_HISTORY]; /* oldest first */
} failhist;

/* A dead letter, with a copy of the stored event. */
typedef struct dead {
    uint64_t seq, ts_us, failed_at;
    uint32_t attempts;
    failhist *fh;      /* NULL when read from a record written before histories */
    bool     redriven; /* delivered again (class d) until acked */
    char    *error, *consumer;
    char     id[EB_EVENT_MAX_ID + 1]; /* event id */
    uint32_t len;
    char    *payload;
} dead;

typedef struct eb_consumer {
    uint64_t last_pull_us;
    uint32_t in_flight;
    char     name[];
} eb_consumer;

struct eb_dlv {
    uint64_t     seq, ts_us;
    eb_heap_node tm;       /* key: INFLIGHT deadline; RETRY/BLOCKED due (µs) */
    uint32_t     attempt;  /* deliveries made */
    uint32_t     fails;    /* failed attempts */
    uint8_t      state;    /* eb_dlv_state */
    uint8_t      cls;
    uint8_t      inherited; /* a lease read back (tm.key its deadline): admitted in flight */
    eb_dlv      *next;     /* ready FIFO or key wait list */
    eb_dlv      *lprev, *lnext; /* live list of its class */
    keyq        *kq;
    flow        *fl;
    dead        *dl;       /* class d: its dead letter (owns the payload) */
    eb_consumer *consumer;
    char        *last_error;
    failhist    *fh;       /* NULL until it fails */
    uint32_t     len;      /* its event's bytes */
    uint64_t     cpos;     /* class m and r: its event in env.cache (no copy) */
    char        *payload;  /* class d only: the dead letter's copy (borrowed) */
};

static inline eb_dlv *eb__dlv_of(eb_heap_node *n)
{
    return (eb_dlv *)(void *)((char *)n - offsetof(eb_dlv, tm));
}

/* Failed attempts read by the meta replay, for deliveries not yet made. */
typedef struct failinfo {
    uint32_t  fails;
    uint64_t  due;
    char     *error;
    failhist *fh;
    uint32_t  lease_att;   /* a lease read back: its attempt and deadline (0: none) */
    uint64_t  lease_until;
} failinfo;

/* Leases gathered for the next EB_META_LEASE record: runs of consecutive
 * seqs of one class with one attempt and deadline. */
typedef struct lease_run {
    uint64_t first, n, deadline;
    uint32_t attempt;
    int      cls;
} lease_run;

struct eb_group {
    char          *name;
    eb_group_cfg   cfg;
    eb_group_env   env;
    bool           paused;
    flow           main;
    flow          *replays;
    uint64_t       next_replay_id;
    eb_imap        dlvs[NCLS];     /* seq -> eb_dlv */
    eb_dlv        *lhead[NCLS], *ltail[NCLS];
    eb_dlv        *rq_head, *rq_tail; /* READY FIFO */
    eb_heap        timers;         /* INFLIGHT and RETRY deliveries */
    eb_map         keys[2];        /* main / replay: key -> keyq */
    eb_imap        dlq;            /* seq -> dead */
    eb_map         dlq_ids;        /* event id -> dead */
    uint64_t      *dlq_seqs;       /* sorted, for paging */
    size_t         ndlq, dlq_cap;
    size_t         ndead;          /* not redriven */
    eb_map         consumers;      /* name -> eb_consumer */
    eb_imap        fails;          /* (cls<<62|seq) -> failinfo, from meta replay */
    eb_imap        pend;           /* (cls<<62|seq) -> a settle not durable yet
                                    * (group_settle.c) */
    uint64_t       uid;            /* unique among the groups of the process */
    uint64_t       ahead;          /* matching events past the main cursor */
    /* The lag of a group with a filter, counted off the request path
     * (lagwalk.c): while `on`, ahead holds only what was published at or
     * after `to`, and n the matching events the walk found in [cursor,
     * next) that the main flow has not examined yet. */
    struct { bool on; uint64_t to, next, n; } cnt;
    size_t         live, ready, in_flight, retry, blocked;
    eb_rangeset    ack_m, ack_r;   /* gathered acks for the next flush */
    eb_buf         ack_d;          /* gathered class-d acks: "seq,seq" */
    eb_buf         fail_items;     /* gathered FAIL entries: "[..],[..]" */
    eb_buf         lease_items;    /* gathered LEASE runs: "[..],[..]" */
    lease_run      lrun;           /* the run being gathered (n = 0: none) */
    eb_group_counters ctr;
    uint64_t       rng;
    uint64_t       last_sweep_us;  /* consumers table last swept */
    eb_json_doc   *fdoc;           /* scratch: an event parsed for the filter */
    double         tokens;         /* rate_limit's bucket (memory only: empty at
                                    * a server start, full at a group's creation) */
    uint64_t       refill_us;      /* when tokens was last topped up; 0: full */
};

static inline uint64_t eb__fail_key(int cls, uint64_t seq)
{
    return (uint64_t)cls << 62 | seq;
}

/* The lowest seq the main flow may still need: below it all is finished. */
static inline uint64_t eb__group_floor(const eb_group *g)
{
    uint64_t f = g->main.cursor;
    if (g->lhead[CLS_MAIN] && g->lhead[CLS_MAIN]->seq < f)
        f = g->lhead[CLS_MAIN]->seq;
    return f;
}

/* The engine's files call downwards only:
 *   group_load.c, group.c -> group_settle.c -> group_dlq.c -> group_flow.c
 *   -> group_dlv.c
 *   and any of them -> codec.c (record formats) -> outbox.c */

/* group_dlv.c */
/* Replaces *dst with a copy of s[0..n) (NULL if s is NULL). */
void    eb__set_str(char **dst, const char *s, size_t n);
eb_dlv *eb__dlv_new(eb_group *g, int cls, uint64_t seq, uint64_t ts, flow *fl);
/* RETRY until d->tm.key, or READY if that has passed. */
void    eb__dlv_schedule(eb_group *g, eb_dlv *d, uint64_t now);
/* Queues d behind its key if it has one and ordering is by key. */
void    eb__dlv_admit(eb_group *g, eb_dlv *d, eb_str key, uint64_t now);
/* Removes a delivery that is finished (acked or dead-lettered). */
void    eb__dlv_finish(eb_group *g, eb_dlv *d, uint64_t now);
/* Appends d to the READY FIFO. */
void    eb__dlv_ready(eb_group *g, eb_dlv *d);
/* Appends d's stored event to out: the dead letter's copy (class d), the
 * cache's, or the events store's. EB_ENOTFOUND: retention removed it. */
int   eb__dlv_event(eb_group *g, const eb_dlv *d, eb_buf *out);
/* d's event is gone (retention): it is finished as the flow finishes the
 * events retention took before it reached them (done, retention_skipped). */
void  eb__dlv_gone(eb_group *g, eb_dlv *d, uint64_t now);
/* Frees d (not its class-d payload, owned by the dead letter). */
void    eb__dlv_free(eb_dlv *d);
/* Appends a failure to *h (created if NULL; the oldest drops out past
 * EB_FAIL_HISTORY; first_us set by the first push). */
void    eb__hist_push(failhist **h, uint32_t attempt, uint64_t at, eb_str who, eb_str err,
                      uint64_t first_us);
/* Appends src's failures to *dst and frees src (dst keeps its first time). */
void    eb__hist_merge(failhist **dst, failhist *src);
void    eb__hist_free(failhist *h);
void    eb__failinfo_free(failinfo *fi);

/* group.c */
/* How many of max leases flow control (max_in_flight, rate_limit) allows now. */
size_t eb__group_allowance(eb_group *g, size_t max, uint64_t now);

/* group_settle.c */
/* The delay before attempt fails+1 (µs): exponential with jitter. */
uint64_t eb__backoff_us(eb_group *g, uint32_t fails);
/* A failed attempt of in-flight d at `at`: RETRY until due, or dead-lettered
 * when final. Its records go to ob (NULL: written already). */
void  eb__dlv_fail(eb_group *g, eb_dlv *d, const char *err, uint64_t due, bool final, uint64_t at,
                   eb_outbox *ob);
/* Frees the pending settles (the group is freed). */
void  eb__settle_free(eb_group *g);

/* group_flow.c */
void  eb__flow_init(flow *f, uint64_t id, uint64_t from, uint64_t to);
void  eb__flow_free(flow *f);
/* Marks [a, b) done in every replay flow that covers it. */
void  eb__flow_replay_done(eb_group *g, uint64_t a, uint64_t b);
/* Adds a replay flow (in creation order); NULL when out of memory. */
flow *eb__flow_replay_new(eb_group *g, uint64_t id, uint64_t from, uint64_t to, char **types,
                          size_t ntypes);
/* A lease read back whose delivery the flows have not made yet (they fill
 * lazily): examines the flows of class cls (main or replay) that cover seq
 * up to it, within the deliveries a group holds; the delivery, or NULL. */
eb_dlv *eb__flow_examine_to(eb_group *g, int cls, uint64_t seq);
/* Examines events until `want` deliveries are READY, the window is full or
 * every flow has reached the durable head. */
void  eb__group_fill(eb_group *g, size_t want, uint64_t durable, uint64_t now);
/* Drops replay flows that are done: walked to their end, nothing alive. */
void  eb__group_reap_flows(eb_group *g);
/* Counts a replay flow's backlog from its cursor (after the meta replay). */
void  eb__flow_count_backlog(eb_group *g, flow *f);

/* group_dlq.c */
void  eb__dlq_insert(eb_group *g, dead *e);
void  eb__dlq_remove(eb_group *g, uint64_t seq);
void  eb__dead_free(dead *e);
/* Moves d to the dead-letter queue, writing its DEAD record to ob (NULL:
 * written already). */
void  eb__dead_letter(eb_group *g, eb_dlv *d, uint64_t now, eb_outbox *ob);
/* The public view of e; one: room for the single failure of a dead letter
 * read from a record written before histories. */
void  eb__dead_view(const dead *e, eb_dead_letter *out, eb_failure *one);
/* Writes the DEAD record eb__dead_letter will make of d failing at `at`
 * with err (one more failed attempt), without changing anything. */
void  eb__dead_record(eb_group *g, const eb_dlv *d, uint64_t at, const char *err,
                      eb_outbox *ob);
/* Turns dead letter e into a delivery again (class d). */
void  eb__dlq_redrive_one(eb_group *g, dead *e, uint64_t now);

/* codec.c: the group's meta records */
/* A snapshot's records of g's state (eb_group_snapshot adds the pending
 * settles' and flushes). */
void  eb__rec_group_state(eb_group *g, eb_outbox *ob);
void  eb__rec_dead(eb_group *g, const dead *e, int cls, bool with_payload, eb_outbox *ob);
void  eb__rec_seqs(eb_group *g, uint16_t kind, dead **v, size_t k, eb_outbox *ob);
void  eb__rec_replay(eb_group *g, const flow *f, eb_outbox *ob);
/* Gathers one failed attempt for the next EB_META_FAIL record (the one
 * encoder of a failed attempt, used by nacks, expiries and snapshots). */
void  eb__rec_fail_gather(eb_group *g, int cls, uint64_t seq, uint32_t fails, uint64_t due,
                          const char *err, const eb_failure *f, uint64_t first_us);

/* codec.c: reading a group's records back (views into the parsed record) */
typedef struct eb_rec_iter { const eb_json *e; } eb_rec_iter; /* over a record's array */
/* The next [a, b) range or seq of it; false at the end. */
bool  eb__rec_next_range(eb_rec_iter *it, uint64_t *a, uint64_t *b);
bool  eb__rec_next_seq(eb_rec_iter *it, uint64_t *seq);

typedef struct eb_rec_ack { eb_rec_iter m, r, d; } eb_rec_ack; /* ranges, ranges, seqs */
void  eb__rec_ack_decode(const eb_json *rec, eb_rec_ack *out);

typedef struct eb_rec_fail {
    int      cls;
    uint64_t seq, due;
    uint32_t fails;
    eb_str   error;
    bool     has_detail;      /* the fields below (absent before histories) */
    uint64_t at, first;
    uint32_t attempt;
    eb_str   consumer;
} eb_rec_fail;
/* Gathers a lease given (or extended) for the next EB_META_LEASE record. */
void  eb__rec_lease_gather(eb_group *g, int cls, uint64_t seq, uint32_t attempt,
                           uint64_t deadline);
typedef struct eb_rec_lease {
    int      cls;
    uint64_t first, n, deadline;
    uint32_t attempt;
} eb_rec_lease;
eb_rec_iter eb__rec_lease_items(const eb_json *rec);
/* 1 and *out, 0 at the end, EB_ECORRUPT. */
int   eb__rec_next_lease(eb_rec_iter *it, eb_rec_lease *out);
eb_rec_iter eb__rec_fail_items(const eb_json *rec);
/* 1 with *out filled, 0 at the end, EB_ECORRUPT for a malformed entry. */
int   eb__rec_next_fail(eb_rec_iter *it, eb_rec_fail *out);

typedef struct eb_rec_dead {
    int            cls;
    uint64_t       seq, ts_us, failed_at;
    uint32_t       attempts;
    eb_str         error, consumer;
    const eb_json *payload; /* base64 of the stored event; absent unless fresh */
    uint64_t       first;   /* first failure (0: absent, a record from before histories) */
    eb_rec_iter    hist;    /* [[attempt, at, consumer, error], ...] (empty: absent) */
} eb_rec_dead;
/* The next history entry of a DEAD record: 1, 0 at the end, EB_ECORRUPT. */
int   eb__rec_next_hist(eb_rec_iter *it, uint32_t *attempt, uint64_t *at, eb_str *who,
                        eb_str *err);
int   eb__rec_dead_decode(const eb_json *rec, eb_rec_dead *out);
/* Decodes r's event copy into out (appended) and checks it is an event. */
int   eb__rec_dead_payload(const eb_rec_dead *r, eb_buf *out, eb_event_view *v);

/* EB_META_REDRIVE and EB_META_PURGE: the seqs. */
eb_rec_iter eb__rec_seqs_decode(const eb_json *rec);

typedef struct eb_rec_replay {
    uint64_t id, from, to;
    char    *types[EB_GROUP_MAX_TYPES]; /* borrowed from the record */
    size_t   ntypes;
} eb_rec_replay;
int   eb__rec_replay_decode(const eb_json *rec, eb_rec_replay *out);

typedef struct eb_rec_done { uint64_t flow; eb_rec_iter r; } eb_rec_done;
void  eb__rec_done_decode(const eb_json *rec, eb_rec_done *out);

#endif
