/*
 * The HTTP/1.1 server on the loop: libuv TCP, libhttp-parser, GET and HEAD
 * only, keep-alive, bounded in connections, head size, time and unsent
 * bytes. The routes are a table given at open (http_api.c has herdd's).
 *
 * Design notes:
 * - One request at a time per connection. Once a request's head is parsed
 *   the parser is paused and the connection stops reading until the
 *   response is written; bytes a client sent ahead (pipelining) wait in
 *   `ahead` (at most one read's worth) and are parsed next. So a client that
 *   does not read its responses holds at most one response, and the write
 *   timeout closes it.
 * - The read buffer is the server's, shared by every connection: libuv calls
 *   alloc_cb and read_cb back to back for one stream on the loop thread, and
 *   the parser's callbacks copy out what is kept (the target). A connection
 *   costs its struct, its target while a request is parsed, and one
 *   response in flight.
 * - Phases, each with the one timer: HEAD (the head must be in within
 *   head_timeout_ms of the connection, or of a keep-alive request's first
 *   byte), IDLE (keep-alive, idle_timeout_ms until the next request),
 *   HANDLE and WRITE (write_timeout_ms until the response is written),
 *   STREAM (no timer: bounded by max_stream_queue_bytes; input is read and
 *   discarded so a client that goes away is seen at once), LINGER (after a
 *   response that ends the connection: FIN sent, input discarded for up to
 *   LINGER_MS, so a client that sent more than was read still gets the
 *   response instead of a reset).
 * - A connection is freed once its two handles are closed, its writes and
 *   shutdown have called back and no handler holds it (conn_maybe_free);
 *   never from inside its own callbacks.
 * - Every byte a connection allocates is charged to the server's account
 *   (a base_mem slot), switched to in each callback and in each respond
 *   (a handler may have called into a worker, which switches accounts).
 */
#include "supervisor/internal.h"

#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <http_parser.h>

#define READ_BUFFER_BYTES (16u * 1024)
#define LINGER_MS 2000
#define LISTEN_BACKLOG 128
/* Connections over the limit being answered 503 at once; beyond these a
 * new one is closed unanswered. */
#define MAX_REFUSING 16
/* An event stream's kernel send buffer: small, so a client that stops
 * reading is found out (and cut off) after little has piled up. */
#define STREAM_SNDBUF_BYTES (64 * 1024)
#define STREAM_KEEPALIVE_S 60

const int sup__http_codes[SUP_HTTP_N_CODES] = {200, 400, 404, 405, 408, 413, 431, 500, 503};

enum conn_phase { PH_HEAD, PH_IDLE, PH_HANDLE, PH_WRITE, PH_STREAM, PH_LINGER };

struct sup_http {
    uv_loop_t *loop;
    uv_tcp_t listener;
    sup_http_limits lim;
    const sup_http_route *routes;
    void *data;
    struct sockaddr_storage addr;
    uint32_t slot;
    base_list conns;     /* open (not closing) connections served, oldest first */
    size_t n_alive;      /* connections not yet freed */
    base_list refusing;  /* connections over the limit being answered 503 */
    size_t unsent_bytes; /* in http_out blocks not yet called back */
    sup_http_stats stats;
    bool closing, listener_open;
    void (*closed)(void *data);
    void *closed_data;
    char rbuf[READ_BUFFER_BYTES];
};

struct sup_http_req {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_shutdown_t shutdown;
    http_parser parser;
    sup_http *srv;
    base_list_node node;
    enum conn_phase phase;
    base_buf target; /* the request target as received */
    char *path;      /* in target, NUL-terminated, once parsed */
    const char *query;
    char *ahead; /* bytes received beyond the request being answered */
    size_t ahead_len;
    int reject;        /* a status to answer instead of routing */
    bool head_method;  /* HEAD: no body */
    bool keep_alive;   /* the connection stays open after the response */
    bool request_done; /* the head of a request is complete */
    bool answered;     /* this request has its response */
    bool closing;      /* uv_close called */
    bool refusing;     /* over the limit: in srv->refusing, answered 503 */
    bool shutdown_pending;
    int handles_open;
    int holds;
    int writes_pending;
    void (*on_stream_close)(sup_http_req *r, void *data);
    void *stream_data;
};

/* One write: a head (or a stream's bytes) in place, and an owned body. */
typedef struct http_out {
    uv_write_t req;
    sup_http_req *conn;
    char *body; /* base_free'd after the write; NULL for none */
    size_t body_len;
    size_t len;
    char bytes[];
} http_out;

static void conn_close(sup_http_req *c);
static void conn_feed(sup_http_req *c, const char *data, size_t len);

static int code_index(int status)
{
    for (int i = 0; i < SUP_HTTP_N_CODES; i++)
        if (sup__http_codes[i] == status)
            return i;
    return -1;
}

static const char *reason_phrase(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 413:
        return "Content Too Large";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    default:
        return http_status_str((enum http_status)status);
    }
}

/* ---- listen address ------------------------------------------------------ */

int sup__http_parse_listen(const char *listen, struct sockaddr_storage *addr, char *err,
                           size_t err_size)
{
    char host[128];
    const char *colon = strrchr(listen, ':');
    char *end;
    long port;
    size_t hlen;

    memset(addr, 0, sizeof(*addr));
    if (colon == NULL || colon == listen)
        return base_errf(err, err_size, "http.listen \"%.100s\": expected HOST:PORT", listen);
    port = strtol(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || port < 1 || port > 65535)
        return base_errf(err, err_size, "http.listen \"%.100s\": expected a port from 1 to 65535",
                         listen);
    hlen = (size_t)(colon - listen);
    if (listen[0] == '[') {
        if (hlen < 3 || listen[hlen - 1] != ']')
            return base_errf(err, err_size, "http.listen \"%.100s\": expected [IPv6]:PORT", listen);
        listen++;
        hlen -= 2;
    }
    if (hlen >= sizeof(host))
        return base_errf(err, err_size, "http.listen \"%.100s\": host name too long", listen);
    memcpy(host, listen, hlen);
    host[hlen] = '\0';
    if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)addr) == 0 ||
        uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)addr) == 0)
        return 0;
    /* A name: resolved once, at start, before the loop serves anyone. */
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG}, *res;
    int rv = getaddrinfo(host, NULL, &hints, &res);
    if (rv != 0)
        return base_errf(err, err_size, "http.listen: cannot resolve \"%.100s\": %s", host,
                         gai_strerror(rv));
    memcpy(addr, res->ai_addr, res->ai_addrlen);
    if (addr->ss_family == AF_INET)
        ((struct sockaddr_in *)addr)->sin_port = htons((uint16_t)port);
    else
        ((struct sockaddr_in6 *)addr)->sin6_port = htons((uint16_t)port);
    freeaddrinfo(res);
    return 0;
}

void sup__http_address(const sup_http *h, char *buf, size_t size)
{
    char ip[INET6_ADDRSTRLEN] = "";

    if (h->addr.ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&h->addr;
        uv_ip6_name(a, ip, sizeof(ip));
        snprintf(buf, size, "[%s]:%u", ip, ntohs(a->sin6_port));
    } else {
        const struct sockaddr_in *a = (const struct sockaddr_in *)&h->addr;
        uv_ip4_name(a, ip, sizeof(ip));
        snprintf(buf, size, "%s:%u", ip, ntohs(a->sin_port));
    }
}

/* ---- connection lifetime ---------------------------------------------------- */

static void server_maybe_free(sup_http *h)
{
    if (!h->closing || h->listener_open || h->n_alive > 0)
        return;
    void (*cb)(void *) = h->closed;
    void *data = h->closed_data;
    uint32_t slot = h->slot;
    base_free(h);
    base_mem_slot_release(slot);
    base_mem_switch(0); /* the slot is gone; callers switch back after */
    if (cb != NULL)
        cb(data);
}

static void conn_maybe_free(sup_http_req *c)
{
    if (c->handles_open > 0 || c->holds > 0 || c->writes_pending > 0 || c->shutdown_pending)
        return;
    sup_http *h = c->srv;
    base_buf_free(&c->target);
    base_free(c->ahead);
    base_free(c);
    h->n_alive--;
    server_maybe_free(h);
}

static void on_conn_handle_closed(uv_handle_t *handle)
{
    sup_http_req *c = handle->data;
    uint32_t prev = base_mem_switch(c->srv->slot);

    c->handles_open--;
    conn_maybe_free(c);
    base_mem_switch(prev);
}

static void conn_close(sup_http_req *c)
{
    if (c->closing)
        return;
    c->closing = true;
    if (base_list_linked(&c->node))
        base_list_remove(c->refusing ? &c->srv->refusing : &c->srv->conns, &c->node);
    if (c->phase == PH_STREAM) {
        c->srv->stats.streams--;
        void (*cb)(sup_http_req *, void *) = c->on_stream_close;
        c->on_stream_close = NULL;
        if (cb != NULL)
            cb(c, c->stream_data);
    }
    uv_close((uv_handle_t *)&c->tcp, on_conn_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
}

static void on_timer(uv_timer_t *t);

static void phase_timer(sup_http_req *c, enum conn_phase ph, uint64_t ms)
{
    c->phase = ph;
    if (ms > 0)
        uv_timer_start(&c->timer, on_timer, ms, 0);
    else
        uv_timer_stop(&c->timer);
}

/* ---- writing ----------------------------------------------------------------- */

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    sup_http_req *c = handle->data;

    (void)suggested;
    buf->base = c->srv->rbuf;
    buf->len = sizeof(c->srv->rbuf);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

static void on_shutdown(uv_shutdown_t *req, int status)
{
    sup_http_req *c = req->data;
    uint32_t prev = base_mem_switch(c->srv->slot);

    c->shutdown_pending = false;
    if (status < 0)
        conn_close(c);
    conn_maybe_free(c);
    base_mem_switch(prev);
}

/* The response ends the connection: send FIN, read and discard what the
 * client still sends, close on its FIN or after LINGER_MS. */
static void conn_linger(sup_http_req *c)
{
    phase_timer(c, PH_LINGER, LINGER_MS);
    c->shutdown.data = c;
    if (uv_shutdown(&c->shutdown, (uv_stream_t *)&c->tcp, on_shutdown) < 0) {
        conn_close(c);
        return;
    }
    c->shutdown_pending = true;
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0)
        conn_close(c);
}

/* Ready for the next request on a kept-alive connection: parse what was
 * sent ahead, then read. */
static void conn_next_request(sup_http_req *c)
{
    char *ahead = c->ahead;
    size_t len = c->ahead_len;

    base_buf_free(&c->target);
    c->path = NULL;
    c->query = NULL;
    c->request_done = c->answered = false;
    c->reject = 0;
    c->ahead = NULL;
    c->ahead_len = 0;
    phase_timer(c, PH_IDLE, c->srv->lim.idle_timeout_ms);
    http_parser_pause(&c->parser, 0);
    if (ahead != NULL) {
        conn_feed(c, ahead, len);
        base_free(ahead);
        if (c->closing || c->request_done)
            return;
    }
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0)
        conn_close(c);
}

static void on_write(uv_write_t *req, int status)
{
    http_out *out = req->data;
    sup_http_req *c = out->conn;
    uint32_t prev = base_mem_switch(c->srv->slot);

    c->srv->unsent_bytes -= out->len + out->body_len;
    base_free(out->body);
    base_free(out);
    c->writes_pending--;
    if (status < 0) {
        conn_close(c);
    } else if (!c->closing && c->phase == PH_WRITE && c->writes_pending == 0) {
        if (c->keep_alive && !c->srv->closing)
            conn_next_request(c);
        else
            conn_linger(c);
    }
    conn_maybe_free(c);
    base_mem_switch(prev);
}

/* conn_write queues out (taken over). */
static int conn_write(sup_http_req *c, http_out *out)
{
    uv_buf_t bufs[2] = {uv_buf_init(out->bytes, (unsigned)out->len),
                        uv_buf_init(out->body, (unsigned)out->body_len)};
    int rv;

    out->conn = c;
    out->req.data = out;
    rv = uv_write(&out->req, (uv_stream_t *)&c->tcp, bufs, out->body_len > 0 ? 2 : 1, on_write);
    if (rv < 0) {
        base_free(out->body);
        base_free(out);
        conn_close(c);
        return rv;
    }
    c->writes_pending++;
    c->srv->unsent_bytes += out->len + out->body_len;
    return 0;
}

static void format_date(char *buf, size_t size)
{
    time_t now = time(NULL);
    struct tm tm;

    gmtime_r(&now, &tm);
    strftime(buf, size, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

/* out_head makes an http_out holding the response head, with extra
 * (checked header lines, or NULL) after the server's own. len < 0: no
 * Content-Length (a stream). */
static http_out *out_head(sup_http_req *c, int status, const char *content_type, long long len,
                          const char *extra)
{
    char date[64], length[48] = "";
    const char *conn_hdr = "";
    size_t extra_len = extra != NULL ? strlen(extra) : 0, size = 512 + extra_len;
    http_out *out = base_malloc(sizeof(*out) + size);

    if (out == NULL)
        return NULL;
    memset(out, 0, sizeof(*out));
    format_date(date, sizeof(date));
    if (len >= 0)
        snprintf(length, sizeof(length), "Content-Length: %lld\r\n", len);
    if (!c->keep_alive)
        conn_hdr = "Connection: close\r\n";
    else if (c->parser.http_major == 1 && c->parser.http_minor == 0)
        conn_hdr = "Connection: keep-alive\r\n";
    int n = snprintf(out->bytes, size,
                     "HTTP/1.1 %d %s\r\nServer: herd/" HERD_VERSION "\r\nDate: %s\r\n"
                     "Content-Type: %s\r\n%sCache-Control: no-store\r\n%s%s%s\r\n",
                     status, reason_phrase(status), date, content_type, length, conn_hdr,
                     status == 405 ? "Allow: GET, HEAD\r\n" : "", extra != NULL ? extra : "");
    HERD_ASSERT(n > 0 && (size_t)n < size);
    out->len = n > 0 && (size_t)n < size ? (size_t)n : 0;
    return out;
}

/* headers_valid: extra header lines as sup__http_respond_headers takes
 * them, within the bound. */
static bool headers_valid(const char *h)
{
    size_t len = strlen(h);

    if (len > SUP_HTTP_MAX_EXTRA_HEADER_BYTES)
        return false;
    while (*h != '\0') {
        const char *name = h;
        while ((*h >= 'A' && *h <= 'Z') || (*h >= 'a' && *h <= 'z') || (*h >= '0' && *h <= '9') ||
               *h == '-')
            h++;
        if (h == name || *h++ != ':')
            return false;
        while (*h == '\t' || (*h >= 0x20 && *h <= 0x7e))
            h++;
        if (h[0] != '\r' || h[1] != '\n')
            return false;
        h += 2;
    }
    return true;
}

static void count_response(sup_http_req *c, int status)
{
    int i = code_index(status);

    HERD_ASSERT(i >= 0);
    if (i >= 0)
        c->srv->stats.responses[i]++;
}

/* respond_owned answers with body (owned, base_malloc'd; may be NULL) and
 * extra header lines (checked; may be NULL). */
static int respond_owned(sup_http_req *c, int status, const char *content_type, char *body,
                         size_t len, const char *extra)
{
    uint32_t prev = base_mem_switch(c->srv->slot);
    int rv;

    if (c->closing || c->answered || c->phase != PH_HANDLE) {
        base_free(body);
        base_mem_switch(prev);
        return c->closing ? -ENOTCONN : -EALREADY;
    }
    size_t sending = c->head_method ? 0 : len;
    if (c->srv->unsent_bytes + sending > c->srv->lim.max_unsent_bytes && status != 503) {
        /* Clients not reading hold too much already: a small answer. */
        static const char busy[] =
            "{\"error\":{\"code\":\"busy\",\"message\":\"too many responses unsent\"}}\n";
        char *small = base_malloc(sizeof(busy) - 1);
        base_free(body);
        if (small != NULL)
            memcpy(small, busy, sizeof(busy) - 1);
        rv = respond_owned(c, 503, "application/json", small, small != NULL ? sizeof(busy) - 1 : 0,
                           NULL);
        base_mem_switch(prev);
        return rv;
    }
    c->answered = true;
    count_response(c, status);
    http_out *out = out_head(c, status, content_type, (long long)len, extra);
    if (out == NULL) {
        base_free(body);
        conn_close(c);
        base_mem_switch(prev);
        return -ENOMEM;
    }
    if (!c->head_method && len > 0) {
        out->body = body;
        out->body_len = len;
    } else {
        base_free(body);
    }
    phase_timer(c, PH_WRITE, c->srv->lim.write_timeout_ms);
    rv = conn_write(c, out);
    base_mem_switch(prev);
    return rv;
}

int sup__http_respond(sup_http_req *r, int status, const char *content_type, const void *body,
                      size_t len)
{
    return sup__http_respond_headers(r, status, content_type, NULL, body, len);
}

int sup__http_respond_headers(sup_http_req *r, int status, const char *content_type,
                              const char *headers, const void *body, size_t len)
{
    uint32_t prev;
    char *copy = NULL;
    int rv;

    if (headers != NULL && !headers_valid(headers))
        return -EINVAL;
    prev = base_mem_switch(r->srv->slot);
    /* HEAD: GET's Content-Length, no bytes (respond_owned drops them). */
    if (len > 0 && !r->head_method) {
        copy = base_malloc(len);
        if (copy == NULL) {
            base_mem_switch(prev);
            conn_close(r);
            return -ENOMEM;
        }
        memcpy(copy, body, len);
    }
    rv = respond_owned(r, status, content_type, copy, len, headers);
    base_mem_switch(prev);
    return rv;
}

int sup__http_respond_buf(sup_http_req *r, int status, const char *content_type, base_buf *body)
{
    char *data = body->data;
    size_t len = body->len;

    body->data = NULL;
    body->len = body->cap = 0;
    return respond_owned(r, status, content_type, data, len, NULL);
}

int sup__http_respond_json(sup_http_req *r, int status, const json_t *body)
{
    uint32_t prev = base_mem_switch(r->srv->slot);
    char *text = base_json_dumps(body, JSON_COMPACT);
    base_buf b = {0};
    int rv;

    if (text == NULL || base_buf_adds(&b, text) < 0 || base_buf_add(&b, "\n", 1) < 0) {
        free(text);
        base_buf_free(&b);
        base_mem_switch(prev);
        return sup__http_respond(r, 500, "application/json", "{}\n", 3);
    }
    free(text);
    rv = sup__http_respond_buf(r, status, "application/json", &b);
    base_mem_switch(prev);
    return rv;
}

int sup__http_respond_error(sup_http_req *r, int status, const char *code, const char *fmt, ...)
{
    uint32_t prev = base_mem_switch(r->srv->slot);
    char msg[512];
    base_buf b = {0};
    va_list ap;
    int rv;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    /* A message quoting the client (its path) may not be UTF-8. */
    if (!base_utf8_valid(msg, strlen(msg)))
        snprintf(msg, sizeof(msg), "%s", code);
    if (base_buf_adds(&b, "{\"error\":{\"code\":") < 0 ||
        base_buf_json_string(&b, code, strlen(code)) < 0 ||
        base_buf_adds(&b, ",\"message\":") < 0 ||
        base_buf_json_string(&b, msg, strnlen(msg, sizeof(msg))) < 0 ||
        base_buf_adds(&b, "}}\n") < 0) {
        base_buf_free(&b);
        base_mem_switch(prev);
        conn_close(r);
        return -ENOMEM;
    }
    rv = sup__http_respond_buf(r, status, "application/json", &b);
    base_mem_switch(prev);
    return rv;
}

/* ---- streams ----------------------------------------------------------------- */

int sup__http_stream_start(sup_http_req *r, const char *content_type,
                           void (*on_close)(sup_http_req *r, void *data), void *data)
{
    uint32_t prev = base_mem_switch(r->srv->slot);
    sup_http *h = r->srv;
    int rv;

    if (r->closing || r->answered || r->phase != PH_HANDLE) {
        base_mem_switch(prev);
        return r->closing ? -ENOTCONN : -EALREADY;
    }
    if (h->stats.streams >= h->lim.max_streams) {
        base_mem_switch(prev);
        return -EBUSY;
    }
    r->keep_alive = false;
    if (r->head_method) {
        r->answered = true;
        count_response(r, 200);
        http_out *out = out_head(r, 200, content_type, -1, NULL);
        if (out == NULL) {
            conn_close(r);
            base_mem_switch(prev);
            return -ENOMEM;
        }
        phase_timer(r, PH_WRITE, h->lim.write_timeout_ms);
        rv = conn_write(r, out);
        base_mem_switch(prev);
        return rv < 0 ? rv : 1;
    }
    http_out *out = out_head(r, 200, content_type, -1, NULL);
    if (out == NULL) {
        conn_close(r);
        base_mem_switch(prev);
        return -ENOMEM;
    }
    r->answered = true;
    count_response(r, 200);
    phase_timer(r, PH_STREAM, 0);
    h->stats.streams++;
    h->stats.streams_total++;
    int sndbuf = STREAM_SNDBUF_BYTES;
    uv_send_buffer_size((uv_handle_t *)&r->tcp, &sndbuf);
    uv_tcp_keepalive(&r->tcp, 1, STREAM_KEEPALIVE_S);
    /* on_close is set last: a failure here closes without calling it. */
    if ((rv = conn_write(r, out)) < 0) {
        base_mem_switch(prev);
        return rv;
    }
    /* Read on, discarding, to see the client go. */
    if ((rv = uv_read_start((uv_stream_t *)&r->tcp, on_alloc, on_read)) < 0) {
        conn_close(r);
        base_mem_switch(prev);
        return rv;
    }
    r->on_stream_close = on_close;
    r->stream_data = data;
    base_mem_switch(prev);
    return 0;
}

int sup__http_stream_write(sup_http_req *r, const void *data, size_t len)
{
    sup_http *h = r->srv;
    uint32_t prev;
    int rv;

    if (r->closing || r->phase != PH_STREAM)
        return -ENOTCONN;
    size_t queued = uv_stream_get_write_queue_size((uv_stream_t *)&r->tcp);
    /* One event always goes when nothing waits, whatever its size. */
    if (queued > 0 && queued + len > h->lim.max_stream_queue_bytes) {
        h->stats.streams_cut++;
        sup_log(BASE_LOG_WARN, "http",
                "event stream cut off: the client left %zu bytes unread (limit %zu)", queued,
                h->lim.max_stream_queue_bytes);
        conn_close(r);
        return -ENOBUFS;
    }
    prev = base_mem_switch(h->slot);
    http_out *out = base_malloc(sizeof(*out) + len);
    if (out == NULL) {
        conn_close(r);
        base_mem_switch(prev);
        return -ENOMEM;
    }
    memset(out, 0, sizeof(*out));
    memcpy(out->bytes, data, len);
    out->len = len;
    rv = conn_write(r, out);
    base_mem_switch(prev);
    return rv;
}

/* ---- requests ---------------------------------------------------------------- */

const char *sup__http_req_path(const sup_http_req *r)
{
    return r->path != NULL ? r->path : "";
}

const char *sup__http_req_query(const sup_http_req *r)
{
    return r->query != NULL ? r->query : "";
}

void sup__http_req_hold(sup_http_req *r)
{
    r->holds++;
}

void sup__http_req_release(sup_http_req *r)
{
    uint32_t prev = base_mem_switch(r->srv->slot);

    HERD_ASSERT(r->holds > 0);
    r->holds--;
    conn_maybe_free(r);
    base_mem_switch(prev);
}

bool sup__http_req_alive(const sup_http_req *r)
{
    return !r->closing;
}

static int on_message_begin(http_parser *p)
{
    sup_http_req *c = p->data;

    base_buf_free(&c->target);
    c->reject = 0;
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    sup_http_req *c = p->data;

    return base_buf_add(&c->target, at, len) < 0 ? -1 : 0;
}

static int on_headers_complete(http_parser *p)
{
    sup_http_req *c = p->data;

    c->head_method = p->method == HTTP_HEAD;
    c->keep_alive = http_should_keep_alive(p) && !p->upgrade;
    if (p->method != HTTP_GET && p->method != HTTP_HEAD) {
        c->reject = 405;
        return -1;
    }
    /* No body is accepted: a length (even unread) or chunks are refused. */
    if ((p->flags & F_CHUNKED) || (p->content_length > 0 && p->content_length != ULLONG_MAX)) {
        c->reject = 413;
        return -1;
    }
    return 0;
}

static int on_message_complete(http_parser *p)
{
    sup_http_req *c = p->data;

    c->request_done = true;
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings parser_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_headers_complete = on_headers_complete,
    .on_message_complete = on_message_complete,
};

/* split_target turns target (the raw request target) into its path and
 * query, in place: "<path>\0<query>\0". A query follows the path with a
 * '?' between, so both move down (or stay) and fit; without one the query
 * is "". */
static int split_target(sup_http_req *c)
{
    struct http_parser_url u;
    char *t = c->target.data;
    size_t plen = 0, qlen, qoff;

    http_parser_url_init(&u);
    if (t == NULL || http_parser_parse_url(t, c->target.len, 0, &u) != 0)
        return -EINVAL;
    bool has_query = (u.field_set & (1 << UF_QUERY)) != 0;
    qoff = has_query ? u.field_data[UF_QUERY].off : 0;
    qlen = has_query ? u.field_data[UF_QUERY].len : 0;
    if (u.field_set & (1 << UF_PATH)) {
        plen = u.field_data[UF_PATH].len;
        memmove(t, t + u.field_data[UF_PATH].off, plen);
    } else {
        t[plen++] = '/'; /* "http://host": the target is longer than "/" */
    }
    t[plen] = '\0';
    c->path = t;
    c->query = "";
    if (has_query) {
        HERD_ASSERT(plen + 1 + qlen <= c->target.len);
        memmove(t + plen + 1, t + qoff, qlen);
        t[plen + 1 + qlen] = '\0';
        c->query = t + plen + 1;
    }
    return 0;
}

static void dispatch(sup_http_req *c)
{
    sup_http *h = c->srv;
    const sup_http_route *route = NULL;

    h->stats.requests++;
    phase_timer(c, PH_HANDLE, h->lim.write_timeout_ms);
    if (split_target(c) < 0) {
        c->keep_alive = false;
        sup__http_respond_error(c, 400, "bad_request", "malformed request target");
        return;
    }
    for (const sup_http_route *rt = h->routes; rt != NULL && rt->path != NULL; rt++) {
        if (strcmp(rt->path, c->path) == 0) {
            route = rt;
            break;
        }
    }
    if (route == NULL) {
        sup__http_respond_error(c, 404, "not_found", "nothing at %.200s", c->path);
        return;
    }
    c->holds++; /* the handler may close the connection: freed after it */
    route->handle(c, h->data);
    c->holds--;
    if (!c->answered && c->holds == 0 && !c->closing) {
        HERD_ASSERT(!"a route handler returned without answering or holding");
        sup__http_respond_error(c, 500, "internal", "no answer");
    }
    conn_maybe_free(c);
}

/* reject answers a request refused before routing; the connection
 * ends (what follows it in the stream cannot be trusted). */
static void reject(sup_http_req *c, int status)
{
    const char *code = "bad_request", *msg = "malformed request";

    switch (status) {
    case 405:
        code = "method_not_allowed", msg = "only GET and HEAD are served";
        break;
    case 413:
        code = "too_large", msg = "no request body is accepted";
        break;
    case 431:
        code = "too_large";
        msg = "request line and headers over the limit";
        break;
    default:
        break;
    }
    c->srv->stats.requests++;
    c->keep_alive = false;
    phase_timer(c, PH_HANDLE, c->srv->lim.write_timeout_ms);
    sup__http_respond_error(c, status, code, "%s", msg);
}

static void conn_feed(sup_http_req *c, const char *data, size_t len)
{
    if (c->phase == PH_IDLE)
        phase_timer(c, PH_HEAD, c->srv->lim.head_timeout_ms);
    size_t n = http_parser_execute(&c->parser, &parser_settings, data, len);
    enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);

    if (c->request_done) {
        if (uv_is_active((uv_handle_t *)&c->tcp))
            uv_read_stop((uv_stream_t *)&c->tcp);
        if (n < len) {
            char *rest = base_malloc(len - n);
            if (rest == NULL) {
                conn_close(c);
                return;
            }
            memcpy(rest, data + n, len - n);
            base_free(c->ahead);
            c->ahead = rest;
            c->ahead_len = len - n;
        }
        dispatch(c);
        return;
    }
    if (e != HPE_OK) {
        if (uv_is_active((uv_handle_t *)&c->tcp))
            uv_read_stop((uv_stream_t *)&c->tcp);
        base_free(c->ahead);
        c->ahead = NULL;
        c->ahead_len = 0;
        reject(c, c->reject != 0 ? c->reject : e == HPE_HEADER_OVERFLOW ? 431 : 400);
    }
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    sup_http_req *c = stream->data;
    uint32_t prev = base_mem_switch(c->srv->slot);

    if (nread < 0) {
        conn_close(c);
    } else if (nread > 0 && (c->phase == PH_HEAD || c->phase == PH_IDLE)) {
        conn_feed(c, buf->base, (size_t)nread);
    }
    /* PH_STREAM, PH_LINGER: input is discarded. */
    base_mem_switch(prev);
}

static void on_timer(uv_timer_t *t)
{
    static const char timeout_response[] =
        "HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    sup_http_req *c = t->data;
    uint32_t prev = base_mem_switch(c->srv->slot);

    switch (c->phase) {
    case PH_HEAD: {
        /* Best effort: a slow client gets a word, never a wait. */
        uv_buf_t b = uv_buf_init((char *)timeout_response, sizeof(timeout_response) - 1);
        c->srv->stats.timeouts++;
        count_response(c, 408);
        if (c->writes_pending == 0)
            uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
        break;
    }
    case PH_HANDLE:
    case PH_WRITE:
        c->srv->stats.timeouts++;
        break;
    default:
        break;
    }
    conn_close(c);
    base_mem_switch(prev);
}

/* ---- accepting ---------------------------------------------------------------- */

static sup_http_req *conn_new(sup_http *h)
{
    sup_http_req *c = base_calloc(1, sizeof(*c));

    if (c == NULL)
        return NULL;
    c->srv = h;
    uv_tcp_init(h->loop, &c->tcp);
    uv_timer_init(h->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->handles_open = 2;
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    h->n_alive++;
    return c;
}

static void on_connection(uv_stream_t *server, int status)
{
    sup_http *h = server->data;
    uint32_t prev = base_mem_switch(h->slot);
    bool room = h->conns.count < (size_t)h->lim.max_connections;
    sup_http_req *c, *it;

    if (status < 0 || h->closing)
        goto out;
    if (!room) {
        /* Make room by closing the oldest connection idle between
         * requests, as a keep-alive client knows may happen. */
        BASE_LIST_FOREACH(&h->conns, sup_http_req, node, it)
        {
            if (it->phase == PH_IDLE) {
                h->stats.connections_evicted++;
                conn_close(it);
                room = true;
                break;
            }
        }
    }
    /* Out of memory leaves the connection pending in the listener, which
     * waits for an accept: the next connection tries again. */
    if ((c = conn_new(h)) == NULL)
        goto out;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0) {
        conn_close(c);
        goto out;
    }
    h->stats.connections_total++;
    if (!room) {
        /* Answered 503 without reading its head; a few at a time, the
         * rest closed at once, so refusals stay bounded too. */
        h->stats.connections_refused++;
        if (h->refusing.count >= MAX_REFUSING) {
            conn_close(c);
            goto out;
        }
        c->refusing = true;
        base_list_append(&h->refusing, &c->node);
        c->keep_alive = false;
        phase_timer(c, PH_HANDLE, h->lim.write_timeout_ms);
        sup__http_respond_error(c, 503, "busy", "too many connections (at most %d)",
                                h->lim.max_connections);
        goto out;
    }
    base_list_append(&h->conns, &c->node);
    uv_tcp_nodelay(&c->tcp, 1);
    phase_timer(c, PH_HEAD, h->lim.head_timeout_ms);
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0)
        conn_close(c);
out:
    base_mem_switch(prev);
}

/* ---- the server ------------------------------------------------------------------ */

static void on_listener_closed(uv_handle_t *handle)
{
    sup_http *h = handle->data;

    h->listener_open = false;
    server_maybe_free(h);
}

int sup__http_open(uv_loop_t *loop, const char *listen, const sup_http_limits *limits,
                   const sup_http_route *routes, void *data, sup_http **out, char *err,
                   size_t err_size)
{
    struct sockaddr_storage addr;
    uint32_t slot, prev;
    sup_http *h;
    int rv;

    *out = NULL;
    if ((rv = sup__http_parse_listen(listen, &addr, err, err_size)) < 0)
        return rv;
    slot = base_mem_slot_acquire();
    prev = base_mem_switch(slot);
    h = base_calloc(1, sizeof(*h));
    if (h == NULL) {
        base_mem_switch(prev);
        base_mem_slot_release(slot);
        return base_errf(err, err_size, "http.listen \"%.100s\": out of memory", listen);
    }
    h->loop = loop;
    h->slot = slot;
    h->addr = addr;
    h->routes = routes;
    h->data = data;
    if (limits != NULL)
        h->lim = *limits;
    if (h->lim.max_connections <= 0)
        h->lim.max_connections = SUP_HTTP_MAX_CONNECTIONS;
    if (h->lim.max_streams <= 0)
        h->lim.max_streams = SUP_HTTP_MAX_STREAMS;
    if (h->lim.max_head_bytes == 0)
        h->lim.max_head_bytes = SUP_HTTP_MAX_HEAD_BYTES;
    if (h->lim.head_timeout_ms == 0)
        h->lim.head_timeout_ms = SUP_HTTP_HEAD_TIMEOUT_MS;
    if (h->lim.idle_timeout_ms == 0)
        h->lim.idle_timeout_ms = SUP_HTTP_IDLE_TIMEOUT_MS;
    if (h->lim.write_timeout_ms == 0)
        h->lim.write_timeout_ms = SUP_HTTP_WRITE_TIMEOUT_MS;
    if (h->lim.max_stream_queue_bytes == 0)
        h->lim.max_stream_queue_bytes = SUP_HTTP_MAX_STREAM_QUEUE_BYTES;
    if (h->lim.max_unsent_bytes == 0)
        h->lim.max_unsent_bytes = SUP_HTTP_MAX_UNSENT_BYTES;
    base_list_init(&h->conns);
    base_list_init(&h->refusing);
    /* libhttp-parser keeps this one limit process-wide; herdd has one
     * server. */
    http_parser_set_max_header_size((uint32_t)h->lim.max_head_bytes);
    uv_tcp_init(loop, &h->listener);
    h->listener.data = h;
    h->listener_open = true;
    if ((rv = uv_tcp_bind(&h->listener, (const struct sockaddr *)&addr, 0)) < 0 ||
        (rv = uv_listen((uv_stream_t *)&h->listener, LISTEN_BACKLOG, on_connection)) < 0) {
        base_errf(err, err_size, "http.listen \"%.100s\": cannot listen: %s", listen,
                  uv_strerror(rv));
        h->closing = true;
        uv_close((uv_handle_t *)&h->listener, on_listener_closed);
        base_mem_switch(prev);
        return rv;
    }
    base_mem_switch(prev);
    *out = h;
    return 0;
}

void sup__http_close(sup_http *h, void (*closed)(void *data), void *data)
{
    if (h == NULL || h->closing)
        return;
    uint32_t prev = base_mem_switch(h->slot);
    sup_http_req *c;

    h->closing = true;
    h->closed = closed;
    h->closed_data = data;
    uv_close((uv_handle_t *)&h->listener, on_listener_closed);
    BASE_LIST_FOREACH(&h->conns, sup_http_req, node, c)
    {
        conn_close(c);
    }
    BASE_LIST_FOREACH(&h->refusing, sup_http_req, node, c)
    {
        conn_close(c);
    }
    base_mem_switch(prev);
}

void sup__http_get_stats(const sup_http *h, sup_http_stats *out)
{
    *out = h->stats;
    out->connections = (int)h->conns.count;
    out->heap_bytes = base_mem_slot_bytes(h->slot);
    out->unsent_bytes = h->unsent_bytes;
}
