/* reader.c - reading the log: one record by seq, scans in large chunks of
 * whole records, seeks by time; durable records only (see log.h). */
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

/* --- reading -------------------------------------------------------------------- */

/* The segment holding seq (caller holds rw), or NULL. */
static seg *find_seg(eb_log *l, uint64_t seq)
{
    size_t lo = 0, hi = l->nsegs;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (l->segs[mid]->base <= seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return NULL;
    seg *s = l->segs[lo - 1];
    return seq < s->base + s->count ? s : NULL;
}

/* n bytes at off of segment s into p: a small read of a sealed segment
 * from its mapping (no system call: a key's stream reads one record per
 * event, at random places), else pread (a scan's large chunks: one call
 * per 256 KiB costs less than the page faults of copying that much from a
 * mapping touched for the first time). */
#define MAP_READ_MAX (16u << 10)
static bool read_at(const seg *s, void *p, size_t n, uint64_t off)
{
    if (s->data && n <= MAP_READ_MAX && off + n <= s->size) {
        memcpy(p, s->data + off, n);
        return true;
    }
    return pread(s->fd, p, n, (off_t)off) == (ssize_t)n;
}

int eb_log_read(eb_log *l, uint64_t seq, eb_log_rec *rec, eb_buf *scratch)
{
    if (seq >= atomic_load(&l->durable))
        return EB_ENOTFOUND;
    pthread_rwlock_rdlock(&l->rw);
    seg *s = find_seg(l, seq);
    int rc = 0;
    if (!s) {
        rc = seq < l->segs[0]->base ? EB_EGONE : EB_ENOTFOUND;
    } else {
        uint64_t off = eb__log_idx_off(s, seq - s->base);
        unsigned char hb[EB_LOG_REC_HDR];
        eb_log_rhdr h;
        if (!read_at(s, hb, sizeof hb, off)) {
            rc = EB_EIO;
        } else {
            eb__log_rhdr_decode(hb, &h);
            eb_buf_reset(scratch);
            if (h.len > l->o.max_record_bytes || !eb_buf_reserve(scratch, h.len))
                rc = h.len > l->o.max_record_bytes ? EB_ECORRUPT : EB_ENOMEM;
            else if (!read_at(s, scratch->data, h.len, off + EB_LOG_REC_HDR))
                rc = EB_EIO;
            else if (eb__log_rec_crc(hb, scratch->data, h.len) != h.crc || h.seq != seq)
                rc = EB_ECORRUPT;
            if (!rc) {
                scratch->len = h.len;
                *rec = (eb_log_rec){h.seq, h.ts_us, h.type, h.flags, h.len, scratch->data};
            }
        }
    }
    pthread_rwlock_unlock(&l->rw);
    return rc;
}

/* Reads up to `chunk` bytes of whole records starting at seq into buf.
 * Returns the number of records in it (0 at the end), or an error. */
static long read_chunk(eb_log *l, uint64_t seq, size_t max, size_t chunk, eb_buf *buf,
                       uint64_t *first)
{
    uint64_t durable = atomic_load(&l->durable);
    pthread_rwlock_rdlock(&l->rw);
    if (seq < l->segs[0]->base)
        seq = l->segs[0]->base;
    *first = seq;
    seg *s = seq < durable ? find_seg(l, seq) : NULL;
    long n = 0;
    if (s) {
        uint64_t i = seq - s->base, end_i = i, limit = s->count;
        uint64_t start = eb__log_idx_off(s, i);
        if (durable - s->base < limit)
            limit = durable - s->base;
        /* Take whole records while they fit in the chunk (at least one). */
        while (end_i < limit && (uint64_t)(end_i - i) < max) {
            uint64_t next = end_i + 1 < s->count ? eb__log_idx_off(s, end_i + 1) : s->size;
            if (end_i > i && next - start > chunk)
                break;
            end_i++;
        }
        uint64_t stop = end_i < s->count ? eb__log_idx_off(s, end_i) : s->size;
        size_t len = (size_t)(stop - start);
        eb_buf_reset(buf);
        if (!eb_buf_reserve(buf, len))
            n = EB_ENOMEM;
        else if (!read_at(s, buf->data, len, start))
            n = EB_EIO;
        else {
            buf->len = len;
            n = (long)(end_i - i);
        }
    }
    pthread_rwlock_unlock(&l->rw);
    return n;
}

int eb_log_scan(eb_log *l, uint64_t from_seq, size_t max,
                int (*cb)(void *arg, const eb_log_rec *rec), void *arg)
{
    eb_buf buf = EB_BUF_INIT;
    int rc = 0;
    uint64_t seq = from_seq;
    size_t chunk = 16u << 10;
    while (max > 0 && rc == 0) {
        uint64_t first;
        long n = read_chunk(l, seq, max, chunk, &buf, &first);
        /* Small first: a scan that stops after a record or two (a group
         * filling one delivery, at startup once per group) reads 16 KiB,
         * not 256 KiB into a fresh buffer; a long one grows to READ_CHUNK. */
        chunk = chunk * 4 < READ_CHUNK ? chunk * 4 : READ_CHUNK;
        if (n <= 0) {
            rc = (int)n;
            break;
        }
        const unsigned char *p = (const unsigned char *)buf.data;
        for (long i = 0; i < n; i++) {
            eb_log_rhdr h;
            eb__log_rhdr_decode(p, &h);
            if (h.seq != first + (uint64_t)i ||
                eb__log_rec_crc(p, p + EB_LOG_REC_HDR, h.len) != h.crc) {
                rc = EB_ECORRUPT;
                break;
            }
            eb_log_rec r = {h.seq, h.ts_us, h.type, h.flags, h.len, p + EB_LOG_REC_HDR};
            p += EB_LOG_REC_HDR + h.len;
            max--;
            if (cb(arg, &r)) {
                max = 0;
                break;
            }
        }
        seq = first + (uint64_t)n;
    }
    eb_buf_free(&buf);
    return rc;
}

int eb_log_seek_time(eb_log *l, uint64_t ts_us, uint64_t *seq)
{
    uint64_t durable = atomic_load(&l->durable);
    int rc = EB_ENOTFOUND;
    pthread_rwlock_rdlock(&l->rw);
    for (size_t k = 0; k < l->nsegs; k++) { /* segments: few; records: binary search */
        seg *s = l->segs[k];
        uint64_t n = s->count;
        if (s->base + n > durable)
            n = durable > s->base ? durable - s->base : 0;
        if (n == 0 || eb__log_idx_ts(s, n - 1) < ts_us)
            continue;
        uint64_t lo = 0, hi = n - 1;
        while (lo < hi) {
            uint64_t mid = (lo + hi) / 2;
            if (eb__log_idx_ts(s, mid) >= ts_us)
                hi = mid;
            else
                lo = mid + 1;
        }
        *seq = s->base + lo;
        rc = 0;
        break;
    }
    pthread_rwlock_unlock(&l->rw);
    return rc;
}
