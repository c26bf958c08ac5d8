/*
 * bus/client.h: what a program outside herdd needs to talk to it: topic
 * checks and NATS-style matching, the `<topic> NUL <payload>` wire frame,
 * a non-allocating JSON check, and the blocking client that herdctl and
 * external programs link (publish, subscribe, request over the runtime
 * directory's ipc sockets). It needs jansson and nothing of libuv.
 *
 * Errors are negative errno values. Nothing here keeps global state; a
 * bus_client is used by one thread at a time.
 */
#ifndef HERD_BUS_CLIENT_H
#define HERD_BUS_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define BUS_TOPIC_MAX 255
#define BUS_DEFAULT_MAX_MESSAGE_BYTES (1024 * 1024)
/* Replies: at most bus.max_reply_bytes (default 64 MiB, at most 256 MiB);
 * a larger one is answered `too_large` instead. Clients accept up to the
 * largest a herdd may be configured to send. */
#define BUS_DEFAULT_MAX_REPLY_BYTES (64u * 1024 * 1024)
#define BUS_MAX_REPLY_BYTES_LIMIT (256u * 1024 * 1024)
/* How deep a payload may nest to pass bus_json_check. */
#define BUS_JSON_DEPTH_MAX 512

/* ---- topics ------------------------------------------------------------ */

/* bus_topic_check validates a concrete topic: 1-255 bytes of dot-separated
 * tokens, each 1+ bytes of [A-Za-z0-9_-]. Returns 0 or -EINVAL. */
int bus_topic_check(const char *topic, size_t len);

/* bus_pattern_check validates a subscription pattern: a topic whose tokens
 * may also be `*`, and whose last token may be `>`. Returns 0 or -EINVAL. */
int bus_pattern_check(const char *pattern, size_t len);

/* bus_topic_match tells whether a valid topic matches a valid pattern. */
bool bus_topic_match(const char *pattern, size_t pattern_len, const char *topic, size_t topic_len);

/* bus_topic_reserved tells whether a valid topic is one herdd owns
 * (DESIGN.md section 3): system.<w>.state, system.<w>.health,
 * system.supervisor.>, job.>, catalog.>. Such topics are refused when they
 * come from outside the process; system.<w>.control stays open. */
bool bus_topic_reserved(const char *topic, size_t len);

/* bus_pattern_prefix_len is the length of the literal prefix of a pattern
 * before its first wildcard token: what a remote subscriber hands nng as its
 * byte-prefix filter before matching the rest itself. */
size_t bus_pattern_prefix_len(const char *pattern, size_t len);

/* ---- frames ------------------------------------------------------------ */

/* Why a frame or request was refused; index into bus_stats.dropped. */
enum bus_drop_reason {
    BUS_DROP_NO_NUL = 0,  /* event frame without the topic terminator */
    BUS_DROP_BAD_TOPIC,   /* topic fails bus_topic_check */
    BUS_DROP_BAD_JSON,    /* payload or request body is not JSON */
    BUS_DROP_TOO_LARGE,   /* over max_message_bytes */
    BUS_DROP_QUEUE_FULL,  /* oldest event dropped from a slow subscriber */
    BUS_DROP_BAD_REQUEST, /* request JSON of the wrong shape */
    BUS_DROP_SEND_FAILED, /* nng refused an outgoing frame or reply */
    BUS_DROP_RESERVED,    /* a topic herdd owns, from outside */
    BUS_DROP_BUSY,        /* a request while the client's replies are unread */
    BUS_DROP_N
};

/* bus_drop_reason_name is the snake_case name used in status counters. */
const char *bus_drop_reason_name(enum bus_drop_reason r);

/* An event as seen by a subscriber: views into one immutable buffer. Both
 * topic and payload are NUL-terminated (the terminator is not counted). */
typedef struct bus_event {
    const char *topic;
    size_t topic_len;
    const char *payload;
    size_t payload_len;
} bus_event;

/* bus_frame_parse splits a wire frame into topic and payload views without
 * copying, and validates both (topic syntax, one JSON value, size). Returns 0
 * or sets *reason and returns -EINVAL. The views' topic is not NUL-terminated
 * unless the frame's NUL is used: topic[topic_len] is always that NUL. */
int bus_frame_parse(const void *frame, size_t len, size_t max_bytes, bus_event *out,
                    enum bus_drop_reason *reason);

/* bus_json_check tells whether buf holds exactly one JSON value (surrounding
 * whitespace allowed), UTF-8 checked, nesting at most BUS_JSON_DEPTH_MAX. It allocates
 * nothing, so validating a pass-through payload costs no memory. */
bool bus_json_check(const char *buf, size_t len);

/* bus_check_dir tells whether dir is fit to talk to herdd through: a
 * directory of this user that no other user can write to (DESIGN.md
 * section 3), so nobody can squat /tmp/herd-<uid>. 0, or -EPERM, -ENOTDIR
 * or -ENOENT with a message naming the directory in err (may be NULL).
 * Every dial of a bus_client checks it and fails with that code. */
int bus_check_dir(const char *dir, char *err, size_t err_size);

/* bus_default_dir writes the runtime directory DESIGN.md names:
 * $HERD_RUNTIME_DIR, else $XDG_RUNTIME_DIR/herd, else /tmp/herd-<uid>. */
void bus_default_dir(char *buf, size_t size);

/* ---- client (blocking) --------------------------------------------------- */

typedef struct bus_client bus_client;

/* bus_client_new prepares a client for runtime directory dir (NULL: the
 * default). Nothing is dialed until used. */
int bus_client_new(const char *dir, bus_client **out);
void bus_client_free(bus_client *c);
/* bus_client_why says in words why the last call failed where an errno
 * says too little (a runtime directory refused: which, and why), or "". */
const char *bus_client_why(const bus_client *c);

/* bus_client_publish sends one frame to publish.ipc. Validates the topic
 * and that payload is JSON first (-EINVAL); a topic herdd owns is -EPERM
 * (bus_topic_reserved). -ECONNREFUSED: no herdd. */
int bus_client_publish(bus_client *c, const char *topic, const char *payload, size_t len);

/* bus_client_publish_raw sends frame bytes as they are, unchecked: for
 * tests of malformed input. */
int bus_client_publish_raw(bus_client *c, const void *frame, size_t len);

/* bus_client_flush waits up to timeout_ms until every published frame has
 * been written to herdd's socket (bus_client_free does this too, with 5 s):
 * nng 1.5.2 drops unwritten frames at close. Returns 0 or -ETIMEDOUT. */
int bus_client_flush(bus_client *c, int timeout_ms);

/* bus_client_subscribe adds a pattern; events.ipc is dialed on first use and
 * filtered by the pattern's literal prefix, the rest matched here. */
int bus_client_subscribe(bus_client *c, const char *pattern);

/* bus_client_next waits up to timeout_ms (<0: forever) for the next event
 * matching a subscribed pattern. ev stays valid until the next call.
 * Returns 0, -ETIMEDOUT, or another negative errno. Uses poll(2) on the
 * socket's descriptor: sub0 receive timeouts are never used (nng #1523). */
int bus_client_next(bus_client *c, int timeout_ms, bus_event *ev);

/* bus_client_request sends {"service","op","args"} (args borrowed, NULL for
 * {}) and waits up to timeout_ms for the reply, stored in *reply (caller
 * owns). -ECONNREFUSED: no herdd; -ETIMEDOUT: no reply in time. */
int bus_client_request(bus_client *c, const char *service, const char *op, const json_t *args,
                       int timeout_ms, json_t **reply);

/* bus_client_query is bus_client_request for an op without effects
 * (status, list, get, output): if the connection drops before the reply,
 * the request is sent again on the next connection, within the same
 * timeout, so a listener herdd replaces (nng #1518) costs the caller
 * nothing. Never use it for an op that changes something. */
int bus_client_query(bus_client *c, const char *service, const char *op, const json_t *args,
                     int timeout_ms, json_t **reply);

/* bus_client_call_raw is bus_client_request (resend false) or
 * bus_client_query (resend true) returning the reply's bytes as they came
 * (caller frees): what a client that must not reinterpret a result (numbers
 * beyond a C integer or double, escapes as written) prints. The parsed
 * forms read numbers beyond jansson's integers as doubles. */
int bus_client_call_raw(bus_client *c, const char *service, const char *op, const json_t *args,
                        int timeout_ms, bool resend, char **reply, size_t *reply_len);

/* bus_client_request_raw sends body bytes as they are (for tests of malformed
 * requests) and returns the raw reply bytes (caller frees). */
int bus_client_request_raw(bus_client *c, const void *body, size_t len, int timeout_ms,
                           char **reply, size_t *reply_len);

#endif
