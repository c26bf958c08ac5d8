/*
 * bench_bus_inproc: in-process publish -> in-process subscriber through the
 * broker (bus_publish / bus_subscribe) on a libuv loop.
 *
 * Design notes:
 * - Publishing happens from a uv_idle callback, `batch` events per loop
 *   turn, so the broker's own dispatch (another idle handle) really runs on
 *   the loop between batches, as it does in herdd.
 * - The broker delivers at most 256 events per subscriber per loop turn
 *   (PER_SUB_BUDGET in bus/broker.c) into a queue of queue_max (1024 by
 *   default); a batch above that would only measure drops. The batch
 *   default is 256; drops are counted and reported, never hidden.
 * - The clock starts at the first publish and stops at the last delivery.
 *
 * Usage: bench_bus_inproc [--sockets DIR] [--events N] [--batch B]
 *                         [--size BYTES] [--label NAME]
 * Prints one line: RUN label=... published=... delivered=... dropped=...
 * secs=... rate=...
 */
#include "bus/bus.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TOPIC "bench.bus.event"

struct bench {
    uv_loop_t *loop;
    bus *bus;
    bus_sub *sub;
    uv_idle_t idle;
    uint64_t target, published, delivered, publish_errors;
    unsigned batch;
    char *payload;
    size_t payload_len, seq_off;
    uint64_t checksum;
    double t_start, t_end;
    int closed;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* put_digits writes v as exactly width decimal digits, zero padded. */
static void put_digits(char *p, size_t width, uint64_t v)
{
    for (size_t i = width; i > 0; i--) {
        p[i - 1] = (char)('0' + v % 10);
        v /= 10;
    }
}

/* make_payload builds a JSON object of exactly size bytes (size >= 64):
 * {"k":"m","seq":"0000000000","ts":"00000000000000000000","pad":"xxx"} */
static char *make_payload(size_t size, size_t *seq_off)
{
    const char *head = "{\"k\":\"m\",\"seq\":\"0000000000\",\"ts\":\"00000000000000000000\","
                       "\"pad\":\"";
    size_t hl = strlen(head);
    char *p;

    if (size < hl + 2)
        size = hl + 2;
    p = malloc(size + 1);
    if (p == NULL)
        return NULL;
    memcpy(p, head, hl);
    memset(p + hl, 'x', size - hl - 2);
    memcpy(p + size - 2, "\"}", 3);
    *seq_off = (size_t)(strstr(p, "\"seq\":\"") - p) + 7;
    return p;
}

static void on_event(const bus_event *ev, void *data)
{
    struct bench *b = data;

    /* Touch the payload so delivery is not just a counter bump. */
    b->checksum += (unsigned char)ev->payload[ev->payload_len / 2];
    b->delivered++;
}

static void bus_closed(void *data)
{
    struct bench *b = data;
    b->closed = 1;
}

static void idle_cb(uv_idle_t *h)
{
    struct bench *b = h->data;
    bus_stats st;

    if (b->published < b->target) {
        if (b->published == 0)
            b->t_start = now_s();
        uint64_t n = b->target - b->published;
        if (n > b->batch)
            n = b->batch;
        for (uint64_t i = 0; i < n; i++) {
            put_digits(b->payload + b->seq_off, 10, b->published);
            if (bus_publish(b->bus, TOPIC, b->payload, b->payload_len) < 0)
                b->publish_errors++;
            b->published++;
        }
        return;
    }
    bus_get_stats(b->bus, &st);
    if (b->delivered + st.dropped[BUS_DROP_QUEUE_FULL] + b->publish_errors >= b->published) {
        b->t_end = now_s();
        uv_idle_stop(&b->idle);
        uv_close((uv_handle_t *)&b->idle, NULL);
        bus_unsubscribe(b->sub);
        b->sub = NULL;
    }
}

static void quiet_log(enum base_log_level level, const char *msg, void *data)
{
    if (level <= BASE_LOG_WARN)
        fprintf(stderr, "bench_bus_inproc: bus: %s\n", msg);
}

int main(int argc, char **argv)
{
    struct bench b = {0};
    const char *dir = NULL, *label = NULL;
    size_t size = 100;
    char err[256];
    uv_loop_t loop;
    bus_stats st;
    int rv;

    b.target = 2000000;
    b.batch = 256;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--sockets") == 0 && i + 1 < argc)
            dir = argv[++i];
        else if (strcmp(argv[i], "--events") == 0 && i + 1 < argc)
            b.target = strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--batch") == 0 && i + 1 < argc)
            b.batch = (unsigned)strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--size") == 0 && i + 1 < argc)
            size = strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--label") == 0 && i + 1 < argc)
            label = argv[++i];
        else {
            fprintf(stderr, "usage: bench_bus_inproc [--sockets DIR] [--events N] [--batch B] "
                            "[--size BYTES] [--label NAME]\n");
            return 2;
        }
    }
    if (b.batch == 0 || b.target == 0)
        return 2;
    if (label == NULL)
        label = dir != NULL ? "inproc_sockets" : "inproc";

    b.payload = make_payload(size, &b.seq_off);
    if (b.payload == NULL)
        return 1;
    b.payload_len = strlen(b.payload);

    uv_loop_init(&loop);
    b.loop = &loop;
    bus_config cfg = {.dir = dir, .no_sockets = dir == NULL, .log = quiet_log};
    rv = bus_open(&loop, &cfg, &b.bus, err, sizeof(err));
    if (rv < 0) {
        fprintf(stderr, "bench_bus_inproc: bus_open: %s\n", err);
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
        return 1;
    }
    rv = bus_subscribe(b.bus, "bench.>", 0, on_event, &b, &b.sub);
    if (rv < 0) {
        fprintf(stderr, "bench_bus_inproc: bus_subscribe: %d\n", rv);
        return 1;
    }
    uv_idle_init(&loop, &b.idle);
    b.idle.data = &b;
    uv_idle_start(&b.idle, idle_cb);

    /* Run until the idle handle stops itself; then close the bus. */
    while (b.t_end == 0 && uv_run(&loop, UV_RUN_ONCE) != 0)
        ;
    bus_get_stats(b.bus, &st);
    bus_close(b.bus, bus_closed, &b);
    uv_run(&loop, UV_RUN_DEFAULT);
    rv = uv_loop_close(&loop);
    if (rv != 0 || !b.closed)
        fprintf(stderr, "bench_bus_inproc: loop did not close cleanly (%d)\n", rv);

    double secs = b.t_end - b.t_start;
    printf("RUN label=%s published=%" PRIu64 " delivered=%" PRIu64 " dropped=%" PRIu64
           " errors=%" PRIu64 " batch=%u size=%zu secs=%.6f rate=%.0f checksum=%" PRIu64 "\n",
           label, b.published, b.delivered, (uint64_t)st.dropped[BUS_DROP_QUEUE_FULL],
           b.publish_errors, b.batch, b.payload_len, secs,
           secs > 0 ? (double)b.delivered / secs : 0.0, b.checksum);
    free(b.payload);
    return b.delivered > 0 ? 0 : 1;
}
