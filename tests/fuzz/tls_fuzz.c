/* tls_fuzz.c - fuzz target for the TLS transport of the HTTP server
 * (src/http/tls.c): the record and handshake path through its memory BIOs.
 *
 * A server context is made once, with a self-signed P-256 certificate
 * generated in memory and written to a temporary directory. Input: a mode
 * byte, then the rest.
 *   - mode even: the rest is a client's byte stream, fed to a server
 *     connection in chunks whose sizes the input also gives (a length byte,
 *     then that many bytes). Properties: never crash, leak or hang; a feed
 *     returns 0 or EB_EPROTO; nothing is handed over as plaintext before a
 *     handshake could have completed (random bytes are not a handshake).
 *   - mode odd: an OpenSSL client in memory (TLS 1.2 or 1.3, from the mode
 *     byte) talks to a server connection; the input gives the chunk sizes
 *     of the client's bytes on the way in, the messages the client sends
 *     once connected, and optionally one byte of the client's records to
 *     flip. Properties: without a flip the handshake completes, the server
 *     receives exactly the client's plaintext in order, and what the server
 *     seals (an echo, interleaved with session tickets) decrypts on the
 *     client to the same bytes; with a flip the server never hands over
 *     plaintext the client did not send (AEAD), and reports EB_EPROTO or
 *     waits for more.
 * Built as two targets, because a handshake costs about a thousand times
 * what a record feed does: `tls` (EB_TLS_FUZZ_RAW: every input is a raw
 * byte stream) and `tlshs` (EB_TLS_FUZZ_HANDSHAKE: every input is a
 * conversation). Both share the seeds in corpus/tls; without either macro
 * (the replay build) the mode byte chooses, as described above. */
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "eventbus/err.h"
#include "fuzz.h"
#include "http/tls.h"
#include "util/buf.h"

static eb_tls *server_ctx;

/* A self-signed certificate and key in a temporary directory. */
static void make_server(void)
{
    char dir[] = "/tmp/eb-tls-fuzz-XXXXXX";
    FUZZ_CHECK(mkdtemp(dir) != NULL);
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    FUZZ_CHECK(k && x);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600L * 24 * 365);
    X509_set_pubkey(x, k);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1,
                               -1, 0);
    X509_set_issuer_name(x, n);
    FUZZ_CHECK(X509_sign(x, k, EVP_sha256()) > 0);
    char cert[64], key[64];
    snprintf(cert, sizeof cert, "%s/c.pem", dir);
    snprintf(key, sizeof key, "%s/k.pem", dir);
    FILE *f = fopen(cert, "w");
    FUZZ_CHECK(f && PEM_write_X509(f, x) == 1);
    fclose(f);
    f = fopen(key, "w");
    FUZZ_CHECK(f && PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL) == 1);
    fclose(f);
    char err[300];
    eb_tls_opts o = {.cert = cert, .key = key};
    FUZZ_CHECK(eb_tls_new(&o, &server_ctx, err, sizeof err) == 0);
    unlink(cert);
    unlink(key);
    rmdir(dir);
    X509_free(x);
    EVP_PKEY_free(k);
}

#if !defined(EB_TLS_FUZZ_HANDSHAKE)
/* --- mode even: raw bytes ------------------------------------------------------ */

static void count_plain(void *arg, const char *p, size_t n)
{
    (void)p;
    *(size_t *)arg += n;
}

static void raw(const uint8_t *d, const uint8_t *end)
{
    eb__tls_conn *c = eb__tls_conn_new(server_ctx);
    FUZZ_CHECK(c);
    size_t plain = 0;
    while (d < end) {
        size_t k = *d++;
        if (k > (size_t)(end - d))
            k = (size_t)(end - d);
        eb_buf out = EB_BUF_INIT;
        int rc = eb__tls_conn_feed(c, (const char *)d, k, count_plain, &plain, &out);
        eb_buf_free(&out);
        FUZZ_CHECK(rc == 0 || rc == EB_EPROTO);
        d += k;
        if (rc)
            break;
    }
    FUZZ_CHECK(plain == 0);
    eb__tls_conn_free(c);
}

#endif

#if !defined(EB_TLS_FUZZ_RAW)
/* --- mode odd: a real client --------------------------------------------------- */

typedef struct pipe_state {
    eb__tls_conn *srv;
    eb_buf        got;      /* plaintext the server received */
    eb_buf        to_cli;   /* records the server made, for the client */
    BIO          *cli_in;   /* the client's read BIO */
    int           flip;     /* index of the client byte to flip, or -1 */
    size_t        sent;     /* client bytes passed so far */
} pipe_state;

/* The server echoes each plaintext chunk back, sealed. */
static void on_plain(void *arg, const char *p, size_t n)
{
    pipe_state *s = arg;
    eb_buf_append(&s->got, p, n);
    FUZZ_CHECK(eb__tls_conn_seal(s->srv, p, n, &s->to_cli) == 0);
}

/* Moves the client's pending bytes to the server (chunk sizes from the
 * input, one byte flipped if asked); the server's answer to the client. */
static int pump(pipe_state *s, BIO *cli_out, const uint8_t **d, const uint8_t *end)
{
    char *p;
    long n = BIO_get_mem_data(cli_out, &p);
    int rc = 0;
    if (n > 0) {
        char *copy = malloc((size_t)n);
        FUZZ_CHECK(copy);
        memcpy(copy, p, (size_t)n);
        (void)BIO_reset(cli_out);
        if (s->flip >= 0 && (size_t)s->flip >= s->sent && (size_t)s->flip < s->sent + (size_t)n)
            copy[(size_t)s->flip - s->sent] ^= 0x20;
        s->sent += (size_t)n;
        for (long at = 0; at < n && !rc;) {
            long k = (long)eb__fuzz_take(d, end, 1);
            k = k ? k * 8 : n - at;
            if (k > n - at)
                k = n - at;
            rc = eb__tls_conn_feed(s->srv, copy + at, (size_t)k, on_plain, s, &s->to_cli);
            FUZZ_CHECK(rc == 0 || rc == EB_EPROTO);
            at += k;
        }
        free(copy);
    }
    if (s->to_cli.len) {
        BIO_write(s->cli_in, s->to_cli.data, (int)s->to_cli.len);
        eb_buf_reset(&s->to_cli);
    }
    return rc;
}

static void converse(int version, const uint8_t *d, const uint8_t *end)
{
    SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
    FUZZ_CHECK(cctx);
    SSL_CTX_set_min_proto_version(cctx, version);
    SSL_CTX_set_max_proto_version(cctx, version);
    SSL *cli = SSL_new(cctx);
    BIO *in = BIO_new(BIO_s_mem()), *out = BIO_new(BIO_s_mem());
    BIO_set_mem_eof_return(in, -1);
    SSL_set_bio(cli, in, out);
    SSL_set_connect_state(cli);
    pipe_state s = {.srv = eb__tls_conn_new(server_ctx), .cli_in = in, .flip = -1};
    FUZZ_CHECK(s.srv);
    eb_buf_init(&s.got);
    eb_buf_init(&s.to_cli);
    if (d < end && (*d & 0x80))
        s.flip = (int)(eb__fuzz_take(&d, end, 2) & 0x7fff) % 2000;
    else if (d < end)
        d++;
    bool failed = false;
    for (int round = 0; round < 20 && !SSL_is_init_finished(cli) && !failed; round++) {
        int r = SSL_do_handshake(cli);
        if (r <= 0 && SSL_get_error(cli, r) != SSL_ERROR_WANT_READ)
            failed = true;
        if (pump(&s, out, &d, end))
            failed = true;
    }
    if (s.flip < 0)
        FUZZ_CHECK(SSL_is_init_finished(cli) && !failed);
    eb_buf sent = EB_BUF_INIT, back = EB_BUF_INIT;
    while (!failed && SSL_is_init_finished(cli) && d < end) {
        size_t k = (size_t)eb__fuzz_take(&d, end, 1) + 1;
        if (k > (size_t)(end - d))
            k = (size_t)(end - d);
        if (!k)
            break;
        FUZZ_CHECK(SSL_write(cli, d, (int)k) == (int)k);
        eb_buf_append(&sent, (const char *)d, k);
        d += k;
        if (pump(&s, out, &d, end))
            failed = true;
        char buf[4096];
        int r;
        while ((r = SSL_read(cli, buf, sizeof buf)) > 0)
            eb_buf_append(&back, buf, (size_t)r);
        if (r <= 0 && SSL_get_error(cli, r) != SSL_ERROR_WANT_READ)
            failed = true;
    }
    /* what the server received is a prefix of what was sent (all of it
     * without a flip), and what came back is a prefix of that */
    FUZZ_CHECK(s.got.len <= sent.len && !memcmp(s.got.data ? s.got.data : "",
                                                sent.data ? sent.data : "", s.got.len));
    if (s.flip < 0)
        FUZZ_CHECK(!failed && s.got.len == sent.len && back.len == sent.len);
    FUZZ_CHECK(back.len <= s.got.len &&
               !memcmp(back.data ? back.data : "", s.got.data ? s.got.data : "", back.len));
    eb_buf_free(&sent);
    eb_buf_free(&back);
    eb_buf_free(&s.got);
    eb_buf_free(&s.to_cli);
    eb__tls_conn_free(s.srv);
    SSL_free(cli);
    SSL_CTX_free(cctx);
}

#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!server_ctx)
        make_server();
    if (size < 1)
        return 0;
#if defined(EB_TLS_FUZZ_RAW)
    raw(data + 1, data + size);
#elif defined(EB_TLS_FUZZ_HANDSHAKE)
    converse(data[0] & 2 ? TLS1_3_VERSION : TLS1_2_VERSION, data + 1, data + size);
#else
    if (data[0] & 1)
        converse(data[0] & 2 ? TLS1_3_VERSION : TLS1_2_VERSION, data + 1, data + size);
    else
        raw(data + 1, data + size);
#endif
    return 0;
}
