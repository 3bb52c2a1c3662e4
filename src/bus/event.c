/* event.c - envelope parsing, checks, ids, and the stored event format
 * (see event.h for the layout). */
#include "bus/event.h"
#include "util/clock.h"
#include "util/ulid.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "eventbus/err.h"

/* --- errors -------------------------------------------------------------- */

static int field_err(eb_field_error *err, const char *field, const char *fmt,
                     const char *arg) __attribute__((format(printf, 3, 0)));

static int field_err(eb_field_error *err, const char *field, const char *fmt,
                     const char *arg)
{
    if (err) {
        snprintf(err->field, sizeof err->field, "%.*s", (int)sizeof err->field - 1, field);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
#pragma GCC diagnostic ignored "-Wformat-truncation"
        snprintf(err->message, sizeof err->message, fmt, arg);
#pragma GCC diagnostic pop
    }
    return EB_EINVAL;
}

/* --- envelope parsing ---------------------------------------------------- */

typedef struct str_field {
    const char *name;   /* JSON member name */
    size_t      len;    /* strlen(name) */
    size_t      offset; /* offsetof(eb_event_in, <eb_str member>) */
    size_t      max;    /* bound on its length */
} str_field;

#define STR_FIELD(name, member, max) {name, sizeof name - 1, offsetof(eb_event_in, member), max}
static const str_field str_fields[] = {
    STR_FIELD("type", type, EB_EVENT_MAX_TYPE),
    STR_FIELD("id", id, EB_EVENT_MAX_ID),
    STR_FIELD("source", source, EB_EVENT_MAX_ATTR),
    STR_FIELD("key", key, EB_EVENT_MAX_KEY),
    STR_FIELD("correlationId", correlation_id, EB_EVENT_MAX_ATTR),
    STR_FIELD("causationId", causation_id, EB_EVENT_MAX_ATTR),
    STR_FIELD("subject", subject, EB_EVENT_MAX_ATTR),
    STR_FIELD("datacontenttype", datacontenttype, EB_EVENT_MAX_ATTR),
};

/* m's key is exactly the literal lit (length first: no strlen per member). */
#define KEY_IS(m, lit) ((m)->key_len == sizeof lit - 1 && !memcmp((m)->key, lit, sizeof lit - 1))

/* The bounds of a string field, whichever mapping (native, CloudEvents)
 * filled it: the stored format has one byte for the id length and two for
 * the key's, and the answers copy ids into 129-byte slots. */
static int check_field(const str_field *f, eb_str s, eb_field_error *err)
{
    if (s.len != 0 && s.len <= f->max && !memchr(s.ptr, '\0', s.len))
        return 0; /* the hot path: no formatting */
    char ptr[64];
    snprintf(ptr, sizeof ptr, "/%.60s", f->name);
    if (s.len == 0)
        return field_err(err, ptr, "must not be empty%s", "");
    if (s.len > f->max) {
        char lim[32];
        snprintf(lim, sizeof lim, "%zu", f->max);
        return field_err(err, ptr, "longer than %s bytes", lim);
    }
    return field_err(err, ptr, "must not contain NUL characters%s", "");
}

static int take_string(const eb_json *m, const str_field *f, eb_event_in *ev,
                       eb_field_error *err)
{
    if (m->type == EB_JSON_NULL)
        return 0;
    if (m->type != EB_JSON_STRING) {
        char ptr[64];
        snprintf(ptr, sizeof ptr, "/%.60s", f->name);
        return field_err(err, ptr, "must be a string, got %s",
                         eb_json_type_name((eb_json_type)m->type));
    }
    eb_str s = {m->str, m->len};
    int rc = check_field(f, s, err);
    if (rc == 0)
        *(eb_str *)((char *)ev + f->offset) = s;
    return rc;
}

static int take_version(const eb_json *m, eb_event_in *ev, eb_field_error *err)
{
    if (m->type == EB_JSON_NULL)
        return 0;
    if (m->type != EB_JSON_NUMBER || !(m->flags & EB_JSON_F_INT) || m->i64 < 1 ||
        m->i64 > INT32_MAX)
        return field_err(err, "/version", "must be a positive integer%s", "");
    ev->version = m->i64;
    return 0;
}

static int take_member(const eb_json *m, const char *body, eb_event_in *ev,
                       eb_field_error *err)
{
    for (size_t i = 0; i < sizeof str_fields / sizeof str_fields[0]; i++)
        if (m->key_len == str_fields[i].len && !memcmp(m->key, str_fields[i].name, m->key_len))
            return take_string(m, &str_fields[i], ev, err);
    if (KEY_IS(m, "version"))
        return take_version(m, ev, err);
    if (KEY_IS(m, "data")) {
        ev->data = m;
        if (body) {
            ev->data_raw.ptr = body + m->src_off;
            ev->data_raw.len = m->src_len;
        }
        return 0;
    }
    if (KEY_IS(m, "expected_version")) {
        if (m->type == EB_JSON_NULL)
            return 0;
        if (m->type != EB_JSON_NUMBER || !(m->flags & EB_JSON_F_INT) || m->i64 < -1)
            return field_err(err, "/expected_version",
                             "must be an integer: the key's current version, 0 for a new "
                             "key, -1 for no check%s", "");
        ev->expect_version = m->i64 >= 0;
        ev->expected_version = m->i64 >= 0 ? (uint64_t)m->i64 : 0;
        return 0;
    }
    if (KEY_IS(m, "deliver_at") || KEY_IS(m, "delay")) {
        bool at = m->key_len == 10;
        if (m->type == EB_JSON_NULL)
            return 0;
        if (m->type != EB_JSON_STRING)
            return field_err(err, at ? "/deliver_at" : "/delay",
                             at ? "must be an RFC 3339 time, like 2026-11-23T06:25:37Z%s"
                                : "must be a duration with a unit, like \"90s\" or \"2h\"%s", "");
        *(at ? &ev->deliver_at : &ev->delay) = (eb_str){m->str, m->len};
        return 0;
    }
    if (KEY_IS(m, "extensions")) {
        if (m->type != EB_JSON_OBJECT && m->type != EB_JSON_NULL)
            return field_err(err, "/extensions", "must be an object%s", "");
        ev->extensions = m->type == EB_JSON_OBJECT ? m : NULL;
        return 0;
    }
    char ptr[40];
    snprintf(ptr, sizeof ptr, "/%.*s", m->key_len > 32 ? 32 : (int)m->key_len, m->key);
    return field_err(err, ptr, "unknown field \"%s\" (allowed: type, data, id, source, "
                     "key, expected_version, version, correlationId, causationId, subject, "
                     "datacontenttype, extensions, deliver_at, delay)", ptr + 1);
}

int eb_event_from_json(const eb_json *obj, const char *body, eb_event_in *ev,
                       eb_field_error *err)
{
    memset(ev, 0, sizeof *ev);
    if (!eb_json_is(obj, EB_JSON_OBJECT))
        return field_err(err, "", "an event must be a JSON object%s", "");
    for (const eb_json *m = obj->child; m; m = m->next) {
        int rc = take_member(m, body, ev, err);
        if (rc)
            return rc;
    }
    return 0;
}

/* --- checks -------------------------------------------------------------- */

bool eb_event_type_valid(const char *s, size_t n)
{
    if (n == 0 || n > EB_EVENT_MAX_TYPE)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  (i > 0 && (c == '.' || c == '-' || c == '_'));
        if (!ok)
            return false;
    }
    return true;
}

int eb_event_check(eb_event_in *ev, eb_field_error *err)
{
    if (!ev->type.ptr)
        return field_err(err, "/type", "required field \"type\" missing%s", "");
    if (!eb_event_type_valid(ev->type.ptr, ev->type.len))
        return field_err(err, "/type",
                         "invalid type name (1-128 characters: letters, digits, '.', "
                         "'-', '_'; starting with a letter or digit)%s", "");
    for (size_t i = 0; i < sizeof str_fields / sizeof str_fields[0]; i++) {
        eb_str s;
        memcpy(&s, (const char *)ev + str_fields[i].offset, sizeof s);
        int rc = s.ptr ? check_field(&str_fields[i], s, err) : 0;
        if (rc)
            return rc;
    }
    if (ev->expect_version && !ev->key.ptr)
        return field_err(err, "/expected_version",
                         "needs a \"key\": versions are counted per key%s", "");
    if (ev->version < 0 || ev->version > INT32_MAX)
        return field_err(err, "/version", "must be a positive integer%s", "");
    if (!ev->id.ptr) {
        eb_event_new_id(ev->id_buf);
        ev->id.ptr = ev->id_buf;
        ev->id.len = EB_EVENT_ID_LEN;
    }
    if (!ev->correlation_id.ptr)
        ev->correlation_id = ev->id;
    return 0;
}

/* --- ids ----------------------------------------------------------------- */

static pthread_mutex_t id_lock = PTHREAD_MUTEX_INITIALIZER;
static eb_ulid_gen     id_gen; /* under id_lock */

void eb_event_new_id(char out[EB_EVENT_ID_LEN + 1])
{
    uint64_t now_us = eb_clock_wall_us();
    pthread_mutex_lock(&id_lock);
    eb_ulid_next(&id_gen, now_us, out);
    pthread_mutex_unlock(&id_lock);
}

/* --- stored format ------------------------------------------------------- */

static void put_le16(uint8_t *p, uint32_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static void put_le64(uint8_t *p, uint64_t v)
{
    put_le32(p, (uint32_t)v);
    put_le32(p + 4, (uint32_t)(v >> 32));
}
static uint32_t le16(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }
static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The member names are literals (EB_JW_KEY: no escaping; the per-key
 * escaper calls were ~7% of publishing's CPU). */
static void kv_str(eb_jw *w, const char *quoted_colon, size_t n, eb_str s)
{
    if (!s.ptr)
        return;
    eb_jw_key_lit(w, quoted_colon, n);
    eb_jw_strn(w, s.ptr, s.len);
}
#define KV_STR(w, lit, s) kv_str(w, "\"" lit "\":", sizeof("\"" lit "\":") - 1, s)

static void encode_json(const eb_event_in *ev, uint32_t schema_version, eb_buf *out)
{
    eb_jw w;
    eb_jw_init(&w, out);
    eb_jw_obj_open(&w);
    KV_STR(&w, "id", ev->id);
    KV_STR(&w, "type", ev->type);
    KV_STR(&w, "source", ev->source);
    if (schema_version || ev->version) { /* the version validated against */
        EB_JW_KEY(&w, "version");
        eb_jw_int(&w, schema_version ? (int64_t)schema_version : ev->version);
    }
    KV_STR(&w, "key", ev->key);
    KV_STR(&w, "correlationId", ev->correlation_id);
    KV_STR(&w, "causationId", ev->causation_id);
    KV_STR(&w, "subject", ev->subject);
    KV_STR(&w, "datacontenttype", ev->datacontenttype);
    if (ev->extensions) {
        EB_JW_KEY(&w, "extensions");
        eb_jw_value(&w, ev->extensions);
    }
    EB_JW_KEY(&w, "data");
    if (ev->data_raw.ptr && ev->data_raw.len)
        eb_jw_raw(&w, ev->data_raw.ptr, ev->data_raw.len);
    else if (ev->data)
        eb_jw_value(&w, ev->data);
    else
        eb_jw_null(&w);
    eb_jw_obj_close(&w);
}

void eb_event_encode(const eb_event_in *ev, uint32_t schema_version, eb_buf *out)
{
    size_t start = out->len;
    uint8_t h[EB_EVENT_HDR_V3_SIZE] = {0};
    size_t hl = ev->deliver_us ? EB_EVENT_HDR_V3_SIZE : EB_EVENT_HDR_SIZE;
    eb_buf_append(out, h, hl); /* patched below */
    eb_buf_append(out, ev->type.ptr, ev->type.len);
    eb_buf_append(out, ev->id.ptr, ev->id.len);
    eb_buf_append(out, ev->key.ptr, ev->key.len);
    size_t json_start = out->len;
    encode_json(ev, schema_version, out);
    if (eb_buf_failed(out))
        return;
    h[0] = ev->deliver_us ? EB_EVENT_FORMAT_DELAYED : EB_EVENT_FORMAT;
    h[1] = (uint8_t)ev->type.len;
    h[2] = (uint8_t)ev->id.len;
    h[3] = eb_event_id_generated(ev) ? EB_EVENT_F_GENERATED_ID : 0;
    put_le16(h + 4, (uint32_t)ev->key.len);
    put_le32(h + 8, schema_version);
    put_le32(h + 12, (uint32_t)(out->len - json_start));
    put_le32(h + 16, (uint32_t)ev->key_version);
    put_le32(h + 20, (uint32_t)(ev->key_version >> 32));
    put_le64(h + 24, ev->deliver_us);
    memcpy(out->data + start, h, hl);
}

int eb_event_due_copy(const void *payload, size_t len, uint64_t origin_seq, eb_buf *out)
{
    const uint8_t *p = payload;
    if (len < EB_EVENT_HDR_V3_SIZE || p[0] != EB_EVENT_FORMAT_DELAYED)
        return EB_EINVAL;
    size_t start = out->len;
    eb_buf_append(out, payload, len);
    if (eb_buf_failed(out))
        return EB_ENOMEM;
    put_le64((uint8_t *)out->data + start + 32, origin_seq);
    return 0;
}

int eb_event_decode(const void *payload, size_t len, eb_event_view *v)
{
    const uint8_t *p = payload;
    if (len < EB_EVENT_HDR_V1_SIZE ||
        (p[0] != EB_EVENT_FORMAT && p[0] != EB_EVENT_FORMAT_V1 && p[0] != EB_EVENT_FORMAT_DELAYED))
        return EB_ECORRUPT;
    size_t hl = p[0] == EB_EVENT_FORMAT ? EB_EVENT_HDR_SIZE
              : p[0] == EB_EVENT_FORMAT_V1 ? EB_EVENT_HDR_V1_SIZE : EB_EVENT_HDR_V3_SIZE;
    if (len < hl)
        return EB_ECORRUPT;
    size_t tl = p[1], il = p[2], kl = le16(p + 4), jl = le32(p + 12);
    if (hl + tl + il + kl + jl != len || jl < 2)
        return EB_ECORRUPT;
    v->key_version = hl >= EB_EVENT_HDR_SIZE ? (uint64_t)le32(p + 16) | (uint64_t)le32(p + 20) << 32
                                             : 0;
    v->deliver_us = hl == EB_EVENT_HDR_V3_SIZE ? (uint64_t)le32(p + 24) | (uint64_t)le32(p + 28) << 32
                                               : 0;
    v->origin_seq = hl == EB_EVENT_HDR_V3_SIZE ? (uint64_t)le32(p + 32) | (uint64_t)le32(p + 36) << 32
                                               : 0;
    v->format = p[0];
    const char *s = (const char *)p + hl;
    v->type = (eb_str){s, tl};
    v->id = (eb_str){s + tl, il};
    v->key = (eb_str){kl ? s + tl + il : NULL, kl};
    v->schema_version = le32(p + 8);
    v->flags = p[3];
    v->json = (eb_str){s + tl + il + kl, jl};
    if (v->json.ptr[0] != '{' || v->json.ptr[jl - 1] != '}')
        return EB_ECORRUPT;
    return 0;
}

void eb_event_write(eb_jw *w, uint64_t seq, uint64_t ts_us, const eb_event_view *v)
{
    eb_jw_obj_open(w);
    eb_event_write_members(w, seq, ts_us, v);
    eb_jw_obj_close(w);
}

/* The end of the JSON string starting at s[0] == '"' (past its closing
 * quote), or NULL. */
static const char *skip_str(const char *s, const char *end)
{
    if (s >= end || *s != '"')
        return NULL;
    for (s++; s < end; s++) {
        if (*s == '\\')
            s++;
        else if (*s == '"')
            return s + 1;
    }
    return NULL;
}

/* Whether a format-1 record's JSON has "version": it was written only when
 * the producer named one, right after id, type and source. */
static bool v1_has_version(eb_str j)
{
    const char *p = j.ptr + 1, *end = j.ptr + j.len;
    static const char *const before[] = {"\"id\":", ",\"type\":", ",\"source\":"};
    for (size_t i = 0; i < 3 && p; i++) {
        size_t n = strlen(before[i]);
        if ((size_t)(end - p) > n && !memcmp(p, before[i], n))
            p = skip_str(p + n, end);
    }
    return p && (size_t)(end - p) > 11 && !memcmp(p, ",\"version\":", 11);
}

int eb_event_source(const eb_event_view *v, char *buf, eb_str *out)
{
    *out = (eb_str){NULL, 0};
    const char *p = v->json.ptr + 1, *end = v->json.ptr + v->json.len;
    static const char *const before[] = {"\"id\":", ",\"type\":"};
    for (size_t i = 0; i < 2 && p; i++) {
        size_t n = strlen(before[i]);
        if ((size_t)(end - p) > n && !memcmp(p, before[i], n))
            p = skip_str(p + n, end);
    }
    if (!p || (size_t)(end - p) <= 10 || memcmp(p, ",\"source\":", 10) != 0)
        return p ? 0 : -1; /* no source */
    const char *q = skip_str(p + 10, end);
    if (!q)
        return -1;
    p += 11; /* inside the quotes: p .. q - 1 */
    if (!memchr(p, '\\', (size_t)(q - 1 - p))) {
        *out = (eb_str){p, (size_t)(q - 1 - p)};
        return 0;
    }
    /* Escaped (rare): the JSON parser decodes it. */
    eb_json_doc *doc = eb_json_doc_new();
    int rc = -1;
    if (doc && eb_json_parse(doc, p - 1, (size_t)(q - p + 1), NULL, NULL) == 0) {
        const eb_json *j = eb_json_root(doc);
        if (eb_json_is(j, EB_JSON_STRING) && j->len <= EB_EVENT_MAX_ATTR) {
            memcpy(buf, j->str, j->len);
            *out = (eb_str){buf, j->len};
            rc = 0;
        }
    }
    eb_json_doc_free(doc);
    return rc;
}

void eb_event_write_members(eb_jw *w, uint64_t seq, uint64_t ts_us, const eb_event_view *v)
{
    char t[32];
    size_t tn = eb_time_format(ts_us, t);
    eb_jw_key(w, "seq");
    eb_jw_uint(w, seq);
    eb_jw_key(w, "time");
    eb_jw_strn(w, t, tn);
    if (v->key_version) {
        eb_jw_key(w, "key_version");
        eb_jw_uint(w, v->key_version);
    }
    if (v->deliver_us) {
        eb_time_write(w, "deliver_at", v->deliver_us);
        if (v->origin_seq) {
            eb_jw_key(w, "published_seq");
            eb_jw_uint(w, v->origin_seq);
        }
    }
    if (v->format == EB_EVENT_FORMAT_V1 && v->schema_version && !v1_has_version(v->json)) {
        eb_jw_key(w, "version");
        eb_jw_uint(w, v->schema_version);
    }
    /* Splice the stored members after ours: they start after its '{'. */
    if (v->json.len > 2) {
        eb_buf_putc(w->out, ',');
        eb_buf_append(w->out, v->json.ptr + 1, v->json.len - 2);
    }
}

/* --- time ---------------------------------------------------------------- */

size_t eb_time_format(uint64_t ts_us, char out[32])
{
    /* Events of one second share their date and time: format those once
     * per thread and second (gmtime_r + snprintf cost ~0.4 µs a call). */
    static _Thread_local time_t cached_secs = -1;
    static _Thread_local char cached[20]; /* "YYYY-MM-DDTHH:MM:SS" */
    time_t secs = (time_t)(ts_us / 1000000u);
    if (secs != cached_secs) {
        struct tm tm;
        gmtime_r(&secs, &tm);
        int n = snprintf(cached, sizeof cached, "%04d-%02d-%02dT%02d:%02d:%02d",
                         tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                         tm.tm_sec);
        if (n != 19) { /* a year past 9999: no cache */
            n = snprintf(out, 32, "%04d-%02d-%02dT%02d:%02d:%02d.%06uZ", tm.tm_year + 1900,
                         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                         (unsigned)(ts_us % 1000000u));
            return n > 0 ? (size_t)n : 0;
        }
        cached_secs = secs;
    }
    memcpy(out, cached, 19);
    out[19] = '.';
    unsigned us = (unsigned)(ts_us % 1000000u);
    for (int i = 25; i >= 20; i--, us /= 10)
        out[i] = (char)('0' + us % 10);
    out[26] = 'Z';
    out[27] = '\0';
    return 27;
}

void eb_time_write(eb_jw *w, const char *key, uint64_t ts_us)
{
    char t[32];
    size_t n = eb_time_format(ts_us, t);
    eb_jw_key(w, key);
    eb_jw_strn(w, t, n);
}

static int digits(const char *s, size_t n, int *out)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian). */
static int64_t days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

int eb_time_parse(const char *s, size_t n, uint64_t *ts_us)
{
    int Y, M, D, h, mi, sec;
    if (n < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
        s[13] != ':' || s[16] != ':' || digits(s, 4, &Y) || digits(s + 5, 2, &M) ||
        digits(s + 8, 2, &D) || digits(s + 11, 2, &h) || digits(s + 14, 2, &mi) ||
        digits(s + 17, 2, &sec))
        return EB_EINVAL;
    if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || mi > 59 || sec > 60)
        return EB_EINVAL;
    size_t i = 19;
    uint64_t frac = 0;
    if (i < n && s[i] == '.') {
        int nd = 0;
        for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++, nd++)
            if (nd < 6)
                frac = frac * 10 + (uint64_t)(s[i] - '0');
        if (nd == 0)
            return EB_EINVAL;
        for (; nd < 6; nd++)
            frac *= 10;
    }
    int64_t off = 0;
    if (i < n && (s[i] == 'Z' || s[i] == 'z')) {
        i++;
    } else if (i + 6 == n && (s[i] == '+' || s[i] == '-') && s[i + 3] == ':') {
        int oh, om;
        if (digits(s + i + 1, 2, &oh) || digits(s + i + 4, 2, &om) || oh > 23 || om > 59)
            return EB_EINVAL;
        off = (s[i] == '+' ? 1 : -1) * (int64_t)(oh * 3600 + om * 60);
        i += 6;
    } else {
        return EB_EINVAL;
    }
    if (i != n)
        return EB_EINVAL;
    int64_t t = days_from_civil(Y, M, D) * 86400 + h * 3600 + mi * 60 + (sec > 59 ? 59 : sec) - off;
    if (t < 0)
        return EB_EINVAL;
    *ts_us = (uint64_t)t * 1000000u + frac;
    return 0;
}
