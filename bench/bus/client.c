/*
 * bench_bus_client: an external publisher and subscriber in one process,
 * measuring throughput (events arriving at the subscriber per second) or
 * latency (publish -> arrival at a paced rate) through a broker:
 *  - nng:  push0 -> ipc://DIR/publish.ipc, sub0 <- ipc://DIR/events.ipc
 *          (herdd, or bench_bus_forwarder listening in DIR);
 *  - mqtt: MQTT 3.1.1 over TCP, QoS 0 (mosquitto), raw protocol;
 *  - nats: the NATS text protocol over TCP (nats-server), raw protocol.
 *
 * Design notes:
 * - The subscriber runs on the main thread: poll(2) on a descriptor
 *   (NNG_OPT_RECVFD for sub0, the TCP socket otherwise), then non-blocking
 *   receives. sub0 never gets a receive timeout (nng 1.5.2 #1523/#1682).
 * - The publisher runs on its own thread, started only after the
 *   subscription is known to be live: herdd's status must show a remote
 *   subscriber (--status), and, for every broker, warm-up events are sent
 *   until one arrives. Warm-up events carry "k":"w" and are never counted.
 * - What is counted is what arrives, not what was sent: pub0 drops when a
 *   subscriber's queue is full, so sent and received are both reported.
 *   Throughput time runs from the first measured send to the last arrival.
 * - Latency: the sender follows an absolute schedule (clock_nanosleep to
 *   t0 + i/rate; late sends go at once, no coordinated omission) and stamps
 *   CLOCK_MONOTONIC nanoseconds into the payload just before sending.
 * - TCP publishers are pipelined: frames accumulate in a 64 KiB buffer,
 *   written when full (throughput) or after each event (latency).
 *
 * Usage:
 *   bench_bus_client --proto nng --dir DIR [--status] [options]
 *   bench_bus_client --proto mqtt|nats --port PORT [options]
 *   bench_bus_client --free-port
 * options: --mode tput|lat  --count N (tput)  --rate R --secs S (lat)
 *          --size BYTES (100)  --label NAME
 *          --pid PID: also report that broker's CPU time over the run
 * Prints one line starting with RUN, key=value pairs.
 */
#include "bus/bus.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/pipeline0/push.h>
#include <nng/protocol/pubsub0/sub.h>

#define TOPIC "bench.bus.event"
#define WBUF_BYTES (64 * 1024)
#define RBUF_BYTES (1024 * 1024)
#define IDLE_END_MS 300
#define RUN_LIMIT_S 120

enum proto { P_NNG, P_MQTT, P_NATS };
enum mode { M_TPUT, M_LAT };

/* ---- time and payload -------------------------------------------------- */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void put_digits(char *p, size_t width, uint64_t v)
{
    for (size_t i = width; i > 0; i--) {
        p[i - 1] = (char)('0' + v % 10);
        v /= 10;
    }
}

static uint64_t get_digits(const char *p, size_t width)
{
    uint64_t v = 0;
    for (size_t i = 0; i < width; i++)
        v = v * 10 + (uint64_t)(p[i] - '0');
    return v;
}

/* The payload: one JSON object of exactly `size` bytes,
 * {"k":"m","seq":"0000000000","ts":"00000000000000000000","pad":"xxx"} */
static char *tmpl;
static size_t tmpl_len, k_off, seq_off, ts_off;

static int make_template(size_t size)
{
    const char *head = "{\"k\":\"m\",\"seq\":\"0000000000\",\"ts\":\"00000000000000000000\","
                       "\"pad\":\"";
    size_t hl = strlen(head);

    if (size < hl + 2)
        size = hl + 2;
    tmpl = malloc(size + 1);
    if (tmpl == NULL)
        return -1;
    memcpy(tmpl, head, hl);
    memset(tmpl + hl, 'x', size - hl - 2);
    memcpy(tmpl + size - 2, "\"}", 3);
    tmpl_len = size;
    k_off = (size_t)(strstr(tmpl, "\"k\":\"") - tmpl) + 5;
    seq_off = (size_t)(strstr(tmpl, "\"seq\":\"") - tmpl) + 7;
    ts_off = (size_t)(strstr(tmpl, "\"ts\":\"") - tmpl) + 6;
    return 0;
}

/* ---- transports -------------------------------------------------------- */

struct transport {
    enum proto proto;
    nng_socket push, sub;
    int pub_fd, sub_fd; /* TCP sockets; sub_fd is also the nng RECVFD */
    char *wbuf;
    size_t wlen;
    char *rbuf;
    size_t rlen;
};

typedef void (*msg_cb)(const char *payload, size_t len);

static int write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) {
                struct pollfd pfd = {.fd = fd, .events = POLLOUT};
                poll(&pfd, 1, 100);
                continue;
            }
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int tcp_connect(int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    uint64_t deadline = now_ns() + 10ull * 1000000000u;
    int one = 1;

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (;;) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return -1;
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
            return fd;
        }
        close(fd);
        if (now_ns() > deadline)
            return -1;
        usleep(20000);
    }
}

/* read_until reads from a blocking fd into buf until pred says done. */
static int read_until(int fd, char *buf, size_t cap, size_t *len,
                      int (*pred)(const char *buf, size_t len), int timeout_ms)
{
    uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000u;
    while (!pred(buf, *len)) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int left = (int)((deadline - now_ns()) / 1000000u);
        if (now_ns() >= deadline || poll(&pfd, 1, left > 0 ? left : 1) <= 0)
            return -1;
        ssize_t n = read(fd, buf + *len, cap - *len - 1);
        if (n <= 0)
            return -1;
        *len += (size_t)n;
        buf[*len] = '\0';
    }
    return 0;
}

/* MQTT 3.1.1 */

static size_t mqtt_varint(unsigned char *p, size_t v)
{
    size_t n = 0;
    do {
        unsigned char b = (unsigned char)(v % 128);
        v /= 128;
        if (v)
            b |= 0x80;
        p[n++] = b;
    } while (v);
    return n;
}

static int have4(const char *buf, size_t len)
{
    return len >= 4;
}

static int have5(const char *buf, size_t len)
{
    return len >= 5;
}

static int mqtt_connect(int port, const char *client_id)
{
    unsigned char pkt[128];
    char in[64] = "";
    size_t idl = strlen(client_id), n = 0, len = 0;
    int fd = tcp_connect(port);

    if (fd < 0)
        return -1;
    pkt[n++] = 0x10;
    n += mqtt_varint(pkt + n, 10 + 2 + idl);
    memcpy(pkt + n, "\0\4MQTT\4\2\0\0", 10); /* level 4, clean session, no keepalive */
    n += 10;
    pkt[n++] = 0;
    pkt[n++] = (unsigned char)idl;
    memcpy(pkt + n, client_id, idl);
    n += idl;
    if (write_all(fd, pkt, n) < 0 || read_until(fd, in, sizeof(in), &len, have4, 5000) < 0 ||
        (unsigned char)in[0] != 0x20 || in[3] != 0) {
        fprintf(stderr, "bench_bus_client: mqtt: CONNECT refused\n");
        close(fd);
        return -1;
    }
    return fd;
}

static int mqtt_open(struct transport *t, int port)
{
    unsigned char pkt[128];
    char in[64] = "";
    size_t tl = strlen(TOPIC), n = 0, len = 0;

    t->pub_fd = mqtt_connect(port, "herd-bench-pub");
    t->sub_fd = mqtt_connect(port, "herd-bench-sub");
    if (t->pub_fd < 0 || t->sub_fd < 0)
        return -1;
    pkt[n++] = 0x82;
    n += mqtt_varint(pkt + n, 2 + 2 + tl + 1);
    pkt[n++] = 0;
    pkt[n++] = 1; /* packet id */
    pkt[n++] = 0;
    pkt[n++] = (unsigned char)tl;
    memcpy(pkt + n, TOPIC, tl);
    n += tl;
    pkt[n++] = 0; /* QoS 0 */
    if (write_all(t->sub_fd, pkt, n) < 0 ||
        read_until(t->sub_fd, in, sizeof(in), &len, have5, 5000) < 0 ||
        (unsigned char)in[0] != 0x90 || (unsigned char)in[4] == 0x80) {
        fprintf(stderr, "bench_bus_client: mqtt: SUBSCRIBE refused\n");
        return -1;
    }
    return 0;
}

static void mqtt_append(struct transport *t, const char *payload, size_t len)
{
    unsigned char *p = (unsigned char *)t->wbuf + t->wlen;
    size_t tl = strlen(TOPIC), n = 0;

    p[n++] = 0x30;
    n += mqtt_varint(p + n, 2 + tl + len);
    p[n++] = (unsigned char)(tl >> 8);
    p[n++] = (unsigned char)tl;
    memcpy(p + n, TOPIC, tl);
    n += tl;
    memcpy(p + n, payload, len);
    t->wlen += n + len;
}

/* mqtt_parse hands out every complete PUBLISH in rbuf; returns bytes used. */
static size_t mqtt_parse(struct transport *t, msg_cb cb, int *n_msgs)
{
    const unsigned char *b = (const unsigned char *)t->rbuf;
    size_t off = 0;

    while (t->rlen - off >= 2) {
        size_t rem = 0, mul = 1, i = off + 1;
        int complete = 0;
        while (i < t->rlen && i < off + 5) {
            rem += (b[i] & 0x7f) * mul;
            mul *= 128;
            if (!(b[i++] & 0x80)) {
                complete = 1;
                break;
            }
        }
        if (!complete || t->rlen - i < rem)
            break;
        if ((b[off] >> 4) == 3 && rem >= 2) {
            size_t tl = ((size_t)b[i] << 8) | b[i + 1];
            size_t skip = 2 + tl + (((b[off] >> 1) & 3) ? 2 : 0);
            if (skip <= rem) {
                cb(t->rbuf + i + skip, rem - skip);
                (*n_msgs)++;
            }
        }
        off = i + rem;
    }
    return off;
}

/* NATS */

static int have_line(const char *buf, size_t len)
{
    return strstr(buf, "\r\n") != NULL;
}

static int have_pong(const char *buf, size_t len)
{
    return strstr(buf, "PONG\r\n") != NULL || strstr(buf, "-ERR") != NULL;
}

static int nats_connect(int port, const char *extra)
{
    char in[8192] = "", out[512];
    size_t len = 0;
    int fd = tcp_connect(port);

    if (fd < 0)
        return -1;
    if (read_until(fd, in, sizeof(in), &len, have_line, 5000) < 0 || strncmp(in, "INFO", 4) != 0)
        goto fail;
    snprintf(out, sizeof(out),
             "CONNECT {\"verbose\":false,\"pedantic\":false,\"name\":\"herd-bench\"}\r\n%sPING\r\n",
             extra);
    len = 0;
    in[0] = '\0';
    if (write_all(fd, out, strlen(out)) < 0 ||
        read_until(fd, in, sizeof(in), &len, have_pong, 5000) < 0 || strstr(in, "-ERR") != NULL)
        goto fail;
    return fd;
fail:
    fprintf(stderr, "bench_bus_client: nats: handshake failed\n");
    close(fd);
    return -1;
}

static int nats_open(struct transport *t, int port)
{
    t->pub_fd = nats_connect(port, "");
    t->sub_fd = nats_connect(port, "SUB " TOPIC " 1\r\n");
    return t->pub_fd < 0 || t->sub_fd < 0 ? -1 : 0;
}

static void nats_append(struct transport *t, const char *payload, size_t len)
{
    int n = snprintf(t->wbuf + t->wlen, WBUF_BYTES - t->wlen, "PUB " TOPIC " %zu\r\n", len);
    t->wlen += (size_t)n;
    memcpy(t->wbuf + t->wlen, payload, len);
    t->wlen += len;
    memcpy(t->wbuf + t->wlen, "\r\n", 2);
    t->wlen += 2;
}

static size_t nats_parse(struct transport *t, msg_cb cb, int *n_msgs, int *err)
{
    size_t off = 0;

    for (;;) {
        char *line = t->rbuf + off;
        char *eol = memmem(line, t->rlen - off, "\r\n", 2);
        if (eol == NULL)
            break;
        if (strncmp(line, "MSG ", 4) == 0) {
            char *sp = eol;
            while (sp > line && sp[-1] != ' ')
                sp--;
            size_t size = strtoul(sp, NULL, 10);
            size_t end = (size_t)(eol - t->rbuf) + 2 + size + 2;
            if (end > t->rlen)
                break;
            cb(eol + 2, size);
            (*n_msgs)++;
            off = end;
            continue;
        }
        if (strncmp(line, "PING", 4) == 0)
            write_all(t->sub_fd, "PONG\r\n", 6);
        else if (strncmp(line, "-ERR", 4) == 0) {
            fprintf(stderr, "bench_bus_client: nats: %.*s\n", (int)(eol - line), line);
            *err = 1;
        }
        off = (size_t)(eol - t->rbuf) + 2;
    }
    return off;
}

/* nng */

static int nng_open_tp(struct transport *t, const char *dir)
{
    char url[PATH_MAX + 32];
    int rv;

    if ((rv = nng_push0_open(&t->push)) != 0 || (rv = nng_sub0_open(&t->sub)) != 0)
        goto fail;
    nng_socket_set_size(t->push, NNG_OPT_RECVMAXSZ, 2u * 1024 * 1024);
    nng_socket_set_size(t->sub, NNG_OPT_RECVMAXSZ, 2u * 1024 * 1024);
    /* A deep subscriber queue, so what pub0 drops is herdd's (or the
     * forwarder's) per-peer SENDBUF overflowing, not ours. 8192 is nng's
     * maximum. */
    if (nng_socket_set_int(t->sub, NNG_OPT_RECVBUF, 8192) != 0)
        nng_socket_set_int(t->sub, NNG_OPT_RECVBUF, 1024);
    if ((rv = nng_socket_set(t->sub, NNG_OPT_SUB_SUBSCRIBE, "bench.", 6)) != 0)
        goto fail;
    snprintf(url, sizeof(url), "ipc://%s/events.ipc", dir);
    if ((rv = nng_dial(t->sub, url, NULL, NNG_FLAG_NONBLOCK)) != 0)
        goto fail;
    snprintf(url, sizeof(url), "ipc://%s/publish.ipc", dir);
    if ((rv = nng_dial(t->push, url, NULL, NNG_FLAG_NONBLOCK)) != 0)
        goto fail;
    if ((rv = nng_socket_get_int(t->sub, NNG_OPT_RECVFD, &t->sub_fd)) != 0)
        goto fail;
    return 0;
fail:
    fprintf(stderr, "bench_bus_client: nng: %s\n", nng_strerror(rv));
    return -1;
}

static int tp_open(struct transport *t, const char *dir, int port)
{
    t->wbuf = malloc(WBUF_BYTES);
    t->rbuf = malloc(RBUF_BYTES + 1);
    if (t->wbuf == NULL || t->rbuf == NULL)
        return -1;
    switch (t->proto) {
    case P_NNG:
        return nng_open_tp(t, dir);
    case P_MQTT:
        return mqtt_open(t, port);
    default:
        return nats_open(t, port);
    }
}

static int tp_flush(struct transport *t)
{
    if (t->proto == P_NNG || t->wlen == 0)
        return 0;
    int rv = write_all(t->pub_fd, t->wbuf, t->wlen);
    t->wlen = 0;
    return rv;
}

/* tp_send publishes one event; TCP ones are buffered unless flush. */
static int tp_send(struct transport *t, const char *payload, size_t len, int flush)
{
    if (t->proto == P_NNG) {
        size_t tl = strlen(TOPIC);
        nng_msg *m;
        if (nng_msg_alloc(&m, tl + 1 + len) != 0)
            return -1;
        char *body = nng_msg_body(m);
        memcpy(body, TOPIC, tl + 1);
        memcpy(body + tl + 1, payload, len);
        if (nng_sendmsg(t->push, m, 0) != 0) {
            nng_msg_free(m);
            return -1;
        }
        return 0;
    }
    if (t->wlen + len + 64 + strlen(TOPIC) > WBUF_BYTES && tp_flush(t) < 0)
        return -1;
    if (t->proto == P_MQTT)
        mqtt_append(t, payload, len);
    else
        nats_append(t, payload, len);
    return flush ? tp_flush(t) : 0;
}

/* tp_drain hands out what has arrived, without blocking. Returns the number
 * of events, or -1 when the connection is gone or refused us. */
static int tp_drain(struct transport *t, msg_cb cb)
{
    int n_msgs = 0;

    if (t->proto == P_NNG) {
        for (int i = 0; i < 4096; i++) {
            nng_msg *m;
            if (nng_recvmsg(t->sub, &m, NNG_FLAG_NONBLOCK) != 0)
                break;
            const char *body = nng_msg_body(m);
            size_t len = nng_msg_len(m);
            const char *nul = memchr(body, '\0', len);
            if (nul != NULL) {
                cb(nul + 1, len - (size_t)(nul + 1 - body));
                n_msgs++;
            }
            nng_msg_free(m);
        }
        return n_msgs;
    }
    for (int i = 0; i < 64; i++) {
        ssize_t n = recv(t->sub_fd, t->rbuf + t->rlen, RBUF_BYTES - t->rlen, MSG_DONTWAIT);
        if (n == 0)
            return -1;
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                break;
            return -1;
        }
        t->rlen += (size_t)n;
        t->rbuf[t->rlen] = '\0';
        int err = 0;
        size_t used =
            t->proto == P_MQTT ? mqtt_parse(t, cb, &n_msgs) : nats_parse(t, cb, &n_msgs, &err);
        memmove(t->rbuf, t->rbuf + used, t->rlen - used);
        t->rlen -= used;
        if (err)
            return -1;
    }
    return n_msgs;
}

/* ---- measurement ------------------------------------------------------- */

static struct {
    enum mode mode;
    uint64_t count; /* measured events received */
    uint64_t warm;  /* warm-up events received */
    uint64_t *lat;  /* latency samples, ns */
    uint64_t lat_cap;
} rx;

static void on_msg(const char *payload, size_t len)
{
    if (len != tmpl_len)
        return;
    if (payload[k_off] == 'w') {
        rx.warm++;
        return;
    }
    if (rx.mode == M_LAT && rx.count < rx.lat_cap) {
        uint64_t ts = get_digits(payload + ts_off, 20);
        rx.lat[rx.count] = now_ns() - ts;
    }
    rx.count++;
}

struct sender {
    struct transport *t;
    enum mode mode;
    uint64_t n;
    double rate;
    uint64_t t0, t_end, sent;
    atomic_int done;
    int failed;
};

static void *sender_main(void *arg)
{
    struct sender *s = arg;
    char *p = malloc(tmpl_len + 1);
    uint64_t interval = s->mode == M_LAT ? (uint64_t)(1e9 / s->rate) : 0;

    if (p == NULL) {
        s->failed = 1;
        atomic_store(&s->done, 1);
        return NULL;
    }
    memcpy(p, tmpl, tmpl_len + 1);
    s->t0 = now_ns();
    for (uint64_t i = 0; i < s->n; i++) {
        if (interval) {
            uint64_t at = s->t0 + i * interval;
            struct timespec ts = {.tv_sec = (time_t)(at / 1000000000u),
                                  .tv_nsec = (long)(at % 1000000000u)};
            while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
                ;
        }
        put_digits(p + seq_off, 10, i);
        put_digits(p + ts_off, 20, now_ns());
        if (tp_send(s->t, p, tmpl_len, interval != 0) < 0) {
            s->failed = 1;
            break;
        }
        s->sent++;
    }
    if (tp_flush(s->t) < 0)
        s->failed = 1;
    s->t_end = now_ns();
    atomic_store(&s->done, 1);
    free(p);
    return NULL;
}

/* herdd's subscriber count from its status reply, or -1. */
static int herdd_bus_counter(bus_client *c, const char *name, json_int_t *out)
{
    json_t *reply = NULL;
    int rv = bus_client_request(c, "supervisor", "status", NULL, 1000, &reply);
    if (rv < 0)
        return rv;
    json_t *v = json_object_get(
        json_object_get(json_object_get(json_object_get(reply, "result"), "supervisor"), "bus"),
        name);
    rv = json_is_integer(v) ? 0 : -ENOENT;
    if (rv == 0)
        *out = json_integer_value(v);
    json_decref(reply);
    return rv;
}

static int wait_remote_subscriber(const char *dir, uint64_t *waited_ms)
{
    bus_client *c;
    uint64_t start = now_ns();
    json_int_t n = 0;
    int rv = -ETIMEDOUT;

    if (bus_client_new(dir, &c) < 0)
        return -ENOMEM;
    while (now_ns() - start < 10ull * 1000000000u) {
        rv = herdd_bus_counter(c, "remote_subscribers", &n);
        if (rv == 0 && n >= 1)
            break;
        if (rv == -ENOENT)
            break; /* status without the counter: rely on the warm-up */
        rv = -ETIMEDOUT;
        usleep(10000);
    }
    bus_client_free(c);
    *waited_ms = (now_ns() - start) / 1000000u;
    return rv;
}

static int herdd_counters(const char *dir, json_int_t *in, json_int_t *out, json_int_t *dropped)
{
    bus_client *c;
    json_t *reply = NULL;
    int rv;

    if (bus_client_new(dir, &c) < 0)
        return -ENOMEM;
    rv = bus_client_request(c, "supervisor", "status", NULL, 2000, &reply);
    if (rv == 0) {
        json_t *b =
            json_object_get(json_object_get(json_object_get(reply, "result"), "supervisor"), "bus");
        *in = json_integer_value(json_object_get(b, "remote_in"));
        *out = json_integer_value(json_object_get(b, "remote_out"));
        *dropped = 0;
        const char *k;
        json_t *v;
        json_object_foreach(json_object_get(b, "dropped"), k, v) *dropped += json_integer_value(v);
    }
    json_decref(reply);
    bus_client_free(c);
    return rv;
}

static int warm_up(struct transport *t)
{
    uint64_t start = now_ns();
    char *p = malloc(tmpl_len + 1);

    if (p == NULL)
        return -1;
    memcpy(p, tmpl, tmpl_len + 1);
    p[k_off] = 'w';
    while (rx.warm == 0 && now_ns() - start < 10ull * 1000000000u) {
        if (tp_send(t, p, tmpl_len, 1) < 0)
            break;
        struct pollfd pfd = {.fd = t->sub_fd, .events = POLLIN};
        if (poll(&pfd, 1, 20) > 0 && tp_drain(t, on_msg) < 0)
            break;
    }
    free(p);
    /* Let stragglers of the warm-up pass before measuring. */
    uint64_t quiet = now_ns();
    while (rx.warm > 0 && now_ns() - quiet < 50000000u) {
        struct pollfd pfd = {.fd = t->sub_fd, .events = POLLIN};
        if (poll(&pfd, 1, 10) > 0)
            tp_drain(t, on_msg);
    }
    return rx.warm > 0 ? 0 : -1;
}

/* cpu_ticks is a process's user + system time in clock ticks, or -1. */
static long long cpu_ticks(int pid)
{
    char path[64], buf[1024];
    unsigned long long ut = 0, st = 0;
    FILE *f;
    size_t n;

    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    if ((f = fopen(path, "r")) == NULL)
        return -1;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* Fields after the command name, which may hold spaces: state is the
     * 3rd field, utime the 14th and stime the 15th. */
    char *p = strrchr(buf, ')');
    if (p == NULL ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (long long)(ut + st);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct_us(const uint64_t *v, uint64_t n, double p)
{
    if (n == 0)
        return 0;
    uint64_t i = (uint64_t)(p * (double)n);
    if (i >= n)
        i = n - 1;
    return (double)v[i] / 1000.0;
}

static int free_port(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
        return 1;
    printf("%d\n", ntohs(sa.sin_port));
    close(fd);
    return 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: bench_bus_client --proto nng --dir DIR [--status] | --proto mqtt|nats "
                    "--port PORT\n"
                    "       [--mode tput|lat] [--count N] [--rate R] [--secs S] [--size BYTES] "
                    "[--label NAME] [--pid PID]\n"
                    "       bench_bus_client --free-port\n");
    exit(2);
}

int main(int argc, char **argv)
{
    struct transport t = {.proto = P_NNG, .pub_fd = -1, .sub_fd = -1};
    struct sender s = {0};
    const char *dir = NULL, *label = "nng";
    int port = 0, status = 0, server_pid = 0;
    uint64_t count = 200000, waited_ms = 0;
    double rate = 10000, secs = 2;
    size_t size = 100;
    json_int_t in0 = 0, out0 = 0, drop0 = 0, in1 = 0, out1 = 0, drop1 = 0;
    int have_counters = 0;

    rx.mode = M_TPUT;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--free-port") == 0)
            return free_port();
        if (strcmp(a, "--status") == 0) {
            status = 1;
            continue;
        }
        if (v == NULL)
            usage();
        i++;
        if (strcmp(a, "--proto") == 0)
            t.proto = strcmp(v, "mqtt") == 0 ? P_MQTT : strcmp(v, "nats") == 0 ? P_NATS : P_NNG;
        else if (strcmp(a, "--dir") == 0)
            dir = v;
        else if (strcmp(a, "--port") == 0)
            port = atoi(v);
        else if (strcmp(a, "--pid") == 0)
            server_pid = atoi(v);
        else if (strcmp(a, "--mode") == 0)
            rx.mode = strcmp(v, "lat") == 0 ? M_LAT : M_TPUT;
        else if (strcmp(a, "--count") == 0)
            count = strtoull(v, NULL, 10);
        else if (strcmp(a, "--rate") == 0)
            rate = atof(v);
        else if (strcmp(a, "--secs") == 0)
            secs = atof(v);
        else if (strcmp(a, "--size") == 0)
            size = strtoul(v, NULL, 10);
        else if (strcmp(a, "--label") == 0)
            label = v;
        else
            usage();
    }
    if ((t.proto == P_NNG && dir == NULL) || (t.proto != P_NNG && port <= 0) || rate <= 0)
        usage();
    if (make_template(size) < 0 || tp_open(&t, dir, port) < 0)
        return 1;

    if (status) {
        int rv = wait_remote_subscriber(dir, &waited_ms);
        if (rv == -ENOENT)
            fprintf(stderr, "bench_bus_client: status has no bus.remote_subscribers\n");
        else if (rv < 0)
            fprintf(stderr,
                    "bench_bus_client: no remote subscriber in status after %" PRIu64 " ms (%s)\n",
                    waited_ms, strerror(-rv));
    }
    if (warm_up(&t) < 0) {
        fprintf(stderr, "bench_bus_client: %s: no warm-up event arrived in 10 s\n", label);
        return 1;
    }
    if (status && herdd_counters(dir, &in0, &out0, &drop0) == 0)
        have_counters = 1;

    s.t = &t;
    s.mode = rx.mode;
    s.rate = rate;
    s.n = rx.mode == M_LAT ? (uint64_t)(rate * secs) : count;
    if (rx.mode == M_LAT) {
        rx.lat_cap = s.n;
        rx.lat = calloc(s.n ? s.n : 1, sizeof(*rx.lat));
        if (rx.lat == NULL)
            return 1;
    }
    rx.count = 0;
    long long ticks0 = server_pid > 0 ? cpu_ticks(server_pid) : -1;
    pthread_t th;
    uint64_t start = now_ns(), last_rx = start, last_activity = start;
    if (pthread_create(&th, NULL, sender_main, &s) != 0)
        return 1;
    int lost = 0;
    for (;;) {
        struct pollfd pfd = {.fd = t.sub_fd, .events = POLLIN};
        int r = poll(&pfd, 1, 50);
        uint64_t now = now_ns();
        if (r > 0) {
            uint64_t before = rx.count;
            if (tp_drain(&t, on_msg) < 0) {
                fprintf(stderr, "bench_bus_client: %s: subscriber connection lost\n", label);
                lost = 1;
                break;
            }
            now = now_ns();
            if (rx.count != before)
                last_rx = last_activity = now;
        }
        if (rx.count >= s.n)
            break;
        if (atomic_load(&s.done) && now - last_activity > IDLE_END_MS * 1000000ull &&
            now - s.t_end > IDLE_END_MS * 1000000ull)
            break;
        if (now - start > RUN_LIMIT_S * 1000000000ull) {
            fprintf(stderr, "bench_bus_client: %s: run limit reached\n", label);
            if (!atomic_load(&s.done))
                _exit(1); /* a sender blocked on a dead broker */
            break;
        }
    }
    pthread_join(th, NULL);
    long long ticks1 = ticks0 >= 0 ? cpu_ticks(server_pid) : -1;
    if (status && have_counters && herdd_counters(dir, &in1, &out1, &drop1) != 0)
        have_counters = 0;

    if (rx.mode == M_TPUT) {
        double sec = (double)(last_rx - s.t0) / 1e9;
        double ssec = (double)(s.t_end - s.t0) / 1e9;
        printf("RUN label=%s mode=tput sent=%" PRIu64 " received=%" PRIu64 " secs=%.6f "
               "rate=%.0f send_rate=%.0f loss_pct=%.2f",
               label, s.sent, rx.count, sec, sec > 0 ? (double)rx.count / sec : 0.0,
               ssec > 0 ? (double)s.sent / ssec : 0.0,
               s.sent ? 100.0 * (double)(s.sent - (rx.count < s.sent ? rx.count : s.sent)) /
                            (double)s.sent
                      : 0.0);
    } else {
        uint64_t n = rx.count < rx.lat_cap ? rx.count : rx.lat_cap;
        qsort(rx.lat, n, sizeof(*rx.lat), cmp_u64);
        printf("RUN label=%s mode=lat rate_target=%.0f sent=%" PRIu64 " received=%" PRIu64
               " p50_us=%.1f p90_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f",
               label, rate, s.sent, rx.count, pct_us(rx.lat, n, 0.50), pct_us(rx.lat, n, 0.90),
               pct_us(rx.lat, n, 0.99), pct_us(rx.lat, n, 0.999),
               n ? (double)rx.lat[n - 1] / 1000.0 : 0.0);
    }
    if (ticks0 >= 0 && ticks1 >= ticks0 && s.sent > 0) {
        /* The broker's CPU time over the measurement, per event sent. */
        double cpu_s = (double)(ticks1 - ticks0) / (double)sysconf(_SC_CLK_TCK);
        printf(" server_cpu_s=%.2f server_cpu_us_per_event=%.2f", cpu_s,
               cpu_s * 1e6 / (double)s.sent);
    }
    if (status)
        printf(" status_wait_ms=%" PRIu64, waited_ms);
    if (have_counters)
        printf(" herdd_in=%lld herdd_out=%lld herdd_dropped=%lld", (long long)(in1 - in0),
               (long long)(out1 - out0), (long long)(drop1 - drop0));
    printf("\n");
    fflush(stdout);
    /* Exit without closing sockets: the broker sees a plain disconnect. */
    return lost || s.failed || rx.count == 0 ? 1 : 0;
}
