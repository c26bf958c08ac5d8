/*
 * A push0 link to another herd's publish socket (bus.h: bus_link).
 *
 * Design notes
 * - nng dials in the background and redials by itself (NNG_OPT_RECONNMINT
 *   doubling to RECONNMAXT) whenever the peer goes away; nothing here
 *   waits for a connection.
 * - Sends are non-blocking. push0 takes a frame when a connected pipe is
 *   free or its send buffer (send_buffer frames) has room; otherwise the
 *   frame stays with the caller (-EAGAIN), who holds it in its own bounded,
 *   counted queue. Readiness comes back to the loop through the socket's
 *   NNG_OPT_SENDFD, watched with uv_poll only while a send is waiting, so
 *   an idle link costs no wakeup.
 * - The buffer outlives a connection: what nng holds while the peer is
 *   away goes out after the redial. What it had already written to a
 *   connection the peer dropped is lost with that connection; a stop loses
 *   what it holds (at most send_buffer frames).
 * - Connection counts are kept by nng's pipe callbacks, on nng threads,
 *   in atomics; nothing else of the link is touched there.
 */
#include "bus/internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <nng/protocol/pipeline0/push.h>

#define LINK_RECONNECT_MIN_MS 100
#define LINK_RECONNECT_MAX_MS 5000

struct bus_link {
    nng_socket sock;
    uv_poll_t poll;
    bool polling;
    size_t max_message_bytes;
    bus_link_ready_cb ready;
    void *data;
    int pipes;         /* atomic: connected now */
    uint64_t connects; /* atomic */
    void (*closed)(void *data);
    void *closed_data;
};

static void on_pipe(nng_pipe p, nng_pipe_ev ev, void *arg)
{
    bus_link *l = arg;
    (void)p;
    if (ev == NNG_PIPE_EV_ADD_POST) {
        __atomic_add_fetch(&l->pipes, 1, __ATOMIC_RELAXED);
        __atomic_add_fetch(&l->connects, 1, __ATOMIC_RELAXED);
    } else if (ev == NNG_PIPE_EV_REM_POST) {
        __atomic_sub_fetch(&l->pipes, 1, __ATOMIC_RELAXED);
    }
}

static void on_writable(uv_poll_t *h, int status, int events)
{
    bus_link *l = h->data;
    (void)status;
    (void)events;
    uv_poll_stop(h);
    l->polling = false;
    if (l->ready != NULL)
        l->ready(l, l->data);
}

/* The host of a URL, for the TLS server name: between "//" and the port,
 * without IPv6 brackets. */
static void url_host(const char *url, char *out, size_t size)
{
    const char *h = strstr(url, "//"), *colon;
    size_t n;

    out[0] = '\0';
    if (h == NULL)
        return;
    h += 2;
    colon = strrchr(h, ':');
    n = colon != NULL ? (size_t)(colon - h) : strlen(h);
    if (n >= 2 && h[0] == '[' && h[n - 1] == ']') {
        h++;
        n -= 2;
    }
    if (n < size) {
        memcpy(out, h, n);
        out[n] = '\0';
    }
}

static int link_dial(bus_link *l, const bus_link_config *cfg, char *err, size_t err_size)
{
    nng_dialer d;
    nng_tls_config *tls = NULL;
    int rv = nng_dialer_create(&d, l->sock, cfg->url);

    if (rv != 0)
        return base_errf(err, err_size, "%s: %s", cfg->url,
                         rv == NNG_ENOTSUP ? "unsupported transport (expected ipc://, tcp:// "
                                             "or tls+tcp://)"
                                           : nng_strerror(rv));
    if (strncmp(cfg->url, "tls+tcp://", 10) == 0) {
        bus_tls_files f = cfg->tls;
        char host[256];
        if (f.server_name == NULL || !f.server_name[0]) {
            url_host(cfg->url, host, sizeof(host));
            f.server_name = host;
        }
        if (f.ca_file == NULL || !f.ca_file[0])
            return base_errf(err, err_size, "%s: a TLS link needs a CA file to check the peer",
                             cfg->url);
        if ((rv = bus__tls_config(&f, false, &tls, err, err_size)) < 0)
            return rv;
        rv = nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, tls);
        nng_tls_config_free(tls); /* the dialer holds its own reference */
        if (rv != 0)
            return base_errf(err, err_size, "%s: TLS: %s", cfg->url, nng_strerror(rv));
    }
    rv = nng_dialer_set_ms(d, NNG_OPT_RECONNMINT, LINK_RECONNECT_MIN_MS);
    if (rv == 0)
        rv = nng_dialer_set_ms(d, NNG_OPT_RECONNMAXT, LINK_RECONNECT_MAX_MS);
    if (rv == 0)
        rv = nng_dialer_start(d, NNG_FLAG_NONBLOCK);
    if (rv != 0)
        return base_errf(err, err_size, "%s: cannot dial: %s", cfg->url, nng_strerror(rv));
    return 0;
}

int bus_link_open(uv_loop_t *loop, const bus_link_config *cfg, bus_link_ready_cb ready, void *data,
                  bus_link **out, char *err, size_t err_size)
{
    bus_link *l = base_calloc(1, sizeof(*l));
    int fd, rv;

    if (l == NULL) {
        base_errf(err, err_size, "out of memory");
        return -ENOMEM;
    }
    l->ready = ready;
    l->data = data;
    l->max_message_bytes =
        cfg->max_message_bytes != 0 ? cfg->max_message_bytes : BUS_DEFAULT_MAX_MESSAGE_BYTES;
    if ((rv = nng_push0_open(&l->sock)) != 0) {
        base_free(l);
        return base_errf(err, err_size, "cannot open a push socket: %s", nng_strerror(rv));
    }
    rv = nng_socket_set_int(l->sock, NNG_OPT_SENDBUF, (int)cfg->send_buffer);
    if (rv == 0)
        rv = nng_socket_set_size(l->sock, NNG_OPT_RECVMAXSZ, l->max_message_bytes);
    if (rv == 0)
        rv = nng_pipe_notify(l->sock, NNG_PIPE_EV_ADD_POST, on_pipe, l);
    if (rv == 0)
        rv = nng_pipe_notify(l->sock, NNG_PIPE_EV_REM_POST, on_pipe, l);
    if (rv == 0)
        rv = nng_socket_get_int(l->sock, NNG_OPT_SENDFD, &fd);
    if (rv != 0) {
        base_errf(err, err_size, "push socket options: %s", nng_strerror(rv));
        rv = bus__errno(rv);
    } else if ((rv = uv_poll_init(loop, &l->poll, fd)) < 0) {
        base_errf(err, err_size, "uv_poll_init: %s", uv_strerror(rv));
    } else {
        l->poll.data = l;
        rv = link_dial(l, cfg, err, err_size);
        if (rv == 0) {
            *out = l;
            return 0;
        }
        bus_link_close(l, NULL, NULL);
        return rv;
    }
    nng_close(l->sock);
    base_free(l);
    return rv;
}

int bus_link_send(bus_link *l, const char *topic, size_t topic_len, const char *payload,
                  size_t payload_len)
{
    nng_msg *m;
    int rv;

    if (topic_len + 1 + payload_len > l->max_message_bytes)
        return -EMSGSIZE;
    if ((rv = nng_msg_alloc(&m, topic_len + 1 + payload_len)) != 0)
        return bus__errno(rv);
    char *body = nng_msg_body(m);
    memcpy(body, topic, topic_len);
    body[topic_len] = '\0';
    memcpy(body + topic_len + 1, payload, payload_len);
    rv = nng_sendmsg(l->sock, m, NNG_FLAG_NONBLOCK);
    if (rv == 0)
        return 0;
    nng_msg_free(m);
    if (rv == NNG_EAGAIN && !l->polling) {
        int urv = uv_poll_start(&l->poll, UV_READABLE, on_writable);
        if (urv < 0)
            return urv;
        l->polling = true;
    }
    return bus__errno(rv);
}

bool bus_link_connected(const bus_link *l)
{
    return __atomic_load_n(&l->pipes, __ATOMIC_RELAXED) > 0;
}

uint64_t bus_link_connects(const bus_link *l)
{
    return __atomic_load_n(&l->connects, __ATOMIC_RELAXED);
}

static void on_poll_closed(uv_handle_t *h)
{
    bus_link *l = h->data;
    void (*cb)(void *) = l->closed;
    void *data = l->closed_data;

    base_free(l);
    if (cb != NULL)
        cb(data);
}

void bus_link_close(bus_link *l, void (*closed)(void *data), void *data)
{
    l->closed = closed;
    l->closed_data = data;
    /* uv_close takes the descriptor out of the loop at once, so the socket
     * (which owns it) may go before the close callback */
    uv_close((uv_handle_t *)&l->poll, on_poll_closed);
    nng_close(l->sock);
}
