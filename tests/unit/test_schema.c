/* test_schema.c - JSON Schema validation (errors, bounds, threads) and the
 * compatibility checker, each rule in both directions. */
#include "runner.h"

#include <pthread.h>

#include "eventbus/err.h"
#include "json/json.h"
#include "schema/idna.h"
#include "schema/schema.h"

static const char *ORDER =
    "{\"type\":\"object\",\"required\":[\"orderId\",\"amount\",\"currency\"],"
    "\"properties\":{\"orderId\":{\"type\":\"string\",\"pattern\":\"^A-[0-9]+$\"},"
    "\"amount\":{\"type\":\"number\",\"minimum\":0},"
    "\"currency\":{\"enum\":[\"EUR\",\"USD\"]},"
    "\"status\":{\"enum\":[\"new\",\"paid\",\"shipped\"]},"
    "\"customer\":{\"type\":\"object\",\"properties\":{\"email\":{\"type\":\"string\","
    "\"format\":\"email\"}}}}}";

static eb_schema *compile(const char *s)
{
    eb_schema *sc = NULL;
    eb_buf err = EB_BUF_INIT;
    int rc = eb_schema_compile(s, strlen(s), NULL, &sc, &err);
    if (rc)
        eb_test_fail(__FILE__, __LINE__, "compile failed: %s", err.data ? err.data : "?");
    eb_buf_free(&err);
    return sc;
}

static int validate(eb_schema *s, const char *inst, eb_schema_errors *e)
{
    eb_json_doc *d = eb_json_doc_new();
    CHECK_OK(eb_json_parse(d, inst, strlen(inst), NULL, NULL));
    int rc = eb_schema_validate(s, eb_json_root(d), e);
    eb_json_doc_free(d);
    return rc;
}

TEST(seed_missing_currency_is_one_clear_error)
{
    eb_schema *s = compile(ORDER);
    eb_schema_errors e;
    eb_schema_errors_init(&e, 100);
    CHECK_OK(validate(s, "{\"orderId\":\"A-1\",\"amount\":5,\"currency\":\"EUR\"}", &e));
    CHECK_EQ(validate(s, "{\"orderId\":\"A-1\",\"amount\":5}", &e), EB_ESCHEMA);
    CHECK_EQ(e.n, 1);
    CHECK_STR(e.items[0].path, "/currency");
    CHECK_STR(e.items[0].schema_path, "/required");
    CHECK_STR(e.items[0].message, "required property \"currency\" missing");
    eb_schema_errors_free(&e);
    eb_schema_free(s);
}

TEST(every_violation_is_reported_with_pointers)
{
    eb_schema *s = compile(ORDER);
    eb_schema_errors e;
    eb_schema_errors_init(&e, 100);
    CHECK_EQ(validate(s, "{\"orderId\":\"B-1\",\"amount\":-1,\"currency\":\"EUR\","
                         "\"status\":\"lost\",\"customer\":{\"email\":\"nope\"}}", &e),
             EB_ESCHEMA);
    CHECK_EQ(e.n, 4);
    CHECK_STR(e.items[0].path, "/orderId");
    CHECK(strstr(e.items[0].message, "pattern") != NULL);
    CHECK_STR(e.items[1].path, "/amount");
    CHECK_STR(e.items[1].message, "value -1 is less than minimum 0");
    CHECK_STR(e.items[2].path, "/status");
    CHECK_STR(e.items[3].path, "/customer/email");
    CHECK_STR(e.items[3].schema_path, "/properties/customer/properties/email/format");
    /* the fast path agrees */
    CHECK_EQ(validate(s, "{\"orderId\":\"B-1\",\"amount\":-1,\"currency\":\"EUR\"}", NULL),
             EB_ESCHEMA);
    eb_schema_errors_free(&e);
    eb_schema_free(s);
}

TEST(error_list_is_bounded)
{
    eb_schema *s = compile("{\"items\":{\"type\":\"string\"}}");
    eb_schema_errors e;
    eb_schema_errors_init(&e, 5);
    CHECK_EQ(validate(s, "[1,2,3,4,5,6,7,8,9]", &e), EB_ESCHEMA);
    CHECK_EQ(e.n, 5);
    CHECK(e.truncated);
    CHECK_STR(e.items[4].path, "/4");
    eb_schema_errors_free(&e);
    eb_schema_free(s);
}

TEST(compile_errors_name_the_place)
{
    const char *bad[] = {"{\"type\":\"strang\"}", "{\"properties\":{\"a\":{\"minimum\":\"x\"}}}",
                         "{\"pattern\":\"(\"}", "{\"$ref\":\"#/$defs/missing\"}", "[1]", "{"};
    const char *where[] = {"(root)", "/properties/a", "(root)", "(root)", "", ""};
    for (size_t i = 0; i < 6; i++) {
        eb_schema *s = NULL;
        eb_buf err = EB_BUF_INIT;
        CHECK(eb_schema_compile(bad[i], strlen(bad[i]), NULL, &s, &err) != 0);
        CHECK(s == NULL && err.data != NULL);
        CHECK(strstr(err.data, where[i]) != NULL);
        eb_buf_free(&err);
    }
}

TEST(recursive_refs_terminate)
{
    eb_schema *s = compile("{\"$defs\":{\"node\":{\"type\":\"object\",\"properties\":{"
                           "\"next\":{\"$ref\":\"#/$defs/node\"},\"v\":{\"type\":\"integer\"}}}},"
                           "\"$ref\":\"#/$defs/node\"}");
    CHECK_OK(validate(s, "{\"v\":1,\"next\":{\"v\":2,\"next\":{\"v\":3}}}", NULL));
    CHECK_EQ(validate(s, "{\"v\":1,\"next\":{\"v\":\"x\"}}", NULL), EB_ESCHEMA);
    eb_schema_free(s);
    s = compile("{\"$ref\":\"#\"}"); /* a reference to itself: no infinite loop */
    CHECK_EQ(validate(s, "1", NULL), EB_ESCHEMA);
    eb_schema_free(s);
}

typedef struct th {
    eb_schema *s;
    int        bad;
} th;

static void *hammer(void *p)
{
    th *t = p;
    for (int i = 0; i < 2000; i++) {
        if (validate(t->s, "{\"orderId\":\"A-7\",\"amount\":1,\"currency\":\"USD\"}", NULL) != 0)
            t->bad++;
        if (validate(t->s, "{\"orderId\":\"x\",\"amount\":1,\"currency\":\"USD\"}", NULL) == 0)
            t->bad++;
    }
    return NULL;
}

TEST(one_schema_validates_on_many_threads)
{
    eb_schema *s = compile(ORDER);
    pthread_t p[2];
    th a[2] = {{s, 0}, {s, 0}};
    for (int i = 0; i < 2; i++)
        pthread_create(&p[i], NULL, hammer, &a[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(p[i], NULL);
    CHECK_EQ(a[0].bad + a[1].bad, 0);
    eb_schema_free(s);
}

/* --- meta-schemas, vocabularies, dynamic scope, IDNA -------------------------- */

TEST(bundled_metaschemas_validate_schemas_offline)
{
    /* No resolver: the 2020-12 meta-schema and its vocabularies are built in. */
    eb_schema *s = compile("{\"$ref\":\"https://json-schema.org/draft/2020-12/schema\"}");
    CHECK_OK(validate(s, "{\"type\":\"string\",\"minLength\":1}", NULL));
    CHECK_OK(validate(s, "{\"$defs\":{\"a\":{\"type\":[\"integer\",\"null\"]}}}", NULL));
    CHECK_EQ(validate(s, "{\"type\":1}", NULL), EB_ESCHEMA);
    CHECK_EQ(validate(s, "{\"minLength\":-1}", NULL), EB_ESCHEMA);
    /* nested schemas are checked through "$dynamicRef": "#meta" */
    CHECK_EQ(validate(s, "{\"properties\":{\"a\":{\"items\":{\"maxItems\":\"x\"}}}}", NULL),
             EB_ESCHEMA);
    eb_schema_errors e;
    eb_schema_errors_init(&e, 100);
    CHECK_EQ(validate(s, "{\"minLength\":-1}", &e), EB_ESCHEMA);
    bool named = false;
    for (size_t i = 0; i < e.n; i++)
        named = named || !strcmp(e.items[i].path, "/minLength");
    CHECK(named);
    eb_schema_errors_free(&e);
    eb_schema_free(s);
    s = compile("{\"$ref\":\"http://json-schema.org/draft-07/schema#\"}");
    CHECK_OK(validate(s, "{\"definitions\":{\"a\":{\"type\":\"integer\"}}}", NULL));
    CHECK_EQ(validate(s, "{\"definitions\":{\"a\":{\"type\":1}}}", NULL), EB_ESCHEMA);
    eb_schema_free(s);
}

/* Serves two custom meta-schemas at http://meta.test/. */
static int resolve_meta(void *arg, const char *uri, eb_buf *out)
{
    (void)arg;
    static const struct { const char *uri, *text; } docs[] = {
        {"http://meta.test/no-validation",
         "{\"$schema\":\"https://json-schema.org/draft/2020-12/schema\","
         "\"$vocabulary\":{\"https://json-schema.org/draft/2020-12/vocab/core\":true,"
         "\"https://json-schema.org/draft/2020-12/vocab/applicator\":true}}"},
        {"http://meta.test/unknown-required",
         "{\"$schema\":\"https://json-schema.org/draft/2020-12/schema\","
         "\"$vocabulary\":{\"https://json-schema.org/draft/2020-12/vocab/core\":true,"
         "\"http://meta.test/vocab/units\":true}}"},
        {"http://meta.test/unknown-optional",
         "{\"$schema\":\"https://json-schema.org/draft/2020-12/schema\","
         "\"$vocabulary\":{\"https://json-schema.org/draft/2020-12/vocab/core\":true,"
         "\"https://json-schema.org/draft/2020-12/vocab/validation\":true,"
         "\"http://meta.test/vocab/units\":false}}"},
        {"http://meta.test/format-assertion",
         "{\"$schema\":\"https://json-schema.org/draft/2020-12/schema\","
         "\"$vocabulary\":{\"https://json-schema.org/draft/2020-12/vocab/core\":true,"
         "\"https://json-schema.org/draft/2020-12/vocab/format-assertion\":true}}"}};
    for (size_t i = 0; i < sizeof docs / sizeof *docs; i++)
        if (!strcmp(uri, docs[i].uri)) {
            eb_buf_puts(out, docs[i].text);
            return 0;
        }
    return EB_ENOTFOUND;
}

static int compile_meta(const char *text, eb_schema **out, eb_buf *err)
{
    eb_schema_opts o = {.resolve = resolve_meta, .no_format_assert = true};
    *out = NULL;
    return eb_schema_compile(text, strlen(text), &o, out, err);
}

TEST(vocabulary_of_a_custom_metaschema_decides_the_keywords)
{
    eb_schema *s;
    /* validation vocabulary off: "minimum" is an unknown keyword; applicators work */
    CHECK_OK(compile_meta("{\"$schema\":\"http://meta.test/no-validation\",\"properties\":{"
                          "\"n\":{\"minimum\":10},\"bad\":false}}", &s, NULL));
    CHECK_OK(validate(s, "{\"n\":1}", NULL));
    CHECK_EQ(validate(s, "{\"bad\":1}", NULL), EB_ESCHEMA);
    eb_schema_free(s);
    /* an optional vocabulary we do not know is ignored */
    CHECK_OK(compile_meta("{\"$schema\":\"http://meta.test/unknown-optional\",\"type\":\"number\"}",
                          &s, NULL));
    CHECK_EQ(validate(s, "\"x\"", NULL), EB_ESCHEMA);
    CHECK_OK(validate(s, "2", NULL));
    eb_schema_free(s);
    /* a required one makes the schema unusable, with the vocabulary named */
    eb_buf err = EB_BUF_INIT;
    CHECK_EQ(compile_meta("{\"$schema\":\"http://meta.test/unknown-required\"}", &s, &err),
             EB_EUNSUPP);
    CHECK(s == NULL && err.data && strstr(err.data, "http://meta.test/vocab/units"));
    eb_buf_free(&err);
    /* format-assertion: "format" asserts although the caller asked for annotations */
    CHECK_OK(compile_meta("{\"$schema\":\"http://meta.test/format-assertion\",\"format\":\"ipv4\"}",
                          &s, NULL));
    CHECK_EQ(validate(s, "\"1.2.3\"", NULL), EB_ESCHEMA);
    CHECK_OK(validate(s, "\"1.2.3.4\"", NULL));
    eb_schema_free(s);
}

TEST(dynamic_scope_counts_resources_entered_through_ref)
{
    /* root -> $ref a#/$defs/go -> $ref b#/$defs/go: "b" is in the dynamic
     * scope though its root was never evaluated, so "#len" finds a's anchor
     * (outermost) before b's. */
    eb_schema *s = compile(
        "{\"$id\":\"http://dyn.test/root\",\"$ref\":\"a#/$defs/go\",\"$defs\":{"
        "\"a\":{\"$id\":\"a\",\"$defs\":{\"go\":{\"$ref\":\"b#/$defs/go\"},"
        "\"len\":{\"$dynamicAnchor\":\"len\",\"maxLength\":2}}},"
        "\"b\":{\"$id\":\"b\",\"$defs\":{\"go\":{\"$dynamicRef\":\"#len\"},"
        "\"len\":{\"$dynamicAnchor\":\"len\",\"maxLength\":4}}}}}");
    CHECK_OK(validate(s, "\"ab\"", NULL));
    CHECK_EQ(validate(s, "\"abc\"", NULL), EB_ESCHEMA); /* a's maxLength 2, not b's 4 */
    eb_schema_free(s);
}

TEST(punycode_round_trips_rfc3492_samples)
{
    uint32_t u[64];
    static const uint32_t arabic[] = {0x0644, 0x064A, 0x0647, 0x0645, 0x0627, 0x0628,
                                      0x062A, 0x0643, 0x0644, 0x0645, 0x0648, 0x0634,
                                      0x0639, 0x0631, 0x0628, 0x064A, 0x061F};
    static const uint32_t chinese[] = {0x4ED6, 0x4EEC, 0x4E3A, 0x4EC0, 0x4E48,
                                       0x4E0D, 0x8BF4, 0x4E2D, 0x6587};
    const char *a = "egbpdaj6bu4bxfgehfvwxn", *c = "ihqwcrb4cv8a8dqg056pqjye";
    CHECK_EQ(eb__punycode_decode(a, strlen(a), u, 64), 17);
    CHECK(!memcmp(u, arabic, sizeof arabic));
    CHECK_EQ(eb__punycode_decode(c, strlen(c), u, 64), 9);
    CHECK(!memcmp(u, chinese, sizeof chinese));
    CHECK_EQ(eb__punycode_decode("bcher-kva", 9, u, 64), 6);
    CHECK(u[0] == 'b' && u[1] == 0xFC && u[5] == 'r');
    CHECK_EQ(eb__punycode_decode("X", 1, u, 64), -1);          /* truncated integer */
    CHECK_EQ(eb__punycode_decode("b\xC3\xBC-kva", 7, u, 64), -1); /* non-ASCII basic */
    CHECK_EQ(eb__punycode_decode(c, strlen(c), u, 4), -1);      /* longer than the buffer */
    CHECK_EQ(eb__punycode_decode("zzzzzzzzzzzzzzzzzzzz", 20, u, 64), -1); /* overflow */
    char out[64]; /* and back: encoding gives the samples again */
    int n = eb__punycode_encode(arabic, 17, out, sizeof out);
    CHECK(n == (int)strlen(a) && !memcmp(out, a, (size_t)n));
    n = eb__punycode_encode(chinese, 9, out, sizeof out);
    CHECK(n == (int)strlen(c) && !memcmp(out, c, (size_t)n));
    CHECK_EQ(eb__punycode_encode(chinese, 9, out, 10), -1);
}

TEST(hostname_checks_a_labels)
{
    eb_schema *s = compile("{\"format\":\"hostname\"}");
    static const char *ok[] = {"\"xn--bcher-kva.example\"", "\"XN--BCHER-KVA.example\"",
                               "\"xn--4dbc5h.example\"", "\"1host.example\"",
                               "\"xn--ll-0ea\"", "\"xn--mqx\""};
    static const char *bad[] = {
        "\"xn--X.example\"",          /* not Punycode */
        "\"xn--abc-.example\"",       /* ends with '-' (and only ASCII inside) */
        "\"xn--abc-8m.example\"",     /* garbage digits */
        "\"xn--hello-zed\"",          /* begins with a combining mark */
        "\"xn--l-fda\"",              /* MIDDLE DOT without 'l' before it */
        "\"xn--4dbc5h.1host\"",       /* right-to-left name: a label starting with a digit */
        "\"xn--07jceefgh4c\"",       /* DISALLOWED exceptions */
        "\"xn---mqx\""};             /* decodes, but is not the canonical encoding */
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++)
        if (validate(s, ok[i], NULL) != 0)
            eb_test_fail(__FILE__, __LINE__, "%s refused", ok[i]);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (validate(s, bad[i], NULL) != EB_ESCHEMA)
            eb_test_fail(__FILE__, __LINE__, "%s accepted", bad[i]);
    eb_schema_free(s);
    s = compile("{\"format\":\"email\"}");
    CHECK_OK(validate(s, "\"anna@xn--bcher-kva.example\"", NULL));
    CHECK_EQ(validate(s, "\"anna@xn--X.example\"", NULL), EB_ESCHEMA);
    eb_schema_free(s);
}

/* --- compatibility ---------------------------------------------------------- */

static size_t compat(const char *old, const char *new_, eb_compat_mode m, const char *want)
{
    eb_compat_report r;
    eb_compat_report_init(&r);
    int rc = eb_schema_compat(old, strlen(old), new_, strlen(new_), m, &r);
    CHECK(rc == 0 || rc == EB_ECONFLICT);
    CHECK_EQ(rc == EB_ECONFLICT, r.n > 0);
    bool found = !want;
    for (size_t i = 0; i < r.n; i++)
        found = found || strstr(r.items[i].message, want);
    if (!found)
        eb_test_fail(__FILE__, __LINE__, "no change mentions \"%s\" (%zu reported%s%s)", want,
                     r.n, r.n ? ", first: " : "", r.n ? r.items[0].message : "");
    size_t n = r.n;
    eb_compat_report_free(&r);
    return n;
}

#define OBJ(props, req) "{\"type\":\"object\",\"properties\":{" props "},\"required\":[" req "]}"

TEST(compat_required_added)
{
    const char *o = OBJ("\"a\":{\"type\":\"string\"},\"b\":{\"type\":\"string\"}", "\"a\"");
    const char *n = OBJ("\"a\":{\"type\":\"string\"},\"b\":{\"type\":\"string\"}", "\"a\",\"b\"");
    CHECK(compat(o, n, EB_COMPAT_BACKWARD, "property \"b\" became required") == 1);
    CHECK(compat(o, n, EB_COMPAT_FORWARD, NULL) == 0); /* new data satisfies old readers */
    CHECK(compat(n, o, EB_COMPAT_FORWARD, "property \"b\" is no longer required") == 1);
    CHECK(compat(n, o, EB_COMPAT_BACKWARD, NULL) == 0);
}

TEST(compat_type_changed_and_narrowed)
{
    const char *o = OBJ("\"amount\":{\"type\":\"number\"}", "");
    const char *n = OBJ("\"amount\":{\"type\":\"string\"}", "");
    compat(o, n, EB_COMPAT_BACKWARD, "type of \"amount\" changed from number to string");
    compat(o, n, EB_COMPAT_FORWARD, "type of \"amount\" changed from number to string");
    const char *i = OBJ("\"amount\":{\"type\":\"integer\"}", "");
    compat(o, i, EB_COMPAT_BACKWARD, "from number to integer"); /* narrowed */
    CHECK(compat(o, i, EB_COMPAT_FORWARD, NULL) == 0);          /* integers are numbers */
    CHECK(compat(i, o, EB_COMPAT_BACKWARD, NULL) == 0);
}

TEST(compat_enum_lost_and_gained_values)
{
    const char *o = OBJ("\"status\":{\"enum\":[\"new\",\"paid\",\"shipped\"]}", "");
    const char *n = OBJ("\"status\":{\"enum\":[\"new\",\"paid\"]}", "");
    compat(o, n, EB_COMPAT_BACKWARD, "enum of \"status\" lost \"shipped\"");
    CHECK(compat(o, n, EB_COMPAT_FORWARD, NULL) == 0);
    compat(n, o, EB_COMPAT_FORWARD, "enum of \"status\" gained \"shipped\"");
}

TEST(compat_bounds_tightened_and_loosened)
{
    const char *o = "{\"type\":\"string\",\"maxLength\":10,\"minLength\":1}";
    const char *n = "{\"type\":\"string\",\"maxLength\":5,\"minLength\":2}";
    compat(o, n, EB_COMPAT_BACKWARD, "maxLength of the value lowered from 10 to 5");
    compat(o, n, EB_COMPAT_BACKWARD, "minLength of the value raised from 1 to 2");
    CHECK(compat(n, o, EB_COMPAT_BACKWARD, NULL) == 0);
    compat(n, o, EB_COMPAT_FORWARD, "maxLength");
    const char *m0 = "{\"type\":\"number\"}", *m1 = "{\"type\":\"number\",\"minimum\":0}";
    compat(m0, m1, EB_COMPAT_BACKWARD, "minimum of the value added");
    compat(m1, m0, EB_COMPAT_FORWARD, "minimum of the value removed");
}

TEST(compat_properties_added_removed_open_and_closed)
{
    const char *open_o = OBJ("\"a\":{\"type\":\"string\"}", "");
    const char *open_n = OBJ("\"a\":{\"type\":\"string\"},\"b\":{\"type\":\"integer\"}", "");
    compat(open_o, open_n, EB_COMPAT_BACKWARD, "property \"b\" was added while the old schema");
    CHECK(compat(open_o, open_n, EB_COMPAT_FORWARD, NULL) == 0);
    compat(open_n, open_o, EB_COMPAT_FORWARD, "property \"b\" was removed while the new schema");
    const char *closed = "{\"type\":\"object\",\"properties\":{\"a\":{}},\"additionalProperties\":false}";
    const char *closed2 = "{\"type\":\"object\",\"properties\":{},\"additionalProperties\":false}";
    compat(closed, closed2, EB_COMPAT_BACKWARD, "property \"a\" was removed while the new schema "
                                                "forbids additional properties");
    compat("{\"type\":\"object\"}", closed2, EB_COMPAT_BACKWARD, "additionalProperties closed");
    compat(closed2, "{\"type\":\"object\"}", EB_COMPAT_FORWARD, "additionalProperties opened");
}

TEST(compat_items_and_nested)
{
    const char *o = "{\"type\":\"array\",\"items\":{\"type\":\"object\",\"properties\":{\"qty\":"
                    "{\"type\":\"integer\",\"minimum\":0}}}}";
    const char *n = "{\"type\":\"array\",\"items\":{\"type\":\"object\",\"properties\":{\"qty\":"
                    "{\"type\":\"integer\",\"minimum\":1}}}}";
    compat(o, n, EB_COMPAT_BACKWARD, "minimum of \"qty\" raised from 0 to 1");
    compat(o, "{\"type\":\"array\",\"items\":false}", EB_COMPAT_BACKWARD, "forbidden");
    compat(o, "{\"type\":\"array\",\"maxItems\":3,\"items\":{\"type\":\"object\",\"properties\":"
              "{\"qty\":{\"type\":\"integer\",\"minimum\":0}}}}", EB_COMPAT_BACKWARD, "maxItems");
}

TEST(compat_undecidable_is_reported_not_passed)
{
    compat("{\"type\":\"string\",\"pattern\":\"^a\"}", "{\"type\":\"string\",\"pattern\":\"^b\"}",
           EB_COMPAT_BACKWARD, "cannot verify");
    compat("{\"oneOf\":[{\"type\":\"string\"}]}", "{\"oneOf\":[{\"type\":\"integer\"}]}",
           EB_COMPAT_BACKWARD, "cannot verify");
    CHECK(compat(ORDER, ORDER, EB_COMPAT_FULL, NULL) == 0);
    CHECK(compat(ORDER, "{}", EB_COMPAT_NONE, NULL) == 0);
}

TEST(compat_full_is_both_directions)
{
    const char *o = OBJ("\"a\":{\"type\":\"integer\"}", "");
    const char *n = OBJ("\"a\":{\"type\":\"number\"}", "");
    CHECK(compat(o, n, EB_COMPAT_BACKWARD, NULL) == 0); /* widened: old data fits */
    compat(o, n, EB_COMPAT_FORWARD, "type of \"a\" changed from integer to number");
    compat(o, n, EB_COMPAT_FULL, "type of \"a\"");
}

/* --- found by tests/fuzz/schema_fuzz.c ----------------------------------- */

/* A keyword given twice used to be compiled twice: leaked lists, and for
 * patternProperties/dependentSchemas writes past the second array. */
TEST(duplicate_keywords_are_refused)
{
    const char *bad[] = {
        "{\"allOf\":[true],\"allOf\":[true]}",
        "{\"patternProperties\":{\"a\":true},\"patternProperties\":{\"b\":true,\"c\":true}}",
        "{\"properties\":{\"x\":{\"dependentSchemas\":{\"a\":true},"
        "\"dependentSchemas\":{\"b\":true,\"c\":true}}}}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        eb_schema *s = NULL;
        eb_buf err = EB_BUF_INIT;
        CHECK_EQ(eb_schema_compile(bad[i], strlen(bad[i]), NULL, &s, &err), EB_ESYNTAX);
        CHECK(s == NULL && err.data && strstr(err.data, "duplicate key"));
        eb_buf_free(&err);
    }
}

/* A chain of "$ref"s compiled recursively, a few KiB of stack per hop:
 * 2000 hops (a 64 KiB schema) overflowed the stack. Now bounded. */
TEST(long_ref_chain_is_refused_not_a_crash)
{
    eb_buf b = EB_BUF_INIT;
    eb_buf_puts(&b, "{\"$defs\":{");
    for (int i = 0; i < 5000; i++)
        eb_buf_printf(&b, "\"a%d\":{\"$ref\":\"#/$defs/a%d\"},", i, i + 1);
    eb_buf_puts(&b, "\"a5000\":{\"type\":\"integer\"}},\"$ref\":\"#/$defs/a0\"}");
    eb_schema *s = NULL;
    eb_buf err = EB_BUF_INIT;
    CHECK_EQ(eb_schema_compile(b.data, b.len, NULL, &s, &err), EB_EINVAL);
    CHECK(s == NULL && strstr(err.data, "nests too deeply"));
    eb_buf_free(&err);
    eb_buf_free(&b);
    /* 150 hops are fine */
    eb_buf_puts(&b, "{\"$defs\":{");
    for (int i = 0; i < 150; i++)
        eb_buf_printf(&b, "\"a%d\":{\"$ref\":\"#/$defs/a%d\"},", i, i + 1);
    eb_buf_puts(&b, "\"a150\":{\"type\":\"integer\"}},\"$ref\":\"#/$defs/a0\"}");
    s = compile(b.data);
    CHECK_OK(validate(s, "7", NULL));
    CHECK_EQ(validate(s, "\"x\"", NULL), EB_ESCHEMA);
    eb_schema_free(s);
    eb_buf_free(&b);
}

/* anyOf/oneOf over self references evaluate the instance exponentially
 * often: the validation hung. Now it stops at its step budget. */
TEST(exponential_schema_stops_with_a_reason)
{
    eb_schema *s = compile("{\"anyOf\":[{\"$ref\":\"#\"},{\"$ref\":\"#\"}]}");
    CHECK_EQ(validate(s, "1", NULL), EB_ESCHEMA);
    eb_schema_errors e;
    eb_schema_errors_init(&e, 10);
    CHECK_EQ(validate(s, "1", &e), EB_ESCHEMA);
    CHECK_EQ(eb_schema_errors_count(&e), 1);
    CHECK(strstr(eb_schema_errors_at(&e, 0)->message, "too complex"));
    CHECK_STR(eb_schema_errors_at(&e, 0)->path, "");
    eb_schema_errors_free(&e);
    eb_schema_free(s);
    /* not acyclic either: 40 levels of anyOf [next, next] ending in false */
    eb_buf b = EB_BUF_INIT;
    eb_buf_puts(&b, "{\"$defs\":{");
    for (int i = 0; i < 40; i++)
        eb_buf_printf(&b, "\"a%d\":{\"anyOf\":[{\"$ref\":\"#/$defs/a%d\"},"
                      "{\"$ref\":\"#/$defs/a%d\"}]},", i, i + 1, i + 1);
    eb_buf_puts(&b, "\"a40\":false},\"$ref\":\"#/$defs/a0\"}");
    s = compile(b.data);
    CHECK_EQ(validate(s, "{}", NULL), EB_ESCHEMA);
    eb_schema_free(s);
    eb_buf_free(&b);
}

/* uniqueItems compared every pair: quadratic in the array length. Large
 * arrays now go through value hashes; the answer must not change. */
TEST(unique_items_large_arrays)
{
    eb_schema *s = compile("{\"uniqueItems\":true}");
    eb_buf b = EB_BUF_INIT;
    eb_buf_putc(&b, '[');
    for (int i = 0; i < 200000; i++)
        eb_buf_printf(&b, "%s%d", i ? "," : "", i);
    eb_buf_putc(&b, ']');
    CHECK_OK(validate(s, b.data, NULL));
    b.len--;
    eb_buf_puts(&b, ",{\"a\":1},7.0]"); /* 7.0 equals item 7 */
    eb_schema_errors e;
    eb_schema_errors_init(&e, 10);
    CHECK_EQ(validate(s, b.data, &e), EB_ESCHEMA);
    CHECK_STR(eb_schema_errors_at(&e, 0)->message, "items 7 and 200001 are equal");
    eb_schema_errors_free(&e);
    eb_buf_free(&b);
    /* equal by value, spelled differently; first pair by lowest index */
    const char *arrs[] = {
        "[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,"
        "31,32,{\"x\":[1,{\"y\":null}],\"z\":\"s\"},\"t\",{\"z\":\"s\",\"x\":[1.0,{\"y\":null}]}]",
        "[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,"
        "31,32,-0.0,1e1]"};
    const char *want[] = {"items 33 and 35 are equal", "items 0 and 33 are equal"};
    for (int k = 0; k < 2; k++) {
        eb_schema_errors_init(&e, 10);
        CHECK_EQ(validate(s, arrs[k], &e), EB_ESCHEMA);
        CHECK_STR(eb_schema_errors_at(&e, 0)->message, want[k]);
        eb_schema_errors_free(&e);
    }
    CHECK_OK(validate(s, "[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,"
                         "25,26,27,28,29,30,31,32,\"0\",[0],{\"0\":0},true,null,false]", NULL));
    eb_schema_free(s);
}

/* minLength 1e300 is an integer too; converting it to int64 was undefined
 * (on x86 it became negative, i.e. no bound at all). */
TEST(huge_counts_clamp_instead_of_overflowing)
{
    eb_schema *s = compile("{\"minLength\":1e300,\"maxItems\":4.4e124}");
    CHECK_EQ(validate(s, "\"abc\"", NULL), EB_ESCHEMA);
    CHECK_OK(validate(s, "[1,2,3]", NULL));
    eb_schema_free(s);
    s = compile("{\"maxLength\":1e300,\"minItems\":1e19}");
    CHECK_OK(validate(s, "\"abc\"", NULL));
    CHECK_EQ(validate(s, "[1,2,3]", NULL), EB_ESCHEMA);
    eb_schema_free(s);
}

/* A resolver answering every URI let relative "$ref"s chain through tens
 * of thousands of documents for one compile. Now bounded. */
static int answer_everything(void *arg, const char *uri, eb_buf *out)
{
    (void)uri;
    ++*(int *)arg;
    eb_buf_puts(out, "{\"type\":\"integer\"}");
    return 0;
}

TEST(external_documents_are_bounded)
{
    int calls = 0;
    eb_schema_opts o = {.resolve = answer_everything, .resolve_arg = &calls};
    eb_buf b = EB_BUF_INIT;
    eb_buf_puts(&b, "{\"anyOf\":[");
    for (int i = 0; i < 300; i++)
        eb_buf_printf(&b, "%s{\"$ref\":\"https://example.com/d%d\"}", i ? "," : "", i);
    eb_buf_puts(&b, "]}");
    eb_schema *s = NULL;
    eb_buf err = EB_BUF_INIT;
    CHECK_EQ(eb_schema_compile(b.data, b.len, &o, &s, &err), EB_EINVAL);
    CHECK(s == NULL && strstr(err.data, "too many documents"));
    CHECK_EQ(calls, 256);
    eb_buf_free(&err);
    b.len = 0; /* 200 are fine */
    eb_buf_puts(&b, "{\"anyOf\":[");
    for (int i = 0; i < 200; i++)
        eb_buf_printf(&b, "%s{\"$ref\":\"https://example.com/d%d\"}", i ? "," : "", i);
    eb_buf_puts(&b, "]}");
    CHECK_OK(eb_schema_compile(b.data, b.len, &o, &s, &err));
    CHECK_OK(validate(s, "3", NULL));
    eb_schema_free(s);
    eb_buf_free(&b);
}

/* Local "$ref"s make the comparison a graph: two self references per level
 * branched 2^64 ways and hung the registry (PUT of a second version). */
TEST(compat_recursive_schemas_terminate)
{
    const char *o = "{\"properties\":{\"a\":{\"$ref\":\"#\"},\"b\":{\"$ref\":\"#\"}}}";
    const char *n = "{\"properties\":{\"a\":{\"$ref\":\"#\"},\"b\":{\"$ref\":\"#\"}},"
                    "\"required\":[\"a\"]}";
    CHECK(compat(o, o, EB_COMPAT_FULL, NULL) == 0);
    compat(o, n, EB_COMPAT_BACKWARD, "property \"a\" became required");
    CHECK(compat(o, n, EB_COMPAT_FORWARD, NULL) == 0);
}

/* The report is bounded too; its last entry says it stopped. */
TEST(compat_many_changes_are_capped)
{
    eb_buf o = EB_BUF_INIT, n = EB_BUF_INIT;
    eb_buf_puts(&o, "{\"properties\":{");
    eb_buf_puts(&n, "{\"properties\":{");
    for (int i = 0; i < 1500; i++) {
        eb_buf_printf(&o, "%s\"p%d\":{\"type\":\"string\"}", i ? "," : "", i);
        eb_buf_printf(&n, "%s\"p%d\":{\"type\":\"integer\"}", i ? "," : "", i);
    }
    eb_buf_puts(&o, "}}");
    eb_buf_puts(&n, "}}");
    eb_compat_report r;
    eb_compat_report_init(&r);
    CHECK_EQ(eb_schema_compat(o.data, o.len, n.data, n.len, EB_COMPAT_BACKWARD, &r),
             EB_ECONFLICT);
    CHECK_EQ(eb_compat_report_count(&r), 1001);
    CHECK(strstr(eb_compat_report_at(&r, 1000)->message, "more than 1000 changes"));
    CHECK(eb_compat_report_at(&r, 1000)->undecidable);
    eb_compat_report_free(&r);
    eb_buf_free(&o);
    eb_buf_free(&n);
}

/* A string may hold NUL (\u0000). "duration" looked it up with strchr,
 * which finds the terminator and then read past the unit table; ipv4/ipv6
 * copied into C strings and accepted "1.2.3.4\u0000junk". */
TEST(formats_refuse_embedded_nul)
{
    const char *cases[][2] = {
        {"duration", "\"PT1\\u0000\""}, {"duration", "\"PT1\\u00001H\""},
        {"ipv4", "\"1.2.3.4\\u0000\""}, {"ipv6", "\"::1\\u0000junk\""},
        {"uri", "\"http://a/\\u0000\""}, {"hostname", "\"a\\u0000b\""}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char schema[64];
        snprintf(schema, sizeof schema, "{\"format\":\"%s\"}", cases[i][0]);
        eb_schema *s = compile(schema);
        CHECK_EQ(validate(s, cases[i][1], NULL), EB_ESCHEMA);
        eb_schema_free(s);
    }
    eb_schema *s = compile("{\"format\":\"duration\"}");
    CHECK_OK(validate(s, "\"PT1H\"", NULL));
    eb_schema_free(s);
}

/* 1 if inst is valid under schema, 0 if not. */
static int valid(const char *schema, const char *inst)
{
    eb_schema *s = compile(schema);
    int rc = validate(s, inst, NULL);
    eb_schema_free(s);
    CHECK(rc == 0 || rc == EB_ESCHEMA);
    return rc == 0;
}

/* Issue 13 item 9 (against another implementation): multipleOf had a
 * tolerance, integer bounds went through doubles. Both are exact now. */
TEST(numeric_keywords_are_exact)
{
    CHECK_EQ(valid("{\"multipleOf\":1}", "1.0000000001"), 0);
    CHECK_EQ(valid("{\"type\":\"number\",\"multipleOf\":2}", "6.000000001"), 0);
    CHECK_EQ(valid("{\"type\":\"number\",\"multipleOf\":2}", "27021597764222979"), 0);
    CHECK_EQ(valid("{\"type\":\"number\",\"multipleOf\":2}", "27021597764222978"), 1);
    CHECK_EQ(valid("{\"multipleOf\":0.1}", "0.7"), 1);
    CHECK_EQ(valid("{\"multipleOf\":0.01}", "19.99"), 1);
    CHECK_EQ(valid("{\"multipleOf\":0.01}", "19.999"), 0);
    CHECK_EQ(valid("{\"multipleOf\":1.5}", "4.5e3"), 1);
    CHECK_EQ(valid("{\"multipleOf\":1.5}", "4.65e3"), 1);
    CHECK_EQ(valid("{\"multipleOf\":1.5}", "4.6e3"), 0);
    CHECK_EQ(valid("{\"multipleOf\":0.0001}", "1e308"), 1);
    CHECK_EQ(valid("{\"multipleOf\":3}", "1e400"), 0);
    CHECK_EQ(valid("{\"multipleOf\":3}", "3e400"), 1);
    CHECK_EQ(valid("{\"multipleOf\":1e-400}", "7e-398"), 1);
    CHECK_EQ(valid("{\"multipleOf\":123456789012345678901234567}",
                   "246913578024691357802469134000"), 1);
    CHECK_EQ(valid("{\"multipleOf\":123456789012345678901234567}",
                   "246913578024691357802469135000"), 0);
    CHECK_EQ(valid("{\"maximum\":9007199254740992}", "9007199254740993"), 0);
    CHECK_EQ(valid("{\"maximum\":9007199254740992}", "9007199254740992"), 1);
    CHECK_EQ(valid("{\"minimum\":-9007199254740992}", "-9007199254740993"), 0);
    CHECK_EQ(valid("{\"exclusiveMaximum\":1e30}", "999999999999999999999999999999"), 1);
    CHECK_EQ(valid("{\"exclusiveMaximum\":1e30}", "1000000000000000000000000000000"), 0);
    CHECK_EQ(valid("{\"minimum\":0.1}", "0.1000000000000000000001"), 1);
    CHECK_EQ(valid("{\"exclusiveMinimum\":0.1}", "0.10"), 0);
    CHECK_EQ(valid("{\"maximum\":-0}", "0.0"), 1);
}

/* Issue 13 item 9: ECMA-262 \s is Unicode white space; \w \d \b stay ASCII. */
TEST(regex_s_is_unicode_white_space)
{
    const char *ws[] = {"\"\u00a0\"", "\"\ufeff\"", "\"\u2028\"", "\"\u2029\"",
                        "\"\u3000\"", "\"\u1680\"", "\"\u2009\"", "\"\\t\"", "\" \""};
    for (size_t i = 0; i < sizeof ws / sizeof *ws; i++) {
        CHECK_EQ(valid("{\"pattern\":\"^\\\\s$\"}", ws[i]), 1);
        CHECK_EQ(valid("{\"pattern\":\"^\\\\S$\"}", ws[i]), 0);
        CHECK_EQ(valid("{\"pattern\":\"^[a\\\\s]$\"}", ws[i]), 1);
    }
    CHECK_EQ(valid("{\"pattern\":\"^\\\\S$\"}", "\"x\""), 1);
    CHECK_EQ(valid("{\"pattern\":\"^\\\\s$\"}", "\"x\""), 0);
    CHECK_EQ(valid("{\"pattern\":\"^\\\\w$\"}", "\"\u00e9\""), 0);
    CHECK_EQ(valid("{\"pattern\":\"^\\\\d$\"}", "\"\u0660\""), 0);
}

/* Issue 13 item 9: a "$schema" naming 2019-09, draft-06, draft-04 or an
 * unknown URI was read as 2020-12 (a 2019-09 $recursiveRef ignored). */
TEST(unsupported_schema_drafts_are_refused)
{
    const char *refused[] = {"https://json-schema.org/draft/2019-09/schema",
                             "http://json-schema.org/draft-06/schema#",
                             "http://json-schema.org/draft-04/schema#",
                             "https://example.com/my-meta-schema"};
    for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
        char doc[300];
        snprintf(doc, sizeof doc, "{\"$schema\":\"%s\",\"type\":\"object\"}", refused[i]);
        eb_schema *sc = NULL;
        eb_buf err = EB_BUF_INIT;
        CHECK_EQ(eb_schema_compile(doc, strlen(doc), NULL, &sc, &err), EB_EUNSUPP);
        CHECK(err.data && strstr(err.data, "$schema") && strstr(err.data, refused[i]));
        eb_buf_free(&err);
    }
    eb_schema_free(compile("{\"$schema\":\"https://json-schema.org/draft/2020-12/schema\"}"));
    eb_schema_free(compile("{\"$schema\":\"http://json-schema.org/draft-07/schema#\"}"));
}

TEST_MAIN(T(seed_missing_currency_is_one_clear_error), T(every_violation_is_reported_with_pointers),
          T(error_list_is_bounded), T(compile_errors_name_the_place), T(recursive_refs_terminate),
          T(one_schema_validates_on_many_threads),
          T(bundled_metaschemas_validate_schemas_offline),
          T(vocabulary_of_a_custom_metaschema_decides_the_keywords),
          T(dynamic_scope_counts_resources_entered_through_ref),
          T(punycode_round_trips_rfc3492_samples), T(hostname_checks_a_labels),
          T(compat_required_added),
          T(compat_type_changed_and_narrowed), T(compat_enum_lost_and_gained_values),
          T(compat_bounds_tightened_and_loosened), T(compat_properties_added_removed_open_and_closed),
          T(compat_items_and_nested), T(compat_undecidable_is_reported_not_passed),
          T(compat_full_is_both_directions), T(duplicate_keywords_are_refused),
          T(long_ref_chain_is_refused_not_a_crash), T(exponential_schema_stops_with_a_reason),
          T(unique_items_large_arrays), T(huge_counts_clamp_instead_of_overflowing),
          T(external_documents_are_bounded), T(compat_recursive_schemas_terminate),
          T(compat_many_changes_are_capped), T(formats_refuse_embedded_nul),
          T(numeric_keywords_are_exact), T(regex_s_is_unicode_white_space),
          T(unsupported_schema_drafts_are_refused))
