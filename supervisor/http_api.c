/*
 * herdd's HTTP routes (DESIGN.md section 4, HTTP) on the server of http.c:
 * / (the dashboard page), /healthz, /metrics, /api/status, /api/events and
 * /api/fleet.
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
 * - /api/fleet is the fleet store: what other hosts' herdd publish, as a
 *   `nats` worker imports it onto this bus (fleet.<host>.system.<w>.health,
 *   .state, fleet.<host>.system.supervisor.health; DESIGN.md 3 and 7b).
 *   Unlike /api/events it has its own subscription for the API's whole
 *   life (the store must fill while no page is open), and it keeps only
 *   the last of each thing: per host its last supervisor health, per
 *   worker one object (its last health, "state" as of its last state
 *   event, that event as "last_change"), stored serialized so a request
 *   splices bytes. Bounded: at most max_hosts hosts (http.fleet_max_hosts),
 *   SUP_HTTP_FLEET_MAX_WORKERS workers a host, FLEET_MAX_EVENT_BYTES an
 *   event and FLEET_MAX_BYTES in all; what does not fit is counted, never
 *   stored. A new host over max_hosts takes the place of the stalest host
 *   only if that one is stale (counted as evicted): a flood of host names
 *   never pushes out a live host (it is counted as refused), and hosts gone
 *   for good do not keep new ones out. Under the cap a stale host stays,
 *   marked, until then (it is what an operator looks for).
 * - Staleness is judged on this loop's clock at arrival (no clock of the
 *   other host is trusted): a host is stale once nothing came from it for
 *   3 heartbeat periods, the period being the gap between its last two
 *   supervisor heartbeats (at least 1 s), or 10 s (the default
 *   health_interval_s) until two have come. The payload carries no
 *   interval.
 * - The page polls /api/fleet (every few seconds) rather than having fleet
 *   events on /api/events: the stream stays as small as one host's events,
 *   so a busy fleet can never get the local dashboard's stream cut off, and
 *   a poll of the bounded store is right by construction, holes or not.
 * - The store's memory is in an account of its own (http.c keeps its
 *   server's private), reported with the server's in /metrics
 *   (herd_http_heap_bytes) and as heap_bytes in /api/fleet.
 */
#include "supervisor/internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One worker of another host: its last health merged with its last state
 * event (design notes), serialized. */
typedef struct fleet_worker {
    char name[65];
    char *obj; /* base_malloc'd JSON object, NULL until an event came */
    size_t obj_len;
    char *change; /* the last state event as received, NULL for none */
    size_t change_len;
} fleet_worker;

typedef struct fleet_host {
    char name[65];
    uint64_t last_seen_ms; /* loop time of its last event kept */
    uint64_t last_beat_ms; /* of its last supervisor health; 0: none yet */
    uint64_t period_ms;    /* the gap between its last two; 0: not known */
    char *sup;             /* its last supervisor health as received */
    size_t sup_len;
    fleet_worker *workers; /* n_workers used of cap_workers */
    uint32_t n_workers, cap_workers;
    base_htab index; /* workers by name */
    uint64_t workers_refused;
} fleet_host;

typedef struct fleet {
    int max_hosts; /* 0: the fleet view is off (no subscription) */
    uint32_t slot; /* the store's account */
    uv_loop_t *loop;
    bus_sub *sub;
    fleet_host **hosts; /* n_hosts used of cap_hosts */
    uint32_t n_hosts, cap_hosts;
    base_htab index; /* hosts by name */
    uint64_t refused, evicted, dropped;
} fleet;

struct sup_http_api {
    bus *bus;
    struct sup *sup; /* NULL: not attached (yet, or any more) */
    sup_http *http;
    base_list streams; /* sse_stream, one per /api/events client */
    bus_sub *sub;      /* only while streams is not empty */
    uint64_t events_sent;
    fleet fleet;
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
        if (err == NULL && sw->last_error != NULL)
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
    if (a->fleet.slot != 0)
        hs.heap_bytes += base_mem_slot_bytes(a->fleet.slot);
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

/* ---- the fleet store and /api/fleet -------------------------------------------- */

#define FLEET_MAX_EVENT_BYTES (16u * 1024)
#define FLEET_MAX_BYTES (64u << 20)
#define FLEET_DEFAULT_PERIOD_MS ((uint64_t)SUP_DEFAULT_HEALTH_INTERVAL_S * 1000)
#define FLEET_MIN_PERIOD_MS 1000u
#define FLEET_MAX_PERIOD_MS 3600000u
#define FLEET_STALE_PERIODS 3

static uint32_t fleet_host_hash(uint32_t item, void *ctx)
{
    const fleet *f = ctx;
    return base_hash(f->hosts[item]->name, strlen(f->hosts[item]->name), 0);
}

static bool fleet_host_match(uint32_t item, const void *key, void *ctx)
{
    const fleet *f = ctx;
    return strcmp(f->hosts[item]->name, key) == 0;
}

static uint32_t fleet_worker_hash(uint32_t item, void *ctx)
{
    const fleet_host *h = ctx;
    return base_hash(h->workers[item].name, strlen(h->workers[item].name), 0);
}

static bool fleet_worker_match(uint32_t item, const void *key, void *ctx)
{
    const fleet_host *h = ctx;
    return strcmp(h->workers[item].name, key) == 0;
}

static uint64_t fleet_stale_after_ms(const fleet_host *h)
{
    return FLEET_STALE_PERIODS * (h->period_ms != 0 ? h->period_ms : FLEET_DEFAULT_PERIOD_MS);
}

static bool fleet_stale(const fleet_host *h, uint64_t now)
{
    return now - h->last_seen_ms > fleet_stale_after_ms(h);
}

/* fleet_host_clear frees what a host holds, its struct kept. */
static void fleet_host_clear(fleet_host *h)
{
    for (uint32_t i = 0; i < h->n_workers; i++) {
        base_free(h->workers[i].obj);
        base_free(h->workers[i].change);
    }
    base_free(h->workers);
    base_free(h->sup);
    base_htab_free(&h->index);
    memset(h, 0, sizeof(*h));
}

/* fleet_host_get finds or admits host (in f's account); NULL when it is
 * not kept (counted). */
static fleet_host *fleet_host_get(fleet *f, const char *name, uint64_t now)
{
    uint32_t hash = base_hash(name, strlen(name), 0);
    uint32_t i = base_htab_find(&f->index, hash, fleet_host_match, name, f);
    fleet_host *h;

    if (i != BASE_HTAB_NONE)
        return f->hosts[i];
    if (f->n_hosts >= (uint32_t)f->max_hosts) {
        fleet_host *oldest = NULL;
        for (i = 0; i < f->n_hosts; i++)
            if (oldest == NULL || f->hosts[i]->last_seen_ms < oldest->last_seen_ms)
                oldest = f->hosts[i];
        if (oldest == NULL || !fleet_stale(oldest, now)) {
            f->refused++;
            return NULL;
        }
        /* The slot is reused under another name: the index (which never
         * removes) is built again. Rare: only at the cap, and only over a
         * stale host. */
        fleet_host_clear(oldest);
        snprintf(oldest->name, sizeof(oldest->name), "%s", name);
        oldest->last_seen_ms = now;
        base_htab_free(&f->index);
        /* Reserved first, the inserts cannot fail. */
        if (base_htab_reserve(&f->index, f->n_hosts, fleet_host_hash, f) < 0) {
            f->dropped++;
            return NULL; /* every host is unknown until memory is back */
        }
        for (i = 0; i < f->n_hosts; i++)
            base_htab_insert(&f->index, fleet_host_hash(i, f), i, fleet_host_hash, f);
        f->evicted++;
        return oldest;
    }
    if (f->n_hosts == f->cap_hosts) {
        uint32_t cap = f->cap_hosts != 0 ? f->cap_hosts * 2 : 16;
        if (cap > (uint32_t)f->max_hosts)
            cap = (uint32_t)f->max_hosts;
        fleet_host **grown = base_realloc(f->hosts, cap * sizeof(*grown));
        if (grown == NULL) {
            f->dropped++;
            return NULL;
        }
        f->hosts = grown;
        f->cap_hosts = cap;
    }
    if ((h = base_calloc(1, sizeof(*h))) == NULL) {
        f->dropped++;
        return NULL;
    }
    snprintf(h->name, sizeof(h->name), "%s", name);
    h->last_seen_ms = now;
    f->hosts[f->n_hosts] = h;
    if (base_htab_insert(&f->index, hash, f->n_hosts, fleet_host_hash, f) < 0) {
        base_free(h);
        f->dropped++;
        return NULL;
    }
    f->n_hosts++;
    return h;
}

static fleet_worker *fleet_worker_get(fleet *f, fleet_host *h, const char *name)
{
    uint32_t hash = base_hash(name, strlen(name), 0);
    uint32_t i = base_htab_find(&h->index, hash, fleet_worker_match, name, h);

    if (i != BASE_HTAB_NONE)
        return &h->workers[i];
    if (h->n_workers >= SUP_HTTP_FLEET_MAX_WORKERS) {
        h->workers_refused++;
        return NULL;
    }
    if (h->n_workers == h->cap_workers) {
        uint32_t cap = h->cap_workers != 0 ? h->cap_workers * 2 : 8;
        if (cap > SUP_HTTP_FLEET_MAX_WORKERS)
            cap = SUP_HTTP_FLEET_MAX_WORKERS;
        fleet_worker *grown = base_realloc(h->workers, cap * sizeof(*grown));
        if (grown == NULL) {
            f->dropped++;
            return NULL;
        }
        h->workers = grown;
        h->cap_workers = cap;
    }
    fleet_worker *w = &h->workers[h->n_workers];
    memset(w, 0, sizeof(*w));
    snprintf(w->name, sizeof(w->name), "%s", name);
    if (base_htab_insert(&h->index, hash, h->n_workers, fleet_worker_hash, h) < 0) {
        f->dropped++;
        return NULL;
    }
    h->n_workers++;
    return w;
}

/* fleet_fits: room in the store's budget (FLEET_MAX_BYTES) for a value of
 * len bytes that replaces one of old bytes (counted as dropped when not). */
static bool fleet_fits(fleet *f, size_t len, size_t old)
{
    /* Slot 0 (the table was full) is everyone's: no budget to read. */
    if (len <= old || f->slot == 0 || base_mem_slot_bytes(f->slot) + len <= FLEET_MAX_BYTES)
        return true;
    f->dropped++;
    return false;
}

/* fleet_put replaces *dst (of *dst_len bytes) with a copy of len bytes. */
static int fleet_put(fleet *f, char **dst, size_t *dst_len, const void *data, size_t len)
{
    char *copy;

    if (!fleet_fits(f, len, *dst != NULL ? *dst_len : 0))
        return -ENOBUFS;
    if ((copy = base_malloc(len)) == NULL) {
        f->dropped++;
        return -ENOMEM;
    }
    memcpy(copy, data, len);
    base_free(*dst);
    *dst = copy;
    *dst_len = len;
    return 0;
}

/* fleet_put_json replaces *dst with o (borrowed) serialized. */
static int fleet_put_json(fleet *f, char **dst, size_t *dst_len, const json_t *o)
{
    size_t len = json_dumpb(o, NULL, 0, JSON_COMPACT);
    char *buf;

    if (len == 0 || !fleet_fits(f, len, *dst != NULL ? *dst_len : 0))
        return -ENOBUFS;
    if ((buf = base_malloc(len)) == NULL || json_dumpb(o, buf, len, JSON_COMPACT) != len) {
        base_free(buf);
        f->dropped++;
        return -ENOMEM;
    }
    base_free(*dst);
    *dst = buf;
    *dst_len = len;
    return 0;
}

/* A worker's health (is_state false) or state event, ev (borrowed, an
 * object), merged into its one object. */
static void fleet_worker_event(fleet *f, fleet_worker *w, bool is_state, json_t *ev,
                               const bus_event *raw)
{
    json_t *o, *change = NULL;

    if (is_state) {
        const char *to = json_string_value(json_object_get(ev, "to"));
        if (to == NULL) {
            f->dropped++;
            return;
        }
        o = w->obj != NULL ? json_loadb(w->obj, w->obj_len, 0, NULL) : json_object();
        if (o == NULL || json_object_set_new(o, "state", json_string(to)) < 0 ||
            json_object_set(o, "last_change", ev) < 0 ||
            fleet_put(f, &w->change, &w->change_len, raw->payload, raw->payload_len) < 0) {
            if (o == NULL)
                f->dropped++;
            json_decref(o);
            return;
        }
    } else {
        o = json_incref(ev);
        if (w->change != NULL)
            change = json_loadb(w->change, w->change_len, 0, NULL);
        if (change != NULL)
            json_object_set_new(o, "last_change", change);
    }
    if (json_object_get(o, "worker") == NULL)
        json_object_set_new(o, "worker", json_string(w->name));
    fleet_put_json(f, &w->obj, &w->obj_len, o);
    json_decref(o);
}

/* fleet_topic splits fleet.<host>.system.<name>.<what> into its host,
 * name and what (pointers into buf); false for any other topic. */
static bool fleet_topic(const bus_event *ev, char *buf, size_t size, const char **host,
                        const char **name, const char **what)
{
    char *tok[6];
    int n = 0;

    if (ev->topic_len >= size)
        return false;
    memcpy(buf, ev->topic, ev->topic_len);
    buf[ev->topic_len] = '\0';
    for (char *p = buf; n < 6;) {
        tok[n++] = p;
        if ((p = strchr(p, '.')) == NULL)
            break;
        *p++ = '\0';
    }
    if (n != 5 || strcmp(tok[0], "fleet") != 0 || strcmp(tok[2], "system") != 0)
        return false;
    *host = tok[1];
    *name = tok[3];
    *what = tok[4];
    return true;
}

static void on_fleet_event(const bus_event *ev, void *data)
{
    sup_http_api *a = data;
    fleet *f = &a->fleet;
    char buf[256];
    const char *host, *name, *what;
    uint64_t now = uv_now(f->loop);
    bool is_sup, is_state;

    if (!fleet_topic(ev, buf, sizeof(buf), &host, &name, &what))
        return;
    is_sup = strcmp(name, "supervisor") == 0;
    is_state = strcmp(what, "state") == 0;
    /* Controls (to a host or to fleet.all) are not what a host reports. */
    if ((!is_state && strcmp(what, "health") != 0) || (is_sup && is_state) ||
        strcmp(host, "all") == 0)
        return;
    if (!base_token_valid(host) || !base_token_valid(name) ||
        ev->payload_len > FLEET_MAX_EVENT_BYTES) {
        f->dropped++;
        return;
    }
    uint32_t prev = base_mem_switch(f->slot);
    json_t *o = json_loadb(ev->payload, ev->payload_len, 0, NULL);
    fleet_host *h;
    if (!json_is_object(o)) {
        f->dropped++;
    } else if ((h = fleet_host_get(f, host, now)) != NULL) {
        h->last_seen_ms = now;
        if (is_sup) {
            if (h->last_beat_ms != 0) {
                uint64_t gap = now - h->last_beat_ms;
                h->period_ms = gap < FLEET_MIN_PERIOD_MS   ? FLEET_MIN_PERIOD_MS
                               : gap > FLEET_MAX_PERIOD_MS ? FLEET_MAX_PERIOD_MS
                                                           : gap;
            }
            h->last_beat_ms = now;
            fleet_put(f, &h->sup, &h->sup_len, ev->payload, ev->payload_len);
        } else {
            fleet_worker *w = fleet_worker_get(f, h, name);
            if (w != NULL)
                fleet_worker_event(f, w, is_state, o, ev);
        }
    }
    json_decref(o);
    base_mem_switch(prev);
}

static int fleet_open(sup_http_api *a, uv_loop_t *loop, int max_hosts)
{
    fleet *f = &a->fleet;
    int rv;

    f->loop = loop;
    f->max_hosts = max_hosts < 0 ? 0 : max_hosts > 0 ? max_hosts : SUP_HTTP_FLEET_MAX_HOSTS;
    if (f->max_hosts == 0)
        return 0;
    f->slot = base_mem_slot_acquire();
    uint32_t prev = base_mem_switch(f->slot);
    rv = bus_subscribe(a->bus, "fleet.*.system.>", 0, on_fleet_event, a, &f->sub);
    base_mem_switch(prev);
    return rv;
}

static void fleet_close(fleet *f)
{
    uint32_t prev = base_mem_switch(f->slot);

    bus_unsubscribe(f->sub);
    f->sub = NULL;
    for (uint32_t i = 0; i < f->n_hosts; i++) {
        fleet_host_clear(f->hosts[i]);
        base_free(f->hosts[i]);
    }
    base_free(f->hosts);
    f->hosts = NULL;
    f->n_hosts = f->cap_hosts = 0;
    base_htab_free(&f->index);
    base_mem_switch(prev);
    if (f->slot != 0)
        base_mem_slot_release(f->slot);
    f->slot = 0;
}

static int fleet_host_cmp(const void *x, const void *y)
{
    return strcmp((*(fleet_host *const *)x)->name, (*(fleet_host *const *)y)->name);
}

/* {"hosts": [...], "max_hosts", "refused", "evicted", "dropped",
 * "heap_bytes"}, hosts by name; a host's and a worker's objects spliced
 * from the store. */
static int fleet_render(fleet *f, base_buf *b)
{
    uint64_t now = uv_now(f->loop);
    fleet_host **sorted = NULL;
    int rc = 0;

    if (f->n_hosts > 0) {
        if ((sorted = base_malloc(f->n_hosts * sizeof(*sorted))) == NULL)
            return -ENOMEM;
        memcpy(sorted, f->hosts, f->n_hosts * sizeof(*sorted));
        qsort(sorted, f->n_hosts, sizeof(*sorted), fleet_host_cmp);
    }
    rc |= base_buf_adds(b, "{\"hosts\":[");
    for (uint32_t i = 0; i < f->n_hosts; i++) {
        const fleet_host *h = sorted[i];
        rc |= base_buf_addf(b,
                            "%s{\"host\":\"%s\",\"last_seen_ms_ago\":%llu,\"stale\":%s,"
                            "\"stale_after_ms\":%llu,\"workers_refused\":%llu,\"supervisor\":",
                            i ? "," : "", h->name, (unsigned long long)(now - h->last_seen_ms),
                            fleet_stale(h, now) ? "true" : "false",
                            (unsigned long long)fleet_stale_after_ms(h),
                            (unsigned long long)h->workers_refused);
        rc |= h->sup != NULL ? base_buf_add(b, h->sup, h->sup_len) : base_buf_adds(b, "null");
        rc |= base_buf_adds(b, ",\"workers\":[");
        bool first = true;
        for (uint32_t j = 0; j < h->n_workers; j++) {
            if (h->workers[j].obj == NULL)
                continue;
            rc |= base_buf_adds(b, first ? "" : ",");
            rc |= base_buf_add(b, h->workers[j].obj, h->workers[j].obj_len);
            first = false;
        }
        rc |= base_buf_adds(b, "]}");
    }
    rc |= base_buf_addf(b,
                        "],\"max_hosts\":%d,\"refused\":%llu,\"evicted\":%llu,\"dropped\":%llu,"
                        "\"heap_bytes\":%llu}\n",
                        f->max_hosts, (unsigned long long)f->refused,
                        (unsigned long long)f->evicted, (unsigned long long)f->dropped,
                        (unsigned long long)base_mem_slot_bytes(f->slot));
    base_free(sorted);
    return rc < 0 ? -ENOMEM : 0;
}

static void route_fleet(sup_http_req *r, void *data)
{
    sup_http_api *a = data;
    base_buf b = {0};

    if (a->fleet.max_hosts == 0) {
        sup__http_respond_error(r, 404, "not_found",
                                "the fleet view is off (http.fleet_max_hosts is 0)");
        return;
    }
    if (fleet_render(&a->fleet, &b) < 0) {
        base_buf_free(&b);
        sup__http_respond_error(r, 500, "internal", "out of memory");
        return;
    }
    sup__http_respond_buf(r, 200, "application/json", &b);
    base_buf_free(&b);
}

/* ---- the route table and the API -------------------------------------------------- */

static const sup_http_route routes[] = {
    {"/", route_dashboard},
    {"/healthz", route_healthz},
    {"/metrics", route_metrics},
    {"/api/status", route_status},
    {"/api/events", route_events},
    {"/api/fleet", route_fleet},
    {NULL, NULL},
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
    if ((rv = fleet_open(a, loop, limits != NULL ? limits->fleet_max_hosts : 0)) < 0) {
        base_errf(err, err_size, "http: cannot subscribe to fleet.*.system.>: %s", strerror(-rv));
        sup__http_api_close(a);
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
    fleet_close(&a->fleet);
    /* Closing the server ends every stream now (stream_closed), which
     * drops the subscription with the last one. */
    sup__http_close(a->http, on_http_closed, a);
    HERD_ASSERT(a->sub == NULL);
}
