/* httpc.c - benchmark HTTP client and daemon launcher (see httpc.h). */
#include "httpc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return ntohs(a.sin_port);
}

static int connect_port(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

/* Returns the length of one complete response at the start of in, or 0;
 * sets *status and *hlen (header bytes). */
static size_t response_len(const char *in, size_t n, int *status, size_t *hlen_out)
{
    const char *end = memmem(in, n, "\r\n\r\n", 4);
    if (!end)
        return 0;
    size_t hlen = (size_t)(end - in) + 4;
    const char *cl = memmem(in, hlen, "Content-Length:", 15);
    if (!cl)
        cl = memmem(in, hlen, "content-length:", 15);
    size_t blen = cl ? strtoul(cl + 15, NULL, 10) : 0;
    if (n < hlen + blen)
        return 0;
    *status = atoi(in + 9);
    if (hlen_out)
        *hlen_out = hlen;
    return hlen + blen;
}

int bench_conn_open(bench_conn *c, int port)
{
    memset(c, 0, sizeof *c);
    c->fd = connect_port(port);
    c->port = port;
    return c->fd < 0 ? -1 : 0;
}

static int write_all(bench_conn *c, const char *p, size_t n)
{
    while (n) {
        ssize_t w = c->io_write ? c->io_write(c->io, p, n) : write(c->fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int bench_conn_send(bench_conn *c, const char *method, const char *path, const char *body,
                    size_t blen)
{
    char head[1024];
    int hn = snprintf(head, sizeof head,
                      "%s %s HTTP/1.1\r\nHost: localhost\r\n%s"
                      "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                      method, path, c->headers ? c->headers : "", blen);
    if (hn <= 0 || (size_t)hn >= sizeof head)
        return -1;
    if (c->io_write && blen) { /* one write: one TLS record, as TLS clients send a request */
        char *all = malloc((size_t)hn + blen);
        if (!all)
            return -1;
        memcpy(all, head, (size_t)hn);
        memcpy(all + hn, body, blen);
        int rc = write_all(c, all, (size_t)hn + blen);
        free(all);
        return rc;
    }
    if (write_all(c, head, (size_t)hn) != 0)
        return -1;
    return blen ? write_all(c, body, blen) : 0;
}

int bench_conn_recv(bench_conn *c, const char **body, size_t *blen)
{
    if (c->consumed) {
        memmove(c->in, c->in + c->consumed, c->in_len - c->consumed);
        c->in_len -= c->consumed;
        c->consumed = 0;
    }
    for (;;) {
        int status = 0;
        size_t hlen = 0, rl = response_len(c->in, c->in_len, &status, &hlen);
        if (rl) {
            /* NUL-terminate the body in place: the byte after it moves
             * aside into a spare slot the buffer always keeps. */
            if (c->in_len == rl)
                c->in[rl] = '\0';
            else {
                memmove(c->in + rl + 1, c->in + rl, c->in_len - rl);
                c->in[rl] = '\0';
                c->in_len++;
                c->consumed = 1;
            }
            c->consumed += rl;
            c->head = c->in;
            c->head_len = hlen;
            if (body)
                *body = c->in + hlen;
            if (blen)
                *blen = rl - hlen;
            return status;
        }
        if (c->in_cap - c->in_len < 65537) {
            c->in_cap = c->in_cap ? c->in_cap * 2 : 262144;
            c->in = realloc(c->in, c->in_cap);
            if (!c->in)
                return -1;
        }
        size_t room = c->in_cap - c->in_len - 1;
        ssize_t r = c->io_read ? c->io_read(c->io, c->in + c->in_len, room)
                               : read(c->fd, c->in + c->in_len, room);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        c->in_len += (size_t)r;
    }
}

void bench_conn_close(bench_conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    free(c->in);
    memset(c, 0, sizeof *c);
    c->fd = -1;
}

int bench_request(int port, const char *method, const char *path, const char *body,
                  char *out, size_t cap)
{
    bench_conn c;
    if (bench_conn_open(&c, port) != 0)
        return -1;
    const char *b = NULL;
    int status = -1;
    if (bench_conn_send(&c, method, path, body, body ? strlen(body) : 0) == 0)
        status = bench_conn_recv(&c, &b, NULL);
    if (out && cap)
        snprintf(out, cap, "%s", status > 0 && b ? b : "");
    bench_conn_close(&c);
    return status;
}

pid_t bench_start_daemon(const char *path, const char *const *extra, int *port, char dir[256])
{
    snprintf(dir, 256, "/tmp/eb-bench-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    *port = free_port();
    char listen[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", *port);
    const char *argv[32] = {path, "--listen", listen, "--data", dir, "--log-level", "warn"};
    int argc = 7;
    for (int i = 0; extra && extra[i] && argc < 31; i++)
        argv[argc++] = extra[i];
    argv[argc] = NULL;
    pid_t pid = fork();
    if (pid == 0) {
        execv(path, (char *const *)argv);
        _exit(127);
    }
    for (int i = 0; i < 200; i++) {
        usleep(25000);
        if (bench_request(*port, "GET", "/healthz", NULL, NULL, 0) == 200)
            return pid;
        if (waitpid(pid, NULL, WNOHANG) == pid) {
            bench_stop_daemon(-1, dir);
            return -1;
        }
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    bench_stop_daemon(-1, dir);
    return -1;
}

static int rm_cb(const char *p, const struct stat *s, int f, struct FTW *w)
{
    (void)s; (void)f; (void)w;
    return remove(p);
}

void bench_stop_daemon(pid_t pid, const char *dir)
{
    if (pid > 0) {
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
    }
    nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* --- closed-loop load ---------------------------------------------------- */

typedef struct conn {
    uv_tcp_t    tcp;
    bench_load *l;
    int         idx;
    char       *req;      /* current request */
    size_t      req_len;
    char       *in;       /* response accumulation */
    size_t      in_len, in_cap;
    uint64_t    sent_ns;  /* when the current request went out */
    uv_write_t  wr;
} conn;

typedef struct load_state {
    bench_load *l;
    uint64_t    issued;    /* requests started */
    uint64_t    done;
    conn       *conns;
} load_state;

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void send_next(conn *c);

static void on_alloc(uv_handle_t *h, size_t sz, uv_buf_t *buf)
{
    conn *c = h->data;
    (void)sz;
    if (c->in_cap - c->in_len < 65536) {
        c->in_cap = c->in_cap ? c->in_cap * 2 : 131072;
        c->in = realloc(c->in, c->in_cap);
    }
    *buf = uv_buf_init(c->in + c->in_len, (unsigned)(c->in_cap - c->in_len));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    conn *c = s->data;
    (void)buf;
    if (nread < 0) {
        fprintf(stderr, "bench: connection %d: %s\n", c->idx, uv_strerror((int)nread));
        uv_close((uv_handle_t *)s, NULL);
        return;
    }
    c->in_len += (size_t)nread;
    int status = 0;
    size_t rl = response_len(c->in, c->in_len, &status, NULL);
    if (!rl)
        return;
    memmove(c->in, c->in + rl, c->in_len - rl);
    c->in_len -= rl;
    load_state *st = c->l->arg2;
    bench_load *l = c->l;
    if (st->done < l->total)
        l->lat_us[st->done] = (double)(mono_ns() - c->sent_ns) / 1000.0;
    st->done++;
    if (status >= 200 && status < 300)
        l->ok++;
    else if (l->failed++ < 3)
        fprintf(stderr, "bench: status %d\n", status);
    send_next(c);
}

static void on_written(uv_write_t *w, int status)
{
    (void)w;
    if (status)
        fprintf(stderr, "bench: write: %s\n", uv_strerror(status));
}

static void send_next(conn *c)
{
    bench_load *l = c->l;
    load_state *st = l->arg2;
    if (st->issued >= l->total) {
        uv_close((uv_handle_t *)&c->tcp, NULL);
        return;
    }
    uint64_t n = st->issued++;
    static char body[1 << 20];
    size_t blen = l->make_body(l->arg, c->idx, n, body, sizeof body);
    free(c->req);
    size_t hcap = 256 + (l->headers ? strlen(l->headers) : 0);
    c->req = malloc(blen + hcap);
    int hn = snprintf(c->req, hcap,
                      "%s %s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                      "%sContent-Length: %zu\r\n\r\n", l->method, l->path,
                      l->headers ? l->headers : "", blen);
    memcpy(c->req + hn, body, blen);
    c->req_len = (size_t)hn + blen;
    uv_buf_t b = uv_buf_init(c->req, (unsigned)c->req_len);
    c->sent_ns = mono_ns();
    uv_write(&c->wr, (uv_stream_t *)&c->tcp, &b, 1, on_written);
}

static void on_connect(uv_connect_t *req, int status)
{
    conn *c = req->data;
    free(req);
    if (status) {
        fprintf(stderr, "bench: connect: %s\n", uv_strerror(status));
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    send_next(c);
}

int bench_run_load(bench_load *l)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    load_state st = {l, 0, 0, calloc((size_t)l->conns, sizeof(conn))};
    l->arg2 = &st;
    l->lat_us = calloc(l->total, sizeof(double));
    l->ok = l->failed = 0;
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", l->port, &a);
    uint64_t t0 = mono_ns();
    for (int i = 0; i < l->conns; i++) {
        conn *c = &st.conns[i];
        c->l = l;
        c->idx = i;
        uv_tcp_init(&loop, &c->tcp);
        c->tcp.data = c;
        uv_connect_t *req = malloc(sizeof *req);
        req->data = c;
        uv_tcp_connect(req, &c->tcp, (struct sockaddr *)&a, on_connect);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    l->seconds = (double)(mono_ns() - t0) / 1e9;
    for (int i = 0; i < l->conns; i++) {
        free(st.conns[i].req);
        free(st.conns[i].in);
    }
    free(st.conns);
    uv_loop_close(&loop);
    return st.done == l->total ? 0 : -1;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double bench_pct(double *v, size_t n, double p)
{
    if (!n)
        return 0;
    qsort(v, n, sizeof *v, cmp_d);
    size_t i = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

double bench_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double bench_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}
