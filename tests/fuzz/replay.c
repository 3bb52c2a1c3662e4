/* replay.c - runs a fuzz target's LLVMFuzzerTestOneInput over files, with
 * the normal compiler and no libFuzzer, so `make test` exercises every fuzz
 * target (normal and ASan+UBSan builds) on its seed corpus and on the
 * regression inputs of bugs found by fuzzing.
 *
 * Usage: fuzz_replay_<target> PATH...
 *   Each PATH is a file or a directory (its regular files, sorted; a missing
 *   directory counts as empty). Each input runs in its own forked process
 *   with a timeout (EB_FUZZ_TIMEOUT seconds, default 30): a crash, an abort
 *   (a failed property check), a sanitizer report, a leak or a hang fails
 *   that input only. Ends with "N passed, N failed" like the unit runner. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reads the whole file; the caller frees *out. 0 or -1. */
static int slurp(const char *path, uint8_t **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    size_t cap = 4096, n = 0;
    uint8_t *b = malloc(cap);
    while (b) {
        n += fread(b + n, 1, cap - n, f);
        if (n < cap)
            break;
        uint8_t *nb = realloc(b, cap *= 2);
        if (!nb)
            free(b);
        b = nb;
    }
    int bad = ferror(f);
    fclose(f);
    if (!b || bad) {
        free(b);
        return -1;
    }
    *out = b;
    *len = n;
    return 0;
}

/* Runs one input in a child; returns 0 when it passed, printing why not. */
static int run_one(const char *path, unsigned timeout)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        printf("FAIL %s: fork: %s\n", path, strerror(errno));
        return -1;
    }
    if (pid == 0) {
        uint8_t *data;
        size_t len;
        if (slurp(path, &data, &len) != 0) {
            fprintf(stderr, "%s: unreadable\n", path);
            _exit(2);
        }
        alarm(timeout);
        /* libFuzzer hands the target an exactly sized heap copy: do the
         * same, so ASan sees reads past the end. */
        uint8_t *copy = malloc(len ? len : 1);
        if (!copy)
            _exit(2);
        memcpy(copy, data, len);
        free(data);
        LLVMFuzzerTestOneInput(copy, len);
        free(copy);
        exit(0); /* exit(), not _exit(): LeakSanitizer checks at exit */
    }
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
        return 0;
    if (WIFSIGNALED(st))
        printf("FAIL %s: %s%s\n", path, strsignal(WTERMSIG(st)),
               WTERMSIG(st) == SIGALRM ? " (timeout)" : "");
    else
        printf("FAIL %s: exit status %d\n", path, WEXITSTATUS(st));
    return -1;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Runs every regular file of dir (sorted); adds to the counts. */
static void run_dir(const char *dir, unsigned timeout, int *pass, int *fail)
{
    DIR *d = opendir(dir);
    if (!d) {
        printf("%s: %s, nothing to replay\n", dir, strerror(errno));
        return;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            char **nn = realloc(names, cap * sizeof *nn);
            if (!nn)
                break;
            names = nn;
        }
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    if (n)
        qsort(names, n, sizeof *names, cmp_names);
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        struct stat sb;
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (names[i] && stat(path, &sb) == 0 && S_ISREG(sb.st_mode))
            *(run_one(path, timeout) == 0 ? pass : fail) += 1;
        free(names[i]);
    }
    free(names);
}

int main(int argc, char **argv)
{
    const char *t = getenv("EB_FUZZ_TIMEOUT");
    unsigned timeout = t && atoi(t) > 0 ? (unsigned)atoi(t) : 30;
    int pass = 0, fail = 0;
    for (int i = 1; i < argc; i++) {
        struct stat sb;
        if (stat(argv[i], &sb) == 0 && S_ISREG(sb.st_mode))
            *(run_one(argv[i], timeout) == 0 ? &pass : &fail) += 1;
        else
            run_dir(argv[i], timeout, &pass, &fail);
    }
    printf("%d passed, %d failed\n", pass, fail);
    return fail ? 1 : 0;
}
