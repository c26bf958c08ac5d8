/*
 * The bus object: its configuration, lifetime and counters. What it holds
 * is the pub/sub engine (broker.c), the sockets (server.c) and the request
 * routes (request.c); this file opens and closes them in order.
 *
 * Design notes: every libuv handle of the bus counts in handles_open; the
 * bus is freed in the close callback of the last one, and only then is the
 * caller's on_closed called.
 */
#include "bus/internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void bus__log(bus *b, enum base_log_level level, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (b != NULL && b->log != NULL)
        b->log(level, msg, b->log_data);
    else
        fprintf(stderr, "herdd: bus: %s: %s\n", base_log_level_name(level), msg);
}

void bus__handle_closed(uv_handle_t *h)
{
    bus__release(h->data);
}

void bus__handle_closed_async(uv_handle_t *h)
{
    bus_endpoint *ep = h->data;
    pthread_mutex_destroy(&ep->lock);
    bus__release(ep->bus);
}

void bus__release(bus *b)
{
    if (--b->handles_open == 0) {
        void (*cb)(void *) = b->on_closed;
        void *data = b->on_closed_data;
        free(b);
        if (cb != NULL)
            cb(data);
    }
}

int bus_open(uv_loop_t *loop, const bus_config *cfg, bus **out, char *err, size_t err_size)
{
    bus_config defaults = {0};
    bus *b;
    int rv;

    if (cfg == NULL)
        cfg = &defaults;
    b = calloc(1, sizeof(*b));
    if (b == NULL) {
        snprintf(err, err_size, "out of memory");
        return -ENOMEM;
    }
    b->loop = loop;
    if (cfg->dir != NULL)
        snprintf(b->dir, sizeof(b->dir), "%s", cfg->dir);
    else
        bus_default_dir(b->dir, sizeof(b->dir));
    b->max_message_bytes =
        cfg->max_message_bytes ? cfg->max_message_bytes : BUS_DEFAULT_MAX_MESSAGE_BYTES;
    b->max_reply_bytes =
        cfg->max_reply_bytes != 0 ? cfg->max_reply_bytes : BUS_DEFAULT_MAX_REPLY_BYTES;
    b->subscriber_buffer =
        cfg->subscriber_buffer > 0 ? cfg->subscriber_buffer : BUS_DEFAULT_SUBSCRIBER_BUFFER;
    b->queue_max = cfg->queue_max > 0 ? (size_t)cfg->queue_max : BUS_DEFAULT_QUEUE_MAX;
    b->listener_check_ms =
        cfg->listener_check_ms == 0 ? BUS_DEFAULT_LISTENER_CHECK_MS : cfg->listener_check_ms;
    b->max_connections = bus__pipes_cap(cfg->max_connections != 0 ? cfg->max_connections
                                                                  : BUS_DEFAULT_MAX_CONNECTIONS);
    b->pending_reply_bytes =
        cfg->pending_reply_bytes != 0 ? cfg->pending_reply_bytes : BUS_DEFAULT_PENDING_REPLY_BYTES;
    b->pending_reply_bytes_total = cfg->pending_reply_bytes_total != 0
                                       ? cfg->pending_reply_bytes_total
                                       : BUS_DEFAULT_PENDING_REPLY_BYTES_TOTAL;
    b->log = cfg->log;
    b->log_data = cfg->log_data;
    b->ep[BUS_EP_EVENTS].tcp_url = cfg->tcp_events;
    b->ep[BUS_EP_PUBLISH].tcp_url = cfg->tcp_publish;
    b->ep[BUS_EP_REQUEST].tcp_url = cfg->tcp_request;
    b->tls_cert_file = cfg->tls_cert_file;
    b->tls_key_file = cfg->tls_key_file;

    rv = bus__broker_init(b);
    if (rv < 0) {
        snprintf(err, err_size, "uv_idle_init: %s", uv_strerror(rv));
        free(b);
        return rv;
    }
    if (!cfg->no_sockets) {
        rv = bus__sockets_open(b, err, err_size);
        if (rv < 0) {
            /* Close what was opened; the caller's loop run finishes it. */
            bus_close(b, NULL, NULL);
            return rv;
        }
    }
    *out = b;
    return 0;
}

void bus_close(bus *b, void (*on_closed)(void *data), void *data)
{
    if (b == NULL || b->closing)
        return;
    b->closing = 1;
    b->on_closed = on_closed;
    b->on_closed_data = data;

    bus__requests_close(b);
    bus__services_free(b);
    bus__sockets_close(b);
    bus__broker_close(b);
}

size_t bus_max_reply_bytes(const bus *b)
{
    return b->max_reply_bytes;
}

const char *bus_dir(const bus *b)
{
    return b->dir;
}

void bus_get_stats(const bus *b, bus_stats *out)
{
    *out = b->stats;
    out->remote_subscribers = b->sockets ? (int)bus__pipes_count(&b->ep[BUS_EP_EVENTS]) : 0;
}

json_t *bus_stats_json(const bus_stats *s)
{
    json_t *o = json_object();
    json_t *d = json_object();

    if (o == NULL || d == NULL) {
        json_decref(o);
        json_decref(d);
        return NULL;
    }
    json_object_set_new(o, "published", json_integer((json_int_t)s->published));
    json_object_set_new(o, "delivered", json_integer((json_int_t)s->delivered));
    json_object_set_new(o, "remote_in", json_integer((json_int_t)s->remote_in));
    json_object_set_new(o, "remote_out", json_integer((json_int_t)s->remote_out));
    json_object_set_new(o, "requests", json_integer((json_int_t)s->requests));
    json_object_set_new(o, "replies", json_integer((json_int_t)s->replies));
    json_object_set_new(o, "requests_pending", json_integer(s->requests_pending));
    json_object_set_new(o, "listener_restarts", json_integer((json_int_t)s->listener_restarts));
    json_object_set_new(o, "remote_subscribers", json_integer(s->remote_subscribers));
    json_object_set_new(o, "connections_refused", json_integer((json_int_t)s->connections_refused));
    json_object_set_new(o, "connections_evicted", json_integer((json_int_t)s->connections_evicted));
    json_object_set_new(o, "subscriptions", json_integer(s->subscriptions));
    for (int i = 0; i < BUS_DROP_N; i++)
        json_object_set_new(d, bus_drop_reason_name(i), json_integer((json_int_t)s->dropped[i]));
    json_object_set_new(o, "dropped", d);
    return o;
}
