/* runner.c - forks each declared test with a timeout; see runner.h. */
#include "runner.h"

#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "eventbus/err.h"

#define SKIP_EXIT 77

static char tmpdir_[4096];

const char *eb_test_tmpdir(void)
{
    return tmpdir_;
}

void eb_test_skip(const char *why)
{
    fprintf(stderr, "skip: %s\n", why);
    fflush(NULL);
    _exit(SKIP_EXIT);
}

void eb_test_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(NULL);
    _exit(1);
}

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    remove(path);
    return 0;
}

static int make_tmpdir(const char *name)
{
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir_, sizeof tmpdir_, "%s/eb-test-%s-XXXXXX",
             base && *base ? base : "/tmp", name);
    return mkdtemp(tmpdir_) ? 0 : -1;
}

static unsigned timeout_s(void)
{
    const char *s = getenv("EB_TEST_TIMEOUT");
    unsigned t = s ? (unsigned)atoi(s) : 0;
    return t ? t : 60;
}

/* Runs one test in a child; returns 0 pass, 1 fail, 2 skip. */
static int run_one(const eb_test *t)
{
    if (make_tmpdir(t->name) != 0) {
        fprintf(stderr, "cannot create temp dir: %s\n", strerror(errno));
        return 1;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return 1;
    if (pid == 0) {
        alarm(timeout_s());
        signal(SIGALRM, SIG_DFL);
        t->fn();
        fflush(NULL);
        _exit(0);
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
                (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    nftw(tmpdir_, rm_cb, 16, FTW_DEPTH | FTW_PHYS);

    int res;
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
        res = 0;
        printf("ok      %s (%.0f ms)\n", t->name, ms);
    } else if (WIFEXITED(st) && WEXITSTATUS(st) == SKIP_EXIT) {
        res = 2;
        printf("skip    %s\n", t->name);
    } else if (WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM) {
        res = 1;
        printf("FAIL    %s (timed out after %u s)\n", t->name, timeout_s());
    } else if (WIFSIGNALED(st)) {
        res = 1;
        printf("FAIL    %s (signal %d: %s)\n", t->name, WTERMSIG(st),
               strsignal(WTERMSIG(st)));
    } else {
        res = 1;
        printf("FAIL    %s (exit %d)\n", t->name, WEXITSTATUS(st));
    }
    fflush(stdout);
    return res;
}

int eb_test_main(int argc, char **argv, const eb_test *tests, size_t n)
{
    const char *only = argc > 1 ? argv[1] : NULL;
    if (only && strcmp(only, "-l") == 0) {
        for (size_t i = 0; i < n; i++)
            printf("%s\n", tests[i].name);
        return 0;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    size_t pass = 0, fail = 0, skip = 0, ran = 0;
    for (size_t i = 0; i < n; i++) {
        if (only && strcmp(only, tests[i].name) != 0)
            continue;
        ran++;
        switch (run_one(&tests[i])) {
        case 0: pass++; break;
        case 2: skip++; break;
        default: fail++; break;
        }
    }
    if (only && ran == 0) {
        fprintf(stderr, "no test named %s\n", only);
        return 2;
    }
    printf("%zu passed, %zu failed, %zu skipped\n", pass, fail, skip);
    return fail ? 1 : 0;
}
