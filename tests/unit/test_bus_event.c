/* test_bus_event.c - envelope parsing and checks, ids, the stored event
 * format, time parsing, the dedupe window, and the type -> groups index. */
#include "runner.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "bus/dedupe.h"
#include "bus/event.h"
#include "bus/filter.h"
#include "bus/subject_match.h"
#include "bus/group_types.h"
#include "bus/match.h"
#include "bus/tail.h"
#include "eventbus/err.h"

static eb_json_doc *doc;

static const eb_json *parse(const char *s)
{
    if (!doc)
        doc = eb_json_doc_new();
    CHECK_OK(eb_json_parse(doc, s, strlen(s), NULL, NULL));
    return eb_json_root(doc);
}

TEST(envelope_parses_known_fields)
{
    const char *body = "{\"type\":\"order.created\",\"source\":\"shop\",\"id\":\"o-1\","
                       "\"key\":\"A-1\",\"version\":2,\"data\":{\"amount\": 10}}";
    eb_event_in ev;
    eb_field_error fe;
    CHECK_OK(eb_event_from_json(parse(body), body, &ev, &fe));
    CHECK(ev.type.len == 13 && memcmp(ev.type.ptr, "order.created", 13) == 0);
    CHECK(ev.key.len == 3 && ev.version == 2);
    CHECK(ev.data_raw.len == strlen("{\"amount\": 10}"));
    CHECK_OK(eb_event_check(&ev, &fe));
    CHECK(!eb_event_id_generated(&ev));
    CHECK(ev.correlation_id.ptr == ev.id.ptr); /* defaults to the id */
}

TEST(envelope_rejects_unknown_and_mistyped_fields)
{
    eb_event_in ev;
    eb_field_error fe;
    CHECK_EQ(eb_event_from_json(parse("{\"type\":\"a\",\"corelationId\":\"x\"}"), NULL, &ev, &fe),
             EB_EINVAL);
    CHECK_STR(fe.field, "/corelationId");
    CHECK(strstr(fe.message, "unknown field") != NULL);
    CHECK_EQ(eb_event_from_json(parse("{\"type\":5}"), NULL, &ev, &fe), EB_EINVAL);
    CHECK_STR(fe.field, "/type");
    CHECK_EQ(eb_event_from_json(parse("{\"type\":\"a\",\"version\":0}"), NULL, &ev, &fe),
             EB_EINVAL);
    CHECK_STR(fe.field, "/version");
    CHECK_EQ(eb_event_from_json(parse("[1]"), NULL, &ev, &fe), EB_EINVAL);
}

TEST(type_names)
{
    CHECK(eb_event_type_valid("order.created", 13));
    CHECK(eb_event_type_valid("a", 1));
    CHECK(eb_event_type_valid("payment-v2.failed_x", 19));
    CHECK(eb_event_type_valid("com.example.OrderCreated", 24));
    CHECK(eb_event_type_valid("Microsoft.Storage.BlobCreated", 29));
    CHECK(!eb_event_type_valid("Order created", 13));
    CHECK(!eb_event_type_valid(".a", 2));
    CHECK(!eb_event_type_valid("a b", 3));
    CHECK(!eb_event_type_valid("", 0));
    char long_name[130];
    memset(long_name, 'a', sizeof long_name);
    CHECK(eb_event_type_valid(long_name, 128));
    CHECK(!eb_event_type_valid(long_name, 129));
    eb_event_in ev;
    eb_field_error fe;
    CHECK_OK(eb_event_from_json(parse("{\"data\":1}"), NULL, &ev, &fe));
    CHECK_EQ(eb_event_check(&ev, &fe), EB_EINVAL);
    CHECK_STR(fe.field, "/type");
}

TEST(generated_ids_are_unique_and_sorted)
{
    char prev[EB_EVENT_ID_LEN + 1] = "";
    for (int i = 0; i < 100000; i++) {
        char id[EB_EVENT_ID_LEN + 1];
        eb_event_new_id(id);
        CHECK_EQ(strlen(id), EB_EVENT_ID_LEN);
        CHECK(strcmp(prev, id) < 0);
        memcpy(prev, id, sizeof id);
    }
}

/* A ULID: the first 10 characters are the 48-bit millisecond time. */
TEST(generated_ids_carry_their_time)
{
    static const char alpha[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    struct timespec t0, t1;
    char id[EB_EVENT_ID_LEN + 1];
    clock_gettime(CLOCK_REALTIME, &t0);
    eb_event_new_id(id);
    clock_gettime(CLOCK_REALTIME, &t1);
    uint64_t ms = 0;
    for (int i = 0; i < 10; i++) {
        const char *c = strchr(alpha, id[i]);
        CHECK(c != NULL && id[i] != '\0');
        ms = ms * 32 + (uint64_t)(c - alpha);
    }
    uint64_t lo = (uint64_t)t0.tv_sec * 1000 + (uint64_t)t0.tv_nsec / 1000000;
    uint64_t hi = (uint64_t)t1.tv_sec * 1000 + (uint64_t)t1.tv_nsec / 1000000;
    CHECK(id[0] <= '7'); /* 130 bits of characters for 128 of id */
    CHECK(ms >= lo && ms <= hi);
    for (int i = 10; i < EB_EVENT_ID_LEN; i++)
        CHECK(strchr(alpha, id[i]) != NULL);
}

TEST(stored_format_round_trip_and_splice)
{
    const char *body = "{\"type\":\"order.created\",\"key\":\"k1\",\"data\":{\"a\":[1,2.50]}}";
    eb_event_in ev;
    eb_field_error fe;
    CHECK_OK(eb_event_from_json(parse(body), body, &ev, &fe));
    CHECK_OK(eb_event_check(&ev, &fe));
    CHECK(eb_event_id_generated(&ev));
    eb_buf b = EB_BUF_INIT;
    eb_event_encode(&ev, 3, &b);
    eb_event_view v;
    CHECK_OK(eb_event_decode(b.data, b.len, &v));
    CHECK(v.type.len == 13 && v.key.len == 2 && v.id.len == EB_EVENT_ID_LEN);
    CHECK_EQ(v.schema_version, 3);
    CHECK(v.flags & EB_EVENT_F_GENERATED_ID);
    eb_buf out = EB_BUF_INIT;
    eb_jw w;
    eb_jw_init(&w, &out);
    eb_event_write(&w, 42, 1700000000123456ull, &v);
    const eb_json *o = parse(out.data);
    CHECK_EQ(eb_json_get(o, "seq")->i64, 42);
    CHECK_STR(eb_json_get(o, "time")->str, "2023-11-14T22:13:20.123456Z");
    CHECK_STR(eb_json_get(o, "type")->str, "order.created");
    CHECK_STR(eb_json_get(eb_json_get(o, "data"), "a")->child->next->str, "2.50");
    CHECK_EQ(eb_event_decode(b.data, b.len - 1, &v), EB_ECORRUPT);
    b.data[0] = 9;
    CHECK_EQ(eb_event_decode(b.data, b.len, &v), EB_ECORRUPT);
    eb_buf_free(&b);
    eb_buf_free(&out);
}

/* The source read from the stored JSON: a view when plain, decoded when
 * the JSON escapes it, none when absent (the empty source: a publish
 * refuses "source": ""). */
TEST(source_read_from_the_stored_json)
{
    static const struct {
        const char *body, *want; /* want NULL: no source */
    } cases[] = {
        {"{\"type\":\"a.b\",\"id\":\"x\",\"source\":\"/svc/1\",\"data\":1}", "/svc/1"},
        {"{\"type\":\"a.b\",\"source\":\"q\\\"\\\\\\u00e9\\n\",\"data\":1}", "q\"\\\xc3\xa9\n"},
        {"{\"type\":\"a.b\",\"id\":\"x\",\"data\":{\"source\":\"no\"}}", NULL},
    };
    char buf[EB_EVENT_MAX_ATTR];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        eb_event_in ev;
        eb_field_error fe;
        CHECK_OK(eb_event_from_json(parse(cases[i].body), cases[i].body, &ev, &fe));
        CHECK_OK(eb_event_check(&ev, &fe));
        eb_buf b = EB_BUF_INIT;
        eb_event_encode(&ev, 0, &b);
        eb_event_view v;
        CHECK_OK(eb_event_decode(b.data, b.len, &v));
        eb_str src;
        CHECK_OK(eb_event_source(&v, buf, &src));
        if (!cases[i].want) {
            CHECK(src.ptr == NULL && src.len == 0);
        } else {
            CHECK_EQ(src.len, strlen(cases[i].want));
            CHECK(memcmp(src.ptr, cases[i].want, src.len) == 0);
            CHECK((src.ptr == buf) == (strchr(cases[i].body, '\\') != NULL));
        }
        eb_buf_free(&b);
    }
}

TEST(delayed_format_3_and_its_due_copy)
{
    const char *body = "{\"type\":\"t.late\",\"id\":\"x-1\",\"delay\":\"90s\",\"data\":7}";
    eb_event_in ev;
    eb_field_error fe;
    CHECK_OK(eb_event_from_json(parse(body), body, &ev, &fe));
    CHECK(ev.delay.ptr && ev.delay.len == 3 && !ev.deliver_at.ptr);
    CHECK_OK(eb_event_check(&ev, &fe));
    ev.key_version = 0;
    ev.deliver_us = 1700000090000000ull; /* set by the bus */
    eb_buf b = EB_BUF_INIT, c = EB_BUF_INIT, out = EB_BUF_INIT;
    eb_event_encode(&ev, 0, &b);
    CHECK_EQ((uint8_t)b.data[0], EB_EVENT_FORMAT_DELAYED);
    eb_event_view v;
    CHECK_OK(eb_event_decode(b.data, b.len, &v));
    CHECK(v.deliver_us == 1700000090000000ull && v.origin_seq == 0);
    CHECK(v.id.len == 3 && !memcmp(v.id.ptr, "x-1", 3));
    CHECK_OK(eb_event_due_copy(b.data, b.len, 41, &c));
    CHECK_OK(eb_event_decode(c.data, c.len, &v));
    CHECK(v.deliver_us == 1700000090000000ull && v.origin_seq == 41);
    eb_jw w;
    eb_jw_init(&w, &out);
    eb_event_write(&w, 50, 1700000090001000ull, &v);
    const eb_json *o = parse(out.data);
    CHECK_STR(eb_json_get(o, "deliver_at")->str, "2023-11-14T22:14:50.000000Z");
    CHECK_EQ(eb_json_get(o, "published_seq")->i64, 41);
    CHECK_EQ(eb_json_get(o, "data")->i64, 7);
    CHECK(eb_json_get(o, "delay") == NULL); /* not stored: the time is */
    /* a format-2 payload has no due copy; a cut header is refused */
    ev.deliver_us = 0;
    eb_buf_reset(&b);
    eb_event_encode(&ev, 0, &b);
    CHECK_EQ(eb_event_due_copy(b.data, b.len, 1, &c), EB_EINVAL);
    CHECK_EQ(eb_event_decode(c.data, 30, &v), EB_ECORRUPT);
    const char *bad = "{\"type\":\"t\",\"delay\":5}";
    CHECK_EQ(eb_event_from_json(parse(bad), bad, &ev, &fe), EB_EINVAL);
    CHECK_STR(fe.field, "/delay");
    eb_buf_free(&b);
    eb_buf_free(&c);
    eb_buf_free(&out);
}

TEST(time_parse_and_format)
{
    uint64_t t;
    CHECK_OK(eb_time_parse("2023-11-14T22:13:20.123456Z", 27, &t));
    CHECK_EQ(t, 1700000000123456ull);
    CHECK_OK(eb_time_parse("2023-11-14T23:13:20+01:00", 25, &t));
    CHECK_EQ(t, 1700000000000000ull);
    CHECK_OK(eb_time_parse("2023-11-14T22:13:20.5Z", 22, &t));
    CHECK_EQ(t, 1700000000500000ull);
    CHECK_EQ(eb_time_parse("2023-13-14T22:13:20Z", 20, &t), EB_EINVAL);
    CHECK_EQ(eb_time_parse("2023-11-14 garbage", 18, &t), EB_EINVAL);
    CHECK_EQ(eb_time_parse("2023-11-14T22:13:20", 19, &t), EB_EINVAL); /* no zone */
    char s[32];
    eb_time_format(0, s);
    CHECK_STR(s, "1970-01-01T00:00:00.000000Z");
}

#define S(x) ((eb_str){x, sizeof x - 1})
#define NOSRC ((eb_str){NULL, 0})

TEST(dedupe_window_expires_in_order)
{
    eb_dedupe d;
    eb_dedupe_init(&d, 1000, 0);
    eb_dedupe_add(&d, NOSRC, S("a"), 1, 100);
    eb_dedupe_add(&d, NOSRC, S("b"), 2, 600);
    uint64_t ts = 0;
    CHECK_EQ(eb_dedupe_find(&d, NOSRC, S("a"), 1000, &ts), 1);
    CHECK_EQ(ts, 100);
    CHECK_EQ(eb_dedupe_find(&d, NOSRC, S("a"), 1200, NULL), 0); /* past its window */
    eb_dedupe_expire(&d, 1200);
    CHECK_EQ(d.map.len, 1);
    CHECK_EQ(d.by_id.len, 1);
    CHECK_EQ(eb_dedupe_find(&d, NOSRC, S("b"), 1200, NULL), 2);
    /* bound: oldest evicted first */
    eb_dedupe_free(&d);
    eb_dedupe_init(&d, 1000000, 3 * EB_DEDUPE_ENTRY_BYTES(5, 1)); /* 3 ids of 1 byte */
    for (uint64_t i = 0; i < 5; i++) {
        char k[2] = {(char)('a' + i), 0};
        eb_dedupe_add(&d, NOSRC, (eb_str){k, 1}, i + 1, i);
    }
    CHECK_EQ(d.map.len, 3);
    CHECK_EQ(d.evicted, 2);
    CHECK_EQ(d.bytes, 3 * EB_DEDUPE_ENTRY_BYTES(5, 1));
    CHECK_EQ(eb_dedupe_find(&d, NOSRC, S("a"), 10, NULL), 0);
    CHECK_EQ(eb_dedupe_find(&d, NOSRC, S("e"), 10, NULL), 5);
    eb_dedupe_free(&d);
}

/* CloudEvents: unique by source + id (issue 13, item 7). */
TEST(dedupe_is_by_source_and_id)
{
    eb_dedupe d;
    eb_dedupe_init(&d, 1000, 0);
    eb_dedupe_add(&d, S("/orders"), S("x-1"), 1, 100);
    CHECK_EQ(eb_dedupe_find(&d, S("/orders"), S("x-1"), 200, NULL), 1);
    CHECK_EQ(eb_dedupe_find(&d, S("/billing"), S("x-1"), 200, NULL), 0);
    CHECK_EQ(eb_dedupe_find(&d, NOSRC, S("x-1"), 200, NULL), 0);
    /* the length prefix keeps ("/a", "bc") apart from ("/ab", "c") */
    eb_dedupe_add(&d, S("/a"), S("bc"), 2, 110);
    CHECK_EQ(eb_dedupe_find(&d, S("/ab"), S("c"), 200, NULL), 0);
    eb_dedupe_add(&d, S("/billing"), S("x-1"), 3, 120);
    CHECK_EQ(eb_dedupe_find(&d, S("/orders"), S("x-1"), 200, NULL), 1);
    CHECK_EQ(eb_dedupe_find(&d, S("/billing"), S("x-1"), 200, NULL), 3);
    CHECK_EQ(eb_dedupe_find_id(&d, S("x-1"), 200, NULL), 3); /* the latest with the id */
    eb_dedupe_expire(&d, 1105); /* drops seq 1 only: by_id still has seq 3 */
    CHECK_EQ(eb_dedupe_find_id(&d, S("x-1"), 1105, NULL), 3);
    CHECK_EQ(eb_dedupe_find(&d, S("/orders"), S("x-1"), 1105, NULL), 0);
    eb_dedupe_free(&d);
}

/* The cached formatter agrees with gmtime_r + snprintf, across seconds,
 * days, leap years and back again (the cache must follow). */
TEST(time_format_matches_gmtime)
{
    uint64_t x = 88172645463325252ull, ts = 1700000000000000ull;
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        ts = i % 3 ? ts + x % 3000000u : x % 253402300799000000ull; /* up to 9999-12-31 */
        char got[32], want[96];
        time_t secs = (time_t)(ts / 1000000u);
        struct tm tm;
        gmtime_r(&secs, &tm);
        snprintf(want, sizeof want, "%04d-%02d-%02dT%02d:%02d:%02d.%06uZ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 (unsigned)(ts % 1000000u));
        CHECK_EQ(eb_time_format(ts, got), strlen(want));
        CHECK_STR(got, want);
        uint64_t back;
        CHECK_OK(eb_time_parse(got, strlen(got), &back));
        CHECK_EQ(back, ts);
    }
}

/* Found by tests/fuzz/envelope_fuzz.c: eb_event_check() is the one gate
 * for every mapping (CloudEvents fill eb_event_in directly), so it enforces
 * the bounds the stored format and the answers rely on. */
TEST(check_enforces_bounds_whatever_the_mapping)
{
    char long_id[300];
    memset(long_id, 'i', sizeof long_id);
    eb_event_in ev = {.type = {"a.b", 3}, .id = {long_id, sizeof long_id}};
    eb_field_error fe;
    CHECK_EQ(eb_event_check(&ev, &fe), EB_EINVAL);
    CHECK_STR(fe.field, "/id");
    ev.id.len = EB_EVENT_MAX_ID;
    CHECK_OK(eb_event_check(&ev, &fe));
    char key[EB_EVENT_MAX_KEY + 1];
    memset(key, 'k', sizeof key);
    eb_event_in ev2 = {.type = {"a.b", 3}, .key = {key, sizeof key}};
    CHECK_EQ(eb_event_check(&ev2, &fe), EB_EINVAL);
    CHECK_STR(fe.field, "/key");
    eb_event_in ev3 = {.type = {"a.b", 3}, .subject = {"x\0y", 3}};
    CHECK_EQ(eb_event_check(&ev3, &fe), EB_EINVAL);
    CHECK_STR(fe.field, "/subject");
    eb_event_in ev4 = {.type = {"a.b", 3}, .source = {"", 0}};
    CHECK_EQ(eb_event_check(&ev4, &fe), EB_EINVAL);
}

/* A member name holding \u0000 is not the field its prefix names. */
TEST(envelope_names_match_whole_keys)
{
    eb_event_in ev;
    eb_field_error fe;
    const char *body = "{\"type\":\"a.b\",\"type\\u0000x\":\"c.d\"}";
    CHECK_EQ(eb_event_from_json(parse(body), body, &ev, &fe), EB_EINVAL);
    CHECK(strstr(fe.message, "unknown field") != NULL);
}

/* A record as format 1 wrote it (before key versions): 16-byte header,
 * "version" in the JSON only when the producer named one. */
static size_t v1_record(uint8_t *out, uint32_t schema_version, const char *json)
{
    size_t jl = strlen(json);
    const uint8_t h[16] = {1, 3, 3, 0, 2, 0, 0, 0, (uint8_t)schema_version, 0, 0, 0,
                           (uint8_t)jl, (uint8_t)(jl >> 8), 0, 0};
    memcpy(out, h, 16);
    memcpy(out + 16, "o.cid1k1", 8);
    memcpy(out + 24, json, jl);
    return 24 + jl;
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p++)
        n++;
    return n;
}

TEST(format_1_records_still_read)
{
    uint8_t rec[512];
    eb_event_view v;
    eb_buf out = EB_BUF_INIT;
    eb_jw w;
    /* Validated against version 2 (latest), not named: "version" added. */
    size_t n = v1_record(rec, 2, "{\"id\":\"id1\",\"type\":\"o.c\",\"source\":\"s\\\"x\","
                                 "\"key\":\"k1\",\"correlationId\":\"id1\","
                                 "\"data\":{\"version\":7}}");
    CHECK_OK(eb_event_decode(rec, n, &v));
    CHECK_EQ(v.format, 1);
    CHECK_EQ(v.key_version, 0);
    CHECK_EQ(v.schema_version, 2);
    CHECK(v.key.len == 2 && memcmp(v.key.ptr, "k1", 2) == 0);
    eb_jw_init(&w, &out);
    eb_event_write(&w, 5, 1700000000000000ull, &v);
    const eb_json *o = parse(out.data);
    CHECK_EQ(eb_json_get(o, "version")->i64, 2);
    CHECK_EQ(eb_json_get(eb_json_get(o, "data"), "version")->i64, 7);
    CHECK(!eb_json_get(o, "key_version"));
    /* Named by the producer: stored already, not repeated. */
    n = v1_record(rec, 1, "{\"id\":\"id1\",\"type\":\"o.c\",\"version\":1,\"key\":\"k1\","
                          "\"correlationId\":\"id1\",\"data\":null}");
    CHECK_OK(eb_event_decode(rec, n, &v));
    eb_buf_reset(&out);
    eb_jw_init(&w, &out);
    eb_event_write(&w, 6, 1700000000000000ull, &v);
    CHECK_EQ(count(out.data, "\"version\""), 1);
    CHECK_EQ(eb_json_get(parse(out.data), "version")->i64, 1);
    eb_buf_free(&out);
}

TEST(key_version_stored_and_written)
{
    const char *body = "{\"type\":\"o.c\",\"key\":\"k1\",\"expected_version\":4}";
    eb_event_in ev;
    eb_field_error fe;
    CHECK_OK(eb_event_from_json(parse(body), body, &ev, &fe));
    CHECK(ev.expect_version && ev.expected_version == 4);
    CHECK_OK(eb_event_check(&ev, &fe));
    ev.key_version = 5000000000ull; /* past 32 bits */
    eb_buf b = EB_BUF_INIT, out = EB_BUF_INIT;
    eb_event_encode(&ev, 0, &b);
    eb_event_view v;
    CHECK_OK(eb_event_decode(b.data, b.len, &v));
    CHECK_EQ(v.format, EB_EVENT_FORMAT);
    CHECK(v.key_version == 5000000000ull);
    eb_jw w;
    eb_jw_init(&w, &out);
    eb_event_write(&w, 1, 1700000000000000ull, &v);
    const eb_json *o = parse(out.data);
    CHECK(eb_json_get(o, "key_version")->i64 == 5000000000ll);
    CHECK(!eb_json_get(o, "expected_version"));
    const char *nokey = "{\"type\":\"o.c\",\"expected_version\":0}";
    CHECK_OK(eb_event_from_json(parse(nokey), nokey, &ev, &fe));
    CHECK_EQ(eb_event_check(&ev, &fe), EB_EINVAL);
    CHECK_STR(fe.field, "/expected_version");
    eb_buf_free(&b);
    eb_buf_free(&out);
}

static bool m(const char *p, const char *t)
{
    CHECK(eb_subject_pattern_valid(p, strlen(p)));
    return eb_subject_match(p, t, strlen(t));
}

TEST(subject_patterns_match_by_segment)
{
    CHECK(m("order.created", "order.created") && !m("order.created", "order.created.v2"));
    CHECK(m("*.created", "order.created") && m("*.created", "user.created"));
    CHECK(!m("*.created", "order.created.v2") && !m("*.created", "created"));
    CHECK(m("order.*.v2", "order.paid.v2") && !m("order.*.v2", "order.paid.x.v2"));
    CHECK(!m("order.*.v2", "order.v2"));
    CHECK(m("order.>", "order.paid") && m("order.>", "order.paid.v2"));
    CHECK(!m("order.>", "order") && !m("order.>", "orders.paid"));
    CHECK(m(">", "a") && m(">", "a.b.c") && m("*", "a.b")); /* "*" alone: everything, as before */
    CHECK(m("order.*", "order.paid.v2") && !m("order.*", "order"));  /* a last "*": as before */
    CHECK(m("*.*.v2", "a.b.v2") && !m("*.*.v2", "a.v2"));
    CHECK(m("a.*.>", "a.b.c") && !m("a.*.>", "a.b"));
    CHECK(!m("order.paid", "order.pai") && !m("order.pai", "order.paid"));
    /* the server's own events: by name, or by a pattern starting "eventbus." */
    CHECK(!m(">", "eventbus.dead_letter") && !m("*.dead_letter", "eventbus.dead_letter"));
    CHECK(m("eventbus.>", "eventbus.dead_letter") && m("eventbus.dead_letter", "eventbus.dead_letter"));
}

TEST(subject_patterns_validated)
{
    static const char *const bad[] = {"", "order.>.x", "or*der.x", "a.b*", ">x", ".a", "*.A",
                                      "_a.*", "a.*x", "a b.*", ">.a", "a.>>"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(!eb_subject_pattern_valid(bad[i], strlen(bad[i])));
    char longp[140];
    memset(longp, 'a', sizeof longp);
    longp[0] = '*', longp[1] = '.';
    CHECK(eb_subject_pattern_valid(longp, 128) && !eb_subject_pattern_valid(longp, 129));
    CHECK(eb_subject_has_wildcard("a.*.b") && eb_subject_has_wildcard(">"));
    CHECK(!eb_subject_has_wildcard("a.b") && !eb_subject_has_wildcard("a.b*c"));
}

/* Compiles filter text f and matches it against envelope text e. */
static bool fmatch(const char *f, const char *e)
{
    eb_json_doc *fd = eb_json_doc_new(), *ed = eb_json_doc_new();
    CHECK_OK(eb_json_parse(fd, f, strlen(f), NULL, NULL));
    CHECK_OK(eb_json_parse(ed, e, strlen(e), NULL, NULL));
    eb_filter *flt;
    eb_field_error fe;
    CHECK_OK(eb_filter_compile(eb_json_root(fd), "/filter", &flt, &fe));
    eb_filter_event ev;
    eb_filter_event_of(eb_json_root(ed), &ev);
    bool r = eb_filter_match(flt, &ev);
    eb_filter_free(flt);
    eb_json_doc_free(fd);
    eb_json_doc_free(ed);
    return r;
}

TEST(filters_match)
{
    const char *money = "{\"data\":{\"currency\":[\"EUR\",\"USD\"],"
                        "\"amount\":[{\"numeric\":[\">=\",100,\"<\",1000]}]}}";
    CHECK(fmatch(money, "{\"data\":{\"currency\":\"EUR\",\"amount\":100}}"));
    CHECK(!fmatch(money, "{\"data\":{\"currency\":\"EUR\",\"amount\":1000}}"));
    CHECK(!fmatch(money, "{\"data\":{\"currency\":\"GBP\",\"amount\":500}}"));
    CHECK(!fmatch(money, "{\"data\":{\"currency\":\"EUR\",\"amount\":\"500\"}}"));
    CHECK(!fmatch(money, "{\"data\":null}"));
    CHECK(fmatch("{\"source\":[\"shop\"]}", "{\"source\":\"shop\"}"));
    CHECK(!fmatch("{\"source\":[\"shop\"]}", "{\"source\":\"shopx\"}"));
    CHECK(!fmatch("{\"key\":[{\"exists\":true}]}", "{\"data\":1}"));
    CHECK(fmatch("{\"key\":[{\"exists\":false}]}", "{\"data\":1}"));
    CHECK(fmatch("{\"extensions\":{\"t\":[{\"prefix\":\"ac\"}]}}", "{\"extensions\":{\"t\":\"acme\"}}"));
    CHECK(fmatch("{\"data\":{\"tags\":[\"vip\"]}}", "{\"data\":{\"tags\":[\"a\",\"vip\"]}}"));
    CHECK(fmatch("{\"data\":{\"a\":{\"b\":[true,null,2]}}}", "{\"data\":{\"a\":{\"b\":2.0}}}"));
    CHECK(fmatch("{\"data\":{\"t\":[{\"anything-but\":[\"free\",\"trial\"]}]}}",
                 "{\"data\":{\"t\":\"gold\"}}"));
    CHECK(!fmatch("{\"data\":{\"t\":[{\"anything-but\":\"free\"}]}}", "{\"data\":{\"t\":\"free\"}}"));
    CHECK(!fmatch("{\"data\":{\"t\":[{\"anything-but\":\"free\"}]}}", "{\"data\":{}}"));
    CHECK(!fmatch("{\"data\":{\"t\":[{\"anything-but\":{\"prefix\":\"tr\"}}]}}",
                  "{\"data\":{\"t\":\"trial\"}}"));
}

TEST(filters_refuse_bad_input_naming_the_path)
{
    static const struct { const char *f, *path; } bad[] = {
        {"{\"data\":{\"a\":[{\"numeric\":[\"<\"]}]}}", "/filter/data/a/0/numeric"},
        {"{\"data\":{\"a\":[{\"prefix\":\"x\",\"exists\":true}]}}", "/filter/data/a/0"},
        {"{\"type\":[\"x\"]}", "/filter/type"},
        {"{\"data\":{}}", "/filter/data"},
        {"7", "/filter"},
    };
    eb_json_doc *d = eb_json_doc_new();
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        eb_filter *f = NULL;
        eb_field_error fe;
        CHECK_OK(eb_json_parse(d, bad[i].f, strlen(bad[i].f), NULL, NULL));
        CHECK_EQ(eb_filter_compile(eb_json_root(d), "/filter", &f, &fe), EB_EINVAL);
        CHECK(f == NULL);
        CHECK_STR(fe.field, bad[i].path);
    }
    eb_json_doc_free(d);
}

/* The index answers what testing every group's patterns answers, through
 * adds, removes and pattern changes (randomized, against the brute force). */
TEST(matcher_agrees_with_testing_every_group)
{
    static const char *pats[] = {"*", "a.*", "a.b", "a.b.*", "a.b.c", "b.*", "b.c", "a.bc",
                                 "c.d.e.*", "c.d.e.f"};
    static const char *types[] = {"a.b", "a.b.c", "a.bc", "a.b.c.d", "b.c", "b.d.e", "c.d.e",
                                  "c.d.e.f", "c.d.e.f.g", "x", "a", "ab.c"};
    enum { NG = 40 };
    const char *cfg[NG][3]; /* each fake group's patterns (NULL = none) */
    memset(cfg, 0, sizeof cfg);
    eb_matcher m;
    eb_matcher_init(&m);
    srand(15);
    for (int round = 0; round < 2000; round++) {
        int g = rand() % NG, slot = rand() % 3;
        if (cfg[g][slot]) {
            bool other = false; /* the same pattern in another slot of g stays */
            for (int k = 0; k < 3; k++)
                other |= k != slot && cfg[g][k] && strcmp(cfg[g][k], cfg[g][slot]) == 0;
            if (!other)
                eb_matcher_remove(&m, &cfg[g], cfg[g][slot]);
            cfg[g][slot] = NULL;
        } else {
            cfg[g][slot] = pats[rand() % (int)(sizeof pats / sizeof *pats)];
            eb_matcher_add(&m, &cfg[g], cfg[g][slot]);
        }
        const char *t = types[rand() % (int)(sizeof types / sizeof *types)];
        void *const *out;
        size_t n = eb_matcher_match(&m, t, strlen(t), &out);
        size_t want = 0;
        for (int k = 0; k < NG; k++) {
            bool hit = false;
            for (int j = 0; j < 3; j++)
                hit |= cfg[k][j] && eb_group_type_match(cfg[k][j], t, strlen(t));
            if (!hit)
                continue;
            want++;
            bool found = false;
            for (size_t i = 0; i < n; i++)
                found |= out[i] == (void *)&cfg[k];
            CHECK(found);
        }
        CHECK_EQ(n, want); /* each group once */
    }
    eb_matcher_free(&m);
}

typedef struct tail_sum {
    uint64_t a, b; /* events of types "a" and "b" reported */
} tail_sum;

static void tail_fn(void *arg, const char *type, size_t len, uint64_t n)
{
    tail_sum *t = arg;
    CHECK_EQ(len, 1);
    if (type[0] == 'a')
        t->a += n;
    else
        t->b += n;
}

/* The tail's counts of a range, plus a brute-force count of the parts it
 * leaves to walk, equal a brute-force count of the whole range, through
 * adds (in runs, across chunks), trims and resets (randomized). */
TEST(tail_counts_agree_with_counting_every_event)
{
    enum { MAXSEQ = 6 * EB_TAIL_CHUNK };
    static char ty[MAXSEQ]; /* seq -> 'a', 'b' or 0 (not an event: a gap) */
    eb_tail t;
    eb__tail_init(&t);
    srand(1515);
    for (int round = 0; round < 40; round++) {
        memset(ty, 0, sizeof ty);
        uint64_t from = (uint64_t)(rand() % (2 * EB_TAIL_CHUNK)) + 1, next = from;
        eb__tail_reset(&t, from);
        while (next < MAXSEQ - 64) {
            uint64_t run = (uint64_t)(rand() % 40) + 1;
            char c = rand() % 2 ? 'a' : 'b';
            for (uint64_t s = next; s < next + run; s++)
                if (rand() % 5) /* some seqs are gaps (delayed originals) */
                    ty[s] = c;
            for (uint64_t s = next; s < next + run; s++)
                if (ty[s])
                    eb__tail_add(&t, s, &c, 1, 1);
            next += run;
            eb__tail_seen(&t, next);
            if (rand() % 50 == 0)
                eb__tail_trim(&t, (uint64_t)rand() % next);
        }
        for (int q = 0; q < 200; q++) {
            uint64_t a = (uint64_t)rand() % next, b = a + (uint64_t)rand() % (next - a + 1);
            uint64_t lo, hi;
            tail_sum got = {0, 0}, want = {0, 0};
            eb__tail_count(&t, a, b, &lo, &hi, tail_fn, &got);
            CHECK(a <= lo && lo <= hi && hi <= b);
            CHECK(lo == hi || lo >= t.from);
            for (uint64_t s = a; s < b; s++) {
                if (lo < hi && s >= lo && s < hi)
                    continue; /* counted by the tail */
                if (ty[s] == 'a')
                    got.a++;
                else if (ty[s] == 'b')
                    got.b++;
            }
            for (uint64_t s = a; s < b; s++) {
                want.a += ty[s] == 'a';
                want.b += ty[s] == 'b';
            }
            CHECK_EQ(got.a, want.a);
            CHECK_EQ(got.b, want.b);
            CHECK(lo == hi || ((lo - a < EB_TAIL_CHUNK || a < t.from) && b - hi < EB_TAIL_CHUNK));
        }
    }
    eb__tail_invalidate(&t);
    uint64_t lo, hi;
    tail_sum none = {0, 0};
    eb__tail_count(&t, 1, 100, &lo, &hi, tail_fn, &none);
    CHECK_EQ(lo, hi);
    eb__tail_free(&t);
}

TEST_MAIN(T(envelope_parses_known_fields),
          T(tail_counts_agree_with_counting_every_event),
          T(envelope_rejects_unknown_and_mistyped_fields),
          T(type_names),
          T(generated_ids_are_unique_and_sorted),
          T(generated_ids_carry_their_time),
          T(stored_format_round_trip_and_splice),
          T(source_read_from_the_stored_json),
          T(delayed_format_3_and_its_due_copy),
          T(time_parse_and_format),
          T(dedupe_window_expires_in_order),
          T(dedupe_is_by_source_and_id),
          T(time_format_matches_gmtime),
          T(check_enforces_bounds_whatever_the_mapping),
          T(envelope_names_match_whole_keys),
          T(format_1_records_still_read),
          T(key_version_stored_and_written),
          T(subject_patterns_match_by_segment),
          T(subject_patterns_validated),
          T(filters_match),
          T(filters_refuse_bad_input_naming_the_path),
          T(matcher_agrees_with_testing_every_group))
