/* publish.c - publishing: checking every envelope and validating every
 * data against its schema (compiled at registration), resolving duplicates,
 * encoding the new events into one buffer and handing them to the events
 * store as one atomic append; the publish errors; the completion of a
 * publish (opening the stores and the startup passes: bus.c).
 *
 * On the loop thread. Under --fsync always the store's writer thread
 * reports durability through `done_q` + a uv_async and the loop then
 * answers the publisher; under interval and never the store usually writes
 * on this thread and the publisher is answered at once (done_now). */
#include "bus/bus.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* The append of op was written on the loop thread (eb_store_append
 * returned 1): completes op (freed) now, as the loop would on the wake-up.
 * Waking waiting pulls is the caller's: it knows whether it also does. */
static void done_now(eb_bus *bus, pending_op *op)
{
    op->status = 0;
    eb__bus_complete(bus, op);
    if (bus->waiters)
        eb__bus_release_waiters(bus, 0);
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
        eb__bus_index_event(bus, evs[i].key, evs[i].key_version, evs[i].source, evs[i].id, r->seq);
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
