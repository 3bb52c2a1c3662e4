/* log_int.h - internals shared by the log's files and tools/eventbus-log. */
#ifndef EB_LOG_INT_H
#define EB_LOG_INT_H

#include <stdint.h>
#include <string.h>

#include "log/log.h"

/* Little-endian loads and stores, whatever the host (inline: the writer
 * and the readers run them per record). */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
static inline void eb__put64(unsigned char *p, uint64_t v) { memcpy(p, &v, 8); }
static inline void eb__put32(unsigned char *p, uint32_t v) { memcpy(p, &v, 4); }
static inline uint64_t eb__get64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}
static inline uint32_t eb__get32(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}
#else
static inline void eb__put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}
static inline void eb__put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}
static inline uint64_t eb__get64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}
static inline uint32_t eb__get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
#endif
void     eb__log_seg_hdr(unsigned char out[EB_LOG_SEG_HDR], uint64_t base, uint64_t created);
int      eb__log_seg_hdr_check(const unsigned char in[EB_LOG_SEG_HDR], uint64_t *base);

/* Result of scanning one segment file's records. */
typedef struct eb__seg_scan {
    uint64_t       base;       /* from the header */
    uint64_t       count;      /* valid records, ending on a complete batch */
    uint64_t       valid_end;  /* file offset after the last complete batch */
    uint64_t       file_size;
    unsigned char *idx;        /* count entries of (offset u64, ts u64), malloc'd */
    const char    *problem;    /* why the scan stopped before the end, or NULL */
    uint64_t       problem_at; /* file offset of the problem */
} eb__seg_scan;

/* Reads and checks every record of the segment file at path (expecting
 * records from `base`), building its index. 0 or an I/O error; damage is
 * reported through problem/valid_end, not as an error. */
int eb__log_scan_segment(const char *path, uint32_t max_record, eb__seg_scan *out);

#endif
