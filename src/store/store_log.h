/* store_log.h - the embedded log (src/log) as a storage engine: the store
 * of kind EVENTS is DATA/events, META is DATA/meta (16 MiB segments). */
#ifndef EB_STORE_LOG_H
#define EB_STORE_LOG_H

#include "store/store.h"

extern const eb_store_engine eb_store_log_engine;

#endif
