/* segment.c - reading a whole segment file: checking every record and
 * building its index. Used by recovery (the active segment, or a sealed one
 * whose index is missing) and by `eventbus-log verify`. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "eventbus/err.h"
#include "log/log_int.h"
#include "util/xmalloc.h"

#define SCAN_CHUNK (1u << 20)

typedef struct scanner {
    int            fd;
    unsigned char *buf;    /* window of the file */
    size_t         cap;
    uint64_t       win_off; /* file offset of buf[0] */
    size_t         win_len; /* valid bytes in buf */
} scanner;

/* Makes [off, off+n) available in the window; returns a pointer or NULL
 * at end of file (or error, with *err set). */
static const unsigned char *need(scanner *s, uint64_t off, size_t n, int *err)
{
    if (off >= s->win_off && off + n <= s->win_off + s->win_len)
        return s->buf + (off - s->win_off);
    size_t want = n > SCAN_CHUNK ? n : SCAN_CHUNK;
    if (want > s->cap) {
        s->buf = eb_xrealloc(s->buf, want);
        s->cap = want;
    }
    ssize_t r = pread(s->fd, s->buf, s->cap, (off_t)off);
    if (r < 0) {
        *err = -errno;
        return NULL;
    }
    s->win_off = off;
    s->win_len = (size_t)r;
    return (size_t)r >= n ? s->buf : NULL;
}

/* Makes room for entry `need` (0-based) in the index being built. */
static void grow_idx(eb__seg_scan *o, size_t *cap, uint64_t need)
{
    if (need < *cap)
        return;
    size_t nc = *cap ? *cap * 2 : 4096;
    while (nc <= need)
        nc *= 2;
    o->idx = eb_xrealloc(o->idx, nc * EB_LOG_IDX_ENT);
    *cap = nc;
}

static int scan_records(scanner *s, uint32_t max_record, eb__seg_scan *o)
{
    uint64_t off = EB_LOG_SEG_HDR, pending = 0; /* records of an unfinished batch */
    size_t cap = 0;
    int err = 0;
    o->valid_end = off;
    for (;;) {
        const unsigned char *h = need(s, off, EB_LOG_REC_HDR, &err);
        if (!h) {
            if (!err && off < o->file_size)
                o->problem = "truncated record header";
            break;
        }
        eb_log_rhdr r;
        eb__log_rhdr_decode(h, &r);
        if (r.len > max_record) {
            o->problem = "record length out of range";
            break;
        }
        const unsigned char *rec = need(s, off, EB_LOG_REC_HDR + r.len, &err);
        if (!rec) {
            if (!err)
                o->problem = "truncated record";
            break;
        }
        if (eb__log_rec_crc(rec, rec + EB_LOG_REC_HDR, r.len) != r.crc) {
            o->problem = "checksum mismatch";
            break;
        }
        if (r.seq != o->base + o->count + pending) {
            o->problem = "sequence number out of order";
            break;
        }
        grow_idx(o, &cap, o->count + pending);
        unsigned char *e = o->idx + (o->count + pending) * EB_LOG_IDX_ENT;
        eb__put64(e, off);
        eb__put64(e + 8, r.ts_us);
        off += EB_LOG_REC_HDR + r.len;
        pending++;
        if (r.batch_left == 0) { /* a complete atomic append */
            o->count += pending;
            pending = 0;
            o->valid_end = off;
        }
    }
    if (!o->problem && pending)
        o->problem = "incomplete batch at the end";
    if (o->problem)
        o->problem_at = o->valid_end;
    return err;
}

int eb__log_scan_segment(const char *path, uint32_t max_record, eb__seg_scan *out)
{
    memset(out, 0, sizeof *out);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    out->file_size = (uint64_t)st.st_size;
    scanner s = {fd, NULL, 0, 0, 0};
    int err = 0;
    const unsigned char *h = need(&s, 0, EB_LOG_SEG_HDR, &err);
    if (!h || eb__log_seg_hdr_check(h, &out->base) != 0) {
        out->problem = "bad segment header";
        out->problem_at = 0;
        out->valid_end = 0;
    } else {
        err = scan_records(&s, max_record, out);
    }
    free(s.buf);
    close(fd);
    return err;
}
