/* daemon.c - a real eventbusd for the library tests (see daemon.h). */
#include "daemon.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "eventbus.h"
#include "runner.h"

int eb_test_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    CHECK(fd >= 0);
    CHECK(bind(fd, (struct sockaddr *)&a, sizeof a) == 0);
    CHECK(getsockname(fd, (struct sockaddr *)&a, &len) == 0);
    close(fd);
    return ntohs(a.sin_port);
}

static const char *daemon_path(void)
{
    const char *p = getenv("EVENTBUSD");
    return p && *p ? p : "bin/eventbusd";
}

static void spawn(eb_test_daemon *d)
{
    char listen[32], log[4300];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", d->port);
    snprintf(log, sizeof log, "%s.log", d->data);
    const char *argv[32] = {daemon_path(), "--listen", listen, d->store ? "--store" : "--data",
                            d->store ? d->store : d->data, "--log-level", "warn"};
    int argc = 7;
    for (int i = 0; d->extra[i] && argc < 31; i++)
        argv[argc++] = d->extra[i];
    argv[argc] = NULL;
    pid_t parent = getpid();
    d->pid = fork();
    CHECK(d->pid >= 0);
    if (d->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        if (!freopen(log, "a", stderr) || !freopen(log, "a", stdout))
            _exit(127);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
}

/* Polls /healthz with the library itself until it answers 200. */
static int wait_ready(eb_test_daemon *d)
{
    eb_client *c;
    eb_client_opts o = {.size = sizeof o, .url = d->url, .connect_timeout_ms = 200, .timeout_ms = 1000};
    CHECK_OK(eb_client_new(&o, &c));
    int ok = 0;
    for (int i = 0; i < 400 && !ok; i++) {
        int status = 0;
        if (eb_request(c, "GET", "/healthz", NULL, 0, &status, NULL) == 0 && status == 200) {
            ok = 1;
            break;
        }
        if (waitpid(d->pid, NULL, WNOHANG) == d->pid)
            break;
        struct timespec ts = {0, 25 * 1000000L};
        nanosleep(&ts, NULL);
    }
    eb_client_free(c);
    return ok;
}

void eb_test_daemon_start(eb_test_daemon *d, const char *const *extra)
{
    eb_test_daemon_start_at(d, "data", extra);
}

static void start(eb_test_daemon *d, const char *name, const char *store,
                  const char *const *extra)
{
    memset(d, 0, sizeof *d);
    d->store = store;
    for (int i = 0; extra && extra[i] && i < 15; i++)
        d->extra[i] = extra[i];
    snprintf(d->data, sizeof d->data, "%s/%s", eb_test_tmpdir(), name);
    for (int attempt = 0; attempt < 3; attempt++) { /* the port may be taken meanwhile */
        d->port = eb_test_free_port();
        snprintf(d->url, sizeof d->url, "http://127.0.0.1:%d", d->port);
        spawn(d);
        if (wait_ready(d))
            return;
        kill(d->pid, SIGKILL);
        waitpid(d->pid, NULL, 0);
    }
    eb_test_fail(__FILE__, __LINE__, "eventbusd (%s) did not start; log: %s.log", daemon_path(),
                 d->data);
}

void eb_test_daemon_start_at(eb_test_daemon *d, const char *name, const char *const *extra)
{
    start(d, name, NULL, extra);
}

void eb_test_daemon_start_pg(eb_test_daemon *d, const char *name, const char *uri,
                             const char *const *extra)
{
    start(d, name, uri, extra);
}

void eb_test_daemon_stop(eb_test_daemon *d)
{
    if (d->pid <= 0)
        return;
    int st = 0;
    CHECK(kill(d->pid, SIGTERM) == 0);
    CHECK(waitpid(d->pid, &st, 0) == d->pid);
    d->pid = 0;
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

void eb_test_daemon_kill(eb_test_daemon *d)
{
    if (d->pid <= 0)
        return;
    CHECK(kill(d->pid, SIGKILL) == 0);
    CHECK(waitpid(d->pid, NULL, 0) == d->pid);
    d->pid = 0;
}

void eb_test_daemon_restart(eb_test_daemon *d)
{
    eb_test_daemon_stop(d);
    spawn(d);
    if (!wait_ready(d))
        eb_test_fail(__FILE__, __LINE__, "eventbusd did not restart; log: %s.log", d->data);
}

struct eb_client *eb_test_client(const char *url)
{
    eb_client *c = NULL;
    eb_client_opts o = {.size = sizeof o, .url = url, .timeout_ms = 10000};
    CHECK_OK(eb_client_new(&o, &c));
    return c;
}

struct eb_client *eb_test_up(eb_test_daemon *d, const char *const *extra)
{
    eb_test_daemon_start(d, extra);
    return eb_test_client(d->url);
}

void eb_test_down(eb_test_daemon *d, struct eb_client *c)
{
    eb_client_free(c);
    eb_test_daemon_stop(d);
}

void eb_test_sigusr1_after(unsigned ms, void (*on_signal)(int))
{
    struct sigaction sa = {.sa_handler = on_signal};
    CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);
    timer_t t;
    struct sigevent sev = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGUSR1};
    CHECK(timer_create(CLOCK_MONOTONIC, &sev, &t) == 0);
    struct itimerspec its = {.it_value = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L}};
    CHECK(timer_settime(t, 0, &its, NULL) == 0);
}
