/* client.c - benchmark of libeventbus against a local eventbusd:
 *   - sequential publishes over one keep-alive connection, libeventbus next
 *     to libcurl's easy interface doing the same requests on the same
 *     server in the same run (wall time and client CPU per request);
 *   - a consumer: eb_consume() draining a group (pull + handler + ack).
 * Usage: bench_client PATH/TO/eventbusd [N] */
#include <curl/curl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eventbus.h"
#include "httpc.h"

#define DATA "{\"orderId\":\"A-1001\",\"amount\":129.95,\"currency\":\"EUR\",\"email\":\"a@b.cd\"}"

typedef struct result {
    double wall_us, cpu_us; /* per request */
} result;

static int ours(const char *url, int n, result *r)
{
    eb_client *c;
    if (eb_client_new(&(eb_client_opts){.size = sizeof(eb_client_opts), .url = url}, &c))
        return -1;
    double t0 = bench_now_s(), c0 = bench_cpu_s();
    for (int i = 0; i < n; i++)
        if (eb_publish(c, "order.created", DATA, NULL, NULL)) {
            fprintf(stderr, "publish: %s\n", eb_client_error(c)->message);
            eb_client_free(c);
            return -1;
        }
    r->wall_us = (bench_now_s() - t0) * 1e6 / n;
    r->cpu_us = (bench_cpu_s() - c0) * 1e6 / n;
    eb_client_free(c);
    return 0;
}

static size_t sink(char *p, size_t sz, size_t n, void *ud)
{
    (void)p;
    (void)ud;
    return sz * n;
}

static int curl_peer(const char *url, int n, result *r)
{
    char u[128];
    snprintf(u, sizeof u, "%s/v1/events", url);
    const char *body = "{\"type\":\"order.created\",\"data\":" DATA "}";
    CURL *h = curl_easy_init();
    if (!h)
        return -1;
    struct curl_slist *hd = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(h, CURLOPT_URL, u);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
    double t0 = bench_now_s(), c0 = bench_cpu_s();
    int rc = 0;
    for (int i = 0; i < n && !rc; i++) {
        long status = 0;
        if (curl_easy_perform(h) != CURLE_OK ||
            curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK || status != 201)
            rc = -1;
    }
    r->wall_us = (bench_now_s() - t0) * 1e6 / n;
    r->cpu_us = (bench_cpu_s() - c0) * 1e6 / n;
    curl_slist_free_all(hd);
    curl_easy_cleanup(h);
    return rc;
}

static int count_handler(const eb_event *ev, void *arg, char *err, size_t cap)
{
    (void)ev;
    (void)err;
    (void)cap;
    (*(uint64_t *)arg)++;
    return 0;
}

/* Publishes n events in batches, then drains them with eb_consume. */
static int consume(const char *url, int n, double *events_per_s)
{
    eb_client *c;
    if (eb_client_new(&(eb_client_opts){.size = sizeof(eb_client_opts), .url = url}, &c))
        return -1;
    const char *types[] = {"order.created"};
    eb_groups_config g = {.size = sizeof g, .types = types, .ntypes = 1};
    eb_message m = {.size = sizeof m, .type = "order.created", .data = DATA};
    const eb_message *mp[500];
    for (int i = 0; i < 500; i++)
        mp[i] = &m;
    int rc = eb_groups_put(c, "bench", &g, NULL, NULL);
    for (int done = 0; !rc && done < n; done += 500)
        rc = eb_publish_batch(c, mp, 500, NULL);
    uint64_t seen = 0;
    double t0 = bench_now_s();
    if (!rc)
        rc = eb_consume(c, "bench", "bench-1", count_handler,
                        &(eb_consume_opts){.size = sizeof(eb_consume_opts), .arg = &seen, .max = 500,
                                           .max_events = (uint64_t)n / 500 * 500});
    *events_per_s = (double)seen / (bench_now_s() - t0);
    if (rc)
        fprintf(stderr, "consume: %s\n", eb_client_error(c)->message);
    eb_client_free(c);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_client PATH/TO/eventbusd [N]\n");
        return 2;
    }
    int n = argc > 2 ? atoi(argv[2]) : 20000;
    const char *const extra[] = {NULL};
    int port;
    char dir[256], url[64];
    pid_t pid = bench_start_daemon(argv[1], extra, &port, dir);
    if (pid < 0) {
        fprintf(stderr, "cannot start %s\n", argv[1]);
        return 1;
    }
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    result a = {0}, b = {0};
    double eps = 0;
    /* warm up both, then measure alternately */
    int rc = ours(url, n / 10, &a) || curl_peer(url, n / 10, &b) || ours(url, n, &a) ||
             curl_peer(url, n, &b) || consume(url, n, &eps);
    curl_global_cleanup();
    bench_stop_daemon(pid, dir);
    if (rc)
        return 1;
    printf("sequential publish, 1 keep-alive connection, %d requests (fsync always):\n", n);
    printf("  libeventbus   %.1f us/request wall, %.1f us client CPU\n", a.wall_us, a.cpu_us);
    printf("  libcurl easy  %.1f us/request wall, %.1f us client CPU\n", b.wall_us, b.cpu_us);
    printf("eb_consume draining %d events (pull 500 + ack): %.0f events/s\n", n, eps);
    printf("RESULT client_publish ours_us=%.2f ours_cpu_us=%.2f curl_us=%.2f curl_cpu_us=%.2f\n",
           a.wall_us, a.cpu_us, b.wall_us, b.cpu_us);
    printf("RESULT client_consume events_per_s=%.0f\n", eps);
    return 0;
}
