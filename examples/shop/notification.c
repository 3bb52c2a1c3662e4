/* notification.c - the notification service of the shop example: e-mails
 * the customer about every order.created, as consumer group "notification".
 * Its first version fails on a malformed address ("bob@"): the event is
 * retried with backoff and, after the group's max attempts, dead-lettered.
 * With --fixed (the repaired version) such orders go to the support queue.
 * Usage: notification [--url URL] [--idle MS] [--fixed] */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "shop.h"

/* name@domain.tld, roughly: one '@', something on each side, a dot after. */
static bool plausible_email(const char *s)
{
    const char *at = strchr(s, '@');
    return at && at != s && !strchr(at + 1, '@') && strchr(at + 1, '.') &&
           at[strlen(at) - 1] != '.';
}

static int notify(const eb_event *ev, void *arg, char *err, size_t cap)
{
    bool fixed = *(const bool *)arg;
    char order[64] = "?", email[256] = "";
    eb_data_string(ev, "/orderId", order, sizeof order);
    eb_data_string(ev, "/email", email, sizeof email);
    if (plausible_email(email)) {
        printf("notification: e-mailed %s about order %s\n", email, order);
    } else if (fixed) {
        printf("notification: order %s has no usable e-mail (\"%s\"); "
               "sent to the support queue\n", order, email);
    } else {
        printf("notification: order %s: invalid e-mail \"%s\" (attempt %u)\n", order, email,
               ev->attempt);
        fflush(stdout);
        snprintf(err, cap, "invalid e-mail address \"%s\"", email);
        return 1; /* not 0: the loop nacks it with err */
    }
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    shop_opts o;
    shop_parse(argc, argv, "[--url URL] [--idle MS] [--fixed]", &o);
    return shop_consume(&o, "notification", "notification-1", notify, &o.fixed);
}
