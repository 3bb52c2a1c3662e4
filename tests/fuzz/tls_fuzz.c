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
 *   - mode odd: an OpenSSL client in memory talks to a server connection.
 *     The mode byte chooses (see M_* below): TLS 1.3 (bit 0x02) or 1.2; a
 *     full handshake (bits 0x3c equal to 0x14: 1 mode byte in 16) or, for
 *     every other mode byte, a resumption of the session the last clean
 *     full handshake of that version saved (TLS 1.3: a PSK from a session
 *     ticket, with (EC)DHE since the server does not allow psk_ke; with bit
 *     0x40 the client also offers psk_ke, and the server must still pick
 *     psk_dhe_ke; TLS 1.2: the abbreviated handshake with a session
 *     ticket). A process that has no saved session yet (or one an hour
 *     old) first makes one with a clean full handshake, so an input does
 *     the same whatever ran before it. The rest of the input gives an
 *     optional byte of the client's records to flip (first byte with 0x80:
 *     two bytes, index mod 2000), the chunk sizes of the client's bytes on
 *     the way in, and the messages the client sends once connected.
 *     Properties: without a flip the handshake completes, a resumption is
 *     accepted (the server reads its own tickets) and a full handshake is
 *     not taken for one, the server receives exactly the client's
 *     plaintext in order, and what the server seals (an echo, interleaved
 *     with session tickets) decrypts on the client to the same bytes; with
 *     a flip the server never hands over plaintext the client did not send
 *     (AEAD), and reports EB_EPROTO or waits for more.
 * Built as two targets, because a handshake costs about a thousand times
 * what a record feed does: `tls` (EB_TLS_FUZZ_RAW: every input is a raw
 * byte stream) and `tlshs` (EB_TLS_FUZZ_HANDSHAKE: every input is a
 * conversation). Both share the seeds in corpus/tls; without either macro
 * (the replay build) the mode byte chooses, as described above.
 *
 * Cost (ASan+UBSan, libFuzzer; `perf record` on tlshs): a new client
 * SSL_CTX per input (OpenSSL 3 loads its cipher and group tables for each)
 * and a full handshake per input (the client decoding the server's
 * certificate through OSSL_DECODER, ECDSA, ECDHE) made it about 600
 * inputs per CPU-second. The client contexts are now made once per
 * version, and 15 inputs in 16 resume: about 1,550 per CPU-second, 1,850
 * with the lighter ASan options run.py gives this target (TLS 1.2
 * resumptions alone about 4,000, TLS 1.3 ones 1,400: (EC)DHE and the two
 * new tickets the server sends after each). What is left is mostly
 * OpenSSL's allocations going through ASan's allocator. */
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
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

/* One client context per version (0: TLS 1.2, 1: TLS 1.3), made once (an
 * SSL_CTX costs more than a handshake in OpenSSL 3), and the session the
 * last clean full handshake of each saved: the client of a resumption
 * input offers it (a TLS 1.3 PSK, a TLS 1.2 ticket). */
static SSL_CTX     *client_ctx[2];
static SSL_SESSION *saved[2];

static SSL_CTX *client_for(int v)
{
    if (!client_ctx[v]) {
        client_ctx[v] = SSL_CTX_new(TLS_client_method());
        FUZZ_CHECK(client_ctx[v]);
        int version = v ? TLS1_3_VERSION : TLS1_2_VERSION;
        SSL_CTX_set_min_proto_version(client_ctx[v], version);
        SSL_CTX_set_max_proto_version(client_ctx[v], version);
    }
    return client_ctx[v];
}

/* A saved session is used for an hour, then replaced by a full handshake
 * (the server's tickets last two hours), so a resumption without a flip must
 * be accepted. */
static bool saved_fresh(int v)
{
    return saved[v] && SSL_SESSION_is_resumable(saved[v]) &&
           (long)time(NULL) - (long)SSL_SESSION_get_time(saved[v]) < 3600;
}

/* The mode byte: TLS 1.3 (M_TLS13) or 1.2; a full handshake when its
 * M_FULL_MASK bits are M_FULL (not all set nor all clear, which mutations
 * make often), else a resumption; the TLS 1.3 client also offering psk_ke
 * (M_PSK_KE). Bit 0x01 is the replay build's raw/conversation choice. */
#define M_TLS13     0x02
#define M_FULL_MASK 0x3c
#define M_FULL      0x14
#define M_PSK_KE    0x40

static void converse(unsigned mode, const uint8_t *d, const uint8_t *end)
{
    int v = mode & M_TLS13 ? 1 : 0;
    bool resume = (mode & M_FULL_MASK) != M_FULL;
    if (resume && !saved_fresh(v)) { /* a clean full handshake saves one */
        static const uint8_t quiet[] = {0};
        converse(M_FULL | (mode & M_TLS13), quiet, quiet + sizeof quiet);
    }
    SSL *cli = SSL_new(client_for(v));
    FUZZ_CHECK(cli);
    pipe_state s = {.flip = -1};
    eb_buf_init(&s.got);
    eb_buf_init(&s.to_cli);
    if (d < end && (*d & 0x80))
        s.flip = (int)(eb__fuzz_take(&d, end, 2) & 0x7fff) % 2000;
    else if (d < end)
        d++;
    if (resume) {
        /* a failed handshake marks its session not resumable: with a flip,
         * the client gets a copy */
        SSL_SESSION *sess = s.flip < 0 ? saved[v] : SSL_SESSION_dup(saved[v]);
        FUZZ_CHECK(sess && SSL_set_session(cli, sess) == 1);
        if (sess != saved[v])
            SSL_SESSION_free(sess);
    }
    if (v && (mode & M_PSK_KE))
        SSL_set_options(cli, SSL_OP_ALLOW_NO_DHE_KEX);
    BIO *in = BIO_new(BIO_s_mem()), *out = BIO_new(BIO_s_mem());
    BIO_set_mem_eof_return(in, -1);
    SSL_set_bio(cli, in, out);
    SSL_set_connect_state(cli);
    s.srv = eb__tls_conn_new(server_ctx);
    s.cli_in = in;
    FUZZ_CHECK(s.srv);
    bool failed = false;
    for (int round = 0; round < 20 && !SSL_is_init_finished(cli) && !failed; round++) {
        int r = SSL_do_handshake(cli);
        if (r <= 0 && SSL_get_error(cli, r) != SSL_ERROR_WANT_READ)
            failed = true;
        if (pump(&s, out, &d, end))
            failed = true;
    }
    if (s.flip < 0) {
        FUZZ_CHECK(SSL_is_init_finished(cli) && !failed);
        /* the server accepts its own ticket; otherwise keep the new session */
        FUZZ_CHECK(SSL_session_reused(cli) == resume);
        if (!resume) {
            char buf[64]; /* TLS 1.3: takes the tickets that followed the handshake */
            FUZZ_CHECK(SSL_read(cli, buf, sizeof buf) <= 0);
            SSL_SESSION *sess = SSL_get1_session(cli);
            FUZZ_CHECK(sess && SSL_SESSION_is_resumable(sess));
            SSL_SESSION_free(saved[v]);
            saved[v] = sess;
        }
    }
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
    SSL_set_shutdown(cli, SSL_SENT_SHUTDOWN); /* else SSL_free spoils the saved session */
    SSL_free(cli);
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
    converse(data[0], data + 1, data + size);
#else
    if (data[0] & 1)
        converse(data[0], data + 1, data + size);
    else
        raw(data + 1, data + size);
#endif
    return 0;
}
