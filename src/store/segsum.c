/* segsum.c - the per-segment summary file of the events store: building
 * it from a segment's records, writing it durably, loading and checking it
 * (the one owner of its format: see segsum.h). */
#include "store/segsum.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "eventbus/err.h"
#include "store/keyidx.h"
#include "util/buf.h"
#include "util/crc32c.h"
#include "util/map.h"
#include "util/xmalloc.h"

#define MAGIC "EBSEGSUM"
#define HDR 80

static void put64(eb_buf *b, uint64_t v)
{
    unsigned char p[8];
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
    eb_buf_append(b, p, 8);
}

static void put32(eb_buf *b, uint32_t v)
{
    unsigned char p[4];
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
    eb_buf_append(b, p, 4);
}

static uint64_t get64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* --- building --------------------------------------------------------------- */

typedef struct idpair {
    uint64_t hash, seq;
} idpair;

typedef struct builder {
    const eb_log_seg_info *seg;
    eb_store_describe_fn   describe;
    uint64_t               next;  /* the seq expected next */
    eb_map                 types; /* type -> count (as a pointer-sized integer) */
    eb_buf                 keys;  /* the key entries, encoded */
    uint64_t               nkeys;
    idpair                *ids, *srcids; /* both nids long */
    size_t                 nids, cap;
    uint64_t               client_ids;
} builder;

static int build_one(void *arg, const eb_log_rec *rec)
{
    builder *b = arg;
    if (rec->seq != b->next) /* retention removed the segment: stop */
        return 1;
    b->next++;
    eb_store_desc d;
    if (!b->describe((const eb_store_rec *)(const void *)rec, &d))
        return b->next >= b->seg->base + b->seg->count;
    if (!d.uncounted) {
        uintptr_t n = (uintptr_t)eb_map_get(&b->types, d.type, d.type_len);
        eb_map_put(&b->types, d.type, d.type_len, (void *)(n + 1), NULL);
    }
    if (d.unindexed)
        return b->next >= b->seg->base + b->seg->count;
    if (d.key_len) {
        put32(&b->keys, (uint32_t)d.key_len);
        eb_buf_append(&b->keys, d.key, d.key_len);
        put64(&b->keys, d.version);
        put64(&b->keys, rec->seq);
        b->nkeys++;
    }
    if (b->nids == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 4096;
        b->ids = eb_xrealloc(b->ids, b->cap * sizeof *b->ids);
        b->srcids = eb_xrealloc(b->srcids, b->cap * sizeof *b->srcids);
    }
    b->srcids[b->nids] = (idpair){
        eb__keyidx_source_id_hash(d.source, d.source_len, d.id, d.id_len), rec->seq};
    b->ids[b->nids++] = (idpair){eb__keyidx_id_hash(d.id, d.id_len), rec->seq};
    b->client_ids += d.client_id != 0;
    return b->next >= b->seg->base + b->seg->count;
}

static int idpair_cmp(const void *x, const void *y)
{
    const idpair *a = x, *b = y;
    if (a->hash != b->hash)
        return a->hash < b->hash ? -1 : 1;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* Sorts pairs by (hash, seq): they come in increasing seqs (build_one), so
 * a stable sort by hash is enough -- an LSD radix sort, a byte a pass
 * (passes where every hash has the same byte are skipped), instead of a
 * qsort calling idpair_cmp n log n times (4% of publishing's CPU). */
static void sort_pairs(idpair *p, size_t n)
{
    if (n < 256) {
        qsort(p, n, sizeof *p, idpair_cmp);
        return;
    }
    idpair *tmp = eb_xmalloc(n * sizeof *tmp), *src = p, *dst = tmp;
    for (unsigned shift = 0; shift < 64; shift += 8) {
        size_t at[256] = {0};
        for (size_t i = 0; i < n; i++)
            at[(src[i].hash >> shift) & 0xff]++;
        if (at[(src[0].hash >> shift) & 0xff] == n)
            continue; /* one value of this byte: nothing moves */
        for (size_t d = 0, sum = 0; d < 256; d++) {
            size_t c = at[d];
            at[d] = sum;
            sum += c;
        }
        for (size_t i = 0; i < n; i++)
            dst[at[(src[i].hash >> shift) & 0xff]++] = src[i];
        idpair *t = src;
        src = dst;
        dst = t;
    }
    if (src != p)
        memcpy(p, src, n * sizeof *p);
    free(tmp);
}

static void put_pairs(eb_buf *out, idpair *p, size_t n)
{
    sort_pairs(p, n);
    for (size_t i = 0; i < n; i++) {
        put64(out, p[i].hash);
        put64(out, p[i].seq);
    }
}

static void encode(builder *b, eb_buf *out)
{
    eb_buf_append(out, MAGIC, 8);
    put32(out, EB_SEGSUM_FORMAT);
    put32(out, HDR);
    put64(out, b->seg->base);
    put64(out, b->seg->count);
    put64(out, b->seg->bytes);
    put64(out, b->types.len);
    put64(out, b->nkeys);
    put64(out, b->nids);
    put64(out, b->client_ids);
    put64(out, b->nids);
    put_pairs(out, b->ids, b->nids);
    put_pairs(out, b->srcids, b->nids);
    size_t it = 0;
    const eb_map_slot *s;
    while ((s = eb_map_next(&b->types, &it))) {
        put32(out, (uint32_t)s->klen);
        eb_buf_append(out, s->key, s->klen);
        put64(out, (uint64_t)(uintptr_t)s->val);
    }
    eb_buf_append(out, b->keys.data, b->keys.len);
    put32(out, eb_crc32c(0, out->data, out->len));
}

/* path as a temp file, fdatasync, rename, fsync of its directory. */
static int write_file(const char *path, const void *p, size_t n)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    int rc = 0;
    for (const char *s = p; n && !rc;) {
        ssize_t w = write(fd, s, n);
        if (w < 0 && errno != EINTR)
            rc = -errno;
        else if (w > 0)
            s += w, n -= (size_t)w;
    }
    if (!rc && fdatasync(fd) != 0)
        rc = -errno;
    close(fd);
    if (!rc && rename(tmp, path) != 0)
        rc = -errno;
    if (rc) {
        unlink(tmp);
        return rc;
    }
    char dir[4200];
    snprintf(dir, sizeof dir, "%s", path);
    int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return -errno;
    rc = fsync(dfd) == 0 ? 0 : -errno;
    close(dfd);
    return rc;
}

static int scan_segment(eb_log *log, const eb_log_seg_info *seg, builder *b)
{
    int rc = 0;
    while (rc == 0 && b->next < seg->base + seg->count) {
        uint64_t before = b->next;
        rc = eb_log_scan(log, b->next, seg->base + seg->count - b->next, build_one, b);
        if (b->next == before)
            break;
    }
    if (rc == 0 && b->next != seg->base + seg->count)
        rc = EB_EGONE;
    return rc;
}

int eb__segsum_build(eb_log *log, const eb_log_seg_info *seg, eb_store_describe_fn d,
                     const char *path, uint64_t *described)
{
    builder b = {.seg = seg, .describe = d, .next = seg->base};
    eb_map_init(&b.types);
    eb_buf_init(&b.keys);
    int rc = scan_segment(log, seg, &b);
    if (described)
        *described = b.next - seg->base;
    if (rc == 0) {
        eb_buf out = EB_BUF_INIT;
        encode(&b, &out);
        rc = eb_buf_failed(&out) ? EB_ENOMEM : write_file(path, out.data, out.len);
        eb_buf_free(&out);
    }
    eb_map_free(&b.types);
    eb_buf_free(&b.keys);
    free(b.ids);
    free(b.srcids);
    return rc;
}

/* --- loading ------------------------------------------------------------------ */

/* Reads the types and key sections of a checked file (p .. end). */
static int parse_sections(const unsigned char *p, const unsigned char *end, uint64_t ntypes,
                          uint64_t nkeys, eb_segsum *out, eb_segsum_key_fn key_fn, void *arg)
{
    if (ntypes > (uint64_t)(end - p) / 12)
        return EB_ECORRUPT;
    out->types = eb_xcalloc(ntypes ? ntypes : 1, sizeof *out->types);
    for (uint64_t i = 0; i < ntypes; i++) {
        if (end - p < 4 || (uint64_t)(end - p - 4) < (uint64_t)get32(p) + 8)
            return EB_ECORRUPT;
        size_t len = get32(p);
        out->types[i] = (eb_segsum_type){eb_xstrndup((const char *)p + 4, len), len,
                                         get64(p + 4 + len)};
        out->ntypes++;
        p += 12 + len;
    }
    /* the keys are checked to the end before any is handed over: a refused
     * file must leave nothing behind (its summary is rebuilt instead) */
    const unsigned char *keys = p;
    for (uint64_t i = 0; i < nkeys; i++) {
        if (end - p < 4 || (uint64_t)(end - p - 4) < (uint64_t)get32(p) + 16)
            return EB_ECORRUPT;
        p += 20 + get32(p);
    }
    if (p != end)
        return EB_ECORRUPT;
    for (p = keys; key_fn && p < end; p += 20 + get32(p))
        key_fn(arg, (const char *)p + 4, get32(p), get64(p + 4 + get32(p)),
               get64(p + 12 + get32(p)));
    return 0;
}

/* Whether the header h (of a file of len bytes) describes seg. */
static bool header_ok(const unsigned char *h, size_t len, const eb_log_seg_info *seg)
{
    return len >= HDR + 4 && memcmp(h, MAGIC, 8) == 0 && get32(h + 8) == EB_SEGSUM_FORMAT &&
           get32(h + 12) == HDR && get64(h + 16) == seg->base && get64(h + 24) == seg->count &&
           get64(h + 32) == seg->bytes && get64(h + 56) <= (len - HDR - 4) / 32 &&
           get64(h + 72) == get64(h + 56) &&
           get32(h + len - 4) == eb_crc32c(0, h, len - 4);
}

int eb__segsum_load(const char *path, const eb_log_seg_info *seg, eb_segsum *out,
                    eb_segsum_key_fn key_fn, void *arg)
{
    memset(out, 0, sizeof *out);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? EB_ENOTFOUND : EB_ECORRUPT;
    struct stat st;
    void *map = MAP_FAILED;
    if (fstat(fd, &st) == 0 && st.st_size >= HDR + 4)
        map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (map == MAP_FAILED)
        return EB_ECORRUPT;
    const unsigned char *h = map;
    size_t len = (size_t)st.st_size;
    out->map = map;
    out->map_len = len;
    int rc = header_ok(h, len, seg) ? 0 : EB_ECORRUPT;
    if (rc == 0) {
        out->seg = *seg;
        out->nids = get64(h + 56);
        out->client_ids = get64(h + 64);
        out->ids = h + HDR;
        out->nsrcids = out->nids;
        out->srcids = out->ids + out->nids * 16;
        rc = parse_sections(h + HDR + out->nids * 32, h + len - 4, get64(h + 40), get64(h + 48),
                            out, key_fn, arg);
    }
    if (rc)
        eb__segsum_free(out);
    return rc;
}

/* The seq of the last of n (hash, seq) pairs at p (sorted) with hash h
 * and a seq below `below`, or 0. */
static uint64_t find_pair(const unsigned char *p, uint64_t n, uint64_t h, uint64_t below)
{
    /* the first index whose (hash, seq) is at or above (h, below), minus one */
    uint64_t lo = 0, hi = n;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2, mh = get64(p + mid * 16);
        if (mh < h || (mh == h && get64(p + mid * 16 + 8) < below))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo && get64(p + (lo - 1) * 16) == h ? get64(p + (lo - 1) * 16 + 8) : 0;
}

uint64_t eb__segsum_find_id(const eb_segsum *s, uint64_t h, uint64_t below)
{
    return find_pair(s->ids, s->nids, h, below);
}

uint64_t eb__segsum_find_source_id(const eb_segsum *s, uint64_t h, uint64_t below)
{
    return find_pair(s->srcids, s->nsrcids, h, below);
}

void eb__segsum_free(eb_segsum *s)
{
    for (size_t i = 0; i < s->ntypes; i++)
        free(s->types[i].name);
    free(s->types);
    if (s->map)
        munmap(s->map, s->map_len);
    memset(s, 0, sizeof *s);
}
