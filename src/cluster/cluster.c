/* cluster.c - this node's role among several on one database (see
 * cluster.h): the leadership thread (store_pg_lead.c) reports changes
 * through a uv_async; on becoming the leader the daemon's on_leader opens
 * the bus (retried every 200 ms while it cannot, e.g. while the old
 * leader's writer session still holds its lock); until then every
 * request but the cluster's own is forwarded (forward.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/cluster.h"
#include "eventbus/err.h"
#include "json/json.h"
#include "store/store_pg.h"
#include "util/buf.h"
#include "util/logger.h"
#include "util/xmalloc.h"

struct eb_cluster {
    uv_loop_t      *loop;
    eb_cluster_opts o;
    char           *uri, *url;
    eb_pg_lead     *lead;
    eb_fwd         *fwd;
    uv_async_t      changed;
    uv_timer_t      retry;
    bool            serving; /* leader with its bus open */
    bool            opening; /* on_leader failed: retried by the timer */
    uint64_t        seen_epoch; /* the leader last logged */
    int             handles; /* open uv handles; freed at 0 after close */
    bool            closed;
};

static void on_retry(uv_timer_t *t);

static void try_lead(eb_cluster *c)
{
    if (c->serving || c->closed || !eb_pg_lead_state(c->lead, NULL, NULL, 0))
        return;
    int rc = c->o.on_leader(c->o.arg);
    if (rc == 0) {
        c->serving = true;
        uv_timer_stop(&c->retry);
        return;
    }
    if (!c->opening)
        EB_WARN("cluster: the leader lock is ours but the bus cannot open yet (%s); retrying "
                "every 200 ms", eb_strerror(rc));
    c->opening = true;
    uv_timer_start(&c->retry, on_retry, 200, 0);
}

static void on_retry(uv_timer_t *t)
{
    try_lead(t->data);
}

static void on_changed(uv_async_t *a)
{
    eb_cluster *c = a->data;
    char url[EB_PG_LEAD_URL_MAX];
    uint64_t epoch = 0;
    bool leader = eb_pg_lead_state(c->lead, &epoch, url, sizeof url);
    if (!leader && *url && epoch != c->seen_epoch)
        EB_INFO("cluster: following the leader at %s (epoch %llu)", url,
                (unsigned long long)epoch);
    c->seen_epoch = epoch;
    try_lead(c);
}

/* On the leadership thread. */
static void lead_changed(void *arg)
{
    eb_cluster *c = arg;
    uv_async_send(&c->changed);
}

int eb_cluster_open(uv_loop_t *loop, const eb_cluster_opts *o, eb_cluster **out)
{
    eb_cluster *c = eb_xcalloc(1, sizeof *c);
    c->loop = loop;
    c->o = *o;
    c->uri = eb_xstrdup(o->uri);
    c->url = eb_xstrdup(o->advertise_url);
    c->o.uri = c->uri;
    c->o.advertise_url = c->url;
    int rc = eb__fwd_open(loop, o->timeout_ms, o->max_answer, o->max_buffered,
                          o->max_forwards, &c->fwd);
    if (rc) {
        free(c->uri);
        free(c->url);
        free(c);
        return rc;
    }
    uv_async_init(loop, &c->changed, on_changed);
    c->changed.data = c;
    uv_timer_init(loop, &c->retry);
    c->retry.data = c;
    c->handles = 2;
    if ((rc = eb_pg_lead_start(c->uri, c->url, lead_changed, c, &c->lead)) != 0) {
        eb_cluster_close(c);
        return rc;
    }
    *out = c;
    try_lead(c); /* leading at once: the bus opens before the node serves */
    if (!c->serving && !c->opening)
        EB_INFO("cluster: another node leads; this one follows and forwards (advertised as "
                "%s)", c->url);
    return 0;
}

bool eb_cluster_serving(const eb_cluster *c)
{
    return c->serving;
}

static bool is(const eb_http_req *req, const char *path)
{
    size_t n = strlen(path);
    return req->path_len == n && !memcmp(req->path, path, n);
}

/* The members "role" and "leader" of both cluster answers. */
static void put_role(eb_cluster *c, eb_jw *w, bool leader, const char *url)
{
    eb_jw_key(w, "role");
    eb_jw_str(w, c->serving ? "leader" : leader ? "starting" : "follower");
    eb_jw_key(w, "leader");
    if (*url)
        eb_jw_str(w, url);
    else
        eb_jw_null(w);
}

/* GET /v1/cluster: this node's role, the leader's URL and epoch. */
static void answer_cluster(eb_cluster *c, eb_http_req *req)
{
    char url[EB_PG_LEAD_URL_MAX];
    uint64_t epoch = 0;
    bool leader = eb_pg_lead_state(c->lead, &epoch, url, sizeof url);
    eb_buf b = EB_BUF_INIT;
    eb_jw w;
    eb_jw_init(&w, &b);
    eb_jw_obj_open(&w);
    put_role(c, &w, leader, url);
    eb_jw_key(&w, "node");
    eb_jw_str(&w, c->url);
    eb_jw_key(&w, "epoch");
    eb_jw_uint(&w, epoch);
    eb_jw_key(&w, "forwarded");
    eb_jw_uint(&w, eb__fwd_count(c->fwd));
    uint64_t held, peak;
    eb__fwd_held(c->fwd, &held, &peak);
    eb_jw_key(&w, "relay_bytes");
    eb_jw_uint(&w, held);
    eb_jw_key(&w, "relay_bytes_peak");
    eb_jw_uint(&w, peak);
    eb_jw_obj_close(&w);
    eb_http_respond(req, 200, "application/json", b.data, b.len);
    eb_buf_free(&b);
}

/* GET /v1/cluster/leader: a load balancer's health check that routes to
 * the leader only (as Patroni's /primary): 200 on the node that leads with
 * its bus open, 503 on the others (naming the leader they know). */
static void answer_leader(eb_cluster *c, eb_http_req *req)
{
    char url[EB_PG_LEAD_URL_MAX];
    bool leader = eb_pg_lead_state(c->lead, NULL, url, sizeof url);
    eb_buf b = EB_BUF_INIT;
    eb_jw w;
    eb_jw_init(&w, &b);
    eb_jw_obj_open(&w);
    put_role(c, &w, leader, url);
    eb_jw_obj_close(&w);
    eb_http_respond(req, c->serving ? 200 : 503, "application/json", b.data, b.len);
    eb_buf_free(&b);
}

int eb_cluster_handle(eb_cluster *c, eb_http_req *req)
{
    if (req->method == EB_HTTP_GET && is(req, "/v1/cluster")) {
        answer_cluster(c, req);
        return 1;
    }
    if (req->method == EB_HTTP_GET && is(req, "/v1/cluster/leader")) {
        answer_leader(c, req);
        return 1;
    }
    if (c->serving)
        return 0;
    char url[EB_PG_LEAD_URL_MAX];
    uint64_t epoch = 0;
    bool leader = eb_pg_lead_state(c->lead, &epoch, url, sizeof url);
    bool known = *url && !leader && strcmp(url, c->url) != 0;
    if (req->method == EB_HTTP_GET && is(req, "/healthz")) {
        if (known) {
            eb_http_respond(req, 200, "application/json", "{\"status\":\"ok\"}", 15);
        } else {
            static const char b[] = "{\"status\":\"degraded\",\"reason\":\"no leader reachable: "
                                    "requests are refused until a node leads\",\"code\":"
                                    "\"no_leader\"}";
            eb_http_set_header(req, "Retry-After", "1");
            eb_http_respond(req, 503, "application/json", b, sizeof b - 1);
        }
        return 1;
    }
    if (!known || eb_http_req_header(req, "eb-forwarded", NULL))
        eb__cluster_error(req, 503, "no_leader", leader ? "this node is taking over as the "
                          "leader; retry" : "no leader is known or reachable; retry");
    else
        eb__fwd_start(c->fwd, url, epoch, req);
    return 1;
}

static void closed(uv_handle_t *h)
{
    eb_cluster *c = h->data;
    if (--c->handles == 0) {
        free(c->uri);
        free(c->url);
        free(c);
    }
}

void eb_cluster_close(eb_cluster *c)
{
    if (!c || c->closed)
        return;
    c->closed = true;
    eb_pg_lead_stop(c->lead); /* first: no async after this */
    c->lead = NULL;
    eb__fwd_close(c->fwd);
    uv_timer_stop(&c->retry);
    uv_close((uv_handle_t *)&c->changed, closed);
    uv_close((uv_handle_t *)&c->retry, closed);
}

void eb_cluster_free(eb_cluster *c)
{
    (void)c; /* freed by its handles' close callbacks */
}
