/* recover.c - the log's files: segment paths, index files (written when
 * a segment seals, mapped at open, rebuilt when missing or stale), new
 * segments, and recovery at open (see log_impl.h, ARCHITECTURE.md). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log/log_impl.h"
#include "util/clock.h"
#include "util/crc32c.h"
#include "util/xmalloc.h"

/* --- files ------------------------------------------------------------------ */

void eb__log_seg_path(const eb_log *l, uint64_t base, const char *ext, char *out, size_t n)
{
    snprintf(out, n, "%s/%020" PRIu64 ".%s", l->dir, base, ext);
}

int eb__log_fsync_dir(eb_log *l)
{
    return DIR_FSYNC(l->dir_fd) == 0 ? 0 : -errno;
}



int eb__log_write_all(int fd, const void *p, size_t n, uint64_t off)
{
    const char *s = p;
    while (n) {
        ssize_t w = pwrite(fd, s, n, (off_t)off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        s += w;
        n -= (size_t)w;
        off += (uint64_t)w;
    }
    return 0;
}


void eb__log_seg_free(seg *s)
{
    if (!s)
        return;
    if (s->fd >= 0)
        close(s->fd);
    if (s->map)
        munmap(s->map, s->map_len);
    else
        free(s->idx);
    if (s->data)
        munmap((void *)s->data, s->size);
    free(s);
}

void eb__log_map_data(seg *s)
{
    void *p = s->size ? mmap(NULL, s->size, PROT_READ, MAP_SHARED, s->fd, 0) : MAP_FAILED;
    s->data = p == MAP_FAILED ? NULL : p;
}

/* Index file: header (48 bytes) then count entries.
 *   0 magic "EBLOGIDX", 8 u32 version, 12 u32 entry size (16), 16 u64 base,
 *   24 u64 count, 32 u64 segment file size it describes, 40 u32 CRC32C of
 *   the entries, 44 u32 CRC32C of bytes 0..43. */
int eb__log_write_index(eb_log *l, const seg *s)
{
    char path[1200], tmp[1210];
    eb__log_seg_path(l, s->base, "idx", path, sizeof path);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    unsigned char h[EB_LOG_IDX_HDR] = {0};
    memcpy(h, EB_LOG_IDX_MAGIC, 8);
    eb__put32(h + 8, EB_LOG_VERSION);
    eb__put32(h + 12, EB_LOG_IDX_ENT);
    eb__put64(h + 16, s->base);
    eb__put64(h + 24, s->count);
    eb__put64(h + 32, s->size);
    eb__put32(h + 40, s->count ? eb_crc32c(0, s->idx, s->count * EB_LOG_IDX_ENT) : 0);
    eb__put32(h + 44, eb_crc32c(0, h, 44));
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    int rc = eb__log_write_all(fd, h, sizeof h, 0);
    if (!rc && s->count)
        rc = eb__log_write_all(fd, s->idx, s->count * EB_LOG_IDX_ENT, EB_LOG_IDX_HDR);
    if (!rc && fdatasync(fd) != 0)
        rc = -errno;
    close(fd);
    if (!rc && rename(tmp, path) != 0)
        rc = -errno;
    return rc ? rc : eb__log_fsync_dir(l);
}

/* Maps a sealed segment's index file if it matches the segment; -1 if it
 * is missing or stale. */
static int load_index(eb_log *l, seg *s, uint64_t seg_size)
{
    char path[1200];
    eb__log_seg_path(l, s->base, "idx", path, sizeof path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct stat st;
    unsigned char h[EB_LOG_IDX_HDR];
    int ok = fstat(fd, &st) == 0 && pread(fd, h, sizeof h, 0) == (ssize_t)sizeof h &&
             !memcmp(h, EB_LOG_IDX_MAGIC, 8) && eb__get32(h + 8) == EB_LOG_VERSION &&
             eb__get32(h + 12) == EB_LOG_IDX_ENT && eb__get64(h + 16) == s->base &&
             eb__get64(h + 32) == seg_size && eb__get32(h + 44) == eb_crc32c(0, h, 44);
    uint64_t count = ok ? eb__get64(h + 24) : 0;
    ok = ok && (uint64_t)st.st_size == EB_LOG_IDX_HDR + count * EB_LOG_IDX_ENT && count > 0;
    void *map = ok ? mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0) : MAP_FAILED;
    close(fd);
    if (map == MAP_FAILED)
        return -1;
    unsigned char *ents = (unsigned char *)map + EB_LOG_IDX_HDR;
    if (eb_crc32c(0, ents, count * EB_LOG_IDX_ENT) != eb__get32(h + 40)) {
        munmap(map, (size_t)st.st_size);
        return -1;
    }
    s->map = map;
    s->map_len = (size_t)st.st_size;
    s->idx = ents;
    s->count = count;
    s->size = seg_size;
    return 0;
}

static void add_seg(eb_log *l, seg *s)
{
    if (l->nsegs == l->segs_cap) {
        size_t cap = l->segs_cap ? l->segs_cap * 2 : 16;
        l->segs = eb_xrealloc(l->segs, cap * sizeof *l->segs);
        l->segs_cap = cap;
    }
    l->segs[l->nsegs++] = s;
}

/* Creates a new empty active segment starting at base. */
int eb__log_new_segment(eb_log *l, uint64_t base)
{
    char path[1200];
    eb__log_seg_path(l, base, "seg", path, sizeof path);
    seg *s = eb_xcalloc(1, sizeof *s);
    s->base = base;
    s->fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (s->fd < 0) {
        int e = -errno;
        free(s);
        return e;
    }
    unsigned char h[EB_LOG_SEG_HDR];
    eb__log_seg_hdr(h, base, l->o.clock(l->o.clock_arg));
    int rc = eb__log_write_all(s->fd, h, sizeof h, 0);
    if (!rc && fdatasync(s->fd) != 0)
        rc = -errno;
    if (!rc)
        rc = eb__log_fsync_dir(l);
    s->size = EB_LOG_SEG_HDR;
    if (!rc)
        add_seg(l, s);
    if (rc) {
        eb__log_seg_free(s);
        unlink(path);
    }
    return rc;
}

/* --- recovery --------------------------------------------------------------- */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Lists the base seqs of the *.seg files, sorted. */
static int list_segments(eb_log *l, uint64_t **bases, size_t *n)
{
    DIR *d = opendir(l->dir);
    if (!d)
        return -errno;
    size_t cap = 0;
    *n = 0;
    *bases = NULL;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        char *end;
        if (len != 24 || strcmp(e->d_name + 20, ".seg") != 0)
            continue;
        uint64_t b = strtoull(e->d_name, &end, 10);
        if (end != e->d_name + 20)
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 64;
            *bases = eb_xrealloc(*bases, cap * sizeof **bases);
        }
        (*bases)[(*n)++] = b;
    }
    closedir(d);
    if (*n > 1)
        qsort(*bases, *n, sizeof **bases, cmp_u64);
    return 0;
}

/* Opens a segment: sealed ones through their index file (rebuilt if
 * needed), the active one by scanning it and cutting a torn tail. */
static int open_segment(eb_log *l, uint64_t base, bool active, eb_log_recovery *rep)
{
    char path[1200];
    eb__log_seg_path(l, base, "seg", path, sizeof path);
    seg *s = eb_xcalloc(1, sizeof *s);
    s->base = base;
    s->sealed = !active;
    s->fd = open(path, (active ? O_RDWR : O_RDONLY) | O_CLOEXEC);
    struct stat st;
    if (s->fd < 0 || fstat(s->fd, &st) != 0) {
        int e = -errno;
        eb__log_seg_free(s);
        return e;
    }
    if (!active && load_index(l, s, (uint64_t)st.st_size) == 0) {
        eb__log_map_data(s);
        add_seg(l, s);
        return 0;
    }
    eb__seg_scan sc;
    int rc = eb__log_scan_segment(path, l->o.max_record_bytes, &sc);
    if (!rc && sc.base != base)
        sc.problem = "segment header names another base";
    if (!rc && sc.problem && !active) {
        rc = EB_ECORRUPT; /* damage inside a sealed segment: not a torn tail */
    } else if (!rc && sc.problem) {
        rep->truncated_bytes += sc.file_size - sc.valid_end;
        if (sc.valid_end < EB_LOG_SEG_HDR) { /* torn header: rewrite it */
            unsigned char h[EB_LOG_SEG_HDR];
            eb__log_seg_hdr(h, base, l->o.clock(l->o.clock_arg));
            rc = eb__log_write_all(s->fd, h, sizeof h, 0);
            sc.valid_end = EB_LOG_SEG_HDR;
        }
        if (!rc && (ftruncate(s->fd, (off_t)sc.valid_end) != 0 || fdatasync(s->fd) != 0))
            rc = -errno;
    }
    if (rc) {
        free(sc.idx);
        eb__log_seg_free(s);
        return rc;
    }
    s->idx = sc.idx;
    s->idx_cap = sc.count;
    s->count = sc.count;
    s->size = sc.valid_end;
    if (!active) {
        rep->indexes_rebuilt++;
        rc = eb__log_write_index(l, s);
    }
    if (rc) {
        eb__log_seg_free(s);
        return rc;
    }
    if (!active)
        eb__log_map_data(s);
    add_seg(l, s);
    return 0;
}

int eb__log_recover(eb_log *l, eb_log_recovery *rep)
{
    uint64_t *bases = NULL;
    size_t n = 0;
    int rc = list_segments(l, &bases, &n);
    if (rc)
        return rc;
    for (size_t i = 0; i < n && !rc; i++)
        rc = open_segment(l, bases[i], i + 1 == n, rep);
    free(bases);
    for (size_t i = 1; i < l->nsegs && !rc; i++)
        if (l->segs[i]->base != l->segs[i - 1]->base + l->segs[i - 1]->count)
            rc = EB_ECORRUPT; /* a gap or overlap between segments */
    if (!rc && l->nsegs == 0)
        rc = eb__log_new_segment(l, 1);
    if (rc)
        return rc;
    seg *a = l->segs[l->nsegs - 1];
    l->next_seq = a->base + a->count;
    for (size_t i = l->nsegs; i-- > 0;)
        if (l->segs[i]->count) {
            l->last_ts = eb__log_idx_ts(l->segs[i], l->segs[i]->count - 1);
            break;
        }
    atomic_store(&l->durable, l->next_seq);
    atomic_store(&l->first, l->segs[0]->base);
    rep->segments = l->nsegs;
    rep->first_seq = l->next_seq > l->segs[0]->base ? l->segs[0]->base : 0;
    rep->last_seq = l->next_seq > l->segs[0]->base ? l->next_seq - 1 : 0;
    rep->records = l->next_seq - l->segs[0]->base;
    return 0;
}
