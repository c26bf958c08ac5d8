/*
 * The in-process broker: publish, subscribe, dispatch.
 *
 * Design notes:
 * - bus_publish matches at once and appends a reference to the event into
 *   each matching subscriber's ring; nothing is called back. A uv_idle
 *   handle, active only while some subscriber has deliverable events, drains
 *   the rings on a later loop turn. So a callback never re-enters its
 *   publisher, and a publish inside a callback is delivered after it.
 * - Each ring is bounded by its subscriber's queue_max: on overflow the
 *   oldest reference is dropped and counted. Rings start small and double,
 *   so an idle subscriber costs a few dozen bytes.
 * - One drain turn is budgeted (DISPATCH_BUDGET events) so a flood on the
 *   bus cannot starve sockets, timers and children on the same loop.
 * - A subscription removed while queued or inside its own callback is only
 *   marked; the drain frees it when it next sees it.
 */
#include "bus/internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DISPATCH_BUDGET 16384
#define PER_SUB_BUDGET 256
#define RING_INITIAL 8

void bus__log(bus *b, enum bus_log_level level, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (b && b->log) {
        b->log(level, msg, b->log_data);
    } else {
        static const char *const names[] = {"error", "warn", "info", "debug"};
        fprintf(stderr, "herdd: bus: %s: %s\n", names[level], msg);
    }
}

void bus_default_dir(char *buf, size_t size)
{
    const char *v = getenv("HERD_RUNTIME_DIR");

    if (v && *v) {
        snprintf(buf, size, "%s", v);
        return;
    }
    v = getenv("XDG_RUNTIME_DIR");
    if (v && *v) {
        snprintf(buf, size, "%s/herd", v);
        return;
    }
    snprintf(buf, size, "/tmp/herd-%u", (unsigned)getuid());
}

static void msg_unref(bus_msg *m)
{
    if (m && --m->refs == 0)
        free(m);
}

static bus_msg *msg_new(const char *topic, size_t topic_len, const char *payload,
                        size_t payload_len)
{
    bus_msg *m = malloc(sizeof(*m) + topic_len + payload_len + 2);

    if (m == NULL)
        return NULL;
    m->refs = 1;
    m->topic_len = (uint32_t)topic_len;
    m->payload_len = payload_len;
    memcpy(m->data, topic, topic_len);
    m->data[topic_len] = '\0';
    memcpy(m->data + topic_len + 1, payload, payload_len);
    m->data[topic_len + 1 + payload_len] = '\0';
    return m;
}

static void sub_drop_queue(bus_sub *s)
{
    while (s->count > 0) {
        msg_unref(s->ring[s->head]);
        s->head = (s->head + 1) % s->cap;
        s->count--;
    }
}

static void sub_free(bus_sub *s)
{
    sub_drop_queue(s);
    free(s->ring);
    free(s->pattern);
    free(s);
}

static void dispatch_cb(uv_idle_t *h);

static void ready_push(bus *b, bus_sub *s)
{
    if (s->in_ready || s->paused || s->removed)
        return;
    s->in_ready = 1;
    s->ready_next = NULL;
    if (b->ready_tail)
        b->ready_tail->ready_next = s;
    else
        b->ready_head = s;
    b->ready_tail = s;
    if (!b->dispatch_active && !b->closing) {
        uv_idle_start(&b->dispatch, dispatch_cb);
        b->dispatch_active = 1;
    }
}

static bus_sub *ready_pop(bus *b)
{
    bus_sub *s = b->ready_head;

    if (s) {
        b->ready_head = s->ready_next;
        if (b->ready_head == NULL)
            b->ready_tail = NULL;
        s->in_ready = 0;
        s->ready_next = NULL;
    }
    return s;
}

/* sub_enqueue appends a reference to m; drops the oldest when full. */
static int sub_enqueue(bus *b, bus_sub *s, bus_msg *m)
{
    if (s->count == s->max) {
        msg_unref(s->ring[s->head]);
        s->head = (s->head + 1) % s->cap;
        s->count--;
        b->stats.dropped[BUS_DROP_QUEUE_FULL]++;
    } else if (s->count == s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : RING_INITIAL;
        if (ncap > s->max)
            ncap = s->max;
        bus_msg **nring = malloc(ncap * sizeof(*nring));
        if (nring == NULL)
            return -ENOMEM;
        for (size_t i = 0; i < s->count; i++)
            nring[i] = s->ring[(s->head + i) % s->cap];
        free(s->ring);
        s->ring = nring;
        s->cap = ncap;
        s->head = 0;
    }
    s->ring[(s->head + s->count) % s->cap] = m;
    s->count++;
    m->refs++;
    ready_push(b, s);
    return 0;
}

static void dispatch_cb(uv_idle_t *h)
{
    bus *b = h->data;
    size_t budget = DISPATCH_BUDGET;
    bus_sub *s;

    /* Only the subs ready when this turn began; later ones wait a turn. */
    bus_sub *stop_after = b->ready_tail;
    while (budget > 0 && (s = ready_pop(b)) != NULL) {
        int last = s == stop_after;
        size_t n = 0;
        while (!s->removed && !s->paused && s->count > 0 && n < PER_SUB_BUDGET) {
            bus_msg *m = s->ring[s->head];
            s->head = (s->head + 1) % s->cap;
            s->count--;
            bus_event ev = {m->data, m->topic_len, m->data + m->topic_len + 1, m->payload_len};
            s->dispatching = 1;
            s->cb(&ev, s->data);
            s->dispatching = 0;
            msg_unref(m);
            b->stats.delivered++;
            n++;
        }
        budget -= n < budget ? n : budget;
        if (s->removed) {
            if (!s->in_ready) /* else freed when popped again */
                sub_free(s);
        }
        else if (s->count > 0)
            ready_push(b, s);
        if (last)
            break;
    }
    if (b->ready_head == NULL && b->dispatch_active) {
        uv_idle_stop(&b->dispatch);
        b->dispatch_active = 0;
    }
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
        pthread_mutex_destroy(&b->pipes_lock);
        free(b->pipe_ids);
        free(b);
        if (cb)
            cb(data);
    }
}

int bus__broker_init(bus *b)
{
    int rv = uv_idle_init(b->loop, &b->dispatch);
    if (rv < 0)
        return rv;
    b->dispatch.data = b;
    b->handles_open++;
    return 0;
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
    if (cfg->dir)
        snprintf(b->dir, sizeof(b->dir), "%s", cfg->dir);
    else
        bus_default_dir(b->dir, sizeof(b->dir));
    b->max_message_bytes = cfg->max_message_bytes ? cfg->max_message_bytes
                                                  : BUS_DEFAULT_MAX_MESSAGE_BYTES;
    b->subscriber_buffer =
        cfg->subscriber_buffer > 0 ? cfg->subscriber_buffer : BUS_DEFAULT_SUBSCRIBER_BUFFER;
    b->queue_max = cfg->queue_max > 0 ? (size_t)cfg->queue_max : BUS_DEFAULT_QUEUE_MAX;
    b->listener_check_ms = cfg->listener_check_ms == 0 ? 2000 : cfg->listener_check_ms;
    b->log = cfg->log;
    b->log_data = cfg->log_data;
    pthread_mutex_init(&b->pipes_lock, NULL);

    rv = bus__broker_init(b);
    if (rv < 0) {
        snprintf(err, err_size, "uv_idle_init: %s", uv_strerror(rv));
        pthread_mutex_destroy(&b->pipes_lock);
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
    while (b->subs) {
        bus_sub *s = b->subs;
        b->subs = s->next;
        s->removed = 1;
        if (!s->in_ready && !s->dispatching)
            sub_free(s);
        else
            sub_drop_queue(s);
    }
    /* Subs still in the ready list are freed here; none is dispatching
     * unless bus_close runs from a callback, which then frees it. */
    bus_sub *s;
    while ((s = ready_pop(b)) != NULL)
        if (!s->dispatching) /* else dispatch_cb frees it after the callback */
            sub_free(s);
    if (b->dispatch_active)
        uv_idle_stop(&b->dispatch);
    bus__sockets_close(b);
    uv_close((uv_handle_t *)&b->dispatch, bus__handle_closed);
}

const char *bus_dir(const bus *b)
{
    return b->dir;
}

void bus_get_stats(const bus *b, bus_stats *out)
{
    *out = b->stats;
    pthread_mutex_lock((pthread_mutex_t *)&b->pipes_lock);
    out->remote_subscribers = b->n_pipes;
    pthread_mutex_unlock((pthread_mutex_t *)&b->pipes_lock);
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
    json_object_set_new(o, "subscriptions", json_integer(s->subscriptions));
    for (int i = 0; i < BUS_DROP_N; i++)
        json_object_set_new(d, bus_drop_reason_name(i), json_integer((json_int_t)s->dropped[i]));
    json_object_set_new(o, "dropped", d);
    return o;
}

/* publish_msg queues m for every matching live subscriber. */
static void publish_local(bus *b, bus_msg *m)
{
    for (bus_sub *s = b->subs; s; s = s->next) {
        if (bus_topic_match(s->pattern, s->pattern_len, m->data, m->topic_len)) {
            if (sub_enqueue(b, s, m) < 0)
                b->stats.dropped[BUS_DROP_QUEUE_FULL]++;
        }
    }
}

static int publish(bus *b, const char *topic, size_t topic_len, const char *payload,
                   size_t payload_len, int send_remote)
{
    if (b->closing)
        return -ESHUTDOWN;
    if (topic_len + 1 + payload_len > b->max_message_bytes) {
        b->stats.dropped[BUS_DROP_TOO_LARGE]++;
        return -EMSGSIZE;
    }
    b->stats.published++;
    if (send_remote)
        bus__send_event(b, topic, topic_len, payload, payload_len);
    if (b->subs == NULL)
        return 0;
    bus_msg *m = msg_new(topic, topic_len, payload, payload_len);
    if (m == NULL)
        return -ENOMEM;
    publish_local(b, m);
    msg_unref(m);
    return 0;
}

int bus_publish(bus *b, const char *topic, const char *payload, size_t payload_len)
{
    size_t topic_len = topic ? strlen(topic) : 0;

    if (bus_topic_check(topic, topic_len) < 0)
        return -EINVAL;
    return publish(b, topic, topic_len, payload, payload_len, 1);
}

int bus_publish_json(bus *b, const char *topic, const json_t *payload)
{
    char *s = bus_json_dumps(payload, JSON_COMPACT | JSON_ENCODE_ANY);
    int rv;

    if (s == NULL)
        return -ENOMEM;
    rv = bus_publish(b, topic, s, strlen(s));
    free(s);
    return rv;
}

void bus__deliver_remote_frame(bus *b, const bus_event *ev)
{
    /* Validated already; server.c sends the received message itself on
     * events.ipc, without a copy. */
    publish(b, ev->topic, ev->topic_len, ev->payload, ev->payload_len, 0);
}

int bus_subscribe(bus *b, const char *pattern, size_t queue_max, bus_event_cb cb, void *data,
                  bus_sub **out)
{
    size_t len = pattern ? strlen(pattern) : 0;
    bus_sub *s;

    if (b->closing)
        return -ESHUTDOWN;
    if (cb == NULL || bus_pattern_check(pattern, len) < 0)
        return -EINVAL;
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return -ENOMEM;
    s->pattern = strdup(pattern);
    if (s->pattern == NULL) {
        free(s);
        return -ENOMEM;
    }
    s->bus = b;
    s->pattern_len = len;
    s->cb = cb;
    s->data = data;
    s->max = queue_max ? queue_max : b->queue_max;
    s->next = b->subs;
    if (b->subs)
        b->subs->prev = s;
    b->subs = s;
    b->stats.subscriptions++;
    if (out)
        *out = s;
    return 0;
}

void bus_unsubscribe(bus_sub *s)
{
    if (s == NULL || s->removed)
        return;
    bus *b = s->bus;
    s->removed = 1;
    if (s->prev)
        s->prev->next = s->next;
    else
        b->subs = s->next;
    if (s->next)
        s->next->prev = s->prev;
    b->stats.subscriptions--;
    sub_drop_queue(s);
    /* Queued in the ready list or inside its callback: the drain frees it. */
    if (!s->in_ready && !s->dispatching)
        sub_free(s);
}

void bus_sub_pause(bus_sub *s)
{
    if (s)
        s->paused = 1;
}

void bus_sub_resume(bus_sub *s)
{
    if (s == NULL || !s->paused)
        return;
    s->paused = 0;
    if (s->count > 0)
        ready_push(s->bus, s);
}

size_t bus_sub_queued(const bus_sub *s)
{
    return s ? s->count : 0;
}
