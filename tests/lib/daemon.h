/* daemon.h - a real eventbusd for the library's C tests: started on a free
 * port over a data directory inside the test's temp dir, ready once
 * /healthz answers, stopped with SIGTERM (it must exit 0). It dies with the
 * test process (PR_SET_PDEATHSIG), so a failing CHECK leaves nothing behind.
 * The binary comes from $EVENTBUSD (set by meson) or bin/eventbusd. */
#ifndef EB_TEST_DAEMON_H
#define EB_TEST_DAEMON_H

#include <sys/types.h>

typedef struct eb_test_daemon {
    pid_t       pid;
    int         port;
    char        url[64];    /* http://127.0.0.1:PORT */
    char        data[4200]; /* its data directory */
    const char *extra[16];  /* extra arguments, NULL-terminated */
    const char *store;      /* --store URI instead of --data (PostgreSQL), or NULL */
} eb_test_daemon;

/* Starts a daemon (extra: NULL-terminated arguments, may be NULL); fails
 * the test if it does not come up within 10 s. */
void eb_test_daemon_start(eb_test_daemon *d, const char *const *extra);
/* The same over the data directory <tmpdir>/name, so that several daemons
 * run side by side in one test. */
void eb_test_daemon_start_at(eb_test_daemon *d, const char *name, const char *const *extra);
/* The same on PostgreSQL: --store uri (not copied; several daemons on one
 * database are nodes of one bus), its log at <tmpdir>/name.log. Ready once
 * /healthz answers 200: it leads, or follows a leader it knows. */
void eb_test_daemon_start_pg(eb_test_daemon *d, const char *name, const char *uri,
                             const char *const *extra);
/* SIGKILL and wait (a crash); restart brings it back on its port and data. */
void eb_test_daemon_kill(eb_test_daemon *d);
/* SIGTERM and wait; fails the test unless it exits 0. */
void eb_test_daemon_stop(eb_test_daemon *d);
/* Stops it and starts it again on the same port and data. */
void eb_test_daemon_restart(eb_test_daemon *d);
/* The usual fixture: a started daemon and a client for it (10 s timeout);
 * eb_test_down frees the client and stops the daemon (which must exit 0). */
struct eb_client *eb_test_up(eb_test_daemon *d, const char *const *extra);
void eb_test_down(eb_test_daemon *d, struct eb_client *c);
/* A client for url with a 10 s request timeout. */
struct eb_client *eb_test_client(const char *url);
/* Installs on_signal for SIGUSR1 and has a timer send it in ms. */
void eb_test_sigusr1_after(unsigned ms, void (*on_signal)(int));
/* A TCP port nobody listens on at the moment. */
int eb_test_free_port(void);

#endif
