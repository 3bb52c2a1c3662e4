/* events.c - libeventbus: publishing (one, batch, raw envelopes), reading
 * events back (by id, browsing the log), and the eb_events lists that pulls
 * and dead-letter pages also return. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "events.h"

/* --- publishing ----------------------------------------------------------- */

static void kv(eb_jw *w, const char *k, const char *v)
{
    if (v) {
        eb_jw_key(w, k);
        eb_jw_str(w, v);
    }
}

/* Writes one event; one without an id gets a generated one, so that a copy
 * sent again after a failover is a duplicate the server drops. */
static void write_envelope(eb_client *c, eb_jw *w, const char *type, const char *data,
                           const eb_publish_opts *o)
{
    char gen[EB_ULID_LEN + 1];
    eb_jw_obj_open(w);
    kv(w, "type", type);
    if (!o->id)
        eb__new_id(c, gen);
    kv(w, "id", o->id ? o->id : gen);
    kv(w, "key", o->key);
    kv(w, "source", o->source);
    kv(w, "subject", o->subject);
    kv(w, "correlationId", o->correlation_id);
    kv(w, "causationId", o->causation_id);
    if (o->version) {
        eb_jw_key(w, "version");
        eb_jw_uint(w, o->version);
    }
    if (o->check_version) {
        eb_jw_key(w, "expected_version");
        eb_jw_uint(w, o->expected_version);
    }
    kv(w, "deliver_at", o->deliver_at);
    kv(w, "delay", o->delay);
    eb_jw_key(w, "data");
    if (data)
        eb_jw_raw(w, data, strlen(data));
    else
        eb_jw_null(w);
    eb_jw_obj_close(w);
}

/* Reads one receipt {"id","seq","time","key_version"?,"duplicate"?}. */
static bool read_receipt(const eb_json *o, eb_publish_result *r)
{
    memset(r, 0, sizeof *r);
    r->size = sizeof *r;
    const eb_json *dup = eb_json_get(o, "duplicate");
    r->duplicate = dup && dup->type == EB_JSON_TRUE;
    if (!eb__get_u64(o, "key_version", &r->key_version))
        r->key_version = 0;
    if (!eb__get_str(o, "deliver_at", r->deliver_at, sizeof r->deliver_at))
        r->deliver_at[0] = '\0';
    return eb__get_str(o, "id", r->id, sizeof r->id) && eb__get_u64(o, "seq", &r->seq) &&
           eb__get_str(o, "time", r->time, sizeof r->time);
}

/* The receipts of the answer: root itself (one event) or root's "results"
 * list (a batch). *out (may be NULL: only checked) is caller-owned. */
static int read_receipts(eb_client *c, const eb_json *root, bool batch, eb_receipts **out)
{
    const eb_json *arr = batch ? eb_json_get(root, "results") : root;
    if (batch && !eb_json_is(arr, EB_JSON_ARRAY))
        return eb__bad_answer(c, "no \"results\" list");
    size_t n = batch ? arr->len : 1;
    eb_receipts *l = out ? eb__result_new(c, sizeof *l) : NULL;
    eb_publish_result **v = l ? eb__result_alloc(l, n * sizeof *v) : NULL;
    if (out && !v) {
        eb_result_free(l);
        return eb__fail(c, EB_ENOMEM, "out of memory");
    }
    size_t i = 0;
    for (const eb_json *e = batch ? arr->child : root; e && i < n; e = e->next, i++) {
        eb_publish_result tmp, *r = v ? eb__result_alloc(l, sizeof *r) : &tmp;
        if (!r) {
            eb_result_free(l);
            return eb__fail(c, EB_ENOMEM, "out of memory");
        }
        if (!read_receipt(e, r)) {
            eb_result_free(l);
            return eb__bad_answer(c, "a result without id, seq or time");
        }
        if (v)
            v[i] = r;
    }
    if (l) {
        l->n = n;
        l->results = (const eb_publish_result *const *)v;
        *out = l;
    }
    return 0;
}

static int check_type(eb_client *c, const char *type)
{
    return type && *type ? 0 : eb__fail(c, EB_EINVAL, "an event type is required");
}

int eb_publish(eb_client *c, const char *type, const char *data, const eb_publish_opts *opts,
               eb_publish_result *res)
{
    eb_publish_opts o;
    int rc = check_type(c, type);
    if (rc || (rc = EB__OPTS_IN(c, eb_publish_opts, version, opts, &o)) ||
        (rc = EB__OUT_CHECK(c, eb_publish_result, duplicate, res)) ||
        (data && (rc = eb__check_json(c, "data", data, strlen(data)))))
        return rc;
    eb_jw w;
    write_envelope(c, eb__body(c, &w), type, data, &o);
    eb__path(c, "/v1/events");
    const eb_json *root;
    if ((rc = eb__call(c, "POST", true, 0, &root)))
        return rc;
    eb_publish_result r;
    if (!read_receipt(root, &r))
        return eb__bad_answer(c, "no id, seq or time in the receipt");
    eb__out_put(res, &r, sizeof r);
    return 0;
}

/* msgs[i] as this library knows it, with its options, into *m and *o. */
static int message_in(eb_client *c, const eb_message *const *msgs, size_t i, eb_message *m,
                      eb_publish_opts *o)
{
    char what[48];
    snprintf(what, sizeof what, "event %zu: data", i);
    int rc = EB__OPTS_IN(c, eb_message, opts, msgs[i], m);
    if (rc || (rc = EB__OPTS_IN(c, eb_publish_opts, version, m->opts, o)) ||
        (rc = check_type(c, m->type)))
        return rc;
    return m->data ? eb__check_json(c, what, m->data, strlen(m->data)) : 0;
}

int eb_publish_batch(eb_client *c, const eb_message *const *msgs, size_t n, eb_receipts **out)
{
    if (out)
        *out = NULL;
    if (n == 0 || !msgs)
        return eb__fail(c, EB_EINVAL, "a batch needs at least one event");
    eb_message m;
    eb_publish_opts o;
    for (size_t i = 0; i < n; i++) {
        if (!msgs[i])
            return eb__fail(c, EB_EINVAL, "event %zu: no message", i);
        int rc = message_in(c, msgs, i, &m, &o);
        if (rc)
            return rc;
    }
    eb_jw w;
    eb__body(c, &w);
    eb_jw_arr_open(&w);
    for (size_t i = 0; i < n; i++) {
        message_in(c, msgs, i, &m, &o); /* checked above */
        write_envelope(c, &w, m.type, m.data, &o);
    }
    eb_jw_arr_close(&w);
    eb__path(c, "/v1/events/batch");
    const eb_json *root;
    int rc = eb__call(c, "POST", true, 0, &root);
    return rc ? rc : read_receipts(c, root, true, out);
}

/* Copies the envelopes text[0..len) (parsed: in) into c->body, giving
 * every event object without an "id" member a generated one, written
 * first in the object; anything else is copied as is. */
static void body_with_ids(eb_client *c, const char *text, size_t len, const eb_json *in)
{
    eb_buf *b = &c->body;
    eb_buf_reset(b);
    size_t from = 0;
    const eb_json *e = in->type == EB_JSON_ARRAY ? in->child : in;
    for (; e; e = in->type == EB_JSON_ARRAY ? e->next : NULL) {
        if (!eb_json_is(e, EB_JSON_OBJECT) || eb_json_get(e, "id"))
            continue;
        char id[EB_ULID_LEN + 1];
        eb__new_id(c, id);
        size_t open = e->src_off + 1; /* just past the object's '{' */
        eb_buf_append(b, text + from, open - from);
        eb_buf_printf(b, "\"id\":\"%s\"%s", id, e->len ? "," : "");
        from = open;
    }
    eb_buf_append(b, text + from, len - from);
}

int eb_publish_json(eb_client *c, const char *json, size_t len, eb_receipts **out)
{
    if (out)
        *out = NULL;
    if (!json)
        return eb__fail(c, EB_EINVAL, "no event given");
    int rc = eb__check_json(c, "event", json, len);
    if (rc)
        return rc;
    const eb_json *in = eb_json_root(c->doc);
    bool batch = in->type == EB_JSON_ARRAY;
    body_with_ids(c, json, len, in);
    eb__path(c, batch ? "/v1/events/batch" : "/v1/events");
    const eb_json *root;
    if ((rc = eb__call(c, "POST", true, 0, &root)))
        return rc;
    return read_receipts(c, root, batch, out);
}

/* --- event lists ------------------------------------------------------------ */

struct eb_events {
    eb_event    *ev;
    size_t       n;
    char        *text; /* the answer the list was parsed from */
    size_t       len;
    eb_json_doc *doc;  /* its parse: the eb_event strings point into it */
    char        *strs; /* NUL-terminated copies of each event's json and data */
    char        *next; /* next page's cursor, or NULL */
    eb_dlq_error *errs; /* dead letters' failures, all events' back to back */
    const eb_dlq_error **errp;
};

size_t eb_events_count(const eb_events *l)
{
    return l ? l->n : 0;
}

const eb_event *eb_events_at(const eb_events *l, size_t i)
{
    return l && i < l->n ? &l->ev[i] : NULL;
}

const char *eb_events_next(const eb_events *l)
{
    return l ? l->next : NULL;
}

const char *eb_events_json(const eb_events *l)
{
    return l && l->text ? l->text : "";
}

void eb_events_free(eb_events *l)
{
    if (!l)
        return;
    free(l->ev);
    free(l->text);
    eb_json_doc_free(l->doc);
    free(l->strs);
    free(l->next);
    free(l->errs);
    free(l->errp);
    free(l);
}

static const char *str_or_null(const eb_json *o, const char *key)
{
    const eb_json *v = eb_json_get(o, key);
    return eb_json_is(v, EB_JSON_STRING) ? v->str : NULL;
}

static uint64_t u64_or_0(const eb_json *o, const char *key)
{
    uint64_t v = 0;
    return eb__get_u64(o, key, &v) ? v : 0;
}

/* Copies span [off, off+n) of the answer into strs at *pos, NUL-terminated. */
static const char *copy_span(eb_events *l, size_t *pos, uint32_t off, uint32_t n)
{
    char *p = l->strs + *pos;
    memcpy(p, l->text + off, n);
    p[n] = '\0';
    *pos += (size_t)n + 1;
    return p;
}

/* Fills one eb_event from the event object o (and its wrapper w for
 * pulls and dead letters). */
static bool fill_event(eb_events *l, eb_event *e, const eb_json *o, const eb_json *w,
                       eb__events_kind kind, size_t *pos)
{
    if (!eb_json_is(o, EB_JSON_OBJECT))
        return false;
    e->id = str_or_null(o, "id");
    e->type = str_or_null(o, "type");
    e->source = str_or_null(o, "source");
    e->key = str_or_null(o, "key");
    e->subject = str_or_null(o, "subject");
    e->correlation_id = str_or_null(o, "correlationId");
    e->causation_id = str_or_null(o, "causationId");
    e->seq = u64_or_0(o, "seq");
    e->time = str_or_null(o, "time");
    e->version = (uint32_t)u64_or_0(o, "version");
    e->key_version = u64_or_0(o, "key_version");
    e->deliver_at = str_or_null(o, "deliver_at");
    e->published_seq = u64_or_0(o, "published_seq");
    const eb_json *data = eb_json_get(o, "data");
    e->json = copy_span(l, pos, o->src_off, o->src_len);
    e->json_len = o->src_len;
    if (data) {
        e->data = copy_span(l, pos, data->src_off, data->src_len);
        e->data_len = data->src_len;
    } else {
        e->data = "null";
        e->data_len = 4;
    }
    if (kind == EB__EVENTS_PULL) {
        const eb_json *d = eb_json_get(o, "delivery");
        e->delivery_id = str_or_null(d, "id");
        e->attempt = (uint32_t)u64_or_0(d, "attempt");
        e->deadline = str_or_null(d, "deadline");
        if (!e->delivery_id)
            return false;
    } else if (kind == EB__EVENTS_DLQ) {
        e->error = str_or_null(w, "error");
        e->attempts = (uint32_t)u64_or_0(w, "attempts");
        e->consumer = str_or_null(w, "consumer");
        e->failed_at = str_or_null(w, "failed_at");
    }
    return e->id && e->type;
}

static const eb_json *event_of(const eb_json *e, eb__events_kind kind)
{
    return kind == EB__EVENTS_DLQ ? eb_json_get(e, "event") : e;
}

static size_t span_bytes(const eb_json *o)
{
    if (!o)
        return 0;
    const eb_json *data = eb_json_get(o, "data");
    return (size_t)o->src_len + 1 + (data ? (size_t)data->src_len + 1 : 0);
}

/* A dead letter's failures (its "errors" member) into l->errs from *k. */
static void fill_errors(eb_events *l, eb_event *e, const eb_json *w, size_t *k)
{
    const eb_json *arr = eb_json_get(w, "errors");
    e->first_failed_at = str_or_null(w, "first_failed_at");
    e->errors = (const eb_dlq_error *const *)&l->errp[*k];
    for (const eb_json *x = eb_json_is(arr, EB_JSON_ARRAY) ? arr->child : NULL; x; x = x->next) {
        eb_dlq_error *f = &l->errs[*k];
        f->attempt = (uint32_t)u64_or_0(x, "attempt");
        f->at = str_or_null(x, "at");
        f->consumer = str_or_null(x, "consumer");
        f->error = str_or_null(x, "error");
        l->errp[(*k)++] = f;
        e->nerrors++;
    }
}

/* Fills l->ev from `count` sibling nodes starting at `first`. */
static int build_list(eb_client *c, eb_events *l, const eb_json *first, size_t count,
                      eb__events_kind kind)
{
    size_t bytes = 1, nerr = 0;
    for (const eb_json *e = first; e; e = e->next) {
        bytes += span_bytes(event_of(e, kind));
        const eb_json *errs = kind == EB__EVENTS_DLQ ? eb_json_get(e, "errors") : NULL;
        nerr += eb_json_is(errs, EB_JSON_ARRAY) ? errs->len : 0;
    }
    l->ev = calloc(count ? count : 1, sizeof *l->ev);
    l->strs = malloc(bytes);
    l->errs = calloc(nerr ? nerr : 1, sizeof *l->errs);
    l->errp = calloc(nerr ? nerr : 1, sizeof *l->errp);
    if (!l->ev || !l->strs || !l->errs || !l->errp)
        return eb__fail(c, EB_ENOMEM, "out of memory");
    size_t pos = 0, k = 0;
    for (const eb_json *e = first; e; e = e->next, l->n++) {
        if (!fill_event(l, &l->ev[l->n], event_of(e, kind), e, kind, &pos))
            return eb__bad_answer(c, kind == EB__EVENTS_PULL
                                         ? "an event without id, type or delivery id"
                                         : "an event without id or type");
        if (kind == EB__EVENTS_DLQ)
            fill_errors(l, &l->ev[l->n], e, &k);
    }
    return 0;
}

static int set_next(eb_client *c, eb_events *l, const eb_json *next)
{
    char num[24];
    const char *s = NULL;
    if (eb_json_is(next, EB_JSON_STRING) && next->len) {
        s = next->str;
    } else if (eb_json_is(next, EB_JSON_NUMBER)) {
        snprintf(num, sizeof num, "%s", next->str);
        s = num;
    }
    if (s && !(l->next = strdup(s)))
        return eb__fail(c, EB_ENOMEM, "out of memory");
    return 0;
}

/* Makes a list over the answer just read (taken from the client). */
static int new_list(eb_client *c, const eb_json *first, size_t count, eb__events_kind kind,
                    eb_events **out)
{
    eb_events *l = calloc(1, sizeof *l);
    if (!l)
        return eb__fail(c, EB_ENOMEM, "out of memory");
    eb__take_answer(c, &l->text, &l->len, &l->doc);
    int rc = build_list(c, l, first, count, kind);
    if (rc) {
        eb_events_free(l);
        return rc;
    }
    *out = l;
    return 0;
}

int eb__events_from(eb_client *c, const eb_json *root, const char *member, const char *next_member,
                    eb__events_kind kind, eb_events **out)
{
    *out = NULL;
    const eb_json *arr = eb_json_get(root, member);
    if (!eb_json_is(arr, EB_JSON_ARRAY)) {
        char what[64];
        snprintf(what, sizeof what, "no \"%s\" list", member);
        return eb__bad_answer(c, what);
    }
    const eb_json *next = next_member ? eb_json_get(root, next_member) : NULL;
    int rc = new_list(c, arr->child, arr->len, kind, out);
    if (!rc && (rc = set_next(c, *out, next))) {
        eb_events_free(*out);
        *out = NULL;
    }
    return rc;
}

/* --- reading ----------------------------------------------------------------- */

int eb_events_get_opts(eb_client *c, const char *id, const eb_get_opts *o, eb_events **out)
{
    *out = NULL;
    eb_get_opts q;
    int rc = EB__OPTS_IN(c, eb_get_opts, source, o, &q);
    if (rc)
        return rc;
    if (!id || !*id)
        return eb__fail(c, EB_EINVAL, "an event id is required");
    eb__path(c, "/v1/events/");
    eb__path_seg(c, id);
    if (q.source)
        eb__path_query(c, "source", q.source);
    const eb_json *root;
    rc = eb__call(c, "GET", false, 0, &root);
    return rc ? rc : new_list(c, root, 1, EB__EVENTS_PLAIN, out);
}

int eb_events_get(eb_client *c, const char *id, eb_events **out)
{
    return eb_events_get_opts(c, id, NULL, out);
}

/* Adds ?name=v to the path being built, unless v is 0 (the default). */
static void query_num(eb_client *c, const char *name, uint64_t v)
{
    char num[24];
    if (v) {
        snprintf(num, sizeof num, "%" PRIu64, v);
        eb__path_query(c, name, num);
    }
}

int eb_events_browse(eb_client *c, const eb_browse_opts *o, eb_events **out)
{
    *out = NULL;
    eb_browse_opts q;
    int rc = EB__OPTS_IN(c, eb_browse_opts, limit, o, &q);
    if (rc)
        return rc;
    eb__path(c, "/v1/events");
    if (q.type)
        eb__path_query(c, "type", q.type);
    if (q.since)
        eb__path_query(c, "since", q.since);
    if (q.until)
        eb__path_query(c, "until", q.until);
    query_num(c, "after_seq", q.after_seq);
    query_num(c, "limit", q.limit);
    const eb_json *root;
    rc = eb__call(c, "GET", false, 0, &root);
    return rc ? rc : eb__events_from(c, root, "events", "next_after_seq", EB__EVENTS_PLAIN, out);
}

int eb_events_stream(eb_client *c, const char *key, const eb_stream_opts *o, eb_events **out)
{
    *out = NULL;
    eb_stream_opts q;
    int rc = EB__OPTS_IN(c, eb_stream_opts, limit, o, &q);
    if (rc)
        return rc;
    if (!key || !*key)
        return eb__fail(c, EB_EINVAL, "a key is required");
    eb__path(c, "/v1/events");
    eb__path_query(c, "key", key);
    query_num(c, "from_version", q.from_version);
    query_num(c, "limit", q.limit);
    const eb_json *root;
    rc = eb__call(c, "GET", false, 0, &root);
    return rc ? rc : eb__events_from(c, root, "events", "next_from_version", EB__EVENTS_PLAIN, out);
}

/* --- reading data ------------------------------------------------------------- */

/* Follows a JSON Pointer from v; NULL if it leads nowhere. */
static const eb_json *follow(const eb_json *v, const char *ptr)
{
    char tok[256];
    while (v && *ptr) {
        if (*ptr != '/')
            return NULL;
        size_t n = 0;
        for (ptr++; *ptr && *ptr != '/'; ptr++) {
            char ch = *ptr;
            if (ch == '~') { /* ~0 is '~', ~1 is '/' */
                if (ptr[1] != '0' && ptr[1] != '1')
                    return NULL;
                ch = *++ptr == '0' ? '~' : '/';
            }
            if (n + 1 >= sizeof tok)
                return NULL;
            tok[n++] = ch;
        }
        tok[n] = '\0';
        if (v->type == EB_JSON_OBJECT) {
            v = eb_json_getn(v, tok, n);
        } else if (v->type == EB_JSON_ARRAY) {
            char *end;
            unsigned long i = strtoul(tok, &end, 10);
            v = n && *end == '\0' && (tok[0] != '0' || n == 1) ? eb_json_at(v, i) : NULL;
        } else {
            return NULL;
        }
    }
    return v;
}

/* Parses ev->data and finds pointer's value of the wanted type. */
static int data_value(const eb_event *ev, const char *pointer, eb_json_type want,
                      eb_json_doc **doc, const eb_json **out)
{
    if (!ev || !ev->data || !pointer)
        return EB_EINVAL;
    if (!(*doc = eb_json_doc_new()))
        return EB_ENOMEM;
    int rc = eb_json_parse(*doc, ev->data, ev->data_len, NULL, NULL);
    if (rc)
        return rc == EB_ENOMEM ? rc : EB_ESYNTAX;
    const eb_json *v = follow(eb_json_root(*doc), pointer);
    if (!v)
        return EB_ENOTFOUND;
    if (v->type != want)
        return EB_EINVAL;
    *out = v;
    return 0;
}

int eb_data_string(const eb_event *ev, const char *pointer, char *out, size_t cap)
{
    eb_json_doc *doc = NULL;
    const eb_json *v = NULL;
    int rc = data_value(ev, pointer, EB_JSON_STRING, &doc, &v);
    if (!rc && v->len >= cap)
        rc = EB_ETOOBIG;
    if (!rc)
        memcpy(out, v->str, (size_t)v->len + 1);
    eb_json_doc_free(doc);
    return rc;
}

int eb_data_number(const eb_event *ev, const char *pointer, double *out)
{
    eb_json_doc *doc = NULL;
    const eb_json *v = NULL;
    int rc = data_value(ev, pointer, EB_JSON_NUMBER, &doc, &v);
    if (!rc)
        *out = eb_json_num(v);
    eb_json_doc_free(doc);
    return rc;
}
