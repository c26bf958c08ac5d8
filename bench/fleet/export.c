/*
 * bench_fleet_export URL N [PAD_BYTES]: one nats worker (workers/nats.c) on
 * an in-process bus and its own loop, exporting `bench.>` to the NATS
 * server at URL as fleet.bench.<topic>. Once the worker is connected, N
 * events {"i":i,"pad":"x..."} (the payload herd-pub and herd-nats-probe
 * flood send) are published on the bus, at most WINDOW ahead of what the
 * worker has handed to libnats, so the bus and the worker's queue never
 * drop. Prints "N SECONDS RATE" as the worker saw them go (the receiving
 * side is measured by herd-nats-probe count). Exit 1 on any loss.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "workers/worker.h"

#define WINDOW 20000
#define CHUNK 1000

typedef struct bench {
    uv_loop_t loop;
    uv_idle_t idle;
    bus *b;
    worker *w;
    long n, sent, pad;
    char *payload;
    int stopped, ended;
    double t0;
} bench;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static json_int_t field(bench *x, const char *name)
{
    json_t *h = json_object(), *v;
    worker_health_fields(x->w, h);
    v = json_object_get(h, name);
    json_int_t r = json_is_integer(v) ? json_integer_value(v) : json_is_true(v) ? 1 : 0;
    json_decref(h);
    return r;
}

static void on_ended(worker *w, int code, const char *error, void *data)
{
    (void)w;
    (void)code;
    fprintf(stderr, "bench_fleet_export: the worker ended: %s\n", error);
    ((bench *)data)->ended = 1;
}

static void on_stopped(worker *w, void *data)
{
    (void)w;
    ((bench *)data)->stopped = 1;
}

static void on_log(worker *w, enum base_log_level level, const char *msg, void *data)
{
    (void)w;
    (void)level;
    (void)msg;
    (void)data;
}

static void on_idle(uv_idle_t *h)
{
    bench *x = h->data;
    json_int_t done = field(x, "exported");

    if (x->ended) {
        uv_idle_stop(h);
        return;
    }
    if (x->sent == 0 && !field(x, "connected"))
        return;
    if (x->sent == 0)
        x->t0 = now_s();
    if (done >= x->n) {
        double t = now_s() - x->t0;
        printf("%ld %.3f %.0f\n", x->n, t, t > 0 ? (double)x->n / t : 0);
        uv_idle_stop(h);
        return;
    }
    for (int k = 0; k < CHUNK && x->sent < x->n && x->sent - done < WINDOW; k++) {
        int len = snprintf(x->payload, 64, "{\"i\":%ld,\"pad\":\"", x->sent);
        memset(x->payload + len, 'x', (size_t)x->pad);
        memcpy(x->payload + len + x->pad, "\"}", 2);
        if (bus_publish(x->b, "bench.e", x->payload, (size_t)(len + x->pad + 2)) < 0)
            break;
        x->sent++;
    }
}

int main(int argc, char **argv)
{
    static bench x;
    worker_host host = {on_ended, on_stopped, on_log, &x};
    bus_config bc = {.no_sockets = 1, .queue_max = WINDOW * 2};
    char err[512], text[1024], dir[] = "/tmp/bench-fleet.XXXXXX";
    json_error_t jerr;

    if (argc < 3 || argc > 4 || (x.n = strtol(argv[2], NULL, 10)) <= 0) {
        fprintf(stderr, "usage: bench_fleet_export URL N [PAD_BYTES]\n");
        return 2;
    }
    x.pad = argc > 3 ? strtol(argv[3], NULL, 10) : 0;
    x.payload = malloc((size_t)x.pad + 64);
    if (mkdtemp(dir) == NULL || x.payload == NULL || base_mem_install() < 0)
        return 1;
    uv_loop_init(&x.loop);
    if (bus_open(&x.loop, &bc, &x.b, err, sizeof(err)) < 0) {
        fprintf(stderr, "bench_fleet_export: %s\n", err);
        return 1;
    }
    snprintf(text, sizeof(text), "{\"url\": \"%s\", \"export\": [\"bench.>\"], \"queue_max\": %d}",
             argv[1], WINDOW * 2);
    json_t *cfg = json_loads(text, 0, &jerr);
    worker_params p = {.kind = &worker_nats_kind,
                       .name = "nb",
                       .config = cfg,
                       .loop = &x.loop,
                       .bus = x.b,
                       .state_dir = dir,
                       .runtime_dir = dir,
                       .host_name = "bench",
                       .host = &host};
    if (cfg == NULL || worker_nats_kind.validate(cfg, "w", err, sizeof(err)) < 0 ||
        worker_new(&p, &x.w) < 0 || worker_start(x.w, err, sizeof(err)) < 0) {
        fprintf(stderr, "bench_fleet_export: %s\n", err);
        return 1;
    }
    json_decref(cfg);
    uv_idle_init(&x.loop, &x.idle);
    x.idle.data = &x;
    uv_idle_start(&x.idle, on_idle);
    while (uv_is_active((uv_handle_t *)&x.idle))
        uv_run(&x.loop, UV_RUN_ONCE);
    int lost = field(&x, "dropped") + field(&x, "failed") != 0 || x.ended;
    worker_stop(x.w);
    while (!x.stopped)
        uv_run(&x.loop, UV_RUN_ONCE);
    worker_free(x.w);
    uv_close((uv_handle_t *)&x.idle, NULL);
    bus_close(x.b, NULL, NULL);
    uv_run(&x.loop, UV_RUN_DEFAULT);
    snprintf(text, sizeof(text), "rm -rf '%s'", dir);
    if (system(text) != 0)
        lost = 1;
    free(x.payload);
    return lost;
}
