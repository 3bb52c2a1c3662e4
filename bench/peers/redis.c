/* redis.c - bench/peers on Redis Streams (hiredis): XADD pipelined per
 * batch, consumer groups with XREADGROUP COUNT/BLOCK, XACK of each pulled
 * batch pipelined with the next XREADGROUP. --target HOST:PORT. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <hiredis/hiredis.h>

#include "../event.h"
#include "driver.h"

typedef struct rconn {
    redisContext *c;
    char          key[96];
    char          group[32];
    char          consumer[32];
    char        **ids;      /* entry ids the last pull returned (to ack) */
    size_t        nids;
    int           max;
} rconn;

static redisContext *connect_target(const char *target)
{
    char host[128];
    int port = 0;
    if (sscanf(target, "%127[^:]:%d", host, &port) != 2) {
        fprintf(stderr, "redis: bad --target %s (HOST:PORT)\n", target);
        return NULL;
    }
    redisContext *c = redisConnectWithTimeout(host, port, (struct timeval){5, 0});
    if (!c || c->err) {
        fprintf(stderr, "redis: connect %s: %s\n", target, c ? c->errstr : "no memory");
        if (c)
            redisFree(c);
        return NULL;
    }
    return c;
}

static rconn *rconn_open(const drv_opts *o)
{
    rconn *r = calloc(1, sizeof *r);
    r->c = connect_target(o->target);
    if (!r->c) {
        free(r);
        return NULL;
    }
    snprintf(r->key, sizeof r->key, "orders:%s", o->run);
    return r;
}

static void rconn_close(rconn *r)
{
    for (size_t i = 0; i < r->nids; i++)
        free(r->ids[i]);
    free(r->ids);
    redisFree(r->c);
    free(r);
}

/* Reads one reply; fails on a connection error or an error reply. */
static redisReply *reply(rconn *r, const char *what)
{
    void *v = NULL;
    if (redisGetReply(r->c, &v) != REDIS_OK) {
        fprintf(stderr, "redis: %s: %s\n", what, r->c->errstr);
        return NULL;
    }
    redisReply *rep = v;
    if (rep->type == REDIS_REPLY_ERROR) {
        fprintf(stderr, "redis: %s: %s\n", what, rep->str);
        freeReplyObject(rep);
        return NULL;
    }
    return rep;
}

static int command(rconn *r, const char *what, int argc, const char **argv)
{
    if (redisAppendCommandArgv(r->c, argc, argv, NULL) != REDIS_OK)
        return -1;
    redisReply *rep = reply(r, what);
    if (!rep)
        return -1;
    freeReplyObject(rep);
    return 0;
}

static int r_prepare(const drv_opts *o)
{
    rconn *r = rconn_open(o);
    if (!r)
        return -1;
    const char *argv[] = {"DEL", r->key};
    int rc = command(r, "DEL", 2, argv);
    rconn_close(r);
    return rc;
}

static void *r_pub_open(const drv_opts *o)
{
    return rconn_open(o);
}

static int r_publish(void *h, uint64_t first, int n)
{
    rconn *r = h;
    char ev[512];
    for (int i = 0; i < n; i++) {
        size_t len = bench_event_json(ev, sizeof ev, first + (uint64_t)i);
        const char *argv[] = {"XADD", r->key, "*", "event", ev};
        size_t lens[] = {4, strlen(r->key), 1, 5, len};
        if (redisAppendCommandArgv(r->c, 5, argv, lens) != REDIS_OK)
            return -1;
    }
    int rc = 0;
    for (int i = 0; i < n; i++) {
        redisReply *rep = reply(r, "XADD");
        if (!rep)
            rc = -1;
        else
            freeReplyObject(rep);
        if (!rep && r->c->err)
            return -1;
    }
    return rc;
}

static void r_pub_close(void *h)
{
    rconn_close(h);
}

static int r_groups(const drv_opts *o, int n, int earliest)
{
    rconn *r = rconn_open(o);
    if (!r)
        return -1;
    int rc = 0;
    for (int g = 0; g < n && rc == 0; g++) {
        char name[32];
        snprintf(name, sizeof name, "g%d", g);
        const char *argv[] = {"XGROUP", "CREATE", r->key, name, earliest ? "0" : "$",
                              "MKSTREAM"};
        rc = command(r, "XGROUP CREATE", 6, argv);
    }
    rconn_close(r);
    return rc;
}

static void *r_con_open(const drv_opts *o, int g)
{
    rconn *r = rconn_open(o);
    if (!r)
        return NULL;
    snprintf(r->group, sizeof r->group, "g%d", g);
    snprintf(r->consumer, sizeof r->consumer, "c%d", g);
    r->max = o->pull;
    r->ids = calloc((size_t)o->pull, sizeof *r->ids);
    return r;
}

/* Queues XACK of the ids the last pull returned (no-op when none). */
static int append_ack(rconn *r)
{
    if (!r->nids)
        return 0;
    const char **argv = calloc(r->nids + 3, sizeof *argv);
    argv[0] = "XACK";
    argv[1] = r->key;
    argv[2] = r->group;
    for (size_t i = 0; i < r->nids; i++)
        argv[3 + i] = r->ids[i];
    int rc = redisAppendCommandArgv(r->c, (int)r->nids + 3, argv, NULL) == REDIS_OK ? 0 : -1;
    free(argv);
    return rc;
}

/* Reads the XACK answer queued by append_ack: every id must be acked. */
static int read_ack(rconn *r)
{
    if (!r->nids)
        return 0;
    redisReply *rep = reply(r, "XACK");
    if (!rep)
        return -1;
    int rc = rep->type == REDIS_REPLY_INTEGER && (size_t)rep->integer == r->nids ? 0 : -1;
    if (rc)
        fprintf(stderr, "redis: XACK acked %lld of %zu\n", rep->integer, r->nids);
    freeReplyObject(rep);
    for (size_t i = 0; i < r->nids; i++)
        free(r->ids[i]);
    r->nids = 0;
    return rc;
}

/* Takes the entries of an XREADGROUP answer: ids kept for the next ack,
 * event numbers into nums. */
static int take_entries(rconn *r, redisReply *rep, uint64_t *nums)
{
    if (rep->type == REDIS_REPLY_NIL)
        return 0;
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 1 ||
        rep->element[0]->elements < 2)
        return -1;
    redisReply *entries = rep->element[0]->element[1];
    int n = 0;
    for (size_t i = 0; i < entries->elements && n < r->max; i++) {
        redisReply *e = entries->element[i];
        if (e->elements < 2 || e->element[1]->elements < 2)
            return -1;
        redisReply *val = e->element[1]->element[1];
        if (bench_event_number(val->str, val->str + val->len, &nums[n]) != 0)
            return -1;
        r->ids[r->nids++] = strdup(e->element[0]->str);
        n++;
    }
    return n;
}

static int r_pull(void *h, int max, int wait_ms, uint64_t *nums)
{
    rconn *r = h;
    char count[16], block[16];
    snprintf(count, sizeof count, "%d", max < r->max ? max : r->max);
    snprintf(block, sizeof block, "%d", wait_ms > 0 ? wait_ms : 1);
    const char *argv[] = {"XREADGROUP", "GROUP", r->group, r->consumer, "COUNT", count,
                          "BLOCK", block, "STREAMS", r->key, ">"};
    if (append_ack(r) != 0 || redisAppendCommandArgv(r->c, 11, argv, NULL) != REDIS_OK ||
        read_ack(r) != 0)
        return -1;
    redisReply *rep = reply(r, "XREADGROUP");
    if (!rep)
        return -1;
    int n = take_entries(r, rep, nums);
    freeReplyObject(rep);
    if (n < 0)
        fprintf(stderr, "redis: unexpected XREADGROUP answer\n");
    return n;
}

static int r_con_close(void *h)
{
    rconn *r = h;
    int rc = append_ack(r) == 0 && read_ack(r) == 0 ? 0 : -1;
    rconn_close(r);
    return rc;
}

static const peer_ops redis_ops = {
    .name = "redis", .prepare = r_prepare, .pub_open = r_pub_open, .publish = r_publish,
    .pub_close = r_pub_close, .groups = r_groups, .con_open = r_con_open, .pull = r_pull,
    .con_close = r_con_close};

int main(int argc, char **argv)
{
    return drv_main(&redis_ops, argc, argv);
}
