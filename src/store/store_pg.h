/* store_pg.h - PostgreSQL as a storage engine (store_pg.c): the store's
 * data_dir is a libpq connection URI (postgresql://...); EVENTS is the
 * table eb_events (partitioned by seq range), META is eb_meta. */
#ifndef EB_STORE_PG_H
#define EB_STORE_PG_H

#include "store/store.h"

extern const eb_store_engine eb_store_pg_engine;

#endif
