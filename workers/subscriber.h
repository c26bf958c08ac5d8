/*
 * workers/subscriber.h: what every bus-subscriber kind (archive, exec,
 * forward, webhook; DESIGN.md section 5) shares: its `subscribe` and
 * `queue_max` keys, the bounded queue of events waiting for the kind's
 * work (drop-oldest, counted), and the health fields queue_depth,
 * received, done, failed, dropped.
 *
 * The bus delivers an event on a loop turn; the kind's work on it (a
 * write through the thread pool, a child, an HTTP request) takes longer,
 * so each event is copied into one allocation and queued here until the
 * kind takes it. The queue's slots are allocated on the first event
 * (base_ring), so an idle subscriber holds only this struct and its bus
 * subscriptions. Every count is exact: received = done + failed + dropped
 * + queue_depth + what the kind holds in flight.
 *
 * Loop thread only, like every worker call.
 */
#ifndef HERD_WORKERS_SUBSCRIBER_H
#define HERD_WORKERS_SUBSCRIBER_H

#include "workers/worker.h"

#define SUBSCRIBER_QUEUE_DEFAULT 1024
#define SUBSCRIBER_QUEUE_MAX 1000000
#define SUBSCRIBER_PATTERNS_MAX 64

/* A queued event: topic and payload copied, each NUL-terminated. */
typedef struct sub_event {
    int64_t ts_ms; /* when it reached the worker (wall clock) */
    size_t topic_len, payload_len;
    char *topic;   /* into data */
    char *payload; /* into data, the bytes received */
    char data[];
} sub_event;

typedef struct subscriber subscriber;

/* ready: an event was queued; the kind takes what it can (subscriber_pop). */
typedef void (*subscriber_ready_cb)(subscriber *s, void *data);
/* accept: whether the kind wants a matching event at all; one it refuses
 * is counted in `ignored`, never queued, and not in `received`. */
typedef bool (*subscriber_accept_cb)(const bus_event *ev, void *data);

struct subscriber {
    worker *w;
    base_ring queue; /* sub_event *, oldest first */
    uint64_t received, done, failed, dropped, ignored;
    subscriber_ready_cb ready;
    subscriber_accept_cb accept; /* NULL: every event; set after subscriber_start */
    void *data;
};

/*
 * subscriber_validate checks `subscribe` (required: a non-empty array of at
 * most SUBSCRIBER_PATTERNS_MAX valid patterns) and `queue_max` (1 to
 * SUBSCRIBER_QUEUE_MAX) of a worker config; messages start with path.
 */
int subscriber_validate(const json_t *cfg, const char *path, char *err, size_t err_size);

/* subscriber_start subscribes w to every pattern of its config; ready is
 * called after each event is queued. -errno after worker_set_error. */
int subscriber_start(subscriber *s, worker *w, subscriber_ready_cb ready, void *data);

/* subscriber_pop takes the oldest queued event (NULL when none): the kind
 * owns it until it hands it back with subscriber_done. */
sub_event *subscriber_pop(subscriber *s);
/* subscriber_peek is the oldest queued event, left in the queue (NULL when
 * none): for a kind that may not be able to take it yet. */
sub_event *subscriber_peek(const subscriber *s);
/* subscriber_done counts an event done (ok) or failed and frees it. */
void subscriber_done(subscriber *s, sub_event *e, bool ok);
/* subscriber_drop counts an event dropped (the kind gave up on it) and frees it. */
void subscriber_drop(subscriber *s, sub_event *e);

/* subscriber_depth is the number of events queued. */
size_t subscriber_depth(const subscriber *s);

/* subscriber_health sets queue_depth, received, done, failed, dropped, and
 * ignored when the kind has an accept filter. */
void subscriber_health(const subscriber *s, json_t *obj);

/* subscriber_event_json appends {"ts":"<ISO-8601>","topic":"...","payload":<payload>}
 * to out: the payload as the bytes received, never re-serialised. */
int subscriber_event_json(const sub_event *e, base_buf *out);

/* subscriber_stop frees every queued event and the queue (the bus
 * subscriptions go with the worker). The counts stay readable. */
void subscriber_stop(subscriber *s);

#endif
