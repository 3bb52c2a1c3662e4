/* bus.c - opening the stores, publishing, schema registration (reading
 * events: read.c).
 *
 * Publishing on the loop thread: check every envelope and validate every
 * data against its schema (compiled at registration), resolve duplicates,
 * encode the new events into one buffer and hand them to the events log as
 * one atomic append. Under --fsync always the log's writer thread reports
 * durability through `done_q` + a uv_async and the loop then answers the
 * publisher; under interval and never the log usually writes on this
 * thread and the publisher is answered at once (done_now). */
#include "bus/bus.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bus/bus_int.h"
#include "eventbus/err.h"
#include "util/xmalloc.h"

/* --- completions --------------------------------------------------------- */


static void publish_done(eb_bus *bus, pending_op *op)
{
    if (op->status) { /* nothing written: its seqs are handed out again */
        uint64_t lo = UINT64_MAX, hi = 0;
        for (size_t i = 0; i < op->n; i++)
            if (!op->res[i].duplicate && op->res[i].seq) {
                lo = op->res[i].seq < lo ? op->res[i].seq : lo;
                hi = op->res[i].seq >= hi ? op->res[i].seq + 1 : hi;
            }
        if (lo < hi)
            eb_dedupe_forget_seqs(&bus->dedupe, lo, hi);
        for (size_t i = 0; i < op->n; i++)
            if (op->res[i].deliver_us && !op->res[i].duplicate) {
                eb__bus_delay_unpublished(bus, lo, hi);
                break;
            }
    }
    op->pub_cb(op->arg, op->status, op->res, op->n);
}

/* Completes duplicate-only publishes whose originals are now durable. */
static void release_waiters(eb_bus *bus, int status)
{
    if (!bus->events)
        status = EB_ECLOSED;
    uint64_t durable = status ? 0 : eb_store_durable_seq(bus->events);
    pending_op **pp = &bus->waiters;
    while (*pp) {
        pending_op *op = *pp;
        if (status == 0 && op->wait_seq >= durable) {
            pp = &op->next;
            continue;
        }
        *pp = op->next;
        op->status = status;
        eb__bus_complete(bus, op);
    }
}

/* The append of op was written on the loop thread (eb_store_append
 * returned 1): completes op (freed) now, as the loop would on the wake-up.
 * Waking waiting pulls is the caller's: it knows whether it also does. */
static void done_now(eb_bus *bus, pending_op *op)
{
    op->status = 0;
    eb__bus_complete(bus, op);
    if (bus->waiters)
        release_waiters(bus, 0);
}

static void on_async(uv_async_t *h)
{
    eb_bus *bus = h->data;
    int status = eb__bus_drain(bus);
    if (bus->waiters)
        release_waiters(bus, status);
    eb__bus_pulls_wake(bus);
}

/* --- errors -------------------------------------------------------------- */

void eb_pub_errors_init(eb_pub_errors *e)
{
    memset(e, 0, sizeof *e);
    eb_buf_init(&e->text);
}

void eb_pub_errors_free(eb_pub_errors *e)
{
    eb_buf_free(&e->text);
    free(e->v);
}

static void errs_reset(eb_pub_errors *e)
{
    eb_buf_reset(&e->text);
    e->count = e->kept = 0;
    e->first = EB_PUB_OK;
    e->summary[0] = '\0';
}

void eb_pub_errors_at(const eb_pub_errors *e, size_t i, eb_pub_error *out)
{
    const char *t = e->text.data;
    *out = (eb_pub_error){e->v[i].index, e->v[i].kind, t + e->v[i].path,
                          e->v[i].schema_path == SIZE_MAX ? NULL : t + e->v[i].schema_path,
                          t + e->v[i].message, e->v[i].current};
}

/* Copies s into e->text; returns its offset. */
static size_t errs_str(eb_pub_errors *e, const char *s)
{
    size_t off = e->text.len;
    eb_buf_append(&e->text, s, strlen(s) + 1);
    return off;
}

/* Records one fault of event `idx`; path is relative to the event. */
static void errs_add(eb_pub_errors *e, size_t idx, eb_pub_fault kind, const char *path,
                     const char *schema_path, const char *msg)
{
    if (e->count == 0) {
        e->first = kind;
        snprintf(e->summary, sizeof e->summary, "%s%s%s", path, *path ? ": " : "", msg);
    }
    if (e->count >= 1000)
        return;
    e->count++;
    if (e->kept == e->cap) {
        e->cap = e->cap ? e->cap * 2 : 16;
        e->v = eb_xrealloc(e->v, e->cap * sizeof *e->v);
    }
    e->v[e->kept].index = idx;
    e->v[e->kept].kind = kind;
    e->v[e->kept].path = errs_str(e, path);
    e->v[e->kept].schema_path = schema_path ? errs_str(e, schema_path) : SIZE_MAX;
    e->v[e->kept].message = errs_str(e, msg);
    e->v[e->kept].current = 0;
    e->kept++;
}

/* --- publishing ---------------------------------------------------------- */

/* Validates ev's data against its type's schema; returns the version used
 * (0: none registered) or records faults and returns -1. */
static int64_t check_schema(eb_bus *bus, size_t idx, const eb_event_in *ev,
                            eb_pub_errors *errs)
{
    eb_subject *sub = eb_registry_subject(&bus->reg, ev->type.ptr, ev->type.len);
    if (!sub || sub->nvers == 0) {
        if (ev->version) {
            errs_add(errs, idx, EB_PUB_NO_VERSION, "/version", NULL,
                     "no schema is registered for this type");
            return -1;
        }
        if (bus->opts.require_schemas) {
            errs_add(errs, idx, EB_PUB_NO_SCHEMA, "/type", NULL,
                     "no schema is registered for this type and the server "
                     "requires one (--require-schemas)");
            return -1;
        }
        return 0;
    }
    if (ev->version > (int64_t)sub->nvers) {
        char msg[96];
        snprintf(msg, sizeof msg, "schema version %lld does not exist (latest is %zu)",
                 (long long)ev->version, sub->nvers);
        errs_add(errs, idx, EB_PUB_NO_VERSION, "/version", NULL, msg);
        return -1;
    }
    const eb_schema_ver *v = &sub->vers[(ev->version ? ev->version : (int64_t)sub->nvers) - 1];
    static const eb_json null_node = {.type = EB_JSON_NULL};
    const eb_json *data = ev->data ? ev->data : &null_node;
    if (eb_schema_validate(v->compiled, data, NULL) == 0)
        return v->version;
    /* Invalid: run again collecting every violation (cold path). */
    eb_schema_errors_reset(&bus->verrs);
    eb_schema_validate(v->compiled, data, &bus->verrs);
    for (size_t i = 0; i < eb_schema_errors_count(&bus->verrs); i++) {
        const eb_schema_error *se = eb_schema_errors_at(&bus->verrs, i);
        char path[512];
        snprintf(path, sizeof path, "/data%s", se->path);
        errs_add(errs, idx, EB_PUB_SCHEMA, path, se->schema_path, se->message);
    }
    return -1;
}

static int check_all(eb_bus *bus, eb_event_in *evs, size_t n, uint32_t *vers,
                     eb_pub_errors *errs)
{
    uint64_t now = eb__bus_now_us();
    size_t delayed = 0;
    for (size_t i = 0; i < n; i++) {
        eb_field_error fe;
        if (eb_event_check(&evs[i], &fe) != 0) {
            errs_add(errs, i, EB_PUB_INVALID, fe.field, NULL, fe.message);
            continue;
        }
        int drc = eb__bus_delay_due(bus, &evs[i], now, &delayed, &fe);
        if (drc) {
            errs_add(errs, i, drc == EB_ERANGE ? EB_PUB_LIMIT : EB_PUB_INVALID, fe.field, NULL,
                     fe.message);
            continue;
        }
        int64_t v = check_schema(bus, i, &evs[i], errs);
        vers[i] = v > 0 ? (uint32_t)v : 0;
        if (v < 0)
            eb__bus_count_rejected(bus, evs[i].type.ptr, evs[i].type.len);
    }
    return errs->count ? EB_EINVAL : 0;
}

static void grow_recs(eb_bus *bus, size_t n)
{
    if (n <= bus->recs_cap)
        return;
    bus->recs = eb_xrealloc(bus->recs, n * sizeof *bus->recs);
    bus->offs = eb_xrealloc(bus->offs, n * sizeof *bus->offs);
    bus->recs_cap = n;
}

static bool id_is_generated(const eb_event_in *ev)
{
    return eb_event_id_generated(ev);
}

static bool str_eq(eb_str a, eb_str b)
{
    size_t al = a.ptr ? a.len : 0, bl = b.ptr ? b.len : 0;
    return al == bl && (al == 0 || memcmp(a.ptr, b.ptr, al) == 0);
}

/* --- the batch's indexes ------------------------------------------------ *
 * Two open-addressing tables over the events of one publish, so that
 * finding an earlier event of the batch with the same (source, id), or the
 * newest earlier one of the same key, costs O(1) and not a walk over the
 * batch (a batch of 1,000 keyed events was 500,000 comparisons). A slot
 * holds an event's index + 1, 0 = empty; collisions compare the strings. */

enum { BIDX_ID, BIDX_KEY };

static void batch_index_reset(eb_bus *bus, size_t n)
{
    size_t cap = 8;
    while (cap < 2 * n)
        cap *= 2;
    if (cap > bus->bidx_cap) {
        bus->bidx = eb_xrealloc(bus->bidx, 2 * cap * sizeof *bus->bidx);
        bus->bidx_cap = cap;
    }
    memset(bus->bidx, 0, 2 * bus->bidx_cap * sizeof *bus->bidx);
}

static bool same_id(const eb_event_in *a, const eb_event_in *b)
{
    return str_eq(a->id, b->id) && str_eq(a->source, b->source);
}

static bool same_key(const eb_event_in *a, const eb_event_in *b)
{
    return str_eq(a->key, b->key);
}

/* The slot of table t holding an event equal to evs[i] (same_id or
 * same_key), or the empty slot where it would go. */
static uint32_t *batch_slot(eb_bus *bus, int t, const eb_event_in *evs, size_t i)
{
    const eb_event_in *ev = &evs[i];
    uint32_t h = t == BIDX_ID ? eb_hash(ev->id.ptr, ev->id.len) * 31u +
                                    eb_hash(ev->source.ptr, ev->source.ptr ? ev->source.len : 0)
                              : eb_hash(ev->key.ptr, ev->key.len);
    size_t mask = bus->bidx_cap - 1;
    uint32_t *tab = bus->bidx + (size_t)t * bus->bidx_cap;
    for (size_t s = h & mask;; s = (s + 1) & mask) {
        uint32_t v = tab[s];
        if (!v || (t == BIDX_ID ? same_id(&evs[v - 1], ev) : same_key(&evs[v - 1], ev)))
            return &tab[s];
    }
}

/* The earlier event of the batch with the same (source, id), or -1; called
 * for i = 0, 1, ... in order (the first such event is the one kept). */
static long batch_dup(eb_bus *bus, const eb_event_in *evs, size_t i)
{
    if (id_is_generated(&evs[i]))
        return -1;
    uint32_t *s = batch_slot(bus, BIDX_ID, evs, i);
    if (*s)
        return (long)*s - 1;
    *s = (uint32_t)i + 1;
    return -1;
}

/* Gives new keyed event i its key version (the key's current one plus the
 * earlier new events of the same key in this batch, plus one) and checks
 * its expected version; records a conflict in errs. */
static void key_version(eb_bus *bus, eb_event_in *evs, size_t i, eb_pub_errors *errs)
{
    eb_event_in *ev = &evs[i];
    ev->key_version = 0;
    if (!ev->key.ptr)
        return;
    uint32_t *s = batch_slot(bus, BIDX_KEY, evs, i); /* the newest earlier new one of the key */
    uint64_t cur = *s ? evs[*s - 1].key_version
                      : eb_store_key_version(bus->events, ev->key.ptr, ev->key.len);
    *s = (uint32_t)i + 1;
    ev->key_version = cur + 1;
    if (ev->expect_version && ev->expected_version != cur) {
        char msg[160];
        snprintf(msg, sizeof msg, "expected version %llu of the key, its current version is %llu",
                 (unsigned long long)ev->expected_version, (unsigned long long)cur);
        size_t kept = errs->kept;
        errs_add(errs, i, EB_PUB_VERSION_CONFLICT, "/expected_version", NULL, msg);
        if (errs->kept > kept)
            errs->v[kept].current = cur;
    }
}

/* Encodes the non-duplicate events; marks duplicates in op->res. Returns
 * the number of records to append, or a negative error. */
static long encode_new(eb_bus *bus, eb_event_in *evs, size_t n, const uint32_t *vers,
                       pending_op *op, eb_pub_errors *errs, long *dup_of)
{
    uint64_t now = eb__bus_now_us();
    eb_buf_reset(&bus->enc);
    batch_index_reset(bus, n);
    size_t *offs = bus->offs;
    long nrec = 0;
    for (size_t i = 0; i < n; i++) {
        eb_pub_result *r = &op->res[i];
        memcpy(r->id, evs[i].id.ptr, evs[i].id.len);
        r->id[evs[i].id.len] = '\0';
        dup_of[i] = batch_dup(bus, evs, i);
        uint64_t seq = 0, ts = 0;
        if (dup_of[i] < 0 && !id_is_generated(&evs[i]))
            seq = eb_dedupe_find(&bus->dedupe, evs[i].source, evs[i].id, now, &ts);
        if (dup_of[i] >= 0 || seq) {
            r->duplicate = true;
            r->seq = seq; /* batch duplicates are filled in after the append */
            r->ts_us = ts;
            continue;
        }
        key_version(bus, evs, i, errs);
        size_t start = bus->enc.len;
        eb_event_encode(&evs[i], vers[i], &bus->enc);
        if (bus->enc.len - start > bus->opts.max_event_bytes) {
            char msg[96];
            snprintf(msg, sizeof msg, "event is %zu bytes stored, over the limit of %u",
                     bus->enc.len - start, bus->opts.max_event_bytes);
            errs_add(errs, i, EB_PUB_TOO_BIG, "", NULL, msg);
        }
        bus->recs[nrec].type = evs[i].deliver_us ? EB_REC_DELAYED : EB_REC_EVENT;
        offs[nrec++] = start;
    }
    if (errs->count)
        return EB_EINVAL;
    /* enc is final now (no more reallocs): point the records into it. */
    for (long k = 0; k < nrec; k++) {
        size_t end = k + 1 < nrec ? offs[k + 1] : bus->enc.len;
        bus->recs[k] = (eb_store_rec_in){bus->recs[k].type, 0, bus->enc.data + offs[k],
                                       (uint32_t)(end - offs[k])};
    }
    return nrec;
}

/* Enters an appended event into the key and id lookups. Out of memory
 * there costs lookups, not events: counted, and a restart rebuilds them. */
static void index_event(eb_bus *bus, eb_str key, uint64_t key_version, eb_str source, eb_str id,
                        uint64_t seq)
{
    if (eb_store_index_add(bus->events, key.ptr, key.ptr ? key.len : 0, key_version, id.ptr,
                           id.len, seq) != 0 ||
        eb_store_index_source_id(bus->events, source.ptr, source.ptr ? source.len : 0, id.ptr,
                                 id.len, seq) != 0)
        bus->lookups_lost++;
}

/* After the append: assign seqs, remember client ids, resolve batch dups. */
static void assign_seqs(eb_bus *bus, eb_event_in *evs, size_t n, pending_op *op,
                        const long *dup_of, uint64_t first_seq, uint64_t ts)
{
    uint64_t seq = first_seq;
    for (size_t i = 0; i < n; i++) {
        eb_pub_result *r = &op->res[i];
        if (r->duplicate) {
            if (dup_of[i] >= 0)
                r->seq = op->res[dup_of[i]].seq, r->ts_us = op->res[dup_of[i]].ts_us;
            if (r->seq > op->wait_seq)
                op->wait_seq = r->seq;
            continue;
        }
        r->seq = seq++;
        r->ts_us = ts;
        r->key_version = evs[i].key_version;
        r->deliver_us = evs[i].deliver_us;
        if (!id_is_generated(&evs[i]))
            eb_dedupe_add(&bus->dedupe, evs[i].source, evs[i].id, r->seq, ts);
        index_event(bus, evs[i].key, evs[i].key_version, evs[i].source, evs[i].id, r->seq);
    }
}

int eb_bus_publish(eb_bus *bus, eb_event_in *evs, size_t n, eb_pub_errors *errs,
                   eb_bus_pub_cb cb, void *arg)
{
    errs_reset(errs);
    if (bus->closing)
        return EB_ECLOSED;
    if (n == 0)
        return EB_EINVAL;
    uint32_t vers_small[64];
    long dup_small[64];
    uint32_t *vers = n <= 64 ? vers_small : eb_xmalloc(n * sizeof *vers);
    long *dup_of = n <= 64 ? dup_small : eb_xmalloc(n * sizeof *dup_of);
    pending_op *op = eb_xcalloc(1, sizeof *op + n * sizeof op->res[0]);
    grow_recs(bus, n);
    int rc = check_all(bus, evs, n, vers, errs);
    long nrec = 0;
    if (rc == 0) {
        op->bus = bus;
        op->pub_cb = cb;
        op->complete = publish_done;
        op->arg = arg;
        op->n = n;
        eb_dedupe_expire(&bus->dedupe, eb__bus_now_us());
        nrec = encode_new(bus, evs, n, vers, op, errs, dup_of);
        rc = nrec < 0 ? (int)nrec : 0;
    }
    if (rc == 0 && nrec > 0) {
        uint64_t first = 0, ts = 0;
        rc = eb_store_append(bus->events, bus->recs, (size_t)nrec, true, &first, &ts,
                                  eb__bus_on_durable, op);
        if (rc >= 0) {
            bool written = rc == 1;
            rc = 0;
            assign_seqs(bus, evs, n, op, dup_of, first, ts);
            eb__bus_groups_published(bus, evs, op->res, n);
            eb__bus_delay_published(bus, evs, op->res, n);
            if (written) { /* --fsync interval|never: deliver, then answer, now */
                eb__bus_pulls_wake(bus); /* pulls first: delivery is the latency that counts */
                done_now(bus, op);
            }
        }
    } else if (rc == 0) {
        /* Every event is a duplicate: answer once the originals are durable. */
        assign_seqs(bus, evs, n, op, dup_of, 0, 0);
        eb__bus_groups_published(bus, evs, op->res, n); /* counts the duplicates */
        op->next = bus->waiters;
        bus->waiters = op;
        uv_async_send(&bus->async); /* check right away */
    }
    if (vers != vers_small)
        free(vers);
    if (dup_of != dup_small)
        free(dup_of);
    if (rc != 0)
        free(op);
    return rc;
}

/* --- schema registration ------------------------------------------------- */

static void staged_free(staged_schema *st)
{
    if (!st)
        return;
    free(st->type);
    free(st->text);
    if (st->compiled)
        eb_schema_free(st->compiled);
    free(st);
}

static void finish_registration(eb_bus *bus, pending_op *op)
{
    staged_schema *st = op->extra;
    eb_subject *sub = eb_registry_subject(&bus->reg, st->type, strlen(st->type));
    if (sub)
        sub->pending = false;
    bus->schemas_pending--;
    int rc = op->status;
    if (rc == 0) {
        rc = eb_registry_apply(&bus->reg, st->type, strlen(st->type), st->version, st->mode,
                               st->text, st->len, st->ts_us, st->compiled);
        st->compiled = NULL; /* owned by the registry now (even on failure) */
    }
    if (op->done_cb)
        op->done_cb(op->arg, rc);
    staged_free(st);
}

static int encode_schema_record(const staged_schema *st, eb_buf *out)
{
    return eb__rec_schema(st->type, st->version, st->mode, st->text, st->len,
                                 st->ts_us, out);
}

static staged_schema *stage(const char *type, size_t n, uint32_t version, eb_compat_mode mode,
                            const char *schema, size_t len, eb_schema *compiled)
{
    staged_schema *st = eb_xcalloc(1, sizeof *st);
    st->type = eb_xstrndup(type, n);
    st->text = eb_xmalloc(len + 1);
    memcpy(st->text, schema, len);
    st->text[len] = '\0';
    st->len = len;
    st->version = version;
    st->mode = mode;
    st->ts_us = eb__bus_now_us();
    st->compiled = compiled;
    return st;
}

int eb_bus_register_schema(eb_bus *bus, const char *type, size_t n, const char *schema,
                           size_t len, bool mode_given, eb_compat_mode mode,
                           eb_registry_verdict *chk, eb_bus_done_cb cb, void *arg)
{
    if (bus->closing)
        return EB_ECLOSED;
    eb_subject *sub = eb_registry_subject(&bus->reg, type, n);
    if (sub && sub->pending)
        return EB_EFULL;
    eb_schema *compiled = NULL;
    int rc = eb_registry_check(&bus->reg, type, n, schema, len, mode_given, mode, chk, &compiled);
    if (rc)
        return rc;
    if (chk->same_as) {
        eb_schema_free(compiled);
        return EB_EEXIST;
    }
    if (bus->reg.versions + bus->schemas_pending >= bus->opts.max_schemas) {
        eb_schema_free(compiled);
        return EB_ERANGE; /* the registry is at its bound */
    }
    staged_schema *st = stage(type, n, chk->next, chk->mode, schema, len, compiled);
    pending_op *op = eb_xcalloc(1, sizeof *op);
    eb_buf rec = EB_BUF_INIT;
    encode_schema_record(st, &rec);
    *op = (pending_op){.bus = bus, .complete = finish_registration, .done_cb = cb, .arg = arg,
                       .extra = st};
    rc = eb_meta_append(bus->meta, EB_META_SCHEMA, rec.data, rec.len, eb__bus_on_durable, op);
    eb_buf_free(&rec);
    if (rc) {
        staged_free(st);
        free(op);
        return rc;
    }
    /* Mark the subject busy (it may not exist until applied: create lazily). */
    sub = eb_registry_subject(&bus->reg, type, n);
    if (sub)
        sub->pending = true;
    bus->schemas_pending++;
    return 0;
}

/* Meta replay: one record at startup. */
static int replay_meta(void *arg, uint16_t kind, uint64_t seq, const eb_json *rec)
{
    eb_bus *bus = arg;
    (void)seq;
    if (kind == EB_META_SNAP) { /* the whole state follows */
        eb_registry_free(&bus->reg);
        eb_registry_init(&bus->reg);
        eb__bus_groups_reset(bus);
        eb__bus_tokens_reset(bus);
        eb__bus_delay_reset(bus);
        return 0;
    }
    if (kind == EB_META_DELAY)
        return eb__bus_delay_apply(bus, rec);
    if (kind == EB_META_TOKEN || kind == EB_META_TOKEN_DEL)
        return eb__bus_tokens_apply(bus, kind, rec);
    if (kind != EB_META_SCHEMA)
        return eb__bus_groups_apply(bus, kind, rec);
    eb_rec_schema r;
    if (eb__rec_schema_decode(rec, &r) != 0)
        return EB_ECORRUPT;
    eb_buf text = EB_BUF_INIT;
    eb_jw w;
    eb_jw_init(&w, &text);
    eb_jw_value(&w, r.schema);
    int rc = eb_buf_failed(&text)
                 ? EB_ENOMEM
                 : eb_registry_apply(&bus->reg, r.type.ptr, r.type.len, r.version, r.mode,
                                     text.data, text.len, r.ts_us, NULL);
    eb_buf_free(&text);
    return rc;
}

/* --- open / close -------------------------------------------------------- */

typedef struct walk_ctx {
    eb_store_scan_cb fn;
    void            *arg;
    uint64_t         last; /* last seq looked at */
    uint64_t         stop;
} walk_ctx;

static int walk_one(void *arg, const eb_store_rec *rec)
{
    walk_ctx *w = arg;
    if (rec->seq >= w->stop)
        return 1;
    w->last = rec->seq;
    return w->fn(w->arg, rec);
}

int eb__bus_walk_range(eb_bus *bus, uint64_t from, uint64_t stop, eb_store_scan_cb fn, void *arg)
{
    walk_ctx w = {fn, arg, from ? from - 1 : 0, stop};
    while (w.last + 1 < stop && w.last + 1 < eb_store_durable_seq(bus->events)) {
        uint64_t before = w.last;
        int rc = eb_store_scan(bus->events, w.last + 1, 4096, walk_one, &w);
        if (rc && rc != EB_ENOTFOUND)
            return rc;
        if (w.last == before)
            break;
    }
    return 0;
}

/* Hands every durable record from seq from on to fn (at open: the lookups'
 * and the dedupe window's rebuild, the log's counts). */
int eb__bus_walk_events(eb_bus *bus, uint64_t from, eb_store_scan_cb fn, void *arg)
{
    return eb__bus_walk_range(bus, from, UINT64_MAX, fn, arg);
}

typedef struct rebuild_ctx {
    eb_bus  *bus;
    uint64_t window_us; /* appended at or after this: into the dedupe window */
    size_t   added;     /* ids remembered there */
    uint64_t index_from; /* the store's lookups cover the records below */
} rebuild_ctx;

static int rebuild_one(void *arg, const eb_store_rec *rec)
{
    rebuild_ctx *c = arg;
    eb_event_view v;
    if (!eb__bus_public_event(rec, &v)) /* a due copy is not indexed: its original is */
        return 0;
    bool in_window =
        c->window_us && rec->ts_us >= c->window_us && !(v.flags & EB_EVENT_F_GENERATED_ID);
    if (rec->seq < c->index_from && !in_window)
        return 0;
    /* The source is only in the stored JSON (dedupe and the lookup by
     * source are by source + id). */
    char buf[EB_EVENT_MAX_ATTR];
    eb_str source;
    eb_event_source(&v, buf, &source);
    if (rec->seq >= c->index_from)
        index_event(c->bus, v.key, v.key_version, source, v.id, rec->seq);
    if (in_window) {
        eb_dedupe_add(&c->bus->dedupe, source, v.id, rec->seq, rec->ts_us);
        c->added++;
    }
    return 0;
}

/* One pass over the retained events the store's lookups do not cover yet
 * (all of them, unless the engine kept its lookups across the restart):
 * reports them to the lookups, and refills the dedupe window from the
 * events appended in the last window (this is what makes the window
 * survive a restart). */
static int rebuild_lookups(eb_bus *bus, size_t *dedupe_added)
{
    uint64_t window = bus->opts.dedupe_window_ms * 1000u, now = eb__bus_now_us();
    uint64_t first = eb_store_first_seq(bus->events), from = eb_store_indexed_upto(bus->events);
    uint64_t win_seq = 0;
    if (from < first)
        from = first;
    rebuild_ctx c = {bus, window ? (now > window ? now - window : 1) : 0, 0, from};
    uint64_t start = from, durable = eb_store_durable_seq(bus->events);
    if (c.window_us && eb_store_seek_time(bus->events, c.window_us, &win_seq) == 0 &&
        win_seq < from)
        start = win_seq > first ? win_seq : first;
    int rc = 0;
    if (from < durable) { /* lookups to fill: every record from start */
        rc = eb__bus_walk_events(bus, start, rebuild_one, &c);
    } else if (c.window_us) { /* the window only: where client ids may be */
        while (rc == 0 && start < durable) {
            uint64_t lo, hi;
            eb_store_client_id_range(bus->events, start, &lo, &hi);
            rc = lo < durable ? eb__bus_walk_range(bus, lo, hi, rebuild_one, &c) : 0;
            start = hi;
        }
    }
    *dedupe_added = c.added;
    return rc;
}

/* What the events store keeps of an event for its lookups and counts
 * (store.h, eb_store_describe_fn; any engine thread). A delayed event's
 * record (EB_REC_DELAYED) is in the lookups, as the bus reports it, but not
 * in the counts (groups skip it); the copy appended when it falls due is in
 * the counts (groups deliver it) but not in the lookups (its original is). */
static int describe_event(const eb_store_rec *rec, eb_store_desc *out)
{
    static _Thread_local char source_buf[EB_EVENT_MAX_ATTR]; /* an escaped source */
    eb_event_view v;
    eb_str source;
    if ((rec->type != EB_REC_EVENT && rec->type != EB_REC_DELAYED) ||
        eb_event_decode(rec->data, rec->len, &v) != 0)
        return 0;
    eb_event_source(&v, source_buf, &source);
    *out = (eb_store_desc){v.type.ptr, v.type.len, v.key.ptr, v.key.ptr ? v.key.len : 0,
                           v.key_version, v.id.ptr, v.id.len,
                           !(v.flags & EB_EVENT_F_GENERATED_ID), rec->type == EB_REC_DELAYED,
                           v.origin_seq != 0, source.ptr, source.len};
    return 1;
}

static int open_stores(eb_bus *bus, eb_bus_report *rep)
{
    eb_store_opts o = {.data_dir = bus->opts.data_dir,
                       .describe = describe_event,
                       .kind = EB_STORE_EVENTS,
                       .sync = bus->opts.fsync,
                       .sync_interval_ms = bus->opts.fsync_interval_ms,
                       .retention_ms = bus->opts.retention_ms,
                       .retention_bytes = bus->opts.retention_bytes};
    int rc = eb_store_open(bus->opts.engine, &o, &bus->events, &rep->events);
    if (rc == 0)
        rc = rebuild_lookups(bus, &rep->dedupe_ids);
    if (rc)
        return rc;
    /* Groups read the events store while their state is replayed. */
    rc = eb_meta_open(bus->opts.engine, &o, &bus->meta, &rep->meta, replay_meta, bus);
    if (rc)
        return rc;
    rc = eb__bus_groups_start(bus);
    if (rc == 0)
        rc = eb__bus_delay_start(bus);
    if (rc == 0)
        rc = eb__bus_count_log(bus);
    return rc;
}

int eb_bus_open(uv_loop_t *loop, const eb_bus_opts *opts, eb_bus **out, eb_bus_report *rep)
{
    eb_bus_report dummy;
    if (!rep)
        rep = &dummy;
    memset(rep, 0, sizeof *rep);
    eb_bus *bus = eb_xcalloc(1, sizeof *bus);
    bus->loop = loop;
    bus->opts = *opts;
    if (!bus->opts.max_event_bytes)
        bus->opts.max_event_bytes = 1u << 20;
    bus->opts.data_dir = eb_xstrdup(opts->data_dir);
    pthread_mutex_init(&bus->done_mu, NULL);
    eb_registry_init(&bus->reg);
    if (!bus->opts.dedupe_max_bytes)
        bus->opts.dedupe_max_bytes = EB_BUS_DEFAULT_DEDUPE_MAX_BYTES;
    if (!bus->opts.delivery_cache_bytes)
        bus->opts.delivery_cache_bytes = EB_BUS_DEFAULT_DELIVERY_CACHE_BYTES;
    if (!bus->opts.history_groups)
        bus->opts.history_groups = EB_BUS_DEFAULT_HISTORY_GROUPS;
    if (!bus->opts.max_schemas)
        bus->opts.max_schemas = EB_BUS_DEFAULT_MAX_SCHEMAS;
    if (!bus->opts.max_groups)
        bus->opts.max_groups = EB_BUS_DEFAULT_MAX_GROUPS;
    if (!bus->opts.max_in_flight_total)
        bus->opts.max_in_flight_total = EB_BUS_DEFAULT_MAX_IN_FLIGHT_TOTAL;
    if (!bus->opts.max_delay_ms)
        bus->opts.max_delay_ms = EB_BUS_DEFAULT_MAX_DELAY_MS;
    if (!bus->opts.max_delayed)
        bus->opts.max_delayed = EB_BUS_DEFAULT_MAX_DELAYED;
    if (!bus->opts.max_types)
        bus->opts.max_types = EB_BUS_DEFAULT_MAX_TYPES;
    eb__bus_delay_init(bus);
    eb_dedupe_init(&bus->dedupe, opts->dedupe_window_ms * 1000u, bus->opts.dedupe_max_bytes);
    eb_buf_init(&bus->enc);
    eb__bus_counts_init(&bus->counts, bus->opts.max_types);
    eb_schema_errors_init(&bus->verrs, 100);
    int rc = eb__bus_groups_init(bus);
    if (rc == 0)
        rc = uv_async_init(loop, &bus->async, on_async) ? EB_EIO : 0;
    if (rc == 0) {
        bus->async.data = bus;
        bus->handles++;
        rc = open_stores(bus, rep);
    }
    if (rc) {
        eb_bus_close(bus);
        return rc;
    }
    size_t it = 0;
    const eb_map_slot *s;
    while ((s = eb_map_next(&bus->reg.subjects, &it)))
        rep->schemas += ((eb_subject *)s->val)->nvers;
    rep->groups = bus->grp.by_name.len;
    *out = bus;
    return 0;
}

static void free_bus(eb_bus *bus)
{
    eb__bus_tokens_reset(bus);
    eb_map_free(&bus->tokens);
    eb_map_free(&bus->token_hash);
    eb_registry_free(&bus->reg);
    eb_dedupe_free(&bus->dedupe);
    eb__bus_counts_free(&bus->counts);
    eb__bus_delay_free(bus);
    if (bus->scratch_doc)
        eb_json_doc_free(bus->scratch_doc);
    eb_buf_free(&bus->enc);
    eb_schema_errors_free(&bus->verrs);
    free(bus->recs);
    free(bus->offs);
    free(bus->bidx);
    free((char *)bus->opts.data_dir);
    pthread_mutex_destroy(&bus->done_mu);
    free(bus);
}

/* A libuv handle of the bus closed; the last one frees the bus. */
void eb__bus_handle_closed(uv_handle_t *h)
{
    eb_bus *bus = h->data;
    if (--bus->handles == 0)
        free_bus(bus);
}

void eb_bus_close(eb_bus *bus)
{
    if (!bus)
        return;
    bus->closing = 1;
    eb__bus_groups_close(bus);
    eb__bus_delay_close(bus);
    if (bus->grp.timer.data)
        uv_close((uv_handle_t *)&bus->grp.timer, eb__bus_handle_closed);
    /* Closing the stores drains and syncs their pending appends; their
     * callbacks land in done_q, answered here before the handle goes. */
    if (bus->events)
        eb_store_close(bus->events);
    if (bus->meta)
        eb_meta_close(bus->meta);
    bus->events = NULL;
    bus->meta = NULL;
    if (bus->async.data) {
        on_async(&bus->async);
        release_waiters(bus, EB_ECLOSED);
        uv_close((uv_handle_t *)&bus->async, eb__bus_handle_closed);
    } else if (bus->handles == 0) {
        free_bus(bus);
    }
}

int eb_bus_schema_check(eb_bus *bus, const char *type, size_t n, const char *schema, size_t len,
                        bool mode_given, eb_compat_mode mode, eb_registry_verdict *chk)
{
    return eb_registry_check(&bus->reg, type, n, schema, len, mode_given, mode, chk, NULL);
}

const eb_subject *eb_bus_schema_subject(eb_bus *bus, const char *type, size_t n)
{
    const eb_subject *s = eb_registry_subject(&bus->reg, type, n);
    return s && s->nvers ? s : NULL;
}

void eb_bus_schemas_each(eb_bus *bus, eb_subject_fn fn, void *arg)
{
    size_t it = 0;
    const eb_map_slot *s;
    while ((s = eb_map_next(&bus->reg.subjects, &it)))
        if (((const eb_subject *)s->val)->nvers)
            fn(arg, s->val);
}
