/* tls.h - TLS for the HTTP server: OpenSSL 3 driven through memory BIOs,
 * so the libuv loop keeps owning the socket (as h2o and Node do). The
 * handshake never blocks: bytes from the wire go in, plaintext and bytes
 * for the wire come out.
 *
 * A server context (eb_tls) holds the certificate chain, the key and, for
 * mutual TLS, the client CA; eb_tls_reload() re-reads them (SIGHUP) while
 * open connections keep the context they started with. TLS 1.2 and 1.3
 * only; TLS 1.2 with ECDHE and AEAD ciphers only; no renegotiation.
 *
 * Threading: the loop thread only. */
#ifndef EB_HTTP_TLS_H
#define EB_HTTP_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include "util/buf.h"

typedef struct eb_tls eb_tls;

typedef struct eb_tls_opts {
    const char *cert;      /* PEM: the certificate, then its chain */
    const char *key;       /* PEM: its private key */
    const char *client_ca; /* PEM: CAs a client certificate must chain to (mutual
                              TLS: a certificate is then required), or NULL */
} eb_tls_opts;

/* Loads the files (paths copied, re-read by eb_tls_reload). Returns 0, or
 * EB_EINVAL with a reason naming the file in err. *out owned by the caller
 * (eb_tls_free once no connection uses it: connections hold a reference to
 * the OpenSSL context they started with). */
int  eb_tls_new(const eb_tls_opts *o, eb_tls **out, char *err, size_t errlen);
/* Re-reads the files; on failure keeps the current context (err says
 * why). New connections use the new one; open ones are untouched. */
int  eb_tls_reload(eb_tls *t, char *err, size_t errlen);
void eb_tls_free(eb_tls *t);
/* Whether client certificates are required (--tls-client-ca). */
bool eb_tls_mutual(const eb_tls *t);

/* --- one connection (used by conn.c and answer.c) ------------------------------------- */

typedef struct eb__tls_conn eb__tls_conn;
typedef void (*eb__tls_plain_fn)(void *arg, const char *p, size_t n);

/* A server-side connection of t, or NULL (OpenSSL could not make one). */
eb__tls_conn *eb__tls_conn_new(eb_tls *t);
void eb__tls_conn_free(eb__tls_conn *c);
/* Takes n bytes from the wire: handshake progress, and plaintext handed to
 * fn (which may call eb__tls_conn_seal); what must go back on the wire is
 * appended to out. Returns 0, or EB_EPROTO when the session failed (send
 * out, an alert, then close). */
int  eb__tls_conn_feed(eb__tls_conn *c, const char *in, size_t n, eb__tls_plain_fn fn,
                       void *arg, eb_buf *out);
/* Encrypts n bytes of plaintext, appending the records (and anything else
 * pending for the wire, in order) to out. 0 or EB_EPROTO. */
int  eb__tls_conn_seal(eb__tls_conn *c, const char *p, size_t n, eb_buf *out);
/* The verified client certificate's subject CN into buf (NUL-terminated);
 * false if there is none (or it is longer than cap - 1). */
bool eb__tls_conn_peer_cn(eb__tls_conn *c, char *buf, size_t cap);

#endif
