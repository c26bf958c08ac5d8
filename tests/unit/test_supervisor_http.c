/*
 * The HTTP server of supervisor/http.c without a herdd: a test route table
 * on a real loopback socket, driven by libuv clients on the same loop.
 * Parsing and refusals (404, 405, 413, 431, 400), HEAD, keep-alive and
 * pipelining, HTTP/1.0, answers given later and clients gone before them,
 * the connection limit (503, and idle keep-alive connections evicted),
 * head and idle timeouts, event streams and a client that does not read
 * cut off; extra response headers (well-formed lines, bounded, or
 * refused with nothing sent); the listen-address parser and the metric-name rules of
 * supervisor/metrics.c, case tables. Every test ends with the loop closed
 * cleanly.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <unistd.h>

#include <cmocka.h>

#include "supervisor/internal.h"

/* ---- a server with test routes ----------------------------------------- */

typedef struct world {
    uv_loop_t loop;
    sup_http *http;
    char listen[64];
    int port;
    bool closed;
    /* /later: answered from a timer */
    uv_timer_t later_timer;
    sup_http_req *later_req;
    int later_answered, later_dropped;
    /* /stream */
    sup_http_req *stream;
    int stream_closes;
    uv_timer_t flood_timer;
    int flood_refused;
} world;

static void route_hello(sup_http_req *r, void *data)
{
    sup__http_respond(r, 200, "text/plain", "hi", 2);
}

static void route_echo_query(sup_http_req *r, void *data)
{
    char body[256];
    int n = snprintf(body, sizeof(body), "%s|%s", sup__http_req_path(r), sup__http_req_query(r));
    sup__http_respond(r, 200, "text/plain", body, (size_t)n);
}

static void route_big(sup_http_req *r, void *data)
{
    static char body[256 * 1024];

    memset(body, 'z', sizeof(body));
    sup__http_respond(r, 200, "text/plain", body, sizeof(body));
}

static void later_fire(uv_timer_t *t)
{
    world *w = t->data;
    sup_http_req *r = w->later_req;

    w->later_req = NULL;
    if (sup__http_req_alive(r)) {
        sup__http_respond(r, 200, "text/plain", "late", 4);
        w->later_answered++;
    } else {
        w->later_dropped++;
    }
    sup__http_req_release(r);
}

static void route_later(sup_http_req *r, void *data)
{
    world *w = data;

    sup__http_req_hold(r);
    w->later_req = r;
    uv_timer_start(&w->later_timer, later_fire, 100, 0);
}

static void stream_closed(sup_http_req *r, void *data)
{
    world *w = data;

    assert_ptr_equal(r, w->stream);
    w->stream = NULL;
    w->stream_closes++;
}

static void route_stream(sup_http_req *r, void *data)
{
    world *w = data;
    int rv = sup__http_stream_start(r, "text/event-stream", stream_closed, w);

    if (rv == -EBUSY) {
        sup__http_respond_error(r, 503, "busy", "streams");
        return;
    }
    if (rv != 0)
        return;
    w->stream = r;
    assert_int_equal(sup__http_stream_write(r, "data: 1\n\n", 9), 0);
}

/* /hdr: every malformed header set is refused (nothing sent), then a
 * good one answers. /hdrmax: headers of exactly the limit. */
static void route_headers(sup_http_req *r, void *data)
{
    static const char *const bad[] = {
        "X-A: 1",               /* no CRLF */
        "X-A: 1\n",             /* a bare LF */
        "X-A: 1\r\nX-B\r\n",    /* no colon */
        ": v\r\n",              /* no name */
        "X A: 1\r\n",           /* a space in the name */
        "X-A: 1\r\n\r\n",       /* an empty line would end the head */
        "X-A: a\rb\r\n",        /* a bare CR in a value */
        "X-A: \x7f\r\n",        /* a control byte */
        "X-A: caf\xc3\xa9\r\n", /* not ASCII */
    };
    char big[SUP_HTTP_MAX_EXTRA_HEADER_BYTES + 2];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (sup__http_respond_headers(r, 200, "text/plain", bad[i], "no", 2) != -EINVAL)
            fail_msg("headers case %zu accepted", i);
    /* One byte over the limit. */
    memset(big, 'a', sizeof(big) - 1);
    memcpy(big, "X-Big: ", 7);
    memcpy(big + sizeof(big) - 3, "\r\n", 2);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(strlen(big), SUP_HTTP_MAX_EXTRA_HEADER_BYTES + 1);
    assert_int_equal(sup__http_respond_headers(r, 200, "text/plain", big, "no", 2), -EINVAL);
    assert_int_equal(sup__http_respond_headers(r, 200, "text/plain",
                                               "X-A: 1\r\nX-Empty:\r\nX-B: two words\t\r\n", "ok",
                                               2),
                     0);
}

static void route_headers_max(sup_http_req *r, void *data)
{
    char big[SUP_HTTP_MAX_EXTRA_HEADER_BYTES + 1];

    memset(big, 'm', sizeof(big) - 1);
    memcpy(big, "X-Max: ", 7);
    memcpy(big + sizeof(big) - 3, "\r\n", 2);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(sup__http_respond_headers(r, 200, "text/plain", big, "max", 3), 0);
}

static const sup_http_route test_routes[] = {
    {"/hello", route_hello},
    {"/q", route_echo_query},
    {"/later", route_later},
    {"/stream", route_stream},
    {"/big", route_big},
    {"/hdr", route_headers},
    {"/hdrmax", route_headers_max},
    {NULL, NULL},
};

static int free_port(void)
{
    uv_loop_t loop;
    uv_tcp_t t;
    struct sockaddr_in a;
    struct sockaddr_storage got;
    int len = sizeof(got);

    uv_loop_init(&loop);
    uv_tcp_init(&loop, &t);
    uv_ip4_addr("127.0.0.1", 0, &a);
    assert_int_equal(uv_tcp_bind(&t, (struct sockaddr *)&a, 0), 0);
    assert_int_equal(uv_tcp_getsockname(&t, (struct sockaddr *)&got, &len), 0);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    return ntohs(((struct sockaddr_in *)&got)->sin_port);
}

static void world_open(world *w, const sup_http_limits *lim)
{
    char err[256];

    memset(w, 0, sizeof(*w));
    uv_loop_init(&w->loop);
    uv_timer_init(&w->loop, &w->later_timer);
    uv_timer_init(&w->loop, &w->flood_timer);
    w->later_timer.data = w->flood_timer.data = w;
    w->port = free_port();
    snprintf(w->listen, sizeof(w->listen), "127.0.0.1:%d", w->port);
    assert_int_equal(
        sup__http_open(&w->loop, w->listen, lim, test_routes, w, &w->http, err, sizeof(err)), 0);
}

static void on_server_closed(void *data)
{
    ((world *)data)->closed = true;
}

static void world_close(world *w)
{
    sup__http_close(w->http, on_server_closed, w);
    uv_close((uv_handle_t *)&w->later_timer, NULL);
    uv_close((uv_handle_t *)&w->flood_timer, NULL);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    assert_true(w->closed);
    assert_int_equal(uv_loop_close(&w->loop), 0);
}

static sup_http_stats stats(world *w)
{
    sup_http_stats st;
    sup__http_get_stats(w->http, &st);
    return st;
}

/* ---- a client on the same loop ------------------------------------------- */

typedef struct client {
    world *w;
    uv_tcp_t tcp;
    uv_connect_t conn;
    uv_write_t wr;
    const char *request; /* sent once connected (static text) */
    size_t request_len;
    bool no_read; /* never reads: a client that does not */
    bool connected, eof;
    int handles_closed;
    base_buf got;
    uint64_t started_ms, eof_ms;
} client;

static char client_rbuf[65536];

static void c_alloc(uv_handle_t *h, size_t s, uv_buf_t *b)
{
    b->base = client_rbuf;
    b->len = sizeof(client_rbuf);
}

static void c_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    client *c = s->data;

    if (n > 0) {
        base_buf_add(&c->got, b->base, (size_t)n);
    } else if (n < 0) {
        c->eof = true;
        c->eof_ms = uv_now(&c->w->loop) - c->started_ms;
        uv_read_stop(s);
    }
}

static void c_written(uv_write_t *req, int status) {}

static void c_send(client *c, const char *text)
{
    uv_buf_t b = uv_buf_init((char *)text, (unsigned)strlen(text));
    assert_int_equal(uv_write(&c->wr, (uv_stream_t *)&c->tcp, &b, 1, c_written), 0);
}

static void c_connected(uv_connect_t *req, int status)
{
    client *c = req->data;

    assert_int_equal(status, 0);
    c->connected = true;
    if (c->request != NULL)
        c_send(c, c->request);
    if (!c->no_read)
        uv_read_start((uv_stream_t *)&c->tcp, c_alloc, c_read);
}

static void client_start(client *c, world *w, const char *request, bool no_read)
{
    struct sockaddr_in a;

    memset(c, 0, sizeof(*c));
    c->w = w;
    c->request = request;
    c->no_read = no_read;
    c->started_ms = uv_now(&w->loop);
    uv_tcp_init(&w->loop, &c->tcp);
    c->tcp.data = c->conn.data = c;
    if (no_read) {
        int small = 4096;
        uv_recv_buffer_size((uv_handle_t *)&c->tcp, &small);
    }
    uv_ip4_addr("127.0.0.1", w->port, &a);
    assert_int_equal(uv_tcp_connect(&c->conn, &c->tcp, (struct sockaddr *)&a, c_connected), 0);
}

static void c_closed(uv_handle_t *h)
{
    ((client *)h->data)->handles_closed++;
}

static void client_close(client *c)
{
    uv_close((uv_handle_t *)&c->tcp, c_closed);
    while (c->handles_closed == 0)
        uv_run(&c->w->loop, UV_RUN_ONCE);
    base_buf_free(&c->got);
}

static void tick(uv_timer_t *t) {}

/* run_until runs the loop until pred holds or max_ms pass; returns pred. */
static bool run_until(world *w, bool (*pred)(void *), void *arg, uint64_t max_ms)
{
    uv_timer_t t;
    uint64_t end;
    bool ok;

    uv_timer_init(&w->loop, &t);
    uv_timer_start(&t, tick, 5, 5);
    uv_update_time(&w->loop);
    end = uv_now(&w->loop) + max_ms;
    while (!(ok = pred(arg)) && uv_now(&w->loop) < end)
        uv_run(&w->loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&w->loop, UV_RUN_NOWAIT);
    return ok;
}

static bool never(void *arg)
{
    return false;
}

static void run_for(world *w, uint64_t ms)
{
    run_until(w, never, NULL, ms);
}

static bool got_eof(void *arg)
{
    return ((client *)arg)->eof;
}

static size_t count_of(const base_buf *b, const char *needle)
{
    size_t n = 0;
    for (const char *p = b->data; p != NULL && (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

typedef struct want {
    client *c;
    size_t responses;
} want;

static bool got_responses(void *arg)
{
    want *wt = arg;
    return count_of(&wt->c->got, "HTTP/1.1 ") >= wt->responses && wt->c->got.len > 0 &&
           strstr(wt->c->got.data, "\r\n\r\n") != NULL;
}

/* exchange sends one request on a new connection and waits for EOF (or
 * max_ms); the response is in c->got. */
static void exchange(world *w, client *c, const char *request, uint64_t max_ms)
{
    client_start(c, w, request, false);
    run_until(w, got_eof, c, max_ms);
}

/* ---- tests ------------------------------------------------------------- */

static void test_routes_and_refusals(void **state)
{
    static const struct {
        const char *request, *status, *body_part;
    } cases[] = {
        {"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "HTTP/1.1 200 OK",
         "\r\n\r\nhi"},
        {"GET /nope HTTP/1.1\r\nConnection: close\r\n\r\n", "HTTP/1.1 404 ", "\"not_found\""},
        {"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", "HTTP/1.1 404 ", "nothing at /"},
        {"POST /hello HTTP/1.1\r\nContent-Length: 0\r\n\r\n", "HTTP/1.1 405 ", "Allow: GET, HEAD"},
        {"DELETE /hello HTTP/1.1\r\n\r\n", "HTTP/1.1 405 ", "method_not_allowed"},
        {"GET /hello HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", "HTTP/1.1 413 ", "too_large"},
        {"GET /hello HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "HTTP/1.1 413 ",
         "body"},
        {"GARBAGE\r\n\r\n", "HTTP/1.1 400 ", "bad_request"},
        {"GET /q?a=1&b=%20 HTTP/1.1\r\nConnection: close\r\n\r\n", "HTTP/1.1 200 ", "/q|a=1&b=%20"},
        {"GET http://host:1/q?z HTTP/1.1\r\nConnection: close\r\n\r\n", "HTTP/1.1 200 ", "/q|z"},
        {"GET /hello HTTP/1.0\r\n\r\n", "HTTP/1.1 200 ", "Connection: close"},
    };
    world w;
    client c;

    world_open(&w, NULL);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        exchange(&w, &c, cases[i].request, 3000);
        if (!c.eof || c.got.data == NULL ||
            strncmp(c.got.data, cases[i].status, strlen(cases[i].status)) != 0 ||
            strstr(c.got.data, cases[i].body_part) == NULL)
            fail_msg("case %zu (%s): got eof=%d [%s]", i, cases[i].request, c.eof,
                     c.got.data ? c.got.data : "");
        client_close(&c);
    }
    sup_http_stats st = stats(&w);
    assert_int_equal(st.requests, sizeof(cases) / sizeof(cases[0]));
    assert_int_equal(st.responses[0], 4); /* 200 */
    world_close(&w);
}

static void test_head_limit_431(void **state)
{
    world w;
    client c;
    char *req = malloc(16384);

    world_open(&w, NULL);
    /* A long target, then a long header: both over 8 KiB. */
    strcpy(req, "GET /");
    memset(req + 5, 'a', 9000);
    strcpy(req + 9005, " HTTP/1.1\r\n\r\n");
    exchange(&w, &c, req, 3000);
    assert_true(c.eof);
    assert_non_null(strstr(c.got.data, "HTTP/1.1 431 "));
    client_close(&c);
    strcpy(req, "GET /hello HTTP/1.1\r\nX-Big: ");
    size_t n = strlen(req);
    memset(req + n, 'b', 9000);
    strcpy(req + n + 9000, "\r\n\r\n");
    exchange(&w, &c, req, 3000);
    assert_true(c.eof);
    assert_non_null(strstr(c.got.data, "HTTP/1.1 431 "));
    client_close(&c);
    /* Just under the limit is served. */
    strcpy(req, "GET /hello HTTP/1.1\r\nConnection: close\r\nX-Big: ");
    n = strlen(req);
    memset(req + n, 'c', 7000);
    strcpy(req + n + 7000, "\r\n\r\n");
    exchange(&w, &c, req, 3000);
    assert_non_null(strstr(c.got.data, "HTTP/1.1 200 "));
    client_close(&c);
    free(req);
    world_close(&w);
}

static void test_head_method(void **state)
{
    world w;
    client c;

    world_open(&w, NULL);
    exchange(&w, &c, "HEAD /hello HTTP/1.1\r\nConnection: close\r\n\r\n", 3000);
    assert_non_null(strstr(c.got.data, "HTTP/1.1 200 OK\r\n"));
    assert_non_null(strstr(c.got.data, "Content-Length: 2\r\n"));
    /* nothing after the head */
    assert_string_equal(strstr(c.got.data, "\r\n\r\n"), "\r\n\r\n");
    client_close(&c);
    world_close(&w);
}

static void test_extra_headers(void **state)
{
    world w;
    client c;
    const char *end;
    char expect[SUP_HTTP_MAX_EXTRA_HEADER_BYTES + 16];

    world_open(&w, NULL);
    exchange(&w, &c, "GET /hdr HTTP/1.1\r\nConnection: close\r\n\r\n", 3000);
    assert_true(c.eof);
    assert_int_equal(count_of(&c.got, "HTTP/1.1 "), 1); /* the refused ones sent nothing */
    assert_non_null(strstr(c.got.data, "HTTP/1.1 200 OK\r\n"));
    assert_non_null(strstr(c.got.data, "\r\nCache-Control: no-store\r\n"));
    end = strstr(c.got.data, "\r\nX-A: 1\r\nX-Empty:\r\nX-B: two words\t\r\n\r\n");
    assert_non_null(end);
    assert_string_equal(strstr(end, "\r\n\r\n"), "\r\n\r\nok");
    client_close(&c);
    /* HEAD: the same head, no body. */
    exchange(&w, &c, "HEAD /hdr HTTP/1.1\r\nConnection: close\r\n\r\n", 3000);
    assert_non_null(strstr(c.got.data, "Content-Length: 2\r\n"));
    end = strstr(c.got.data, "X-B: two words\t\r\n\r\n");
    assert_non_null(end);
    assert_string_equal(end, "X-B: two words\t\r\n\r\n");
    client_close(&c);
    /* Exactly the limit is sent whole. */
    exchange(&w, &c, "GET /hdrmax HTTP/1.1\r\nConnection: close\r\n\r\n", 3000);
    memcpy(expect, "\r\nX-Max: ", 9);
    memset(expect + 9, 'm', SUP_HTTP_MAX_EXTRA_HEADER_BYTES - 9);
    strcpy(expect + SUP_HTTP_MAX_EXTRA_HEADER_BYTES, "\r\n\r\nmax");
    assert_non_null(strstr(c.got.data, expect));
    client_close(&c);
    world_close(&w);
}

static void test_keep_alive_and_pipelining(void **state)
{
    world w;
    client c;
    want wt = {&c, 2};

    world_open(&w, NULL);
    /* Two requests in one write: two responses, in order, and the
     * connection stays open. */
    client_start(&c, &w, "GET /q?1 HTTP/1.1\r\n\r\nGET /q?2 HTTP/1.1\r\n\r\n", false);
    assert_true(run_until(&w, got_responses, &wt, 3000));
    run_for(&w, 100);
    assert_false(c.eof);
    const char *one = strstr(c.got.data, "/q|1"), *two = strstr(c.got.data, "/q|2");
    assert_non_null(one);
    assert_non_null(two);
    assert_true(one < two);
    /* A third on the same connection, later. */
    c_send(&c, "GET /q?3 HTTP/1.1\r\n\r\n");
    wt.responses = 3;
    assert_true(run_until(&w, got_responses, &wt, 3000));
    run_for(&w, 50);
    assert_non_null(strstr(c.got.data, "/q|3"));
    assert_false(c.eof);
    assert_int_equal(stats(&w).connections_total, 1);
    assert_int_equal(stats(&w).connections, 1);
    client_close(&c);
    world_close(&w);
}

static void test_answer_later(void **state)
{
    world w;
    client c;

    world_open(&w, NULL);
    exchange(&w, &c, "GET /later HTTP/1.1\r\nConnection: close\r\n\r\n", 3000);
    assert_non_null(strstr(c.got.data, "\r\n\r\nlate"));
    assert_int_equal(w.later_answered, 1);
    client_close(&c);
    /* The connection goes before the answer (the server closes): the
     * answer is dropped, the held request freed only then. */
    client_start(&c, &w, "GET /later HTTP/1.1\r\n\r\n", false);
    run_for(&w, 30);
    assert_non_null(w.later_req);
    sup__http_close(w.http, on_server_closed, &w);
    assert_true(run_until(&w, got_eof, &c, 3000));
    assert_false(w.closed); /* held */
    run_for(&w, 200);
    assert_int_equal(w.later_dropped, 1);
    assert_true(w.closed);
    client_close(&c);
    uv_close((uv_handle_t *)&w.later_timer, NULL);
    uv_close((uv_handle_t *)&w.flood_timer, NULL);
    uv_run(&w.loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&w.loop), 0);
}

static bool got_503(void *arg)
{
    client *c = arg;
    return c->got.data != NULL && strstr(c->got.data, "HTTP/1.1 503 ") != NULL;
}

static void test_connection_limit(void **state)
{
    sup_http_limits lim = {.max_connections = 2};
    world w;
    client a, b, c;
    want wa = {&a, 1}, wb = {&b, 1};

    world_open(&w, &lim);
    /* Two connections in the middle of a head: a third is refused. */
    client_start(&a, &w, "GET /hel", false);
    client_start(&b, &w, "GET /hel", false);
    run_for(&w, 50);
    client_start(&c, &w, "GET /hello HTTP/1.1\r\n\r\n", false);
    assert_true(run_until(&w, got_503, &c, 3000));
    assert_non_null(strstr(c.got.data, "too many connections"));
    assert_true(run_until(&w, got_eof, &c, 3000));
    client_close(&c);
    assert_int_equal(stats(&w).connections_refused, 1);
    /* The two finish their requests and stay, idle: a new one evicts the
     * oldest and is served. */
    c_send(&a, "lo HTTP/1.1\r\n\r\n");
    c_send(&b, "lo HTTP/1.1\r\n\r\n");
    assert_true(run_until(&w, got_responses, &wa, 3000));
    assert_true(run_until(&w, got_responses, &wb, 3000));
    exchange(&w, &c, "GET /hello HTTP/1.1\r\nConnection: close\r\n\r\n", 3000);
    assert_non_null(strstr(c.got.data, "HTTP/1.1 200 "));
    client_close(&c);
    assert_true(run_until(&w, got_eof, &a, 3000)); /* a was the oldest */
    assert_false(b.eof);
    assert_int_equal(stats(&w).connections_evicted, 1);
    client_close(&a);
    client_close(&b);
    world_close(&w);
}

static void test_timeouts(void **state)
{
    sup_http_limits lim = {.head_timeout_ms = 150, .idle_timeout_ms = 300};
    world w;
    client c;
    want wt = {&c, 1};

    world_open(&w, &lim);
    /* A head that never ends: closed at the head timeout, with a 408. */
    client_start(&c, &w, "GET /hello HTTP/1.1\r\nX-Slow: ", false);
    assert_true(run_until(&w, got_eof, &c, 3000));
    assert_in_range(c.eof_ms, 100, 1000);
    assert_non_null(strstr(c.got.data, "HTTP/1.1 408 "));
    client_close(&c);
    assert_int_equal(stats(&w).timeouts, 1);
    /* Nothing sent at all: the same. */
    client_start(&c, &w, NULL, false);
    assert_true(run_until(&w, got_eof, &c, 3000));
    client_close(&c);
    assert_int_equal(stats(&w).timeouts, 2);
    /* Kept alive, then idle: closed at the idle timeout, not at the head
     * timeout, and that is no error. */
    client_start(&c, &w, "GET /hello HTTP/1.1\r\n\r\n", false);
    assert_true(run_until(&w, got_responses, &wt, 3000));
    run_for(&w, 200);
    assert_false(c.eof);
    assert_true(run_until(&w, got_eof, &c, 3000));
    assert_in_range(c.eof_ms, 250, 2000);
    client_close(&c);
    assert_int_equal(stats(&w).timeouts, 2);
    world_close(&w);
}

static void flood(uv_timer_t *t)
{
    world *w = t->data;
    static char chunk[32768];

    memset(chunk, 'x', sizeof(chunk));
    for (int i = 0; i < 8 && w->stream != NULL; i++) {
        if (sup__http_stream_write(w->stream, chunk, sizeof(chunk)) == -ENOBUFS) {
            w->flood_refused++;
            break;
        }
    }
    if (w->stream == NULL)
        uv_timer_stop(t);
}

static bool stream_gone(void *arg)
{
    world *w = arg;
    return w->stream == NULL && w->stream_closes > 0;
}

static bool stream_open(void *arg)
{
    return ((world *)arg)->stream != NULL;
}

static void test_streams(void **state)
{
    sup_http_limits lim = {.max_streams = 1, .max_stream_queue_bytes = 64 * 1024};
    world w;
    client a, b;

    world_open(&w, &lim);
    client_start(&a, &w, "GET /stream HTTP/1.1\r\n\r\n", false);
    assert_true(run_until(&w, stream_open, &w, 3000));
    run_for(&w, 50);
    assert_non_null(strstr(a.got.data, "Content-Type: text/event-stream\r\n"));
    assert_null(strstr(a.got.data, "Content-Length"));
    assert_non_null(strstr(a.got.data, "\r\n\r\ndata: 1\n\n"));
    /* Over max_streams: 503 (the connection stays, kept alive). */
    want wb = {&b, 1};
    client_start(&b, &w, "GET /stream HTTP/1.1\r\n\r\n", false);
    assert_true(run_until(&w, got_responses, &wb, 3000));
    assert_non_null(strstr(b.got.data, "HTTP/1.1 503 "));
    assert_false(b.eof);
    client_close(&b);
    /* The reader goes: on_close runs. */
    client_close(&a);
    assert_true(run_until(&w, stream_gone, &w, 3000));
    assert_int_equal(w.stream_closes, 1);
    assert_int_equal(stats(&w).streams, 0);
    /* A client that never reads is cut off once 64 KiB wait for it. */
    client_start(&a, &w, "GET /stream HTTP/1.1\r\n\r\n", true);
    assert_true(run_until(&w, stream_open, &w, 3000));
    uv_timer_start(&w.flood_timer, flood, 1, 1);
    assert_true(run_until(&w, stream_gone, &w, 10000));
    assert_int_equal(w.stream_closes, 2);
    assert_int_equal(w.flood_refused, 1);
    assert_int_equal(stats(&w).streams_cut, 1);
    assert_true(stats(&w).heap_bytes < 64 * 1024);
    client_close(&a);
    world_close(&w);
}

/* Clients that do not read hold at most max_unsent_bytes of responses
 * between them: past it a response is replaced by a small 503. */
static void test_unsent_limit(void **state)
{
    sup_http_limits lim = {.max_unsent_bytes = 600 * 1024};
    world w;
    client c[4], r;

    world_open(&w, &lim);
    for (int i = 0; i < 4; i++)
        client_start(&c[i], &w, "GET /big HTTP/1.1\r\n\r\n", true);
    run_for(&w, 300);
    sup_http_stats st = stats(&w);
    assert_true(st.unsent_bytes <= 600 * 1024);
    assert_int_equal(st.responses[0] + st.responses[8], 4); /* the 200s and the 503s */
    assert_true(st.responses[8] >= 1);
    /* A small answer still goes. */
    exchange(&w, &r, "GET /hello HTTP/1.1\r\nConnection: close\r\n\r\n", 3000);
    assert_non_null(strstr(r.got.data, "HTTP/1.1 200 "));
    client_close(&r);
    for (int i = 0; i < 4; i++)
        client_close(&c[i]);
    run_for(&w, 50);
    assert_int_equal(stats(&w).unsent_bytes, 0);
    world_close(&w);
}

static void test_close_with_clients(void **state)
{
    world w;
    client a, b;

    world_open(&w, NULL);
    client_start(&a, &w, "GET /stream HTTP/1.1\r\n\r\n", false);
    client_start(&b, &w, "GET /hel", false);
    assert_true(run_until(&w, stream_open, &w, 3000));
    sup__http_close(w.http, on_server_closed, &w);
    assert_int_equal(w.stream_closes, 1); /* at once */
    assert_true(run_until(&w, got_eof, &a, 3000));
    assert_true(run_until(&w, got_eof, &b, 3000));
    client_close(&a);
    client_close(&b);
    uv_close((uv_handle_t *)&w.later_timer, NULL);
    uv_close((uv_handle_t *)&w.flood_timer, NULL);
    uv_run(&w.loop, UV_RUN_DEFAULT);
    assert_true(w.closed);
    assert_int_equal(uv_loop_close(&w.loop), 0);
}

static void test_busy_address(void **state)
{
    world w;
    uv_loop_t loop;
    sup_http *h2 = NULL;
    char err[256];

    world_open(&w, NULL);
    uv_loop_init(&loop);
    assert_int_equal(
        sup__http_open(&loop, w.listen, NULL, test_routes, NULL, &h2, err, sizeof(err)),
        -EADDRINUSE);
    assert_null(h2);
    assert_non_null(strstr(err, w.listen));
    assert_non_null(strstr(err, "address already in use"));
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    world_close(&w);
}

static void test_parse_listen(void **state)
{
    static const struct {
        const char *listen;
        int family; /* 0: refused */
        const char *err_part;
    } cases[] = {
        {"127.0.0.1:9180", AF_INET, NULL},
        {"0.0.0.0:1", AF_INET, NULL},
        {"[::1]:9180", AF_INET6, NULL},
        {"[::]:65535", AF_INET6, NULL},
        {"localhost:80", -1, NULL}, /* either family */
        {"127.0.0.1", 0, "expected HOST:PORT"},
        {":80", 0, "expected HOST:PORT"},
        {"127.0.0.1:0", 0, "port from 1 to 65535"},
        {"127.0.0.1:65536", 0, "port from 1 to 65535"},
        {"127.0.0.1:8x", 0, "port from 1 to 65535"},
        {"[::1:80", 0, "[IPv6]"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sockaddr_storage a;
        char err[256] = "";
        int rv = sup__http_parse_listen(cases[i].listen, &a, err, sizeof(err));
        if (cases[i].family == 0) {
            if (rv == 0 || strstr(err, cases[i].err_part) == NULL)
                fail_msg("%s: rv %d, err \"%s\"", cases[i].listen, rv, err);
        } else {
            if (rv != 0)
                fail_msg("%s: refused: %s", cases[i].listen, err);
            if (cases[i].family > 0)
                assert_int_equal(a.ss_family, cases[i].family);
        }
    }
}

static void test_metric_names(void **state)
{
    static const struct {
        const char *key, *sub, *name; /* name NULL: refused */
        bool counter;
        double scale;
    } cases[] = {
        {"received", NULL, "received_total", true, 1},
        {"queue_depth", NULL, "queue_depth", false, 1},
        {"lru", "hits", "lru_hits_total", true, 1},
        {"lru", "entries", "lru_entries", false, 1},
        {"jobs", "failed", "jobs_failed", false, 1},
        {"flushes_total", NULL, "flushes_total", true, 1},
        {"latency_ms", NULL, "latency_seconds", false, 0.001},
        {"idle_s", NULL, "idle_seconds", false, 1},
        {"index_bytes", NULL, "index_bytes", false, 1},
        {"http_4xx", NULL, "http_4xx_total", true, 1},
        {"heap_bytes", NULL, NULL, false, 1}, /* a fixed family's name */
        {"up", NULL, NULL, false, 1},
        {"uptime_s", NULL, NULL, false, 1}, /* uptime_seconds is fixed */
        {"Bad", NULL, NULL, false, 1},
        {"9lives", NULL, NULL, false, 1},
        {"a__b", NULL, NULL, false, 1},
        {"trailing_", NULL, NULL, false, 1},
        {"x-y", NULL, NULL, false, 1},
        {"exit_codes", "0", NULL, false, 1},
        {"exit_codes", "SIGTERM", NULL, false, 1},
        {"events_count", NULL, NULL, false, 1},
        {"size_kb", NULL, NULL, false, 1},
        {"elapsed_hours", NULL, NULL, false, 1},
        {"read_kilobytes", NULL, NULL, false, 1},
        {"my_counter", NULL, NULL, false, 1},
        {"gauge_of_x", NULL, NULL, false, 1},
        {"latency_sum", NULL, NULL, false, 1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[128];
        bool counter;
        double scale;
        bool ok =
            sup__metrics_field_name(cases[i].key, cases[i].sub, out, sizeof(out), &counter, &scale);
        if (cases[i].name == NULL) {
            if (ok)
                fail_msg("%s.%s: made %s", cases[i].key, cases[i].sub ? cases[i].sub : "", out);
            continue;
        }
        if (!ok)
            fail_msg("%s.%s: refused", cases[i].key, cases[i].sub ? cases[i].sub : "");
        assert_string_equal(out, cases[i].name);
        assert_int_equal(counter, cases[i].counter);
        assert_true(scale == cases[i].scale);
    }
}

static void test_label_escaping(void **state)
{
    base_buf b = {0};

    assert_int_equal(sup__metrics_label_value(&b, "a\"b\\c\nd"), 0);
    assert_string_equal(b.data, "a\\\"b\\\\c\\nd");
    base_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_routes_and_refusals),
        cmocka_unit_test(test_head_limit_431),
        cmocka_unit_test(test_head_method),
        cmocka_unit_test(test_extra_headers),
        cmocka_unit_test(test_keep_alive_and_pipelining),
        cmocka_unit_test(test_answer_later),
        cmocka_unit_test(test_connection_limit),
        cmocka_unit_test(test_timeouts),
        cmocka_unit_test(test_streams),
        cmocka_unit_test(test_unsent_limit),
        cmocka_unit_test(test_close_with_clients),
        cmocka_unit_test(test_busy_address),
        cmocka_unit_test(test_parse_listen),
        cmocka_unit_test(test_metric_names),
        cmocka_unit_test(test_label_escaping),
    };
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
