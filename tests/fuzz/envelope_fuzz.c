/* envelope_fuzz.c - fuzz target for event envelopes: native JSON
 * (src/bus/event.c) and CloudEvents in structured, batch and binary mode
 * (src/api/cloudevents.c), then the checks, the stored format and the
 * delivered form, as POST /v1/events and /v1/events/batch run them (minus
 * schemas and the log).
 *
 * Input: byte 0 picks the mode (low 2 bits: native, structured, batch,
 * binary; bit 2: a batch of CloudEvents; bit 3: none of these, the rest is
 * a stored record payload to decode, as a damaged log would hand it over).
 * Binary mode reads "name: value" header lines up to an empty line, then
 * the body; the others read the body only. Bodies are parsed as the API parses them (depth 128,
 * duplicate keys refused). Properties, abort() on a breach:
 *   - a refused envelope names a field ("" or a JSON Pointer) and a reason;
 *   - an accepted native envelope has only known member names (a name with
 *     a NUL inside is not "type");
 *   - an event eb_event_check() passes is within the stored format's
 *     bounds: type syntax, id 1-128 bytes, key <= 1024, other attributes
 *     <= 1024, no NUL in any of them;
 *   - encode then decode gives back type, id, key, schema version and the
 *     generated-id flag; the stored JSON parses, names the same id and type
 *     and holds data equal to what was sent;
 *   - the delivered form ({"seq","time",...stored members}) parses;
 *   - a "time" attribute eb_time_parse() accepts formats and parses back to
 *     the same instant. */
#include <stdlib.h>
#include <string.h>

#include "api/cloudevents.h"
#include "bus/event.h"
#include "eventbus/err.h"
#include "fuzz.h"
#include "json/json.h"

#define MAX_BYTES (256u << 10)
#define MAX_HEADERS 64
#define MAX_BATCH 64

enum { M_NATIVE, M_STRUCTURED, M_BATCH, M_BINARY };

static void check_refusal(const eb_field_error *fe)
{
    FUZZ_CHECK(fe->field[0] == '\0' || fe->field[0] == '/');
    FUZZ_CHECK(fe->message[0] != '\0');
}

static void check_str(eb_str s, size_t lo, size_t hi)
{
    if (!s.ptr)
        return;
    FUZZ_CHECK(s.len >= lo && s.len <= hi);
    FUZZ_CHECK(!memchr(s.ptr, '\0', s.len));
}

/* What eb_event_check() promises: everything fits the stored format. */
static void check_bounds(const eb_event_in *ev)
{
    FUZZ_CHECK(ev->type.ptr && eb_event_type_valid(ev->type.ptr, ev->type.len));
    FUZZ_CHECK(ev->id.ptr != NULL);
    check_str(ev->id, 1, EB_EVENT_MAX_ID);
    check_str(ev->key, 1, EB_EVENT_MAX_KEY);
    const eb_str attrs[] = {ev->source, ev->correlation_id, ev->causation_id, ev->subject,
                            ev->datacontenttype};
    for (size_t i = 0; i < sizeof attrs / sizeof attrs[0]; i++)
        check_str(attrs[i], 1, EB_EVENT_MAX_ATTR);
    FUZZ_CHECK(ev->version >= 0 && ev->version <= INT32_MAX);
}

static bool str_is(const eb_json *v, eb_str s)
{
    return eb_json_is(v, EB_JSON_STRING) && v->len == s.len && !memcmp(v->str, s.ptr, s.len);
}

/* A "time" attribute that parses must format and parse back to itself. */
static void check_time(const eb_json *ext)
{
    const eb_json *t = eb_json_get(ext, "time");
    uint64_t us, again;
    if (!eb_json_is(t, EB_JSON_STRING) || eb_time_parse(t->str, t->len, &us) != 0)
        return;
    char buf[32];
    size_t n = eb_time_format(us, buf);
    FUZZ_CHECK(n > 0 && n < sizeof buf);
    FUZZ_CHECK(eb_time_parse(buf, n, &again) == 0 && again == us);
}

/* Stored form and delivered form of a checked event. */
static void check_stored(const eb_event_in *ev)
{
    uint32_t ver = (uint32_t)ev->version;
    eb_buf enc = EB_BUF_INIT, out = EB_BUF_INIT;
    eb_event_encode(ev, ver, &enc);
    FUZZ_CHECK(!eb_buf_failed(&enc));
    eb_event_view v;
    FUZZ_CHECK(eb_event_decode(enc.data, enc.len, &v) == 0);
    FUZZ_CHECK(v.type.len == ev->type.len && !memcmp(v.type.ptr, ev->type.ptr, v.type.len));
    FUZZ_CHECK(v.id.len == ev->id.len && !memcmp(v.id.ptr, ev->id.ptr, v.id.len));
    FUZZ_CHECK(v.key.len == ev->key.len && (!v.key.len || !memcmp(v.key.ptr, ev->key.ptr,
                                                                    v.key.len)));
    FUZZ_CHECK(v.schema_version == ver);
    FUZZ_CHECK(!!(v.flags & EB_EVENT_F_GENERATED_ID) == eb_event_id_generated(ev));
    eb_json_doc *doc = eb_json_doc_new();
    FUZZ_CHECK(doc != NULL);
    FUZZ_CHECK(eb_json_parse(doc, v.json.ptr, v.json.len, NULL, NULL) == 0);
    const eb_json *root = eb_json_root(doc);
    FUZZ_CHECK(str_is(eb_json_get(root, "id"), ev->id));
    FUZZ_CHECK(str_is(eb_json_get(root, "type"), ev->type));
    const eb_json *data = eb_json_get(root, "data");
    FUZZ_CHECK(data != NULL);
    if (ev->data)
        FUZZ_CHECK(eb__fuzz_json_same(data, ev->data));
    else
        FUZZ_CHECK(data->type == EB_JSON_NULL);
    eb_jw w;
    eb_jw_init(&w, &out);
    eb_event_write(&w, 42, 1700000000123456ull, &v);
    FUZZ_CHECK(!eb_buf_failed(&out));
    FUZZ_CHECK(eb_json_parse(doc, out.data, out.len, NULL, NULL) == 0);
    root = eb_json_root(doc);
    FUZZ_CHECK(eb_json_is(root, EB_JSON_OBJECT) && root->child &&
               !strcmp(root->child->key, "seq") && eb_json_get(root, "time"));
    /* As a CloudEvent: JSON, every attribute name one CloudEvents allows. */
    eb_buf_reset(&out);
    eb_jw_init(&w, &out);
    FUZZ_CHECK(eb_ce_write(&w, doc, 42, 1700000000123456ull, &v, NULL) == 0);
    FUZZ_CHECK(!eb_buf_failed(&out));
    FUZZ_CHECK(eb_json_parse(doc, out.data, out.len, NULL, NULL) == 0);
    root = eb_json_root(doc);
    FUZZ_CHECK(str_is(eb_json_get(root, "id"), ev->id));
    for (const eb_json *m = root->child; m; m = m->next)
        FUZZ_CHECK(eb_ce_name_valid(m->key, m->key_len));
    eb_json_doc_free(doc);
    eb_buf_free(&enc);
    eb_buf_free(&out);
}

/* A stored payload from disk: decoding checks its lengths; whatever it
 * accepts can be spliced into a delivery without reading out of bounds. */
static void stored_payload(const uint8_t *p, size_t len)
{
    uint8_t *copy = malloc(len ? len : 1); /* exact size: ASan sees overreads */
    FUZZ_CHECK(copy != NULL);
    memcpy(copy, p, len);
    eb_event_view v;
    if (eb_event_decode(copy, len, &v) == 0) {
        FUZZ_CHECK(v.json.ptr >= (const char *)copy &&
                   v.json.ptr + v.json.len == (const char *)copy + len);
        eb_buf out = EB_BUF_INIT;
        eb_jw w;
        eb_jw_init(&w, &out);
        eb_event_write(&w, 1, 0, &v);
        FUZZ_CHECK(!eb_buf_failed(&out) && out.len >= v.json.len);
        eb_json_doc *doc = eb_json_doc_new();
        FUZZ_CHECK(doc != NULL);
        eb_buf_reset(&out);
        eb_jw_init(&w, &out);
        if (eb_ce_write(&w, doc, 1, 0, &v, NULL) == 0) /* else: not JSON, nothing written */
            FUZZ_CHECK(eb_json_parse(doc, out.data, out.len, NULL, NULL) == 0);
        eb_json_doc_free(doc);
        eb_buf_free(&out);
    }
    free(copy);
}

/* What the bus does with a mapped envelope (schemas aside). */
static void check_event(eb_event_in *ev)
{
    eb_field_error fe;
    if (eb_event_check(ev, &fe) != 0) {
        check_refusal(&fe);
        return;
    }
    check_bounds(ev);
    check_stored(ev);
    if (ev->extensions)
        check_time(ev->extensions);
}

static void check_native_names(const eb_json *obj)
{
    static const char *known[] = {"type", "data", "id", "source", "key", "version",
                                  "expected_version", "correlationId", "causationId", "subject",
                                  "datacontenttype", "extensions", "deliver_at", "delay"};
    for (const eb_json *m = obj->child; m; m = m->next) {
        bool ok = false;
        for (size_t i = 0; i < sizeof known / sizeof known[0] && !ok; i++)
            ok = m->key_len == strlen(known[i]) && !memcmp(m->key, known[i], m->key_len);
        FUZZ_CHECK(ok);
    }
}

/* Maps one envelope of a JSON body, then checks it. */
static void one_envelope(eb_ce_scratch *sc, const eb_json *obj, const char *body, bool ce)
{
    eb_event_in ev;
    eb_field_error fe;
    int rc = ce ? eb_ce_from_json(sc, obj, body, &ev, &fe)
                : eb_event_from_json(obj, body, &ev, &fe);
    if (rc) {
        FUZZ_CHECK(rc == EB_EINVAL);
        check_refusal(&fe);
        return;
    }
    if (!ce)
        check_native_names(obj);
    check_event(&ev);
}

static void json_body(int mode, bool ce_batch, const char *body, size_t len)
{
    eb_json_doc *doc = eb_json_doc_new();
    eb_ce_scratch sc = {0};
    FUZZ_CHECK(doc != NULL);
    const eb_json_opts o = {.max_depth = 128, .reject_dup_keys = true};
    if (eb_json_parse(doc, body, len, &o, NULL) == 0) {
        const eb_json *root = eb_json_root(doc);
        if (mode != M_BATCH) {
            one_envelope(&sc, root, body, mode == M_STRUCTURED);
        } else {
            const eb_json *arr = root;
            if (root->type == EB_JSON_OBJECT && !ce_batch)
                arr = eb_json_get(root, "events");
            size_t n = 0;
            for (const eb_json *e = eb_json_is(arr, EB_JSON_ARRAY) ? arr->child : NULL;
                 e && n < MAX_BATCH; e = e->next, n++)
                one_envelope(&sc, e, body, ce_batch);
        }
    }
    eb_ce_scratch_free(&sc);
    eb_json_doc_free(doc);
}

/* Binary mode: "name: value" lines, an empty line, the body. */
static void binary(const char *p, size_t len)
{
    eb_http_header h[MAX_HEADERS];
    char names[MAX_HEADERS][64];
    eb_http_req req = {0};
    const char *end = p + len;
    while (p < end && req.nheaders < MAX_HEADERS) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        if (le == p) { /* empty line: the body follows */
            p++;
            break;
        }
        const char *colon = memchr(p, ':', (size_t)(le - p));
        if (colon && (size_t)(colon - p) < sizeof names[0]) {
            size_t nl_len = (size_t)(colon - p);
            for (size_t i = 0; i < nl_len; i++) /* the reader lowercases names */
                names[req.nheaders][i] = (char)((p[i] >= 'A' && p[i] <= 'Z') ? p[i] + 32 : p[i]);
            const char *v = colon + 1;
            while (v < le && *v == ' ')
                v++;
            h[req.nheaders] = (eb_http_header){names[req.nheaders], nl_len, v, (size_t)(le - v)};
            req.nheaders++;
        }
        p = nl ? nl + 1 : end;
    }
    /* The reader hands over a NUL-terminated copy of the body. */
    size_t blen = p < end ? (size_t)(end - p) : 0;
    char *body = malloc(blen + 1);
    FUZZ_CHECK(body != NULL);
    memcpy(body, p < end ? p : "", blen);
    body[blen] = '\0';
    req.headers = h;
    req.body = body;
    req.body_len = blen;
    eb_ce_scratch sc = {0};
    eb_json_doc *doc = eb_json_doc_new();
    FUZZ_CHECK(doc != NULL);
    eb_event_in ev;
    eb_field_error fe;
    if (eb_ce_detect(&req) == EB_CE_BINARY) {
        if (eb_ce_from_binary(&sc, &req, doc, &ev, &fe) == 0)
            check_event(&ev);
        else
            check_refusal(&fe);
    }
    eb_json_doc_free(doc);
    eb_ce_scratch_free(&sc);
    free(body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > MAX_BYTES)
        return 0;
    int mode = data[0] & 3;
    const char *rest = (const char *)data + 1;
    if (data[0] & 8)
        stored_payload(data + 1, size - 1);
    else if (mode == M_BINARY)
        binary(rest, size - 1);
    else
        json_body(mode, (data[0] & 4) != 0, rest, size - 1);
    return 0;
}
