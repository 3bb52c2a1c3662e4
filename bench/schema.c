/* schema.c - bench/schema: validating the seed's order.created event
 * against its schema, ns per validation (target: under 500 ns), on the fast
 * boolean path and with error collection. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "json/json.h"
#include "schema/schema.h"

static const char *schema =
    "{\"type\":\"object\",\"required\":[\"orderId\",\"amount\",\"currency\"],"
    "\"properties\":{\"orderId\":{\"type\":\"string\",\"pattern\":\"^A-[0-9]+$\"},"
    "\"amount\":{\"type\":\"number\",\"minimum\":0},"
    "\"currency\":{\"type\":\"string\",\"pattern\":\"^[A-Z]{3}$\"},"
    "\"items\":{\"type\":\"array\",\"items\":{\"type\":\"object\",\"required\":[\"sku\",\"qty\"],"
    "\"properties\":{\"sku\":{\"type\":\"string\"},\"qty\":{\"type\":\"integer\",\"minimum\":1}}}},"
    "\"customer\":{\"type\":\"object\",\"properties\":{\"email\":{\"type\":\"string\","
    "\"format\":\"email\"}}}}}";

static const char *event =
    "{\"orderId\":\"A-1001\",\"amount\":129.95,\"currency\":\"EUR\",\"items\":[{\"sku\":\"X-1\","
    "\"qty\":2}],\"customer\":{\"email\":\"a@b.example\"}}";

static double now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

int main(void)
{
    eb_schema *s;
    eb_json_doc *d = eb_json_doc_new();
    if (eb_schema_compile(schema, strlen(schema), NULL, &s, NULL) ||
        eb_json_parse(d, event, strlen(event), NULL, NULL))
        return 1;
    const eb_json *inst = eb_json_root(d);
    eb_schema_errors e;
    eb_schema_errors_init(&e, 100);
    int iters = 1000000, bad = 0;
    double best_fast = 1e18, best_full = 1e18, best_parse = 1e18;
    for (int r = 0; r < 5; r++) {
        double t = now_ns();
        for (int i = 0; i < iters; i++)
            bad += eb_schema_validate(s, inst, NULL) != 0;
        double f = (now_ns() - t) / iters;
        t = now_ns();
        for (int i = 0; i < iters; i++) {
            eb_schema_errors_reset(&e);
            bad += eb_schema_validate(s, inst, &e) != 0;
        }
        double g = (now_ns() - t) / iters;
        t = now_ns();
        for (int i = 0; i < iters; i++) {
            eb_json_parse(d, event, strlen(event), NULL, NULL);
            bad += eb_schema_validate(s, eb_json_root(d), NULL) != 0;
        }
        double h = (now_ns() - t) / iters;
        best_fast = f < best_fast ? f : best_fast;
        best_full = g < best_full ? g : best_full;
        best_parse = h < best_parse ? h : best_parse;
        inst = eb_json_root(d);
    }
    printf("validate order.created (%zu-byte data): %.0f ns (boolean path), %.0f ns (collecting "
           "errors); parse + validate %.0f ns. Target: < 500 ns. %s\n", strlen(event), best_fast,
           best_full, best_parse, bad ? "UNEXPECTED FAILURES" : "");
    printf("RESULT schema_validate ns=%.0f ns_errors=%.0f ns_parse_validate=%.0f\n", best_fast,
           best_full, best_parse);
    eb_schema_errors_free(&e);
    eb_schema_free(s);
    eb_json_doc_free(d);
    return bad ? 1 : 0;
}
