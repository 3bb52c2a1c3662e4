/* json.c - bench/json: parse + walk + write of a 200-byte event and a ~4 KB
 * one, in ns per operation, for our parser/writer beside jansson and cJSON
 * measured in the same run (Debian's libjansson-dev and libcjson-dev). */
#include <cjson/cJSON.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json/json.h"

static const char *small_ev =
    "{\"type\":\"order.created\",\"source\":\"order-service\",\"id\":\"01J9ZK3R8W5Q7TBD6XH4C2N1MF\","
    "\"data\":{\"orderId\":\"A-1001\",\"amount\":129.95,\"currency\":\"EUR\",\"items\":[{\"sku\":"
    "\"X-1\",\"qty\":2}],\"customer\":{\"email\":\"a@b.example\"}}}";

static double now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

/* Walking: count nodes, touch every string and number. */
static size_t walk_ours(const eb_json *v)
{
    size_t n = 1;
    for (const eb_json *c = v->child; c; c = c->next)
        n += walk_ours(c);
    return n + (v->type == EB_JSON_STRING ? v->len : 0);
}

static size_t walk_jansson(json_t *v)
{
    size_t n = 1;
    if (json_is_object(v)) {
        const char *k;
        json_t *x;
        json_object_foreach(v, k, x) n += walk_jansson(x);
    } else if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++)
            n += walk_jansson(json_array_get(v, i));
    } else if (json_is_string(v)) {
        n += json_string_length(v);
    }
    return n;
}

static size_t walk_cjson(const cJSON *v)
{
    size_t n = 1;
    for (const cJSON *c = v->child; c; c = c->next)
        n += walk_cjson(c);
    return n + (cJSON_IsString(v) ? strlen(v->valuestring) : 0);
}

static double run_ours(const char *s, size_t len, int iters)
{
    eb_json_doc *d = eb_json_doc_new();
    eb_buf out = EB_BUF_INIT;
    size_t sink = 0;
    double t = now_ns();
    for (int i = 0; i < iters; i++) {
        eb_json_parse(d, s, len, NULL, NULL);
        sink += walk_ours(eb_json_root(d));
        eb_buf_reset(&out);
        eb_jw w;
        eb_jw_init(&w, &out);
        eb_jw_value(&w, eb_json_root(d));
        sink += out.len;
    }
    double ns = (now_ns() - t) / iters;
    eb_buf_free(&out);
    eb_json_doc_free(d);
    return sink ? ns : 0;
}

static double run_jansson(const char *s, size_t len, int iters)
{
    size_t sink = 0;
    double t = now_ns();
    for (int i = 0; i < iters; i++) {
        json_t *v = json_loadb(s, len, 0, NULL);
        sink += walk_jansson(v);
        char *o = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER);
        sink += strlen(o);
        free(o);
        json_decref(v);
    }
    double ns = (now_ns() - t) / iters;
    return sink ? ns : 0;
}

static double run_cjson(const char *s, size_t len, int iters)
{
    size_t sink = 0;
    double t = now_ns();
    for (int i = 0; i < iters; i++) {
        cJSON *v = cJSON_ParseWithLength(s, len);
        sink += walk_cjson(v);
        char *o = cJSON_PrintUnformatted(v);
        sink += strlen(o);
        cJSON_free(o);
        cJSON_Delete(v);
    }
    double ns = (now_ns() - t) / iters;
    return sink ? ns : 0;
}

/* Median of 5 runs. */
static double med5(double (*f)(const char *, size_t, int), const char *s, size_t n, int it)
{
    double v[5];
    for (int i = 0; i < 5; i++)
        v[i] = f(s, n, it);
    for (int i = 0; i < 5; i++)
        for (int j = i + 1; j < 5; j++)
            if (v[j] < v[i]) {
                double x = v[i];
                v[i] = v[j];
                v[j] = x;
            }
    return v[2];
}

static void report(const char *name, const char *s, int iters)
{
    size_t n = strlen(s);
    double o = med5(run_ours, s, n, iters), j = med5(run_jansson, s, n, iters),
           c = med5(run_cjson, s, n, iters);
    printf("%-22s %5zu bytes: eventbus %7.0f ns   jansson %7.0f ns (%.1fx)   cJSON %7.0f ns "
           "(%.1fx)\n", name, n, o, j, j / o, c, c / o);
    printf("RESULT json_%s ours_ns=%.0f jansson_ns=%.0f cjson_ns=%.0f\n", name, o, j, c);
}

int main(void)
{
    /* a ~4 KB event: 20 line items */
    char big[8192];
    size_t n = (size_t)snprintf(big, sizeof big, "{\"type\":\"order.created\",\"source\":"
                                "\"order-service\",\"data\":{\"orderId\":\"A-1001\",\"items\":[");
    for (int i = 0; i < 20; i++)
        n += (size_t)snprintf(big + n, sizeof big - n,
                              "%s{\"sku\":\"SKU-%04d\",\"name\":\"Widget number %d, blue\","
                              "\"qty\":%d,\"price\":%d.95,\"tags\":[\"a\",\"b\",\"c\"],"
                              "\"dims\":{\"w\":1.5,\"h\":2.25,\"d\":0.5}}",
                              i ? "," : "", i, i, i + 1, 10 + i);
    snprintf(big + n, sizeof big - n, "],\"currency\":\"EUR\",\"amount\":1234.5}}");
    printf("parse + walk + write, median of 5 runs (targets: >= 5x jansson, >= 2x cJSON on the "
           "200-byte event)\n");
    report("event_200B", small_ev, 200000);
    report("event_4KB", big, 20000);
    return 0;
}
