/* codec.c - the meta records: every record's format, written (into an
 * outbox) and read back (at startup), and snapshots of the whole state.
 * The kinds are listed in meta.h (schemas) and group.h (groups). */
#include <stdlib.h>
#include <string.h>

#include "bus/codec.h"
#include "bus/group_int.h"
#include "bus/meta.h"
#include "eventbus.h"
#include "util/base64.h"

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

int eb_group_flush(eb_group *g, eb_outbox *ob)
{
    eb_jw w;
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

void eb__rec_fail_gather(eb_group *g, int cls, uint64_t seq, uint32_t fails, uint64_t due,
                         const char *err)
{
    eb_buf *b = &g->fail_items;
    if (b->len)
        eb_buf_putc(b, ',');
    eb_buf_printf(b, "[\"%c\",%llu,%u,%llu,", eb__cls_char[cls], (unsigned long long)seq, fails,
                  (unsigned long long)due);
    if (!err)
        err = "";
    eb_json_escape(b, err, strlen(err));
    eb_buf_putc(b, ']');
}

/* --- reading back at startup ----------------------------------------------- */

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

static void apply_ranges(const eb_json *arr, eb_group *g, bool main)
{
    if (!eb_json_is(arr, EB_JSON_ARRAY))
        return;
    for (const eb_json *r = arr->child; r; r = r->next) {
        uint64_t a = jnum(eb_json_at(r, 0)), b = jnum(eb_json_at(r, 1));
        if (main)
            eb_rangeset_add(&g->main.done, a, b);
        else
            eb__flow_replay_done(g, a, b);
    }
}

static void apply_ack(eb_group *g, const eb_json *rec)
{
    apply_ranges(eb_json_get(rec, "m"), g, true);
    apply_ranges(eb_json_get(rec, "r"), g, false);
    const eb_json *d = eb_json_get(rec, "d");
    for (const eb_json *s = eb_json_is(d, EB_JSON_ARRAY) ? d->child : NULL; s; s = s->next)
        eb__dlq_remove(g, jnum(s));
}

static int apply_fail(eb_group *g, const eb_json *rec)
{
    const eb_json *f = eb_json_get(rec, "f");
    for (const eb_json *e = eb_json_is(f, EB_JSON_ARRAY) ? f->child : NULL; e; e = e->next) {
        int cls = cls_of(eb_json_at(e, 0));
        const eb_json *err = eb_json_at(e, 4);
        if (cls < 0 || !eb_json_is(err, EB_JSON_STRING))
            return EB_ECORRUPT;
        uint64_t k = eb__fail_key(cls, jnum(eb_json_at(e, 1)));
        failinfo *fi = eb_imap_get(&g->fails, k);
        if (!fi) {
            if (!(fi = calloc(1, sizeof *fi)) || eb_imap_put(&g->fails, k, fi)) {
                free(fi);
                return EB_ENOMEM;
            }
        }
        fi->fails = (uint32_t)jnum(eb_json_at(e, 2));
        fi->due = jnum(eb_json_at(e, 3));
        eb__set_str(&fi->error, err->str, err->len);
    }
    return 0;
}

static void drop_failinfo(eb_group *g, int cls, uint64_t seq)
{
    failinfo *fi = eb_imap_del(&g->fails, eb__fail_key(cls, seq));
    if (fi) {
        free(fi->error);
        free(fi);
    }
}

static int apply_dead(eb_group *g, const eb_json *rec)
{
    int cls = cls_of(eb_json_get(rec, "c"));
    uint64_t seq = jnum(eb_json_get(rec, "s"));
    const eb_json *p = eb_json_get(rec, "p"), *e = eb_json_get(rec, "e"),
                  *who = eb_json_get(rec, "who");
    if (cls < 0 || !seq || !eb_json_is(e, EB_JSON_STRING) || !eb_json_is(who, EB_JSON_STRING))
        return EB_ECORRUPT;
    drop_failinfo(g, cls, seq);
    dead *d = eb_imap_get(&g->dlq, seq);
    bool fresh = !d;
    if (fresh) {
        eb_buf pl = EB_BUF_INIT;
        eb_event_view v;
        if (!eb_json_is(p, EB_JSON_STRING) || eb_base64_decode(&pl, p->str, p->len) ||
            eb_buf_failed(&pl) || eb_event_decode(pl.data, pl.len, &v)) {
            eb_buf_free(&pl);
            return EB_ECORRUPT;
        }
        if (!(d = calloc(1, sizeof *d))) {
            eb_buf_free(&pl);
            return EB_ENOMEM;
        }
        memcpy(d->id, v.id.ptr, v.id.len);
        d->seq = seq;
        d->len = (uint32_t)pl.len;
        d->payload = eb_buf_steal(&pl, NULL);
    } else if (d->redriven) {
        d->redriven = false;
        g->ndead++;
    }
    d->ts_us = jnum(eb_json_get(rec, "t"));
    d->attempts = (uint32_t)jnum(eb_json_get(rec, "n"));
    d->failed_at = jnum(eb_json_get(rec, "at"));
    eb__set_str(&d->error, e->str, e->len);
    eb__set_str(&d->consumer, who->str, who->len);
    if (fresh && eb__dlq_insert(g, d) != 0) {
        eb__dead_free(d);
        return EB_ENOMEM;
    }
    if (cls == CLS_MAIN)
        eb_rangeset_add(&g->main.done, seq, seq + 1);
    else if (cls == CLS_REPLAY)
        eb__flow_replay_done(g, seq, seq + 1);
    return 0;
}

static void apply_seqs(eb_group *g, const eb_json *rec, bool redrive)
{
    const eb_json *s = eb_json_get(rec, "s");
    for (const eb_json *e = eb_json_is(s, EB_JSON_ARRAY) ? s->child : NULL; e; e = e->next) {
        dead *d = eb_imap_get(&g->dlq, jnum(e));
        if (!d)
            continue;
        if (!redrive) {
            eb__dlq_remove(g, d->seq);
        } else if (!d->redriven) {
            d->redriven = true;
            g->ndead--;
            drop_failinfo(g, CLS_DLQ, d->seq);
        }
    }
}

static int apply_replay(eb_group *g, const eb_json *rec)
{
    const eb_json *t = eb_json_get(rec, "types");
    char *types[EB_GROUP_MAX_TYPES];
    size_t n = 0;
    for (const eb_json *e = eb_json_is(t, EB_JSON_ARRAY) ? t->child : NULL;
         e && n < EB_GROUP_MAX_TYPES; e = e->next)
        if (e->type == EB_JSON_STRING)
            types[n++] = (char *)e->str;
    uint64_t id = jnum(eb_json_get(rec, "id"));
    if (!id)
        return EB_ECORRUPT;
    return eb__flow_replay_new(g, id, jnum(eb_json_get(rec, "from")), jnum(eb_json_get(rec, "to")),
                           types, n)
               ? 0
               : EB_ENOMEM;
}

static void apply_done(eb_group *g, const eb_json *rec)
{
    uint64_t id = jnum(eb_json_get(rec, "flow"));
    flow *f = id ? NULL : &g->main;
    for (flow *r = g->replays; !f && r; r = r->next)
        if (r->id == id)
            f = r;
    const eb_json *arr = eb_json_get(rec, "r");
    for (const eb_json *r = f && eb_json_is(arr, EB_JSON_ARRAY) ? arr->child : NULL; r;
         r = r->next)
        eb_rangeset_add(&f->done, jnum(eb_json_at(r, 0)), jnum(eb_json_at(r, 1)));
}

int eb_group_apply(eb_group *g, uint16_t kind, const eb_json *rec)
{
    switch (kind) {
    case EB_META_ACK:     apply_ack(g, rec); return 0;
    case EB_META_FAIL:    return apply_fail(g, rec);
    case EB_META_DEAD:    return apply_dead(g, rec);
    case EB_META_REDRIVE: apply_seqs(g, rec, true); return 0;
    case EB_META_PURGE:   apply_seqs(g, rec, false); return 0;
    case EB_META_REPLAY:  return apply_replay(g, rec);
    case EB_META_DONE:    apply_done(g, rec); return 0;
    default:              return 0;
    }
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
            eb__rec_fail_gather(g, c, d->seq, d->fails, due, d->last_error);
        }
    }
}

int eb_group_snapshot(eb_group *g, eb_outbox *ob)
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
    dead **v = NULL;
    size_t k = 0;
    if (g->ndlq && (v = malloc(g->ndlq * sizeof *v)))
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
    fails_record(g);
    return eb_group_flush(g, ob);
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
    eb_group_cfg_write(&w, &g->cfg);
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

int eb__snapshot_write(eb_outbox *ob, const eb_registry *reg, const eb_map *groups)
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
    return eb_buf_failed(&ob->text) ? EB_ENOMEM : 0;
}
