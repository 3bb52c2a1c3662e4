/* tls.c - bench/tls: what TLS and tokens cost a publisher.
 *
 * Runs the same loads against two eventbusd (both up, measured in turns,
 * plain then TLS, three rounds, medians kept), each on a fresh temp dir (fsync always, the order.created schema registered):
 *   plain: --auth none, plain HTTP;
 *   tls:   --auth token, HTTPS (--tls-listen; a P-256 certificate made
 *          here), every request carrying a bearer token (scope publish:*).
 * Loads, one blocking thread per connection (the same driver for both):
 *   1. batches of 100 events (~200 bytes each) from 4 publishers;
 *   2. single events over 32 keep-alive connections;
 *   3. new connections per second: connect (+ full TLS handshake), GET
 *      /healthz, close, from 4 threads for 2 s.
 * Prints each figure and the TLS/plain ratios.
 *
 * Usage: tls EVENTBUSD [--batches N] [--singles N] */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "event.h"
#include "httpc.h"

typedef struct target {
    int      port;
    pid_t    pid;        /* the daemon (its CPU time is read from /proc) */
    SSL_CTX *tls;        /* NULL: plain */
    char     auth[128];  /* "Authorization: Bearer ...\r\n" or "" */
} target;

typedef struct conn {
    int   fd;
    SSL  *ssl;
    char  in[1 << 16];
    size_t have;
} conn;

static int conn_open(conn *c, const target *t)
{
    memset(c, 0, sizeof *c);
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)t->port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&a, sizeof a) != 0)
        return -1;
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (!t->tls)
        return 0;
    c->ssl = SSL_new(t->tls);
    SSL_set_fd(c->ssl, c->fd);
    return SSL_connect(c->ssl) == 1 ? 0 : -1;
}

static void conn_close(conn *c)
{
    SSL_free(c->ssl);
    if (c->fd >= 0)
        close(c->fd);
}

static int put(conn *c, const char *p, size_t n)
{
    while (n) {
        ssize_t w = c->ssl ? SSL_write(c->ssl, p, (int)n) : write(c->fd, p, n);
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static ssize_t get(conn *c, char *p, size_t cap)
{
    return c->ssl ? SSL_read(c->ssl, p, (int)cap) : read(c->fd, p, cap);
}

/* One request and its answer; returns the status or -1. */
static int roundtrip(conn *c, const target *t, const char *method, const char *path,
                     const char *body, size_t blen, char *head, size_t hcap)
{
    int n = snprintf(head, hcap,
                     "%s %s HTTP/1.1\r\nHost: b\r\n%sContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n",
                     method, path, t->auth, blen);
    if (n <= 0 || (size_t)n + blen > hcap)
        return -1;
    memcpy(head + n, body, blen); /* one write: one record under TLS */
    if (put(c, head, (size_t)n + blen))
        return -1;
    c->have = 0;
    for (;;) {
        ssize_t r = get(c, c->in + c->have, sizeof c->in - c->have - 1);
        if (r <= 0)
            return -1;
        c->have += (size_t)r;
        c->in[c->have] = '\0';
        char *end = strstr(c->in, "\r\n\r\n");
        if (!end)
            continue;
        char *cl = strcasestr(c->in, "content-length:");
        size_t len = cl && cl < end ? strtoul(cl + 15, NULL, 10) : 0;
        if (c->have >= (size_t)(end + 4 - c->in) + len)
            return atoi(c->in + 9);
    }
}

/* --- loads ------------------------------------------------------------------ */

typedef struct load {
    const target *t;
    int           threads;
    uint64_t      per_thread;  /* requests each (0: run for `seconds`) */
    int           batch;       /* events per request (1: POST /v1/events) */
    double        seconds;
    bool          reconnect;   /* a new connection per request (GET /healthz) */
    uint64_t      ok, failed;
    pthread_mutex_t mu;
} load;

static void *worker(void *arg)
{
    load *l = arg;
    size_t cap = 64 << 10;
    char *body = malloc(cap), *head = malloc(cap + 1024);
    conn c;
    uint64_t ok = 0, failed = 0, n = (uint64_t)rand() << 20;
    bool open = false;
    double end = bench_now_s() + l->seconds;
    for (uint64_t i = 0; l->per_thread ? i < l->per_thread : bench_now_s() < end; i++) {
        if (!open && conn_open(&c, l->t) != 0) {
            conn_close(&c);
            failed++;
            continue;
        }
        open = true;
        int st;
        if (l->reconnect) {
            st = roundtrip(&c, l->t, "GET", "/healthz", "", 0, head, cap + 1024);
        } else {
            size_t blen = l->batch > 1 ? bench_event_batch(body, cap, n, l->batch)
                                       : bench_event_json(body, cap, n);
            n += (uint64_t)l->batch;
            st = roundtrip(&c, l->t, "POST", l->batch > 1 ? "/v1/events/batch" : "/v1/events",
                           body, blen, head, cap + 1024);
        }
        if (st >= 200 && st < 300)
            ok++;
        else
            failed++;
        if (l->reconnect || st < 0) {
            conn_close(&c);
            open = false;
        }
    }
    if (open)
        conn_close(&c);
    free(body);
    free(head);
    pthread_mutex_lock(&l->mu);
    l->ok += ok;
    l->failed += failed;
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

/* The CPU time (user + system) process pid has used, seconds. */
static double cpu_of(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')'); /* fields after the command name */
    unsigned long ut = 0, st = 0;
    if (p)
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st);
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static double server_cpu_us; /* of the last run(), per event */

static double run(load *l)
{
    double cpu0 = cpu_of(l->t->pid);
    pthread_t th[64];
    pthread_mutex_init(&l->mu, NULL);
    double t0 = bench_now_s();
    for (int i = 0; i < l->threads; i++)
        pthread_create(&th[i], NULL, worker, l);
    for (int i = 0; i < l->threads; i++)
        pthread_join(th[i], NULL);
    double s = bench_now_s() - t0;
    pthread_mutex_destroy(&l->mu);
    server_cpu_us = (cpu_of(l->t->pid) - cpu0) * 1e6 / (double)(l->ok * (uint64_t)l->batch + 1);
    return (double)l->ok * l->batch / s;
}

/* --- setup ------------------------------------------------------------------- */

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t len = sizeof a;
    bind(fd, (struct sockaddr *)&a, sizeof a);
    getsockname(fd, (struct sockaddr *)&a, &len);
    close(fd);
    return ntohs(a.sin_port);
}

/* A self-signed P-256 certificate for 127.0.0.1 into dir/cert.pem, key.pem. */
static int make_cert(const char *dir)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, k);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"bench", -1, -1, 0);
    X509_set_issuer_name(x, n);
    X509_sign(x, k, EVP_sha256());
    char p[300];
    snprintf(p, sizeof p, "%s/cert.pem", dir);
    FILE *f = fopen(p, "w");
    int ok = f && PEM_write_X509(f, x);
    if (f)
        fclose(f);
    snprintf(p, sizeof p, "%s/key.pem", dir);
    f = fopen(p, "w");
    ok = ok && f && PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
    if (f)
        fclose(f);
    X509_free(x);
    EVP_PKEY_free(k);
    return ok ? 0 : -1;
}

static int register_schema(const target *t)
{
    conn c;
    char head[8192];
    int st = conn_open(&c, t) == 0
                 ? roundtrip(&c, t, "PUT", "/v1/schemas/order.created", bench_order_schema,
                             strlen(bench_order_schema), head, sizeof head)
                 : -1;
    conn_close(&c);
    return st == 201 || st == 200 ? 0 : -1;
}

/* A token with publish:* and schemas:write, made with the admin token. */
static int make_token(target *t, const char *admin)
{
    snprintf(t->auth, sizeof t->auth, "Authorization: Bearer %s\r\n", admin);
    conn c;
    char head[8192];
    static const char body[] = "{\"name\":\"bench\",\"scopes\":[\"publish:*\",\"schemas:write\"]}";
    int st = conn_open(&c, t) == 0
                 ? roundtrip(&c, t, "POST", "/v1/tokens", body, sizeof body - 1, head, sizeof head)
                 : -1;
    char *tok = st == 201 ? strstr(c.in, "\"token\":\"") : NULL;
    conn_close(&c);
    if (!tok)
        return -1;
    tok += 9;
    snprintf(t->auth, sizeof t->auth, "Authorization: Bearer %.47s\r\n", tok);
    return 0;
}

typedef struct figures {
    double batch, single, conns;          /* per second (wall) */
    double batch_cpu, single_cpu, conn_cpu; /* server CPU per event / connection, us */
} figures;

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The median of n figures. */
static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return v[n / 2];
}

#define ROUNDS 3

/* Each load in turns, plain then TLS, ROUNDS times: the machine's other
 * work drifts over the run, and alternating spreads it over both sides;
 * the median of each side is kept. */
static void measure(const target *const t[2], uint64_t batches, uint64_t singles, figures f[2])
{
    double b[2][ROUNDS], s[2][ROUNDS], c[2][ROUNDS], bc[2][ROUNDS], sc[2][ROUNDS], cc[2][ROUNDS];
    static const char *const name[2] = {"plain", "tls"};
    for (int r = 0; r < ROUNDS; r++) {
        for (int k = 0; k < 2; k++) {
            load lb = {.t = t[k], .threads = 4, .per_thread = batches / 4, .batch = 100};
            b[k][r] = run(&lb);
            bc[k][r] = server_cpu_us;
            load ls = {.t = t[k], .threads = 32, .per_thread = singles / 32, .batch = 1};
            s[k][r] = run(&ls);
            sc[k][r] = server_cpu_us;
            load lc = {.t = t[k], .threads = 4, .seconds = 2, .batch = 1, .reconnect = true};
            c[k][r] = run(&lc);
            cc[k][r] = server_cpu_us;
            printf("round %d %-5s batches of 100 x4: %8.0f events/s (server %5.2f us CPU/event), "
                   "single x32: %7.0f/s (%5.1f us), new connections: %6.0f/s (%6.1f us) "
                   "(failed: %llu %llu %llu)\n",
                   r + 1, name[k], b[k][r], bc[k][r], s[k][r], sc[k][r], c[k][r], cc[k][r],
                   (unsigned long long)lb.failed, (unsigned long long)ls.failed,
                   (unsigned long long)lc.failed);
            fflush(stdout);
        }
    }
    for (int k = 0; k < 2; k++)
        f[k] = (figures){median(b[k], ROUNDS),  median(s[k], ROUNDS),  median(c[k], ROUNDS),
                         median(bc[k], ROUNDS), median(sc[k], ROUNDS), median(cc[k], ROUNDS)};
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s EVENTBUSD [--batches N] [--singles N]\n", argv[0]);
        return 2;
    }
    uint64_t batches = 2000, singles = 50000;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--batches"))
            batches = strtoull(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--singles"))
            singles = strtoull(argv[i + 1], NULL, 10);
    }
    char certs[] = "/tmp/eb-bench-tls-XXXXXX";
    if (!mkdtemp(certs) || make_cert(certs) != 0) {
        fprintf(stderr, "cannot make a certificate\n");
        return 1;
    }
    int port;
    char dir[256], dir2[256];
    const char *none[] = {"--auth", "none", NULL};
    pid_t pid = bench_start_daemon(argv[1], none, &port, dir);
    target tp = {.port = port, .pid = pid};
    if (pid < 0 || register_schema(&tp) != 0) {
        fprintf(stderr, "cannot start the plain eventbusd\n");
        return 1;
    }
    char tls_listen[64], cert[300], key[300], tokfile[300];
    int tport = free_port();
    snprintf(tls_listen, sizeof tls_listen, "127.0.0.1:%d", tport);
    snprintf(cert, sizeof cert, "%s/cert.pem", certs);
    snprintf(key, sizeof key, "%s/key.pem", certs);
    snprintf(tokfile, sizeof tokfile, "%s/admin.token", certs);
    const char *with_tls[] = {"--auth", "token", "--tls-listen", tls_listen, "--tls-cert", cert,
                              "--tls-key", key, "--admin-token-file", tokfile, NULL};
    int port2;
    pid_t pid2 = bench_start_daemon(argv[1], with_tls, &port2, dir2);
    char admin[64] = "";
    for (int i = 0; i < 200 && !*admin; i++) {
        FILE *f = fopen(tokfile, "r");
        if (!f || !fgets(admin, sizeof admin, f))
            *admin = '\0';
        if (f)
            fclose(f);
        admin[strcspn(admin, "\n")] = '\0';
        if (!*admin)
            usleep(20000);
    }
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_load_verify_locations(ctx, cert, NULL);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    target tt = {.port = tport, .pid = pid2, .tls = ctx};
    if (pid2 < 0 || !*admin || make_token(&tt, admin) != 0 || register_schema(&tt) != 0) {
        fprintf(stderr, "cannot start the TLS eventbusd\n");
        bench_stop_daemon(pid, dir);
        return 1;
    }
    figures f[2];
    measure((const target *const[2]){&tp, &tt}, batches, singles, f);
    figures plain = f[0], tls = f[1];
    bench_stop_daemon(pid, dir);
    bench_stop_daemon(pid2, dir2);
    SSL_CTX_free(ctx);
    unlink(cert);
    unlink(key);
    unlink(tokfile);
    rmdir(certs);
    /* Wall-clock figures move with whatever else the machine runs; the
     * server's CPU per event is the cost itself: plain/TLS CPU is the
     * throughput TLS keeps when the server is the bottleneck. */
    printf("RESULT tls_batch plain=%.0f tls=%.0f pct=%.1f plain_cpu_us=%.3f tls_cpu_us=%.3f "
           "cpu_pct=%.1f\n", plain.batch, tls.batch, 100 * tls.batch / plain.batch,
           plain.batch_cpu, tls.batch_cpu, 100 * plain.batch_cpu / tls.batch_cpu);
    printf("RESULT tls_single plain=%.0f tls=%.0f pct=%.1f plain_cpu_us=%.3f tls_cpu_us=%.3f "
           "cpu_pct=%.1f\n", plain.single, tls.single, 100 * tls.single / plain.single,
           plain.single_cpu, tls.single_cpu, 100 * plain.single_cpu / tls.single_cpu);
    printf("RESULT tls_conns plain=%.0f tls=%.0f plain_cpu_us=%.1f tls_cpu_us=%.1f\n",
           plain.conns, tls.conns, plain.conn_cpu, tls.conn_cpu);
    return 0;
}
