/* inventory.c - the inventory service of the shop example: reserves stock
 * for every order.created, as consumer group "inventory".
 * Usage: inventory [--url URL] [--idle MS] */
#include <stdio.h>

#include "shop.h"

static int reserve(const eb_event *ev, void *arg, char *err, size_t cap)
{
    (void)arg;
    char order[64];
    double amount = 0;
    if (eb_data_string(ev, "/orderId", order, sizeof order) != 0 ||
        eb_data_number(ev, "/amount", &amount) != 0) {
        snprintf(err, cap, "order.created %s without orderId or amount", ev->id);
        return 1;
    }
    printf("inventory: reserved stock for order %s (%.2f)\n", order, amount);
    fflush(stdout);
    return 0; /* 0: the loop acks it */
}

int main(int argc, char **argv)
{
    shop_opts o;
    shop_parse(argc, argv, "[--url URL] [--idle MS]", &o);
    return shop_consume(&o, "inventory", "inventory-1", reserve, NULL);
}
