/* order_service.c - the order service of the shop example: publishes one
 * order.created event per order and knows nothing about who consumes it.
 * Usage: order-service [--url URL] ORDER_ID AMOUNT CURRENCY EMAIL
 * (an empty CURRENCY leaves the field out: the schema refuses that). */
#include <stdio.h>
#include <string.h>

#include <eventbus.h>

int main(int argc, char **argv)
{
    int a = 1;
    const char *url = NULL;
    if (argc > 2 && !strcmp(argv[1], "--url")) {
        url = argv[2];
        a = 3;
    }
    if (argc - a != 4) {
        fprintf(stderr, "usage: %s [--url URL] ORDER_ID AMOUNT CURRENCY EMAIL\n", argv[0]);
        return 2;
    }
    const char *id = argv[a], *amount = argv[a + 1], *currency = argv[a + 2],
               *email = argv[a + 3];
    char data[512];
    if (*currency)
        snprintf(data, sizeof data,
                 "{\"orderId\":\"%s\",\"amount\":%s,\"currency\":\"%s\",\"email\":\"%s\"}", id,
                 amount, currency, email);
    else
        snprintf(data, sizeof data, "{\"orderId\":\"%s\",\"amount\":%s,\"email\":\"%s\"}", id,
                 amount, email);

    eb_client *c;
    eb_client_opts o = {.size = sizeof o, .url = url};
    if (eb_client_new(&o, &c) != 0) {
        fprintf(stderr, "order-service: bad URL\n");
        return 2;
    }
    eb_publish_opts po = {.size = sizeof po, .source = "order-service", .key = id};
    eb_publish_result r = {.size = sizeof r};
    int rc = eb_publish(c, "order.created", data, &po, &r);
    if (rc == 0) {
        printf("order-service: order %s published (seq %llu)\n", id, (unsigned long long)r.seq);
    } else {
        const eb_error *e = eb_client_error(c);
        fprintf(stderr, "order-service: order %s refused: %s%s%s\n", id, e->server_code,
                *e->server_code ? ": " : "", e->message);
    }
    eb_client_free(c);
    return rc ? 1 : 0;
}
