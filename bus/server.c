/*
 * The broker's nng sockets: events.ipc (pub0), publish.ipc (pull0) and
 * request.ipc (rep0, raw mode so replies can be sent whenever ready).
 *
 * Design notes:
 * - nng threads never call herd code. pull0 and rep0 receive with an nng
 *   aio whose callback (on an nng thread) only appends the message to a
 *   bounded inbox under a mutex, re-arms the receive, and wakes the loop
 *   with uv_async_send; the loop drains up to a budget per turn. uv_async
 *   coalesces wake-ups, so a burst costs one wake-up, not one per message
 *   as NNG_OPT_RECVFD's pollable descriptor does (bench/bus measured both).
 *   A full inbox leaves the receive un-armed until the loop drains it: nng
 *   then pushes back on the senders, nothing grows.
 * - Only the pub0 pipe notifications run on nng threads; they touch nothing
 *   but the pipe-id set under its mutex.
 * - Start-up: a socket file where something accepts connections belongs to
 *   a live herdd and is refused; one where connect() is refused is stale and
 *   removed. The probe completes the SP handshake before closing, because a
 *   peer that vanishes mid-handshake breaks nng 1.5.2's listener (#1518).
 * - NNG_OPT_RECVMAXSZ is twice max_message_bytes: a frame just over the
 *   limit still arrives and is refused and counted (answered `too_large`
 *   for requests); anything larger is cut by nng, which drops the pipe.
 */
#include "bus/internal.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <nng/protocol/pipeline0/pull.h>
#include <nng/protocol/pubsub0/pub.h>
#include <nng/protocol/reqrep0/rep.h>

#define RECV_BUDGET 1024
#define INBOX_CAP 1024
#define REPLY_QUEUE_MAX 4096 /* replies waiting for rep0; beyond, dropped */
#define REPLY_RETRY_MS 1

/* SP protocol ids (nng's NNI_PROTO(major, minor) = major*16 + minor). */
#define SP_SUB0 0x21
#define SP_PUSH0 0x50
#define SP_REQ0 0x30

static void sp_header(unsigned char hdr[8], uint16_t proto)
{
    hdr[0] = 0;
    hdr[1] = 'S';
    hdr[2] = 'P';
    hdr[3] = 0;
    hdr[4] = (unsigned char)(proto >> 8);
    hdr[5] = (unsigned char)(proto & 0xff);
    hdr[6] = 0;
    hdr[7] = 0;
}

/* socket_in_use tells whether something accepts connections at path:
 * 1 live, 0 absent or stale, <0 an error. Completes the SP handshake. */
static int socket_in_use(const char *path, uint16_t peer_proto)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    unsigned char hdr[8], in[8];
    int fd, rv;

    if (strlen(path) >= sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        rv = errno;
        close(fd);
        if (rv == ENOENT || rv == ECONNREFUSED)
            return 0;
        return -rv;
    }
    sp_header(hdr, peer_proto);
    if (send(fd, hdr, sizeof(hdr), MSG_NOSIGNAL) == (ssize_t)sizeof(hdr)) {
        size_t got = 0;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        while (got < sizeof(in) && poll(&pfd, 1, 1000) == 1) {
            ssize_t n = recv(fd, in + got, sizeof(in) - got, 0);
            if (n <= 0)
                break;
            got += (size_t)n;
        }
    }
    close(fd);
    return 1;
}

int bus__send_event(bus *b, const char *topic, size_t topic_len, const char *payload,
                    size_t payload_len)
{
    nng_msg *m;
    int rv;

    if (!b->sockets || bus__pipes_count(&b->ep[BUS_EP_EVENTS]) == 0)
        return 0;
    rv = nng_msg_alloc(&m, topic_len + 1 + payload_len);
    if (rv != 0) {
        b->stats.dropped[BUS_DROP_SEND_FAILED]++;
        return bus__errno(rv);
    }
    char *body = nng_msg_body(m);
    memcpy(body, topic, topic_len);
    body[topic_len] = '\0';
    memcpy(body + topic_len + 1, payload, payload_len);
    rv = nng_sendmsg(b->ep[BUS_EP_EVENTS].sock, m, NNG_FLAG_NONBLOCK);
    if (rv != 0) {
        nng_msg_free(m);
        b->stats.dropped[BUS_DROP_SEND_FAILED]++;
        return bus__errno(rv);
    }
    b->stats.remote_out++;
    return 0;
}

static void replies_retry(uv_timer_t *t)
{
    bus *b = t->data;

    nng_msg *m;

    while ((m = base_ring_peek(&b->replies)) != NULL) {
        int rv = nng_sendmsg(b->ep[BUS_EP_REQUEST].sock, m, NNG_FLAG_NONBLOCK);
        if (rv == NNG_EAGAIN)
            return; /* still full: next tick */
        if (rv != 0) {
            nng_msg_free(m);
            b->stats.dropped[BUS_DROP_SEND_FAILED]++;
        }
        base_ring_pop(&b->replies);
    }
    uv_timer_stop(t);
}

/* reply_enqueue keeps m for a retry; rep0's queue is momentarily full. */
static int reply_enqueue(bus *b, nng_msg *m)
{
    void *dropped;

    if (!b->has_reply_timer || base_ring_full(&b->replies) ||
        base_ring_push(&b->replies, m, &dropped) < 0)
        return -ENOBUFS;
    if (!uv_is_active((uv_handle_t *)&b->reply_timer))
        uv_timer_start(&b->reply_timer, replies_retry, REPLY_RETRY_MS, REPLY_RETRY_MS);
    return 0;
}

int bus__send_reply(bus *b, const void *header, size_t header_len, const bus__part *parts,
                    size_t n_parts)
{
    nng_msg *m;
    size_t len = 0;
    int rv;

    if (!b->sockets || !b->ep[BUS_EP_REQUEST].open)
        return -EBADF;
    for (size_t i = 0; i < n_parts; i++)
        len += parts[i].len;
    rv = nng_msg_alloc(&m, len);
    if (rv != 0) {
        b->stats.dropped[BUS_DROP_SEND_FAILED]++;
        return bus__errno(rv);
    }
    rv = nng_msg_header_append(m, header, header_len);
    if (rv != 0) {
        nng_msg_free(m);
        b->stats.dropped[BUS_DROP_SEND_FAILED]++;
        return bus__errno(rv);
    }
    char *body = nng_msg_body(m);
    for (size_t i = 0; i < n_parts; i++) {
        memcpy(body, parts[i].data, parts[i].len);
        body += parts[i].len;
    }
    /* raw rep0's header starts with the pipe id, big-endian */
    if (header_len >= 4) {
        const unsigned char *h = header;
        uint32_t pipe = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
        bus__pipes_handed(&b->ep[BUS_EP_REQUEST], pipe, len + header_len);
    }
    /* Keep the order: while replies wait, new ones queue behind them. */
    rv = base_ring_count(&b->replies) > 0
             ? NNG_EAGAIN
             : nng_sendmsg(b->ep[BUS_EP_REQUEST].sock, m, NNG_FLAG_NONBLOCK);
    if (rv == NNG_EAGAIN && reply_enqueue(b, m) == 0)
        return 0;
    if (rv != 0) {
        nng_msg_free(m);
        b->stats.dropped[BUS_DROP_SEND_FAILED]++;
        return bus__errno(rv);
    }
    return 0;
}

static void process_publish(bus *b, nng_msg *m)
{
    bus_event ev;
    enum bus_drop_reason why;

    b->stats.remote_in++;
    if (bus_frame_parse(nng_msg_body(m), nng_msg_len(m), b->max_message_bytes, &ev, &why) < 0) {
        b->stats.dropped[why]++;
        nng_msg_free(m);
        return;
    }
    /* Events only herdd may publish: a client must not forge a job's end
     * or a worker's state. */
    if (bus_topic_reserved(ev.topic, ev.topic_len)) {
        b->stats.dropped[BUS_DROP_RESERVED]++;
        nng_msg_free(m);
        return;
    }
    bus__deliver_remote_frame(b, &ev);
    /* The frame goes out as it came in: the same message, no copy. */
    if (bus__pipes_count(&b->ep[BUS_EP_EVENTS]) == 0) {
        nng_msg_free(m);
    } else if (nng_sendmsg(b->ep[BUS_EP_EVENTS].sock, m, NNG_FLAG_NONBLOCK) != 0) {
        nng_msg_free(m);
        b->stats.dropped[BUS_DROP_SEND_FAILED]++;
    } else {
        b->stats.remote_out++;
    }
}

static void process_request(bus *b, nng_msg *m)
{
    bus__request_received(b, nng_msg_header(m), nng_msg_header_len(m), nng_msg_body(m),
                          nng_msg_len(m));
    nng_msg_free(m);
}

/* recv_done runs on an nng thread: queue, wake the loop, re-arm. */
static void recv_done(void *arg)
{
    bus_endpoint *ep = arg;
    int rv = nng_aio_result(ep->aio), paused;

    if (__atomic_load_n(&ep->closing, __ATOMIC_ACQUIRE) || rv == NNG_ECLOSED)
        return;
    if (rv != 0) {
        nng_recv_aio(ep->sock, ep->aio); /* a failed pipe: keep receiving */
        return;
    }
    void *dropped;
    pthread_mutex_lock(&ep->lock);
    /* Never full here (the receive is not re-armed when it is) and fully
     * allocated at open, so the push neither drops nor allocates. */
    HERD_ASSERT(!base_ring_full(&ep->inbox));
    base_ring_push(&ep->inbox, nng_aio_get_msg(ep->aio), &dropped);
    HERD_ASSERT(dropped == NULL);
    paused = ep->recv_paused = base_ring_full(&ep->inbox);
    pthread_mutex_unlock(&ep->lock);
    uv_async_send(&ep->async);
    if (!paused)
        nng_recv_aio(ep->sock, ep->aio);
}

static void inbox_drain(uv_async_t *h)
{
    bus_endpoint *ep = h->data;
    bus *b = ep->bus;
    int n;

    for (n = 0; n < RECV_BUDGET && !b->closing; n++) {
        nng_msg *m;
        int resume = 0;
        pthread_mutex_lock(&ep->lock);
        m = base_ring_pop(&ep->inbox);
        if (m == NULL) {
            pthread_mutex_unlock(&ep->lock);
            return;
        }
        if (ep->recv_paused) {
            ep->recv_paused = 0;
            resume = 1;
        }
        pthread_mutex_unlock(&ep->lock);
        if (resume)
            nng_recv_aio(ep->sock, ep->aio);
        if (ep - b->ep == BUS_EP_PUBLISH)
            process_publish(b, m);
        else
            process_request(b, m);
    }
    /* Budget spent with messages left: another turn, after other I/O. */
    if (n == RECV_BUDGET)
        uv_async_send(&ep->async);
}

static int receiver_start(bus *b, bus_endpoint *ep, char *err, size_t err_size)
{
    int rv;

    base_ring_init(&ep->inbox, INBOX_CAP);
    if (base_ring_reserve(&ep->inbox, INBOX_CAP) < 0) {
        snprintf(err, err_size, "%s: out of memory", ep->path);
        return -ENOMEM;
    }
    pthread_mutex_init(&ep->lock, NULL);
    if ((rv = uv_async_init(b->loop, &ep->async, inbox_drain)) < 0) {
        snprintf(err, err_size, "%s: uv_async_init: %s", ep->path, uv_strerror(rv));
        pthread_mutex_destroy(&ep->lock);
        return rv;
    }
    ep->async.data = ep;
    ep->has_async = 1;
    b->handles_open++;
    if ((rv = nng_aio_alloc(&ep->aio, recv_done, ep)) != 0) {
        snprintf(err, err_size, "%s: nng_aio_alloc: %s", ep->path, nng_strerror(rv));
        return bus__errno(rv);
    }
    nng_recv_aio(ep->sock, ep->aio);
    return 0;
}

/* receiver_stop runs after nng_close: the aio has completed or completes
 * with NNG_ECLOSED, and never re-arms. */
static void receiver_stop(bus_endpoint *ep)
{
    if (ep->aio != NULL) {
        nng_aio_stop(ep->aio); /* waits for a running callback */
        nng_aio_free(ep->aio);
        ep->aio = NULL;
    }
    nng_msg *m;
    while ((m = base_ring_pop(&ep->inbox)) != NULL)
        nng_msg_free(m);
    base_ring_free(&ep->inbox);
    if (ep->has_async) {
        uv_close((uv_handle_t *)&ep->async, bus__handle_closed_async);
        ep->has_async = 0;
    }
}

/* tcp_listen adds the socket's bus.tcp listener: the same socket, so a
 * remote peer is served exactly as a local one (and counted against the
 * same max_connections). */
static int tcp_listen(bus *b, bus_endpoint *ep, char *err, size_t err_size)
{
    nng_tls_config *tls = NULL;
    nng_listener l;
    int rv = nng_listener_create(&l, ep->sock, ep->tcp_url);

    if (rv != 0) {
        snprintf(err, err_size, "bus.tcp: %s: %s", ep->tcp_url, nng_strerror(rv));
        return bus__errno(rv);
    }
    if (strncmp(ep->tcp_url, "tls+tcp://", 10) == 0) {
        bus_tls_files f = {.cert_file = b->tls_cert_file, .key_file = b->tls_key_file};
        char why[256];
        if ((rv = bus__tls_config(&f, true, &tls, why, sizeof(why))) < 0) {
            snprintf(err, err_size, "bus.tls: %s", why);
            nng_listener_close(l);
            return rv;
        }
        rv = nng_listener_set_ptr(l, NNG_OPT_TLS_CONFIG, tls);
        nng_tls_config_free(tls); /* the listener holds its own reference */
    }
    if (rv == 0)
        rv = nng_listener_start(l, 0);
    if (rv != 0) {
        snprintf(err, err_size, "bus.tcp: cannot listen on %s: %s", ep->tcp_url, nng_strerror(rv));
        nng_listener_close(l);
        return bus__errno(rv);
    }
    bus__log(b, BASE_LOG_INFO, "%s also listening on %s", ep->file, ep->tcp_url);
    return 0;
}

static int endpoint_open(bus *b, bus_endpoint *ep, char *err, size_t err_size)
{
    int rv;
    size_t rmax = b->max_message_bytes * 2;

    switch (ep - b->ep) {
    case BUS_EP_EVENTS:
        rv = nng_pub0_open(&ep->sock);
        break;
    case BUS_EP_PUBLISH:
        rv = nng_pull0_open(&ep->sock);
        break;
    default:
        rv = nng_rep0_open_raw(&ep->sock);
        break;
    }
    if (rv != 0) {
        snprintf(err, err_size, "%s: cannot open socket: %s", ep->path, nng_strerror(rv));
        return bus__errno(rv);
    }
    ep->open = 1;
    rv = nng_socket_set_size(ep->sock, NNG_OPT_RECVMAXSZ, rmax);
    if (rv == 0 && ep - b->ep == BUS_EP_EVENTS)
        rv = nng_socket_set_int(ep->sock, NNG_OPT_SENDBUF, b->subscriber_buffer);
    ep->evict_idle = ep - b->ep == BUS_EP_REQUEST;
    if (rv == 0)
        rv = bus__pipes_init(ep);
    if (rv == 0 && ep - b->ep != BUS_EP_EVENTS)
        nng_socket_set_int(ep->sock, NNG_OPT_RECVBUF, 1024); /* best effort */
    if (rv != 0) {
        snprintf(err, err_size, "%s: socket options: %s", ep->path, nng_strerror(rv));
        return bus__errno(rv);
    }
    rv = bus__listener_start(b, ep);
    if (rv != 0) {
        snprintf(err, err_size, "%s: cannot listen: %s", ep->path, nng_strerror(rv));
        return bus__errno(rv);
    }
    if (ep->tcp_url != NULL && ep->tcp_url[0] && (rv = tcp_listen(b, ep, err, err_size)) < 0)
        return rv;
    if (ep - b->ep != BUS_EP_EVENTS)
        return receiver_start(b, ep, err, err_size);
    return 0;
}

int bus__sockets_open(bus *b, char *err, size_t err_size)
{
    static const char *const files[BUS_EP_N] = {"events.ipc", "publish.ipc", "request.ipc"};
    static const uint16_t peers[BUS_EP_N] = {SP_SUB0, SP_PUSH0, SP_REQ0};
    int rv;

    /* Nobody else may own or write the directory the sockets are in, so
     * nobody can squat /tmp/herd-<uid> before herdd starts (DESIGN.md 3). */
    if ((rv = base_private_dir(b->dir, 0750, true, false, NULL, err, err_size)) < 0)
        return rv;
    for (int i = 0; i < BUS_EP_N; i++) {
        bus_endpoint *ep = &b->ep[i];
        ep->bus = b;
        ep->file = files[i];
        ep->peer_proto = peers[i];
        if ((size_t)snprintf(ep->path, sizeof(ep->path), "%s/%s", b->dir, files[i]) >=
                sizeof(struct sockaddr_un) - offsetof(struct sockaddr_un, sun_path) ||
            strlen(ep->path) >= sizeof(ep->path) - 1) {
            snprintf(err, err_size, "%s: runtime directory path too long for a socket", b->dir);
            return -ENAMETOOLONG;
        }
        memcpy(ep->url, "ipc://", 6);
        memcpy(ep->url + 6, ep->path, strlen(ep->path) + 1);
        rv = socket_in_use(ep->path, peers[i]);
        if (rv > 0) {
            snprintf(err, err_size, "%s: another herdd is listening there (runtime directory %s)",
                     ep->path, b->dir);
            return -EADDRINUSE;
        }
        if (rv < 0) {
            snprintf(err, err_size, "%s: %s", ep->path, strerror(-rv));
            return rv;
        }
        if (unlink(ep->path) == 0)
            bus__log(b, BASE_LOG_INFO, "%s: removed stale socket file", ep->path);
    }
    b->sockets = 1;
    if ((rv = uv_timer_init(b->loop, &b->reply_timer)) < 0) {
        snprintf(err, err_size, "uv_timer_init: %s", uv_strerror(rv));
        return rv;
    }
    b->reply_timer.data = b;
    b->has_reply_timer = 1;
    base_ring_init(&b->replies, REPLY_QUEUE_MAX);
    b->handles_open++;
    for (int i = 0; i < BUS_EP_N; i++) {
        rv = endpoint_open(b, &b->ep[i], err, err_size);
        if (rv < 0)
            return rv;
    }
    if (b->listener_check_ms > 0) {
        rv = uv_timer_init(b->loop, &b->check_timer);
        if (rv < 0) {
            snprintf(err, err_size, "uv_timer_init: %s", uv_strerror(rv));
            return rv;
        }
        b->check_timer.data = b;
        b->has_check_timer = 1;
        b->handles_open++;
        uv_timer_start(&b->check_timer, bus__listener_check, (uint64_t)b->listener_check_ms,
                       (uint64_t)b->listener_check_ms);
    }
    return 0;
}

void bus__sockets_close(bus *b)
{
    if (!b->sockets)
        return;
    if (b->has_check_timer) {
        uv_close((uv_handle_t *)&b->check_timer, bus__handle_closed);
        b->has_check_timer = 0;
    }
    if (b->has_reply_timer) {
        /* Flush what rep0 takes now; the rest is lost with the socket. */
        replies_retry(&b->reply_timer);
        nng_msg *m;
        while ((m = base_ring_pop(&b->replies)) != NULL)
            nng_msg_free(m);
        base_ring_free(&b->replies);
        uv_close((uv_handle_t *)&b->reply_timer, bus__handle_closed);
        b->has_reply_timer = 0;
    }
    for (int i = 0; i < BUS_EP_N; i++) {
        bus_endpoint *ep = &b->ep[i];
        bus__listeners_retire_all(ep);
        __atomic_store_n(&ep->closing, 1, __ATOMIC_RELEASE);
        if (ep->open) {
            nng_close(ep->sock);
            ep->open = 0;
            unlink(ep->path);
        }
        receiver_stop(ep);
        bus__pipes_fini(ep); /* nng_close returned: no more pipe callbacks */
    }
    b->sockets = 0;
}
