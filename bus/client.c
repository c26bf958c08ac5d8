/*
 * The bus client: blocking publish, subscribe and request over the runtime
 * directory's ipc sockets, for herdctl and external programs.
 *
 * Design notes: sub0 sockets are never given a receive timeout and never
 * have a receive cancelled (nng 1.5.2 can crash there, #1523/#1682): waiting
 * is done with poll(2) on NNG_OPT_RECVFD, then a non-blocking receive. req0
 * timeouts are safe and used. Every socket caps what it accepts with
 * NNG_OPT_RECVMAXSZ.
 */
#include "bus/internal.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/pipeline0/push.h>
#include <nng/protocol/pubsub0/sub.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/util/platform.h>

/* Whatever a herdd may send (its bus.max_reply_bytes), and the envelope. */
#define CLIENT_RECV_MAX (BUS_MAX_REPLY_BYTES_LIMIT + 64u * 1024)

struct bus_client {
    char dir[PATH_MAX];
    nng_socket push, sub, req;
    int has_push, has_sub, has_req;
    uint64_t n_pushed; /* frames handed to push0, for the flush at free */
    char **patterns;
    int n_patterns;
    nng_msg *last; /* the event handed out by bus_client_next */
    char why[PATH_MAX + 128];
};

#define DIAL_BUSY_MS 1000 /* a full accept queue: retried this long */

/* client_errno: nng's code as an errno, where every way of finding no herdd
 * at the other end (no socket file, nobody listening, a connection cut) is
 * -ECONNREFUSED, which herdctl reports as "not reachable". */
static int client_errno(int rv)
{
    int e = bus__errno(rv);

    return e == -ENOENT || e == -ECONNRESET || e == -ECONNABORTED ? -ECONNREFUSED : e;
}

void bus_default_dir(char *buf, size_t size)
{
    const char *v = getenv("HERD_RUNTIME_DIR");

    if (v != NULL && *v != '\0') {
        snprintf(buf, size, "%s", v);
        return;
    }
    v = getenv("XDG_RUNTIME_DIR");
    if (v != NULL && *v != '\0') {
        snprintf(buf, size, "%s/herd", v);
        return;
    }
    snprintf(buf, size, "/tmp/herd-%u", (unsigned)getuid());
}

int bus_check_dir(const char *dir, char *err, size_t err_size)
{
    return base_private_dir(dir, 0750, false, false, NULL, err, err_size);
}

int bus_client_new(const char *dir, bus_client **out)
{
    bus_client *c = calloc(1, sizeof(*c));

    if (c == NULL)
        return -ENOMEM;
    if (dir != NULL)
        snprintf(c->dir, sizeof(c->dir), "%s", dir);
    else
        bus_default_dir(c->dir, sizeof(c->dir));
    *out = c;
    return 0;
}

/* push_flushed tells whether push0 has written every frame handed to it.
 * nng 1.5.2 counts completed writes only per pipe (the socket's own tx_msgs
 * stays 0), so sum tx_msgs over the pipes of our socket. */
static int push_flushed(bus_client *c)
{
    nng_stat *all, *st;
    uint64_t written = 0;
    int id = nng_socket_id(c->push);

    if (nng_stats_get(&all) != 0)
        return 1; /* no statistics: nothing to wait on */
    for (st = nng_stat_child(all); st != NULL; st = nng_stat_next(st)) {
        nng_stat *sock = nng_stat_find(st, "socket");
        nng_stat *tx = nng_stat_find(st, "tx_msgs");
        if (strcmp(nng_stat_name(st), "pipe") == 0 && sock != NULL && tx != NULL &&
            nng_stat_value(sock) == (uint64_t)id)
            written += nng_stat_value(tx);
    }
    nng_stats_free(all);
    return written >= c->n_pushed;
}

int bus_client_flush(bus_client *c, int timeout_ms)
{
    /* nng 1.5.2 has no linger: closing push0 drops what it has not yet
     * written, so wait for the writes before closing. */
    for (int waited = 0; c->has_push && !push_flushed(c); waited++) {
        if (waited >= timeout_ms)
            return -ETIMEDOUT;
        nng_msleep(1);
    }
    return 0;
}

void bus_client_free(bus_client *c)
{
    if (c == NULL)
        return;
    bus_client_flush(c, 5000);
    if (c->last != NULL)
        nng_msg_free(c->last);
    if (c->has_push)
        nng_close(c->push);
    if (c->has_sub)
        nng_close(c->sub);
    if (c->has_req)
        nng_close(c->req);
    for (int i = 0; i < c->n_patterns; i++)
        free(c->patterns[i]);
    free(c->patterns);
    free(c);
}

const char *bus_client_why(const bus_client *c)
{
    return c->why;
}

static int dial(bus_client *c, nng_socket s, const char *file)
{
    char url[PATH_MAX + 32];
    int rv;

    /* A directory someone else owns or can write to may hold their sockets,
     * not herdd's: never talk through it. */
    c->why[0] = '\0';
    if ((rv = bus_check_dir(c->dir, c->why, sizeof(c->why))) < 0) {
        if (rv == -ENOENT)
            c->why[0] = '\0';
        return rv == -ENOENT ? -ECONNREFUSED : rv;
    }
    snprintf(url, sizeof(url), "ipc://%s/%s", c->dir, file);
    rv = nng_socket_set_size(s, NNG_OPT_RECVMAXSZ, CLIENT_RECV_MAX);
    /* EAGAIN is a full accept queue (a burst, or a listener herdd is about
     * to replace): it drains within milliseconds. */
    for (int waited = 0; rv == 0; waited += 10) {
        rv = nng_dial(s, url, NULL, 0);
        if (client_errno(rv) != -EAGAIN || waited >= DIAL_BUSY_MS)
            break;
        nng_msleep(10);
        rv = 0;
    }
    return client_errno(rv);
}

static int push_send(bus_client *c, const void *head, size_t head_len, const void *tail,
                     size_t tail_len)
{
    nng_msg *m;
    int rv;

    if (!c->has_push) {
        if ((rv = nng_push0_open(&c->push)) != 0)
            return client_errno(rv);
        c->has_push = 1;
        if ((rv = dial(c, c->push, "publish.ipc")) < 0)
            return rv;
    }
    if ((rv = nng_msg_alloc(&m, head_len + tail_len)) != 0)
        return client_errno(rv);
    memcpy(nng_msg_body(m), head, head_len);
    memcpy((char *)nng_msg_body(m) + head_len, tail, tail_len);
    if ((rv = nng_sendmsg(c->push, m, 0)) != 0) {
        nng_msg_free(m);
        return client_errno(rv);
    }
    c->n_pushed++;
    return 0;
}

int bus_client_publish(bus_client *c, const char *topic, const char *payload, size_t len)
{
    size_t topic_len = topic != NULL ? strlen(topic) : 0;

    if (bus_topic_check(topic, topic_len) < 0 || !bus_json_check(payload, len))
        return -EINVAL;
    if (bus_topic_reserved(topic, topic_len))
        return -EPERM; /* herdd would drop it: say so here */
    /* The topic's NUL terminator is the frame's separator. */
    return push_send(c, topic, topic_len + 1, payload, len);
}

int bus_client_publish_raw(bus_client *c, const void *frame, size_t len)
{
    return push_send(c, frame, len, "", 0);
}

int bus_client_subscribe(bus_client *c, const char *pattern)
{
    size_t len = pattern != NULL ? strlen(pattern) : 0;
    char **np;
    int rv;

    if (bus_pattern_check(pattern, len) < 0)
        return -EINVAL;
    if (!c->has_sub) {
        if ((rv = nng_sub0_open(&c->sub)) != 0)
            return client_errno(rv);
        c->has_sub = 1;
        /* sub0 drops what does not fit its queue (128 messages by default):
         * 1,000 workers' heartbeats arrive in one burst every interval and
         * `herdctl sub` lost up to 205 of 2,000 (bench/floor). nng's
         * largest queue; a reader that keeps up holds none of it. */
        if ((rv = nng_socket_set_int(c->sub, NNG_OPT_RECVBUF, 8192)) != 0)
            return client_errno(rv);
        if ((rv = dial(c, c->sub, "events.ipc")) < 0)
            return rv;
    }
    np = realloc(c->patterns, (size_t)(c->n_patterns + 1) * sizeof(*np));
    if (np == NULL)
        return -ENOMEM;
    c->patterns = np;
    if ((c->patterns[c->n_patterns] = strdup(pattern)) == NULL)
        return -ENOMEM;
    c->n_patterns++;
    rv = nng_socket_set(c->sub, NNG_OPT_SUB_SUBSCRIBE, pattern,
                        bus_pattern_prefix_len(pattern, len));
    return client_errno(rv);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int matches(const bus_client *c, const bus_event *ev)
{
    for (int i = 0; i < c->n_patterns; i++)
        if (bus_topic_match(c->patterns[i], strlen(c->patterns[i]), ev->topic, ev->topic_len))
            return 1;
    return 0;
}

int bus_client_next(bus_client *c, int timeout_ms, bus_event *ev)
{
    int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
    int fd, rv;

    if (!c->has_sub)
        return -EINVAL;
    if (c->last != NULL) {
        nng_msg_free(c->last);
        c->last = NULL;
    }
    if ((rv = nng_socket_get_int(c->sub, NNG_OPT_RECVFD, &fd)) != 0)
        return client_errno(rv);
    for (;;) {
        nng_msg *m;
        rv = nng_recvmsg(c->sub, &m, NNG_FLAG_NONBLOCK);
        if (rv == 0) {
            /* Grow by one byte so the payload is NUL-terminated too. */
            if (nng_msg_append(m, "", 1) != 0) {
                nng_msg_free(m);
                return -ENOMEM;
            }
            size_t len = nng_msg_len(m) - 1;
            if (bus_frame_parse(nng_msg_body(m), len, 0, ev, NULL) == 0 && matches(c, ev)) {
                c->last = m;
                return 0;
            }
            nng_msg_free(m);
            continue;
        }
        if (rv != NNG_EAGAIN)
            return client_errno(rv);
        int wait = -1;
        if (deadline >= 0) {
            int64_t left = deadline - now_ms();
            if (left <= 0)
                return -ETIMEDOUT;
            wait = left > INT_MAX ? INT_MAX : (int)left;
        }
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, wait) < 0 && errno != EINTR)
            return -errno;
    }
}

/* req_open dials request.ipc once and sets the timeouts of one request.
 * With resend, nng sends the request again when its connection drops before
 * the reply (a listener herdd replaces, nng #1518); without, a request goes
 * out once, since a resend could run a request with effects twice. The
 * resend timer is set beyond the receive timeout, so it never fires by
 * itself: only a dropped connection resends. */
static int req_open(bus_client *c, int timeout_ms, bool resend)
{
    nng_duration resend_ms = NNG_DURATION_INFINITE;
    int rv;

    if (resend)
        resend_ms = timeout_ms < 0 ? 3600 * 1000 : timeout_ms + 1000;
    if (!c->has_req) {
        if ((rv = nng_req0_open(&c->req)) != 0)
            return client_errno(rv);
        c->has_req = 1;
        if ((rv = dial(c, c->req, "request.ipc")) < 0) {
            nng_close(c->req);
            c->has_req = 0;
            return rv;
        }
    }
    rv = nng_socket_set_ms(c->req, NNG_OPT_REQ_RESENDTIME, resend_ms);
    rv = rv ? rv
            : nng_socket_set_ms(c->req, NNG_OPT_RECVTIMEO,
                                timeout_ms < 0 ? NNG_DURATION_INFINITE : timeout_ms);
    rv = rv ? rv
            : nng_socket_set_ms(c->req, NNG_OPT_SENDTIMEO,
                                timeout_ms < 0 ? NNG_DURATION_INFINITE : timeout_ms);
    return client_errno(rv);
}

static int request_bytes(bus_client *c, const void *body, size_t len, int timeout_ms, bool resend,
                         char **reply, size_t *reply_len)
{
    nng_msg *m;
    int rv;

    if ((rv = req_open(c, timeout_ms, resend)) < 0)
        return rv;
    if ((rv = nng_msg_alloc(&m, len)) != 0)
        return client_errno(rv);
    memcpy(nng_msg_body(m), body, len);
    if ((rv = nng_sendmsg(c->req, m, 0)) != 0) {
        nng_msg_free(m);
        return client_errno(rv);
    }
    if ((rv = nng_recvmsg(c->req, &m, 0)) != 0)
        return client_errno(rv);
    *reply_len = nng_msg_len(m);
    *reply = malloc(*reply_len + 1);
    if (*reply == NULL) {
        nng_msg_free(m);
        return -ENOMEM;
    }
    memcpy(*reply, nng_msg_body(m), *reply_len);
    (*reply)[*reply_len] = '\0';
    nng_msg_free(m);
    return 0;
}

int bus_client_request_raw(bus_client *c, const void *body, size_t len, int timeout_ms,
                           char **reply, size_t *reply_len)
{
    return request_bytes(c, body, len, timeout_ms, false, reply, reply_len);
}

int bus_client_call_raw(bus_client *c, const char *service, const char *op, const json_t *args,
                        int timeout_ms, bool resend, char **reply, size_t *reply_len)
{
    json_t *req = json_object();
    char *body;
    int rv;

    if (req == NULL)
        return -ENOMEM;
    json_object_set_new(req, "service", json_string(service));
    json_object_set_new(req, "op", json_string(op));
    json_object_set_new(req, "args", args != NULL ? json_deep_copy(args) : json_object());
    body = base_json_dumps(req, JSON_COMPACT);
    json_decref(req);
    if (body == NULL)
        return -ENOMEM;
    rv = request_bytes(c, body, strlen(body), timeout_ms, resend, reply, reply_len);
    free(body);
    return rv;
}

static int request_json(bus_client *c, const char *service, const char *op, const json_t *args,
                        int timeout_ms, bool resend, json_t **reply)
{
    char *raw;
    size_t raw_len;
    int rv = bus_client_call_raw(c, service, op, args, timeout_ms, resend, &raw, &raw_len);

    if (rv < 0)
        return rv;
    *reply = json_loadb(raw, raw_len, JSON_ALLOW_NUL, NULL);
    /* a result holding a number beyond jansson's integers (a catalog
     * entry's 17008162028057714984): read numbers as doubles rather than
     * fail; bus_client_call_raw gives the exact bytes */
    if (*reply == NULL)
        *reply = json_loadb(raw, raw_len, JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, NULL);
    free(raw);
    return *reply != NULL ? 0 : -EPROTO;
}

int bus_client_request(bus_client *c, const char *service, const char *op, const json_t *args,
                       int timeout_ms, json_t **reply)
{
    return request_json(c, service, op, args, timeout_ms, false, reply);
}

int bus_client_query(bus_client *c, const char *service, const char *op, const json_t *args,
                     int timeout_ms, json_t **reply)
{
    return request_json(c, service, op, args, timeout_ms, true, reply);
}
