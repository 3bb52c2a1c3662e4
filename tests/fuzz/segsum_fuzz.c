/* segsum_fuzz.c - fuzz target for the segment summary reader
 * (src/store/segsum.c, eb__segsum_load, and eb__segsum_load_mem: the
 * PostgreSQL engine's copy of the same bytes, a mapped scratch file): the one file of the events store
 * that a restart reads and trusts instead of the segment it describes.
 *
 * Input: the summary file's bytes. The target makes what a damaged or
 * forged file could be past its checks: it keeps the input's header (80
 * bytes, zero-padded) but sets the magic, format and header size right and
 * appends the CRC32C of it all, so the fuzzer explores the counts and
 * sections rather than the checksum; the segment it must describe is the
 * one the header names (base, records, bytes). The file lives in a memfd
 * opened by its /proc path (no disk). Properties: the load answers 0 or
 * EB_ECORRUPT; on 0 the id pairs (two tables of nids (hash, seq) pairs)
 * lie inside the file before the sections, the type names are as long as
 * said and read to their end, every key handed over lies inside the file
 * after the id tables, a refused file hands no key over, and lookups of
 * the pairs' hashes stay inside the tables (the pairs' order is not
 * checked: the file is trusted past its CRC); the same file with its CRC
 * one off is refused; the copy in memory answers the same, mapped from a
 * scratch file or, when the CRC's low bit is set, on the heap (TMPDIR
 * names no directory).
 * Never crash, leak or hang is checked by the sanitizers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "eventbus/err.h"
#include "fuzz.h"
#include "store/segsum.h"
#include "util/crc32c.h"

#define HDR 80

typedef struct key_check {
    const unsigned char *lo, *hi; /* the lowest key start and highest key end seen */
    size_t               keys;
} key_check;

static void on_key(void *arg, const char *key, size_t len, uint64_t version, uint64_t seq)
{
    key_check *k = arg;
    (void)version;
    (void)seq;
    const unsigned char *p = (const unsigned char *)key;
    if (!k->keys || p < k->lo)
        k->lo = p;
    if (!k->keys || p + len > k->hi)
        k->hi = p + len;
    k->keys++;
}

static uint64_t get64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

/* Writes file[0..len) to fd from the start, truncated to len. */
static void put_file(int fd, const unsigned char *file, size_t len)
{
    FUZZ_CHECK(ftruncate(fd, 0) == 0);
    for (size_t at = 0; at < len;) {
        ssize_t w = pwrite(fd, file + at, len - at, (off_t)at);
        FUZZ_CHECK(w > 0);
        at += (size_t)w;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("segsum-fuzz", MFD_CLOEXEC);
        FUZZ_CHECK(fd >= 0);
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (size > (1u << 20))
        return 0;
    size_t len = (size < HDR ? HDR : size) + 4;
    unsigned char *file = calloc(1, len);
    FUZZ_CHECK(file);
    memcpy(file, data, size);
    memcpy(file, "EBSEGSUM", 8);
    put32(file + 8, EB_SEGSUM_FORMAT);
    put32(file + 12, HDR);
    uint32_t crc = eb_crc32c(0, file, len - 4);
    put32(file + len - 4, crc);
    eb_log_seg_info seg = {get64(file + 16), get64(file + 24), get64(file + 32)};

    put_file(fd, file, len);
    eb_segsum s;
    key_check k = {0};
    int rc = eb__segsum_load(path, &seg, &s, on_key, &k);
    FUZZ_CHECK(rc == 0 || rc == EB_ECORRUPT);
    /* a refused file hands over nothing (its keys would stay in the key
     * index while the summary is rebuilt from the segment) */
    FUZZ_CHECK(rc == 0 || k.keys == 0);
    /* the PostgreSQL engine's load of the same bytes (a copy, any
     * records: seg NULL) answers the same and names the header's records */
    eb_segsum sm;
    key_check km = {0};
    /* its copy in a scratch file, or on the heap when there is no scratch
     * directory (the CRC's low bit chooses) */
    bool heap = crc & 1;
    FUZZ_CHECK(setenv("TMPDIR", heap ? "/nonexistent/eb-segsum-fuzz" : "/tmp", 1) == 0);
    FUZZ_CHECK(eb__segsum_load_mem(file, len, NULL, &sm, on_key, &km) == rc && km.keys == k.keys);
    if (rc == 0) {
        FUZZ_CHECK(sm.map_len == len && sm.seg.base == seg.base && sm.seg.count == seg.count &&
                   sm.nids == s.nids && sm.ntypes == s.ntypes && sm.heap == heap);
        eb__segsum_free(&sm);
    }
    if (rc == 0) {
        const unsigned char *map = s.map, *end = map + s.map_len;
        FUZZ_CHECK(s.map_len == len && s.nids == s.nsrcids);
        FUZZ_CHECK(s.ids == map + HDR && s.srcids == s.ids + s.nids * 16);
        FUZZ_CHECK(s.nids <= (s.map_len - HDR - 4) / 32);
        FUZZ_CHECK(!k.keys || (k.lo >= s.srcids + s.nids * 16 && k.hi <= end - 4));
        for (size_t i = 0; i < s.ntypes; i++)
            FUZZ_CHECK(s.types[i].name && strnlen(s.types[i].name, s.types[i].len + 1) <=
                                              s.types[i].len);
        for (uint64_t i = 0; i < s.nids && i < 64; i++) {
            (void)eb__segsum_find_id(&s, get64(s.ids + i * 16), UINT64_MAX);
            (void)eb__segsum_find_source_id(&s, get64(s.srcids + i * 16), UINT64_MAX);
        }
        eb__segsum_free(&s);
        /* a CRC one off is refused, and hands over nothing */
        file[len - 4] ^= 1;
        put_file(fd, file, len);
        k.keys = 0;
        FUZZ_CHECK(eb__segsum_load(path, &seg, &s, on_key, &k) == EB_ECORRUPT && k.keys == 0);
    }
    free(file);
    return 0;
}
