/* crc32c.h - CRC-32C (Castagnoli), as used by the log's records. Uses the
 * SSE4.2 crc32 instruction when the CPU has it, a table otherwise. */
#ifndef EB_UTIL_CRC32C_H
#define EB_UTIL_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continues crc over p[0..n); start with crc = 0. */
uint32_t eb_crc32c(uint32_t crc, const void *p, size_t n);
/* The portable table version (exposed for tests). */
uint32_t eb_crc32c_sw(uint32_t crc, const void *p, size_t n);
/* Non-zero if the hardware path is in use. */
int eb_crc32c_hw(void);

#endif
