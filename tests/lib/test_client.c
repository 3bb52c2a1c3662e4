/* test_client.c - libeventbus against a real eventbusd: connecting, errors,
 * publishing, reading events back, the schema registry, and the HTTP
 * client's edge cases (keep-alive across a server restart, timeouts,
 * cancellation, chunked and malformed answers from a scripted peer). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"
#include "eventbus.h"
#include "runner.h"

static const char *ORDER_SCHEMA =
    "{\"type\":\"object\",\"required\":[\"orderId\",\"amount\",\"currency\"],"
    "\"properties\":{\"orderId\":{\"type\":\"string\"},"
    "\"amount\":{\"type\":\"number\",\"minimum\":0},"
    "\"currency\":{\"type\":\"string\",\"pattern\":\"^[A-Z]{3}$\"}}}";

static uint64_t ms_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* --- URLs and errors without a server ------------------------------------ */

TEST(url_forms)
{
    eb_client *c;
    CHECK_OK(eb_client_new(&(eb_client_opts){.size = sizeof(eb_client_opts), .url = "http://localhost:9/bus/"}, &c));
    CHECK_STR(eb_client_url(c), "http://localhost:9/bus");
    eb_client_free(c);
    CHECK_OK(eb_client_new(&(eb_client_opts){.size = sizeof(eb_client_opts), .url = "127.0.0.1:8471"}, &c));
    CHECK_STR(eb_client_url(c), "http://127.0.0.1:8471");
    eb_client_free(c);
    CHECK_OK(eb_client_new(&(eb_client_opts){.size = sizeof(eb_client_opts), .url = "[::1]:8472"}, &c));
    CHECK_STR(eb_client_url(c), "http://[::1]:8472");
    eb_client_free(c);
    CHECK_OK(eb_client_new(&(eb_client_opts){.size = sizeof(eb_client_opts), .url = "http://example.org"}, &c));
    CHECK_STR(eb_client_url(c), "http://example.org:80");
    eb_client_free(c);
    setenv("EVENTBUS_URL", "http://10.1.2.3:1234", 1);
    CHECK_OK(eb_client_new(NULL, &c));
    CHECK_STR(eb_client_url(c), "http://10.1.2.3:1234");
    eb_client_free(c);
    unsetenv("EVENTBUS_URL");
    CHECK_OK(eb_client_new(NULL, &c));
    CHECK_STR(eb_client_url(c), "http://127.0.0.1:8470");
    eb_client_free(c);

    c = NULL;
    CHECK_EQ(eb_client_new(&(eb_client_opts){.size = sizeof(eb_client_opts), .url = "ftp://x:1"}, &c), EB_EUNSUPP);
    CHECK_EQ(eb_client_new(&(eb_client_opts){.size = sizeof(eb_client_opts), .url = "https://x"}, &c), 0);
    CHECK_STR(eb_client_url(c), "https://x:443");
    eb_client_free(c);
    c = NULL;
    CHECK_EQ(eb_client_new(&(eb_client_opts){.size = sizeof(eb_client_opts), .url = "https://x:1",
                                             .cafile = "/nonexistent.pem"}, &c), EB_EINVAL);
    CHECK_EQ(eb_client_new(&(eb_client_opts){.size = sizeof(eb_client_opts), .url = "x:1",
                                             .token = "a b"}, &c), EB_EINVAL);
    CHECK_EQ(eb_client_new(&(eb_client_opts){.size = sizeof(eb_client_opts), .url = "http://x:port"}, &c), EB_EINVAL);
    CHECK_EQ(eb_client_new(&(eb_client_opts){.size = sizeof(eb_client_opts), .url = "http://:80"}, &c), EB_EINVAL);
    CHECK_EQ(eb_client_new(&(eb_client_opts){.size = sizeof(eb_client_opts), .url = "[::1"}, &c), EB_EINVAL);
    CHECK_EQ(eb_client_new(&(eb_client_opts){.size = sizeof(eb_client_opts), .url = "x:123456"}, &c), EB_EINVAL);
    CHECK(c == NULL);
    eb_client_free(NULL);
}

TEST(connect_refused_is_econnect)
{
    char url[64];
    snprintf(url, sizeof url, "127.0.0.1:%d", eb_test_free_port());
    eb_client *c = eb_test_client(url);
    eb_publish_result r = {.size = sizeof r};
    CHECK_EQ(eb_publish(c, "a.b", "{}", NULL, &r), EB_ECONNECT);
    const eb_error *e = eb_client_error(c);
    CHECK_EQ(e->code, EB_ECONNECT);
    CHECK_EQ(e->http_status, 0);
    CHECK(strstr(e->message, "cannot connect") != NULL);
    CHECK(strstr(e->message, "refused") != NULL);
    CHECK_STR(e->server_code, "");
    CHECK_STR(e->details, "[]");
    eb_client_free(c);
}

TEST(bad_data_is_refused_locally)
{
    /* No server at all: the JSON check happens before any connection. */
    char url[64];
    snprintf(url, sizeof url, "127.0.0.1:%d", eb_test_free_port());
    eb_client *c = eb_test_client(url);
    CHECK_EQ(eb_publish(c, "a.b", "{\"x\":1,}", NULL, NULL), EB_ESYNTAX);
    CHECK(strstr(eb_client_error(c)->message, "data: malformed JSON at line 1, column 8") != NULL);
    CHECK_EQ(eb_publish(c, "", "{}", NULL, NULL), EB_EINVAL);
    eb_message m[2] = {{.size = sizeof m[0], .type = "a.b", .data = "1"},
                       {.size = sizeof m[1], .type = "a.b", .data = "[1"}};
    const eb_message *mp[2] = {&m[0], &m[1]};
    CHECK_EQ(eb_publish_batch(c, mp, 2, NULL), EB_ESYNTAX);
    CHECK(strstr(eb_client_error(c)->message, "event 1: data") != NULL);
    CHECK_EQ(eb_publish_batch(c, mp, 0, NULL), EB_EINVAL);
    CHECK_EQ(eb_schemas_register(c, "a.b", "{nope}", NULL, NULL), EB_ESYNTAX);
    eb_client_free(c);
}

/* --- publishing and reading back ------------------------------------------- */

TEST(publish_and_get)
{
    eb_test_daemon d;
    eb_client *c = eb_test_up(&d, NULL);
    eb_publish_result r1 = {.size = sizeof r1}, r2 = {.size = sizeof r2};
    const char *data = "{\"orderId\":\"A-1\",\"amount\":12345678901234567890123,\"currency\":\"EUR\"}";
    CHECK_OK(eb_publish(c, "order.created", data, NULL, &r1));
    CHECK_EQ(eb_client_error(c)->http_status, 201);
    CHECK_EQ(strlen(r1.id), 26);
    CHECK(r1.seq >= 1);
    CHECK(strchr(r1.time, 'T') && r1.time[strlen(r1.time) - 1] == 'Z');
    CHECK(!r1.duplicate);
    eb_publish_opts o = {.size = sizeof o, .id = "order-A-2", .key = "customer-7", .source = "order-service",
                         .subject = "A-2", .correlation_id = "req-1", .causation_id = "cmd-1"};
    CHECK_OK(eb_publish(c, "order.created", "{\"orderId\":\"A-2\"}", &o, &r2));
    CHECK_STR(r2.id, "order-A-2");
    CHECK_EQ(r2.seq, r1.seq + 1);

    eb_events *l;
    CHECK_OK(eb_events_get(c, r1.id, &l));
    CHECK_EQ(eb_events_count(l), 1);
    const eb_event *e = eb_events_at(l, 0);
    CHECK_STR(e->id, r1.id);
    CHECK_STR(e->type, "order.created");
    CHECK_EQ(e->seq, r1.seq);
    CHECK_STR(e->data, data); /* verbatim: the big number keeps its digits */
    CHECK_EQ(e->data_len, strlen(data));
    CHECK_STR(e->correlation_id, r1.id);
    CHECK(e->source == NULL && e->key == NULL && e->delivery_id == NULL);
    CHECK(strstr(e->json, "\"seq\":") != NULL && e->json[e->json_len - 1] == '}');
    CHECK(eb_events_at(l, 1) == NULL);
    eb_events_free(l);

    CHECK_OK(eb_events_get(c, "order-A-2", &l));
    e = eb_events_at(l, 0);
    CHECK_STR(e->key, "customer-7");
    CHECK_STR(e->source, "order-service");
    CHECK_STR(e->subject, "A-2");
    CHECK_STR(e->correlation_id, "req-1");
    CHECK_STR(e->causation_id, "cmd-1");
    eb_events_free(l);

    CHECK_EQ(eb_events_get(c, "no-such-id", &l), EB_ENOTFOUND);
    CHECK(l == NULL);
    CHECK_EQ(eb_client_error(c)->http_status, 404);
    CHECK_STR(eb_client_error(c)->server_code, "not_found");

    /* The same id from another source (and from none): by source, each. */
    eb_publish_result r3 = {.size = sizeof r3}, r4 = {.size = sizeof r4};
    eb_publish_opts o3 = {.size = sizeof o3, .id = "order-A-2", .source = "billing & co/+1"};
    CHECK_OK(eb_publish(c, "order.created", "3", &o3, &r3));
    eb_publish_opts o4 = {.size = sizeof o4, .id = "order-A-2"};
    CHECK_OK(eb_publish(c, "order.created", "4", &o4, &r4));
    const struct {
        const char *source;
        const uint64_t *seq;
    } by[] = {{"order-service", &r2.seq}, {"billing & co/+1", &r3.seq}, {"", &r4.seq},
              {NULL, &r4.seq}};
    for (size_t i = 0; i < 4; i++) {
        eb_get_opts g = {.size = sizeof g, .source = by[i].source};
        CHECK_OK(eb_events_get_opts(c, "order-A-2", &g, &l));
        CHECK_EQ(eb_events_at(l, 0)->seq, *by[i].seq);
        eb_events_free(l);
    }
    eb_get_opts g = {.size = sizeof g, .source = "billing & co/ 1"};
    CHECK_EQ(eb_events_get_opts(c, "order-A-2", &g, &l), EB_ENOTFOUND);
    g.size = 1;
    CHECK_EQ(eb_events_get_opts(c, "order-A-2", &g, &l), EB_EINVAL);
    eb_test_down(&d, c);
}

TEST(reading_data_by_pointer)
{
    eb_test_daemon d;
    eb_client *c = eb_test_up(&d, NULL);
    const char *data = "{\"customer\":{\"email\":\"bob@x.org\",\"a/b\":1,\"t~\":2},"
                       "\"items\":[{\"sku\":\"S-1\",\"qty\":3}],\"amount\":12.5,\"long\":\"0123456789\"}";
    eb_publish_result r = {.size = sizeof r};
    CHECK_OK(eb_publish(c, "order.created", data, NULL, &r));
    eb_events *l;
    CHECK_OK(eb_events_get(c, r.id, &l));
    const eb_event *e = eb_events_at(l, 0);
    char s[8];
    double n = 0;
    CHECK_EQ(eb_data_string(e, "/customer/email", s, sizeof s), EB_ETOOBIG); /* 9 + NUL > 8 */
    char big[64];
    CHECK_OK(eb_data_string(e, "/customer/email", big, sizeof big));
    CHECK_STR(big, "bob@x.org");
    CHECK_OK(eb_data_string(e, "/items/0/sku", big, sizeof big));
    CHECK_STR(big, "S-1");
    CHECK_OK(eb_data_number(e, "/items/0/qty", &n));
    CHECK(n == 3);
    CHECK_OK(eb_data_number(e, "/amount", &n));
    CHECK(n == 12.5);
    CHECK_OK(eb_data_number(e, "/customer/a~1b", &n));
    CHECK(n == 1);
    CHECK_OK(eb_data_number(e, "/customer/t~0", &n));
    CHECK(n == 2);
    CHECK_EQ(eb_data_string(e, "/long", s, sizeof s), EB_ETOOBIG);
    CHECK_EQ(eb_data_string(e, "/amount", big, sizeof big), EB_EINVAL);
    CHECK_EQ(eb_data_number(e, "/nope", &n), EB_ENOTFOUND);
    CHECK_EQ(eb_data_number(e, "/items/1/qty", &n), EB_ENOTFOUND);
    CHECK_EQ(eb_data_number(e, "/items/01/qty", &n), EB_ENOTFOUND);
    CHECK_EQ(eb_data_number(e, "amount", &n), EB_ENOTFOUND);
    CHECK_EQ(eb_data_number(e, "/customer/t~2", &n), EB_ENOTFOUND);
    CHECK_EQ(eb_data_number(e, "", &n), EB_EINVAL); /* the data itself is an object */
    eb_events_free(l);
    eb_test_down(&d, c);
}

TEST(duplicate_id_is_reported)
{
    eb_test_daemon d;
    eb_client *c = eb_test_up(&d, NULL);
    eb_publish_opts o = {.size = sizeof o, .id = "pay-1"};
    eb_publish_result a = {.size = sizeof a}, b = {.size = sizeof b};
    CHECK_OK(eb_publish(c, "payment.done", "{\"n\":1}", &o, &a));
    CHECK_OK(eb_publish(c, "payment.done", "{\"n\":1}", &o, &b));
    CHECK(!a.duplicate && b.duplicate);
    CHECK_EQ(eb_client_error(c)->http_status, 200);
    CHECK_EQ(a.seq, b.seq);
    CHECK_STR(a.time, b.time);
    eb_test_down(&d, c);
}

TEST(schema_violation_detail)
{
    eb_test_daemon d;
    eb_client *c = eb_test_up(&d, NULL);
    eb_schemas_result s = {.size = sizeof s};
    CHECK_OK(eb_schemas_register(c, "order.created", ORDER_SCHEMA, NULL, &s));
    CHECK_EQ(s.version, 1);
    CHECK(!s.existing);
    CHECK_STR(s.compatibility, "backward");
    CHECK_OK(eb_schemas_register(c, "order.created", ORDER_SCHEMA, NULL, &s));
    CHECK(s.existing && s.version == 1);

    eb_publish_result r = {.size = sizeof r};
    CHECK_EQ(eb_publish(c, "order.created", "{\"orderId\":\"A-9\",\"amount\":-5}", NULL, &r),
             EB_ESCHEMA);
    const eb_error *e = eb_client_error(c);
    CHECK_EQ(e->http_status, 422);
    CHECK_STR(e->server_code, "schema_violation");
    CHECK(strstr(e->message, "currency") != NULL);
    CHECK(strstr(e->details, "\"/data/currency\"") != NULL);
    CHECK(strstr(e->details, "\"/data/amount\"") != NULL);

    /* A later success clears the detail. */
    CHECK_OK(eb_publish(c, "order.created",
                        "{\"orderId\":\"A-9\",\"amount\":5,\"currency\":\"EUR\"}", NULL, &r));
    CHECK_EQ(eb_client_error(c)->code, 0);
    CHECK_STR(eb_client_error(c)->message, "");
    CHECK_STR(eb_client_error(c)->details, "[]");
    eb_test_down(&d, c);
}

TEST(schemas_check_list_get)
{
    eb_test_daemon d;
    eb_client *c = eb_test_up(&d, NULL);
    CHECK_OK(eb_schemas_register(c, "order.created", ORDER_SCHEMA, "backward", NULL));
    const char *breaking =
        "{\"type\":\"object\",\"required\":[\"orderId\",\"amount\",\"currency\",\"customerId\"]}";
    eb_schemas_verdict *v = NULL;
    CHECK_OK(eb_schemas_check(c, "order.created", breaking, NULL, &v));
    CHECK(!v->compatible);
    CHECK(strstr(eb_client_answer(c, NULL), "customerId") != NULL);
    CHECK_EQ(v->version, 2);
    CHECK_STR(v->compatibility, "backward");
    CHECK(v->nchanges >= 1);
    bool named = false;
    for (size_t i = 0; i < v->nchanges; i++)
        named |= strstr(v->changes[i]->message, "customerId") != NULL;
    CHECK(named);
    eb_result_free(v);
    CHECK_EQ(eb_schemas_register(c, "order.created", breaking, NULL, NULL), EB_ECONFLICT);
    CHECK_STR(eb_client_error(c)->server_code, "incompatible_schema");
    CHECK(strstr(eb_client_error(c)->details, "customerId") != NULL);
    /* mode none lets it through */
    eb_schemas_result s = {.size = sizeof s};
    CHECK_OK(eb_schemas_register(c, "order.created", breaking, "none", &s));
    CHECK_EQ(s.version, 2);
    CHECK_STR(s.compatibility, "none");

    eb_schemas_registry *reg = NULL;
    CHECK_OK(eb_schemas_list(c, &reg));
    CHECK(strstr(eb_client_answer(c, NULL), "\"order.created\"") &&
          strstr(eb_client_answer(c, NULL), "[1,2]"));
    CHECK_EQ(reg->n, 1);
    CHECK_STR(reg->types[0]->type, "order.created");
    CHECK_STR(reg->types[0]->compatibility, "none");
    CHECK(reg->types[0]->nversions == 2 && reg->types[0]->versions[0] == 1 &&
          reg->types[0]->versions[1] == 2);
    eb_result_free(reg);
    eb_schemas_type *t = NULL;
    CHECK_OK(eb_schemas_get(c, "order.created", 0, &t));
    CHECK(strstr(eb_client_answer(c, NULL), "\"latest\""));
    CHECK_EQ(t->version->version, 2);
    CHECK_EQ(t->nversions, 2);
    CHECK(strstr(t->version->schema, "customerId") != NULL);
    CHECK_EQ(t->version->schema_len, strlen(t->version->schema));
    CHECK(t->version->registered_at && strchr(t->version->registered_at, 'T'));
    eb_result_free(t);
    CHECK_OK(eb_schemas_get(c, "order.created", 1, &t));
    CHECK(strstr(eb_client_answer(c, NULL), "\"version\":1"));
    CHECK_EQ(t->version->version, 1);
    CHECK(!strstr(t->version->schema, "customerId"));
    CHECK_STR(t->type, "order.created");
    eb_result_free(t);
    CHECK_EQ(eb_schemas_get(c, "order.created", 7, &t), EB_ENOTFOUND);
    CHECK(t == NULL);
    CHECK_EQ(eb_schemas_get(c, "no.such", 0, &t), EB_ENOTFOUND);
    CHECK_EQ(eb_schemas_check(c, "order.created", "{\"minimum\":\"x\"}", NULL, &v),
             EB_EINVAL);
    CHECK(v == NULL);
    CHECK_STR(eb_client_error(c)->server_code, "invalid_schema");
    eb_test_down(&d, c);
}

TEST(batch_is_atomic)
{
    eb_test_daemon d;
    eb_client *c = eb_test_up(&d, NULL);
    CHECK_OK(eb_schemas_register(c, "order.created", ORDER_SCHEMA, NULL, NULL));
    eb_publish_opts o2 = {.size = sizeof o2, .id = "b-2", .key = "k"};
    eb_message m[3] = {
        {.size = sizeof m[0], .type = "order.created",
         .data = "{\"orderId\":\"1\",\"amount\":1,\"currency\":\"EUR\"}"},
        {.size = sizeof m[1], .type = "order.created",
         .data = "{\"orderId\":\"2\",\"amount\":2,\"currency\":\"EUR\"}", .opts = &o2},
        {.size = sizeof m[2], .type = "order.created", .data = "{\"orderId\":\"3\",\"amount\":3}"},
    };
    const eb_message *mp[3] = {&m[0], &m[1], &m[2]};
    eb_receipts *rec = NULL;
    CHECK_EQ(eb_publish_batch(c, mp, 3, &rec), EB_ESCHEMA);
    CHECK(rec == NULL);
    CHECK(strstr(eb_client_error(c)->details, "\"index\":2") != NULL);
    const eb_error *e = eb_client_error(c);
    CHECK(e->ndetails >= 1);
    for (size_t i = 0; i < e->ndetails; i++) /* every detail names the refused event */
        CHECK_EQ(e->detail[i]->index, 2);
    CHECK(e->detail[0]->path && strstr(e->detail[0]->path, "currency"));
    eb_events *l;
    CHECK_OK(eb_events_browse(c, NULL, &l));
    CHECK_EQ(eb_events_count(l), 0); /* nothing was written */
    eb_events_free(l);

    m[2].data = "{\"orderId\":\"3\",\"amount\":3,\"currency\":\"USD\"}";
    CHECK_OK(eb_publish_batch(c, mp, 3, &rec));
    CHECK_EQ(rec->n, 3);
    CHECK_STR(rec->results[1]->id, "b-2");
    CHECK_EQ(rec->results[1]->seq, rec->results[0]->seq + 1);
    CHECK_EQ(rec->results[2]->seq, rec->results[0]->seq + 2);
    eb_result_free(rec);
    CHECK_OK(eb_events_get(c, "b-2", &l));
    CHECK_STR(eb_events_at(l, 0)->key, "k");
    eb_events_free(l);
    eb_test_down(&d, c);
}

TEST(publish_json_envelopes)
{
    eb_test_daemon d;
    eb_client *c = eb_test_up(&d, NULL);
    const char *one = "{\"type\":\"user.signed_up\",\"id\":\"u-1\",\"data\":{\"email\":\"a@b.c\"},"
                      "\"extensions\":{\"tenant\":\"t1\"}}";
    eb_receipts *r = NULL;
    CHECK_OK(eb_publish_json(c, one, strlen(one), &r));
    CHECK_EQ(r->n, 1);
    CHECK_STR(r->results[0]->id, "u-1");
    eb_result_free(r);
    const char *many = "[{\"type\":\"a.x\",\"data\":1},{\"type\":\"a.y\",\"data\":[2]}]";
    CHECK_OK(eb_publish_json(c, many, strlen(many), &r));
    CHECK_EQ(r->n, 2);
    CHECK_EQ(r->results[1]->seq, r->results[0]->seq + 1);
    eb_result_free(r);
    /* no receipts wanted: still published */
    CHECK_OK(eb_publish_json(c, many, strlen(many), NULL));
    const char *typo = "{\"type\":\"a.x\",\"dat\":1}";
    CHECK_EQ(eb_publish_json(c, typo, strlen(typo), &r), EB_EINVAL);
    CHECK(r == NULL);
    CHECK(strstr(eb_client_error(c)->details, "/dat") != NULL);
    const eb_error_detail *d0 = eb_client_error(c)->ndetails ? eb_client_error(c)->detail[0] : NULL;
    CHECK(d0 && strstr(d0->path ? d0->path : d0->field ? d0->field : "", "/dat"));
    eb_test_down(&d, c);
}

TEST(browse_pages)
{
    eb_test_daemon d;
    eb_client *c = eb_test_up(&d, NULL);
    for (int i = 0; i < 7; i++) {
        char data[32];
        snprintf(data, sizeof data, "{\"i\":%d}", i);
        CHECK_OK(eb_publish(c, i % 2 ? "odd.n" : "even.n", data, NULL, NULL));
    }
    eb_browse_opts q = {.size = sizeof q, .type = "even.n", .limit = 3, .since = "1h"};
    eb_events *l;
    CHECK_OK(eb_events_browse(c, &q, &l));
    CHECK_EQ(eb_events_count(l), 3);
    CHECK_STR(eb_events_at(l, 0)->data, "{\"i\":0}");
    CHECK_STR(eb_events_at(l, 2)->data, "{\"i\":4}");
    CHECK(eb_events_next(l) != NULL);
    q.after_seq = strtoull(eb_events_next(l), NULL, 10);
    CHECK(strstr(eb_events_json(l), "\"events\"") != NULL);
    eb_events_free(l);
    CHECK_OK(eb_events_browse(c, &q, &l));
    CHECK_EQ(eb_events_count(l), 1);
    CHECK_STR(eb_events_at(l, 0)->data, "{\"i\":6}");
    eb_events_free(l);
    q = (eb_browse_opts){.size = sizeof(eb_browse_opts), .since = "0s"};
    CHECK_OK(eb_events_browse(c, &q, &l));
    CHECK_EQ(eb_events_count(l), 0);
    CHECK(eb_events_next(l) == NULL);
    eb_events_free(l);
    q = (eb_browse_opts){.size = sizeof(eb_browse_opts), .since = "yesterday"};
    CHECK_EQ(eb_events_browse(c, &q, &l), EB_EINVAL);
    CHECK(strstr(eb_client_error(c)->details, "since") != NULL);
    eb_test_down(&d, c);
}

TEST(key_streams_and_expected_versions)
{
    eb_test_daemon d;
    eb_client *c = eb_test_up(&d, NULL);
    eb_publish_opts o = {.size = sizeof o, .key = "acct 7", .check_version = true};
    eb_publish_result r = {.size = sizeof r};
    for (uint64_t v = 0; v < 5; v++) {
        o.expected_version = v;
        char data[32];
        snprintf(data, sizeof data, "{\"n\":%d}", (int)v);
        CHECK_OK(eb_publish(c, "acct.posted", data, &o, &r));
        CHECK(r.key_version == v + 1);
    }
    o.expected_version = 2; /* stale: refused, the current version in the details */
    CHECK_EQ(eb_publish(c, "acct.posted", "{}", &o, &r), EB_ECONFLICT);
    const eb_error *e = eb_client_error(c);
    CHECK_STR(e->server_code, "version_conflict");
    CHECK(strstr(e->details, "\"current_version\":5") != NULL);
    /* An older program's options (without the version fields): no check. */
    eb_publish_opts old = {.size = offsetof(eb_publish_opts, version) + sizeof(uint32_t),
                           .key = "acct 7"};
    CHECK_OK(eb_publish(c, "acct.posted", "{\"n\":5}", &old, &r));
    CHECK(r.key_version == 6);

    eb_stream_opts q = {.size = sizeof q, .from_version = 2, .limit = 3};
    eb_events *l;
    CHECK_OK(eb_events_stream(c, "acct 7", &q, &l));
    CHECK_EQ(eb_events_count(l), 3);
    CHECK(eb_events_at(l, 0)->key_version == 2 && eb_events_at(l, 2)->key_version == 4);
    CHECK_STR(eb_events_at(l, 0)->data, "{\"n\":1}");
    CHECK_STR(eb_events_next(l), "5");
    const char *id = eb_events_at(l, 1)->id;
    eb_events *one;
    CHECK_OK(eb_events_get(c, id, &one));
    CHECK(eb_events_at(one, 0)->key_version == 3);
    eb_events_free(one);
    eb_events_free(l);
    CHECK_OK(eb_events_stream(c, "nobody", NULL, &l));
    CHECK_EQ(eb_events_count(l), 0);
    eb_events_free(l);
    CHECK_EQ(eb_events_stream(c, "", NULL, &l), EB_EINVAL);
    eb_test_down(&d, c);
}

TEST(raw_request)
{
    eb_test_daemon d;
    eb_client *c = eb_test_up(&d, NULL);
    int status = 0;
    char *ans = NULL;
    CHECK_OK(eb_request(c, "GET", "/healthz", NULL, 0, &status, &ans));
    CHECK_EQ(status, 200);
    CHECK_STR(ans, "{\"status\":\"ok\"}");
    eb_free(ans);
    CHECK_EQ(eb_request(c, "GET", "/v1/nothing", NULL, 0, &status, &ans), EB_ENOTFOUND);
    CHECK_EQ(status, 404);
    CHECK(strstr(ans, "not_found") != NULL);
    eb_free(ans);
    CHECK_EQ(eb_request(c, "DELETE", "/v1/events", NULL, 0, &status, NULL), EB_EINVAL);
    CHECK_EQ(status, 405);
    CHECK_STR(eb_client_error(c)->server_code, "method_not_allowed");
    const char *bad = "{\"type\":";
    CHECK_EQ(eb_request(c, "POST", "/v1/events", bad, strlen(bad), &status, NULL), EB_ESYNTAX);
    CHECK_STR(eb_client_error(c)->server_code, "malformed_json");
    eb_test_down(&d, c);
}

/* --- the connection ------------------------------------------------------- */

TEST(keepalive_survives_server_restart)
{
    eb_test_daemon d;
    eb_client *c = eb_test_up(&d, NULL);
    eb_publish_result a = {.size = sizeof a}, b = {.size = sizeof b};
    CHECK_OK(eb_publish(c, "a.b", "1", NULL, &a));
    CHECK_OK(eb_publish(c, "a.b", "2", NULL, &b));
    /* The server goes away and comes back: the idle connection is stale.
     * The next call reconnects transparently and nothing is sent twice. */
    eb_test_daemon_restart(&d);
    CHECK_OK(eb_publish(c, "a.b", "3", NULL, &b));
    CHECK_EQ(b.seq, a.seq + 2);
    eb_events *l;
    CHECK_OK(eb_events_browse(c, NULL, &l));
    CHECK_EQ(eb_events_count(l), 3);
    eb_events_free(l);
    eb_test_daemon_stop(&d);
    CHECK_EQ(eb_publish(c, "a.b", "4", NULL, &b), EB_ECONNECT);
    eb_client_free(c);
}

/* HTTPS with a token: a certificate made with `openssl req` for the test;
 * keep-alive across a restart (the stale TLS connection is written to: no
 * SIGPIPE may reach the program), 401 and 403 mapped, a CA that did not
 * sign the certificate refused. */
static void read_line(const char *path, char *out, size_t cap)
{
    for (int i = 0; i < 500; i++) {
        FILE *f = fopen(path, "r");
        char *got = f ? fgets(out, (int)cap, f) : NULL;
        if (f)
            fclose(f);
        if (got) {
            out[strcspn(out, "\n")] = '\0';
            return;
        }
        usleep(10000);
    }
    CHECK(!"no line in the file");
}

TEST(https_with_token)
{
    signal(SIGPIPE, SIG_DFL); /* a SIGPIPE would kill the test */
    char dir[4200], cmd[9000], cert[4300], key[4300], ca[4300], tok[4300], other[4300];
    snprintf(dir, sizeof dir, "%s/tls", eb_test_tmpdir());
    snprintf(cmd, sizeof cmd,
             "set -e; mkdir -p %s; cd %s; exec 2>/dev/null >/dev/null;"
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key"
             " -out ca.pem -days 2 -subj /CN=ca;"
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout o.key"
             " -out other.pem -days 2 -subj /CN=other;"
             "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout srv.key"
             " -out srv.csr -subj /CN=localhost;"
             "printf 'subjectAltName=IP:127.0.0.1\\n' > ext;"
             "openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem"
             " -days 2 -extfile ext",
             dir, dir);
    CHECK(system(cmd) == 0);
    snprintf(cert, sizeof cert, "%s/srv.pem", dir);
    snprintf(key, sizeof key, "%s/srv.key", dir);
    snprintf(ca, sizeof ca, "%s/ca.pem", dir);
    snprintf(other, sizeof other, "%s/other.pem", dir);
    snprintf(tok, sizeof tok, "%s/admin.token", dir);
    char listen[64], url[64], admin[128];
    int port = eb_test_free_port();
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    snprintf(url, sizeof url, "https://127.0.0.1:%d", port);
    const char *extra[] = {"--tls-listen", listen, "--tls-cert", cert, "--tls-key", key,
                           "--auth", "token", "--admin-token-file", tok, NULL};
    eb_test_daemon d;
    eb_test_daemon_start(&d, extra);
    read_line(tok, admin, sizeof admin);
    eb_client *c;
    eb_client_opts o = {.size = sizeof o, .url = url, .timeout_ms = 10000, .token = admin,
                        .cafile = ca};
    CHECK_OK(eb_client_new(&o, &c));
    CHECK_STR(eb_client_url(c), url);
    eb_publish_result a = {.size = sizeof a}, b = {.size = sizeof b};
    CHECK_OK(eb_publish(c, "a.b", "1", NULL, &a));
    eb_test_daemon_restart(&d);
    CHECK_OK(eb_publish(c, "a.b", "2", NULL, &b));
    CHECK_EQ(b.seq, a.seq + 1);
    /* a list whose first node is down: the same token and CA serve the next */
    char list[160];
    snprintf(list, sizeof list, "https://127.0.0.1:%d, %s", eb_test_free_port(), url);
    eb_client_opts lo = o;
    lo.url = list;
    eb_client *lc;
    CHECK_OK(eb_client_new(&lo, &lc));
    CHECK_OK(eb_publish(lc, "a.b", "2", NULL, NULL));
    CHECK_STR(eb_client_url(lc), url);
    eb_client_free(lc);
    static const char mk[] = "{\"name\":\"r\",\"scopes\":[\"read\"]}";
    char *answer = NULL, reader[64] = "";
    CHECK_OK(eb_request(c, "POST", "/v1/tokens", mk, sizeof mk - 1, NULL, &answer));
    const char *t = strstr(answer, "\"token\":\"");
    CHECK(t != NULL);
    snprintf(reader, sizeof reader, "%.47s", t + 9);
    eb_free(answer);
    eb_client_free(c);
    /* a token without the scope: 403; no token: 401; a CA that did not
     * sign the certificate: refused before any request */
    o.token = reader;
    CHECK_OK(eb_client_new(&o, &c));
    CHECK_EQ(eb_publish(c, "a.b", "3", NULL, NULL), EB_EDENIED);
    CHECK(strstr(eb_client_error(c)->message, "publish:a.b") != NULL);
    eb_client_free(c);
    o.token = "";
    CHECK_OK(eb_client_new(&o, &c));
    CHECK_EQ(eb_publish(c, "a.b", "3", NULL, NULL), EB_EAUTH);
    CHECK_EQ(eb_client_error(c)->http_status, 401);
    eb_client_free(c);
    o.cafile = other;
    o.token = admin;
    CHECK_OK(eb_client_new(&o, &c));
    CHECK_EQ(eb_publish(c, "a.b", "3", NULL, NULL), EB_ECONNECT);
    CHECK(strstr(eb_client_error(c)->message, "certificate") != NULL);
    eb_client_free(c);
    eb_test_daemon_stop(&d);
}

/* A scripted peer: accepts one connection, reads the request head, sends
 * `answer` (may be NULL: say nothing and hold the connection). */
typedef struct peer {
    int         lfd;
    int         port;
    const char *answer;
    pthread_t   thr;
} peer;

static void *peer_main(void *arg)
{
    peer *p = arg;
    int fd = accept(p->lfd, NULL, NULL);
    if (fd < 0)
        return NULL;
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof buf);
    (void)n;
    if (p->answer) {
        ssize_t w = write(fd, p->answer, strlen(p->answer));
        (void)w;
        close(fd);
    } else {
        sleep(30); /* hold it; the test's timeout or cancel must fire first */
        close(fd);
    }
    return NULL;
}

static void peer_start(peer *p, const char *answer)
{
    p->answer = answer;
    p->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    CHECK(bind(p->lfd, (struct sockaddr *)&a, sizeof a) == 0);
    CHECK(listen(p->lfd, 4) == 0);
    CHECK(getsockname(p->lfd, (struct sockaddr *)&a, &len) == 0);
    p->port = ntohs(a.sin_port);
    CHECK(pthread_create(&p->thr, NULL, peer_main, p) == 0);
    pthread_detach(p->thr);
}

static eb_client *client_for_peer(const peer *p, uint32_t timeout_ms,
                                  const volatile sig_atomic_t *cancel)
{
    char url[64];
    snprintf(url, sizeof url, "127.0.0.1:%d", p->port);
    eb_client *c;
    eb_client_opts o = {.size = sizeof o, .url = url, .timeout_ms = timeout_ms, .cancel = cancel};
    CHECK_OK(eb_client_new(&o, &c));
    return c;
}

TEST(chunked_answer)
{
    peer p;
    peer_start(&p, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                   "Transfer-Encoding: chunked\r\n\r\n"
                   "6\r\n{\"stat\r\n9\r\nus\":\"ok\"}\r\n0\r\n\r\n");
    eb_client *c = client_for_peer(&p, 2000, NULL);
    char *ans = NULL;
    int status = 0;
    CHECK_OK(eb_request(c, "GET", "/healthz", NULL, 0, &status, &ans));
    CHECK_STR(ans, "{\"status\":\"ok\"}");
    eb_free(ans);
    eb_client_free(c);
}

TEST(answer_that_is_not_json_is_eproto)
{
    peer p;
    peer_start(&p, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
    eb_client *c = client_for_peer(&p, 2000, NULL);
    CHECK_EQ(eb_publish(c, "a.b", "1", NULL, NULL), EB_EPROTO);
    CHECK(strstr(eb_client_error(c)->message, "not JSON") != NULL);
    CHECK_EQ(eb_client_error(c)->http_status, 200);
    eb_client_free(c);
}

TEST(garbage_is_eproto)
{
    peer p;
    peer_start(&p, "SSH-2.0-OpenSSH_9.2\r\n");
    eb_client *c = client_for_peer(&p, 2000, NULL);
    CHECK_EQ(eb_stats(c, NULL), EB_EPROTO);
    CHECK(strstr(eb_client_error(c)->message, "malformed HTTP answer") != NULL);
    eb_client_free(c);
}

TEST(error_without_json_body)
{
    peer p;
    peer_start(&p, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 3\r\nConnection: close\r\n\r\nbad");
    eb_client *c = client_for_peer(&p, 2000, NULL);
    CHECK_EQ(eb_stats(c, NULL), EB_ESERVER);
    CHECK_EQ(eb_client_error(c)->http_status, 502);
    CHECK_STR(eb_client_error(c)->message, "the server answered HTTP 502");
    eb_client_free(c);
}

TEST(silent_server_times_out)
{
    peer p;
    peer_start(&p, NULL);
    eb_client *c = client_for_peer(&p, 300, NULL);
    uint64_t t0 = ms_now();
    CHECK_EQ(eb_stats(c, NULL), EB_ETIMEDOUT);
    uint64_t took = ms_now() - t0;
    CHECK_INT(took, >=, 290);
    CHECK_INT(took, <, 2000);
    CHECK(strstr(eb_client_error(c)->message, "in time") != NULL);
    eb_client_free(c);
}

static volatile sig_atomic_t cancel_flag;

static void on_usr1(int sig)
{
    (void)sig;
    cancel_flag = 1;
}

TEST(cancel_flag_from_a_signal)
{
    peer p;
    peer_start(&p, NULL);
    eb_client *c = client_for_peer(&p, 20000, &cancel_flag);
    eb_test_sigusr1_after(200, on_usr1);
    uint64_t t0 = ms_now();
    CHECK_EQ(eb_stats(c, NULL), EB_ECANCELED);
    CHECK_INT(ms_now() - t0, <, 1500);
    CHECK_EQ(eb_client_error(c)->code, EB_ECANCELED);
    /* while the flag stays up, calls return at once */
    CHECK_EQ(eb_publish(c, "a.b", "1", NULL, NULL), EB_ECANCELED);
    eb_client_free(c);
}

TEST(raised_cancel_flag_sends_nothing)
{
    eb_test_daemon d;
    eb_test_daemon_start(&d, NULL);
    static volatile sig_atomic_t flag = 1;
    eb_client *c;
    CHECK_OK(eb_client_new(&(eb_client_opts){.size = sizeof(eb_client_opts), .url = d.url, .cancel = &flag}, &c));
    CHECK_EQ(eb_publish(c, "a.b", "1", NULL, NULL), EB_ECANCELED);
    flag = 0;
    eb_events *l;
    CHECK_OK(eb_events_browse(c, NULL, &l));
    CHECK_EQ(eb_events_count(l), 0);
    eb_events_free(l);
    /* settling nothing sends nothing and reports success */
    CHECK_OK(eb_ack(c, "g", NULL, 0, NULL));
    CHECK_EQ(eb_client_error(c)->code, 0);
    eb_test_down(&d, c);
}

/* --- growing structs, version, JSON text ------------------------------------- */

TEST(struct_sizes_are_checked)
{
    eb_client *c = NULL;
    /* a size below the first version's: refused (a program that forgot it) */
    CHECK_EQ(eb_client_new(&(eb_client_opts){.url = "127.0.0.1:1"}, &c), EB_EINVAL);
    CHECK(c == NULL);
    /* a newer program's struct: fine while the fields this library does not
     * know are zero, EB_EUNSUPP once one is set */
    struct {
        eb_client_opts o;
        uint64_t       newer_field;
    } big = {.o = {.size = sizeof big, .url = "127.0.0.1:1"}};
    CHECK_OK(eb_client_new(&big.o, &c));
    eb_client_free(c);
    c = NULL;
    big.newer_field = 1;
    CHECK_EQ(eb_client_new(&big.o, &c), EB_EUNSUPP);
    CHECK(c == NULL);

    char url[64];
    snprintf(url, sizeof url, "127.0.0.1:%d", eb_test_free_port());
    c = eb_test_client(url);
    eb_publish_opts o = {.key = "k"}; /* no size */
    CHECK_EQ(eb_publish(c, "a.b", "{}", &o, NULL), EB_EINVAL);
    CHECK(strstr(eb_client_error(c)->message, "eb_publish_opts.size") != NULL);
    eb_publish_result r = {0};
    CHECK_EQ(eb_publish(c, "a.b", "{}", NULL, &r), EB_EINVAL);
    CHECK(strstr(eb_client_error(c)->message, "eb_publish_result.size") != NULL);
    struct {
        eb_publish_opts o;
        const char     *newer_field;
    } bigo = {.o = {.size = sizeof bigo}, .newer_field = "x"};
    CHECK_EQ(eb_publish(c, "a.b", "{}", &bigo.o, NULL), EB_EUNSUPP);
    bigo.newer_field = NULL; /* then it goes out (and finds no server) */
    CHECK_EQ(eb_publish(c, "a.b", "{}", &bigo.o, NULL), EB_ECONNECT);
    eb_message m = {.type = "a.b"}, *mp[1] = {&m};
    CHECK_EQ(eb_publish_batch(c, (const eb_message *const *)mp, 1, NULL), EB_EINVAL);
    eb_groups_config g = {.types = (const char *[]){"a.b"}, .ntypes = 1};
    CHECK_EQ(eb_groups_put(c, "g", &g, NULL, NULL), EB_EINVAL);
    CHECK_EQ(eb_events_browse(c, &(eb_browse_opts){.limit = 1}, &(eb_events *){NULL}),
             EB_EINVAL);
    eb_settle_result s = {0};
    const char *id = "d-1";
    CHECK_EQ(eb_ack(c, "g", &id, 1, &s), EB_EINVAL);
    eb_client_free(c);
}

TEST(version_and_json_text)
{
    const char *v = NULL;
    CHECK_EQ(eb_version(&v), EB_VERSION_HEX);
    char want[32];
    snprintf(want, sizeof want, "%d.%d.%d", EB_VERSION_MAJOR, EB_VERSION_MINOR, EB_VERSION_PATCH);
    CHECK_STR(v, want);
    CHECK_EQ(eb_version(NULL), EB_VERSION_HEX);

    uint32_t line = 0, col = 0;
    char why[96];
    CHECK_OK(eb_json_check("{\"a\":[1,2]}", 11, &line, &col, why, sizeof why));
    CHECK_EQ(eb_json_check("{\"a\":1,\n \"b\":}", 15, &line, &col, why, sizeof why), EB_ESYNTAX);
    CHECK_EQ(line, 2);
    CHECK_EQ(col, 6);
    CHECK(*why);
    CHECK_EQ(eb_json_check("[1] [2]", 7, NULL, NULL, NULL, 0), EB_ESYNTAX);

    char *p = NULL;
    const char *in = "{\"b\":[1,2.50,{}],\"a\":\"\\u00e9\\/\",\"c\":[],\"d\":{\"e\":null,\"f\":true}}";
    CHECK_OK(eb_json_pretty(in, strlen(in), &p));
    CHECK_STR(p, "{\n"
                 "  \"b\": [\n"
                 "    1,\n"
                 "    2.50,\n"
                 "    {}\n"
                 "  ],\n"
                 "  \"a\": \"\xc3\xa9/\",\n"
                 "  \"c\": [],\n"
                 "  \"d\": {\n"
                 "    \"e\": null,\n"
                 "    \"f\": true\n"
                 "  }\n"
                 "}");
    eb_free(p);
    CHECK_EQ(eb_json_pretty("{", 1, &p), EB_ESYNTAX);
    CHECK(p == NULL);
}

TEST_MAIN(T(url_forms), T(connect_refused_is_econnect), T(bad_data_is_refused_locally),
          T(publish_and_get), T(reading_data_by_pointer), T(duplicate_id_is_reported), T(schema_violation_detail),
          T(schemas_check_list_get), T(batch_is_atomic), T(publish_json_envelopes),
          T(browse_pages), T(key_streams_and_expected_versions), T(raw_request), T(keepalive_survives_server_restart),
          T(chunked_answer), T(answer_that_is_not_json_is_eproto), T(garbage_is_eproto),
          T(error_without_json_body), T(silent_server_times_out),
          T(cancel_flag_from_a_signal), T(raised_cancel_flag_sends_nothing),
          T(struct_sizes_are_checked), T(version_and_json_text), T(https_with_token))
