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

/* Little-endian, written in place (a call to append 8 bytes was 1% of
 * publishing's CPU: the summary's pairs and key entries). */
static void put64(eb_buf *b, uint64_t v)
{
    if (!eb_buf_reserve(b, 8))
        return;
    unsigned char *p = (unsigned char *)b->data + b->len;
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
    p[8] = 0; /* as eb_buf_append keeps it */
    b->len += 8;
}

static void put32(eb_buf *b, uint32_t v)
{
    if (!eb_buf_reserve(b, 4))
        return;
    unsigned char *p = (unsigned char *)b->data + b->len;
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
    p[4] = 0;
    b->len += 4;
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

/* --- describing ------------------------------------------------------------ */

typedef eb_segsum_pair idpair;

void eb__segsum_acc_init(eb_segsum_acc *a, uint64_t base)
{
    memset(a, 0, sizeof *a);
    a->base = base;
    a->last_type = UINT32_MAX;
    eb_map_init(&a->type_ix);
    eb_buf_init(&a->keys);
}

void eb__segsum_acc_free(eb_segsum_acc *a)
{
    for (size_t i = 0; i < a->ntypes; i++)
        free(a->types[i].name);
    free(a->types);
    eb_map_free(&a->type_ix);
    eb_buf_free(&a->keys);
    free(a->rec);
    free(a->ids);
    free(a->srcids);
    free(a->keyoff);
    memset(a, 0, sizeof *a);
}

/* The index of type t in a->types, added if new. */
static uint32_t type_index(eb_segsum_acc *a, const char *t, size_t len)
{
    if (a->last_type < a->ntypes && a->types[a->last_type].len == len &&
        memcmp(a->types[a->last_type].name, t, len) == 0)
        return a->last_type; /* the usual case: the type of the record before */
    uintptr_t ix = (uintptr_t)eb_map_get(&a->type_ix, t, len);
    if (ix)
        return a->last_type = (uint32_t)(ix - 1);
    if (a->ntypes == a->types_cap) {
        a->types_cap = a->types_cap ? a->types_cap * 2 : 8;
        a->types = eb_xrealloc(a->types, a->types_cap * sizeof *a->types);
    }
    a->types[a->ntypes] = (eb_segsum_type){eb_xstrndup(t, len), len, 0};
    eb_map_put(&a->type_ix, t, len, (void *)(uintptr_t)(a->ntypes + 1), NULL);
    return a->last_type = (uint32_t)a->ntypes++;
}

static void add_key(eb_segsum_acc *a, const char *key, size_t len, uint64_t version,
                    uint64_t seq)
{
    if (a->nkeys == a->keys_cap) {
        a->keys_cap = a->keys_cap ? a->keys_cap * 2 : 1024;
        a->keyoff = eb_xrealloc(a->keyoff, a->keys_cap * sizeof *a->keyoff);
    }
    a->keyoff[a->nkeys++] = a->keys.len;
    put32(&a->keys, (uint32_t)len);
    eb_buf_append(&a->keys, key, len);
    put64(&a->keys, version);
    put64(&a->keys, seq);
}

void eb__segsum_acc_add(eb_segsum_acc *a, uint64_t seq, const eb_store_desc *d, uint64_t *idh,
                        uint64_t *srch)
{
    if (a->n == a->rec_cap) {
        a->rec_cap = a->rec_cap ? a->rec_cap * 2 : 4096;
        a->rec = eb_xrealloc(a->rec, a->rec_cap * sizeof *a->rec);
    }
    uint32_t r = EB_SEGSUM_UNCOUNTED;
    uint64_t h = 0, sh = 0;
    if (d && !d->uncounted) {
        r = type_index(a, d->type, d->type_len);
        a->types[r].n++;
    }
    if (d && !d->unindexed) {
        if (d->key_len)
            add_key(a, d->key, d->key_len, d->version, seq);
        if (a->nids == a->ids_cap) {
            a->ids_cap = a->ids_cap ? a->ids_cap * 2 : 4096;
            a->ids = eb_xrealloc(a->ids, a->ids_cap * sizeof *a->ids);
            a->srcids = eb_xrealloc(a->srcids, a->ids_cap * sizeof *a->srcids);
        }
        h = eb__keyidx_id_hash(d->id, d->id_len);
        sh = eb__keyidx_source_id_hash(d->source, d->source_len, d->id, d->id_len);
        a->ids[a->nids] = (idpair){h, seq};
        a->srcids[a->nids++] = (idpair){sh, seq};
        if (d->client_id) {
            a->client_ids++;
            r |= EB_SEGSUM_CLIENT_ID;
        }
    }
    a->rec[a->n++] = r;
    if (idh)
        *idh = h;
    if (srch)
        *srch = sh;
}

/* The first of n pairs (in seq order) whose seq is at or above `end`. */
static size_t pairs_below(const idpair *p, size_t n, uint64_t end)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (p[mid].seq < end)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static uint64_t key_seq(const eb_segsum_acc *a, size_t i)
{
    const unsigned char *e = (const unsigned char *)a->keys.data + a->keyoff[i];
    return get64(e + 12 + get32(e));
}

/* The records from `end` on leave *out (made from a's arrays) for a: the
 * arrays go over whole, only the part past `end` is copied (the records
 * appended after the seal: usually a batch or two). */
void eb__segsum_acc_split(eb_segsum_acc *a, uint64_t end, eb_segsum_acc *out)
{
    if (end < a->base)
        end = a->base;
    if (end > a->base + a->n)
        end = a->base + a->n;
    *out = *a;
    eb__segsum_acc_init(a, end);
    size_t keep = (size_t)(end - out->base);
    for (size_t i = keep; i < out->n; i++) { /* the tail's records move to a */
        uint32_t r = out->rec[i], t = r & ~EB_SEGSUM_CLIENT_ID;
        if (t != EB_SEGSUM_UNCOUNTED) {
            out->types[t].n--;
            t = type_index(a, out->types[t].name, out->types[t].len);
            a->types[t].n++;
        }
        if (r & EB_SEGSUM_CLIENT_ID) {
            out->client_ids--;
            a->client_ids++;
        }
        if (a->n == a->rec_cap) {
            a->rec_cap = a->rec_cap ? a->rec_cap * 2 : 4096;
            a->rec = eb_xrealloc(a->rec, a->rec_cap * sizeof *a->rec);
        }
        a->rec[a->n++] = t | (r & EB_SEGSUM_CLIENT_ID);
    }
    out->n = keep;
    size_t k = pairs_below(out->ids, out->nids, end);
    if (k < out->nids) {
        a->ids_cap = out->nids - k > 4096 ? out->nids - k : 4096;
        a->ids = eb_xmalloc(a->ids_cap * sizeof *a->ids);
        a->srcids = eb_xmalloc(a->ids_cap * sizeof *a->srcids);
        a->nids = out->nids - k;
        memcpy(a->ids, out->ids + k, a->nids * sizeof *a->ids);
        memcpy(a->srcids, out->srcids + k, a->nids * sizeof *a->srcids);
        out->nids = k;
    }
    size_t kk = out->nkeys;
    while (kk > 0 && key_seq(out, kk - 1) >= end)
        kk--;
    for (size_t i = kk; i < out->nkeys; i++) {
        const unsigned char *e = (const unsigned char *)out->keys.data + out->keyoff[i];
        uint32_t len = get32(e);
        add_key(a, (const char *)e + 4, len, get64(e + 4 + len), get64(e + 12 + len));
    }
    if (kk < out->nkeys) {
        out->keys.len = out->keyoff[kk];
        out->nkeys = kk;
    }
}

/* --- building --------------------------------------------------------------- */

typedef struct builder {
    const eb_log_seg_info *seg;
    eb_store_describe_fn   describe;
    eb_segsum_acc          acc;
} builder;

static int build_one(void *arg, const eb_log_rec *rec)
{
    builder *b = arg;
    uint64_t next = b->acc.base + b->acc.n;
    if (rec->seq != next) /* retention removed the segment: stop */
        return 1;
    eb_store_desc d;
    int ev = b->describe((const eb_store_rec *)(const void *)rec, &d);
    eb__segsum_acc_add(&b->acc, rec->seq, ev ? &d : NULL, NULL, NULL);
    return next + 1 >= b->seg->base + b->seg->count;
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

static void encode(eb_segsum_acc *a, const eb_log_seg_info *seg, eb_buf *out)
{
    size_t ntypes = 0;
    for (size_t t = 0; t < a->ntypes; t++)
        ntypes += a->types[t].n != 0;
    eb_buf_reserve(out, HDR + 4 + a->nids * 32 + a->keys.len + ntypes * 64);
    eb_buf_append(out, MAGIC, 8);
    put32(out, EB_SEGSUM_FORMAT);
    put32(out, HDR);
    put64(out, seg->base);
    put64(out, seg->count);
    put64(out, seg->bytes);
    put64(out, ntypes);
    put64(out, a->nkeys);
    put64(out, a->nids);
    put64(out, a->client_ids);
    put64(out, a->nids);
    put_pairs(out, a->ids, a->nids);
    put_pairs(out, a->srcids, a->nids);
    for (size_t t = 0; t < a->ntypes; t++) {
        if (!a->types[t].n)
            continue; /* its records were split off */
        put32(out, (uint32_t)a->types[t].len);
        eb_buf_append(out, a->types[t].name, a->types[t].len);
        put64(out, a->types[t].n);
    }
    eb_buf_append(out, a->keys.data, a->keys.len);
    put32(out, eb_crc32c(0, out->data, out->len));
}

/* n bytes at p into fd: 0 or -errno. */
static int write_all(int fd, const void *p, size_t n)
{
    for (const char *s = p; n;) {
        ssize_t w = write(fd, s, n);
        if (w < 0 && errno != EINTR)
            return -errno;
        if (w > 0)
            s += w, n -= (size_t)w;
    }
    return 0;
}

/* path as a temp file, fdatasync, rename, fsync of its directory. */
static int write_file(const char *path, const void *p, size_t n)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    int rc = write_all(fd, p, n);
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
    uint64_t end = seg->base + seg->count;
    while (rc == 0 && b->acc.base + b->acc.n < end) {
        uint64_t before = b->acc.n;
        rc = eb_log_scan(log, b->acc.base + b->acc.n, end - b->acc.base - b->acc.n, build_one, b);
        if (b->acc.n == before)
            break;
    }
    if (rc == 0 && b->acc.base + b->acc.n != end)
        rc = EB_EGONE;
    return rc;
}

int eb__segsum_encode(eb_segsum_acc *a, const eb_log_seg_info *seg, eb_buf *out)
{
    if (a->base != seg->base || a->n != seg->count)
        return EB_EINVAL;
    encode(a, seg, out);
    return eb_buf_failed(out) ? EB_ENOMEM : 0;
}

int eb__segsum_write(eb_segsum_acc *a, const eb_log_seg_info *seg, const char *path)
{
    eb_buf out = EB_BUF_INIT;
    int rc = eb__segsum_encode(a, seg, &out);
    if (rc == 0)
        rc = write_file(path, out.data, out.len);
    eb_buf_free(&out);
    return rc;
}

int eb__segsum_build(eb_log *log, const eb_log_seg_info *seg, eb_store_describe_fn d,
                     const char *path, uint64_t *described)
{
    builder b = {.seg = seg, .describe = d};
    eb__segsum_acc_init(&b.acc, seg->base);
    int rc = scan_segment(log, seg, &b);
    if (described)
        *described = b.acc.n;
    if (rc == 0)
        rc = eb__segsum_write(&b.acc, seg, path);
    eb__segsum_acc_free(&b.acc);
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

/* Whether the header h (of a file of len bytes) describes seg (NULL:
 * any records). */
static bool header_ok(const unsigned char *h, size_t len, const eb_log_seg_info *seg)
{
    return len >= HDR + 4 && memcmp(h, MAGIC, 8) == 0 && get32(h + 8) == EB_SEGSUM_FORMAT &&
           get32(h + 12) == HDR &&
           (!seg || (get64(h + 16) == seg->base && get64(h + 24) == seg->count &&
                     get64(h + 32) == seg->bytes)) &&
           get64(h + 56) <= (len - HDR - 4) / 32 &&
           get64(h + 72) == get64(h + 56) &&
           get32(h + len - 4) == eb_crc32c(0, h, len - 4);
}

/* Checks and parses the summary at out->map (out->map_len bytes). */
static int parse(const eb_log_seg_info *seg, eb_segsum *out, eb_segsum_key_fn key_fn, void *arg)
{
    const unsigned char *h = out->map;
    size_t len = out->map_len;
    int rc = header_ok(h, len, seg) ? 0 : EB_ECORRUPT;
    if (rc == 0) {
        out->seg = (eb_log_seg_info){get64(h + 16), get64(h + 24), get64(h + 32)};
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
    out->map = map;
    out->map_len = (size_t)st.st_size;
    return parse(seg, out, key_fn, arg);
}

int eb__segsum_load_mem(const void *p, size_t len, const eb_log_seg_info *seg, eb_segsum *out,
                        eb_segsum_key_fn key_fn, void *arg)
{
    memset(out, 0, sizeof *out);
    if (len < HDR + 4)
        return EB_ECORRUPT;
    /* A scratch file without a name (O_TMPFILE), mapped: its pages are the kernel's to
     * evict, as a log engine's summary's are, where a heap copy would keep
     * every retained event's id pairs in memory. */
    const char *dir = getenv("TMPDIR");
    int fd = open(dir && *dir ? dir : "/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    void *map = MAP_FAILED;
    if (fd >= 0) {
        if (write_all(fd, p, len) == 0)
            map = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
        close(fd);
    }
    if (map == MAP_FAILED) { /* no scratch space: on the heap */
        map = eb_xmalloc(len);
        memcpy(map, p, len);
        out->heap = true;
    }
    out->map = map;
    out->map_len = len;
    return parse(seg, out, key_fn, arg);
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
    if (s->map && s->heap)
        free(s->map);
    else if (s->map)
        munmap(s->map, s->map_len);
    memset(s, 0, sizeof *s);
}

/* --- a store's summaries ------------------------------------------------------ */

uint64_t eb__segsum_set_find(eb_segsum *const *sums, size_t n, bool by_source, uint64_t h,
                             uint64_t below)
{
    uint64_t seq = 0;
    for (size_t i = n; i-- > 0 && !seq;)
        seq = by_source ? eb__segsum_find_source_id(sums[i], h, below)
                        : eb__segsum_find_id(sums[i], h, below);
    return seq;
}

void eb__segsum_set_type_counts(eb_segsum *const *sums, size_t n, uint64_t from, uint64_t to,
                                uint64_t *lo, uint64_t *hi,
                                void (*fn)(void *, const char *, size_t, uint64_t), void *arg)
{
    size_t i = 0;
    while (i < n && sums[i]->seg.base < from)
        i++;
    *lo = *hi = i < n ? sums[i]->seg.base : from;
    for (; i < n; i++) {
        const eb_segsum *m = sums[i];
        if (m->seg.base != *hi || m->seg.base + m->seg.count > to)
            break; /* a gap (not summarized yet) or past the range */
        for (size_t t = 0; t < m->ntypes; t++)
            fn(arg, m->types[t].name, m->types[t].len, m->types[t].n);
        *hi = m->seg.base + m->seg.count;
    }
    if (*lo > to || *hi == *lo)
        *lo = *hi = from;
}

void eb__segsum_set_client_id_range(eb_segsum *const *sums, size_t n, uint64_t from,
                                    uint64_t *lo, uint64_t *hi)
{
    size_t i = 0;
    while (i < n && sums[i]->seg.base + sums[i]->seg.count <= from)
        i++;
    /* from is inside (or at the start of) sums[i]: skip while it has none */
    while (i < n && sums[i]->seg.base <= from && sums[i]->client_ids == 0) {
        from = sums[i]->seg.base + sums[i]->seg.count;
        i++;
    }
    *lo = from;
    *hi = UINT64_MAX;
    for (; i < n; i++)
        if (sums[i]->client_ids == 0 && sums[i]->seg.base > from) {
            *hi = sums[i]->seg.base;
            break;
        }
}
