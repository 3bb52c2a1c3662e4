/* test_json.c - the JSON parser and writer. */
#include "runner.h"

#include "eventbus.h"
#include "json/json.h"

static eb_json_doc *doc;

static const eb_json *parse_ok(const char *s)
{
    if (!doc)
        doc = eb_json_doc_new();
    eb_json_error e;
    int rc = eb_json_parse(doc, s, strlen(s), NULL, &e);
    if (rc)
        eb_test_fail(__FILE__, __LINE__, "parse of %s failed: %s", s, e.msg);
    return eb_json_root(doc);
}

static int parse_err(const char *s, const eb_json_opts *o, eb_json_error *e)
{
    if (!doc)
        doc = eb_json_doc_new();
    int rc = eb_json_parse(doc, s, strlen(s), o, e);
    CHECK(rc != 0);
    CHECK(eb_json_root(doc) == NULL);
    return rc;
}

static char *write_value(const eb_json *v)
{
    eb_buf b = EB_BUF_INIT;
    eb_jw w;
    eb_jw_init(&w, &b);
    eb_jw_value(&w, v);
    return eb_buf_steal(&b, NULL);
}

TEST(values_of_each_type)
{
    const eb_json *r = parse_ok(" {\"n\":null,\"t\":true,\"f\":false,\"i\":-42,\"d\":2.5e3,"
                                "\"s\":\"x\",\"a\":[1,[]],\"o\":{}} ");
    CHECK_EQ(r->type, EB_JSON_OBJECT);
    CHECK_EQ(r->len, 8);
    CHECK_EQ(eb_json_get(r, "n")->type, EB_JSON_NULL);
    CHECK(eb_json_is_bool(eb_json_get(r, "t")) && eb_json_get(r, "f")->type == EB_JSON_FALSE);
    const eb_json *i = eb_json_get(r, "i");
    CHECK((i->flags & EB_JSON_F_INT) && i->i64 == -42);
    CHECK(eb_json_num(eb_json_get(r, "d")) == 2500.0);
    CHECK(!(eb_json_get(r, "d")->flags & EB_JSON_F_INT));
    CHECK(eb_json_is_integral(eb_json_get(r, "d")));
    CHECK_STR(eb_json_get(r, "s")->str, "x");
    CHECK_EQ(eb_json_at(eb_json_get(r, "a"), 1)->type, EB_JSON_ARRAY);
    CHECK(eb_json_at(eb_json_get(r, "a"), 2) == NULL);
    CHECK_EQ(eb_json_get(r, "o")->len, 0);
    CHECK_EQ(r->src_off, 1); /* spans point into the text */
}

TEST(escapes_and_unicode)
{
    const eb_json *r = parse_ok("[\"a\\n\\t\\\"\\\\\\/\\u00e9\\ud83d\\ude00\", \"x\\u0000y\"]");
    CHECK_STR(r->child->str, "a\n\t\"\\/\xc3\xa9\xf0\x9f\x98\x80");
    CHECK_EQ(eb_json_strlen_cp(r->child), 8);
    CHECK_EQ(r->child->next->len, 3); /* \u0000 kept inside */
    CHECK(r->child->next->str[1] == '\0');
}

TEST(errors_name_line_and_column)
{
    eb_json_error e;
    CHECK_EQ(parse_err("{\n  \"a\": 1,\n  \"b\": tru\n}", NULL, &e), EB_ESYNTAX);
    CHECK_EQ(e.line, 3);
    CHECK_EQ(e.column, 8);
    parse_err("[1,]", NULL, &e);
    CHECK(strstr(e.msg, "trailing comma") != NULL);
    parse_err("[01]", NULL, &e);
    CHECK(strstr(e.msg, "leading zero") != NULL);
    parse_err("\"\xff\"", NULL, &e);
    CHECK(strstr(e.msg, "UTF-8") != NULL);
    parse_err("[\"\\udc00\"]", NULL, &e);
    parse_err("{} x", NULL, &e);
    CHECK(strstr(e.msg, "after") != NULL);
    parse_err("// c\n{}", NULL, &e);
    parse_err("[NaN]", NULL, &e);
    parse_err("\"a\tb\"", NULL, &e);
    parse_err("", NULL, &e);
}

TEST(bounds_on_depth_size_and_dup_keys)
{
    char deep[100001];
    memset(deep, '[', 100000);
    deep[100000] = '\0';
    eb_json_error e;
    CHECK_EQ(parse_err(deep, NULL, &e), EB_EDEPTH);
    eb_json_opts o = {.max_depth = 3};
    CHECK_EQ(parse_err("[[[[1]]]]", &o, &e), EB_EDEPTH);
    parse_ok("[[[[1]]]]");
    eb_json_opts small = {.max_bytes = 4};
    CHECK_EQ(parse_err("[1,2,3]", &small, &e), EB_ETOOBIG);
    eb_json_opts dup = {.reject_dup_keys = true};
    CHECK_EQ(parse_err("{\"a\":1,\"b\":{\"a\":1,\"a\":2}}", &dup, &e), EB_ESYNTAX);
    CHECK(strstr(e.msg, "duplicate") != NULL);
    parse_ok("{\"a\":1,\"a\":2}"); /* allowed unless asked */
}

TEST(round_trip_keeps_number_text)
{
    const char *src = "{\"big\":12345678901234567890123,\"exact\":0.1000000000000000055511151231257827,"
                      "\"neg\":-0,\"e\":1E+2,\"s\":\"\\u001f\\\"q\",\"a\":[true,null,{}]}";
    char *out = write_value(parse_ok(src));
    CHECK_STR(out, "{\"big\":12345678901234567890123,\"exact\":0.1000000000000000055511151231257827,"
                   "\"neg\":-0,\"e\":1E+2,\"s\":\"\\u001f\\\"q\",\"a\":[true,null,{}]}");
    eb_json_doc *d2 = eb_json_doc_new();
    CHECK_OK(eb_json_parse(d2, out, strlen(out), NULL, NULL));
    CHECK(eb_json_equal(eb_json_root(d2), parse_ok(src)));
    CHECK(!(eb_json_get(eb_json_root(d2), "big")->flags & EB_JSON_F_INT)); /* too big for int64 */
    eb_json_doc_free(d2);
    free(out);
}

TEST(writer_structure_and_escaping)
{
    eb_buf b = EB_BUF_INIT;
    eb_jw w;
    eb_jw_init(&w, &b);
    eb_jw_obj_open(&w);
    eb_jw_key(&w, "k\n");
    eb_jw_arr_open(&w);
    eb_jw_int(&w, -5);
    eb_jw_uint(&w, 18446744073709551615ull);
    eb_jw_double(&w, 0.1);
    eb_jw_double(&w, 1.0 / 3.0);
    eb_jw_bool(&w, false);
    eb_jw_null(&w);
    eb_jw_str(&w, "\x01<\xc3\xa9>");
    eb_jw_raw(&w, "{\"r\":1}", 7);
    eb_jw_arr_close(&w);
    eb_jw_key(&w, "e");
    eb_jw_obj_open(&w);
    eb_jw_obj_close(&w);
    eb_jw_obj_close(&w);
    CHECK_STR(b.data, "{\"k\\n\":[-5,18446744073709551615,0.1,0.33333333333333331,false,null,"
                      "\"\\u0001<\xc3\xa9>\",{\"r\":1}],\"e\":{}}");
    CHECK(!eb_buf_failed(&b));
    eb_buf_free(&b);
}

TEST(equality_and_numbers)
{
    eb_json_doc *a = eb_json_doc_new(), *b = eb_json_doc_new();
    CHECK_OK(eb_json_parse(a, "{\"x\":1,\"y\":[1.0,2]}", 19, NULL, NULL));
    CHECK_OK(eb_json_parse(b, "{\"y\":[1,2e0],\"x\":1.00}", 22, NULL, NULL));
    CHECK(eb_json_equal(eb_json_root(a), eb_json_root(b)));
    CHECK_OK(eb_json_parse(b, "{\"y\":[1,2],\"x\":1,\"z\":0}", 23, NULL, NULL));
    CHECK(!eb_json_equal(eb_json_root(a), eb_json_root(b)));
    CHECK_OK(eb_json_parse(b, "[9223372036854775807,-9223372036854775808,1.5]", 46, NULL, NULL));
    const eb_json *r = eb_json_root(b);
    CHECK(r->child->i64 == INT64_MAX && r->child->next->i64 == INT64_MIN);
    CHECK(!eb_json_is_integral(r->child->next->next));
    eb_json_doc_free(a);
    eb_json_doc_free(b);
}

TEST(doc_reuse_keeps_memory)
{
    eb_json_doc *d = eb_json_doc_new();
    const char *ev = "{\"type\":\"order.created\",\"data\":{\"orderId\":\"A-1\",\"items\":[1,2,3]}}";
    for (int i = 0; i < 100000; i++)
        CHECK_OK(eb_json_parse(d, ev, strlen(ev), NULL, NULL));
    CHECK_STR(eb_json_get(eb_json_root(d), "type")->str, "order.created");
    eb_json_doc_free(d);
}

/* Found by tests/fuzz/envelope_fuzz.c: a CloudEvents header byte 0xff went
 * into stored JSON as it was, and consumers got JSON that does not parse.
 * The writer now never emits invalid UTF-8. */
TEST(writer_replaces_invalid_utf8)
{
    eb_buf b = EB_BUF_INIT;
    eb_json_escape(&b, "a\xff\xc3\xa9\xed\xa0\x80\xf0\x9f\x98\x80\xe2\x82", 13);
    CHECK_STR(b.data, "\"a\\ufffd\xc3\xa9\\ufffd\\ufffd\\ufffd\xf0\x9f\x98\x80"
                      "\\ufffd\\ufffd\"");
    const eb_json *v = parse_ok(b.data);
    CHECK(v->type == EB_JSON_STRING);
    eb_buf_free(&b);
    CHECK(eb_json_utf8_valid("plain \xc3\xa9 \xf4\x8f\xbf\xbf", 13));
    CHECK(!eb_json_utf8_valid("\xc0\x80", 2));         /* overlong */
    CHECK(!eb_json_utf8_valid("\xed\xa0\x80", 3));     /* surrogate */
    CHECK(!eb_json_utf8_valid("\xf4\x90\x80\x80", 4)); /* over U+10FFFF */
    CHECK(!eb_json_utf8_valid("\xe2\x82", 2));         /* cut short */
    CHECK_EQ(eb_json_utf8_len("\xf0\x9f\x98\x80", 4), 4);
}

TEST_MAIN(T(values_of_each_type), T(escapes_and_unicode), T(errors_name_line_and_column),
          T(bounds_on_depth_size_and_dup_keys), T(round_trip_keeps_number_text),
          T(writer_structure_and_escaping), T(equality_and_numbers), T(doc_reuse_keeps_memory),
          T(writer_replaces_invalid_utf8))
