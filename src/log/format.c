/* format.c - byte layout of log records (see log.h and ARCHITECTURE.md).
 * Every field is little-endian, whatever the host. */
#include <string.h>

#include "log/log.h"
#include "log/log_int.h"
#include "util/crc32c.h"

/* Record header:
 *   0  u32 len         payload bytes
 *   4  u32 crc         CRC32C of bytes 8..31 and the payload
 *   8  u64 seq
 *   16 u64 ts_us
 *   24 u16 type
 *   26 u16 flags
 *   28 u32 batch_left  records after this one in the same atomic append */
void eb__log_rhdr_encode(const eb_log_rhdr *h, unsigned char out[EB_LOG_REC_HDR])
{
    eb__put32(out, h->len);
    eb__put32(out + 4, h->crc);
    eb__put64(out + 8, h->seq);
    eb__put64(out + 16, h->ts_us);
    out[24] = (unsigned char)h->type;
    out[25] = (unsigned char)(h->type >> 8);
    out[26] = (unsigned char)h->flags;
    out[27] = (unsigned char)(h->flags >> 8);
    eb__put32(out + 28, h->batch_left);
}

void eb__log_rhdr_decode(const unsigned char in[EB_LOG_REC_HDR], eb_log_rhdr *h)
{
    h->len = eb__get32(in);
    h->crc = eb__get32(in + 4);
    h->seq = eb__get64(in + 8);
    h->ts_us = eb__get64(in + 16);
    h->type = (uint16_t)(in[24] | in[25] << 8);
    h->flags = (uint16_t)(in[26] | in[27] << 8);
    h->batch_left = eb__get32(in + 28);
}

uint32_t eb__log_rec_crc(const unsigned char hdr[EB_LOG_REC_HDR], const void *payload,
                         uint32_t len)
{
    uint32_t c = eb_crc32c(0, hdr + 8, EB_LOG_REC_HDR - 8);
    return eb_crc32c(c, payload, len);
}

/* Segment header (64 bytes):
 *   0  8  magic "EBLOGSEG"
 *   8  u32 version (1)
 *   12 u32 header size (64)
 *   16 u64 base seq
 *   24 u64 created (µs since the epoch)
 *   32 u32 CRC32C of bytes 0..31
 *   36 28 bytes zero */
void eb__log_seg_hdr(unsigned char out[EB_LOG_SEG_HDR], uint64_t base, uint64_t created)
{
    memset(out, 0, EB_LOG_SEG_HDR);
    memcpy(out, EB_LOG_SEG_MAGIC, 8);
    eb__put32(out + 8, EB_LOG_VERSION);
    eb__put32(out + 12, EB_LOG_SEG_HDR);
    eb__put64(out + 16, base);
    eb__put64(out + 24, created);
    eb__put32(out + 32, eb_crc32c(0, out, 32));
}

int eb__log_seg_hdr_check(const unsigned char in[EB_LOG_SEG_HDR], uint64_t *base)
{
    if (memcmp(in, EB_LOG_SEG_MAGIC, 8) != 0 || eb__get32(in + 8) != EB_LOG_VERSION ||
        eb__get32(in + 12) != EB_LOG_SEG_HDR || eb__get32(in + 32) != eb_crc32c(0, in, 32))
        return -1;
    *base = eb__get64(in + 16);
    return 0;
}
