/* c_client.c - the C client's side of bench/node (make bench): libeventbus
 * doing what bench.mjs measures the TypeScript client and a hand-written
 * fetch loop doing, against the same server in the same run:
 *   publish N events in batches of 100, one request at a time (wall time and
 *   client CPU per event), then drain group GROUP of its first M events with
 *   eb_consume (100 per pull, a handler that only counts).
 * Usage: bench_node_c URL N GROUP M      Prints: RESULT c ...=... */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "eventbus.h"
#include "../httpc.h"

#define DATA "{\"orderId\":\"A-1001\",\"amount\":129.95,\"currency\":\"EUR\",\"email\":\"a@b.cd\"}"

static int count_handler(const eb_event *ev, void *arg, char *err, size_t cap)
{
    (void)ev;
    (void)err;
    (void)cap;
    (*(uint64_t *)arg)++;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: bench_node_c URL N GROUP M\n");
        return 2;
    }
    int n = atoi(argv[2]);
    uint64_t m = strtoull(argv[4], NULL, 10);
    eb_client *c;
    if (eb_client_new(&(eb_client_opts){.size = sizeof(eb_client_opts), .url = argv[1]}, &c))
        return 1;
    eb_message msgs[100];
    const eb_message *ptrs[100];
    for (int i = 0; i < 100; i++) {
        msgs[i] = (eb_message){.size = sizeof(eb_message), .type = "order.created", .data = DATA};
        ptrs[i] = &msgs[i];
    }
    int rc = 0;
    double t0 = bench_now_s(), c0 = bench_cpu_s();
    for (int done = 0; !rc && done < n; done += 100)
        rc = eb_publish_batch(c, ptrs, 100, NULL);
    double pub_wall = bench_now_s() - t0, pub_cpu = bench_cpu_s() - c0;
    uint64_t seen = 0;
    t0 = bench_now_s();
    if (!rc)
        rc = eb_consume(c, argv[3], "bench-c", count_handler,
                        &(eb_consume_opts){.size = sizeof(eb_consume_opts), .arg = &seen, .max = 100, .max_events = m});
    double con_wall = bench_now_s() - t0;
    if (rc) {
        fprintf(stderr, "bench_node_c: %s\n", eb_client_error(c)->message);
        eb_client_free(c);
        return 1;
    }
    eb_client_free(c);
    printf("RESULT c publish_events_per_s=%.0f publish_cpu_us=%.3f consume_events_per_s=%.0f\n",
           n / pub_wall, pub_cpu * 1e6 / n, (double)seen / con_wall);
    return 0;
}
