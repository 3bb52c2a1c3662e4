/* event.c - the benchmarks' order.created event (see event.h). */
#include "event.h"

#include <stdio.h>
#include <string.h>

const char *const bench_order_schema =
    "{\"schema\":{\"type\":\"object\",\"required\":[\"orderId\",\"amount\",\"currency\"],"
    "\"properties\":{\"orderId\":{\"type\":\"string\",\"pattern\":\"^A-[0-9]+$\"},"
    "\"amount\":{\"type\":\"number\",\"minimum\":0},"
    "\"currency\":{\"type\":\"string\",\"enum\":[\"EUR\",\"USD\",\"GBP\"]},"
    "\"items\":{\"type\":\"array\",\"items\":{\"type\":\"object\",\"required\":[\"sku\",\"qty\"],"
    "\"properties\":{\"sku\":{\"type\":\"string\"},\"qty\":{\"type\":\"integer\",\"minimum\":1}}}},"
    "\"customer\":{\"type\":\"object\",\"properties\":{\"email\":{\"type\":\"string\","
    "\"format\":\"email\"}}}}}}";

size_t bench_event_json(char *buf, size_t cap, uint64_t n)
{
    int len = snprintf(buf, cap,
                       "{\"type\":\"order.created\",\"source\":\"order-service\","
                       "\"key\":\"c-%llu\",\"data\":{\"orderId\":\"A-%llu\",\"amount\":129.95,"
                       "\"currency\":\"EUR\",\"items\":[{\"sku\":\"X-1\",\"qty\":2}],"
                       "\"customer\":{\"email\":\"buyer%llu@example.com\"}}}",
                       (unsigned long long)(n % 1000), (unsigned long long)n,
                       (unsigned long long)(n % 5000));
    return len > 0 && (size_t)len < cap ? (size_t)len : 0;
}

size_t bench_event_batch(char *buf, size_t cap, uint64_t first, int count)
{
    if (cap < 3)
        return 0;
    size_t len = 0;
    buf[len++] = '[';
    for (int i = 0; i < count; i++) {
        if (i)
            buf[len++] = ',';
        size_t n = bench_event_json(buf + len, cap - len - 2, first + (uint64_t)i);
        if (!n)
            return 0;
        len += n;
    }
    buf[len++] = ']';
    buf[len] = '\0';
    return len;
}

int bench_event_number(const char *text, const char *end, uint64_t *n)
{
    const char *p = memmem(text, (size_t)(end - text), "\"A-", 3);
    if (!p)
        return -1;
    p += 3;
    uint64_t v = 0;
    int digits = 0;
    for (; p < end && *p >= '0' && *p <= '9'; p++, digits++)
        v = v * 10 + (uint64_t)(*p - '0');
    if (!digits)
        return -1;
    *n = v;
    return 0;
}
