/*
 * The webhook kind (workers/webhook.c): config refusals from a table, one
 * for every key, then instances on a real loop and an in-process bus
 * against a small HTTP/1.1 server of this file on 127.0.0.1 (a poll(2)
 * loop on its own thread, answering from a script of statuses, after a
 * delay, or never): the body and headers sent, 5xx retried with the
 * backoff, 4xx not, a refused connection, timeout_s, max_in_flight and
 * drop-oldest with the counts exact at every turn, a stop while the server
 * never answers, the session closed after keepalive_s (heap back to the
 * idle figure), and ca_file checked at start. Every test ends with the loop
 * closing cleanly.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "workers/worker.h"

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- validation: one case a line ------------------------------------------ */

#define OK_BASE "\"subscribe\": [\"a.>\"], \"url\": \"http://127.0.0.1:8080/hook\""

static const struct {
    const char *cfg;
    const char *want; /* part of the message; NULL: accepted */
} cases[] = {
    {"{" OK_BASE "}", NULL},
    {"{\"subscribe\": [\"a\"], \"url\": \"https://user:pw@hooks.example.com:8443/p?q=1#f\", "
     "\"headers\": {\"Authorization\": \"Bearer x\", \"X-Empty\": \"\"}, \"timeout_s\": 3600, "
     "\"max_in_flight\": 64, \"max_retries\": 0, \"retry_backoff\": {\"initial_ms\": 1, "
     "\"max_ms\": 1}, \"keepalive_s\": 0, \"queue_max\": 5, \"stop_timeout_s\": 2, "
     "\"ca_file\": \"/etc/hostname\"}",
     NULL},
    {"{\"subscribe\": [\"a\"], \"url\": \"HTTP://[::1]:1/\"}", NULL},
    {"{\"url\": \"http://h/\"}", "w.subscribe: required"},
    {"{\"subscribe\": [\"a\"]}", "w.url: required, the http:// or https:// URL to POST events to"},
    {"{\"subscribe\": [\"a\"], \"url\": 7}", "w.url: expected an http:// or https:// URL, got 7"},
    {"{\"subscribe\": [\"a\"], \"url\": \"ftp://h/x\"}",
     "w.url: \"ftp://h/x\": expected an http:// or https:// URL"},
    {"{\"subscribe\": [\"a\"], \"url\": \"http:///x\"}", "w.url: \"http:///x\": no host"},
    {"{\"subscribe\": [\"a\"], \"url\": \"http://h:0/\"}", "\"http://h:0/\": bad port"},
    {"{\"subscribe\": [\"a\"], \"url\": \"http://h:99999/\"}", "bad port (expected 1 to 65535)"},
    {"{\"subscribe\": [\"a\"], \"url\": \"http://h:/\"}", "bad port"},
    {"{\"subscribe\": [\"a\"], \"url\": \"http://h:8x/\"}", "bad port"},
    {"{\"subscribe\": [\"a\"], \"url\": \"http://h/a b\"}",
     "\"http://h/a b\": spaces, control characters and non-ASCII bytes must be percent-encoded"},
    {"{\"subscribe\": [\"a\"], \"url\": \"http://h\\u00e9/\"}", "must be percent-encoded"},
    {"{\"subscribe\": [\"a\"], \"url\": \"http://a!b/\"}",
     "a character that cannot be in a host name"},
    {"{\"subscribe\": [\"a\"], \"url\": \"http://[::1/\"}", "without its closing ']'"},
    {"{\"subscribe\": [\"a\"], \"url\": \"http://[zz]/\"}", "not an IPv6 address"},
    {"{" OK_BASE ", \"headers\": [\"X: y\"]}",
     "w.headers: expected an object of header names to string values, got [\"X: y\"]"},
    {"{" OK_BASE ", \"headers\": {\"Bad Name\": \"v\"}}",
     "w.headers: \"Bad Name\" is not a header name"},
    {"{" OK_BASE ", \"headers\": {\"X:Y\": \"v\"}}", "\"X:Y\" is not a header name"},
    {"{" OK_BASE ", \"headers\": {\"X\\r\\nY\": \"v\"}}", "is not a header name"},
    {"{" OK_BASE ", \"headers\": {\"\": \"v\"}}", "w.headers: \"\" is not a header name"},
    {"{" OK_BASE ", \"headers\": {\"X-A\": \"v\\r\\nEvil: 1\"}}",
     "w.headers.X-A: the value contains CR or LF"},
    {"{" OK_BASE ", \"headers\": {\"X-A\": \"v\\nw\"}}", "w.headers.X-A: the value contains CR"},
    {"{" OK_BASE ", \"headers\": {\"X-A\": \"v\\u0001\"}}",
     "w.headers.X-A: the value contains a control character (byte 0x01)"},
    {"{" OK_BASE ", \"headers\": {\"X-A\": \"v\\u0000\"}}", "a control character (byte 0x00)"},
    {"{" OK_BASE ", \"headers\": {\"X-A\": \" v\"}}", "starts or ends with white space"},
    {"{" OK_BASE ", \"headers\": {\"X-A\": 5}}", "w.headers.X-A: expected a string, got 5"},
    {"{" OK_BASE ", \"headers\": {\"X-A\": {\"b\": 1}}}", "expected a string, got a structure"},
    {"{" OK_BASE ", \"headers\": {\"content-type\": \"text/plain\"}}",
     "w.headers.content-type: set by the worker"},
    {"{" OK_BASE ", \"headers\": {\"Content-Length\": \"1\"}}", "w.headers.Content-Length: set by"},
    {"{" OK_BASE ", \"headers\": {\"Expect\": \"100-continue\"}}", "w.headers.Expect: set by"},
    {"{" OK_BASE ", \"timeout_s\": 0}",
     "w.timeout_s: expected whole seconds from 1 to 3600, got 0"},
    {"{" OK_BASE ", \"timeout_s\": 3601}", "w.timeout_s: expected whole seconds from 1 to 3600"},
    {"{" OK_BASE ", \"timeout_s\": \"10\"}", "w.timeout_s: expected whole seconds from 1 to 3600, "
                                             "got \"10\""},
    {"{" OK_BASE ", \"max_in_flight\": 0}",
     "w.max_in_flight: expected an integer from 1 to 64, got 0"},
    {"{" OK_BASE ", \"max_in_flight\": 65}", "w.max_in_flight: expected an integer from 1 to 64"},
    {"{" OK_BASE ", \"max_retries\": -1}",
     "w.max_retries: expected an integer from 0 to 100, got -1"},
    {"{" OK_BASE ", \"max_retries\": 1.5}", "w.max_retries: expected an integer from 0 to 100"},
    {"{" OK_BASE ", \"keepalive_s\": 3601}",
     "w.keepalive_s: expected whole seconds from 0 to 3600, got 3601"},
    {"{" OK_BASE ", \"retry_backoff\": 500}",
     "w.retry_backoff: expected an object such as {\"initial_ms\": 500, \"max_ms\": 30000}, got "
     "500"},
    {"{" OK_BASE ", \"retry_backoff\": {\"initial\": 5}}",
     "w.retry_backoff.initial: unknown key (expected initial_ms or max_ms)"},
    {"{" OK_BASE ", \"retry_backoff\": {\"initial_ms\": 0}}",
     "w.retry_backoff.initial_ms: expected milliseconds from 1 to 3600000, got 0"},
    {"{" OK_BASE ", \"retry_backoff\": {\"max_ms\": 3600001}}",
     "w.retry_backoff.max_ms: expected milliseconds from 1 to 3600000"},
    {"{" OK_BASE ", \"retry_backoff\": {\"initial_ms\": 40000}}",
     "w.retry_backoff: initial_ms (40000) must not exceed max_ms (30000)"},
    {"{\"subscribe\": [\"a\"], \"url\": \"https://h/\", \"ca_file\": 1}",
     "w.ca_file: expected the path of a PEM certificate file, got 1"},
    {"{\"subscribe\": [\"a\"], \"url\": \"https://h/\", \"ca_file\": \"\"}",
     "w.ca_file: expected the path"},
    {"{\"subscribe\": [\"a\"], \"url\": \"https://h/\", \"ca_file\": \"/no/such/ca.pem\"}",
     "w.ca_file \"/no/such/ca.pem\": No such file or directory"},
    {"{\"subscribe\": [\"a\"], \"url\": \"https://h/\", \"ca_file\": \"/etc\"}",
     "w.ca_file \"/etc\": not a regular file"},
    {"{" OK_BASE ", \"ca_file\": \"/etc/hostname\"}",
     "w.ca_file: only used with an https:// url (url is http://)"},
    {"{" OK_BASE ", \"queue_max\": 0}", "w.queue_max: expected an integer from 1"},
    {"{" OK_BASE ", \"method\": \"PUT\"}",
     "w.method: unknown key (expected subscribe, url, headers, timeout_s, max_in_flight, "
     "max_retries, retry_backoff, keepalive_s, ca_file or a common key)"},
};

static void test_validate(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_error_t jerr;
        json_t *cfg = json_loads(cases[i].cfg, JSON_ALLOW_NUL, &jerr);
        char err[512] = "";
        if (cfg == NULL)
            fail_msg("case %zu: %s", i, jerr.text);
        int rv = worker_webhook_kind.validate(cfg, "w", err, sizeof(err));
        if (cases[i].want == NULL && rv != 0)
            fail_msg("case %zu refused: %s", i, err);
        if (cases[i].want != NULL && (rv != -EINVAL || strstr(err, cases[i].want) == NULL))
            fail_msg("case %zu: rv %d, message \"%s\", expected \"%s\"", i, rv, err, cases[i].want);
        json_decref(cfg);
    }
}

/* ---- a tiny HTTP/1.1 server on its own thread ------------------------------ */

#define SRV_CONNS 64
#define SRV_REQ_MAX 65536

typedef struct srv_conn {
    int fd; /* -1: free */
    char buf[SRV_REQ_MAX];
    size_t len;
    bool pending;    /* a request waits for its answer */
    uint64_t due_ms; /* when to answer it */
    int status;      /* its answer */
} srv_conn;

typedef struct srv {
    int lfd, port, wake[2];
    pthread_t thread;
    pthread_mutex_t mu;
    /* the script, set before the first request */
    int statuses[16]; /* the answers to the first requests, in order */
    size_t n_statuses;
    int status; /* then this one; 0: never answer */
    int delay_ms;
    /* what it saw */
    int n_requests, pending, max_pending;
    char first[SRV_REQ_MAX]; /* the first request, head and body */
    char body[SRV_REQ_MAX];  /* the last request's body */
    srv_conn conns[SRV_CONNS];
} srv;

/* A complete request in c->buf: its length, else 0. */
static size_t request_len(const srv_conn *c, size_t *body_at, size_t *body_len)
{
    const char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
    const char *cl;
    size_t n = 0;

    if (end == NULL)
        return 0;
    *body_at = (size_t)(end - c->buf) + 4;
    cl = memmem(c->buf, *body_at, "Content-Length: ", 16);
    if (cl != NULL)
        n = strtoul(cl + 16, NULL, 10);
    *body_len = n;
    return *body_at + n <= c->len ? *body_at + n : 0;
}

static void srv_answer(srv_conn *c)
{
    char out[256];
    int n = snprintf(out, sizeof(out),
                     "HTTP/1.1 %d Scripted\r\nContent-Length: 15\r\nContent-Type: text/plain\r\n"
                     "\r\nscripted answer",
                     c->status);
    (void)!write(c->fd, out, (size_t)n);
    c->pending = false;
}

static void *srv_main(void *arg)
{
    srv *s = arg;
    struct pollfd pfd[SRV_CONNS + 2];

    for (;;) {
        int n = 0, timeout = -1;
        uint64_t now = now_ms();
        pfd[n++] = (struct pollfd){.fd = s->wake[0], .events = POLLIN};
        pfd[n++] = (struct pollfd){.fd = s->lfd, .events = POLLIN};
        pthread_mutex_lock(&s->mu);
        for (int i = 0; i < SRV_CONNS; i++) {
            srv_conn *c = &s->conns[i];
            if (c->fd < 0)
                continue;
            if (c->pending && c->status != 0 && c->due_ms <= now) {
                srv_answer(c);
                s->pending--;
            }
            if (c->pending && c->status != 0) {
                int ms = (int)(c->due_ms - now);
                if (timeout < 0 || ms < timeout)
                    timeout = ms;
            }
        }
        pthread_mutex_unlock(&s->mu);
        for (int i = 0; i < SRV_CONNS; i++)
            pfd[n++] = (struct pollfd){.fd = s->conns[i].fd, .events = POLLIN};
        if (poll(pfd, (nfds_t)n, timeout) < 0)
            continue;
        if (pfd[0].revents)
            return NULL;
        if (pfd[1].revents & POLLIN) {
            int fd = accept(s->lfd, NULL, NULL);
            for (int i = 0; fd >= 0 && i < SRV_CONNS; i++) {
                if (s->conns[i].fd < 0) {
                    s->conns[i].fd = fd;
                    s->conns[i].len = 0;
                    s->conns[i].pending = false;
                    fd = -1;
                }
            }
            if (fd >= 0)
                close(fd);
        }
        for (int i = 0; i < SRV_CONNS; i++) {
            srv_conn *c = &s->conns[i];
            if (c->fd < 0 || !(pfd[i + 2].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            ssize_t got = read(c->fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len);
            pthread_mutex_lock(&s->mu);
            if (got <= 0) {
                if (c->pending)
                    s->pending--;
                close(c->fd);
                c->fd = -1;
                pthread_mutex_unlock(&s->mu);
                continue;
            }
            c->len += (size_t)got;
            size_t at, blen, len;
            while (!c->pending && (len = request_len(c, &at, &blen)) > 0) {
                if (s->n_requests == 0) {
                    memcpy(s->first, c->buf, len);
                    s->first[len] = '\0';
                }
                memcpy(s->body, c->buf + at, blen);
                s->body[blen] = '\0';
                c->status =
                    (size_t)s->n_requests < s->n_statuses ? s->statuses[s->n_requests] : s->status;
                s->n_requests++;
                c->pending = true;
                c->due_ms = now_ms() + (uint64_t)s->delay_ms;
                if (++s->pending > s->max_pending)
                    s->max_pending = s->pending;
                memmove(c->buf, c->buf + len, c->len - len);
                c->len -= len;
                if (c->status != 0 && s->delay_ms == 0) {
                    srv_answer(c);
                    s->pending--;
                }
            }
            pthread_mutex_unlock(&s->mu);
        }
    }
}

/* srv_open starts a server answering status (0: never) after delay_ms,
 * the first requests with the n statuses given. */
static srv *srv_open(int status, int delay_ms, size_t n, const int *statuses)
{
    srv *s = calloc(1, sizeof(*s));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);

    assert_non_null(s);
    for (int i = 0; i < SRV_CONNS; i++)
        s->conns[i].fd = -1;
    s->status = status;
    s->delay_ms = delay_ms;
    s->n_statuses = n;
    if (n > 0)
        memcpy(s->statuses, statuses, n * sizeof(*statuses));
    pthread_mutex_init(&s->mu, NULL);
    assert_int_equal(pipe(s->wake), 0);
    s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(s->lfd >= 0);
    assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(s->lfd, 64), 0);
    assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&a, &alen), 0);
    s->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&s->thread, NULL, srv_main, s), 0);
    return s;
}

static int srv_get(srv *s, const int *field)
{
    pthread_mutex_lock(&s->mu);
    int v = *field;
    pthread_mutex_unlock(&s->mu);
    return v;
}

static void srv_close(srv *s)
{
    (void)!write(s->wake[1], "x", 1);
    pthread_join(s->thread, NULL);
    for (int i = 0; i < SRV_CONNS; i++)
        if (s->conns[i].fd >= 0)
            close(s->conns[i].fd);
    close(s->lfd);
    close(s->wake[0]);
    close(s->wake[1]);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* A port nothing listens on (bound, then closed). */
static int closed_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* ---- a worker on a loop ----------------------------------------------------- */

typedef struct rig {
    uv_loop_t loop;
    uv_timer_t tick;
    bus *b;
    worker *w;
    char dir[256];
    int stopped;
    char log[16384];
    size_t log_len;
} rig;

static void on_ended(worker *w, int code, const char *error, void *data)
{
    (void)w;
    (void)data;
    fail_msg("the webhook worker ended (%d: %s): only events fail", code, error);
}

static void on_stopped(worker *w, void *data)
{
    (void)w;
    ((rig *)data)->stopped++;
}

static void on_log(worker *w, enum base_log_level level, const char *msg, void *data)
{
    rig *r = data;
    (void)w;
    (void)level;
    int n = snprintf(r->log + r->log_len, sizeof(r->log) - r->log_len, "%s\n", msg);
    if (n > 0 && r->log_len + (size_t)n < sizeof(r->log))
        r->log_len += (size_t)n;
}

static void on_tick(uv_timer_t *t)
{
    (void)t; /* only wakes the loop up */
}

static void rig_open(rig *r)
{
    const char *tmp = getenv("HERD_TEST_TMP");
    bus_config bc = {.no_sockets = 1};
    char err[256];

    memset(r, 0, sizeof(*r));
    snprintf(r->dir, sizeof(r->dir), "%s/webhook.XXXXXX", tmp != NULL ? tmp : "/tmp");
    assert_non_null(mkdtemp(r->dir));
    assert_int_equal(uv_loop_init(&r->loop), 0);
    assert_int_equal(bus_open(&r->loop, &bc, &r->b, err, sizeof(err)), 0);
    uv_timer_init(&r->loop, &r->tick);
    uv_timer_start(&r->tick, on_tick, 5, 5);
}

static int rig_start(rig *r, char *err, size_t err_size, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int rig_start(rig *r, char *err, size_t err_size, const char *fmt, ...)
{
    static const worker_host host_template = {on_ended, on_stopped, on_log, NULL};
    worker_host host = host_template;
    char text[4096], verr[512];
    json_error_t jerr;

    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    json_t *cfg = json_loads(text, 0, &jerr);
    if (cfg == NULL)
        fail_msg("%s: %s", text, jerr.text);
    if (worker_webhook_kind.validate(cfg, "w", verr, sizeof(verr)) != 0)
        fail_msg("%s refused: %s", text, verr);
    host.data = r;
    worker_params p = {
        .kind = &worker_webhook_kind,
        .name = "wh",
        .config = cfg,
        .loop = &r->loop,
        .bus = r->b,
        .state_dir = r->dir,
        .runtime_dir = r->dir,
        .host = &host,
    };
    assert_int_equal(worker_new(&p, &r->w), 0);
    json_decref(cfg);
    return worker_start(r->w, err, err_size);
}

static void publish(rig *r, const char *topic, const char *payload)
{
    assert_int_equal(bus_publish(r->b, topic, payload, strlen(payload)), 0);
}

static json_int_t field(rig *r, const char *name)
{
    json_t *h = json_object();
    worker_health_fields(r->w, h);
    json_t *v = json_object_get(h, name);
    json_int_t n = json_is_integer(v) ? json_integer_value(v) : -1;
    json_decref(h);
    return n;
}

/* check_counts: received = done + failed + dropped + queue_depth + in_flight. */
static void check_counts(rig *r)
{
    json_int_t rec = field(r, "received"), sum = field(r, "done") + field(r, "failed") +
                                                 field(r, "dropped") + field(r, "queue_depth") +
                                                 field(r, "in_flight");
    if (rec != sum)
        fail_msg("received %lld, done + failed + dropped + queue_depth + in_flight %lld",
                 (long long)rec, (long long)sum);
}

/* run_settled runs the loop until received n, none queued or in flight
 * (checking the counts at every turn), or ms passed; max_in_flight gets the
 * most seen. */
static bool run_settled(rig *r, json_int_t n, uint64_t ms, json_int_t *max_in_flight)
{
    uint64_t end = now_ms() + ms;
    while (now_ms() < end) {
        uv_run(&r->loop, UV_RUN_ONCE);
        check_counts(r);
        json_int_t in_flight = field(r, "in_flight");
        if (max_in_flight != NULL && in_flight > *max_in_flight)
            *max_in_flight = in_flight;
        if (field(r, "received") == n && field(r, "queue_depth") == 0 && in_flight == 0)
            return true;
    }
    return false;
}

static void run_for(rig *r, uint64_t ms)
{
    uint64_t end = now_ms() + ms;
    while (now_ms() < end) {
        uv_run(&r->loop, UV_RUN_ONCE);
        check_counts(r);
    }
}

/* rig_close stops the worker (if any), waits for its stop, frees it and
 * closes the bus and the loop; returns how long the stop took. */
static uint64_t rig_close(rig *r)
{
    if (r->w != NULL)
        check_counts(r);
    uint64_t t0 = now_ms(), took = 0;
    char cmd[600];

    if (r->w != NULL) {
        worker_stop(r->w);
        while (r->stopped == 0 && now_ms() < t0 + 10000)
            uv_run(&r->loop, UV_RUN_ONCE);
        took = now_ms() - t0;
        assert_int_equal(r->stopped, 1);
        worker_free(r->w);
    }
    uv_close((uv_handle_t *)&r->tick, NULL);
    bus_close(r->b, NULL, NULL);
    uv_run(&r->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&r->loop), 0);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", r->dir);
    assert_int_equal(system(cmd), 0);
    return took;
}

static void test_delivery_and_idle(void **state)
{
    rig r;
    char err[512];
    srv *s = srv_open(200, 0, 0, NULL);
    (void)state;

    rig_open(&r);
    assert_int_equal(rig_start(&r, err, sizeof(err),
                               "{\"subscribe\": [\"t.>\"], \"url\": "
                               "\"http://127.0.0.1:%d/in/x?k=secret\", \"keepalive_s\": 0, "
                               "\"headers\": {\"X-Token\": \"tok 1\", \"X-Empty\": \"\"}}",
                               s->port),
                     0);
    /* Idle: the instance's record, the kind's struct and its subscription,
     * each block at what it costs (base_mem_charge); no session, no buffer. */
    uint64_t idle = worker_heap_bytes(r.w);
    print_message("idle webhook worker: heap_bytes %llu\n", (unsigned long long)idle);
    assert_true(idle > 0 && idle < 2048);
    publish(&r, "t.a", "[1, \"\\u00e9\",  {\"k\": null}]");
    uint64_t flying = 0;
    while (field(&r, "done") < 1) {
        uv_run(&r.loop, UV_RUN_ONCE);
        if (field(&r, "in_flight") == 1 && worker_heap_bytes(r.w) > flying)
            flying = worker_heap_bytes(r.w);
    }
    /* What curl allocates for the request is charged to the worker. */
    print_message("one request in flight: heap_bytes %llu\n", (unsigned long long)flying);
    assert_true(flying > idle + 16384);
    assert_true(run_settled(&r, 1, 5000, NULL));
    assert_int_equal(field(&r, "done"), 1);
    assert_int_equal(field(&r, "failed"), 0);
    assert_int_equal(field(&r, "retries"), 0);
    assert_int_equal(field(&r, "last_status"), 200);
    assert_int_equal(srv_get(s, &s->n_requests), 1);
    /* The request: POST to the path, JSON, the configured headers. */
    assert_int_equal(strncmp(s->first, "POST /in/x?k=secret HTTP/1.1\r\n", 30), 0);
    assert_non_null(strstr(s->first, "\r\nContent-Type: application/json\r\n"));
    assert_non_null(strstr(s->first, "\r\nX-Token: tok 1\r\n"));
    assert_non_null(strstr(s->first, "\r\nX-Empty:\r\n"));
    assert_null(strstr(s->first, "Expect:"));
    /* The body: {"ts","topic","payload"}, the payload as the bytes published. */
    assert_int_equal(strncmp(s->body, "{\"ts\":\"", 7), 0);
    const char *tail = "Z\",\"topic\":\"t.a\",\"payload\":[1, \"\\u00e9\",  {\"k\": null}]}";
    assert_true(strlen(s->body) > strlen(tail));
    assert_string_equal(s->body + strlen(s->body) - strlen(tail), tail);
    /* keepalive_s 0: the session closes on the next turns, heap back to idle. */
    uint64_t end = now_ms() + 2000;
    while (worker_heap_bytes(r.w) != idle && now_ms() < end)
        uv_run(&r.loop, UV_RUN_ONCE);
    assert_int_equal(worker_heap_bytes(r.w), idle);
    /* And it opens again for the next event. */
    publish(&r, "t.b", "{}");
    assert_true(run_settled(&r, 2, 5000, NULL));
    assert_int_equal(field(&r, "done"), 2);
    assert_int_equal(srv_get(s, &s->n_requests), 2);
    assert_null(worker_last_error(r.w));
    rig_close(&r);
    srv_close(s);
}

static void test_retry_5xx(void **state)
{
    rig r;
    char err[512];
    static const int script[] = {500, 503};
    srv *s = srv_open(200, 0, 2, script);
    (void)state;

    rig_open(&r);
    assert_int_equal(rig_start(&r, err, sizeof(err),
                               "{\"subscribe\": [\"t\"], \"url\": \"http://127.0.0.1:%d/\", "
                               "\"retry_backoff\": {\"initial_ms\": 100, \"max_ms\": 1000}}",
                               s->port),
                     0);
    uint64_t t0 = now_ms();
    publish(&r, "t", "{\"n\": 1}");
    assert_true(run_settled(&r, 1, 5000, NULL));
    uint64_t took = now_ms() - t0;
    /* 100 ms, then 200 ms of backoff. */
    assert_true(took >= 290 && took < 3000);
    assert_int_equal(field(&r, "done"), 1);
    assert_int_equal(field(&r, "failed"), 0);
    assert_int_equal(field(&r, "retries"), 2);
    assert_int_equal(field(&r, "http_5xx"), 2);
    assert_int_equal(field(&r, "last_status"), 200);
    assert_int_equal(srv_get(s, &s->n_requests), 3);
    rig_close(&r);
    srv_close(s);
}

static void test_retries_exhausted_and_4xx(void **state)
{
    rig r;
    char err[512];
    static const int script[] = {502, 502, 502, 404};
    srv *s = srv_open(200, 0, 4, script);
    (void)state;

    rig_open(&r);
    assert_int_equal(rig_start(&r, err, sizeof(err),
                               "{\"subscribe\": [\"t\"], \"url\": \"http://127.0.0.1:%d/\", "
                               "\"max_retries\": 2, \"max_in_flight\": 1, "
                               "\"retry_backoff\": {\"initial_ms\": 10}}",
                               s->port),
                     0);
    publish(&r, "t", "1");
    assert_true(run_settled(&r, 1, 5000, NULL));
    assert_int_equal(field(&r, "failed"), 1);
    assert_int_equal(field(&r, "retries"), 2);
    assert_int_equal(field(&r, "http_5xx"), 3);
    assert_int_equal(srv_get(s, &s->n_requests), 3);
    char want[256];
    snprintf(want, sizeof(want),
             "event on t failed after 2 retries: HTTP 502 from http://127.0.0.1:%d: scripted "
             "answer",
             s->port);
    assert_string_equal(worker_last_error(r.w), want);
    /* A 4xx: failed at once, no retry. */
    publish(&r, "t", "2");
    assert_true(run_settled(&r, 2, 5000, NULL));
    assert_int_equal(field(&r, "failed"), 2);
    assert_int_equal(field(&r, "http_4xx"), 1);
    assert_int_equal(field(&r, "retries"), 2);
    assert_int_equal(field(&r, "last_status"), 404);
    assert_int_equal(srv_get(s, &s->n_requests), 4);
    assert_non_null(strstr(worker_last_error(r.w), "HTTP 404 from http://127.0.0.1:"));
    assert_non_null(strstr(worker_last_error(r.w), "(not retried): scripted answer"));
    /* The next success clears last_error. */
    publish(&r, "t", "3");
    assert_true(run_settled(&r, 3, 5000, NULL));
    assert_int_equal(field(&r, "done"), 1);
    assert_null(worker_last_error(r.w));
    rig_close(&r);
    srv_close(s);
}

static void test_connection_refused(void **state)
{
    rig r;
    char err[512];
    int port = closed_port();
    (void)state;

    rig_open(&r);
    assert_int_equal(rig_start(&r, err, sizeof(err),
                               "{\"subscribe\": [\"t\"], \"url\": \"http://user:pw@127.0.0.1:%d/"
                               "secret-path\", \"max_retries\": 2, "
                               "\"retry_backoff\": {\"initial_ms\": 10}}",
                               port),
                     0);
    publish(&r, "t", "{}");
    assert_true(run_settled(&r, 1, 5000, NULL));
    assert_int_equal(field(&r, "failed"), 1);
    assert_int_equal(field(&r, "conn_errors"), 3);
    assert_int_equal(field(&r, "retries"), 2);
    assert_int_equal(field(&r, "last_status"), 0);
    const char *e = worker_last_error(r.w);
    assert_non_null(e);
    assert_non_null(strstr(e, "event on t failed after 2 retries: http://127.0.0.1:"));
    /* Neither the user nor the path reaches a message. */
    assert_null(strstr(e, "pw"));
    assert_null(strstr(e, "secret-path"));
    assert_null(strstr(r.log, "secret-path"));
    assert_non_null(strstr(r.log, "event on t failed after 2 retries"));
    rig_close(&r);
}

static void test_timeout(void **state)
{
    rig r;
    char err[512];
    srv *s = srv_open(0, 0, 0, NULL);
    (void)state;

    rig_open(&r);
    assert_int_equal(rig_start(&r, err, sizeof(err),
                               "{\"subscribe\": [\"t\"], \"url\": \"http://127.0.0.1:%d/\", "
                               "\"timeout_s\": 1, \"max_retries\": 0}",
                               s->port),
                     0);
    uint64_t t0 = now_ms();
    publish(&r, "t", "{}");
    assert_true(run_settled(&r, 1, 5000, NULL));
    uint64_t took = now_ms() - t0;
    assert_true(took >= 990 && took < 2500);
    assert_int_equal(field(&r, "timeouts"), 1);
    assert_int_equal(field(&r, "failed"), 1);
    assert_int_equal(srv_get(s, &s->n_requests), 1);
    assert_non_null(strstr(worker_last_error(r.w), "no answer from http://127.0.0.1:"));
    assert_non_null(strstr(worker_last_error(r.w), "within timeout_s 1 s"));
    rig_close(&r);
    srv_close(s);
}

static void test_max_in_flight_and_drops(void **state)
{
    rig r;
    char err[512];
    json_int_t peak = 0;
    srv *s = srv_open(200, 100, 0, NULL);
    (void)state;

    rig_open(&r);
    assert_int_equal(rig_start(&r, err, sizeof(err),
                               "{\"subscribe\": [\"t\"], \"url\": \"http://127.0.0.1:%d/\", "
                               "\"max_in_flight\": 3, \"queue_max\": 5}",
                               s->port),
                     0);
    /* One loop turn delivers all 20: 3 go in flight, 5 wait, 12 are dropped
     * (the oldest of those waiting). */
    for (int i = 0; i < 20; i++)
        publish(&r, "t", "{}");
    assert_true(run_settled(&r, 20, 10000, &peak));
    assert_int_equal(peak, 3);
    assert_int_equal(srv_get(s, &s->max_pending), 3);
    assert_int_equal(field(&r, "done"), 8);
    assert_int_equal(field(&r, "dropped"), 12);
    assert_int_equal(srv_get(s, &s->n_requests), 8);
    rig_close(&r);
    srv_close(s);
}

static void test_stop_while_server_hangs(void **state)
{
    rig r;
    char err[512];
    srv *s = srv_open(0, 0, 0, NULL);
    (void)state;

    rig_open(&r);
    assert_int_equal(rig_start(&r, err, sizeof(err),
                               "{\"subscribe\": [\"t\"], \"url\": \"http://127.0.0.1:%d/\", "
                               "\"max_in_flight\": 2, \"timeout_s\": 3600}",
                               s->port),
                     0);
    for (int i = 0; i < 5; i++)
        publish(&r, "t", "{}");
    uint64_t end = now_ms() + 5000;
    while (srv_get(s, &s->pending) < 2 && now_ms() < end)
        run_for(&r, 10);
    assert_int_equal(srv_get(s, &s->pending), 2);
    assert_int_equal(field(&r, "in_flight"), 2);
    assert_int_equal(field(&r, "queue_depth"), 3);
    uint64_t took = rig_close(&r);
    assert_true(took < 1000);
    assert_non_null(
        strstr(r.log, "stopping: 2 requests aborted (counted failed), 3 queued events dropped"));
    srv_close(s);
}

static void test_stop_while_retry_waits(void **state)
{
    rig r;
    char err[512];
    int port = closed_port();
    (void)state;

    rig_open(&r);
    assert_int_equal(rig_start(&r, err, sizeof(err),
                               "{\"subscribe\": [\"t\"], \"url\": \"http://127.0.0.1:%d/\", "
                               "\"retry_backoff\": {\"initial_ms\": 60000, \"max_ms\": 60000}}",
                               port),
                     0);
    publish(&r, "t", "{}");
    uint64_t end = now_ms() + 5000;
    while (field(&r, "retries") < 1 && now_ms() < end)
        run_for(&r, 10);
    assert_int_equal(field(&r, "retries"), 1);
    /* The retry waits, holding its slot. */
    assert_int_equal(field(&r, "in_flight"), 1);
    uint64_t took = rig_close(&r);
    assert_true(took < 1000);
}

static void test_ca_file_at_start(void **state)
{
    rig r;
    char err[512], path[600];
    (void)state;

    rig_open(&r);
    snprintf(path, sizeof(path), "%s/ca.pem", r.dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("not a certificate\n", f);
    fclose(f);
    assert_int_equal(rig_start(&r, err, sizeof(err),
                               "{\"subscribe\": [\"t\"], \"url\": \"https://127.0.0.1:1/\", "
                               "\"ca_file\": \"%s\"}",
                               path),
                     -EINVAL);
    assert_non_null(strstr(err, "/ca.pem\": no PEM certificate in it"));
    worker_free(r.w);
    r.w = NULL;
    /* Validated, then gone before the start. */
    json_t *cfg = json_pack("{s:[s],s:s,s:s}", "subscribe", "t", "url", "https://127.0.0.1:1/",
                            "ca_file", path);
    assert_int_equal(worker_webhook_kind.validate(cfg, "w", err, sizeof(err)), 0);
    assert_int_equal(unlink(path), 0);
    static const worker_host host_template = {on_ended, on_stopped, on_log, NULL};
    worker_host host = host_template;
    host.data = &r;
    worker_params p = {.kind = &worker_webhook_kind,
                       .name = "wh",
                       .config = cfg,
                       .loop = &r.loop,
                       .bus = r.b,
                       .state_dir = r.dir,
                       .runtime_dir = r.dir,
                       .host = &host};
    assert_int_equal(worker_new(&p, &r.w), 0);
    json_decref(cfg);
    assert_int_equal(worker_start(r.w, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "/ca.pem\": No such file or directory"));
    worker_free(r.w);
    r.w = NULL;
    rig_close(&r);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_validate),
        cmocka_unit_test(test_delivery_and_idle),
        cmocka_unit_test(test_retry_5xx),
        cmocka_unit_test(test_retries_exhausted_and_4xx),
        cmocka_unit_test(test_connection_refused),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_max_in_flight_and_drops),
        cmocka_unit_test(test_stop_while_server_hangs),
        cmocka_unit_test(test_stop_while_retry_waits),
        cmocka_unit_test(test_ca_file_at_start),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
