/* ulid.h - ULIDs: 26-character ids (Crockford base32) made of 48 bits of
 * Unix milliseconds then 80 random bits, so they sort by time. The server
 * names events it is given without an id with them; libeventbus names
 * every event it publishes without one, before the first attempt, so a
 * publish it sends again after a failover is a duplicate the server drops.
 *
 * A generator is plain state with no lock: the server keeps one behind a
 * mutex (bus/event.c), each client handle its own (a handle is used by one
 * thread). Ids of one generator are strictly increasing, even within a
 * millisecond or when the wall clock steps back; generators seeded apart
 * (getrandom) do not collide in practice (80 random bits per ms). */
#ifndef EB_UTIL_ULID_H
#define EB_UTIL_ULID_H

#include <stdint.h>

#define EB_ULID_LEN 26

typedef struct eb_ulid_gen {
    uint64_t last_ms;  /* ms of the last id */
    uint8_t  rand[10]; /* its 80 random bits, incremented within a ms */
    uint64_t prng[4];  /* xoshiro256**, seeded on first use by getrandom */
} eb_ulid_gen;

/* Writes the next id of g at wall time now_us (eb_clock_wall_us()) into
 * out: 26 characters and a NUL. g starts zeroed. */
void eb_ulid_next(eb_ulid_gen *g, uint64_t now_us, char out[EB_ULID_LEN + 1]);

#endif
