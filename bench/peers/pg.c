/* pg.c - bench/peers on PostgreSQL (libpq): an event table and a table of
 * per-group positions, the way teams build a bus on PostgreSQL.
 *
 *   events_RUN(seq bigserial primary key, type text, body jsonb, created_at)
 *   offsets_RUN(grp text primary key, seq bigint)   -- a group's position
 *
 * Publish: one multi-row INSERT per batch (one transaction, committed under
 * synchronous_commit on). A consumer with nothing to read polls every
 * POLL_MS. With BENCH_PG_WAKE=notify it LISTENs instead, and in the latency
 * workload each INSERT calls pg_notify() in its transaction; measured here
 * that is slower (commits that notify serialize on a global lock, and the
 * 5,000 events/s rate was not held), so polling is the default.
 * Pull: SELECT the next rows after the group's
 * position; ack: UPDATE the position (its own commit), sent on a second
 * connection so it overlaps the next SELECT. A sequence number can become
 * visible after a larger one (concurrent commits), so a pull delivers only
 * the gap-free run after the position and leaves the rest for later (no
 * transaction here ever rolls back, so every gap fills).
 * --target is a libpq conninfo string. */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "../event.h"
#include "driver.h"

#define POLL_MS 1 /* consumers without LISTEN look for new rows this often */

typedef struct pconn {
    PGconn  *c;
    PGconn  *ack;          /* consumers: the acks' connection */
    char     events[96], offsets[96], channel[96], group[32];
    int      listen;       /* consumers wait with LISTEN, not by polling */
    int      notify;       /* publishers: pg_notify in each insert */
    int      prepared_n;   /* batch size of the prepared insert, 0: none */
    int64_t  pos;          /* consumers: seq of the last event pulled */
    int64_t  acked;        /* consumers: position the last ack sent */
    int      ack_busy;     /* consumers: an ack's result is pending */
} pconn;

static PGconn *connect_target(const char *target)
{
    PGconn *c = PQconnectdb(target);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "pg: connect: %s", PQerrorMessage(c));
        PQfinish(c);
        return NULL;
    }
    return c;
}

static pconn *pconn_open(const drv_opts *o)
{
    pconn *p = calloc(1, sizeof *p);
    snprintf(p->events, sizeof p->events, "events_%s", o->run);
    snprintf(p->offsets, sizeof p->offsets, "offsets_%s", o->run);
    snprintf(p->channel, sizeof p->channel, "events_%s", o->run);
    const char *wake = getenv("BENCH_PG_WAKE");
    p->listen = wake && !strcmp(wake, "notify");
    p->notify = p->listen && !strcmp(o->workload, "latency");
    p->c = connect_target(o->target);
    if (!p->c) {
        free(p);
        return NULL;
    }
    return p;
}

static void pconn_close(pconn *p)
{
    PQfinish(p->c);
    if (p->ack)
        PQfinish(p->ack);
    free(p);
}

/* Checks a result (and frees it); prints the error. */
static int ok(PGconn *c, PGresult *r, const char *what)
{
    ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    int good = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    if (!good)
        fprintf(stderr, "pg: %s: %s", what, r ? PQresultErrorMessage(r) : PQerrorMessage(c));
    PQclear(r);
    return good ? 0 : -1;
}

static int exec(PGconn *c, const char *sql)
{
    return ok(c, PQexec(c, sql), sql);
}

static int p_prepare(const drv_opts *o)
{
    pconn *p = pconn_open(o);
    if (!p)
        return -1;
    char sql[1024];
    snprintf(sql, sizeof sql,
             "SET client_min_messages TO warning;"
             "DROP TABLE IF EXISTS %s; DROP TABLE IF EXISTS %s;"
             "CREATE TABLE %s (seq bigserial PRIMARY KEY, type text NOT NULL,"
             " body jsonb NOT NULL, created_at timestamptz NOT NULL DEFAULT now());"
             "CREATE TABLE %s (grp text PRIMARY KEY, seq bigint NOT NULL);",
             p->events, p->offsets, p->events, p->offsets);
    int rc = exec(p->c, sql);
    pconn_close(p);
    return rc;
}

static void *p_pub_open(const drv_opts *o)
{
    return pconn_open(o);
}

/* Prepares the insert of n rows as statement "ins". */
static int prepare_insert(pconn *p, int n)
{
    if (p->prepared_n == n)
        return 0;
    if (p->prepared_n && exec(p->c, "DEALLOCATE ins") != 0)
        return -1;
    size_t cap = 256 + (size_t)n * 32;
    char *sql = malloc(cap);
    int len = snprintf(sql, cap, "%sINSERT INTO %s (type, body) VALUES ",
                       p->notify ? "WITH ins AS (" : "", p->events);
    for (int i = 0; i < n; i++)
        len += snprintf(sql + len, cap - (size_t)len, "%s('order.created',$%d)", i ? "," : "",
                        i + 1);
    if (p->notify)
        snprintf(sql + len, cap - (size_t)len,
                 " RETURNING seq) SELECT pg_notify('%s', max(seq)::text) FROM ins", p->channel);
    int rc = ok(p->c, PQprepare(p->c, "ins", sql, n, NULL), "prepare insert");
    free(sql);
    p->prepared_n = rc == 0 ? n : 0;
    return rc;
}

static int p_publish(void *h, uint64_t first, int n)
{
    pconn *p = h;
    if (prepare_insert(p, n) != 0)
        return -1;
    char *bufs = malloc((size_t)n * 512);
    const char **vals = malloc((size_t)n * sizeof *vals);
    for (int i = 0; i < n; i++) {
        bench_event_json(bufs + (size_t)i * 512, 512, first + (uint64_t)i);
        vals[i] = bufs + (size_t)i * 512;
    }
    int rc = ok(p->c, PQexecPrepared(p->c, "ins", n, vals, NULL, NULL, 0), "insert");
    free(vals);
    free(bufs);
    return rc;
}

static void p_pub_close(void *h)
{
    pconn_close(h);
}

static int p_groups(const drv_opts *o, int n, int earliest)
{
    pconn *p = pconn_open(o);
    if (!p)
        return -1;
    int rc = 0;
    for (int g = 0; g < n && rc == 0; g++) {
        char sql[512];
        snprintf(sql, sizeof sql, "INSERT INTO %s SELECT 'g%d', %s FROM %s", p->offsets, g,
                 earliest ? "0 * count(*)" : "coalesce(max(seq), 0)", p->events);
        rc = exec(p->c, sql);
    }
    pconn_close(p);
    return rc;
}

/* Reads the group's position and prepares the consumer's statements. */
static int con_setup(pconn *p)
{
    char sql[512];
    snprintf(sql, sizeof sql, "LISTEN %s", p->channel);
    if (p->listen && exec(p->c, sql) != 0)
        return -1;
    snprintf(sql, sizeof sql, "SELECT seq, body::text FROM %s WHERE seq > $1 ORDER BY seq LIMIT $2",
             p->events);
    if (ok(p->c, PQprepare(p->c, "next", sql, 2, NULL), "prepare select") != 0)
        return -1;
    snprintf(sql, sizeof sql, "UPDATE %s SET seq = $1 WHERE grp = $2", p->offsets);
    if (ok(p->ack, PQprepare(p->ack, "ack", sql, 2, NULL), "prepare ack") != 0)
        return -1;
    snprintf(sql, sizeof sql, "SELECT seq FROM %s WHERE grp = $1", p->offsets);
    const char *args[] = {p->group};
    PGresult *r = PQexecParams(p->c, sql, 1, NULL, args, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        fprintf(stderr, "pg: group %s has no position\n", p->group);
        PQclear(r);
        return -1;
    }
    p->pos = p->acked = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return 0;
}

static void *p_con_open(const drv_opts *o, int g)
{
    pconn *p = pconn_open(o);
    if (!p)
        return NULL;
    snprintf(p->group, sizeof p->group, "g%d", g);
    p->ack = connect_target(o->target);
    if (!p->ack || con_setup(p) != 0) {
        pconn_close(p);
        return NULL;
    }
    return p;
}

/* Waits for the ack in flight, if any. */
static int ack_wait(pconn *p)
{
    if (!p->ack_busy)
        return 0;
    p->ack_busy = 0;
    int rc = 0;
    PGresult *r;
    while ((r = PQgetResult(p->ack)))
        rc |= ok(p->ack, r, "ack");
    return rc;
}

/* Sends the position of the last pull as the group's new position. */
static int ack_send(pconn *p)
{
    if (ack_wait(p) != 0)
        return -1;
    if (p->pos == p->acked)
        return 0;
    char pos[32];
    snprintf(pos, sizeof pos, "%lld", (long long)p->pos);
    const char *args[] = {pos, p->group};
    if (!PQsendQueryPrepared(p->ack, "ack", 2, args, NULL, NULL, 0)) {
        fprintf(stderr, "pg: ack: %s", PQerrorMessage(p->ack));
        return -1;
    }
    p->acked = p->pos;
    p->ack_busy = 1;
    return 0;
}

/* SELECTs the next rows; takes the gap-free run after pos. */
static int select_next(pconn *p, int max, uint64_t *nums)
{
    char pos[32], lim[16];
    snprintf(pos, sizeof pos, "%lld", (long long)p->pos);
    snprintf(lim, sizeof lim, "%d", max);
    const char *args[] = {pos, lim};
    PGresult *r = PQexecPrepared(p->c, "next", 2, args, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        return ok(p->c, r, "select");
    int n = 0, rows = PQntuples(r);
    for (int i = 0; i < rows; i++) {
        int64_t seq = strtoll(PQgetvalue(r, i, 0), NULL, 10);
        const char *body = PQgetvalue(r, i, 1);
        if (seq != p->pos + 1 ||
            bench_event_number(body, body + PQgetlength(r, i, 1), &nums[n]) != 0)
            break;
        p->pos = seq;
        n++;
    }
    PQclear(r);
    return n;
}

/* Waits up to wait_ms for a notification on the channel. */
static int wait_notify(pconn *p, int wait_ms)
{
    PGnotify *nt;
    int got = 0;
    if (!PQconsumeInput(p->c))
        return -1;
    while ((nt = PQnotifies(p->c))) {
        PQfreemem(nt);
        got = 1;
    }
    if (got)
        return 0;
    struct pollfd pfd = {.fd = PQsocket(p->c), .events = POLLIN};
    if (poll(&pfd, 1, wait_ms) > 0) {
        if (!PQconsumeInput(p->c))
            return -1;
        while ((nt = PQnotifies(p->c)))
            PQfreemem(nt);
    }
    return 0;
}

static int p_pull(void *h, int max, int wait_ms, uint64_t *nums)
{
    pconn *p = h;
    if (ack_send(p) != 0)
        return -1;
    int n = select_next(p, max, nums);
    if (n || wait_ms <= 0)
        return n;
    if (p->listen)
        return wait_notify(p, wait_ms) == 0 ? select_next(p, max, nums) : -1;
    uint64_t end = drv_now_ns() + (uint64_t)wait_ms * 1000000u;
    while (n == 0 && drv_now_ns() < end) {
        poll(NULL, 0, POLL_MS);
        n = select_next(p, max, nums);
    }
    return n;
}

static int p_con_close(void *h)
{
    pconn *p = h;
    int rc = ack_send(p) == 0 && ack_wait(p) == 0 ? 0 : -1;
    pconn_close(p);
    return rc;
}

static const peer_ops pg_ops = {
    .name = "postgresql", .prepare = p_prepare, .pub_open = p_pub_open, .publish = p_publish,
    .pub_close = p_pub_close, .groups = p_groups, .con_open = p_con_open, .pull = p_pull,
    .con_close = p_con_close};

int main(int argc, char **argv)
{
    return drv_main(&pg_ops, argc, argv);
}
