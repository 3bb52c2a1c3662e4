/* duration.h - the one duration grammar of eventbus, shared by eventbusd's
 * flags (--retention 7d), the API (replay "since": "2h") and the CLI
 * (--wait 500ms):
 *
 *     duration = number [unit]
 *     number   = digits ["." [digits]] | "." digits, then optionally
 *                an exponent "e" ["+" | "-"] digits        ("1.5h", "2e3ms")
 *     unit     = "ms" | "s" | "m" | "h" | "d"
 *
 * A number without a unit is in the caller's default unit, or refused when
 * the caller has none (the API insists on a unit). No sign, no spaces. */
#ifndef EB_UTIL_DURATION_H
#define EB_UTIL_DURATION_H

#include <stddef.h>
#include <stdint.h>

#define EB_DURATION_US_MS 1000ull /* a default unit for bare numbers: ms */

/* Parses s[0..n) into *us (microseconds, fractions truncated). bare_unit_us
 * is what a number without a unit is counted in (EB_DURATION_US_MS), or 0
 * to refuse one. Returns 0, EB_ESYNTAX, or EB_ERANGE past UINT64_MAX µs. */
int eb_duration_parse(const char *s, size_t n, uint64_t bare_unit_us, uint64_t *us);

#endif
