/* Internals shared by the files of the supervisor module (sup__ prefix). */
#ifndef HERD_SUPERVISOR_INTERNAL_H
#define HERD_SUPERVISOR_INTERNAL_H

#include "supervisor/supervisor.h"
#include "workers/worker.h"

enum sup_state {
    SUP_STOPPED,
    SUP_STARTING,
    SUP_RUNNING,
    SUP_STOPPING,
    SUP_BACKOFF,
    SUP_FAILED,
    SUP_N_STATES
};

/* Why an instance is being stopped: what follows its stop. */
enum sup_stop_reason {
    SUP_STOP_NONE,
    SUP_STOP_ENDED,   /* it failed or exited: apply the policy */
    SUP_STOP_USER,    /* stop requested: stay stopped */
    SUP_STOP_RESTART, /* restart requested: start again at once */
    SUP_STOP_CHANGE,  /* reload changed its config: start the new one */
    SUP_STOP_REMOVE,  /* reload removed it: forget it */
    SUP_STOP_SHUTDOWN /* herdd is stopping */
};

typedef struct sup_waiter {
    bus_request *req;
    struct sup_waiter *next;
} sup_waiter;

/* One configured worker, across all its instances. */
typedef struct sup_worker {
    struct sup *sup;
    sup_worker_config cfg;
    sup_worker_config next_cfg; /* reload: the config to start after a stop */
    uint32_t mem_slot;          /* the worker's account: this record, its config,
                                   service and control subscription, then every
                                   instance (0: the table was full, unaccounted) */
    worker *inst;
    enum sup_state state;
    enum sup_stop_reason stop_reason;
    uint64_t start_seq;  /* order of the last start, for reverse-order stop */
    uint64_t started_ms; /* loop time the instance began running */
    int restarts;
    sup_history history;
    char *last_error;      /* NULL none (sup__worker_set_error, in the worker's account) */
    int ended, ended_code; /* reported by the instance, handled on the timer */
    int stopped;           /* instance finished stopping, handled on the timer */
    int memory_high_warned;
    uv_timer_t timer;  /* deferred handling and backoff delays */
    uv_timer_t health; /* heartbeat */
    bus_sub *control;
    sup_waiter *waiters; /* requests answered when the worker settles */
    int removed;
    int handles_open;
    struct sup_worker *next;
} sup_worker;

struct sup {
    uv_loop_t *loop;
    sup_config cfg;
    char config_file[PATH_MAX]; /* "" when running the embedded default */
    bus *bus;
    uint64_t started_ns;
    uv_timer_t heartbeat;
    uv_timer_t tick; /* memory checks and heap trims */
    sup_worker *workers;
    uint64_t start_seq;
    uint64_t control_unknown;      /* control messages refused */
    uint64_t malloc_trims;         /* malloc_trim calls (service.c, heap_trim) */
    uint64_t malloc_trimmed_bytes; /* resident bytes they gave back */
    uint64_t trim_quiet_until_ms;  /* loop time before which no threshold trim runs */
    uint64_t trim_quiet_ms;        /* the wait after a trim that gave little back:
                                      doubles each time, to TRIM_QUIET_MAX_MS */
    bool trim_wanted;              /* a worker was freed: trim on the next tick */
    int shutting_down;
    int exit_code;
    int handles_open;
    void (*on_closed)(int exit_code, void *data);
    void *on_closed_data;
    void (*on_exit)(void *data);
    void *on_exit_data;
};

const char *sup__state_name(enum sup_state st);
json_t *sup__iso_now(void);

/* lifecycle.c: one worker */
/* sup__worker_create adds a worker in the stopped state (its timers, its
 * service and control subscription), taking over wc's json reference. */
sup_worker *sup__worker_create(struct sup *s, sup_worker_config *wc);
/* sup__worker_take_config moves wc into *dst (sw->cfg or sw->next_cfg, whose
 * old JSON is released), its JSON copied into the worker's account; wc is
 * left empty. */
void sup__worker_take_config(sup_worker *sw, sup_worker_config *dst, sup_worker_config *wc);
/* sup__worker_destroy unlinks a worker without an instance and closes its
 * handles; it is freed once they are closed. */
void sup__worker_destroy(sup_worker *sw);
sup_worker *sup__worker_find(struct sup *s, const char *name);
json_t *sup__worker_health(sup_worker *sw);
void sup__worker_publish_health(sup_worker *sw);
void sup__worker_set_health_period(sup_worker *sw, uint64_t period_ms);
void sup__worker_set_state(sup_worker *sw, enum sup_state to, const char *reason);
/* sup__worker_start creates and starts a new instance (starting ->
 * running, or the policy on failure). */
void sup__worker_start(sup_worker *sw, const char *reason);
/* sup__worker_begin_stop stops the instance; why decides what follows. */
void sup__worker_begin_stop(sup_worker *sw, enum sup_stop_reason why, const char *reason);
/* sup__worker_set_error keeps the worker's last error (at most 512
 * bytes; "" or NULL clears it); sup__worker_error is it, "" when none. */
void sup__worker_set_error(sup_worker *sw, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
const char *sup__worker_error(const sup_worker *sw);
/* sup__worker_fail ends the running instance as a failure (memory_max). */
void sup__worker_fail(sup_worker *sw, const char *reason);
/* sup__worker_action: "start", "stop" or "restart"; req (may be NULL) is
 * answered with the worker's health when it settles. */
int sup__worker_action(sup_worker *sw, const char *action, bus_request *req);

/* service.c: every worker */
/* sup__shutdown_next stops the next worker in reverse start order, or
 * releases the supervisor once none is left. */
void sup__shutdown_next(struct sup *s);
void sup__handle_released(struct sup *s);
/* sup__heap_trim_soon: a worker's memory was freed; the next tick gives
 * the free heap back to the system (malloc_trim). */
void sup__heap_trim_soon(struct sup *s);

/* kinds.c */
const worker_kind *sup__kind_find(const char *name);
void sup__kind_names(char *buf, size_t size);

/* ---- HTTP: http.c (the server), http_api.c (herdd's routes), metrics.c -- */

/*
 * A small HTTP/1.1 server on the loop (libuv TCP, libhttp-parser): GET and
 * HEAD only, no request bodies, keep-alive, one request at a time per
 * connection (pipelined requests wait their turn), bounded everywhere.
 * Every callback runs on the loop thread; handlers answer now or later.
 */
#define SUP_HTTP_MAX_CONNECTIONS 64
#define SUP_HTTP_MAX_STREAMS 16
#define SUP_HTTP_MAX_HEAD_BYTES (8u * 1024)
#define SUP_HTTP_HEAD_TIMEOUT_MS 10000
#define SUP_HTTP_IDLE_TIMEOUT_MS 30000
#define SUP_HTTP_WRITE_TIMEOUT_MS 30000
#define SUP_HTTP_MAX_STREAM_QUEUE_BYTES (256u * 1024)
#define SUP_HTTP_MAX_UNSENT_BYTES (32u * 1024 * 1024)
#define SUP_HTTP_MAX_EXTRA_HEADER_BYTES 1024u
#define SUP_HTTP_FLEET_MAX_HOSTS 1000
#define SUP_HTTP_FLEET_MAX_WORKERS 1024u

/* The limits of one server; a field left 0 takes the SUP_HTTP_ default. */
typedef struct sup_http_limits {
    int max_connections;           /* open at once; a new one over it closes the oldest idle
                                      keep-alive connection, or is answered 503 */
    int max_streams;               /* event streams at once; over it 503 */
    size_t max_head_bytes;         /* request line and headers; over it 431 */
    uint64_t head_timeout_ms;      /* a request's head must be in within this, from the
                                      connection or the request's first byte */
    uint64_t idle_timeout_ms;      /* keep-alive: closed after this long without a request */
    uint64_t write_timeout_ms;     /* a response must be written within this */
    size_t max_stream_queue_bytes; /* what an event stream may hold unsent; a client
                                      that does not read past it is cut off */
    size_t max_unsent_bytes;       /* responses held unsent, every connection's; a
                                      response over it is replaced by a 503 */
    int fleet_max_hosts;           /* http_api.c: hosts the fleet store keeps (its
                                      other bounds in http_api.c); < 0: no fleet view */
} sup_http_limits;

/* The status codes the server answers and counts, in stats.responses:
 * 200, 400, 404, 405, 408, 413, 431, 500, 503. */
#define SUP_HTTP_N_CODES 9
extern const int sup__http_codes[SUP_HTTP_N_CODES];

typedef struct sup_http_stats {
    uint64_t connections_total;   /* accepted */
    uint64_t connections_refused; /* over max_connections: answered 503 */
    uint64_t connections_evicted; /* idle keep-alive ones closed for a new one */
    uint64_t timeouts;            /* closed for a head or a response too slow */
    uint64_t requests;            /* request heads parsed (or refused) */
    uint64_t responses[SUP_HTTP_N_CODES];
    uint64_t streams_total;   /* event streams started */
    uint64_t streams_cut;     /* cut off for not reading */
    uint64_t stream_events;   /* events written to streams (http_api.c counts) */
    uint64_t heap_bytes;      /* what the server's account holds now (http_api.c
                                 adds its fleet store's) */
    uint64_t unsent_bytes;    /* response bytes not yet written */
    int connections, streams; /* open now */
} sup_http_stats;

typedef struct sup_http sup_http;
/* A request being answered; the connection it came on. */
typedef struct sup_http_req sup_http_req;
/* A route's handler answers req with one sup__http_respond* or
 * sup__http_stream_start, now or later (sup__http_req_hold). */
typedef void (*sup_http_handler)(sup_http_req *req, void *data);
typedef struct sup_http_route {
    const char *path; /* exact match of the request's path */
    sup_http_handler handle;
} sup_http_route;

/* sup__http_parse_listen reads "HOST:PORT" (HOST an IPv4 or [IPv6]
 * address, or a name resolved now, blocking) into addr. */
int sup__http_parse_listen(const char *listen, struct sockaddr_storage *addr, char *err,
                           size_t err_size);
/* sup__http_open listens on listen ("HOST:PORT") with routes (borrowed,
 * ended by a NULL path; a path not in it is 404) whose handlers get data.
 * limits may be NULL (the defaults). On failure err names the address.
 * The request head limit is set process-wide in libhttp-parser. */
int sup__http_open(uv_loop_t *loop, const char *listen, const sup_http_limits *limits,
                   const sup_http_route *routes, void *data, sup_http **out, char *err,
                   size_t err_size);
/* sup__http_close stops listening and closes every connection (event
 * streams' on_close run first); closed runs once all are freed. NULL is
 * harmless. */
void sup__http_close(sup_http *h, void (*closed)(void *data), void *data);
void sup__http_get_stats(const sup_http *h, sup_http_stats *out);
/* sup__http_address writes the address listened on, "127.0.0.1:9180". */
void sup__http_address(const sup_http *h, char *buf, size_t size);

const char *sup__http_req_path(const sup_http_req *r);
/* sup__http_req_query is what follows '?' in the target, "" when nothing. */
const char *sup__http_req_query(const sup_http_req *r);
/* sup__http_req_hold keeps req valid past the handler's return, for an
 * answer that comes later; sup__http_req_release ends the hold. While
 * held, sup__http_req_alive says whether the client is still there (when
 * it is not, the answer is dropped). */
void sup__http_req_hold(sup_http_req *r);
void sup__http_req_release(sup_http_req *r);
bool sup__http_req_alive(const sup_http_req *r);
/* sup__http_respond answers with status and a copy of body (no body is
 * written for HEAD). 0, or a negative errno (then the connection is
 * closed). */
int sup__http_respond(sup_http_req *r, int status, const char *content_type, const void *body,
                      size_t len);
/* sup__http_respond_headers is sup__http_respond with headers (copied;
 * NULL or "" for none) after the server's own: "Name: value\r\n" lines, a
 * name of [A-Za-z0-9-], a value of printable ASCII and tabs, at most
 * SUP_HTTP_MAX_EXTRA_HEADER_BYTES in all. The server's own (Server, Date,
 * Content-Type, Content-Length, Connection, Cache-Control: no-store) are
 * not to be repeated. -EINVAL when headers are not such lines: nothing
 * is sent, the caller still answers. The 503 that replaces a response
 * over max_unsent_bytes has none of them. */
int sup__http_respond_headers(sup_http_req *r, int status, const char *content_type,
                              const char *headers, const void *body, size_t len);
/* sup__http_respond_buf is sup__http_respond taking body's bytes (body is
 * left empty). */
int sup__http_respond_buf(sup_http_req *r, int status, const char *content_type, base_buf *body);
/* sup__http_respond_json answers with body (borrowed) serialized. */
int sup__http_respond_json(sup_http_req *r, int status, const json_t *body);
/* sup__http_respond_error answers {"error": {"code", "message"}}. */
int sup__http_respond_error(sup_http_req *r, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* sup__http_stream_start answers 200 with an open-ended body of
 * content_type, written by sup__http_stream_write until the client goes or
 * is cut off; on_close(req, data) runs once then, and may be from inside
 * sup__http_stream_write. 0; 1 when req was HEAD (the head was sent, no
 * stream); -EBUSY over max_streams (nothing sent: the caller answers);
 * another negative errno when the connection failed. Unless it returns
 * 0, on_close never runs. */
int sup__http_stream_start(sup_http_req *r, const char *content_type,
                           void (*on_close)(sup_http_req *r, void *data), void *data);
/* sup__http_stream_write sends a copy of data on a stream. -ENOBUFS when
 * the client has not read what it was sent (over max_stream_queue_bytes):
 * it is cut off (on_close has run); -ENOTCONN when it is gone. */
int sup__http_stream_write(sup_http_req *r, const void *data, size_t len);

/* dashboard_html.c, generated at build time from supervisor/dashboard.html
 * by supervisor/dashboard_embed.py: the page `/` serves (not
 * NUL-terminated), and the Content-Security-Policy it is served with
 * (NUL-terminated; its inline script and style allowed by their SHA-256). */
extern const char sup__dashboard_html[];
extern const size_t sup__dashboard_html_len;
extern const char sup__dashboard_csp[];

/* http_api.c: herdd's routes on the server: / (the dashboard), /healthz,
 * /metrics, /api/status, /api/events, /api/fleet. */
typedef struct sup_http_api sup_http_api;
/* sup__http_api_open listens on listen for b (borrowed; it must outlive
 * the API), within limits (NULL: the defaults). Until
 * sup__http_api_attach, the routes answer 503, but / and /api/fleet: the
 * fleet store (limits->fleet_max_hosts) subscribes to fleet.*.system.>
 * at once and keeps what comes until sup__http_api_close. */
int sup__http_api_open(uv_loop_t *loop, bus *b, const char *listen, const sup_http_limits *limits,
                       sup_http_api **out, char *err, size_t err_size);
/* sup__http_api_attach gives the API the supervisor to report on (NULL:
 * none any more, the routes answer 503). */
void sup__http_api_attach(sup_http_api *a, struct sup *s);
void sup__http_api_address(const sup_http_api *a, char *buf, size_t size);
/* sup__http_api_close closes the server and drops the bus subscription
 * at once, then frees the API once every connection is closed. Call it
 * before the bus closes. NULL is harmless. */
void sup__http_api_close(sup_http_api *a);

/* metrics.c: the Prometheus text exposition of s (and of the HTTP server
 * when hs is not NULL), appended to out. 0 or -ENOMEM. */
int sup__metrics_render(struct sup *s, const sup_http_stats *hs, base_buf *out);
/* sup__metrics_field_name turns a kind's health field (key, or key_sub for
 * a member of an object) into the rest of a metric name after
 * "herd_worker_": false when it cannot make one that is valid and passes
 * promtool's lint. *counter says whether it is a known monotonic field (the
 * name then ends in _total); *scale multiplies the value (a field in ms is
 * exported in seconds). */
bool sup__metrics_field_name(const char *key, const char *sub, char *out, size_t size,
                             bool *counter, double *scale);
/* sup__metrics_label_value appends v escaped for a label value (\\, \",
 * \n). */
int sup__metrics_label_value(base_buf *b, const char *v);

/* ---- systemd notify: notify.c ------------------------------------------- */

/*
 * herdd's side of sd_notify(3), without libsystemd. Process-wide (one
 * $NOTIFY_SOCKET per process); every function runs on the loop thread, and
 * without $NOTIFY_SOCKET every one but open and close is a no-op. Errors
 * are logged once and never fatal. What is sent, and when, is in notify.c.
 */
/* sup__notify_open reads $NOTIFY_SOCKET, $WATCHDOG_USEC and $WATCHDOG_PID,
 * removes them from the environment (no child may notify in herdd's name)
 * and, when NOTIFY_SOCKET is usable, opens the socket and starts the
 * WATCHDOG=1 timer on loop. Call it before any thread or child starts. 0
 * (also when not under systemd, or when a value is bad: logged); -EBUSY
 * when open already, or its handles are still closing. */
int sup__notify_open(uv_loop_t *loop);
/* sup__notify_close stops notifying and closes the handles (asynchronously:
 * run the loop once more). Harmless when not open. */
void sup__notify_close(void);
bool sup__notify_enabled(void);
/* sup__notify_watchdog_ms is the WATCHDOG=1 period (half WATCHDOG_USEC),
 * 0 when there is no watchdog. */
uint64_t sup__notify_watchdog_ms(void);
/* sup__notify_attach reports on s (borrowed; NULL: no more) from now on:
 * STATUS= on every change of the running and failed counts, READY=1 once
 * start-up has settled. Detach (or close) before s is freed: in
 * sup_shutdown's on_closed at the latest. */
void sup__notify_attach(struct sup *s);
/* sup__notify_changed: a worker of s changed state (lifecycle.c); the
 * counts are looked at on the next loop turn. */
void sup__notify_changed(struct sup *s);
/* sup__notify_reloading: a reload begins (SIGHUP or the reload op; call it
 * before sup_reload): RELOADING=1 and MONOTONIC_USEC= now, READY=1 once
 * the reload has settled. */
void sup__notify_reloading(void);
/* sup__notify_stopping: shutdown begins: STOPPING=1, and no READY=1 after. */
void sup__notify_stopping(void);
/* sup__notify_send sends one message (printf-style, at most 1023 bytes,
 * cut beyond). 0, or the send's negative errno (logged once). */
int sup__notify_send(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
