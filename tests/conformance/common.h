/* common.h - small file helpers for the conformance runners. */
#ifndef EB_CONFORMANCE_COMMON_H
#define EB_CONFORMANCE_COMMON_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"

/* Reads a whole file into b; 0 or -1. */
static inline int read_file(const char *path, eb_buf *b)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    eb_buf_reset(b);
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        eb_buf_append(b, chunk, n);
    fclose(f);
    if (!b->data)
        eb_buf_reserve(b, 1);
    return eb_buf_failed(b) ? -1 : 0;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted names of the regular entries in dir ending with suffix; the caller
 * frees each and the array. Returns the count, or -1 if dir is missing. */
static inline int list_dir(const char *dir, const char *suffix, char ***out)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0, cap = 0;
    char **v = NULL;
    struct dirent *e;
    size_t sl = strlen(suffix);
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (e->d_name[0] == '.' || l < sl || strcmp(e->d_name + l - sl, suffix))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            v = realloc(v, (size_t)cap * sizeof *v);
        }
        v[n++] = strdup(e->d_name);
    }
    closedir(d);
    if (n)
        qsort(v, (size_t)n, sizeof *v, cmp_names);
    *out = v;
    return n;
}

#endif
