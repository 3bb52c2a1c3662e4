/* ce_write.c - a stored event written out as a CloudEvent 1.0
 * (structured JSON): the one renderer, used by the API (GET, browse and
 * pull with the CloudEvents media types, src/api/ce_out.c) and by push
 * delivery (src/push, "format": "cloudevents").
 *
 * Mapping back (the inverse of src/api/cloudevents.c's): id, source, type,
 * subject, datacontenttype, data as they are; key -> partitionkey,
 * correlationId -> correlationid, causationId -> causationid, version ->
 * schemaversion (an integer); the attributes kept under "extensions"
 * (time, dataschema, extensions) back at the top level with their JSON
 * types. "time" is the time the producer gave, else the append time; our
 * own figures are extensions: ebseq (the seq), ebappendtime (the append
 * time), ebkeyversion (keyed events), and for a pull ebdeliveryid,
 * ebattempt, ebdeadline. An event published natively with no source gets
 * "/eventbus" (CloudEvents requires one); extension names CloudEvents
 * cannot carry are left out, and object or array values are written as
 * JSON text. */
#include <stdio.h>
#include <string.h>

#include "bus/ce_write.h"
#include "eventbus/err.h"

bool eb_ce_name_valid(const char *name, size_t n)
{
    if (n == 0 || n > 20)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9')))
            return false;
    return true;
}

/* Names our own extensions use: a producer's extension of that name is
 * not repeated (ours is what the reader needs). */
static bool ours(const char *k, size_t n)
{
    static const char *const names[] = {"ebseq", "ebappendtime", "ebkeyversion", "ebdeliveryid",
                                        "deliverat", "ebpublishedseq",
                                        "ebattempt", "ebdeadline", "specversion", "id", "source",
                                        "type", "subject", "datacontenttype", "partitionkey",
                                        "correlationid", "causationid", "schemaversion", "data",
                                        "data_base64", "time"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strlen(names[i]) == n && !memcmp(names[i], k, n))
            return true;
    return false;
}

static void str_attr(eb_jw *w, const char *name, const eb_json *v)
{
    if (eb_json_is(v, EB_JSON_STRING)) {
        eb_jw_key(w, name);
        eb_jw_strn(w, v->str, v->len);
    }
}

/* The producer's extension attributes (time and our names aside). */
static void write_exts(eb_jw *w, const eb_json *ext)
{
    for (const eb_json *m = eb_json_is(ext, EB_JSON_OBJECT) ? ext->child : NULL; m; m = m->next) {
        if (!eb_ce_name_valid(m->key, m->key_len) || ours(m->key, m->key_len) ||
            m->type == EB_JSON_NULL)
            continue;
        eb_jw_keyn(w, m->key, m->key_len);
        if (m->type == EB_JSON_OBJECT || m->type == EB_JSON_ARRAY) {
            eb_buf t = EB_BUF_INIT;
            eb_jw tw;
            eb_jw_init(&tw, &t);
            eb_jw_value(&tw, m);
            eb_jw_strn(w, t.data ? t.data : "", t.len);
            eb_buf_free(&t);
        } else {
            eb_jw_value(w, m);
        }
    }
}

int eb_ce_write(eb_jw *w, eb_json_doc *doc, uint64_t seq, uint64_t ts_us, const eb_event_view *v,
                const eb_ce_delivery *d)
{
    if (eb_json_parse(doc, v->json.ptr, v->json.len, NULL, NULL) != 0)
        return EB_ECORRUPT;
    const eb_json *o = eb_json_root(doc), *ext = eb_json_get(o, "extensions");
    const eb_json *src = eb_json_get(o, "source"), *t = eb_json_get(ext, "time");
    const eb_json *ver = eb_json_get(o, "version"), *data = eb_json_get(o, "data");
    char at[32];
    size_t an = eb_time_format(ts_us, at);
    eb_jw_obj_open(w);
    eb_jw_key(w, "specversion");
    eb_jw_str(w, "1.0");
    eb_jw_key(w, "id");
    eb_jw_strn(w, v->id.ptr, v->id.len);
    eb_jw_key(w, "source");
    if (eb_json_is(src, EB_JSON_STRING))
        eb_jw_strn(w, src->str, src->len);
    else
        eb_jw_str(w, "/eventbus");
    eb_jw_key(w, "type");
    eb_jw_strn(w, v->type.ptr, v->type.len);
    str_attr(w, "subject", eb_json_get(o, "subject"));
    str_attr(w, "datacontenttype", eb_json_get(o, "datacontenttype"));
    eb_jw_key(w, "time");
    if (eb_json_is(t, EB_JSON_STRING))
        eb_jw_strn(w, t->str, t->len);
    else
        eb_jw_strn(w, at, an);
    str_attr(w, "partitionkey", eb_json_get(o, "key"));
    str_attr(w, "correlationid", eb_json_get(o, "correlationId"));
    str_attr(w, "causationid", eb_json_get(o, "causationId"));
    if (eb_json_is(ver, EB_JSON_NUMBER)) {
        eb_jw_key(w, "schemaversion");
        eb_jw_value(w, ver);
    } else if (v->schema_version) {
        eb_jw_key(w, "schemaversion");
        eb_jw_uint(w, v->schema_version);
    }
    write_exts(w, ext);
    eb_jw_key(w, "ebseq");
    eb_jw_uint(w, seq);
    eb_jw_key(w, "ebappendtime");
    eb_jw_strn(w, at, an);
    if (v->key_version) {
        eb_jw_key(w, "ebkeyversion");
        eb_jw_uint(w, v->key_version);
    }
    if (v->deliver_us)
        eb_time_write(w, "deliverat", v->deliver_us);
    if (v->origin_seq) {
        eb_jw_key(w, "ebpublishedseq");
        eb_jw_uint(w, v->origin_seq);
    }
    if (d) {
        eb_jw_key(w, "ebdeliveryid");
        eb_jw_str(w, d->id);
        eb_jw_key(w, "ebattempt");
        eb_jw_uint(w, d->attempt);
        eb_jw_key(w, "ebdeadline");
        eb_jw_strn(w, d->deadline, d->deadline_len);
    }
    if (data && data->type != EB_JSON_NULL) {
        eb_jw_key(w, "data");
        eb_jw_raw(w, v->json.ptr + data->src_off, data->src_len);
    }
    eb_jw_obj_close(w);
    return 0;
}
