/* nats.c - bench/peers on NATS JetStream (libnats): a file-storage stream,
 * js_PublishAsync of a batch then js_PublishAsyncComplete (every message
 * acknowledged as stored), durable pull consumers with AckAll so acking the
 * last message of a pull acknowledges the batch. --target nats://HOST:PORT.
 *
 * A pull asks for up to `max` messages without waiting (no_wait); only when
 * none is ready does it wait for one. natsSubscription_Fetch would instead
 * hold a waiting request open until the whole batch or the timeout came,
 * which at 5,000 events/s would measure the batching, not the delivery. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nats/nats.h>

#include "../event.h"
#include "driver.h"

typedef struct nconn {
    natsConnection   *nc;
    jsCtx            *js;
    natsSubscription *sub;
    natsMsg          *last;        /* last message of the last pull, to ack */
    char              stream[96];
    char              subject[96];
    int               pub_errors;  /* failed asynchronous publishes */
} nconn;

static void report(const char *what, natsStatus s, jsErrCode jerr)
{
    const char *detail = nats_GetLastError(NULL);
    fprintf(stderr, "nats: %s: %s (js error %d)%s%s\n", what, natsStatus_GetText(s), (int)jerr,
            detail ? ": " : "", detail ? detail : "");
}

static void on_pub_error(jsCtx *js, jsPubAckErr *pae, void *closure)
{
    nconn *n = closure;
    (void)js;
    if (n->pub_errors++ < 3)
        fprintf(stderr, "nats: publish failed: %s\n", pae->ErrText ? pae->ErrText : "?");
}

static void nconn_close(nconn *n)
{
    if (n->last)
        natsMsg_Destroy(n->last);
    if (n->sub)
        natsSubscription_Destroy(n->sub);
    if (n->js)
        jsCtx_Destroy(n->js);
    if (n->nc)
        natsConnection_Destroy(n->nc);
    free(n);
}

static nconn *nconn_open(const drv_opts *o)
{
    nconn *n = calloc(1, sizeof *n);
    snprintf(n->stream, sizeof n->stream, "ORDERS_%s", o->run);
    snprintf(n->subject, sizeof n->subject, "orders.%s.created", o->run);
    natsStatus s = natsConnection_ConnectTo(&n->nc, o->target);
    if (s != NATS_OK) {
        report("connect", s, 0);
        nconn_close(n);
        return NULL;
    }
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.PublishAsync.ErrHandler = on_pub_error;
    jo.PublishAsync.ErrHandlerClosure = n;
    jo.Wait = 30000;
    s = natsConnection_JetStream(&n->js, n->nc, &jo);
    if (s != NATS_OK) {
        report("jetstream context", s, 0);
        nconn_close(n);
        return NULL;
    }
    return n;
}

static int n_prepare(const drv_opts *o)
{
    nconn *n = nconn_open(o);
    if (!n)
        return -1;
    jsErrCode jerr = 0;
    js_DeleteStream(n->js, n->stream, NULL, &jerr); /* absent on a fresh server */
    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    const char *subjects[] = {n->subject};
    cfg.Name = n->stream;
    cfg.Subjects = subjects;
    cfg.SubjectsLen = 1;
    cfg.Storage = js_FileStorage;
    jsStreamInfo *si = NULL;
    natsStatus s = js_AddStream(&si, n->js, &cfg, NULL, &jerr);
    if (s != NATS_OK)
        report("add stream", s, jerr);
    jsStreamInfo_Destroy(si);
    nconn_close(n);
    return s == NATS_OK ? 0 : -1;
}

static void *n_pub_open(const drv_opts *o)
{
    return nconn_open(o);
}

static int n_publish(void *h, uint64_t first, int count)
{
    nconn *n = h;
    char ev[512];
    for (int i = 0; i < count; i++) {
        size_t len = bench_event_json(ev, sizeof ev, first + (uint64_t)i);
        natsStatus s = js_PublishAsync(n->js, n->subject, ev, (int)len, NULL);
        if (s != NATS_OK) {
            report("publish", s, 0);
            return -1;
        }
    }
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = 30000;
    natsStatus s = js_PublishAsyncComplete(n->js, &po);
    if (s != NATS_OK) {
        report("publish complete", s, 0);
        return -1;
    }
    return n->pub_errors ? -1 : 0;
}

static void n_pub_close(void *h)
{
    nconn_close(h);
}

static int n_groups(const drv_opts *o, int count, int earliest)
{
    nconn *n = nconn_open(o);
    if (!n)
        return -1;
    int rc = 0;
    for (int g = 0; g < count && rc == 0; g++) {
        char name[32];
        snprintf(name, sizeof name, "g%d", g);
        jsConsumerConfig cc;
        jsConsumerConfig_Init(&cc);
        cc.Durable = name;
        cc.AckPolicy = js_AckAll;
        cc.DeliverPolicy = earliest ? js_DeliverAll : js_DeliverNew;
        jsConsumerInfo *ci = NULL;
        jsErrCode jerr = 0;
        natsStatus s = js_AddConsumer(&ci, n->js, n->stream, &cc, NULL, &jerr);
        if (s != NATS_OK) {
            report("add consumer", s, jerr);
            rc = -1;
        }
        jsConsumerInfo_Destroy(ci);
    }
    nconn_close(n);
    return rc;
}

static void *n_con_open(const drv_opts *o, int g)
{
    nconn *n = nconn_open(o);
    if (!n)
        return NULL;
    char name[32];
    snprintf(name, sizeof name, "g%d", g);
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = n->stream;
    so.Consumer = name;
    jsErrCode jerr = 0;
    natsStatus s = js_PullSubscribe(&n->sub, n->js, n->subject, name, NULL, &so, &jerr);
    if (s != NATS_OK) {
        report("pull subscribe", s, jerr);
        nconn_close(n);
        return NULL;
    }
    return n;
}

/* Acks (AckAll) through the last message of the previous pull. */
static int ack_last(nconn *n, int sync)
{
    if (!n->last)
        return 0;
    jsErrCode jerr = 0;
    natsStatus s = sync ? natsMsg_AckSync(n->last, NULL, &jerr) : natsMsg_Ack(n->last, NULL);
    natsMsg_Destroy(n->last);
    n->last = NULL;
    if (s != NATS_OK)
        report("ack", s, jerr);
    return s == NATS_OK ? 0 : -1;
}

/* One fetch request; NATS_NOT_FOUND / NATS_TIMEOUT mean no message. With
 * no_wait the server answers at once (what it has, or 404), but the client
 * still needs an expiry to wait for that answer: without one it gives up
 * before the answer arrives and requests pile up on the server. */
static natsStatus fetch(nconn *n, natsMsgList *list, int batch, int wait_ms, bool no_wait)
{
    jsFetchRequest fr;
    jsFetchRequest_Init(&fr);
    fr.Batch = batch;
    fr.NoWait = no_wait;
    fr.Expires = (int64_t)wait_ms * 1000000;
    return natsSubscription_FetchRequest(list, n->sub, &fr);
}

static int n_pull(void *h, int max, int wait_ms, uint64_t *nums)
{
    nconn *n = h;
    if (ack_last(n, 0) != 0)
        return -1;
    natsMsgList list = {0};
    natsStatus s = fetch(n, &list, max, 5000, true);
    if (s == NATS_NOT_FOUND || s == NATS_TIMEOUT)
        s = fetch(n, &list, 1, wait_ms > 0 ? wait_ms : 1, false);
    if (s == NATS_NOT_FOUND || s == NATS_TIMEOUT)
        return 0;
    if (s != NATS_OK) {
        report("fetch", s, 0);
        return -1;
    }
    int got = 0;
    for (int i = 0; i < list.Count; i++) {
        natsMsg *m = list.Msgs[i];
        const char *d = natsMsg_GetData(m);
        if (bench_event_number(d, d + natsMsg_GetDataLength(m), &nums[got]) == 0)
            got++;
    }
    if (list.Count > 0) {
        n->last = list.Msgs[list.Count - 1];
        list.Msgs[list.Count - 1] = NULL;
    }
    natsMsgList_Destroy(&list);
    return got;
}

static int n_con_close(void *h)
{
    nconn *n = h;
    int rc = ack_last(n, 1);
    nconn_close(n);
    return rc;
}

static const peer_ops nats_ops = {
    .name = "nats", .prepare = n_prepare, .pub_open = n_pub_open, .publish = n_publish,
    .pub_close = n_pub_close, .groups = n_groups, .con_open = n_con_open, .pull = n_pull,
    .con_close = n_con_close};

int main(int argc, char **argv)
{
    int rc = drv_main(&nats_ops, argc, argv);
    nats_Close();
    return rc;
}
