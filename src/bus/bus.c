/* bus.c - opening and closing the bus: the stores, the startup passes
 * (the lookups' and the dedupe window's rebuild, the meta replay's
 * dispatch), the wake-up from the stores' threads; schema registration
 * (publishing: publish.c; reading events: read.c). */
#include "bus/bus.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "bus/bus_int.h"
#include "eventbus/err.h"
#include "util/xmalloc.h"

/* --- completions --------------------------------------------------------- */

/* Completes duplicate-only publishes whose originals are now durable. */
void eb__bus_release_waiters(eb_bus *bus, int status)
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

static void on_async(uv_async_t *h)
{
    eb_bus *bus = h->data;
    int status = eb__bus_drain(bus);
    if (bus->waiters)
        eb__bus_release_waiters(bus, status);
    eb__bus_pulls_wake(bus);
}

/* Enters an appended event into the key and id lookups. Out of memory
 * there costs lookups, not events: counted, and a restart rebuilds them. */
void eb__bus_index_event(eb_bus *bus, eb_str key, uint64_t key_version, eb_str source, eb_str id,
                         uint64_t seq)
{
    if (eb_store_index_add(bus->events, key.ptr, key.ptr ? key.len : 0, key_version, id.ptr,
                           id.len, seq) != 0 ||
        eb_store_index_source_id(bus->events, source.ptr, source.ptr ? source.len : 0, id.ptr,
                                 id.len, seq) != 0)
        bus->lookups_lost++;
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
        eb__bus_index_event(c->bus, v.key, v.key_version, source, v.id, rec->seq);
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
    /* The window below what the lookups cover: only where client ids may
     * be (the engine's summaries say where); then every record from there. */
    uint64_t covered_end = from < durable ? from : durable;
    while (rc == 0 && c.window_us && start < covered_end) {
        uint64_t lo, hi;
        eb_store_client_id_range(bus->events, start, &lo, &hi);
        if (hi > covered_end)
            hi = covered_end;
        rc = lo < hi ? eb__bus_walk_range(bus, lo, hi, rebuild_one, &c) : 0;
        start = hi;
    }
    if (rc == 0 && from < durable) /* lookups to fill: every record from `from` */
        rc = eb__bus_walk_events(bus, from, rebuild_one, &c);
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
    /* The counts by type first: their walk fills the tail's counts, which
     * the groups' lag then reads instead of walking again. */
    rc = eb__bus_count_log(bus);
    if (rc == 0)
        rc = eb__bus_groups_start(bus);
    if (rc == 0)
        rc = eb__bus_delay_start(bus);
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
    eb__tail_init(&bus->tail);
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
    eb__tail_free(&bus->tail);
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
        eb__bus_release_waiters(bus, EB_ECLOSED);
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
