/* keyidx.c - per-key streams and the id lookup (see keyidx.h). */
#include "store/keyidx.h"
#include "util/xmalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "eventbus/err.h"
#include "util/buf.h"
#include "util/crc32c.h"

/* One key's stream: versions base .. base + n - 1 at seqs[0 .. n-1]. */
typedef struct eb_keystream {
    uint64_t  base;
    size_t    n, cap;
    uint64_t *seqs;
} eb_keystream;

void eb__keyidx_init(eb_keyidx *x)
{
    memset(x, 0, sizeof *x);
    eb_map_init(&x->keys);
    eb_imap_init(&x->ids);
}

void eb__keyidx_free(eb_keyidx *x)
{
    size_t it = 0;
    const eb_map_slot *s;
    while ((s = eb_map_next(&x->keys, &it))) {
        eb_keystream *ks = s->val;
        free(ks->seqs);
        free(ks);
    }
    eb_map_free(&x->keys);
    eb_imap_free(&x->ids);
}

uint64_t eb__keyidx_version(const eb_keyidx *x, const char *key, size_t n)
{
    const eb_keystream *ks = eb_map_get(&x->keys, key, n);
    return ks && ks->n ? ks->base + ks->n - 1 : 0;
}

int eb__keyidx_add(eb_keyidx *x, const char *key, size_t n, uint64_t version, uint64_t seq)
{
    eb_keystream *ks = eb_map_get(&x->keys, key, n);
    if (!ks) {
        ks = eb_xcalloc(1, sizeof *ks);
        eb_map_put(&x->keys, key, n, ks, NULL);
    }
    uint64_t next = ks->n ? ks->base + ks->n : (version ? version : 1);
    if (version && version != next) { /* a gap (events lost to damage): restart */
        ks->n = 0;
        next = version;
    }
    if (ks->n == 0)
        ks->base = next;
    if (ks->n == ks->cap) {
        size_t cap = ks->cap ? ks->cap * 2 : 4;
        uint64_t *v = realloc(ks->seqs, cap * sizeof *v);
        if (!v)
            return EB_ENOMEM;
        ks->seqs = v;
        ks->cap = cap;
    }
    ks->seqs[ks->n++] = seq;
    return 0;
}

/* Forgets the versions whose events retention removed (seq < min_seq),
 * keeping the newest so the key's version is not forgotten. */
static void trim(eb_keystream *ks, uint64_t min_seq)
{
    size_t lo = 0, hi = ks->n ? ks->n - 1 : 0; /* first index with seq >= min_seq */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ks->seqs[mid] < min_seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return;
    memmove(ks->seqs, ks->seqs + lo, (ks->n - lo) * sizeof *ks->seqs);
    ks->n -= lo;
    ks->base += lo;
}

size_t eb__keyidx_range(eb_keyidx *x, const char *key, size_t n, uint64_t from_version,
                        uint64_t min_seq, uint64_t below_seq, uint64_t *seqs, size_t max,
                        uint64_t *first_version)
{
    eb_keystream *ks = eb_map_get(&x->keys, key, n);
    *first_version = 0;
    if (!ks || ks->n == 0)
        return 0;
    trim(ks, min_seq);
    if (from_version < ks->base)
        from_version = ks->base;
    size_t i = (size_t)(from_version - ks->base), k = 0;
    for (; i < ks->n && k < max && ks->seqs[i] < below_seq; i++) {
        if (ks->seqs[i] < min_seq)
            continue;
        if (k == 0)
            *first_version = ks->base + i;
        seqs[k++] = ks->seqs[i];
    }
    return k;
}

/* FNV-1a, 64 bits; never 0 (the map's empty key). */
static uint64_t id_hash(const char *id, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)id[i]) * 0x100000001b3ull;
    return h ? h : 1;
}

int eb__keyidx_add_id(eb_keyidx *x, const char *id, size_t n, uint64_t seq)
{
    eb_imap_put(&x->ids, id_hash(id, n), (void *)(uintptr_t)seq);
    return 0;
}

uint64_t eb__keyidx_find_id(const eb_keyidx *x, const char *id, size_t n)
{
    return (uint64_t)(uintptr_t)eb_imap_get(&x->ids, id_hash(id, n));
}

/* --- the lookups file ------------------------------------------------------ */

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

int eb__keyidx_save(const eb_keyidx *x, uint64_t min_seq, uint64_t upto, const char *path)
{
    eb_buf b = EB_BUF_INIT;
    eb_buf_append(&b, "EBLOOKUP", 8);
    put32(&b, EB_KEYIDX_FILE_FORMAT);
    put32(&b, 0);
    put64(&b, upto);
    size_t counts = b.len, nkeys = 0, nids = 0;
    put64(&b, 0); /* the counts, patched below */
    put64(&b, 0);
    size_t it = 0;
    const eb_map_slot *s;
    while ((s = eb_map_next(&x->keys, &it))) {
        const eb_keystream *ks = s->val;
        if (ks->n == 0)
            continue;
        size_t i = 0;
        while (i + 1 < ks->n && ks->seqs[i] < min_seq)
            i++;
        put32(&b, s->klen);
        eb_buf_append(&b, s->key, s->klen);
        put64(&b, ks->base + i);
        put64(&b, ks->n - i);
        for (; i < ks->n; i++)
            put64(&b, ks->seqs[i]);
        nkeys++;
    }
    it = 0;
    const eb_imap_slot *is;
    while ((is = eb_imap_next(&x->ids, &it))) {
        if ((uint64_t)(uintptr_t)is->val < min_seq)
            continue;
        put64(&b, is->key);
        put64(&b, (uint64_t)(uintptr_t)is->val);
        nids++;
    }
    for (int i = 0; !eb_buf_failed(&b) && i < 8; i++) {
        b.data[counts + (size_t)i] = (char)(nkeys >> (8 * i));
        b.data[counts + 8 + (size_t)i] = (char)(nids >> (8 * i));
    }
    put32(&b, eb_buf_failed(&b) ? 0 : eb_crc32c(0, b.data, b.len));
    int rc = eb_buf_failed(&b) ? EB_ENOMEM : write_file(path, b.data, b.len);
    eb_buf_free(&b);
    return rc;
}

/* Reads the whole file; NULL with *rc set when it cannot. */
static unsigned char *read_file(const char *path, size_t *len, int *rc)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        *rc = errno == ENOENT ? EB_ENOTFOUND : -errno;
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    unsigned char *p = malloc(st.st_size > 0 ? (size_t)st.st_size : 1);
    size_t got = 0;
    while (p && got < (size_t)st.st_size) {
        ssize_t r = read(fd, p + got, (size_t)st.st_size - got);
        if (r <= 0 && !(r < 0 && errno == EINTR))
            break;
        if (r > 0)
            got += (size_t)r;
    }
    close(fd);
    if (!p || got != (size_t)st.st_size) {
        free(p);
        *rc = p ? EB_EIO : EB_ENOMEM;
        return NULL;
    }
    *len = got;
    return p;
}

/* Parses the file's entries into x; false if they do not add up. */
static bool parse(eb_keyidx *x, const unsigned char *p, size_t len, uint64_t *upto)
{
    if (len < 44 || memcmp(p, "EBLOOKUP", 8) || get32(p + 8) != EB_KEYIDX_FILE_FORMAT ||
        get32(p + len - 4) != eb_crc32c(0, p, len - 4))
        return false;
    *upto = get64(p + 16);
    uint64_t nkeys = get64(p + 24), nids = get64(p + 32);
    const unsigned char *q = p + 40, *end = p + len - 4;
    for (uint64_t k = 0; k < nkeys; k++) {
        if (end - q < 4)
            return false;
        size_t kl = get32(q);
        if ((size_t)(end - q) < 4 + kl + 16)
            return false;
        const char *key = (const char *)q + 4;
        q += 4 + kl;
        uint64_t base = get64(q), n = get64(q + 8);
        q += 16;
        if (n > (uint64_t)(end - q) / 8)
            return false;
        for (uint64_t i = 0; i < n; i++, q += 8)
            if (eb__keyidx_add(x, key, kl, base + i, get64(q)) != 0)
                return false;
    }
    if (nids != (uint64_t)(end - q) / 16 || (size_t)(end - q) % 16)
        return false;
    for (; q < end; q += 16)
    {
        if (get64(q) == 0)
            return false;
        eb_imap_put(&x->ids, get64(q), (void *)(uintptr_t)get64(q + 8));
    }
    return true;
}

int eb__keyidx_load(eb_keyidx *x, const char *path, uint64_t *upto)
{
    size_t len = 0;
    int rc = 0;
    unsigned char *p = read_file(path, &len, &rc);
    if (!p)
        return rc;
    unlink(path);
    bool ok = parse(x, p, len, upto);
    free(p);
    if (ok)
        return 0;
    eb__keyidx_free(x);
    eb__keyidx_init(x);
    return EB_ECORRUPT;
}
