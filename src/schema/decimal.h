/* decimal.h - exact arithmetic on JSON number literals, for the numeric
 * keywords of JSON Schema (internal to src/schema).
 *
 * A double cannot tell 9007199254740993 from 9007199254740992, nor say
 * that 0.7 is a multiple of 0.1; the specification compares the numbers
 * the literals spell. A literal is read as digits × 10^exp (no leading or
 * trailing zeros in the digits), which is exact for every literal the JSON
 * parser accepts (at most 1000 characters). */
#ifndef EB_SCHEMA_DECIMAL_H
#define EB_SCHEMA_DECIMAL_H

#include <stdbool.h>
#include <stdint.h>

#include "json/json.h"

typedef struct eb_dec {
    bool     neg;
    uint32_t n;      /* digits in d; 0 = the number zero */
    int64_t  exp;    /* value = d × 10^exp */
    char     d[EB_JSON_DEFAULT_MAX_NUMBER + 1]; /* '0'..'9', not terminated */
} eb_dec;

/* Reads a NUMBER node's literal into *out. */
void eb__dec_of(const eb_json *num, eb_dec *out);
/* -1, 0, 1 as a < b, a == b, a > b. */
int  eb__dec_cmp(const eb_dec *a, const eb_dec *b);
/* a vs b for two NUMBER nodes, fast when both are int64. */
int  eb__num_cmp(const eb_json *a, const eb_json *b);
/* Whether x / m is an integer (m > 0). */
bool eb__num_multiple(const eb_json *x, const eb_json *m);

#endif
