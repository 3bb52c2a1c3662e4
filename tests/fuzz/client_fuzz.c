/* client_fuzz.c - fuzz target for what libeventbus reads from the network:
 * the HTTP answer reader of lib/httpc.c (http_parser and its callbacks:
 * status, Content-Length, chunked and read-until-close bodies, interim 1xx
 * answers, the keep-alive decision) and the readers that turn an answer's
 * JSON into the typed results and event lists of the public API (lib/),
 * error bodies and their details included.
 *
 * Input: a call byte, then the bytes "the server" sends. The call byte's
 * low 7 bits choose the call; with its top bit set the next byte is a
 * read size (1 to 256) and the answer comes in pieces of that size, each
 * read on its own (a writer thread sends a piece once the one before was
 * read), so headers, the Eventbus-Leader value among them, and bodies
 * are cut at every place a network could cut them. One client (made
 * once) has a list of five URLs of different shapes (LEADER_URLS: a
 * prefix, no scheme, IPv6, an upper-case host, https), all on local
 * ports that refuse at once; for each input the first one gets a
 * connected socket pair in place of its connection: the answer bytes are
 * written into the other end, which is then shut for writing (end of
 * stream after them), and the call the byte chooses (eb_request,
 * publish, publish_batch, events get/browse, pull, dlq_list, schemas
 * register/check/list/get, groups put/list/get/history, ack,
 * dlq_redrive, replay, stats) is made. The request itself is written
 * into the socket and never read. When no answer byte came (or the
 * answer is a 503), the client tries a fresh connection and the other
 * URLs, which are refused at once. An answer naming a leader
 * (Eventbus-Leader, any URL) goes through follow_leader, which may make
 * another URL of the list the current one; the next input starts at the
 * first again.
 * Properties: never crash, leak or hang; the call returns 0 or one of the
 * library's error codes; 0 only with a 2xx status; the last error's strings
 * are never NULL and its details are as many as it says, each with a
 * message; every call sends its request unless it fails; the answer body
 * the client keeps is NUL-terminated and, once the request was sent, no
 * longer than what the server sent; every string of every event returned is readable to
 * its NUL (ASan checks the bytes) and data/json are as long as they say;
 * the leader kept is the one an oracle finds (the answer parsed again
 * whole, each header kept as a pair: the final answer's last
 * Eventbus-Leader, a 1xx's not counted), NUL-terminated inside its buffer; the client
 * moves to another URL of its list only after a non-503 answer that named
 * a leader by a URL with a scheme. */
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../../lib/client.h"
#include "eventbus.h"
#include "fuzz.h"

/* Every shape parse_url takes; the seeds name each as a leader in
 * another spelling (a trailing slash, the default port written, the host
 * in other case). */
#define LEADER_URLS                                                                          \
    "http://127.0.0.1:1, 127.0.0.1:2/p/, http://[::1]:3/a/b, http://LocalHost:4, "           \
    "https://127.0.0.1:5"

static eb_client *client;

static void make_client(void)
{
    eb_client_opts o = {.size = sizeof o, .url = LEADER_URLS, .token = "",
                        .cafile = "", .timeout_ms = 5000, .connect_timeout_ms = 1000};
    FUZZ_CHECK(eb_client_new(&o, &client) == 0);
}

static size_t touch(const char *s)
{
    return s ? strlen(s) : 0;
}

/* Reads every string of every event (ASan sees a bad one). */
static void walk_events(eb_events *l)
{
    if (!l)
        return;
    size_t n = eb_events_count(l);
    for (size_t i = 0; i < n; i++) {
        const eb_event *e = eb_events_at(l, i);
        FUZZ_CHECK(e);
        size_t sum = touch(e->id) + touch(e->type) + touch(e->source) + touch(e->key) +
                     touch(e->subject) + touch(e->correlation_id) + touch(e->causation_id) +
                     touch(e->time) + touch(e->delivery_id) + touch(e->deadline) +
                     touch(e->error) + touch(e->consumer) + touch(e->failed_at) +
                     touch(e->first_failed_at) + touch(e->deliver_at);
        (void)sum;
        FUZZ_CHECK(!e->data || strlen(e->data) <= e->data_len);
        FUZZ_CHECK(!e->json || strlen(e->json) <= e->json_len);
        for (size_t k = 0; k < e->nerrors; k++) {
            FUZZ_CHECK(e->errors[k]);
            touch(e->errors[k]->at);
            touch(e->errors[k]->consumer);
            touch(e->errors[k]->error);
        }
        char buf[64];
        double d;
        (void)eb_data_string(e, "/a", buf, sizeof buf);
        (void)eb_data_number(e, "", &d);
    }
    FUZZ_CHECK(eb_events_at(l, n) == NULL);
    touch(eb_events_next(l));
    touch(eb_events_json(l));
    eb_events_free(l);
}

/* Makes call `which`; returns its code. */
static int call(eb_client *c, unsigned which)
{
    static const char *const ids[] = {"d1", "d2"};
    int rc = 0;
    eb_events *ev = NULL;
    void *res = NULL;
    switch (which % 19) {
    case 0: {
        int status = 0;
        char *answer = NULL;
        rc = eb_request(c, "GET", "/v1/stats", NULL, 0, &status, &answer);
        touch(answer);
        eb_free(answer);
        break;
    }
    case 1: {
        eb_publish_result r = {.size = sizeof r};
        rc = eb_publish(c, "t.x", "{\"a\":1}", NULL, &r);
        FUZZ_CHECK(memchr(r.id, 0, sizeof r.id) && memchr(r.time, 0, sizeof r.time) &&
                   memchr(r.deliver_at, 0, sizeof r.deliver_at));
        break;
    }
    case 2: {
        eb_message m1 = {.size = sizeof m1, .type = "t.x", .data = "1"};
        eb_message m2 = {.size = sizeof m2, .type = "t.y", .data = NULL};
        const eb_message *const msgs[] = {&m1, &m2};
        eb_receipts *r = NULL;
        rc = eb_publish_batch(c, msgs, 2, &r);
        if (r)
            for (size_t i = 0; i < r->n; i++)
                FUZZ_CHECK(r->results[i] && memchr(r->results[i]->id, 0, sizeof r->results[i]->id));
        res = r;
        break;
    }
    case 3: rc = eb_events_get(c, "id1", &ev); break;
    case 4: rc = eb_events_browse(c, NULL, &ev); break;
    case 5: rc = eb_pull(c, "g", "c", 10, 0, &ev); break;
    case 6: rc = eb_dlq_list(c, "g", 10, NULL, &ev); break;
    case 7: {
        eb_schemas_result r = {.size = sizeof r};
        rc = eb_schemas_register(c, "t.x", "{}", NULL, &r);
        FUZZ_CHECK(memchr(r.compatibility, 0, sizeof r.compatibility));
        break;
    }
    case 8: {
        eb_schemas_verdict *v = NULL;
        rc = eb_schemas_check(c, "t.x", "{}", "full", &v);
        res = v;
        break;
    }
    case 9: {
        eb_schemas_registry *r = NULL;
        rc = eb_schemas_list(c, &r);
        res = r;
        break;
    }
    case 10: {
        eb_schemas_type *t = NULL;
        rc = eb_schemas_get(c, "t.x", 0, &t);
        res = t;
        break;
    }
    case 11: {
        static const char *const types[] = {"t.x"};
        eb_groups_config cfg = {.size = sizeof cfg, .types = types, .ntypes = 1};
        bool created = false;
        eb_groups_info *g = NULL;
        rc = eb_groups_put(c, "g", &cfg, &created, &g);
        res = g;
        break;
    }
    case 12: {
        eb_groups_all *a = NULL;
        rc = eb_groups_list(c, &a);
        if (a)
            for (size_t i = 0; i < a->n; i++)
                FUZZ_CHECK(a->groups[i]);
        res = a;
        break;
    }
    case 13: {
        eb_groups_info *g = NULL;
        rc = eb_groups_get(c, "g", &g);
        res = g;
        break;
    }
    case 14: {
        eb_groups_samples *s = NULL;
        rc = eb_groups_history(c, "g", &s);
        res = s;
        break;
    }
    case 15: {
        eb_settle_result r = {.size = sizeof r};
        rc = eb_ack(c, "g", ids, 2, &r);
        break;
    }
    case 16: {
        uint64_t n = 0;
        rc = eb_dlq_redrive(c, "g", ids, 2, &n);
        break;
    }
    case 17: {
        uint64_t a = 0, b = 0;
        eb_replay_opts o = {.size = sizeof o, .since_seq = 1};
        rc = eb_replay(c, "g", &o, &a, &b);
        break;
    }
    default: {
        eb_stats_info *s = NULL;
        rc = eb_stats(c, &s);
        res = s;
        break;
    }
    }
    walk_events(ev);
    eb_result_free(res);
    return rc;
}

/* The oracle for the leader: the answer parsed again, whole, keeping every
 * header of the final (non-1xx) answer as a name and value pair; the leader
 * is the value of its last Eventbus-Leader, "" when none, or when too long
 * for the client's buffer. */
typedef struct hdrs {
    eb_buf name, value; /* the pair being read */
    int    in;          /* 0 none, 1 name, 2 value */
    char   leader[sizeof ((eb__http *)0)->leader];
    bool   done;
} hdrs;

static void hdrs_pair(hdrs *o)
{
    if (o->in == 2 && o->name.len == 15 && !strncasecmp(o->name.data, "eventbus-leader", 15)) {
        o->leader[0] = '\0';
        if (o->value.len < sizeof o->leader)
            snprintf(o->leader, sizeof o->leader, "%.*s", (int)o->value.len,
                     o->value.len ? o->value.data : "");
    }
    eb_buf_reset(&o->name);
    eb_buf_reset(&o->value);
    o->in = 0;
}

static int o_field(http_parser *p, const char *at, size_t len)
{
    hdrs *o = p->data;
    if (o->in == 2)
        hdrs_pair(o);
    o->in = 1;
    eb_buf_append(&o->name, at, len);
    return 0;
}

static int o_value(http_parser *p, const char *at, size_t len)
{
    hdrs *o = p->data;
    o->in = 2;
    eb_buf_append(&o->value, at, len);
    return 0;
}

static int o_headers(http_parser *p)
{
    hdrs_pair(p->data);
    return 0;
}

static int o_complete(http_parser *p)
{
    hdrs *o = p->data;
    if (p->status_code < 200) {
        o->leader[0] = '\0';
        return 0;
    }
    o->done = true;
    http_parser_pause(p, 1);
    return 0;
}

/* The leader of the answer in a (n bytes, then the end of the stream), or
 * NULL when the oracle finds no complete answer. */
static const char *oracle_leader(const uint8_t *a, size_t n, hdrs *o)
{
    static const http_parser_settings st = {.on_header_field = o_field,
                                            .on_header_value = o_value,
                                            .on_headers_complete = o_headers,
                                            .on_message_complete = o_complete};
    http_parser p;
    http_parser_init(&p, HTTP_RESPONSE);
    p.data = o;
    http_parser_execute(&p, &st, (const char *)a, n);
    if (!o->done && HTTP_PARSER_ERRNO(&p) == HPE_OK)
        http_parser_execute(&p, &st, NULL, 0);
    return o->done ? o->leader : NULL;
}

/* The writer of a piecewise answer: sends a piece, waits until the client
 * has read it (nothing left in its socket), sends the next; stops early
 * when the call is over (the client stops reading once it has an answer). */
typedef struct pieces {
    int            fd, peer;  /* the end written; a dup of the client's end (the
                                 client may close its own meanwhile) */
    const uint8_t *p;
    size_t         n, piece;
    atomic_bool    over;
} pieces;

static void *write_pieces(void *arg)
{
    pieces *w = arg;
    for (size_t at = 0; at < w->n && !atomic_load(&w->over);) {
        size_t k = w->n - at < w->piece ? w->n - at : w->piece;
        ssize_t r = write(w->fd, w->p + at, k);
        FUZZ_CHECK(r > 0);
        at += (size_t)r;
        for (int left = 1; left > 0 && !atomic_load(&w->over);) {
            if (ioctl(w->peer, FIONREAD, &left) != 0)
                left = 0;
            if (left > 0)
                nanosleep(&(struct timespec){.tv_nsec = 20000}, NULL);
        }
    }
    FUZZ_CHECK(shutdown(w->fd, SHUT_WR) == 0);
    return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!client)
        make_client();
    if (size < 1 || size > 65536)
        return 0;
    bool split = data[0] & 0x80;
    if (split && size < 2)
        return 0;
    const uint8_t *ans = data + 1 + split;
    size_t n = size - 1 - split;
    int sv[2];
    FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    FUZZ_CHECK(fcntl(sv[0], F_SETFL, O_NONBLOCK) == 0);
    /* room for the whole answer and the request, so nothing waits */
    int big = 1 << 20;
    setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    pieces w = {.fd = sv[1], .peer = -1, .p = ans, .n = n};
    pthread_t writer;
    if (split) {
        w.peer = dup(sv[0]);
        w.piece = (size_t)data[1] + 1;
        FUZZ_CHECK(w.peer >= 0);
        FUZZ_CHECK(pthread_create(&writer, NULL, write_pieces, &w) == 0);
    } else {
        for (size_t at = 0; at < n;) {
            ssize_t r = write(sv[1], ans + at, n - at);
            FUZZ_CHECK(r > 0);
            at += (size_t)r;
        }
        FUZZ_CHECK(shutdown(sv[1], SHUT_WR) == 0);
    }
    eb__http *h = &client->targets[0].http;
    eb__http_close(h); /* anything the last input left */
    h->fd = sv[0];     /* owned by h from here */
    client->cur = 0;   /* the last input may have followed a leader */
    int rc = call(client, data[0] & 0x7f);
    if (split) {
        atomic_store(&w.over, true);
        FUZZ_CHECK(pthread_join(writer, NULL) == 0);
        close(w.peer);
    }
    FUZZ_CHECK(rc == 0 || (rc <= EB_ENOMEM && rc >= EB_EDENIED));
    const eb_error *e = eb_client_error(client);
    FUZZ_CHECK(e && e->code == rc && e->server_code && e->message && e->details);
    if (rc == 0)
        FUZZ_CHECK(e->http_status >= 200 && e->http_status <= 299);
    for (size_t i = 0; i < e->ndetails; i++)
        FUZZ_CHECK(e->detail[i] && e->detail[i]->message);
    touch(e->server_code);
    touch(e->message);
    touch(e->details);
    /* the leader is kept whole or not at all; followed only when named */
    FUZZ_CHECK(memchr(h->leader, 0, sizeof h->leader));
    FUZZ_CHECK(client->cur < client->ntargets);
    if (client->cur != 0)
        FUZZ_CHECK(h->status != 503 && strstr(h->leader, "://"));
    if (h->status >= 200) { /* this input's answer was read whole */
        hdrs o = {.in = 0};
        eb_buf_init(&o.name);
        eb_buf_init(&o.value);
        const char *want = oracle_leader(ans, n, &o);
        FUZZ_CHECK(want && !strcmp(want, h->leader));
        eb_buf_free(&o.name);
        eb_buf_free(&o.value);
    }
    /* a call that sent its request keeps this input's answer (one that
     * failed before sending keeps the last one) */
    char peek;
    bool sent = recv(sv[1], &peek, 1, MSG_PEEK | MSG_DONTWAIT) == 1;
    size_t alen = 0;
    const char *a = eb_client_answer(client, &alen);
    FUZZ_CHECK(a && strlen(a) <= alen && (!sent || alen <= n));
    FUZZ_CHECK(sent || rc); /* every call sends unless it fails */
    close(sv[1]);
    return 0;
}
