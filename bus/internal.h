/*
 * Internals shared by the files of the bus module (bus__ prefix). Not a
 * public header: nothing outside bus/ includes it.
 */
#ifndef HERD_BUS_INTERNAL_H
#define HERD_BUS_INTERNAL_H

#include "bus/bus.h"

#include <limits.h>
#include <nng/nng.h>
#include <pthread.h>

/* One published event: refcounted, immutable, topic and payload inline and
 * NUL-terminated. Shared by every subscriber queue it sits in. */
typedef struct bus_msg {
    uint32_t refs;
    uint32_t topic_len;
    size_t payload_len;
    char data[]; /* topic NUL payload NUL */
} bus_msg;

struct bus_sub {
    bus *bus;
    bus_event_cb cb;
    void *data;
    base_ring queue; /* bus_msg references, at most queue_max */
    unsigned paused : 1, removed : 1, in_ready : 1, dispatching : 1;
    struct bus_sub *prev, *next; /* all live subscriptions */
    struct bus_sub *ready_next;  /* FIFO of subs with deliverable events */
    size_t pattern_len;
    char pattern[]; /* NUL-terminated: one allocation per subscription */
};

typedef struct bus_service {
    char *name;
    bus_request_cb cb;
    void *data;
    struct bus_service *next;
} bus_service;

/* A listening nng socket and what watches it. */
typedef struct bus_endpoint {
    const char *file;    /* events.ipc, ... */
    uint16_t peer_proto; /* SP protocol id a client speaks to it */
    char url[PATH_MAX + 8];
    char path[PATH_MAX];
    nng_socket sock;
    nng_listener listener;
    int open;
    /* Receiving (publish.ipc, request.ipc): an nng aio whose callback, on an
     * nng thread, only queues the message and wakes the loop. */
    nng_aio *aio;
    uv_async_t async;
    int has_async;
    pthread_mutex_t lock; /* inbox and recv_paused */
    base_ring inbox;      /* received nng_msg, allocated in full at open */
    int recv_paused;      /* inbox full: the aio is re-armed once the loop drains */
    int closing;          /* atomic: no re-arm after close */
    struct bus *bus;
    unsigned generation; /* of the listener's private name */
} bus_endpoint;

enum { BUS_EP_EVENTS, BUS_EP_PUBLISH, BUS_EP_REQUEST, BUS_EP_N };

struct bus {
    uv_loop_t *loop;
    char dir[PATH_MAX];
    size_t max_message_bytes;
    size_t max_reply_bytes;
    int subscriber_buffer;
    size_t queue_max;
    int listener_check_ms;
    bus_log_fn log;
    void *log_data;

    bus_sub *subs;
    bus_sub *ready_head, *ready_tail;
    uv_idle_t dispatch;
    int dispatch_active;

    bus_service *services;
    struct bus_request *pending; /* requests not yet answered */

    bus_endpoint ep[BUS_EP_N];
    int sockets;
    uv_timer_t check_timer; /* listener checks (nng #1518) */
    int has_check_timer;

    /* Replies rep0 refused for now (EAGAIN): retried from a timer. */
    uv_timer_t reply_timer;
    int has_reply_timer;
    base_ring replies; /* nng_msg, in order */

    /* Remote subscribers on events.ipc: pipe ids added (nng thread). */
    pthread_mutex_t pipes_lock;
    uint32_t *pipe_ids;
    int n_pipes, cap_pipes;

    bus_stats stats;
    int closing;
    int handles_open;
    void (*on_closed)(void *);
    void *on_closed_data;
};

#define BUS_REQUEST_MAGIC 0x72657175u /* "requ": cleared when answered */

/* How a request is answered: through rep0, or a local callback. */
struct bus_request {
    uint32_t magic; /* BUS_REQUEST_MAGIC until the one reply */
    bus *bus;
    char *service;
    char *op;
    json_t *args;
    void *header; /* rep0 backtrace, copied */
    size_t header_len;
    bus_reply_cb local_cb;
    void *local_data;
    struct bus_request *prev, *next;
};

void bus__log(bus *b, enum base_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* nngerr.c: an nng error code as a negative errno (0 stays 0): the one
 * place nng's positive codes become herd's. */
int bus__errno(int nng_rv);

/* broker.c: the pub/sub engine */
int bus__broker_init(bus *b);
/* bus__broker_close frees every subscription and closes the dispatch
 * handle (released through bus__handle_closed). */
void bus__broker_close(bus *b);
void bus__deliver_remote_frame(bus *b, const bus_event *ev);

/* bus.c: the bus object */
void bus__handle_closed(uv_handle_t *h);       /* h->data is the bus */
void bus__release(bus *b);                     /* one handle of b closed */
void bus__handle_closed_async(uv_handle_t *h); /* h->data is a bus_endpoint */

/* server.c: the nng sockets */
int bus__sockets_open(bus *b, char *err, size_t err_size);
void bus__sockets_close(bus *b);
int bus__send_event(bus *b, const char *topic, size_t topic_len, const char *payload,
                    size_t payload_len);
/* A piece of a reply body: replies are gathered into the one nng message
 * that goes out, never into an intermediate buffer. */
typedef struct bus__part {
    const void *data;
    size_t len;
} bus__part;

/* bus__send_reply sends the parts, in order, as one reply (header: rep0's
 * backtrace). 0, or a negative errno: the reply is dropped and counted. */
int bus__send_reply(bus *b, const void *header, size_t header_len, const bus__part *parts,
                    size_t n_parts);

/* request.c */
/* bus__request_parse checks a request body's shape; on success *out is the
 * parsed object (caller owns), else *why and msg say what is wrong. */
int bus__request_parse(const char *body, size_t len, json_t **out, enum bus_drop_reason *why,
                       char *msg, size_t msg_size);
void bus__request_received(bus *b, const void *header, size_t header_len, const char *body,
                           size_t len);
void bus__requests_close(bus *b);
void bus__services_free(bus *b);

#endif
