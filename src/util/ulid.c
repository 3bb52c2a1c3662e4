/* ulid.c - ULID generation (see ulid.h). */
#include "util/ulid.h"

#include <string.h>
#include <sys/random.h>
#include <sys/types.h>

static const char crockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

static uint64_t rotl(uint64_t x, int k) { return x << k | x >> (64 - k); }

/* The next xoshiro256** output. Ids need to be unique and unordered within
 * a ms, not secret: a getrandom() per ms cost a system call on every event
 * at low rates (seen in bench/peers' latency strace). */
static uint64_t prng_next(eb_ulid_gen *g, uint64_t now_us)
{
    uint64_t *st = g->prng;
    if (!(st[0] | st[1] | st[2] | st[3]) &&
        getrandom(st, sizeof g->prng, 0) != (ssize_t)sizeof g->prng) {
        uint64_t z = now_us ^ (uint64_t)(uintptr_t)g; /* fallback: never fail */
        for (int i = 0; i < 4; i++) { /* splitmix64 */
            z += 0x9e3779b97f4a7c15u;
            uint64_t x = z;
            x = (x ^ x >> 30) * 0xbf58476d1ce4e5b9u;
            x = (x ^ x >> 27) * 0x94d049bb133111ebu;
            st[i] = x ^ x >> 31;
        }
    }
    uint64_t r = rotl(st[1] * 5, 7) * 9, t = st[1] << 17;
    st[2] ^= st[0];
    st[3] ^= st[1];
    st[1] ^= st[2];
    st[0] ^= st[3];
    st[2] ^= t;
    st[3] = rotl(st[3], 45);
    return r;
}

void eb_ulid_next(eb_ulid_gen *g, uint64_t now_us, char out[EB_ULID_LEN + 1])
{
    uint64_t ms = now_us / 1000u, hi, lo;
    if (ms <= g->last_ms) {
        ms = g->last_ms; /* clock stepped back or same ms: stay monotonic */
        for (int i = 9; i >= 0 && ++g->rand[i] == 0; i--)
            ;
    } else {
        g->last_ms = ms;
        uint64_t a = prng_next(g, now_us), b = prng_next(g, now_us);
        memcpy(g->rand, &a, 8);
        memcpy(g->rand + 8, &b, 2);
        g->rand[0] &= 0x7f; /* headroom so increments within a ms never wrap */
    }
    /* 128 bits: 48 of milliseconds, then the 80 random ones. */
    hi = (ms & 0xffffffffffffu) << 16 | (uint64_t)g->rand[0] << 8 | g->rand[1];
    lo = 0;
    for (int i = 2; i < 10; i++)
        lo = lo << 8 | g->rand[i];
    /* -> 26 base32 chars, most significant first (2 pad bits on top). */
    for (int i = EB_ULID_LEN - 1; i >= 0; i--) {
        out[i] = crockford[lo & 31u];
        lo = lo >> 5 | hi << 59;
        hi >>= 5;
    }
    out[EB_ULID_LEN] = '\0';
}
