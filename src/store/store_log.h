/* store_log.h - the embedded log (src/log) as a storage engine: the store
 * of kind EVENTS is DATA/events, META is DATA/meta (16 MiB segments). */
#ifndef EB_STORE_LOG_H
#define EB_STORE_LOG_H

#include "store/store.h"

extern const eb_store_engine eb_store_log_engine;

/* Tests: of the segments of an EVENTS store (with describe) sealed since
 * open, how many got their summary from the description of their records
 * made as they were appended (*appended), and how many by reading the
 * segment back (*read_back: a description cut by a failed append). */
void eb__store_log_summarized(eb_store *s, uint64_t *appended, uint64_t *read_back);

#endif
