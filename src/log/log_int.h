/* log_int.h - internals shared by the log's files and tools/eventbus-log. */
#ifndef EB_LOG_INT_H
#define EB_LOG_INT_H

#include <stdint.h>

#include "log/log.h"

void     eb__put64(unsigned char *p, uint64_t v);
void     eb__put32(unsigned char *p, uint32_t v);
uint64_t eb__get64(const unsigned char *p);
uint32_t eb__get32(const unsigned char *p);
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
