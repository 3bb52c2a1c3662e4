/* store_pg.h - PostgreSQL as a storage engine (store_pg.c): the store's
 * data_dir is a libpq connection URI (postgresql://...); EVENTS is the
 * table eb_events (partitioned by seq range), META is eb_meta. */
#ifndef EB_STORE_PG_H
#define EB_STORE_PG_H

#include <stdint.h>

#include "store/store.h"

extern const eb_store_engine eb_store_pg_engine;
/* Seqs per events partition (65536): the tests make it small to see
 * retention drop partitions. Set before opening a store. */
extern uint64_t eb__store_pg_part_seqs;

#endif
