/*
 * Fuzz target `http`: herdd's HTTP request parsing and the connection
 * state machine around it (supervisor/http.c: libhttp-parser with the
 * server's own settings, the target split, refusals, keep-alive,
 * pipelining, HEAD, answers given later, event streams).
 *
 * http.c has no entry point that parses without a socket (its parser
 * settings and connection are static to it), so this target drives the
 * real server: it listens once on a free loopback port with a small route
 * table, and each input is sent as the bytes of one client connection,
 * whose write side is then shut. The run ends when the server has closed
 * the connection and freed everything it held for it (its account back to
 * what the server alone holds); a connection still open after 5 s is a
 * hang, reported as a crash. Every response must start with a status line.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>

#include "supervisor/internal.h"
#include "fuzz.h"

static uv_loop_t loop;
static sup_http *server;
static struct sockaddr_in addr;
static uint64_t baseline_bytes;
static uv_timer_t later_timer;
static sup_http_req *later_req;

static void route_hello(sup_http_req *r, void *data)
{
    (void)data;
    sup__http_respond(r, 200, "text/plain", "hi", 2);
}

static void route_query(sup_http_req *r, void *data)
{
    char body[512];
    int n = snprintf(body, sizeof(body), "%s|%s", sup__http_req_path(r), sup__http_req_query(r));
    (void)data;
    FUZZ_CHECK(sup__http_req_path(r)[0] == '/');
    if (n < 0)
        n = 0;
    if ((size_t)n >= sizeof(body))
        n = (int)sizeof(body) - 1;
    sup__http_respond(r, 200, "text/plain", body, (size_t)n);
}

static void route_json(sup_http_req *r, void *data)
{
    json_t *o =
        json_pack("{s:s,s:s}", "path", sup__http_req_path(r), "query", sup__http_req_query(r));
    (void)data;
    sup__http_respond_json(r, 200, o);
    json_decref(o);
}

static void route_headers(sup_http_req *r, void *data)
{
    (void)data;
    sup__http_respond_headers(r, 200, "text/plain", "X-Fuzz: 1\r\n", "h", 1);
}

static void route_big(sup_http_req *r, void *data)
{
    static char body[96 * 1024];
    (void)data;
    memset(body, 'z', sizeof(body));
    sup__http_respond(r, 200, "text/plain", body, sizeof(body));
}

static void later_fire(uv_timer_t *t)
{
    sup_http_req *r = later_req;
    (void)t;
    later_req = NULL;
    if (sup__http_req_alive(r))
        sup__http_respond(r, 200, "text/plain", "late", 4);
    sup__http_req_release(r);
}

static void route_later(sup_http_req *r, void *data)
{
    (void)data;
    FUZZ_CHECK(later_req == NULL); /* one request at a time per connection */
    sup__http_req_hold(r);
    later_req = r;
    uv_timer_start(&later_timer, later_fire, 1, 0);
}

static void stream_closed(sup_http_req *r, void *data)
{
    (void)r, (void)data;
}

static void route_stream(sup_http_req *r, void *data)
{
    (void)data;
    int rv = sup__http_stream_start(r, "text/event-stream", stream_closed, NULL);
    if (rv == -EBUSY)
        sup__http_respond_error(r, 503, "busy", "streams");
    else if (rv == 0)
        sup__http_stream_write(r, "data: 1\n\n", 9);
}

static const sup_http_route routes[] = {
    {"/", route_hello},
    {"/q", route_query},
    {"/api/status", route_json},
    {"/hdr", route_headers},
    {"/big", route_big},
    {"/later", route_later},
    {"/api/events", route_stream},
    {NULL, NULL},
};

static uint64_t server_bytes(void)
{
    sup_http_stats st;
    sup__http_get_stats(server, &st);
    return st.heap_bytes;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    sup_http_limits lim = {
        .max_connections = 4,
        .max_streams = 2,
        .head_timeout_ms = 2000,
        .idle_timeout_ms = 2000,
        .write_timeout_ms = 2000,
    };
    char err[256] = "", listen[64];

    (void)argc, (void)argv;
    signal(SIGPIPE, SIG_IGN);
    FUZZ_CHECK(uv_loop_init(&loop) == 0);
    FUZZ_CHECK(uv_timer_init(&loop, &later_timer) == 0);
    /* a free port: the kernel's choice for a socket bound to port 0 */
    for (int tries = 0; server == NULL && tries < 20; tries++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        socklen_t len = sizeof(addr);
        memset(&addr, 0, sizeof(addr));
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        FUZZ_CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0);
        FUZZ_CHECK(getsockname(fd, (struct sockaddr *)&addr, &len) == 0);
        close(fd);
        snprintf(listen, sizeof(listen), "127.0.0.1:%u", ntohs(addr.sin_port));
        if (sup__http_open(&loop, listen, &lim, routes, NULL, &server, err, sizeof(err)) < 0)
            server = NULL;
    }
    if (server == NULL) {
        fprintf(stderr, "fuzz_http: %s\n", err);
        abort();
    }
    uv_run(&loop, UV_RUN_NOWAIT);
    baseline_bytes = server_bytes();
    return 0;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    size_t sent = 0, got = 0;
    bool shut = false, eof = false;
    char first[16] = "";
    uint64_t start = now_ms();

    FUZZ_CHECK(fd >= 0);
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 && errno != EINPROGRESS) {
        perror("fuzz_http: connect");
        abort();
    }
    for (;;) {
        struct pollfd p[2] = {
            {.fd = fd, .events = (short)(eof ? 0 : POLLIN) | (short)(shut ? 0 : POLLOUT)},
            {.fd = uv_backend_fd(&loop), .events = POLLIN},
        };
        int timeout = uv_backend_timeout(&loop);
        if (timeout < 0 || timeout > 10)
            timeout = 10;
        poll(p, 2, timeout);
        uv_run(&loop, UV_RUN_NOWAIT);
        if (!shut) {
            ssize_t n = size > sent ? send(fd, data + sent, size - sent, MSG_NOSIGNAL) : 0;
            if (n > 0)
                sent += (size_t)n;
            if (sent == size || (n < 0 && errno != EAGAIN && errno != EINTR && errno != ENOTCONN)) {
                shutdown(fd, SHUT_WR);
                shut = true;
            }
        }
        while (!eof) {
            char buf[65536];
            ssize_t n = recv(fd, buf, sizeof(buf), 0);
            if (n > 0) {
                if (got < sizeof(first) - 1) {
                    size_t k =
                        sizeof(first) - 1 - got < (size_t)n ? sizeof(first) - 1 - got : (size_t)n;
                    memcpy(first + got, buf, k);
                }
                got += (size_t)n;
                continue;
            }
            if (n == 0 || (errno != EAGAIN && errno != EINTR && errno != ENOTCONN))
                eof = true;
            break;
        }
        if (eof && shut && server_bytes() == baseline_bytes)
            break;
        if (now_ms() - start > 5000) {
            fprintf(stderr,
                    "fuzz_http: the connection is still open after 5 s (sent %zu of %zu "
                    "bytes, got %zu, eof %d, server holds %llu bytes over its own)\n",
                    sent, size, got, eof, (unsigned long long)(server_bytes() - baseline_bytes));
            abort();
        }
    }
    close(fd);
    if (got > 0)
        FUZZ_CHECK(got >= 12 && memcmp(first, "HTTP/1.1 ", 9) == 0);
    return 0;
}
