/* eventbus_main.c - bench_peer_eventbus: the bench/peers workloads against
 * an eventbusd the caller started (bench/peers/run.py). */
#include "eventbus.h"

int main(int argc, char **argv)
{
    return drv_main(&bench_eventbus_ops, argc, argv);
}
