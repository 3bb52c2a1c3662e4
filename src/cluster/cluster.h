/* cluster.h - several eventbusd nodes on one PostgreSQL database: this
 * node's role (leader or follower), and on a follower the forwarding of
 * every request to the leader (see ARCHITECTURE.md, "Several nodes on one
 * database", and docs/high-availability.md).
 *
 * The leader is the one node whose bus exists; a follower has no bus: it
 * answers GET /v1/cluster and GET /healthz itself and relays everything
 * else to the leader's advertised URL (libcurl multi on the libuv loop),
 * answering 503 no_leader (Retry-After: 1) while no leader is known or
 * reachable. When a follower takes the leader lock, on_leader runs on the
 * loop: the daemon opens its bus there and from then on answers locally.
 *
 * Threading: the loop thread, except the leadership thread of
 * store_pg_lead.c behind it. */
#ifndef EB_CLUSTER_H
#define EB_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "http/http.h"

typedef struct eb_cluster eb_cluster;

typedef struct eb_cluster_opts {
    const char *uri;           /* the database (libpq URI) */
    const char *advertise_url; /* this node's URL for the others, "http://host:port" */
    uint32_t    timeout_ms;    /* a forwarded request's whole time, long polls too (past it 503) */
    size_t      max_answer;    /* a forwarded answer's bound: past it 502 */
    size_t      max_buffered;  /* the answer bytes all forwards may hold at once: past it 503 */
    uint32_t    max_forwards;  /* forwarded requests in flight: past it 503 */
    /* On the loop when this node became the leader: opens the bus; nonzero
     * (e.g. the old leader's writer still holds a lock) is retried 200 ms
     * later. */
    int       (*on_leader)(void *arg);
    void       *arg;
} eb_cluster_opts;

/* Tries to lead at once (synchronously: a node that can lead calls
 * on_leader before serving), then follows the leadership; *out is the
 * caller's. 0 or an error. */
int  eb_cluster_open(uv_loop_t *loop, const eb_cluster_opts *o, eb_cluster **out);
/* True once this node leads and its bus is open (on_leader returned 0). */
bool eb_cluster_serving(const eb_cluster *c);
/* Answers req when it is the cluster's to answer (GET /v1/cluster and
 * /v1/cluster/leader, or any request while this node is not serving): 1;
 * else 0 (the API's). A request relayed to the leader gets its answer
 * with "Eventbus-Leader: <the leader's URL>" added (forward.c), so clients
 * given several URLs talk to the leader next. */
int  eb_cluster_handle(eb_cluster *c, eb_http_req *req);
/* Stops: forwards in flight answer 503, the leadership thread ends (and
 * the leader lock with its connection). Handles close on the loop; then
 * eb_cluster_free. */
void eb_cluster_close(eb_cluster *c);
void eb_cluster_free(eb_cluster *c);

/* --- forwarding (forward.c), the cluster's own ----------------------------- */
typedef struct eb_fwd eb_fwd;
/* timeout_ms, max_answer, max_buffered, max: as in eb_cluster_opts
 * (max = max_forwards). */
int  eb__fwd_open(uv_loop_t *loop, uint32_t timeout_ms, size_t max_answer, size_t max_buffered,
                  uint32_t max, eb_fwd **out);
/* Relays req to base (the leader's URL) and answers it with what comes
 * back; 503 no_leader when the leader cannot be reached. */
void eb__fwd_start(eb_fwd *f, const char *base, uint64_t epoch, eb_http_req *req);
uint64_t eb__fwd_count(const eb_fwd *f);
/* The answer bytes held now, and the most ever held at once (<= max_buffered). */
void eb__fwd_held(const eb_fwd *f, uint64_t *now, uint64_t *peak);
void eb__fwd_close(eb_fwd *f);
/* An error answer: {"error":{"code","message","details":[]}} (Retry-After
 * 1 with a 503). */
void eb__cluster_error(eb_http_req *req, int status, const char *code, const char *msg);

#endif
