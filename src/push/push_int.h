/* push_int.h - the insides of the push module, shared by its files:
 * push.c (pushed groups, leasing, settling, the circuit breaker),
 * http_out.c (libcurl multi on the libuv loop, the SSRF guard) and
 * sign.c (bodies and Standard Webhooks signatures). */
#ifndef EB_PUSH_INT_H
#define EB_PUSH_INT_H

#include <curl/curl.h>

#include "push/push.h"
#include "util/buf.h"
#include "util/hist.h"
#include "util/map.h"

typedef struct pgroup pgroup;

/* Easy handles kept for the next POSTs (curl_easy_reset, not re-made). */
#define EB_PUSH_IDLE_EASY 256

/* One endpoint (a URL's scheme://host:port) and its circuit. */
typedef struct endpoint {
    char       *origin;
    int         refs;          /* pgroups and requests using it */
    eb_circuit  state;
    uint32_t    failures;      /* consecutive */
    uint64_t    next_probe_us; /* open: when half-open may probe */
    uint32_t    backoff_ms;    /* the next open period (1 s doubling to 5 min) */
    uint64_t    hold_until_us; /* Retry-After */
    uint64_t    opened;        /* times opened */
    bool        probing;       /* half-open: its probe is in flight */
    uv_timer_t  timer;         /* wakes its groups at next_probe / hold_until */
    eb_push    *push;
} endpoint;

/* The part of a group's push config a request needs (copied: the group's
 * config may change while a POST is in flight). */
typedef struct pconf {
    char              *url;
    eb_buf             key, prev_key; /* HMAC keys (prev_key.len 0: none) */
    uint64_t           prev_until_us;
    struct curl_slist *headers;       /* the config's own */
    uint32_t           timeout_ms, max_in_flight, batch, circuit_failures;
    eb_push_format     format;
    int                refs;
} pconf;

struct pgroup {
    char      *name;
    size_t     nlen;
    eb_push   *push;
    pconf     *conf;
    endpoint  *ep;
    uint32_t   in_flight;   /* events being POSTed */
    int        refs;        /* the table, a pull in progress, requests */
    bool       gone;        /* no longer pushed (deleted, or "push" removed) */
    bool       pulling;     /* a pull is in progress (maybe parked) */
    bool       probe_pull;  /* it is the half-open probe's (max 1) */
    bool       in_call;     /* inside eb_bus_pull: an empty answer now is flow control */
    uint32_t   ack_timeout_ms;
    uv_timer_t retry;       /* re-pull after an immediate empty answer */
    bool       retry_armed;
    eb_push_state st;       /* counters and last error for the views */
    char       last_error[EB_PUSH_ERROR_EXCERPT + 64];
    eb_hist    latency;
};

/* One POST of one or more events of a group. */
typedef struct request {
    eb_push    *push;
    pgroup     *g;
    endpoint   *ep;
    CURL       *easy;
    struct curl_slist *headers;
    eb_buf      body;
    eb_buf      answer;     /* up to EB_PUSH_BODY_MAX */
    bool        cut;        /* the answer was longer */
    bool        refused;    /* the SSRF guard refused the address */
    bool        probe;
    char        refused_ip[64];
    char        errbuf[CURL_ERROR_SIZE];
    size_t      n;          /* events */
    char      (*ids)[48];   /* their delivery ids */
    uint64_t    start_us;
    uint32_t    timeout_ms;
    struct request *next, *prev; /* the module's list of requests in flight */
} request;

struct eb_push {
    uv_loop_t   *loop;
    eb_bus      *bus;
    eb_push_opts opts;
    char        *ca_file;
    struct eb_curl_uv *curl;  /* the multi on the loop (http/curl_uv.h) */
    CURLM       *multi;       /* its multi handle */
    uv_timer_t   sync_timer;  /* reconcile after a group change */
    eb_map       groups;      /* name -> pgroup */
    eb_map       endpoints;   /* origin -> endpoint */
    eb_map       changed;     /* names of groups changed since the last sync */
    bool         full_sync;   /* the next sync looks at every group (at open) */
    bool         closing;
    int          handles;     /* open loop handles: freed at 0 once closing */
    size_t       requests;    /* in flight */
    request     *reqs;        /* their list */
    CURL        *idle[EB_PUSH_IDLE_EASY]; /* easy handles kept for reuse (reset) */
    size_t       nidle;
};

/* push.c */
uint64_t eb__push_now_us(void);
/* A Retry-After value (RFC 9110 10.2.3: delta-seconds or an HTTP-date,
 * surrounding blanks allowed) as the delay in ms from now_us: 0 for a date
 * in the past or "0", at most one hour; -1 when v is NULL or neither form
 * (a sign, a fraction, text, a date without a time): the caller then uses
 * the group's backoff. Dates are read by curl_getdate (IMF-fixdate, the
 * obsolete RFC 850 and asctime forms too). */
int64_t eb__push_retry_after_ms(const char *v, uint64_t now_us);
/* A request finished: status is the HTTP status (0: none), cerr the curl
 * result. Settles its events and frees it. */
void eb__push_done(request *r, long status, CURLcode cerr, const char *retry_after);
/* The nack's error for an answer (status, r->answer) or a transport failure
 * (status 0: cerr, r->errbuf), into out (cap bytes, NUL-terminated, control
 * bytes of the answer shown as spaces). (Also run by the push fuzz target.) */
void eb__push_describe(const request *r, long status, CURLcode cerr, char *out, size_t cap);
/* One of p's loop handles closed: p is freed when it was the last one
 * and p is closing. */
void eb__push_handle_gone(eb_push *p);

/* http_out.c */
int  eb__http_out_open(eb_push *p);
void eb__http_out_close(eb_push *p);
/* Starts r (its body, headers and ids made): 0 or EB_ENOMEM. */
int  eb__http_out_start(request *r, const char *url, const char *ca_file);
/* A request's teardown (its curl handle back to the pool, buffers). */
void eb__request_free(request *r);
/* Frees the pooled easy handles. */
void eb__http_out_drain(eb_push *p);
/* The origin of url ("https://host:port") into out; 0 or EB_EINVAL. */
int  eb__url_origin(const char *url, eb_buf *out);
/* Whether an address may be connected to (the SSRF guard's rule). */
bool eb__addr_public(const struct sockaddr *sa);

/* sign.c */
/* Appends the body of dl[0..n) in the group's format. 0 or EB_ECORRUPT. */
int  eb__push_body(eb_buf *out, const pconf *c, const eb_delivery *dl, size_t n,
                   eb_json_doc *doc);
/* The webhook-signature value for (id, ts, body): "v1,<b64>" for the
 * key and, while prev_until_us > now, " v1,<b64>" for the previous. */
void eb__push_signature(eb_buf *out, const pconf *c, const char *id, uint64_t ts_s,
                        const char *body, size_t len, uint64_t now_us);
/* HMAC-SHA256 of msg with key, base64, appended to out. */
void eb__push_hmac_b64(eb_buf *out, const eb_buf *key, const char *msg, size_t len);

#endif
