/* fuzz.h - helpers shared by the fuzz targets (tests/fuzz/NAME_fuzz.c).
 *
 * A target is a libFuzzer entry point, LLVMFuzzerTestOneInput, built two
 * ways: with clang and libFuzzer for `make fuzz`, and with the normal
 * compiler plus replay.c, which runs it over the seed corpus and the
 * regression inputs in `make test`. A broken property aborts, so both
 * drivers see it as a crash. */
#ifndef EB_FUZZ_H
#define EB_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "json/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Aborts with file:line and the expression when c is false. */
#define FUZZ_CHECK(c)                                                     \
    do {                                                                  \
        if (!(c))                                                         \
            eb__fuzz_fail(__FILE__, __LINE__, #c);                        \
    } while (0)

void eb__fuzz_fail(const char *file, int line, const char *what) __attribute__((noreturn));

/* Structural identity of two parsed values (their own keys are not
 * compared, their members' are): same types, members in the same order with
 * byte-equal keys, byte-equal strings and number texts. Stricter
 * than eb_json_equal (which compares numbers by value and ignores member
 * order); this is what a write-then-parse round trip must preserve. */
bool eb__fuzz_json_same(const eb_json *a, const eb_json *b);

/* Reads a little-endian integer of n bytes (n <= 8) from *p, advancing it;
 * missing bytes read as 0. For targets that take parameters from the input. */
uint64_t eb__fuzz_take(const uint8_t **p, const uint8_t *end, size_t n);

#endif
