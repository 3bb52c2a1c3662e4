/* access.c - what happens as each answer leaves (the HTTP server's answer
 * hook): answers counted by route and status class (for /metrics), and at
 * --log-level debug one access-log line per answer (method, path, status,
 * bytes, µs, remote address) plus, for a 4xx/5xx, its cause (the error
 * body). With debug off the hook only counts: no clock read, no
 * formatting. */
#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "util/logger.h"

static void log_answer(const eb_http_req *req, int status, const char *body, size_t len)
{
    char path[512], peer[80], cause[512];
    size_t pl = req->path ? req->path_len : 0;
    if (pl >= sizeof path)
        pl = sizeof path - 1;
    memcpy(path, req->path ? req->path : "", pl);
    path[pl] = '\0';
    eb_http_req_peer_name(req, peer, sizeof peer);
    uint64_t us = req->start_ns ? (uv_hrtime() - req->start_ns) / 1000u : 0;
    /* A request the server refused before parsing it whole has no path. */
    const char *method = req->path ? eb__api_method_name(req->method) : "-";
    eb_log_kv kv[] = {{"method", method, 0}, {"path", req->path ? path : "-", 0},
                      {"status", NULL, (unsigned long long)status},
                      {"bytes", NULL, (unsigned long long)len},
                      {"us", NULL, (unsigned long long)us}, {"remote", peer, 0},
                      {"cause", cause, 0}};
    size_t n = sizeof kv / sizeof kv[0] - 1;
    if (status >= 400) { /* the cause: the error body as sent (bounded) */
        size_t cl = len < sizeof cause - 1 ? len : sizeof cause - 1;
        memcpy(cause, body ? body : "", body ? cl : 0);
        cause[body ? cl : 0] = '\0';
        n++;
    }
    eb_logger_kv(EB_LVL_DEBUG, "access", kv, n);
}

void eb_api_on_answer(void *ud, const eb_http_req *req, int status, const char *body,
                      size_t len)
{
    eb_api *api = ud;
    unsigned cls = status >= 100 && status < 600 ? (unsigned)status / 100u - 1u : 4u;
    unsigned tag = req->tag <= EB_API_MAX_ROUTES ? req->tag : 0;
    api->answers[tag][cls]++;
    if (eb_logger_on(EB_LVL_DEBUG))
        log_answer(req, status, body, len);
}

void eb__api_prom_requests(const eb_api *api, eb_buf *o)
{
    eb__api_prom_head(o, "eventbus_http_requests_total", "counter",
                      "Answers by route (route=\"none\": no route matched) and status class.");
    for (unsigned t = 0; t <= EB_API_MAX_ROUTES; t++) {
        const char *method = "", *route = t ? eb__api_route_name(t, &method) : "none";
        if (!route)
            break;
        for (unsigned c = 0; c < 5; c++) {
            if (!api->answers[t][c])
                continue;
            eb_buf_printf(o, "eventbus_http_requests_total{method=\"%s\",route=\"", method);
            eb__api_prom_label(o, route);
            eb_buf_printf(o, "\",code=\"%uxx\"} %llu\n", c + 1,
                          (unsigned long long)api->answers[t][c]);
        }
    }
}
