/*
 * bus: herd's message bus inside herdd.
 *
 * The broker (`bus_open`): in-process publish/subscribe dispatched on the
 * libuv loop after the publishing callback returns, the three nng sockets of
 * DESIGN.md section 3 (events.ipc pub0, publish.ipc pull0, request.ipc rep0),
 * and request routing by service name with asynchronous replies. Topics,
 * frames and the blocking client are in bus/client.h, which this header
 * includes; a program outside herdd includes only that one.
 *
 * Threads: every broker function and every callback runs on the loop thread.
 * nng's threads only move bytes; their readiness reaches the loop through
 * NNG_OPT_RECVFD watched by uv_poll. Errors are negative errno values.
 */
#ifndef HERD_BUS_H
#define HERD_BUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#include "base/base.h"
#include "bus/client.h"

#define BUS_DEFAULT_LISTENER_CHECK_MS 50
#define BUS_DEFAULT_MAX_CONNECTIONS 256
#define BUS_DEFAULT_PENDING_REPLY_BYTES (8u * 1024 * 1024)
#define BUS_DEFAULT_PENDING_REPLY_BYTES_TOTAL (64u * 1024 * 1024)
#define BUS_DEFAULT_SUBSCRIBER_BUFFER 1024
#define BUS_DEFAULT_QUEUE_MAX 1024

/* ---- broker ------------------------------------------------------------ */

typedef struct bus bus;
typedef struct bus_sub bus_sub;
typedef struct bus_request bus_request;

typedef void (*bus_log_fn)(enum base_log_level level, const char *msg, void *data);

typedef struct bus_config {
    const char *dir;                  /* runtime directory; NULL: bus_default_dir() */
    size_t max_message_bytes;         /* 0: BUS_DEFAULT_MAX_MESSAGE_BYTES */
    size_t max_reply_bytes;           /* 0: BUS_DEFAULT_MAX_REPLY_BYTES */
    size_t max_connections;           /* per socket; 0: BUS_DEFAULT_MAX_CONNECTIONS */
    size_t pending_reply_bytes;       /* one client's unread replies; 0: default */
    size_t pending_reply_bytes_total; /* every client's; 0: default */
    int subscriber_buffer;            /* pub0 per-peer SENDBUF; 0: default 1024 */
    int queue_max;                    /* default in-process queue; 0: 1024 */
    int listener_check_ms;            /* listener check period (nng #1518); 0: 50, <0: off */
    bool no_sockets;                  /* in-process only (tests, benchmarks) */
    /* Extra listeners (DESIGN.md section 3), NULL or "" for none:
     * "tcp://HOST:PORT" or "tls+tcp://HOST:PORT" for events, publish and
     * request. TLS listeners present tls_cert_file (PEM, the chain) with
     * tls_key_file. */
    const char *tcp_events, *tcp_publish, *tcp_request;
    const char *tls_cert_file, *tls_key_file;
    bus_log_fn log; /* NULL: stderr */
    void *log_data;
} bus_config;

/* Counters, all monotonic except remote_subscribers. */
typedef struct bus_stats {
    uint64_t published;  /* events accepted, in-process and remote */
    uint64_t delivered;  /* callbacks made to in-process subscribers */
    uint64_t remote_in;  /* frames received on publish.ipc */
    uint64_t remote_out; /* frames sent on events.ipc */
    uint64_t requests;   /* requests received */
    uint64_t replies;    /* replies sent */
    uint64_t dropped[BUS_DROP_N];
    uint64_t listener_restarts;   /* listeners found broken and re-created */
    uint64_t connections_refused; /* over max_connections */
    uint64_t connections_evicted; /* idle ones closed for a new one */
    int remote_subscribers;       /* pipes connected to events.ipc now */
    int subscriptions;            /* in-process subscriptions now */
    int requests_pending;         /* requests not yet replied */
} bus_stats;

/* bus_open creates the broker on loop: makes the runtime directory (0750),
 * refuses a directory where a live herdd answers (err says so), removes stale
 * socket files, and listens on the three sockets (0660). On failure returns a
 * negative errno and writes a message for a person into err. */
int bus_open(uv_loop_t *loop, const bus_config *cfg, bus **out, char *err, size_t err_size);

/* bus_close closes the sockets, removes the socket files, drops queued
 * events and closes every handle; on_closed runs on the loop once all are
 * closed, then the bus is freed. Subscriptions must be gone or are freed.
 * Pending requests are answered `unavailable`. NULL is harmless. */
void bus_close(bus *b, void (*on_closed)(void *data), void *data);

/* bus_max_reply_bytes is the largest reply the bus sends: a service that
 * would build a larger one answers too_large instead. */
size_t bus_max_reply_bytes(const bus *b);

/* bus_dir is the runtime directory in use. */
const char *bus_dir(const bus *b);

/* bus_get_stats copies the counters. */
void bus_get_stats(const bus *b, bus_stats *out);

/* bus_stats_json renders counters as a new JSON object (caller owns it). */
json_t *bus_stats_json(const bus_stats *s);

/* bus_publish copies topic and payload (one JSON value, not checked: the
 * caller is trusted code) into one event, sends it on events.ipc and queues
 * it for every matching in-process subscriber. Delivery happens on a later
 * loop turn, never inside this call. Returns 0, -EINVAL (bad topic),
 * -EMSGSIZE or -ENOMEM. */
int bus_publish(bus *b, const char *topic, const char *payload, size_t payload_len);

/* bus_publish_json serializes payload (borrowed) compactly and publishes it. */
int bus_publish_json(bus *b, const char *topic, const json_t *payload);

/* Subscriber callback: runs on the loop thread, may publish, subscribe and
 * unsubscribe (itself too). ev is valid only during the call. */
typedef void (*bus_event_cb)(const bus_event *ev, void *data);

/* bus_subscribe registers an in-process subscriber for a pattern, with a
 * bounded queue of queue_max events (0: the bus default; oldest dropped and
 * counted on overflow). The pattern is copied. */
int bus_subscribe(bus *b, const char *pattern, size_t queue_max, bus_event_cb cb, void *data,
                  bus_sub **out);

/* bus_unsubscribe removes a subscription and drops its queued events. Safe
 * from inside its own callback; the memory goes after the callback returns.
 * NULL is harmless. */
void bus_unsubscribe(bus_sub *s);

/* bus_sub_pause stops deliveries to s (its queue keeps filling, bounded)
 * until bus_sub_resume: for subscribers that run out of capacity. */
void bus_sub_pause(bus_sub *s);
void bus_sub_resume(bus_sub *s);

/* bus_sub_queued is the number of events waiting for s. */
size_t bus_sub_queued(const bus_sub *s);

/* ---- requests ---------------------------------------------------------- */

/* Request handler: runs on the loop thread. It must answer req exactly once
 * with one of the bus_reply_* functions, now or later; the reply frees req. */
typedef void (*bus_request_cb)(bus_request *req, void *data);

/* bus_service_register routes requests for `name` to cb. -EEXIST if taken. */
int bus_service_register(bus *b, const char *name, bus_request_cb cb, void *data);

/* bus_service_unregister removes the route; requests already handed to the
 * handler must still be answered by it. */
void bus_service_unregister(bus *b, const char *name);

const char *bus_request_service(const bus_request *req);
const char *bus_request_op(const bus_request *req);
/* bus_request_args is the request's args object (borrowed; an empty object
 * when absent). */
json_t *bus_request_args(const bus_request *req);

/* bus_reply_ok sends {"ok":true,"result":result}; result is stolen (NULL
 * means JSON null). */
void bus_reply_ok(bus_request *req, json_t *result);

/* bus_reply_raw sends {"ok":true,"result":<bytes>} splicing the stored JSON
 * bytes in without parsing them: the caller vouches they are one JSON
 * value. */
void bus_reply_raw(bus_request *req, const char *json, size_t len);

/* bus_reply_error sends {"ok":false,"error":{"code":code,"message":...}}.
 * code is one of DESIGN.md's: bad_request, unknown_service, unknown_op,
 * not_found, unavailable, busy, queue_full, too_large, internal. */
void bus_reply_error(bus_request *req, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* bus_request_local builds a request without a socket, answered through cb:
 * how in-process code (tests, the HTTP API) calls a service. args is
 * borrowed. The reply JSON passed to done is borrowed for the call. */
typedef void (*bus_reply_cb)(const char *reply, size_t len, void *data);
int bus_request_local(bus *b, const char *service, const char *op, const json_t *args,
                      bus_reply_cb done, void *data);

/* ---- links to another herd --------------------------------------------- */

/* PEM files for tls+tcp://: a listener presents cert_file (the chain) and
 * key_file; a link checks the peer against ca_file, by server_name when
 * set (else the host of the URL). */
typedef struct bus_tls_files {
    const char *cert_file, *key_file, *ca_file, *server_name;
} bus_tls_files;

/*
 * A bus_link pushes event frames to another herd's publish socket
 * (`ipc://DIR/publish.ipc`, `tcp://HOST:PORT`, `tls+tcp://HOST:PORT`): the
 * forward kind's transport. It dials in the background and redials by
 * itself with a backoff (100 ms doubling to 5 s) whenever the peer goes
 * away; sends never block.
 */
typedef struct bus_link bus_link;

/* ready: a send that answered -EAGAIN may now succeed. */
typedef void (*bus_link_ready_cb)(bus_link *l, void *data);

typedef struct bus_link_config {
    const char *url;
    bus_tls_files tls;        /* for tls+tcp:// (ca_file required) */
    size_t max_message_bytes; /* 0: BUS_DEFAULT_MAX_MESSAGE_BYTES */
    size_t send_buffer;       /* frames nng may hold beyond what a connection takes
                                 (kept across a redial, lost on close); 0: none */
} bus_link_config;

/* bus_link_open starts dialing; err says why it cannot (a bad URL, an
 * unreadable CA file). Nothing is connected yet when it returns. */
int bus_link_open(uv_loop_t *loop, const bus_link_config *cfg, bus_link_ready_cb ready, void *data,
                  bus_link **out, char *err, size_t err_size);

/* bus_link_send hands one frame `topic NUL payload` to nng: 0, -EAGAIN
 * (nobody connected, or nng's buffer full: ready follows when it can take
 * more), -EMSGSIZE, -ENOMEM. The caller checked topic and payload. */
int bus_link_send(bus_link *l, const char *topic, size_t topic_len, const char *payload,
                  size_t payload_len);

/* bus_link_connected tells whether a peer is connected now; connects
 * counts every connection made, so a reconnect is connects - 1. */
bool bus_link_connected(const bus_link *l);
uint64_t bus_link_connects(const bus_link *l);

/* bus_link_close closes the socket (frames nng still holds are lost) and
 * its handles; closed runs on the loop once they are, then l is freed. */
void bus_link_close(bus_link *l, void (*closed)(void *data), void *data);

#endif
