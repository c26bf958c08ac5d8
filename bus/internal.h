/*
 * Internals shared by the files of the bus module (bus__ prefix). Not a
 * public header: nothing outside bus/ includes it.
 */
#ifndef HERD_BUS_INTERNAL_H
#define HERD_BUS_INTERNAL_H

#include "bus/bus.h"

#include <limits.h>
#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>
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
    struct bus_sub *inext;       /* its chain in the index (broker.c) */
    uint32_t ihash;              /* the index key's hash */
    unsigned exact : 1;          /* no wildcard: keyed by the whole pattern */
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

/* One connection of a socket (pipes.c). */
typedef struct bus_pipe_rec {
    nng_pipe pipe;
    uint32_t id; /* nng pipe id */
    int listener_id;
    uint64_t seq;          /* order of arrival: lower is older */
    uint32_t in_flight;    /* requests not answered yet (request.ipc) */
    uint64_t handed_bytes; /* replies handed to nng for it (request.ipc) */
    uint64_t tx_bytes;     /* of which nng had written this much, last looked */
} bus_pipe_rec;

/* A listening nng socket and what watches it. */
typedef struct bus_endpoint {
    const char *file;    /* events.ipc, ... */
    uint16_t peer_proto; /* SP protocol id a client speaks to it */
    char url[PATH_MAX + 8];
    char path[PATH_MAX];
    nng_socket sock;
    nng_listener listener;
    int open;
    /* bus.tcp.<socket>: a second listener on the same socket, closed with
     * it. Not checked for nng #1518: a tcp listener cannot be renamed
     * over, and replacing it would cut every remote peer (listener.c). */
    const char *tcp_url; /* NULL: none; borrowed from bus_config until open */
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
    unsigned generation;        /* of the listener's private name */
    pthread_mutex_t pipes_lock; /* pipes: written on nng threads */
    int has_pipes_lock;
    bus_pipe_rec *pipes; /* connected pipes, unordered */
    size_t n_pipes, cap_pipes;
    uint64_t tx_checked_ms; /* loop time of the last tx_bytes refresh */
    uint64_t pipe_seq;
    int evict_idle; /* at the cap, close the oldest idle pipe for a new one */
    /* Replaced listeners, closed once their pipes are gone: each one kept
     * holds a pipe, so there are never more than max_connections. */
    nng_listener *retiring;
    size_t n_retiring, cap_retiring;
} bus_endpoint;

enum { BUS_EP_EVENTS, BUS_EP_PUBLISH, BUS_EP_REQUEST, BUS_EP_N };

struct bus {
    uv_loop_t *loop;
    char dir[PATH_MAX];
    size_t max_message_bytes;
    size_t max_reply_bytes;
    size_t max_connections; /* per socket, after the descriptor limit */
    size_t pending_reply_bytes, pending_reply_bytes_total;
    int subscriber_buffer;
    size_t queue_max;
    int listener_check_ms;
    bus_log_fn log;
    void *log_data;
    const char *tls_cert_file, *tls_key_file; /* borrowed: used only in bus_open */

    bus_sub *subs;
    /* The subscriptions indexed for publish (broker.c): chains by hash of
     * the whole pattern (no wildcard) or of its first token (a literal
     * one), and the few whose first token is a wildcard. */
    bus_sub **index;
    size_t n_index, n_indexed;
    bus_sub *wild;
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

/* nng.c: an nng error code as a negative errno (0 stays 0): the one
 * place nng's positive codes become herd's. */
int bus__errno(int nng_rv);
/* bus__stats_each calls fn for every scope of a stats snapshot named scope
 * ("listener", "pipe"). nng 1.5.2's nng_stat_find_listener and friends
 * return the first scope of the name whatever its id, so herd walks the
 * tree itself. */
void bus__stats_each(nng_stat *st, const char *scope, void (*fn)(nng_stat *s, void *data),
                     void *data);
/* bus__stat_value is a scope's statistic called name, 0 when it has none. */
uint64_t bus__stat_value(nng_stat *scope, const char *name);

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

/* pipes.c: the connections of each socket */
/* bus__pipes_cap: max_connections as the descriptor limit allows it. */
size_t bus__pipes_cap(size_t configured);
int bus__pipes_init(bus_endpoint *ep); /* after the socket opened: an nng code */
void bus__pipes_fini(bus_endpoint *ep);
size_t bus__pipes_count(const bus_endpoint *ep);
size_t bus__pipes_of_listener(bus_endpoint *ep, int listener_id);
/* bus__pipes_request counts a request received from pipe_id;
 * bus__pipes_handed a reply of bytes handed to nng for it. */
void bus__pipes_request(bus_endpoint *ep, uint32_t pipe_id);
void bus__pipes_handed(bus_endpoint *ep, uint32_t pipe_id, size_t bytes);
/* bus__pipes_backlog: 0 when a request from pipe_id may be served, -EBUSY
 * (why says so) when its or everyone's unread replies are over a bound. */
int bus__pipes_backlog(bus *b, bus_endpoint *ep, uint32_t pipe_id, char *why, size_t why_size);

/* tls.c: an nng TLS configuration from PEM files (server: presents
 * cert_file and key_file; client: requires the peer to check against
 * ca_file). err names the file that failed. */
int bus__tls_config(const bus_tls_files *f, bool server, nng_tls_config **out, char *err,
                    size_t err_size);

/* listener.c: listeners on private names renamed over the public ones */
int bus__listener_start(bus *b, bus_endpoint *ep);
/* bus__listener_check (check_timer): replaces the listeners nng stopped,
 * closes replaced ones once their grace is over. */
void bus__listener_check(uv_timer_t *t);
/* bus__listeners_retire_all closes every replaced listener of ep now. */
void bus__listeners_retire_all(bus_endpoint *ep);

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
