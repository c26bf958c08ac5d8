/*
 * The `supervisor` bus service and herdd's own heartbeat.
 *
 * Design notes: status figures are computed when asked (one read of
 * smaps_rollup), never cached, so they cost nothing while nobody looks.
 */
#include "supervisor/supervisor.h"

#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct sup {
    uv_loop_t *loop;
    sup_config cfg;
    bus *bus;
    uint64_t started_ns;
    uv_timer_t heartbeat;
    void (*on_closed)(void *);
    void *on_closed_data;
};

static json_t *iso_now(void)
{
    char buf[64], ts[32];
    struct timespec now;
    struct tm tm;

    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, sizeof(buf), "%.32s.%03dZ", ts, (int)(now.tv_nsec / 1000000));
    return json_string(buf);
}

json_t *sup_health(sup *s)
{
    sup_memory mem;
    bus_stats st;
    json_t *o = json_object();

    if (o == NULL)
        return NULL;
    sup_memory_read(0, &mem);
    bus_get_stats(s->bus, &st);
    json_object_set_new(o, "pid", json_integer(getpid()));
    json_object_set_new(o, "version", json_string(HERD_VERSION));
    json_object_set_new(o, "uptime_s",
                        json_integer((json_int_t)((uv_hrtime() - s->started_ns) / 1000000000u)));
    json_object_set_new(o, "rss_bytes", json_integer((json_int_t)mem.rss_bytes));
    json_object_set_new(o, "pss_bytes", json_integer((json_int_t)mem.pss_bytes));
    json_object_set_new(o, "uss_bytes", json_integer((json_int_t)mem.uss_bytes));
    json_object_set_new(o, "runtime_dir", json_string(bus_dir(s->bus)));
    json_object_set_new(o, "state_dir", json_string(s->cfg.state_dir));
    json_object_set_new(o, "workers", json_object());
    json_object_set_new(o, "bus", bus_stats_json(&st));
    json_object_set_new(o, "ts", iso_now());
    return o;
}

static json_t *mem_report(sup *s)
{
    sup_memory mem;
    struct mallinfo2 mi = mallinfo2();

    sup_memory_read(0, &mem);
    return json_pack("{s:{s:I,s:I,s:I},s:{s:I,s:I,s:I},s:{}}", "supervisor", "rss_bytes",
                     (json_int_t)mem.rss_bytes, "pss_bytes", (json_int_t)mem.pss_bytes,
                     "uss_bytes", (json_int_t)mem.uss_bytes, "malloc", "arena_bytes",
                     (json_int_t)mi.arena, "in_use_bytes", (json_int_t)mi.uordblks, "free_bytes",
                     (json_int_t)mi.fordblks, "workers");
}

static void on_request(bus_request *req, void *data)
{
    sup *s = data;
    const char *op = bus_request_op(req);

    if (strcmp(op, "status") == 0) {
        json_t *r = json_object();
        json_object_set_new(r, "supervisor", sup_health(s));
        json_object_set_new(r, "workers", json_array());
        bus_reply_ok(req, r);
    } else if (strcmp(op, "mem") == 0) {
        bus_reply_ok(req, mem_report(s));
    } else {
        bus_reply_error(req, "unknown_op",
                        "supervisor has no op \"%.64s\" (expected status or mem)", op);
    }
}

static void heartbeat(uv_timer_t *t)
{
    sup *s = t->data;
    json_t *h = sup_health(s);

    if (h) {
        bus_publish_json(s->bus, "system.supervisor.health", h);
        json_decref(h);
    }
}

int sup_new(uv_loop_t *loop, const sup_config *cfg, bus *b, sup **out)
{
    sup *s = calloc(1, sizeof(*s));
    int rv;

    if (s == NULL)
        return -ENOMEM;
    s->loop = loop;
    s->cfg = *cfg;
    s->bus = b;
    s->started_ns = uv_hrtime();
    if ((rv = bus_service_register(b, "supervisor", on_request, s)) < 0) {
        free(s);
        return rv;
    }
    uv_timer_init(loop, &s->heartbeat);
    s->heartbeat.data = s;
    uint64_t period = (uint64_t)cfg->health_interval_s * 1000;
    uv_timer_start(&s->heartbeat, heartbeat, 0, period);
    *out = s;
    return 0;
}

static void heartbeat_closed(uv_handle_t *h)
{
    sup *s = h->data;
    void (*cb)(void *) = s->on_closed;
    void *data = s->on_closed_data;

    free(s);
    if (cb)
        cb(data);
}

void sup_close(sup *s, void (*on_closed)(void *data), void *data)
{
    if (s == NULL)
        return;
    s->on_closed = on_closed;
    s->on_closed_data = data;
    bus_service_unregister(s->bus, "supervisor");
    uv_close((uv_handle_t *)&s->heartbeat, heartbeat_closed);
}
