/*
 * The in-process broker: publish, subscribe, dispatch.
 *
 * Design notes:
 * - bus_publish matches at once and appends a reference to the event into
 *   each matching subscriber's ring; nothing is called back. A uv_idle
 *   handle, active only while some subscriber has deliverable events, drains
 *   the rings on a later loop turn. So a callback never re-enters its
 *   publisher, and a publish inside a callback is delivered after it.
 * - Each queue (a base_ring) is bounded by its subscriber's queue_max: on
 *   overflow the oldest reference is dropped and counted. Queues are
 *   allocated on the first event and double, so an idle subscriber costs a
 *   few dozen bytes.
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

static void msg_unref(bus_msg *m)
{
    if (m != NULL && --m->refs == 0)
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
    bus_msg *m;

    while ((m = base_ring_pop(&s->queue)) != NULL)
        msg_unref(m);
}

static void sub_free(bus_sub *s)
{
    sub_drop_queue(s);
    base_ring_free(&s->queue);
    base_free(s);
}

static void dispatch_cb(uv_idle_t *h);

static void ready_push(bus *b, bus_sub *s)
{
    if (s->in_ready || s->paused || s->removed)
        return;
    s->in_ready = 1;
    s->ready_next = NULL;
    if (b->ready_tail != NULL)
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

    if (s != NULL) {
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
    void *dropped;

    if (base_ring_push(&s->queue, m, &dropped) < 0)
        return -ENOMEM;
    if (dropped != NULL) {
        msg_unref(dropped);
        b->stats.dropped[BUS_DROP_QUEUE_FULL]++;
    }
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
        while (!s->removed && !s->paused && n < PER_SUB_BUDGET) {
            bus_msg *m = base_ring_pop(&s->queue);
            if (m == NULL)
                break;
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
        } else if (base_ring_count(&s->queue) > 0)
            ready_push(b, s);
        if (last)
            break;
    }
    if (b->ready_head == NULL && b->dispatch_active) {
        uv_idle_stop(&b->dispatch);
        b->dispatch_active = 0;
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

void bus__broker_close(bus *b)
{
    base_free(b->index); /* every subscription goes now */
    b->index = NULL;
    b->n_index = b->n_indexed = 0;
    b->wild = NULL;
    while (b->subs != NULL) {
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
    uv_close((uv_handle_t *)&b->dispatch, bus__handle_closed);
}

/* ---- the subscription index ----------------------------------------- */

/*
 * A publish looked at every subscription: with a worker's control
 * subscription and its own for each of N workers, every heartbeat and state
 * change cost 2N matches, quadratic in N at start (63% of the start of
 * 4,000 workers, bench/floor). Indexed: a pattern without wildcards
 * (system.<w>.control) in a chain by the hash of the whole pattern, one
 * whose first token is literal (idle.3.>, system.*.state) by the hash of
 * that token, and the few that begin with a wildcard in `wild`. A topic
 * looks in its own chain, its first token's chain and `wild`: a
 * subscription lives in one chain only and each pass takes only its own
 * kind, so none is delivered twice. The table grows to keep chains short;
 * it is the bus's own memory (slot 0), not a subscriber's.
 */
#define INDEX_MIN 64

static size_t first_token_len(const char *s, size_t len)
{
    const char *dot = memchr(s, '.', len);
    return dot != NULL ? (size_t)(dot - s) : len;
}

static bool pattern_wild_first(const bus_sub *s)
{
    size_t n = first_token_len(s->pattern, s->pattern_len);
    return n == 1 && (s->pattern[0] == '*' || s->pattern[0] == '>');
}

static bus_sub **index_chain(bus *b, uint32_t hash)
{
    return &b->index[hash & (b->n_index - 1)];
}

static int index_grow(bus *b)
{
    size_t n = b->n_index ? b->n_index * 2 : INDEX_MIN;
    uint32_t prev = base_mem_switch(0);
    bus_sub **t = base_calloc(n, sizeof(*t));
    base_mem_switch(prev);
    if (t == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < b->n_index; i++) {
        bus_sub *s = b->index[i];
        while (s != NULL) {
            bus_sub *next = s->inext;
            s->inext = t[s->ihash & (n - 1)];
            t[s->ihash & (n - 1)] = s;
            s = next;
        }
    }
    base_free(b->index);
    b->index = t;
    b->n_index = n;
    return 0;
}

static int index_add(bus *b, bus_sub *s)
{
    if (pattern_wild_first(s)) {
        s->inext = b->wild;
        b->wild = s;
        return 0;
    }
    if ((b->n_index == 0 || b->n_indexed >= b->n_index * 2) && index_grow(b) < 0 && b->n_index == 0)
        return -ENOMEM; /* a failed growth of a table that exists only lengthens chains */
    s->exact = bus_pattern_prefix_len(s->pattern, s->pattern_len) >= s->pattern_len;
    s->ihash = base_hash(
        s->pattern, s->exact ? s->pattern_len : first_token_len(s->pattern, s->pattern_len), 0);
    bus_sub **c = index_chain(b, s->ihash);
    s->inext = *c;
    *c = s;
    b->n_indexed++;
    return 0;
}

static void index_remove(bus *b, bus_sub *s)
{
    bool wild = pattern_wild_first(s);
    bus_sub **pp = wild ? &b->wild : index_chain(b, s->ihash);
    while (*pp != NULL && *pp != s)
        pp = &(*pp)->inext;
    if (*pp == s) {
        *pp = s->inext;
        if (!wild)
            b->n_indexed--;
    }
    s->inext = NULL;
}

static void deliver_to(bus *b, bus_sub *s, bus_msg *m)
{
    if (sub_enqueue(b, s, m) < 0)
        b->stats.dropped[BUS_DROP_QUEUE_FULL]++;
}

/* publish_local queues m for every matching live subscriber. */
static void publish_local(bus *b, bus_msg *m)
{
    const char *topic = m->data;
    size_t len = m->topic_len, first = first_token_len(topic, len);

    if (b->n_index != 0) {
        uint32_t whole = base_hash(topic, len, 0), head = base_hash(topic, first, 0);
        for (bus_sub *s = *index_chain(b, whole); s != NULL; s = s->inext)
            if (s->exact && s->ihash == whole && s->pattern_len == len &&
                memcmp(s->pattern, topic, len) == 0)
                deliver_to(b, s, m);
        for (bus_sub *s = *index_chain(b, head); s != NULL; s = s->inext)
            if (!s->exact && s->ihash == head &&
                bus_topic_match(s->pattern, s->pattern_len, topic, len))
                deliver_to(b, s, m);
    }
    for (bus_sub *s = b->wild; s != NULL; s = s->inext)
        if (bus_topic_match(s->pattern, s->pattern_len, topic, len))
            deliver_to(b, s, m);
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
    size_t topic_len = topic != NULL ? strlen(topic) : 0;

    if (bus_topic_check(topic, topic_len) < 0)
        return -EINVAL;
    return publish(b, topic, topic_len, payload, payload_len, 1);
}

int bus_publish_json(bus *b, const char *topic, const json_t *payload)
{
    char *s = base_json_dumps(payload, JSON_COMPACT | JSON_ENCODE_ANY);
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
    size_t len = pattern != NULL ? strlen(pattern) : 0;
    bus_sub *s;

    if (b->closing)
        return -ESHUTDOWN;
    if (cb == NULL || bus_pattern_check(pattern, len) < 0)
        return -EINVAL;
    /* base's allocator: charged to the subscriber's account. */
    s = base_calloc(1, sizeof(*s) + len + 1);
    if (s == NULL)
        return -ENOMEM;
    memcpy(s->pattern, pattern, len + 1);
    s->pattern_len = len;
    s->bus = b;
    s->cb = cb;
    s->data = data;
    base_ring_init(&s->queue, queue_max != 0 ? queue_max : b->queue_max);
    if (index_add(b, s) < 0) {
        base_ring_free(&s->queue);
        base_free(s);
        return -ENOMEM;
    }
    s->next = b->subs;
    if (b->subs != NULL)
        b->subs->prev = s;
    b->subs = s;
    b->stats.subscriptions++;
    if (out != NULL)
        *out = s;
    return 0;
}

void bus_unsubscribe(bus_sub *s)
{
    if (s == NULL || s->removed)
        return;
    bus *b = s->bus;
    s->removed = 1;
    index_remove(b, s);
    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        b->subs = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    b->stats.subscriptions--;
    sub_drop_queue(s);
    /* Queued in the ready list or inside its callback: the drain frees it. */
    if (!s->in_ready && !s->dispatching)
        sub_free(s);
}

void bus_sub_pause(bus_sub *s)
{
    if (s != NULL)
        s->paused = 1;
}

void bus_sub_resume(bus_sub *s)
{
    if (s == NULL || !s->paused)
        return;
    s->paused = 0;
    if (base_ring_count(&s->queue) > 0)
        ready_push(s->bus, s);
}

size_t bus_sub_queued(const bus_sub *s)
{
    return s != NULL ? base_ring_count(&s->queue) : 0;
}
