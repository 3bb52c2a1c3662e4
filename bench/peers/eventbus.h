/* eventbus.h - the bench/peers workloads' client for eventbusd (HTTP),
 * shared by bench_peer_eventbus and bench/consume. */
#ifndef EB_BENCH_PEERS_EVENTBUS_H
#define EB_BENCH_PEERS_EVENTBUS_H

#include "driver.h"

/* Consumer groups are named RUN-gN; --target is HOST:PORT or PORT. */
extern const peer_ops bench_eventbus_ops;

#endif
