/*
 * The bus-subscriber kinds' shared part: config keys, the bounded event
 * queue, the counts (subscriber.h).
 *
 * Design notes
 * - One allocation per event (struct, topic and payload together), charged
 *   to the worker: the bus delivers inside worker_enter. Nothing is
 *   allocated while idle: the ring's slots come with the first event and
 *   are released when it drains, so a worker that saw a burst goes back to
 *   its struct alone.
 * - Drop-oldest: a full queue hands back its oldest event, which is freed
 *   and counted in `dropped`; the newest are what a dashboard or a log
 *   wants first after a stall.
 */
#include "workers/subscriber.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus/client.h"

int subscriber_validate(const json_t *cfg, const char *path, char *err, size_t err_size)
{
    const json_t *subs = json_object_get(cfg, "subscribe"), *q = json_object_get(cfg, "queue_max");
    size_t i;
    const json_t *p;

    if (!json_is_array(subs) || json_array_size(subs) == 0 ||
        json_array_size(subs) > SUBSCRIBER_PATTERNS_MAX)
        return base_errf(err, err_size,
                         "%s.subscribe: required, an array of 1 to %d topic patterns "
                         "(\"sensors.>\", \"jobs.*.finished\")",
                         path, SUBSCRIBER_PATTERNS_MAX);
    json_array_foreach(subs, i, p)
    {
        if (!json_is_string(p) ||
            bus_pattern_check(json_string_value(p), json_string_length(p)) < 0)
            return base_errf(err, err_size, "%s.subscribe[%zu]: not a topic pattern%s%.80s%s", path,
                             i, json_is_string(p) ? " (\"" : "",
                             json_is_string(p) ? json_string_value(p) : "",
                             json_is_string(p) ? "\")" : "");
    }
    if (q != NULL && (!json_is_integer(q) || json_integer_value(q) < 1 ||
                      json_integer_value(q) > SUBSCRIBER_QUEUE_MAX))
        return base_errf(err, err_size, "%s.queue_max: expected an integer from 1 to %d", path,
                         SUBSCRIBER_QUEUE_MAX);
    return 0;
}

static void on_event(const bus_event *ev, void *data)
{
    subscriber *s = data;
    sub_event *e;
    void *old = NULL;

    if (s->accept != NULL && !s->accept(ev, s->data)) {
        s->ignored++;
        return;
    }
    s->received++;
    e = base_malloc(sizeof(*e) + ev->topic_len + 1 + ev->payload_len + 1);
    if (e == NULL) {
        s->dropped++; /* counted as what it is: not kept */
        return;
    }
    e->ts_ms = base_now_ms();
    e->topic_len = ev->topic_len;
    e->payload_len = ev->payload_len;
    e->topic = e->data;
    e->payload = e->data + ev->topic_len + 1;
    memcpy(e->topic, ev->topic, ev->topic_len);
    e->topic[ev->topic_len] = '\0';
    memcpy(e->payload, ev->payload, ev->payload_len);
    e->payload[ev->payload_len] = '\0';
    if (base_ring_push(&s->queue, e, &old) < 0) {
        base_free(e);
        s->dropped++;
        return;
    }
    if (old != NULL) {
        base_free(old);
        s->dropped++;
    }
    if (s->ready != NULL)
        s->ready(s, s->data);
}

int subscriber_start(subscriber *s, worker *w, subscriber_ready_cb ready, void *data)
{
    const json_t *cfg = worker_config(w), *q = json_object_get(cfg, "queue_max"), *p;
    size_t i;

    memset(s, 0, sizeof(*s));
    s->w = w;
    s->ready = ready;
    s->data = data;
    base_ring_init(&s->queue, json_is_integer(q) && json_integer_value(q) > 0
                                  ? (size_t)json_integer_value(q)
                                  : SUBSCRIBER_QUEUE_DEFAULT);
    /* the bus's own queue only bridges one loop turn, and what it drops
     * never reaches these counts: keep it at least the default size, so a
     * small queue_max bounds this queue (whose drops are counted) */
    size_t bus_queue =
        s->queue.max > SUBSCRIBER_QUEUE_DEFAULT ? s->queue.max : SUBSCRIBER_QUEUE_DEFAULT;
    json_array_foreach(json_object_get(cfg, "subscribe"), i, p)
    {
        int rv = worker_subscribe(w, json_string_value(p), bus_queue, on_event, s, NULL);
        if (rv < 0) {
            worker_set_error(w, "subscribe %s: %s", json_string_value(p), strerror(-rv));
            return rv;
        }
    }
    return 0;
}

sub_event *subscriber_pop(subscriber *s)
{
    sub_event *e = base_ring_pop(&s->queue);
    /* an emptied queue gives its slots back: idle costs only the struct */
    if (base_ring_count(&s->queue) == 0)
        base_ring_free(&s->queue);
    return e;
}

sub_event *subscriber_peek(const subscriber *s)
{
    return base_ring_peek(&s->queue);
}

void subscriber_done(subscriber *s, sub_event *e, bool ok)
{
    if (ok)
        s->done++;
    else
        s->failed++;
    base_free(e);
}

void subscriber_drop(subscriber *s, sub_event *e)
{
    s->dropped++;
    base_free(e);
}

size_t subscriber_depth(const subscriber *s)
{
    return base_ring_count(&s->queue);
}

void subscriber_health(const subscriber *s, json_t *obj)
{
    json_object_set_new(obj, "queue_depth", json_integer((json_int_t)subscriber_depth(s)));
    json_object_set_new(obj, "received", json_integer((json_int_t)s->received));
    json_object_set_new(obj, "done", json_integer((json_int_t)s->done));
    json_object_set_new(obj, "failed", json_integer((json_int_t)s->failed));
    json_object_set_new(obj, "dropped", json_integer((json_int_t)s->dropped));
    if (s->accept != NULL)
        json_object_set_new(obj, "ignored", json_integer((json_int_t)s->ignored));
}

int subscriber_event_json(const sub_event *e, base_buf *out)
{
    char ts[BASE_TIME_ISO_MAX];
    base_time_format(e->ts_ms, ts);
    int rc = base_buf_addf(out, "{\"ts\":\"%s\",\"topic\":", ts);
    rc |= base_buf_json_string(out, e->topic, e->topic_len);
    rc |= base_buf_add(out, ",\"payload\":", 11);
    rc |= base_buf_add(out, e->payload, e->payload_len);
    rc |= base_buf_add(out, "}", 1);
    return rc ? -ENOMEM : 0;
}

void subscriber_stop(subscriber *s)
{
    sub_event *e;
    while ((e = base_ring_pop(&s->queue)) != NULL)
        base_free(e);
    base_ring_free(&s->queue);
}
