/* test_json.c - the JSON parser and writer. */
#include "runner.h"

#include <time.h>

#include "eventbus/err.h"
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
    EB_JW_KEY(&w, "lit"); /* a literal key: as eb_jw_key writes it */
    eb_jw_int(&w, 1);
    EB_JW_KEY(&w, "lit2");
    eb_jw_obj_open(&w);
    eb_jw_obj_close(&w);
    eb_jw_obj_close(&w);
    eb_jw_obj_close(&w);
    CHECK_STR(b.data, "{\"k\\n\":[-5,18446744073709551615,0.1,0.33333333333333331,false,null,"
                      "\"\\u0001<\xc3\xa9>\",{\"r\":1}],\"e\":{\"lit\":1,\"lit2\":{}}}");
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

/* The writer skips eight plain bytes at a time: every byte value at every
 * position of strings up to 24 bytes must come out as one at a time would. */
TEST(writer_escapes_every_byte_at_every_position)
{
    eb_buf got = EB_BUF_INIT, want = EB_BUF_INIT;
    char s[24];
    for (size_t n = 1; n <= sizeof s; n++)
        for (size_t pos = 0; pos < n; pos++)
            for (int c = 0; c < 256; c++) {
                memset(s, 'a', n);
                s[pos] = (char)c;
                eb_buf_reset(&got);
                eb_json_escape(&got, s, n);
                eb_buf_reset(&want);
                eb_buf_putc(&want, '"');
                for (size_t i = 0; i < n; i++) {
                    unsigned char b = (unsigned char)s[i];
                    char e[8];
                    if (b == '"' || b == '\\')
                        snprintf(e, sizeof e, "\\%c", b);
                    else if (b == '\n' || b == '\r' || b == '\t' || b == '\b' || b == '\f')
                        snprintf(e, sizeof e, "\\%c", "nrtbf"[strchr("\n\r\t\b\f", b) -
                                                               "\n\r\t\b\f"]);
                    else if (b < 0x20)
                        snprintf(e, sizeof e, "\\u%04x", b);
                    else if (b >= 0x80)
                        snprintf(e, sizeof e, "\\ufffd"); /* a lone byte: never UTF-8 */
                    else
                        snprintf(e, sizeof e, "%c", b);
                    eb_buf_append(&want, e, strlen(e));
                }
                eb_buf_putc(&want, '"');
                if (got.len != want.len || memcmp(got.data, want.data, got.len))
                    eb_test_fail(__FILE__, __LINE__, "byte 0x%02x at %zu of %zu", c, pos, n);
            }
    eb_buf_free(&got);
    eb_buf_free(&want);
}

/* eb_json_num's fast path (short decimals) must give strtod's double, bit
 * for bit; longer and extreme texts go to strtod itself. */
TEST(numbers_read_exactly_as_strtod)
{
    eb_json_doc *d = eb_json_doc_new();
    unsigned seed = 12345;
    char text[64];
    for (int i = 0; i < 200000; i++) {
        seed = seed * 1103515245u + 12345u;
        unsigned r = seed >> 8;
        int ndig = 1 + (int)(r % 19), point = (int)((r >> 5) % (unsigned)(ndig + 1));
        size_t k = 0;
        if (r & (1u << 12))
            text[k++] = '-';
        for (int j = 0; j < ndig; j++) {
            seed = seed * 1103515245u + 12345u;
            if (j == point && j > 0)
                text[k++] = '.';
            text[k++] = (char)('0' + (j == 0 && ndig > 1 && point != 1 ? 1 + (seed >> 9) % 9
                                                                      : (seed >> 9) % 10));
        }
        if (r & (1u << 13))
            k += (size_t)snprintf(text + k, sizeof text - k, "e%d", (int)((r >> 14) % 61) - 30);
        text[k] = '\0';
        if (eb_json_parse(d, text, k, NULL, NULL) != 0 || eb_json_root(d)->flags & EB_JSON_F_INT)
            continue; /* a leading zero followed by digits; integers are read as int64 */
        double a = eb_json_num(eb_json_root(d)), b = strtod(text, NULL);
        if (memcmp(&a, &b, sizeof a) != 0)
            eb_test_fail(__FILE__, __LINE__, "%s: %.17g, strtod %.17g", text, a, b);
    }
    const char *edge[] = {"0.1", "-0.0", "1e22", "1e23", "123456789012345.6", "9007199254740993.0",
                          "0.000001", "1.5e-22", "4.9e-324", "1.7976931348623157e308", "2.5E+3"};
    for (size_t i = 0; i < sizeof edge / sizeof edge[0]; i++) {
        CHECK_OK(eb_json_parse(d, edge[i], strlen(edge[i]), NULL, NULL));
        double a = eb_json_num(eb_json_root(d)), b = strtod(edge[i], NULL);
        CHECK(memcmp(&a, &b, sizeof a) == 0);
    }
    eb_json_doc_free(d);
}

static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Best of 5 parses of text, in CPU seconds. */
static double parse_cost(eb_json_doc *d, const char *text, size_t len, const eb_json_opts *o)
{
    double best = 1e9;
    for (int i = 0; i < 5; i++) {
        double t0 = cpu_s();
        CHECK_EQ(eb_json_parse(d, text, len, o, NULL), 0);
        double t = cpu_s() - t0;
        if (t < best)
            best = t;
    }
    return best;
}

/* Issue 13 item 1: checking duplicate keys was quadratic (a 1 MB object of
 * distinct keys took 23 s). An object of N keys must cost about what an
 * array of N elements of the same byte size costs: a ratio, not a time. */
TEST(dup_key_check_is_linear)
{
    enum { N = 60000 };
    size_t cap = (size_t)N * 16 + 16;
    char *obj = malloc(cap), *arr = malloc(cap);
    size_t on = 0, an = 0;
    obj[on++] = '{';
    arr[an++] = '[';
    for (int i = 0; i < N; i++) {
        on += (size_t)sprintf(obj + on, "%s\"k%07d\":0", i ? "," : "", i);
        an += (size_t)sprintf(arr + an, "%s\"k%07d_0\"", i ? "," : "", i);
    }
    obj[on++] = '}';
    arr[an++] = ']';
    CHECK_EQ(on, an);
    eb_json_doc *d = eb_json_doc_new();
    eb_json_opts o = {.reject_dup_keys = true};
    double t_arr = parse_cost(d, arr, an, &o), t_obj = parse_cost(d, obj, on, &o);
    printf("# %d keys: object %.2f ms, array %.2f ms (ratio %.1f)\n", N, t_obj * 1e3,
           t_arr * 1e3, t_obj / t_arr);
    /* measured 10 with the hash table (its misses past L2), ~8000 when quadratic */
    CHECK(t_obj < 25 * t_arr + 0.002);
    /* the table still finds a duplicate far apart, in a nested big object */
    memcpy(obj + on - 12, "\"k0000003\":0}", 12);
    CHECK(eb_json_parse(d, obj, on, &o, NULL) == EB_ESYNTAX);
    const char *nested = "{\"a\":{\"b0\":0,\"b1\":0,\"b2\":0,\"b3\":0,\"b4\":0,\"b5\":0,"
                         "\"b6\":0,\"b7\":0,\"b8\":0,\"b9\":0,\"c0\":0,\"c1\":0,\"c2\":0,"
                         "\"c3\":0,\"c4\":0,\"c5\":0,\"c6\":0,\"c7\":{\"b0\":1},\"b0\":2},\"b0\":3}";
    CHECK_EQ(eb_json_parse(d, nested, strlen(nested), &o, NULL), EB_ESYNTAX);
    char ok[400];
    snprintf(ok, sizeof ok, "%.*s}", (int)(strstr(nested, ",\"b0\":2") - nested), nested);
    strcat(ok, ",\"b0\":3}");
    CHECK_EQ(eb_json_parse(d, ok, strlen(ok), &o, NULL), 0); /* same keys, other objects */
    eb_json_doc_free(d);
    free(obj);
    free(arr);
}

/* Issue 13 item 6: a number literal is bounded (1000 characters by
 * default) and the error names where it is. */
TEST(number_literals_are_bounded)
{
    char big[1200 + 64];
    int n = sprintf(big, "{\"data\":{\"items\":[1,{\"price\":");
    memset(big + n, '7', 1001);
    strcpy(big + n + 1001, "}]}}");
    eb_json_error e;
    CHECK_EQ(parse_err(big, NULL, &e), EB_ESYNTAX);
    CHECK(strstr(e.msg, "/data/items/1/price") != NULL);
    CHECK(strstr(e.msg, "1000") != NULL);
    big[n + 1000] = '}'; /* exactly 1000 digits: fine */
    strcpy(big + n + 1000, "}]}}");
    parse_ok(big);
    eb_json_opts o = {.max_number = 5};
    CHECK_EQ(parse_err("[1.2345]", &o, &e), EB_ESYNTAX);
    CHECK(strstr(e.msg, "at /0 ") != NULL);
    CHECK_EQ(parse_err("123456", &o, &e), EB_ESYNTAX);
}

/* The examples of RFC 7396, appendix A, and a nested removal. */
TEST(merge_patch_rfc7396_examples)
{
    static const char *const cases[][3] = {
        {"{\"a\":\"b\"}", "{\"a\":\"c\"}", "{\"a\":\"c\"}"},
        {"{\"a\":\"b\"}", "{\"b\":\"c\"}", "{\"a\":\"b\",\"b\":\"c\"}"},
        {"{\"a\":\"b\"}", "{\"a\":null}", "{}"},
        {"{\"a\":\"b\",\"b\":\"c\"}", "{\"a\":null}", "{\"b\":\"c\"}"},
        {"{\"a\":[\"b\"]}", "{\"a\":\"c\"}", "{\"a\":\"c\"}"},
        {"{\"a\":\"c\"}", "{\"a\":[\"b\"]}", "{\"a\":[\"b\"]}"},
        {"{\"a\":{\"b\":\"c\"}}", "{\"a\":{\"b\":\"d\",\"c\":null}}", "{\"a\":{\"b\":\"d\"}}"},
        {"{\"a\":[{\"b\":\"c\"}]}", "{\"a\":[1]}", "{\"a\":[1]}"},
        {"[\"a\",\"b\"]", "[\"c\",\"d\"]", "[\"c\",\"d\"]"},
        {"{\"a\":\"b\"}", "[\"c\"]", "[\"c\"]"},
        {"{\"a\":\"foo\"}", "null", "null"},
        {"{\"a\":\"foo\"}", "\"bar\"", "\"bar\""},
        {"{\"e\":null}", "{\"a\":1}", "{\"e\":null,\"a\":1}"},
        {"[1,2]", "{\"a\":\"b\",\"c\":null}", "{\"a\":\"b\"}"},
        {"{}", "{\"a\":{\"bb\":{\"ccc\":null}}}", "{\"a\":{\"bb\":{}}}"},
        {"{\"x\":{\"y\":1,\"z\":2}}", "{\"x\":{\"z\":null}}", "{\"x\":{\"y\":1}}"}};
    eb_json_doc *t = eb_json_doc_new(), *p = eb_json_doc_new();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CHECK_OK(eb_json_parse(t, cases[i][0], strlen(cases[i][0]), NULL, NULL));
        CHECK_OK(eb_json_parse(p, cases[i][1], strlen(cases[i][1]), NULL, NULL));
        eb_buf out = EB_BUF_INIT;
        eb_jw w;
        eb_jw_init(&w, &out);
        eb_json_merge_patch(&w, eb_json_root(t), eb_json_root(p));
        if (out.len != strlen(cases[i][2]) || memcmp(out.data, cases[i][2], out.len) != 0)
            eb_test_fail(__FILE__, __LINE__, "case %zu: %.*s, want %s", i, (int)out.len,
                         out.data, cases[i][2]);
        eb_buf_free(&out);
    }
    eb_json_doc_free(t);
    eb_json_doc_free(p);
}

TEST_MAIN(T(merge_patch_rfc7396_examples), T(values_of_each_type), T(escapes_and_unicode), T(errors_name_line_and_column),
          T(bounds_on_depth_size_and_dup_keys), T(round_trip_keeps_number_text),
          T(writer_structure_and_escaping), T(equality_and_numbers), T(doc_reuse_keeps_memory),
          T(writer_replaces_invalid_utf8), T(writer_escapes_every_byte_at_every_position),
          T(numbers_read_exactly_as_strtod), T(dup_key_check_is_linear),
          T(number_literals_are_bounded))
