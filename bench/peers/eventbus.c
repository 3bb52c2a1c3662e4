/* eventbus.c - the bench/peers workloads on eventbusd over its HTTP API
 * (docs/api.md): POST /v1/events or /v1/events/batch, consumer groups with
 * PUT /v1/groups/{g}, POST .../pull and .../ack. Each consumer keeps two
 * keep-alive connections: pulls on one, acks on the other, so the ack of a
 * batch (answered once durable) overlaps the next pull. --target HOST:PORT
 * or PORT (loopback); https://HOST:PORT speaks TLS (OpenSSL, blocking,
 * trusting the CAs of $EB_BENCH_CACERT, else the system's), and
 * $EB_BENCH_TOKEN, if set, goes with every request as a bearer token.
 * Several nodes of one bus (on one PostgreSQL database), comma-separated:
 * each connection goes to the next one in turn, and, as the clients do
 * (docs/client.md), moves to the leader a follower names in an answer
 * (Eventbus-Leader) when the leader is one of the list; with $EB_BENCH_STAY=1 the
 * connections stay where they were put (followers relay: the relay's cost). */
#include "eventbus.h"

#include <limits.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../event.h"
#include "../httpc.h"

typedef struct econn {
    bench_conn c;
    bench_conn ack;        /* consumers: the acks' connection */
    char       group[64];
    char       consumer[64];
    char      *body;       /* request body buffer */
    size_t     body_cap;
    char     **ids;        /* delivery ids the last pull returned (to ack) */
    int        nids, max;
    int        ack_sent;   /* ids in the ack in flight, 0: none */
    const char *targets;   /* the --target list (follow_leader) */
} econn;

static int target_port(const char *target)
{
    const char *colon = strrchr(target, ':');
    return atoi(colon ? colon + 1 : target);
}

/* --- TLS and the token ------------------------------------------------------ */

static struct {
    SSL_CTX *ctx;          /* for https:// targets */
    char     headers[640]; /* "Authorization: Bearer ...\r\n" or "" */
} tls;
static pthread_once_t tls_once = PTHREAD_ONCE_INIT;

static void tls_init(void)
{
    const char *tok = getenv("EB_BENCH_TOKEN"), *ca = getenv("EB_BENCH_CACERT");
    if (tok && *tok)
        snprintf(tls.headers, sizeof tls.headers, "Authorization: Bearer %.512s\r\n", tok);
    tls.ctx = SSL_CTX_new(TLS_client_method());
    if (ca && *ca)
        SSL_CTX_load_verify_locations(tls.ctx, ca, NULL);
    else
        SSL_CTX_set_default_verify_paths(tls.ctx);
    SSL_CTX_set_verify(tls.ctx, SSL_VERIFY_PEER, NULL);
}

static ssize_t tls_read(void *io, void *p, size_t n)
{
    int r = SSL_read(io, p, n > INT_MAX ? INT_MAX : (int)n);
    return r > 0 ? r : -1;
}

static ssize_t tls_write(void *io, const void *p, size_t n)
{
    int r = SSL_write(io, p, n > INT_MAX ? INT_MAX : (int)n);
    return r > 0 ? r : -1;
}

/* The target of the next connection: the next of a comma-separated list. */
static const char *pick(const char *target, char *buf, size_t cap)
{
    static atomic_uint next;
    if (!strchr(target, ','))
        return target;
    unsigned n = 1;
    for (const char *q = target; *q; q++)
        n += *q == ',';
    unsigned k = atomic_fetch_add(&next, 1) % n;
    const char *s = target;
    while (k--)
        s = strchr(s, ',') + 1;
    const char *e = strchr(s, ',');
    snprintf(buf, cap, "%.*s", (int)(e ? (size_t)(e - s) : strlen(s)), s);
    return buf;
}

/* Connects to one target: TCP, then the TLS handshake for https://. */
static int conn_open_one(bench_conn *c, const char *target)
{
    pthread_once(&tls_once, tls_init);
    if (bench_conn_open(c, target_port(target)) != 0)
        return -1;
    c->headers = tls.headers[0] ? tls.headers : NULL;
    if (strncmp(target, "https://", 8) != 0)
        return 0;
    SSL *s = SSL_new(tls.ctx);
    if (!s || SSL_set_fd(s, c->fd) != 1 || SSL_connect(s) != 1) {
        SSL_free(s);
        bench_conn_close(c);
        return -1;
    }
    c->io = s;
    c->io_read = tls_read;
    c->io_write = tls_write;
    return 0;
}

static void conn_close(bench_conn *c)
{
    SSL_free(c->io); /* NULL: plain */
    bench_conn_close(c);
}

/* Connects to the next of the targets. */
static int conn_open(bench_conn *c, const char *targets)
{
    char buf[256];
    return conn_open_one(c, pick(targets, buf, sizeof buf));
}

/* After an answer on c: when it names the leader (Eventbus-Leader) and the leader
 * is one of the targets (all on loopback: the port decides), c is remade
 * to it, before its next request. */
static int follow_leader(bench_conn *c, const char *targets)
{
    static int stay = -1;
    if (stay < 0)
        stay = getenv("EB_BENCH_STAY") && *getenv("EB_BENCH_STAY") == '1';
    if (stay || !strchr(targets, ',') || !c->head)
        return 0;
    static const char name[] = "\r\nEventbus-Leader: ";
    const size_t nl = sizeof name - 1;
    const char *h = memmem(c->head, c->head_len, name, nl);
    if (!h)
        return 0;
    const char *end = memchr(h + nl, '\r', (size_t)(c->head + c->head_len - (h + nl)));
    const char *colon = end ? memrchr(h + nl, ':', (size_t)(end - (h + nl))) : NULL;
    int port = colon ? atoi(colon + 1) : 0;
    if (!port || port == c->port)
        return 0;
    for (const char *s = targets; s; s = strchr(s, ',') ? strchr(s, ',') + 1 : NULL) {
        char one[256];
        const char *e = strchr(s, ',');
        snprintf(one, sizeof one, "%.*s", (int)(e ? (size_t)(e - s) : strlen(s)), s);
        if (target_port(one) != port)
            continue;
        conn_close(c);
        return conn_open_one(c, one);
    }
    return 0;
}

/* --- connections ------------------------------------------------------------ */

static econn *econn_open(const drv_opts *o)
{
    econn *e = calloc(1, sizeof *e);
    e->c.fd = e->ack.fd = -1;
    e->targets = o->target;
    if (conn_open(&e->c, o->target) != 0) {
        fprintf(stderr, "eventbus: cannot connect to %s\n", o->target);
        free(e);
        return NULL;
    }
    e->body_cap = 256 * 1024;
    e->body = malloc(e->body_cap);
    return e;
}

static void econn_close(econn *e)
{
    conn_close(&e->c);
    if (e->ack.fd >= 0)
        conn_close(&e->ack);
    for (int i = 0; i < e->nids; i++)
        free(e->ids[i]);
    free(e->ids);
    free(e->body);
    free(e);
}

/* One request on conn; fails unless the status is 2xx. *answer (optional)
 * is valid until the next request on conn. */
static int call(bench_conn *c, const char *method, const char *path, const char *body,
                size_t blen, const char **answer)
{
    const char *a = NULL;
    int st = bench_conn_send(c, method, path, body, blen) == 0 ? bench_conn_recv(c, &a, NULL) : -1;
    if (st < 200 || st > 299) {
        fprintf(stderr, "eventbus: %s %s: %d %.300s\n", method, path, st, a ? a : "");
        return -1;
    }
    if (answer)
        *answer = a;
    return 0;
}

static int e_prepare(const drv_opts *o)
{
    econn *e = econn_open(o);
    if (!e)
        return -1;
    int rc = call(&e->c, "PUT", "/v1/schemas/order.created", bench_order_schema,
                  strlen(bench_order_schema), NULL);
    econn_close(e);
    return rc;
}

static void *e_pub_open(const drv_opts *o)
{
    return econn_open(o);
}

static int e_publish(void *h, uint64_t first, int n)
{
    econn *e = h;
    size_t len = n == 1 ? bench_event_json(e->body, e->body_cap, first)
                        : bench_event_batch(e->body, e->body_cap, first, n);
    if (!len)
        return -1;
    if (call(&e->c, "POST", n == 1 ? "/v1/events" : "/v1/events/batch", e->body, len, NULL))
        return -1;
    return follow_leader(&e->c, e->targets);
}

static void e_pub_close(void *h)
{
    econn_close(h);
}

static void group_name(char *buf, size_t cap, const drv_opts *o, int g)
{
    snprintf(buf, cap, "%s-g%d", o->run, g);
}

static int e_groups(const drv_opts *o, int n, int earliest)
{
    econn *e = econn_open(o);
    if (!e)
        return -1;
    int rc = 0;
    for (int g = 0; g < n && rc == 0; g++) {
        char path[128], name[64], body[128];
        group_name(name, sizeof name, o, g);
        snprintf(path, sizeof path, "/v1/groups/%s", name);
        int len = snprintf(body, sizeof body, "{\"types\":[\"order.created\"],\"start\":\"%s\"}",
                           earliest ? "earliest" : "latest");
        rc = call(&e->c, "PUT", path, body, (size_t)len, NULL);
    }
    econn_close(e);
    return rc;
}

static void *e_con_open(const drv_opts *o, int g)
{
    econn *e = econn_open(o);
    if (!e)
        return NULL;
    if (conn_open(&e->ack, o->target) != 0) {
        econn_close(e);
        return NULL;
    }
    group_name(e->group, sizeof e->group, o, g);
    snprintf(e->consumer, sizeof e->consumer, "bench-%d", g);
    e->max = o->pull;
    e->ids = calloc((size_t)o->pull, sizeof *e->ids);
    return e;
}

/* Reads the answer to the ack in flight: every id must have been acked. */
static int ack_wait(econn *e)
{
    if (!e->ack_sent)
        return 0;
    const char *a = NULL;
    int st = bench_conn_recv(&e->ack, &a, NULL);
    const char *n = a ? strstr(a, "\"acked\":") : NULL;
    int acked = n ? atoi(n + 8) : -1;
    int sent = e->ack_sent;
    e->ack_sent = 0;
    if (st != 200 || acked != sent) {
        fprintf(stderr, "eventbus: ack of %d: %d %.300s\n", sent, st, a ? a : "");
        return -1;
    }
    return follow_leader(&e->ack, e->targets);
}

/* Sends the ack of the ids the last pull returned, after the previous ack
 * was answered. */
static int ack_send(econn *e)
{
    if (ack_wait(e) != 0)
        return -1;
    if (!e->nids)
        return 0;
    size_t len = (size_t)snprintf(e->body, e->body_cap, "{\"ids\":[");
    for (int i = 0; i < e->nids; i++) {
        len += (size_t)snprintf(e->body + len, e->body_cap - len, "%s\"%s\"", i ? "," : "",
                                e->ids[i]);
        free(e->ids[i]);
    }
    len += (size_t)snprintf(e->body + len, e->body_cap - len, "]}");
    char path[160];
    snprintf(path, sizeof path, "/v1/groups/%s/ack", e->group);
    if (bench_conn_send(&e->ack, "POST", path, e->body, len) != 0)
        return -1;
    e->ack_sent = e->nids;
    e->nids = 0;
    return 0;
}

/* Takes the events of a pull answer: event numbers into nums, delivery
 * ids kept for the next ack. The k-th order id and the k-th delivery id
 * belong to the k-th event. */
static int take_events(econn *e, const char *a, uint64_t *nums)
{
    const char *end = a + strlen(a), *p = a, *d = a;
    int n = 0;
    while ((p = strstr(p, "\"orderId\":")) != NULL) {
        d = strstr(d, "\"delivery\":");
        const char *id = d ? strstr(d, "\"id\":\"") : NULL;
        if (!id || n >= e->max || bench_event_number(p, end, &nums[n]) != 0)
            return -1;
        id += 6;
        const char *q = strchr(id, '"');
        if (!q)
            return -1;
        e->ids[n] = strndup(id, (size_t)(q - id));
        e->nids = ++n;
        p += 10;
        d = q;
    }
    return n;
}

static int e_pull(void *h, int max, int wait_ms, uint64_t *nums)
{
    econn *e = h;
    if (ack_send(e) != 0)
        return -1;
    char path[160], body[160];
    snprintf(path, sizeof path, "/v1/groups/%s/pull", e->group);
    int len = snprintf(body, sizeof body, "{\"consumer\":\"%s\",\"max\":%d,\"wait_ms\":%d}",
                       e->consumer, max < e->max ? max : e->max, wait_ms);
    const char *a = NULL;
    if (call(&e->c, "POST", path, body, (size_t)len, &a) != 0)
        return -1;
    int n = take_events(e, a, nums);
    if (n < 0)
        fprintf(stderr, "eventbus: unexpected pull answer: %.300s\n", a);
    return n >= 0 && follow_leader(&e->c, e->targets) != 0 ? -1 : n;
}

static int e_con_close(void *h)
{
    econn *e = h;
    int rc = ack_send(e) == 0 && ack_wait(e) == 0 ? 0 : -1;
    econn_close(e);
    return rc;
}

/* A new connection (and TLS handshake), GET /healthz, close. */
static int e_connect(const drv_opts *o)
{
    bench_conn c;
    if (conn_open(&c, o->target) != 0)
        return -1;
    const char *a = NULL;
    int st = bench_conn_send(&c, "GET", "/healthz", NULL, 0) == 0 ? bench_conn_recv(&c, &a, NULL)
                                                                  : -1;
    conn_close(&c);
    return st == 200 ? 0 : -1;
}

const peer_ops bench_eventbus_ops = {
    .name = "eventbus", .prepare = e_prepare, .pub_open = e_pub_open, .publish = e_publish,
    .pub_close = e_pub_close, .groups = e_groups, .con_open = e_con_open, .pull = e_pull,
    .con_close = e_con_close, .connect = e_connect};
