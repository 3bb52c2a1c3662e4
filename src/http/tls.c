/* tls.c - TLS for the HTTP server through memory BIOs (see tls.h).
 *
 * Each connection has an SSL object whose read BIO receives the bytes the
 * socket delivered and whose write BIO collects what must be sent; http.c
 * moves bytes between the socket and these BIOs, so nothing here touches a
 * file descriptor or blocks. The handshake is driven by SSL_read: it
 * progresses as bytes arrive. */
#include "http/tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eventbus/err.h"
#include "util/xmalloc.h"

/* TLS 1.2: forward secrecy and AEAD only. TLS 1.3 keeps OpenSSL's suites
 * (AES-GCM, ChaCha20-Poly1305). */
#define TLS12_CIPHERS                                                                   \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                         \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                         \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

struct eb_tls {
    SSL_CTX *ctx;       /* the current context (connections hold their own ref) */
    char    *cert, *key, *client_ca;
};

struct eb__tls_conn {
    SSL *ssl;
    BIO *rbio;          /* from the wire (owned by ssl) */
    BIO *wbio;          /* to the wire (owned by ssl) */
};

/* The first OpenSSL error queued, as text, and the queue cleared. */
static void ssl_reason(char *err, size_t errlen, const char *what, const char *file)
{
    unsigned long e = ERR_get_error();
    char buf[256] = "unknown error";
    if (e)
        ERR_error_string_n(e, buf, sizeof buf);
    ERR_clear_error();
    snprintf(err, errlen, "%s %s: %s", what, file, buf);
}

static SSL_CTX *make_ctx(const eb_tls *t, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        ssl_reason(err, errlen, "cannot create a TLS context", "");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                 SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS);
    static const unsigned char sid[] = "eventbusd";
    SSL_CTX_set_session_id_context(ctx, sid, sizeof sid - 1);
    if (SSL_CTX_use_certificate_chain_file(ctx, t->cert) != 1) {
        ssl_reason(err, errlen, "cannot load the certificate", t->cert);
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, t->key, SSL_FILETYPE_PEM) != 1) {
        ssl_reason(err, errlen, "cannot load the key", t->key);
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        ssl_reason(err, errlen, "the key does not match the certificate", t->key);
        goto fail;
    }
    if (t->client_ca) {
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(t->client_ca);
        if (!names || SSL_CTX_load_verify_locations(ctx, t->client_ca, NULL) != 1) {
            sk_X509_NAME_pop_free(names, X509_NAME_free);
            ssl_reason(err, errlen, "cannot load the client CA", t->client_ca);
            goto fail;
        }
        SSL_CTX_set_client_CA_list(ctx, names);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    }
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

int eb_tls_new(const eb_tls_opts *o, eb_tls **out, char *err, size_t errlen)
{
    eb_tls *t = eb_xcalloc(1, sizeof *t);
    t->cert = eb_xstrdup(o->cert);
    t->key = eb_xstrdup(o->key);
    t->client_ca = o->client_ca ? eb_xstrdup(o->client_ca) : NULL;
    if (!(t->ctx = make_ctx(t, err, errlen))) {
        eb_tls_free(t);
        return EB_EINVAL;
    }
    *out = t;
    return 0;
}

int eb_tls_reload(eb_tls *t, char *err, size_t errlen)
{
    SSL_CTX *ctx = make_ctx(t, err, errlen);
    if (!ctx)
        return EB_EINVAL;
    SSL_CTX_free(t->ctx); /* connections made with it keep their reference */
    t->ctx = ctx;
    return 0;
}

void eb_tls_free(eb_tls *t)
{
    if (!t)
        return;
    SSL_CTX_free(t->ctx);
    free(t->cert);
    free(t->key);
    free(t->client_ca);
    free(t);
}

bool eb_tls_mutual(const eb_tls *t)
{
    return t->client_ca != NULL;
}

/* --- connections ----------------------------------------------------------- */

eb__tls_conn *eb__tls_conn_new(eb_tls *t)
{
    eb__tls_conn *c = eb_xcalloc(1, sizeof *c);
    c->ssl = SSL_new(t->ctx);
    c->rbio = BIO_new(BIO_s_mem());
    c->wbio = BIO_new(BIO_s_mem());
    if (!c->ssl || !c->rbio || !c->wbio) {
        BIO_free(c->rbio);
        BIO_free(c->wbio);
        SSL_free(c->ssl);
        free(c);
        return NULL;
    }
    BIO_set_mem_eof_return(c->rbio, -1); /* empty: "want more", not EOF */
    SSL_set_bio(c->ssl, c->rbio, c->wbio);
    SSL_set_accept_state(c->ssl);
    return c;
}

void eb__tls_conn_free(eb__tls_conn *c)
{
    if (!c)
        return;
    SSL_free(c->ssl); /* frees both BIOs */
    free(c);
}

/* Moves everything the write BIO holds to out. */
static int drain(eb__tls_conn *c, eb_buf *out)
{
    char *p;
    long n = BIO_get_mem_data(c->wbio, &p);
    if (n > 0) {
        eb_buf_append(out, p, (size_t)n);
        (void)BIO_reset(c->wbio);
    }
    return eb_buf_failed(out) ? EB_ENOMEM : 0;
}

int eb__tls_conn_feed(eb__tls_conn *c, const char *in, size_t n, eb__tls_plain_fn fn,
                      void *arg, eb_buf *out)
{
    while (n) {
        int w = BIO_write(c->rbio, in, n > 0x40000000 ? 0x40000000 : (int)n);
        if (w <= 0)
            return EB_ENOMEM;
        in += w;
        n -= (size_t)w;
    }
    char buf[16384];
    for (;;) {
        int r = SSL_read(c->ssl, buf, sizeof buf);
        if (r > 0) {
            if (drain(c, out)) /* records that go before what fn answers */
                return EB_ENOMEM;
            fn(arg, buf, (size_t)r);
            continue;
        }
        int e = SSL_get_error(c->ssl, r);
        ERR_clear_error();
        if (drain(c, out))
            return EB_ENOMEM;
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
            return 0;
        return EB_EPROTO; /* a failed handshake, a bad record, close_notify */
    }
}

int eb__tls_conn_seal(eb__tls_conn *c, const char *p, size_t n, eb_buf *out)
{
    while (n) {
        int w = SSL_write(c->ssl, p, n > 0x40000000 ? 0x40000000 : (int)n);
        if (w <= 0) {
            ERR_clear_error();
            drain(c, out);
            return EB_EPROTO;
        }
        p += w;
        n -= (size_t)w;
    }
    return drain(c, out);
}

bool eb__tls_conn_peer_cn(eb__tls_conn *c, char *buf, size_t cap)
{
    X509 *x = SSL_get0_peer_certificate(c->ssl);
    if (!x || SSL_get_verify_result(c->ssl) != X509_V_OK)
        return false;
    X509_NAME *name = X509_get_subject_name(x);
    int i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
    if (i < 0)
        return false;
    ASN1_STRING *s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
    int len = ASN1_STRING_length(s);
    const unsigned char *d = ASN1_STRING_get0_data(s);
    if (len <= 0 || (size_t)len >= cap || memchr(d, '\0', (size_t)len))
        return false;
    memcpy(buf, d, (size_t)len);
    buf[len] = '\0';
    return true;
}
