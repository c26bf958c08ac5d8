/*
 * The `forward` kind: relays matching events to another herd's publish
 * socket, each topic under a prefix (DESIGN.md section 5).
 *
 * Design notes
 * - The transport is a bus_link (bus.h): a push0 socket dialing `to`
 *   (ipc://, tcp://, tls+tcp://) in the background and redialing by itself
 *   when the other herd goes away. A send never blocks: when nobody is
 *   connected, or the link's small buffer is full, the event stays at the
 *   head of the subscriber queue (bounded by queue_max, drop-oldest,
 *   counted) and the link says when to try again. So while the other side
 *   is away the queue holds the newest queue_max events, and they go out
 *   in order after the redial.
 * - An event counts as done once the link took it. The link holds no
 *   buffer of its own (send_buffer 0): a frame goes only to a connection
 *   free to write it, so what waits for the other side is exactly this
 *   queue, bounded and counted. A connection the peer drops loses at most
 *   what it had written to it and not yet delivered.
 * - No loops: a topic that already starts with `fleet.` came from another
 *   herd and is never forwarded again. The subscriber's accept filter
 *   turns it away before it is queued (counted in `ignored`), so two herds
 *   forwarding `>` to each other each see the other's events once.
 * - A forwarded topic is prefix + topic; longer than a topic may be (255
 *   bytes), the event fails (counted, last_error says which). The payload
 *   goes as the bytes received.
 * - Idle, a worker holds its struct, its subscriptions and the link (an
 *   nng socket and dialer, which nng allocates itself).
 */
#include "workers/subscriber.h"
#include "workers/worker.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define FLEET_PREFIX "fleet."
#define PREFIX_MAX 128
#define URL_MAX 512

typedef struct forward {
    worker *w;
    subscriber sub;
    bus_link *link;
    char prefix[PREFIX_MAX + 1];
    size_t prefix_len;
    bool blocked;  /* the link refused the head event; waiting for its ready */
    bool stopping; /* stop began: nothing more is sent */
    uint64_t too_long;
} forward;

static const char *const forward_keys[] = {"subscribe", "to",          "prefix",
                                           "ca_file",   "server_name", NULL};

static bool has_scheme(const char *s, const char *scheme)
{
    return strncmp(s, scheme, strlen(scheme)) == 0 && s[strlen(scheme)] != '\0';
}

/* A prefix is empty or tokens each followed by a dot: "fleet.edge1." */
static bool prefix_valid(const char *p, size_t len)
{
    if (len == 0)
        return true;
    if (len > PREFIX_MAX || p[len - 1] != '.')
        return false;
    return bus_topic_check(p, len - 1) == 0;
}

static int forward_validate(const json_t *cfg, const char *path, char *err, size_t err_size)
{
    const json_t *to = json_object_get(cfg, "to"), *v;
    int rc = worker_check_keys(cfg, path, forward_keys, err, err_size);

    if (rc < 0 || (rc = subscriber_validate(cfg, path, err, err_size)) < 0)
        return rc;
    if (!json_is_string(to) || strlen(json_string_value(to)) != json_string_length(to) ||
        json_string_length(to) >= URL_MAX ||
        !(has_scheme(json_string_value(to), "ipc://") ||
          has_scheme(json_string_value(to), "tcp://") ||
          has_scheme(json_string_value(to), "tls+tcp://")))
        return base_errf(err, err_size,
                         "%s.to: required, the other herd's publish socket: \"tcp://HOST:PORT\", "
                         "\"tls+tcp://HOST:PORT\" or \"ipc:///run/herd/publish.ipc\"%s%.80s%s",
                         path, json_is_string(to) ? " (got \"" : "",
                         json_is_string(to) ? json_string_value(to) : "",
                         json_is_string(to) ? "\")" : "");
    if ((v = json_object_get(cfg, "prefix")) != NULL &&
        (!json_is_string(v) || !prefix_valid(json_string_value(v), json_string_length(v))))
        return base_errf(err, err_size,
                         "%s.prefix: expected \"\" or topic tokens each ending in a dot, at most "
                         "%d bytes (such as \"fleet.edge1.\")",
                         path, PREFIX_MAX);
    for (int i = 0; i < 2; i++) {
        const char *key = i == 0 ? "ca_file" : "server_name";
        v = json_object_get(cfg, key);
        if (v != NULL && (!json_is_string(v) || json_string_length(v) == 0 ||
                          strlen(json_string_value(v)) != json_string_length(v) ||
                          json_string_length(v) >= URL_MAX))
            return base_errf(err, err_size, "%s.%s: expected a non-empty string", path, key);
    }
    if (has_scheme(json_string_value(to), "tls+tcp://") && json_object_get(cfg, "ca_file") == NULL)
        return base_errf(err, err_size,
                         "%s.ca_file: required with a tls+tcp:// address: the PEM file of the "
                         "certificate authority that signed the other herd's certificate",
                         path);
    return 0;
}

static bool forward_accept(const bus_event *ev, void *data)
{
    (void)data;
    return !(ev->topic_len >= strlen(FLEET_PREFIX) &&
             memcmp(ev->topic, FLEET_PREFIX, strlen(FLEET_PREFIX)) == 0);
}

/* drain sends queued events, oldest first, until the queue is empty or the
 * link cannot take more. */
static void drain(forward *f)
{
    sub_event *e;
    char topic[BUS_TOPIC_MAX + 1];

    while (!f->blocked && !f->stopping && (e = subscriber_peek(&f->sub)) != NULL) {
        if (f->prefix_len + e->topic_len > BUS_TOPIC_MAX) {
            f->too_long++;
            worker_set_error(f->w, "%s%s: forwarded topic longer than %d bytes", f->prefix,
                             e->topic, BUS_TOPIC_MAX);
            subscriber_done(&f->sub, subscriber_pop(&f->sub), false);
            continue;
        }
        memcpy(topic, f->prefix, f->prefix_len);
        memcpy(topic + f->prefix_len, e->topic, e->topic_len);
        int rv =
            bus_link_send(f->link, topic, f->prefix_len + e->topic_len, e->payload, e->payload_len);
        if (rv == -EAGAIN) {
            f->blocked = true;
            return;
        }
        if (rv < 0)
            worker_set_error(f->w, "forward %s: %s", e->topic, strerror(-rv));
        subscriber_done(&f->sub, subscriber_pop(&f->sub), rv == 0);
    }
}

static void on_queued(subscriber *s, void *data)
{
    (void)s;
    drain(data);
}

static void on_link_ready(bus_link *l, void *data)
{
    forward *f = data;
    worker *prev = worker_enter(f->w);
    (void)l;
    f->blocked = false;
    drain(f);
    worker_leave(prev);
}

static int forward_start(worker *w, void *state)
{
    forward *f = state;
    const json_t *cfg = worker_config(w), *p = json_object_get(cfg, "prefix");
    char err[512];
    int rv;

    f->w = w;
    if (json_is_string(p))
        snprintf(f->prefix, sizeof(f->prefix), "%s", json_string_value(p));
    else
        snprintf(f->prefix, sizeof(f->prefix), FLEET_PREFIX "%s.", worker_host_name(w));
    f->prefix_len = strlen(f->prefix);
    bus_link_config lc = {
        .url = json_string_value(json_object_get(cfg, "to")),
        .tls = {.ca_file = json_string_value(json_object_get(cfg, "ca_file")),
                .server_name = json_string_value(json_object_get(cfg, "server_name"))},
    };
    rv = bus_link_open(worker_loop(w), &lc, on_link_ready, f, &f->link, err, sizeof(err));
    if (rv < 0) {
        worker_set_error(w, "%s", err);
        return rv;
    }
    rv = subscriber_start(&f->sub, w, on_queued, f);
    f->sub.accept = forward_accept;
    return rv;
}

static void on_link_closed(void *data)
{
    forward *f = data;
    worker_stopped(f->w);
}

static void forward_stop(worker *w, void *state)
{
    forward *f = state;

    f->stopping = true;
    subscriber_stop(&f->sub);
    if (f->link == NULL) {
        worker_stopped(w);
        return;
    }
    bus_link_close(f->link, on_link_closed, f);
    f->link = NULL;
}

static void forward_health(worker *w, void *state, json_t *obj)
{
    forward *f = state;
    uint64_t connects = f->link != NULL ? bus_link_connects(f->link) : 0;
    (void)w;

    subscriber_health(&f->sub, obj);
    json_object_set_new(obj, "connected",
                        json_boolean(f->link != NULL && bus_link_connected(f->link)));
    json_object_set_new(obj, "reconnects",
                        json_integer(connects > 0 ? (json_int_t)(connects - 1) : 0));
    json_object_set_new(obj, "prefix", json_string(f->prefix));
    json_object_set_new(obj, "topics_too_long", json_integer((json_int_t)f->too_long));
}

const worker_kind worker_forward_kind = {
    .name = "forward",
    .size = sizeof(forward),
    .validate = forward_validate,
    .start = forward_start,
    .stop = forward_stop,
    .health = forward_health,
};
