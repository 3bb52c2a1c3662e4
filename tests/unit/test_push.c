/* test_push.c - push delivery's pure parts: the "push" config (field-named
 * errors, the masked secret, rotation), its round trip through a group
 * config, the Standard Webhooks signature against a known vector, and the
 * SSRF guard's address rule (src/push/http_out.c's eb__addr_public) and
 * the Retry-After parser (src/push/push.c's eb__push_retry_after_ms). */
#include "runner.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

#include "bus/group_types.h"
#include "eventbus/err.h"
#include "push/push_int.h"

#define SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

static int parse(const char *text, eb_push_cfg **out, eb_field_error *fe)
{
    eb_json_doc *doc = eb_json_doc_new();
    eb_json_error je;
    CHECK_OK(eb_json_parse(doc, text, strlen(text), NULL, &je));
    int rc = eb_push_cfg_parse(eb_json_root(doc), out, fe);
    eb_json_doc_free(doc);
    return rc;
}

TEST(config_errors_name_the_field)
{
    static const struct { const char *json, *field; } bad[] = {
        {"{\"secret\":\"" SECRET "\"}", "/push/url"},
        {"{\"url\":\"ftp://a/b\"}", "/push/url"},
        {"{\"url\":\"http:// a\"}", "/push/url"},
        {"{\"url\":\"https://a\",\"secret\":\"whsec_AAAA\"}", "/push/secret"},
        {"{\"url\":\"https://a\",\"secret\":7}", "/push/secret"},
        {"{\"url\":\"https://a\",\"headers\":{\"Webhook-Id\":\"x\"}}", "/push/headers/Webhook-Id"},
        {"{\"url\":\"https://a\",\"headers\":{\"Host\":\"x\"}}", "/push/headers/Host"},
        {"{\"url\":\"https://a\",\"headers\":{\"a b\":\"x\"}}", "/push/headers/a b"},
        {"{\"url\":\"https://a\",\"headers\":{\"X\":\"a\\nb\"}}", "/push/headers/X"},
        {"{\"url\":\"https://a\",\"max_in_flight\":0}", "/push/max_in_flight"},
        {"{\"url\":\"https://a\",\"batch\":101}", "/push/batch"},
        {"{\"url\":\"https://a\",\"format\":\"xml\"}", "/push/format"},
        {"{\"url\":\"https://a\",\"nope\":1}", "/push/nope"},
        {"[]", "/push"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        eb_push_cfg *p = NULL;
        eb_field_error fe;
        CHECK_EQ(parse(bad[i].json, &p, &fe), EB_EINVAL);
        CHECK_STR(fe.field, bad[i].field);
        CHECK(p == NULL);
    }
    /* the bounds: 32 headers pass, 33 do not; a header of 1024 bytes passes,
     * 1025 do not; a URL of 2048 passes, 2049 does not */
    char text[4096];
    for (int k = 32; k <= 33; k++) {
        size_t len = (size_t)snprintf(text, sizeof text, "{\"url\":\"https://a\",\"headers\":{");
        for (int i = 0; i < k; i++)
            len += (size_t)snprintf(text + len, sizeof text - len, "%s\"X-%d\":\"v\"",
                                    i ? "," : "", i);
        snprintf(text + len, sizeof text - len, "}}");
        eb_push_cfg *p = NULL;
        eb_field_error fe;
        CHECK_EQ(parse(text, &p, &fe), k == 32 ? 0 : EB_EINVAL);
        if (k == 33)
            CHECK_STR(fe.field, "/push/headers");
        eb_push_cfg_free(p);
    }
    for (int k = 1024; k <= 1025; k++) { /* "X: " + value */
        char v[1100];
        memset(v, 'v', (size_t)(k - 3));
        v[k - 3] = '\0';
        snprintf(text, sizeof text, "{\"url\":\"https://a\",\"headers\":{\"X\":\"%s\"}}", v);
        eb_push_cfg *p = NULL;
        eb_field_error fe;
        CHECK_EQ(parse(text, &p, &fe), k == 1024 ? 0 : EB_EINVAL);
        eb_push_cfg_free(p);
    }
    for (int k = 2048; k <= 2049; k++) {
        char u[2100] = "https://a/";
        memset(u + 10, 'p', (size_t)(k - 10));
        u[k] = '\0';
        snprintf(text, sizeof text, "{\"url\":\"%s\"}", u);
        eb_push_cfg *p = NULL;
        eb_field_error fe;
        CHECK_EQ(parse(text, &p, &fe), k == 2048 ? 0 : EB_EINVAL);
        eb_push_cfg_free(p);
    }
}

/* What libcurl makes of a URL: parsed with a scheme and a host, or not. */
static bool curl_parses(const char *url)
{
    CURLU *u = curl_url();
    char *host = NULL;
    bool ok = u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
              curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK;
    curl_free(host);
    curl_url_cleanup(u);
    return ok;
}

/* A URL the config accepts is one libcurl parses (a PUT is refused rather
 * than every delivery failing later); the usual forms are accepted. */
TEST(push_urls_accepted_are_those_libcurl_parses)
{
    static const char *const good[] = {
        "https://a", "http://a/", "https://hooks.example.com/in?x=1#f", "http://10.0.0.1:8080/h",
        "https://[2606:4700::1111]:443/x", "http://my_host.local:1/", "https://u:p@h.example/x",
        "http://a:65535", "https://x.example?q", "http://a#frag"};
    static const char *const bad[] = {
        "http://", "http:///x", "http://:80/", "http://a:0/", "http://a:65536/",
        "http://a:123456", "http://a:8x/", "http://a:/", "https://ex^ample.com/",
        "https://exa|mple/", "http://[::1/", "http://[zz]/", "https://a{b}/", "http://a\\b/",
        "http://@/", "http://[]/", "https://a%20b/", "http://a b/"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        char text[512];
        snprintf(text, sizeof text, "{\"url\":\"%s\"}", good[i]);
        eb_push_cfg *p = NULL;
        eb_field_error fe;
        if (parse(text, &p, &fe) != 0 || !curl_parses(good[i])) {
            fprintf(stderr, "refused (or curl cannot parse): %s\n", good[i]);
            CHECK(false);
        }
        eb_push_cfg_free(p);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[512];
        snprintf(text, sizeof text, "{\"url\":\"%s\"}", bad[i]);
        eb_push_cfg *p = NULL;
        eb_field_error fe;
        int rc = parse(text, &p, &fe);
        if (rc == 0 && !curl_parses(bad[i])) {
            fprintf(stderr, "accepted, but curl cannot parse it: %s\n", bad[i]);
            CHECK(false);
        }
        if (rc == 0) {
            fprintf(stderr, "accepted: %s\n", bad[i]);
            CHECK(false);
        } else {
            CHECK_STR(fe.field, "/push/url");
        }
        eb_push_cfg_free(p);
    }
}

TEST(mask_rotation_and_keep)
{
    eb_push_cfg *old = NULL, *nw = NULL, *keep = NULL;
    eb_field_error fe;
    CHECK_OK(parse("{\"url\":\"https://a.example/h\",\"secret\":\"" SECRET "\"}", &old, &fe));
    CHECK_OK(eb_push_cfg_resolve(old, NULL, 1000, &fe));
    char m[32];
    eb_push_secret_mask(old->secret, m);
    CHECK_STR(m, "whsec_\xe2\x80\xa6LaSw");
    /* the view's masked text keeps the secret */
    char text[256];
    snprintf(text, sizeof text, "{\"url\":\"https://a.example/h\",\"secret\":\"%s\"}", m);
    CHECK_OK(parse(text, &keep, &fe));
    CHECK(keep->masked);
    CHECK_OK(eb_push_cfg_resolve(keep, old, 2000, &fe));
    CHECK_STR(keep->secret, SECRET);
    CHECK(keep->prev_secret == NULL);
    /* a mask of another secret: refused */
    eb_push_cfg *other = NULL;
    CHECK_OK(parse("{\"url\":\"https://a\",\"secret\":\"whsec_\xe2\x80\xa6zzzz\"}", &other, &fe));
    CHECK_EQ(eb_push_cfg_resolve(other, old, 2000, &fe), EB_EINVAL);
    CHECK_STR(fe.field, "/push/secret");
    /* a new secret rotates: the old one signs until now + grace */
    CHECK_OK(parse("{\"url\":\"https://a\",\"secret\":\"whsec_dGhlIG5ldyBzZWNyZXQsIDI0IGJ5dGVzIQ==\","
                   "\"rotation_grace_ms\":5000}", &nw, &fe));
    CHECK_OK(eb_push_cfg_resolve(nw, old, 10000000, &fe));
    CHECK_STR(nw->prev_secret, SECRET);
    CHECK_EQ(nw->prev_until_us, 10000000 + 5000000);
    /* the view never holds a secret */
    eb_buf b = EB_BUF_INIT;
    eb_jw w;
    eb_jw_init(&w, &b);
    eb_push_cfg_write(&w, nw);
    eb_buf_putc(&b, '\0');
    CHECK(strstr((char *)b.data, "MfKQ9r8") == NULL);
    CHECK(strstr((char *)b.data, "dGhlIG5l") == NULL);
    CHECK(strstr((char *)b.data, "\"previous_secret\":\"whsec_\xe2\x80\xa6LaSw\"") != NULL);
    eb_buf_free(&b);
    /* no secret on creation: required */
    eb_push_cfg *none = NULL;
    CHECK_OK(parse("{\"url\":\"https://a\"}", &none, &fe));
    CHECK_EQ(eb_push_cfg_resolve(none, NULL, 1, &fe), EB_EINVAL);
    CHECK_STR(fe.field, "/push/secret");
    eb_push_cfg_free(old);
    eb_push_cfg_free(nw);
    eb_push_cfg_free(keep);
    eb_push_cfg_free(other);
    eb_push_cfg_free(none);
}

/* The Standard Webhooks reference vector (the spec's test suite): secret
 * whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw, id msg_p5jXN8AQM9LWM0D4loKWxJek,
 * timestamp 1614265330, body {"test": 2432232314}. */
TEST(signature_matches_the_spec_vector)
{
    pconf c = {0};
    CHECK_OK(eb_push_secret_key(SECRET, &c.key));
    eb_buf out = EB_BUF_INIT;
    const char *body = "{\"test\": 2432232314}";
    eb__push_signature(&out, &c, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body, strlen(body),
                       0);
    eb_buf_putc(&out, '\0');
    CHECK_STR((char *)out.data, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    /* within the grace of a rotation: both, space-separated, the new first */
    CHECK_OK(eb_push_secret_key(SECRET, &c.prev_key));
    c.prev_until_us = 10;
    eb_buf_reset(&out);
    eb__push_signature(&out, &c, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body, strlen(body),
                       5);
    eb_buf_putc(&out, '\0');
    CHECK_STR((char *)out.data, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE= "
                                "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    eb_buf_reset(&out);
    eb__push_signature(&out, &c, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body, strlen(body),
                       11); /* past it: one */
    eb_buf_putc(&out, '\0');
    CHECK(strchr((char *)out.data, ' ') == NULL);
    eb_buf_free(&out);
    eb_buf_free(&c.key);
    eb_buf_free(&c.prev_key);
}

static bool public_addr(const char *ip)
{
    struct sockaddr_storage ss = {0};
    if (strchr(ip, ':')) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        CHECK_EQ(inet_pton(AF_INET6, ip, &a->sin6_addr), 1);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        CHECK_EQ(inet_pton(AF_INET, ip, &a->sin_addr), 1);
    }
    return eb__addr_public((struct sockaddr *)&ss);
}

TEST(ssrf_guard_address_rule)
{
    static const char *const refused[] = {
        "127.0.0.1", "127.255.0.9", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1",
        "169.254.169.254", "100.64.0.1", "0.0.0.0", "224.0.0.1", "255.255.255.255",
        "198.18.0.1", "::1", "::", "fe80::1", "fc00::1", "fd12:3456::1", "ff02::1",
        "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254", "64:ff9b::a00:1",
        "2001:db8::1"};
    static const char *const allowed[] = {"93.184.216.34", "8.8.8.8", "172.32.0.1",
                                          "192.169.0.1", "100.128.0.1", "2606:4700::1111",
                                          "::ffff:8.8.8.8", "64:ff9b::808:808"};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        if (public_addr(refused[i])) {
            fprintf(stderr, "allowed but private: %s\n", refused[i]);
            CHECK(false);
        }
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++)
        if (!public_addr(allowed[i])) {
            fprintf(stderr, "refused but public: %s\n", allowed[i]);
            CHECK(false);
        }
}

/* 1994-11-06 08:49:37 UTC, the date of RFC 9110's examples */
#define RFC_EXAMPLE_S 784111777ull

TEST(retry_after_forms_and_edges)
{
    const uint64_t now = (RFC_EXAMPLE_S - 10) * 1000000ull; /* 10 s before the examples */
    static const struct { const char *v; int64_t ms; } cases[] = {
        /* delta-seconds */
        {"0", 0}, {"5", 5000}, {" 7\t", 7000}, {"3600", 3600000}, {"3601", 3600000},
        {"000012", 12000}, {"99999999999999999999999999", 3600000}, /* no overflow */
        /* the three HTTP-date forms, 10 s ahead */
        {"Sun, 06 Nov 1994 08:49:37 GMT", 10000},  /* IMF-fixdate */
        {"Sunday, 06-Nov-94 08:49:37 GMT", 10000}, /* obsolete RFC 850 */
        {"Sun Nov  6 08:49:37 1994", 10000},       /* asctime */
        {"  Sun, 06 Nov 1994 08:49:40 GMT  ", 13000},
        /* in the past: retry now */
        {"Sun, 06 Nov 1994 08:49:20 GMT", 0}, {"Thu, 01 Jan 1970 00:00:00 GMT", 0},
        {"Sun, 06 Nov 1994 08:49:27 GMT", 0}, /* exactly now */
        /* far ahead: the bound */
        {"Fri, 01 Jan 2100 00:00:00 GMT", 3600000},
        /* neither form: -1, the group's backoff */
        {NULL, -1}, {"", -1}, {"   ", -1}, {"-5", -1}, {"+5", -1}, {"1.5", -1}, {"5s", -1},
        {"120abc", -1}, {"soon", -1}, {"Sun, 06 Nov 1994", -1}, {"later: maybe", -1},
        {"Sun, 06 Nov 1994 08:49:37 GMT Sun, 06 Nov 1994 08:49:37 GMT "
         "Sun, 06 Nov 1994 08:49:37 GMT", -1}, /* longer than any date */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t got = eb__push_retry_after_ms(cases[i].v, now);
        if (got != cases[i].ms) {
            fprintf(stderr, "Retry-After \"%s\": %lld ms, want %lld\n",
                    cases[i].v ? cases[i].v : "(null)", (long long)got, (long long)cases[i].ms);
            CHECK(false);
        }
    }
    /* a date has whole seconds: from 0.4 s past a second, 3 s ahead is 2.6 s */
    CHECK_EQ(eb__push_retry_after_ms("Sun, 06 Nov 1994 08:49:37 GMT",
                                     (RFC_EXAMPLE_S - 3) * 1000000ull + 400000), 2600);
}

TEST_MAIN(T(config_errors_name_the_field), T(mask_rotation_and_keep),
          T(signature_matches_the_spec_vector), T(ssrf_guard_address_rule),
          T(retry_after_forms_and_edges), T(push_urls_accepted_are_those_libcurl_parses))
