/*
 * herdd's HTTP routes (DESIGN.md section 4, HTTP) on the server of http.c:
 * / (the dashboard page), /healthz, /metrics, /api/status and /api/events.
 *
 * Design notes:
 * - The API exists before the supervisor does (it listens right after the
 *   bus opens, so a busy address stops herdd before any worker starts) and
 *   after it (the supervisor is freed before the bus closes): without one
 *   attached, every route answers 503.
 * - /api/status is the supervisor's `status` op, asked through the bus
 *   (bus_request_local) like herdctl asks it; the reply's result is
 *   spliced out of the reply bytes, never re-serialized.
 * - /api/events holds nothing while no client listens: the one bus
 *   subscription (system.>, filtered to system.<w>.state and .health, in
 *   publication order) exists only while at least one stream is open. Each
 *   event is written to every stream as it comes; a client that does not
 *   read is cut off once max_stream_queue_bytes of events wait for it
 *   (http.c), rather than having events silently dropped: an EventSource
 *   reconnects and a dashboard that re-reads /api/status is right again,
 *   where a stream with holes would look live and be wrong.
 * - / is supervisor/dashboard.html, compiled in (dashboard_html.c). It is
 *   served whether or not a supervisor is attached: the page itself says
 *   when the API behind it answers 503. Its CSP lets it fetch only from
 *   this origin and run only its own inline script and style.
 */
#include "supervisor/internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sup_http_api {
    bus *bus;
    struct sup *sup; /* NULL: not attached (yet, or any more) */
    sup_http *http;
    base_list streams; /* sse_stream, one per /api/events client */
    bus_sub *sub;      /* only while streams is not empty */
    uint64_t events_sent;
};

typedef struct sse_stream {
    base_list_node node;
    sup_http_api *api;
    sup_http_req *req;
} sse_stream;

static bool unavailable(sup_http_api *a, sup_http_req *r)
{
    if (a->sup != NULL)
        return false;
    sup__http_respond_error(r, 503, "unavailable", "herdd is starting or stopping");
    return true;
}

/* ---- / ------------------------------------------------------------------- */

static void route_dashboard(sup_http_req *r, void *data)
{
    char headers[SUP_HTTP_MAX_EXTRA_HEADER_BYTES + 1];
    int n = snprintf(headers, sizeof(headers),
                     "Content-Security-Policy: %s\r\nX-Content-Type-Options: nosniff\r\n"
                     "Referrer-Policy: no-referrer\r\n",
                     sup__dashboard_csp);

    if (n < 0 || (size_t)n >= sizeof(headers) ||
        sup__http_respond_headers(r, 200, "text/html; charset=utf-8", headers, sup__dashboard_html,
                                  sup__dashboard_html_len) == -EINVAL)
        sup__http_respond_error(r, 500, "internal", "the dashboard's headers are malformed");
}

/* ---- /healthz ----------------------------------------------------------- */

/* 200 when every enabled permanent worker runs, else 503 naming the
 * others. A worker that is transient or temporary may rightly be stopped. */
static void route_healthz(sup_http_req *r, void *data)
{
    sup_http_api *a = data;
    json_t *body, *down;
    int checked = 0;

    if (unavailable(a, r))
        return;
    body = json_object();
    down = json_array();
    if (body == NULL || down == NULL) {
        json_decref(body);
        json_decref(down);
        sup__http_respond_error(r, 500, "internal", "out of memory");
        return;
    }
    for (sup_worker *sw = a->sup->workers; sw != NULL; sw = sw->next) {
        if (!sw->cfg.enabled || sw->cfg.policy.restart != SUP_RESTART_PERMANENT)
            continue;
        checked++;
        if (sw->state == SUP_RUNNING)
            continue;
        const char *err = sw->inst != NULL ? worker_last_error(sw->inst) : NULL;
        if (err == NULL && sw->last_error[0])
            err = sw->last_error;
        json_array_append_new(down, json_pack("{s:s,s:s,s:s,s:s?}", "worker", sw->cfg.name, "kind",
                                              sw->cfg.kind, "state", sup__state_name(sw->state),
                                              "last_error", err));
    }
    bool ok = json_array_size(down) == 0 && !a->sup->shutting_down;
    json_object_set_new(body, "ok", json_boolean(ok));
    json_object_set_new(body, "checked", json_integer(checked));
    if (a->sup->shutting_down)
        json_object_set_new(body, "stopping", json_true());
    json_object_set_new(body, "not_running", down);
    sup__http_respond_json(r, ok ? 200 : 503, body);
    json_decref(body);
}

/* ---- /api/status ---------------------------------------------------------- */

/* reply_member finds the raw range of a top-level member of a reply. */
static bool reply_member(const char *reply, size_t len, const char *key, size_t *start, size_t *end)
{
    base_json_scan sc;
    size_t ks, ke, vs, ve, klen = strlen(key);
    int first = 1;

    base_json_scan_init(&sc, reply, len);
    if (base_json_scan_expect(&sc, '{') < 0)
        return false;
    while (base_json_scan_member(&sc, &first, &ks, &ke) == 1) {
        if (base_json_scan_value(&sc, &vs, &ve) < 0)
            return false;
        /* Keys the bus writes are plain: compare inside the quotes. */
        if (ke - ks == klen + 2 && memcmp(reply + ks + 1, key, klen) == 0) {
            *start = vs;
            *end = ve;
            return true;
        }
    }
    return false;
}

static void on_status_reply(const char *reply, size_t len, void *data)
{
    sup_http_req *r = data;
    size_t s, e, os, oe;

    if (sup__http_req_alive(r)) {
        bool ok = reply_member(reply, len, "ok", &os, &oe) && oe - os == 4 &&
                  memcmp(reply + os, "true", 4) == 0;
        if (ok && reply_member(reply, len, "result", &s, &e)) {
            base_buf b = {0};
            if (base_buf_add(&b, reply + s, e - s) == 0 && base_buf_add(&b, "\n", 1) == 0)
                sup__http_respond_buf(r, 200, "application/json", &b);
            else
                sup__http_respond_error(r, 500, "internal", "out of memory");
            base_buf_free(&b);
        } else if (reply_member(reply, len, "error", &s, &e)) {
            base_buf b = {0};
            if (base_buf_adds(&b, "{\"error\":") == 0 && base_buf_add(&b, reply + s, e - s) == 0 &&
                base_buf_adds(&b, "}\n") == 0)
                sup__http_respond_buf(r, 503, "application/json", &b);
            else
                sup__http_respond_error(r, 500, "internal", "out of memory");
            base_buf_free(&b);
        } else {
            sup__http_respond_error(r, 500, "internal", "malformed reply from the supervisor");
        }
    }
    sup__http_req_release(r);
}

static void route_status(sup_http_req *r, void *data)
{
    sup_http_api *a = data;
    int rv;

    if (unavailable(a, r))
        return;
    /* The reply may come later (or, for status, at once). */
    sup__http_req_hold(r);
    rv = bus_request_local(a->bus, "supervisor", "status", NULL, on_status_reply, r);
    if (rv < 0) {
        sup__http_respond_error(r, 503, "unavailable", "the bus refused the request: %s",
                                strerror(-rv));
        sup__http_req_release(r);
    }
}

/* ---- /metrics ----------------------------------------------------------------- */

static void route_metrics(sup_http_req *r, void *data)
{
    sup_http_api *a = data;
    sup_http_stats hs;
    base_buf b = {0};

    if (unavailable(a, r))
        return;
    sup__http_get_stats(a->http, &hs);
    hs.stream_events = a->events_sent;
    if (sup__metrics_render(a->sup, &hs, &b) < 0) {
        base_buf_free(&b);
        sup__http_respond_error(r, 500, "internal", "out of memory");
        return;
    }
    sup__http_respond_buf(r, 200, "text/plain; version=0.0.4; charset=utf-8", &b);
    base_buf_free(&b);
}

/* ---- /api/events ----------------------------------------------------------------- */

/* sse_add appends one event: "event: TOPIC", the payload as data lines
 * (a line break in it starts a new one), a blank line. */
static int sse_add(base_buf *b, const bus_event *ev)
{
    const char *p = ev->payload, *end = ev->payload + ev->payload_len;
    int rc = 0;

    rc |= base_buf_adds(b, "event: ");
    rc |= base_buf_add(b, ev->topic, ev->topic_len);
    rc |= base_buf_adds(b, "\ndata: ");
    while (p < end) {
        const char *nl = p;
        while (nl < end && *nl != '\n' && *nl != '\r')
            nl++;
        rc |= base_buf_add(b, p, (size_t)(nl - p));
        if (nl == end)
            break;
        rc |= base_buf_adds(b, "\ndata: ");
        p = nl + 1;
        if (*nl == '\r' && p < end && *p == '\n')
            p++;
    }
    rc |= base_buf_adds(b, "\n\n");
    return rc < 0 ? -ENOMEM : 0;
}

static void on_event(const bus_event *ev, void *data)
{
    sup_http_api *a = data;
    base_buf b = {0};
    sse_stream *st;

    if (!bus_topic_match("system.*.state", 14, ev->topic, ev->topic_len) &&
        !bus_topic_match("system.*.health", 15, ev->topic, ev->topic_len))
        return;
    if (sse_add(&b, ev) < 0) {
        base_buf_free(&b);
        return;
    }
    /* A stream cut off here leaves the list from inside the loop (the
     * macro allows it) and may end the subscription (allowed in its own
     * callback). */
    BASE_LIST_FOREACH(&a->streams, sse_stream, node, st)
    {
        if (sup__http_stream_write(st->req, b.data, b.len) == 0)
            a->events_sent++;
    }
    base_buf_free(&b);
}

static void stream_closed(sup_http_req *r, void *data)
{
    sse_stream *st = data;
    sup_http_api *a = st->api;

    base_list_remove(&a->streams, &st->node);
    base_free(st);
    if (a->streams.count == 0) {
        bus_unsubscribe(a->sub);
        a->sub = NULL;
    }
}

static void route_events(sup_http_req *r, void *data)
{
    static const char hello[] = "retry: 2000\n\n";
    sup_http_api *a = data;
    sse_stream *st;
    int rv;

    if (unavailable(a, r))
        return;
    st = base_calloc(1, sizeof(*st));
    if (st == NULL) {
        sup__http_respond_error(r, 500, "internal", "out of memory");
        return;
    }
    st->api = a;
    st->req = r;
    if (a->sub == NULL && (rv = bus_subscribe(a->bus, "system.>", 0, on_event, a, &a->sub)) < 0) {
        base_free(st);
        sup__http_respond_error(r, 503, "unavailable", "cannot subscribe: %s", strerror(-rv));
        return;
    }
    rv = sup__http_stream_start(r, "text/event-stream", stream_closed, st);
    if (rv != 0) {
        base_free(st);
        if (a->streams.count == 0) {
            bus_unsubscribe(a->sub);
            a->sub = NULL;
        }
        if (rv == -EBUSY)
            sup__http_respond_error(r, 503, "busy", "too many event streams (at most %d)",
                                    SUP_HTTP_MAX_STREAMS);
        return; /* 1: a HEAD answered; else the connection is gone */
    }
    base_list_append(&a->streams, &st->node);
    sup__http_stream_write(r, hello, sizeof(hello) - 1);
}

/* ---- the route table and the API -------------------------------------------------- */

static const sup_http_route routes[] = {
    {"/", route_dashboard},        {"/healthz", route_healthz},   {"/metrics", route_metrics},
    {"/api/status", route_status}, {"/api/events", route_events}, {NULL, NULL},
};

int sup__http_api_open(uv_loop_t *loop, bus *b, const char *listen, const sup_http_limits *limits,
                       sup_http_api **out, char *err, size_t err_size)
{
    sup_http_api *a = base_calloc(1, sizeof(*a));
    int rv;

    *out = NULL;
    if (a == NULL)
        return base_errf(err, err_size, "http: out of memory");
    a->bus = b;
    base_list_init(&a->streams);
    if ((rv = sup__http_open(loop, listen, limits, routes, a, &a->http, err, err_size)) < 0) {
        base_free(a);
        return rv;
    }
    *out = a;
    return 0;
}

void sup__http_api_attach(sup_http_api *a, struct sup *s)
{
    if (a != NULL)
        a->sup = s;
}

void sup__http_api_address(const sup_http_api *a, char *buf, size_t size)
{
    sup__http_address(a->http, buf, size);
}

static void on_http_closed(void *data)
{
    base_free(data);
}

void sup__http_api_close(sup_http_api *a)
{
    if (a == NULL)
        return;
    a->sup = NULL;
    /* Closing the server ends every stream now (stream_closed), which
     * drops the subscription with the last one. */
    sup__http_close(a->http, on_http_closed, a);
    HERD_ASSERT(a->sub == NULL);
}
