/* durable.c - completions of appends: the hand-off from a log writer
 * thread to the loop thread, and the bus clock.
 *
 * Every append the bus makes (events or meta) carries a pending_op whose
 * `complete` says what to do once the append is durable. An engine thread
 * queues the op on done_q and wakes the loop (uv_async); the loop drains
 * the queue in completion order. Appends written inline on the loop thread
 * (eb_store_append returned 1) are completed at once. */
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "bus/bus_int.h"
#include "util/clock.h"

uint64_t eb__bus_now_us(void)
{
    return eb_clock_wall_us();
}

/* Runs on a log writer thread: queue the op for the loop and wake it. */
void eb__bus_on_durable(void *arg, int status)
{
    pending_op *op = arg;
    eb_bus *bus = op->bus;
    op->status = status;
    pthread_mutex_lock(&bus->done_mu);
    op->next = bus->done_q;
    bus->done_q = op;
    pthread_mutex_unlock(&bus->done_mu);
    uv_async_send(&bus->async);
}

void eb__bus_complete(eb_bus *bus, pending_op *op)
{
    op->complete(bus, op);
    free(op);
}

int eb__bus_drain(eb_bus *bus)
{
    pthread_mutex_lock(&bus->done_mu);
    pending_op *list = bus->done_q;
    bus->done_q = NULL;
    pthread_mutex_unlock(&bus->done_mu);
    /* Reverse into completion order. */
    pending_op *fifo = NULL;
    while (list) {
        pending_op *nx = list->next;
        list->next = fifo;
        fifo = list;
        list = nx;
    }
    int status = 0;
    for (pending_op *op = fifo, *nx; op; op = nx) {
        nx = op->next;
        if (op->status)
            status = op->status;
        eb__bus_complete(bus, op);
    }
    return status;
}
