/* codec.c - the meta records: every record's format, written (into an
 * outbox) and read back (at startup), and snapshots of the whole state.
 * The kinds are listed in meta.h (schemas) and group.h (groups). */
#include <stdlib.h>
#include <string.h>

#include "bus/codec.h"
#include "bus/group_int.h"
#include "bus/meta.h"
#include "eventbus/err.h"
#include "util/base64.h"
#include "util/xmalloc.h"

/* --- writing ------------------------------------------------------------------ */

/* Opens a record {"g":name, ... */
static eb_jw *rec_open(eb_group *g, eb_outbox *ob, uint16_t kind, eb_jw *w)
{
    eb_outbox_begin(ob, kind, w);
    eb_jw_obj_open(w);
    eb_jw_key(w, "g");
    eb_jw_str(w, g->name);
    return w;
}

static void rec_close(eb_outbox *ob, eb_jw *w)
{
    eb_jw_obj_close(w);
    eb_outbox_end(ob);
}

/* Writes a DEAD record for e. */
void eb__rec_dead(eb_group *g, const dead *e, int cls, bool with_payload, eb_outbox *ob)
{
    eb_jw w;
    rec_open(g, ob, EB_META_DEAD, &w);
    eb_jw_key(&w, "c");
    eb_jw_strn(&w, &eb__cls_char[cls], 1);
    eb_jw_key(&w, "s");
    eb_jw_uint(&w, e->seq);
    eb_jw_key(&w, "t");
    eb_jw_uint(&w, e->ts_us);
    eb_jw_key(&w, "n");
    eb_jw_uint(&w, e->attempts);
    eb_jw_key(&w, "e");
    eb_jw_str(&w, e->error ? e->error : "");
    eb_jw_key(&w, "who");
    eb_jw_str(&w, e->consumer ? e->consumer : "");
    eb_jw_key(&w, "at");
    eb_jw_uint(&w, e->failed_at);
    if (e->fh) { /* since histories: the first failure and the last few */
        eb_jw_key(&w, "first");
        eb_jw_uint(&w, e->fh->first_us);
        eb_jw_key(&w, "h");
        eb_jw_arr_open(&w);
        for (uint32_t i = 0; i < e->fh->n; i++) {
            const eb_failure *f = &e->fh->v[i];
            eb_jw_arr_open(&w);
            eb_jw_uint(&w, f->attempt);
            eb_jw_uint(&w, f->at_us);
            eb_jw_str(&w, f->consumer);
            eb_jw_str(&w, f->error);
            eb_jw_arr_close(&w);
        }
        eb_jw_arr_close(&w);
    }
    if (with_payload) {
        eb_jw_key(&w, "p");
        eb_buf *o = &ob->text;
        eb_jw_raw(&w, "\"", 1);
        eb_base64_encode(o, e->payload, e->len);
        eb_buf_putc(o, '"');
    }
    rec_close(ob, &w);
}

void eb__rec_seqs(eb_group *g, uint16_t kind, dead **v, size_t k, eb_outbox *ob)
{
    eb_jw w;
    rec_open(g, ob, kind, &w);
    eb_jw_key(&w, "s");
    eb_jw_arr_open(&w);
    for (size_t i = 0; i < k; i++)
        eb_jw_uint(&w, v[i]->seq);
    eb_jw_arr_close(&w);
    rec_close(ob, &w);
}

void eb__rec_replay(eb_group *g, const flow *f, eb_outbox *ob)
{
    eb_jw w;
    rec_open(g, ob, EB_META_REPLAY, &w);
    eb_jw_key(&w, "id");
    eb_jw_uint(&w, f->id);
    eb_jw_key(&w, "from");
    eb_jw_uint(&w, f->from);
    eb_jw_key(&w, "to");
    eb_jw_uint(&w, f->to);
    eb_jw_key(&w, "types");
    if (f->types) {
        eb_jw_arr_open(&w);
        for (size_t i = 0; i < f->ntypes; i++)
            eb_jw_str(&w, f->types[i]);
        eb_jw_arr_close(&w);
    } else {
        eb_jw_null(&w);
    }
    rec_close(ob, &w);
}

static void write_ranges(eb_jw *w, const char *key, const eb_rangeset *s)
{
    eb_jw_key(w, key);
    eb_jw_arr_open(w);
    for (size_t i = 0; i < s->n; i++) {
        eb_jw_arr_open(w);
        eb_jw_uint(w, s->r[i].a);
        eb_jw_uint(w, s->r[i].b);
        eb_jw_arr_close(w);
    }
    eb_jw_arr_close(w);
}

/* The run being gathered, into lease_items. */
static void lease_close_run(eb_group *g)
{
    lease_run *r = &g->lrun;
    if (!r->n)
        return;
    eb_buf *b = &g->lease_items;
    eb_buf_printf(b, "%s[\"%c\",%llu,%llu,%u,%llu]", b->len ? "," : "", eb__cls_char[r->cls],
                  (unsigned long long)r->first, (unsigned long long)r->n, r->attempt,
                  (unsigned long long)r->deadline);
    r->n = 0;
}

/* A LEASE entry, ["<cls>", first, n, attempt, deadline]: seqs first..first+n-1
 * of one class, each leased (or its lease extended) as that attempt until
 * deadline (µs). A pull's leases are one run when its seqs are consecutive. */
void eb__rec_lease_gather(eb_group *g, int cls, uint64_t seq, uint32_t attempt,
                          uint64_t deadline)
{
    lease_run *r = &g->lrun;
    if (r->n && r->cls == cls && r->first + r->n == seq && r->attempt == attempt &&
        r->deadline == deadline) {
        r->n++;
        return;
    }
    lease_close_run(g);
    *r = (lease_run){seq, 1, deadline, attempt, cls};
}

int eb_group_flush(eb_group *g, eb_outbox *ob)
{
    eb_jw w;
    /* Leases first: an ack or a failure gathered with them ends them. */
    if (g->lrun.n || g->lease_items.len) {
        lease_close_run(g);
        rec_open(g, ob, EB_META_LEASE, &w);
        eb_jw_key(&w, "l");
        eb_jw_raw(&w, "[", 1);
        eb_buf_append(&ob->text, g->lease_items.data, g->lease_items.len);
        eb_buf_putc(&ob->text, ']');
        rec_close(ob, &w);
        eb_buf_reset(&g->lease_items);
    }
    if (g->ack_m.n || g->ack_r.n || g->ack_d.len) {
        rec_open(g, ob, EB_META_ACK, &w);
        if (g->ack_m.n)
            write_ranges(&w, "m", &g->ack_m);
        if (g->ack_r.n)
            write_ranges(&w, "r", &g->ack_r);
        if (g->ack_d.len) {
            eb_jw_key(&w, "d");
            eb_jw_raw(&w, "[", 1);
            eb_buf_append(&ob->text, g->ack_d.data, g->ack_d.len);
            eb_buf_putc(&ob->text, ']');
        }
        rec_close(ob, &w);
        eb_rangeset_clear(&g->ack_m);
        eb_rangeset_clear(&g->ack_r);
        eb_buf_reset(&g->ack_d);
    }
    if (g->fail_items.len) {
        rec_open(g, ob, EB_META_FAIL, &w);
        eb_jw_key(&w, "f");
        eb_jw_raw(&w, "[", 1);
        eb_buf_append(&ob->text, g->fail_items.data, g->fail_items.len);
        eb_buf_putc(&ob->text, ']');
        rec_close(ob, &w);
        eb_buf_reset(&g->fail_items);
    }
    return eb_buf_failed(&ob->text) ? EB_ENOMEM : 0;
}

/* A FAIL entry: ["<cls>", seq, fails, due, error] and, since histories,
 * the failure's time, consumer and attempt and the first failure's time:
 * [..., at, consumer, attempt, first]. Entries of one seq are applied in
 * order, each adding its failure to the delivery's history. */
void eb__rec_fail_gather(eb_group *g, int cls, uint64_t seq, uint32_t fails, uint64_t due,
                         const char *err, const eb_failure *f, uint64_t first_us)
{
    eb_buf *b = &g->fail_items;
    if (b->len)
        eb_buf_putc(b, ',');
    eb_buf_printf(b, "[\"%c\",%llu,%u,%llu,", eb__cls_char[cls], (unsigned long long)seq, fails,
                  (unsigned long long)due);
    if (!err)
        err = "";
    eb_json_escape(b, err, strlen(err));
    if (f) {
        eb_buf_printf(b, ",%llu,", (unsigned long long)f->at_us);
        eb_json_escape(b, f->consumer, strlen(f->consumer));
        eb_buf_printf(b, ",%u,%llu", f->attempt, (unsigned long long)first_us);
    }
    eb_buf_putc(b, ']');
}

/* --- reading back at startup -----------------------------------------------
 * Decoders only: they turn a parsed record into plain values; group_load.c
 * applies them to the engine. */

static int cls_of(const eb_json *c)
{
    if (!eb_json_is(c, EB_JSON_STRING) || c->len != 1)
        return -1;
    const char *p = memchr(eb__cls_char, c->str[0], NCLS);
    return p ? (int)(p - eb__cls_char) : -1;
}

static uint64_t jnum(const eb_json *v)
{
    return v && v->type == EB_JSON_NUMBER && (v->flags & EB_JSON_F_INT) && v->i64 >= 0
               ? (uint64_t)v->i64
               : 0;
}

static eb_rec_iter array_of(const eb_json *rec, const char *key)
{
    const eb_json *a = eb_json_get(rec, key);
    return (eb_rec_iter){eb_json_is(a, EB_JSON_ARRAY) ? a->child : NULL};
}

bool eb__rec_next_range(eb_rec_iter *it, uint64_t *a, uint64_t *b)
{
    if (!it->e)
        return false;
    *a = jnum(eb_json_at(it->e, 0));
    *b = jnum(eb_json_at(it->e, 1));
    it->e = it->e->next;
    return true;
}

bool eb__rec_next_seq(eb_rec_iter *it, uint64_t *seq)
{
    if (!it->e)
        return false;
    *seq = jnum(it->e);
    it->e = it->e->next;
    return true;
}

void eb__rec_ack_decode(const eb_json *rec, eb_rec_ack *out)
{
    out->m = array_of(rec, "m");
    out->r = array_of(rec, "r");
    out->d = array_of(rec, "d");
}

eb_rec_iter eb__rec_lease_items(const eb_json *rec)
{
    return array_of(rec, "l");
}

int eb__rec_next_lease(eb_rec_iter *it, eb_rec_lease *out)
{
    const eb_json *e = it->e;
    if (!e)
        return 0;
    it->e = e->next;
    out->cls = cls_of(eb_json_at(e, 0));
    out->first = jnum(eb_json_at(e, 1));
    out->n = jnum(eb_json_at(e, 2));
    out->attempt = (uint32_t)jnum(eb_json_at(e, 3));
    out->deadline = jnum(eb_json_at(e, 4));
    if (out->cls < 0 || !out->first || !out->n || out->n > EB_GROUP_MAX_PENDING ||
        out->first > UINT64_MAX - out->n || !out->attempt)
        return EB_ECORRUPT;
    return 1;
}

eb_rec_iter eb__rec_fail_items(const eb_json *rec)
{
    return array_of(rec, "f");
}

int eb__rec_next_fail(eb_rec_iter *it, eb_rec_fail *out)
{
    const eb_json *e = it->e;
    if (!e)
        return 0;
    it->e = e->next;
    const eb_json *err = eb_json_at(e, 4);
    out->cls = cls_of(eb_json_at(e, 0));
    if (out->cls < 0 || !eb_json_is(err, EB_JSON_STRING))
        return EB_ECORRUPT;
    out->seq = jnum(eb_json_at(e, 1));
    out->fails = (uint32_t)jnum(eb_json_at(e, 2));
    out->due = jnum(eb_json_at(e, 3));
    out->error = (eb_str){err->str, err->len};
    const eb_json *who = eb_json_at(e, 6);
    out->has_detail = eb_json_is(who, EB_JSON_STRING);
    if (out->has_detail) {
        out->at = jnum(eb_json_at(e, 5));
        out->consumer = (eb_str){who->str, who->len};
        out->attempt = (uint32_t)jnum(eb_json_at(e, 7));
        out->first = jnum(eb_json_at(e, 8));
    }
    return 1;
}

int eb__rec_dead_decode(const eb_json *rec, eb_rec_dead *out)
{
    const eb_json *e = eb_json_get(rec, "e"), *who = eb_json_get(rec, "who");
    out->cls = cls_of(eb_json_get(rec, "c"));
    out->seq = jnum(eb_json_get(rec, "s"));
    if (out->cls < 0 || !out->seq || !eb_json_is(e, EB_JSON_STRING) ||
        !eb_json_is(who, EB_JSON_STRING))
        return EB_ECORRUPT;
    out->error = (eb_str){e->str, e->len};
    out->consumer = (eb_str){who->str, who->len};
    out->ts_us = jnum(eb_json_get(rec, "t"));
    out->attempts = (uint32_t)jnum(eb_json_get(rec, "n"));
    out->failed_at = jnum(eb_json_get(rec, "at"));
    out->payload = eb_json_get(rec, "p");
    out->first = jnum(eb_json_get(rec, "first"));
    out->hist = array_of(rec, "h");
    return 0;
}

int eb__rec_next_hist(eb_rec_iter *it, uint32_t *attempt, uint64_t *at, eb_str *who, eb_str *err)
{
    const eb_json *e = it->e;
    if (!e)
        return 0;
    it->e = e->next;
    const eb_json *w = eb_json_at(e, 2), *m = eb_json_at(e, 3);
    if (!eb_json_is(w, EB_JSON_STRING) || !eb_json_is(m, EB_JSON_STRING))
        return EB_ECORRUPT;
    *attempt = (uint32_t)jnum(eb_json_at(e, 0));
    *at = jnum(eb_json_at(e, 1));
    *who = (eb_str){w->str, w->len};
    *err = (eb_str){m->str, m->len};
    return 1;
}

int eb__rec_dead_payload(const eb_rec_dead *r, eb_buf *out, eb_event_view *v)
{
    const eb_json *p = r->payload;
    if (!eb_json_is(p, EB_JSON_STRING) || eb_base64_decode(out, p->str, p->len) ||
        eb_buf_failed(out) || eb_event_decode(out->data, out->len, v))
        return EB_ECORRUPT;
    return 0;
}

eb_rec_iter eb__rec_seqs_decode(const eb_json *rec)
{
    return array_of(rec, "s");
}

int eb__rec_replay_decode(const eb_json *rec, eb_rec_replay *out)
{
    out->ntypes = 0;
    eb_rec_iter t = array_of(rec, "types");
    for (const eb_json *e = t.e; e && out->ntypes < EB_GROUP_MAX_TYPES; e = e->next)
        if (e->type == EB_JSON_STRING)
            out->types[out->ntypes++] = (char *)e->str;
    out->id = jnum(eb_json_get(rec, "id"));
    out->from = jnum(eb_json_get(rec, "from"));
    out->to = jnum(eb_json_get(rec, "to"));
    return out->id ? 0 : EB_ECORRUPT;
}

void eb__rec_done_decode(const eb_json *rec, eb_rec_done *out)
{
    out->flow = jnum(eb_json_get(rec, "flow"));
    out->r = array_of(rec, "r");
}

/* --- snapshots ------------------------------------------------------------- */

static void done_record(eb_group *g, const flow *f, uint64_t floor, eb_outbox *ob)
{
    eb_rangeset tmp = f->done;
    eb_jw w;
    rec_open(g, ob, EB_META_DONE, &w);
    eb_jw_key(&w, "flow");
    eb_jw_uint(&w, f->id);
    eb_jw_key(&w, "r");
    eb_jw_arr_open(&w);
    for (size_t i = 0; i < tmp.n; i++) {
        if (tmp.r[i].b <= floor)
            continue;
        eb_jw_arr_open(&w);
        eb_jw_uint(&w, tmp.r[i].a > floor ? tmp.r[i].a : floor);
        eb_jw_uint(&w, tmp.r[i].b);
        eb_jw_arr_close(&w);
    }
    eb_jw_arr_close(&w);
    rec_close(ob, &w);
}

/* FAIL entries for live deliveries with failed attempts. */
static void fails_record(eb_group *g)
{
    for (int c = 0; c < NCLS; c++) {
        for (eb_dlv *d = g->lhead[c]; d; d = d->lnext) {
            if (!d->fails)
                continue;
            uint64_t due = d->state == EB_DLV_INFLIGHT ? 0 : d->tm.key;
            if (!d->fh) { /* failures read from records written before histories */
                eb__rec_fail_gather(g, c, d->seq, d->fails, due, d->last_error, NULL, 0);
                continue;
            }
            for (uint32_t i = 0; i < d->fh->n; i++) /* one entry per failure kept */
                eb__rec_fail_gather(g, c, d->seq, d->fails, due, d->fh->v[i].error,
                                    &d->fh->v[i], d->fh->first_us);
        }
    }
}

void eb__rec_group_state(eb_group *g, eb_outbox *ob)
{
    /* The caller wrote the GROUP record (config, base = eb_group_base()). */
    uint64_t floor = eb__group_floor(g);
    done_record(g, &g->main, floor, ob);
    for (flow *f = g->replays; f; f = f->next) {
        eb__rec_replay(g, f, ob);
        done_record(g, f, 0, ob);
    }
    for (size_t i = 0; i < g->ndlq; i++) {
        dead *e = eb_imap_get(&g->dlq, g->dlq_seqs[i]);
        if (e)
            eb__rec_dead(g, e, CLS_DLQ, true, ob);
    }
    dead **v = eb_xmalloc(g->ndlq * sizeof *v);
    size_t k = 0;
    for (size_t i = 0; i < g->ndlq; i++) {
        dead *e = eb_imap_get(&g->dlq, g->dlq_seqs[i]);
        if (e && e->redriven)
            v[k++] = e;
    }
    if (k)
        eb__rec_seqs(g, EB_META_REDRIVE, v, k, ob);
    free(v);
    /* Gathered acks and fails are flushed by the caller before a snapshot,
     * so fail_items is empty here and holds only the snapshot's entries. */
    eb_rangeset_clear(&g->ack_m);
    eb_rangeset_clear(&g->ack_r);
    eb_buf_reset(&g->ack_d);
    eb_buf_reset(&g->fail_items);
    eb_buf_reset(&g->lease_items);
    g->lrun.n = 0;
    fails_record(g);
    for (int c = 0; c < NCLS; c++)
        for (eb_dlv *d = g->lhead[c]; d; d = d->lnext)
            if (d->state == EB_DLV_INFLIGHT)
                eb__rec_lease_gather(g, c, d->seq, d->attempt, d->tm.key);
}

/* --- schema and group-table records ------------------------------------------ */

int eb__rec_schema(const char *type, uint32_t version, eb_compat_mode mode, const char *text,
                   size_t len, uint64_t ts_us, eb_buf *out)
{
    eb_jw w;
    eb_jw_init(&w, out);
    eb_jw_obj_open(&w);
    eb_jw_key(&w, "type");
    eb_jw_str(&w, type);
    eb_jw_key(&w, "version");
    eb_jw_uint(&w, version);
    eb_jw_key(&w, "compatibility");
    eb_jw_str(&w, eb_compat_mode_name(mode));
    eb_jw_key(&w, "ts");
    eb_jw_uint(&w, ts_us);
    eb_jw_key(&w, "schema");
    eb_jw_raw(&w, text, len);
    eb_jw_obj_close(&w);
    return eb_buf_failed(out) ? EB_ENOMEM : 0;
}

int eb__rec_schema_decode(const eb_json *rec, eb_rec_schema *out)
{
    const eb_json *type = eb_json_get(rec, "type"), *ver = eb_json_get(rec, "version"),
                  *mode = eb_json_get(rec, "compatibility"), *ts = eb_json_get(rec, "ts"),
                  *schema = eb_json_get(rec, "schema");
    out->mode = EB_COMPAT_BACKWARD;
    if (!eb_json_is(type, EB_JSON_STRING) || !eb_json_is(ver, EB_JSON_NUMBER) || !schema ||
        !eb_json_is(mode, EB_JSON_STRING) ||
        eb_compat_mode_parse(mode->str, mode->len, &out->mode))
        return EB_ECORRUPT;
    out->type = (eb_str){type->str, type->len};
    out->version = (uint32_t)ver->i64;
    out->ts_us = ts ? (uint64_t)ts->i64 : 0;
    out->schema = schema;
    return 0;
}

void eb__rec_group(eb_outbox *ob, const eb_group *g, uint64_t base)
{
    eb_jw w;
    eb_outbox_begin(ob, EB_META_GROUP, &w);
    eb_jw_obj_open(&w);
    eb_jw_key(&w, "g");
    eb_jw_str(&w, g->name);
    eb_jw_key(&w, "cfg");
    eb_group_cfg_write(&w, &g->cfg); /* a push secret masked there: */
    const eb_push_cfg *p = g->cfg.push;
    if (p && p->secret) { /* the secrets themselves (since push delivery) */
        eb_jw_key(&w, "push_secrets");
        eb_jw_obj_open(&w);
        eb_jw_key(&w, "s");
        eb_jw_str(&w, p->secret);
        if (p->prev_secret) {
            eb_jw_key(&w, "p");
            eb_jw_str(&w, p->prev_secret);
            eb_jw_key(&w, "pu");
            eb_jw_uint(&w, p->prev_until_us);
        }
        eb_jw_obj_close(&w);
    }
    eb_jw_key(&w, "base");
    eb_jw_uint(&w, base);
    eb_jw_key(&w, "paused");
    eb_jw_bool(&w, g->paused);
    eb_jw_obj_close(&w);
    eb_outbox_end(ob);
}

void eb__rec_group_name(eb_outbox *ob, uint16_t kind, const char *name, int paused)
{
    eb_jw w;
    eb_outbox_begin(ob, kind, &w);
    eb_jw_obj_open(&w);
    eb_jw_key(&w, "g");
    eb_jw_str(&w, name);
    if (paused >= 0) {
        eb_jw_key(&w, "paused");
        eb_jw_bool(&w, paused);
    }
    eb_jw_obj_close(&w);
    eb_outbox_end(ob);
}

const eb_json *eb__rec_group_of(const eb_json *rec)
{
    const eb_json *name = eb_json_get(rec, "g");
    return eb_json_is(name, EB_JSON_STRING) ? name : NULL;
}

int eb__rec_group_decode(const eb_json *rec, eb_group_cfg *cfg, uint64_t *base, bool *paused)
{
    eb_field_error fe;
    if (eb_group_cfg_parse(eb_json_get(rec, "cfg"), cfg, &fe) != 0)
        return EB_ECORRUPT;
    if (cfg->push) { /* its secrets: "push_secrets" {"s", "p", "pu"} */
        const eb_json *ps = eb_json_get(rec, "push_secrets"), *s = eb_json_get(ps, "s"),
                      *pv = eb_json_get(ps, "p");
        eb_push_cfg *p = cfg->push;
        free(p->secret);
        p->secret = eb_json_is(s, EB_JSON_STRING) ? eb_xstrndup(s->str, s->len) : NULL;
        p->masked = false;
        if (eb_json_is(pv, EB_JSON_STRING)) {
            p->prev_secret = eb_xstrndup(pv->str, pv->len);
            p->prev_until_us = jnum(eb_json_get(ps, "pu"));
        }
        if (!p->secret) {
            eb_group_cfg_free(cfg);
            return EB_ECORRUPT;
        }
    }
    const eb_json *b = eb_json_get(rec, "base");
    *base = b && b->type == EB_JSON_NUMBER ? (uint64_t)b->i64 : 1;
    *paused = eb__rec_paused(rec);
    return 0;
}

bool eb__rec_paused(const eb_json *rec)
{
    const eb_json *p = eb_json_get(rec, "paused");
    return p && p->type == EB_JSON_TRUE;
}

static void snapshot_schemas(eb_outbox *ob, const eb_registry *reg)
{
    size_t it = 0;
    const eb_map_slot *s;
    while ((s = eb_map_next(&reg->subjects, &it))) {
        const eb_subject *sub = s->val;
        for (size_t i = 0; i < sub->nvers; i++) {
            const eb_schema_ver *v = &sub->vers[i];
            eb_jw w;
            eb_outbox_begin(ob, EB_META_SCHEMA, &w);
            eb__rec_schema(sub->type, v->version, sub->compat, v->text, v->len,
                           v->registered_us, &ob->text);
            eb_outbox_end(ob);
        }
    }
}

/* --- token records ----------------------------------------------------------- */

void eb__rec_token(eb_outbox *ob, const eb_token *t, bool del)
{
    static const char hex[] = "0123456789abcdef";
    eb_jw w;
    eb_outbox_begin(ob, del ? EB_META_TOKEN_DEL : EB_META_TOKEN, &w);
    eb_jw_obj_open(&w);
    eb_jw_key(&w, "name");
    eb_jw_str(&w, t->name);
    if (!del) {
        char h[EB_TOKEN_HASH_LEN * 2];
        for (size_t i = 0; i < EB_TOKEN_HASH_LEN; i++) {
            h[2 * i] = hex[t->hash[i] >> 4];
            h[2 * i + 1] = hex[t->hash[i] & 15];
        }
        eb_jw_key(&w, "hash");
        eb_jw_strn(&w, h, sizeof h);
        eb_jw_key(&w, "scopes");
        eb_jw_arr_open(&w);
        for (size_t i = 0; i < t->nscopes; i++)
            eb_jw_str(&w, t->scopes[i]);
        eb_jw_arr_close(&w);
        eb_jw_key(&w, "created");
        eb_jw_uint(&w, t->created_us);
        eb_jw_key(&w, "expires");
        eb_jw_uint(&w, t->expires_us);
    }
    eb_jw_obj_close(&w);
    eb_outbox_end(ob);
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

void eb__token_free(eb_token *t)
{
    for (size_t i = 0; i < t->nscopes; i++)
        free(t->scopes[i]);
    free(t->scopes);
    t->scopes = NULL;
    t->nscopes = 0;
}

int eb__rec_token_decode(const eb_json *rec, bool del, eb_token *out)
{
    memset(out, 0, sizeof *out);
    const eb_json *name = eb_json_get(rec, "name");
    if (!eb_json_is(name, EB_JSON_STRING) || !name->len || name->len > EB_TOKEN_NAME_MAX)
        return EB_ECORRUPT;
    memcpy(out->name, name->str, name->len);
    if (del)
        return 0;
    const eb_json *h = eb_json_get(rec, "hash"), *sc = eb_json_get(rec, "scopes");
    if (!eb_json_is(h, EB_JSON_STRING) || h->len != 2 * EB_TOKEN_HASH_LEN ||
        !eb_json_is(sc, EB_JSON_ARRAY))
        return EB_ECORRUPT;
    for (size_t i = 0; i < EB_TOKEN_HASH_LEN; i++) {
        int a = hexval(h->str[2 * i]), b = hexval(h->str[2 * i + 1]);
        if (a < 0 || b < 0)
            return EB_ECORRUPT;
        out->hash[i] = (uint8_t)(a << 4 | b);
    }
    size_t n = 0;
    for (const eb_json *e = sc->child; e; e = e->next)
        n++;
    if (n > EB_TOKEN_MAX_SCOPES)
        return EB_ECORRUPT;
    out->scopes = eb_xcalloc(n ? n : 1, sizeof *out->scopes);
    for (const eb_json *e = sc->child; e; e = e->next) {
        if (!eb_json_is(e, EB_JSON_STRING)) {
            eb__token_free(out);
            return EB_ECORRUPT;
        }
        out->scopes[out->nscopes] = eb_xmalloc(e->len + 1);
        memcpy(out->scopes[out->nscopes], e->str, e->len);
        out->scopes[out->nscopes++][e->len] = '\0';
    }
    out->created_us = jnum(eb_json_get(rec, "created"));
    out->expires_us = jnum(eb_json_get(rec, "expires"));
    return 0;
}

int eb__snapshot_write(eb_outbox *ob, const eb_registry *reg, const eb_map *groups,
                       const eb_map *tokens)
{
    eb_jw w;
    eb_outbox_begin(ob, EB_META_SNAP, &w);
    eb_jw_obj_open(&w);
    eb_jw_obj_close(&w);
    eb_outbox_end(ob);
    snapshot_schemas(ob, reg);
    size_t it = 0;
    const eb_map_slot *s;
    while ((s = eb_map_next(groups, &it))) {
        eb_group *g = s->val;
        eb__rec_group(ob, g, eb__group_floor(g));
        eb_group_snapshot(g, ob);
    }
    it = 0;
    while ((s = eb_map_next(tokens, &it)))
        eb__rec_token(ob, s->val, false);
    return eb_buf_failed(&ob->text) ? EB_ENOMEM : 0;
}

/* --- delayed events (delay.c) ------------------------------------------------ */

void eb__rec_delay(eb_jw *w, uint64_t u, bool has_w, uint64_t w_due, uint64_t w_seq,
                   const eb_str *types, size_t nt, const eb_delay_ent *e, size_t n)
{
    eb_jw_obj_open(w);
    if (u) {
        eb_jw_key(w, "u");
        eb_jw_uint(w, u);
    }
    if (has_w) {
        eb_jw_key(w, "w");
        eb_jw_arr_open(w);
        eb_jw_uint(w, w_due);
        eb_jw_uint(w, w_seq);
        eb_jw_arr_close(w);
    }
    if (n) {
        eb_jw_key(w, "t");
        eb_jw_arr_open(w);
        for (size_t i = 0; i < nt; i++)
            eb_jw_strn(w, types[i].ptr, types[i].len);
        eb_jw_arr_close(w);
        eb_jw_key(w, "s");
        eb_jw_arr_open(w);
        for (size_t i = 0; i < n; i++) {
            eb_jw_arr_open(w);
            eb_jw_uint(w, e[i].seq);
            eb_jw_uint(w, e[i].due);
            eb_jw_uint(w, e[i].tid);
            eb_jw_arr_close(w);
        }
        eb_jw_arr_close(w);
    }
    eb_jw_obj_close(w);
}

static bool is_u64(const eb_json *v)
{
    return v && v->type == EB_JSON_NUMBER && (v->flags & EB_JSON_F_INT) && v->i64 >= 0;
}

int eb__rec_delay_decode(const eb_json *rec, eb_rec_delay *out)
{
    memset(out, 0, sizeof *out);
    if (!eb_json_is(rec, EB_JSON_OBJECT))
        return EB_ECORRUPT;
    const eb_json *u = eb_json_get(rec, "u"), *w = eb_json_get(rec, "w");
    if (u) {
        if (!is_u64(u))
            return EB_ECORRUPT;
        out->has_u = true;
        out->u = (uint64_t)u->i64;
    }
    if (w) {
        if (!eb_json_is(w, EB_JSON_ARRAY) || w->len != 2 || !is_u64(eb_json_at(w, 0)) ||
            !is_u64(eb_json_at(w, 1)))
            return EB_ECORRUPT;
        out->has_w = true;
        out->w_due = jnum(eb_json_at(w, 0));
        out->w_seq = jnum(eb_json_at(w, 1));
    }
    out->types = eb_json_get(rec, "t");
    out->entries = eb_json_get(rec, "s");
    if ((out->types && !eb_json_is(out->types, EB_JSON_ARRAY)) ||
        (out->entries && !eb_json_is(out->entries, EB_JSON_ARRAY)))
        return EB_ECORRUPT;
    return 0;
}

int eb__rec_delay_entry(const eb_json *item, uint64_t *seq, uint64_t *due, uint32_t *ti)
{
    if (!eb_json_is(item, EB_JSON_ARRAY) || item->len != 3)
        return EB_ECORRUPT;
    const eb_json *a = item->child, *b = a->next, *c = b->next;
    if (!is_u64(a) || !is_u64(b) || !is_u64(c) || c->i64 > UINT32_MAX)
        return EB_ECORRUPT;
    *seq = (uint64_t)a->i64;
    *due = (uint64_t)b->i64;
    *ti = (uint32_t)c->i64;
    return 0;
}
