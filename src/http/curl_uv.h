/* curl_uv.h - one libcurl multi handle driven by a libuv loop (libcurl's
 * multi-uv pattern: a uv_poll_t per socket from CURLMOPT_SOCKETFUNCTION,
 * one uv_timer_t from CURLMOPT_TIMERFUNCTION, curl_multi_socket_action on
 * each event). The outgoing HTTP of push delivery (src/push/http_out.c)
 * and of a follower's forwarding (src/cluster/forward.c).
 *
 * Threading: the loop thread only. */
#ifndef EB_CURL_UV_H
#define EB_CURL_UV_H

#include <curl/curl.h>
#include <uv.h>

typedef struct eb_curl_uv eb_curl_uv;

/* An easy handle's transfer ended with res; it is already out of the
 * multi, and the callee's again (it may free or reuse it). */
typedef void (*eb_curl_uv_done_fn)(void *arg, CURL *easy, CURLcode res);

/* A multi handle on loop (curl_global_init done here); *out is the
 * caller's (eb_curl_uv_close). 0 or EB_EIO. */
int    eb_curl_uv_open(uv_loop_t *loop, eb_curl_uv_done_fn done, void *arg, eb_curl_uv **out);
/* The multi handle, for its options and curl_multi_add_handle (borrowed). */
CURLM *eb_curl_uv_multi(eb_curl_uv *c);
/* Cleans the multi up (the transfers still in it are the caller's to
 * have removed first; its cached connections close) and closes the loop
 * handles; once the last one closed, closed(arg) runs (if not NULL) and c
 * is freed. The loop must run on. */
void   eb_curl_uv_close(eb_curl_uv *c, void (*closed)(void *arg), void *arg);

/* Sets what every easy handle added to c's multi must have
 * (CURLOPT_SOCKOPTFUNCTION, CURLOPT_CLOSESOCKETFUNCTION and their data):
 * its connections' sockets close-on-exec (a daemon that re-executes
 * itself keeps none of them), and closed through c, so that a socket's
 * poll, kept between the transfers of a kept-alive connection, goes
 * before its fd can be reused. */
void   eb_curl_uv_easy(eb_curl_uv *c, CURL *e);

#endif
