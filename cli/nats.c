/*
 * herdctl's NATS transport (--nats URL --host HOST): the herdd of one host
 * of a fleet, through its `nats` worker (DESIGN.md sections 7b and 8).
 *
 * Design notes:
 *  - A request is a NATS request on fleet.<host>.request whose payload is
 *    the bus request body; the reply is the bus reply, bytes unchanged.
 *    No responder on that subject (NATS servers 2.2+ say so at once) and
 *    no reply within the timeout are both "not reachable" (exit 3), each
 *    with a sentence naming the host.
 *  - A bus topic T is the subject fleet.<host>.T both ways: sub PATTERN
 *    subscribes to fleet.<host>.PATTERN (NATS wildcards mean what the
 *    bus's do) and hands events on with the prefix stripped; pub T
 *    publishes on fleet.<host>.T and waits for the server's PONG, so an
 *    event is with the server when herdctl exits.
 *  - Subscriptions are asynchronous: libnats delivers on its own thread
 *    into one queue under a mutex, and next() waits on its condition
 *    variable, so several patterns (job follow's two) share one next().
 *    A message that does not make a bus event (subject outside the
 *    prefix, bad topic, payload not JSON) is dropped, as the broker drops
 *    a malformed frame.
 *  - The connection is made on first use with --timeout as the connect
 *    timeout and no reconnects: a command either reaches the server or
 *    says it cannot; a server that goes away ends `sub` with an error.
 */
#include "cli/cli.h"

#include <errno.h>
#include <nats/nats.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum fail { FAIL_NONE, FAIL_SERVER, FAIL_NO_HOST, FAIL_NO_REPLY, FAIL_NO_CONFIRM };

typedef struct queued {
    struct queued *next;
    natsMsg *msg;
} queued;

typedef struct nats {
    const char *url, *host; /* borrowed from argv */
    char prefix[BUS_TOPIC_MAX + 1];
    size_t prefix_len; /* "fleet.<host>." */
    int connect_ms;
    natsConnection *nc;
    bool lib_open; /* nats_Open done: nats_Close at free */
    natsSubscription **subs;
    size_t n_subs;
    /* the delivery queue, filled on libnats's thread */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    queued *head, *tail;
    bool closed;
    bool stopping;     /* nats_free: on_msg drops what comes */
    size_t n_watched;  /* subscriptions that say when their handler is done */
    size_t n_complete; /* of those, the ones done for good */
    /* the event next() returned: topic NUL payload NUL */
    char *ev_buf;
    enum fail fail;
    int wait_ms; /* of the call that failed */
    char why[256];
} nats;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- URLs ---------------------------------------------------------------- */

static int url_one(const char *u, size_t len, char *err, size_t err_size)
{
    const char *p = u, *end = u + len, *at, *host, *colon = NULL;
    size_t scheme;

    if (len >= 7 && memcmp(u, "nats://", 7) == 0)
        scheme = 7;
    else if (len >= 6 && memcmp(u, "tls://", 6) == 0)
        scheme = 6;
    else
        return base_errf(err, err_size,
                         "\"%.*s\": expected nats://HOST[:PORT] or tls://HOST[:PORT]", (int)len, u);
    p += scheme;
    at = memchr(p, '@', (size_t)(end - p));
    for (const char *q = at; q != NULL && q < end; q = memchr(q + 1, '@', (size_t)(end - q - 1)))
        at = q; /* user:password@ may hold '@'s: the host follows the last */
    host = at != NULL ? at + 1 : p;
    if (host < end && *host == '[') {
        const char *rb = memchr(host, ']', (size_t)(end - host));
        if (rb == NULL || rb == host + 1)
            return base_errf(err, err_size, "\"%.*s\": an IPv6 address goes in [...]", (int)len, u);
        colon = rb + 1 < end ? rb + 1 : NULL;
        if (colon != NULL && *colon != ':')
            return base_errf(err, err_size, "\"%.*s\": expected :PORT after ]", (int)len, u);
    } else {
        const char *q;
        for (q = host; q < end && *q != ':'; q++)
            if (!((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') ||
                  (*q >= '0' && *q <= '9') || *q == '.' || *q == '-' || *q == '_'))
                return base_errf(err, err_size, "\"%.*s\": bad character '%c' in the host",
                                 (int)len, u, *q);
        if (q == host)
            return base_errf(err, err_size, "\"%.*s\": no host", (int)len, u);
        colon = q < end ? q : NULL;
    }
    if (colon != NULL) {
        long port = 0;
        const char *q = colon + 1;
        if (q == end)
            return base_errf(err, err_size, "\"%.*s\": no port after ':'", (int)len, u);
        for (; q < end && port <= 65535; q++) {
            if (*q < '0' || *q > '9')
                return base_errf(err, err_size, "\"%.*s\": the port is not a number", (int)len, u);
            port = port * 10 + (*q - '0');
        }
        if (port < 1 || port > 65535)
            return base_errf(err, err_size, "\"%.*s\": the port is not from 1 to 65535", (int)len,
                             u);
    }
    return 0;
}

int cli_nats_url_check(const char *url, char *err, size_t err_size)
{
    const char *p = url;

    if (url[0] == '\0')
        return base_errf(err, err_size, "an empty URL (expected nats://HOST[:PORT])");
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma != NULL ? (size_t)(comma - p) : strlen(p);
        if (url_one(p, len, err, err_size) < 0)
            return -EINVAL;
        if (comma == NULL)
            return 0;
        p = comma + 1;
    }
}

/* ---- the connection ------------------------------------------------------ */

int cli_nats_new(const char *url, const char *host, int connect_ms, void **out)
{
    nats *t = calloc(1, sizeof(*t));
    pthread_condattr_t ca;

    *out = NULL;
    if (t == NULL)
        return -ENOMEM;
    t->url = url;
    t->host = host;
    t->connect_ms = connect_ms;
    if (host != NULL) {
        int n = snprintf(t->prefix, sizeof(t->prefix), "fleet.%s.", host);
        t->prefix_len = n > 0 && (size_t)n < sizeof(t->prefix) ? (size_t)n : 0;
    }
    pthread_mutex_init(&t->lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&t->cond, &ca);
    pthread_condattr_destroy(&ca);
    *out = t;
    return 0;
}

static void set_why(nats *t, natsStatus s)
{
    natsStatus last;
    const char *text = nats_GetLastError(&last);

    if (text == NULL || text[0] == '\0')
        text = natsStatus_GetText(s);
    /* libnats says where it was: "(conn.c:2088): No server ..." */
    const char *place_end = text[0] == '(' ? strstr(text, "): ") : NULL;
    snprintf(t->why, sizeof(t->why), "%s", place_end != NULL ? place_end + 3 : text);
}

static void on_closed(natsConnection *nc, void *closure)
{
    nats *t = closure;
    (void)nc;
    pthread_mutex_lock(&t->lock);
    t->closed = true;
    pthread_cond_broadcast(&t->cond);
    pthread_mutex_unlock(&t->lock);
}

static int connect_once(nats *t)
{
    natsOptions *o = NULL;
    natsStatus s;

    if (t->nc != NULL)
        return 0;
    t->fail = FAIL_SERVER;
    t->wait_ms = t->connect_ms;
    if (!t->lib_open) {
        if ((s = nats_Open(-1)) != NATS_OK) {
            set_why(t, s);
            return -ENOMEM;
        }
        t->lib_open = true;
    }
    s = natsOptions_Create(&o);
    if (s == NATS_OK)
        s = natsOptions_SetURL(o, t->url);
    if (s == NATS_OK)
        s = natsOptions_SetTimeout(o, t->connect_ms);
    if (s == NATS_OK)
        s = natsOptions_SetAllowReconnect(o, false);
    if (s == NATS_OK)
        s = natsOptions_SetName(o, "herdctl");
    if (s == NATS_OK)
        s = natsOptions_SetClosedCB(o, on_closed, t);
    if (s == NATS_OK)
        s = natsConnection_Connect(&t->nc, o);
    natsOptions_Destroy(o);
    if (s != NATS_OK) {
        set_why(t, s);
        t->nc = NULL;
        return s == NATS_NO_MEMORY ? -ENOMEM : -ECONNREFUSED;
    }
    t->fail = FAIL_NONE;
    return 0;
}

/* errno for a status after connecting; records why. */
static int status_errno(nats *t, natsStatus s, enum fail timeout_fail, int wait_ms)
{
    if (s == NATS_OK)
        return 0;
    set_why(t, s);
    t->wait_ms = wait_ms;
    switch (s) {
    case NATS_TIMEOUT:
        t->fail = timeout_fail;
        return -ETIMEDOUT;
    case NATS_NO_RESPONDERS:
        t->fail = FAIL_NO_HOST;
        return -ECONNREFUSED;
    case NATS_NO_MEMORY:
        return -ENOMEM;
    case NATS_MAX_PAYLOAD:
        return -EMSGSIZE;
    case NATS_CONNECTION_CLOSED:
    case NATS_CONNECTION_DISCONNECTED:
    case NATS_STALE_CONNECTION:
        snprintf(t->why, sizeof(t->why), "the NATS server %s closed the connection", t->url);
        return -ECONNRESET;
    default:
        return -EIO;
    }
}

static int nats_call(void *tp, const char *service, const char *op, const json_t *args,
                     int timeout_ms, bool resend, char **reply, size_t *reply_len)
{
    nats *t = tp;
    char subject[BUS_TOPIC_MAX + 16];
    natsMsg *m = NULL;
    char *body;
    int rv;

    (void)resend; /* a NATS request goes out once */
    *reply = NULL;
    *reply_len = 0;
    json_t *req = json_pack("{s:s,s:s,s:o}", "service", service, "op", op, "args",
                            args != NULL ? json_deep_copy(args) : json_object());
    if (req == NULL)
        return -ENOMEM;
    body = base_json_dumps(req, JSON_COMPACT);
    json_decref(req);
    if (body == NULL)
        return -ENOMEM;
    if ((rv = connect_once(t)) < 0) {
        free(body);
        return rv;
    }
    snprintf(subject, sizeof(subject), "%srequest", t->prefix);
    natsStatus s = natsConnection_Request(&m, t->nc, subject, body, (int)strlen(body), timeout_ms);
    free(body);
    if (s != NATS_OK)
        return status_errno(t, s, FAIL_NO_REPLY, timeout_ms);
    int len = natsMsg_GetDataLength(m);
    *reply = malloc((size_t)len + 1);
    if (*reply == NULL) {
        natsMsg_Destroy(m);
        return -ENOMEM;
    }
    memcpy(*reply, natsMsg_GetData(m), (size_t)len);
    (*reply)[len] = '\0';
    *reply_len = (size_t)len;
    natsMsg_Destroy(m);
    return 0;
}

static int nats_publish(void *tp, const char *topic, const char *payload, size_t len)
{
    nats *t = tp;
    char subject[2 * BUS_TOPIC_MAX + 2];
    int rv;

    if ((rv = connect_once(t)) < 0)
        return rv;
    snprintf(subject, sizeof(subject), "%s%s", t->prefix, topic);
    natsStatus s = natsConnection_Publish(t->nc, subject, payload, (int)len);
    if (s == NATS_MAX_PAYLOAD) {
        snprintf(t->why, sizeof(t->why),
                 "%zu bytes are more than the NATS server's max_payload (%lld)", len,
                 (long long)natsConnection_GetMaxPayload(t->nc));
        return -EMSGSIZE;
    }
    if (s == NATS_OK)
        s = natsConnection_FlushTimeout(t->nc, t->connect_ms);
    return status_errno(t, s, FAIL_NO_CONFIRM, t->connect_ms);
}

static void on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    nats *t = closure;
    queued *q = malloc(sizeof(*q));
    (void)nc;
    (void)sub;

    if (q == NULL) {
        natsMsg_Destroy(msg); /* lost, as a slow subscriber's oldest event would be */
        return;
    }
    q->next = NULL;
    q->msg = msg;
    pthread_mutex_lock(&t->lock);
    if (t->stopping) {
        pthread_mutex_unlock(&t->lock);
        natsMsg_Destroy(msg);
        free(q);
        return;
    }
    if (t->tail != NULL)
        t->tail->next = q;
    else
        t->head = q;
    t->tail = q;
    pthread_cond_signal(&t->cond);
    pthread_mutex_unlock(&t->lock);
}

static void on_complete(void *closure)
{
    nats *t = closure;
    pthread_mutex_lock(&t->lock);
    t->n_complete++;
    pthread_cond_broadcast(&t->cond);
    pthread_mutex_unlock(&t->lock);
}

static int nats_subscribe(void *tp, const char *pattern)
{
    nats *t = tp;
    char subject[2 * BUS_TOPIC_MAX + 2];
    natsSubscription *sub = NULL, **subs;
    int rv;

    if ((rv = connect_once(t)) < 0)
        return rv;
    subs = realloc(t->subs, (t->n_subs + 1) * sizeof(*subs));
    if (subs == NULL)
        return -ENOMEM;
    t->subs = subs;
    snprintf(subject, sizeof(subject), "%s%s", t->prefix, pattern);
    natsStatus s = natsConnection_Subscribe(&sub, t->nc, subject, on_msg, t);
    if (s == NATS_OK && natsSubscription_SetOnCompleteCB(sub, on_complete, t) == NATS_OK)
        t->n_watched++;
    if (sub != NULL)
        t->subs[t->n_subs++] = sub;
    /* the SUB is with the server before anything is asked of the host */
    if (s == NATS_OK)
        s = natsConnection_FlushTimeout(t->nc, t->connect_ms);
    return status_errno(t, s, FAIL_NO_CONFIRM, t->connect_ms);
}

/* The next queued message, waiting until deadline (<0: forever); NULL on
 * a timeout or a closed connection (*closed). */
static natsMsg *dequeue(nats *t, int64_t deadline, bool *closed)
{
    natsMsg *m = NULL;

    pthread_mutex_lock(&t->lock);
    while (t->head == NULL && !t->closed) {
        if (deadline < 0) {
            pthread_cond_wait(&t->cond, &t->lock);
            continue;
        }
        int64_t left = deadline - now_ms();
        if (left <= 0)
            break;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += left / 1000;
        ts.tv_nsec += (left % 1000) * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&t->cond, &t->lock, &ts);
    }
    if (t->head != NULL) {
        queued *q = t->head;
        t->head = q->next;
        if (t->head == NULL)
            t->tail = NULL;
        m = q->msg;
        free(q);
    }
    *closed = t->closed;
    pthread_mutex_unlock(&t->lock);
    return m;
}

static int nats_next(void *tp, int timeout_ms, bus_event *ev)
{
    nats *t = tp;
    int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;

    if (t->nc == NULL)
        return -ENOTCONN;
    for (;;) {
        bool closed;
        natsMsg *m = dequeue(t, deadline, &closed);
        if (m == NULL) {
            if (closed) {
                snprintf(t->why, sizeof(t->why), "the NATS server %s closed the connection",
                         t->url);
                return -ECONNRESET;
            }
            t->why[0] = '\0';
            return -ETIMEDOUT;
        }
        const char *subject = natsMsg_GetSubject(m), *data = natsMsg_GetData(m);
        size_t sl = strlen(subject), dl = (size_t)natsMsg_GetDataLength(m);
        if (sl > t->prefix_len && memcmp(subject, t->prefix, t->prefix_len) == 0 &&
            bus_topic_check(subject + t->prefix_len, sl - t->prefix_len) == 0 && data != NULL &&
            bus_json_check(data, dl)) {
            size_t tl = sl - t->prefix_len;
            char *buf = malloc(tl + dl + 2);
            if (buf == NULL) {
                natsMsg_Destroy(m);
                return -ENOMEM;
            }
            memcpy(buf, subject + t->prefix_len, tl);
            buf[tl] = '\0';
            memcpy(buf + tl + 1, data, dl);
            buf[tl + 1 + dl] = '\0';
            natsMsg_Destroy(m);
            free(t->ev_buf);
            t->ev_buf = buf;
            ev->topic = buf;
            ev->topic_len = tl;
            ev->payload = buf + tl + 1;
            ev->payload_len = dl;
            return 0;
        }
        natsMsg_Destroy(m);
    }
}

int cli_nats_gather(void *tp, const char *subject, const char *body, size_t len, int window_ms,
                    void (*on_reply)(const char *reply, size_t len, void *data), void *data)
{
    nats *t = tp;
    natsInbox *inbox = NULL;
    natsSubscription *sub = NULL;
    int64_t deadline;
    int rv, n = 0;

    if ((rv = connect_once(t)) < 0)
        return rv;
    natsStatus s = natsInbox_Create(&inbox);
    if (s == NATS_OK)
        s = natsConnection_SubscribeSync(&sub, t->nc, inbox);
    if (s == NATS_OK)
        s = natsConnection_PublishRequest(t->nc, subject, inbox, body, (int)len);
    if (s == NATS_OK)
        s = natsConnection_FlushTimeout(t->nc, window_ms);
    deadline = now_ms() + window_ms;
    while (s == NATS_OK) {
        int64_t left = deadline - now_ms();
        natsMsg *m = NULL;
        if (left <= 0)
            break;
        s = natsSubscription_NextMsg(&m, sub, left);
        if (s == NATS_OK) {
            on_reply(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), data);
            natsMsg_Destroy(m);
            n++;
        }
    }
    if (s == NATS_TIMEOUT)
        s = NATS_OK; /* the window is over */
    rv = s == NATS_OK ? n : status_errno(t, s, FAIL_NO_REPLY, window_ms);
    if (s == NATS_NO_RESPONDERS && n > 0)
        rv = n; /* (only said when nobody listens, so never after a reply) */
    natsSubscription_Destroy(sub);
    natsInbox_Destroy(inbox);
    return rv;
}

static void nats_unreachable(const void *tp, int rv, char *buf, size_t size)
{
    const nats *t = tp;
    double s = t->wait_ms / 1000.0;
    const char *host = t->host != NULL ? t->host : "all";

    (void)rv;
    switch (t->fail) {
    case FAIL_NO_HOST:
        if (t->host == NULL) {
            snprintf(buf, size,
                     "no host answers on fleet.all.request through NATS %s (no herdd with a nats "
                     "worker importing fleet.all.> is connected)",
                     t->url);
            break;
        }
        snprintf(buf, size,
                 "host %s not reachable through NATS %s: nothing answers on fleet.%s.request "
                 "(no herdd with a nats worker for that host is connected)",
                 host, t->url, host);
        break;
    case FAIL_NO_REPLY:
        snprintf(buf, size, "host %s did not answer through NATS %s within %g s", host, t->url, s);
        break;
    case FAIL_NO_CONFIRM:
        snprintf(buf, size, "the NATS server %s did not confirm within %g s", t->url, s);
        break;
    default:
        snprintf(buf, size, "NATS server %s not reachable: %s", t->url, t->why);
        break;
    }
}

static const char *nats_why(const void *tp)
{
    return ((const nats *)tp)->why;
}

static void nats_free(void *tp)
{
    nats *t = tp;

    if (t == NULL)
        return;
    /* Messages go back to libnats while it is open (natsMsg_Destroy hands
     * them to its collector thread), so nothing may be left to destroy
     * when nats_CloseAndWait stops that thread: each subscription is
     * drained first (its pending messages reach on_msg, which drops them
     * itself), closing the connection closes them, and each says when its
     * handler has returned for the last time (on_complete). */
    pthread_mutex_lock(&t->lock);
    t->stopping = true;
    for (queued *q = t->head, *next; q != NULL; q = next) {
        next = q->next;
        natsMsg_Destroy(q->msg);
        free(q);
    }
    t->head = t->tail = NULL;
    pthread_mutex_unlock(&t->lock);
    for (size_t i = 0; i < t->n_subs; i++)
        if (natsSubscription_DrainTimeout(t->subs[i], 1000) == NATS_OK)
            natsSubscription_WaitForDrainCompletion(t->subs[i], 2000);
    if (t->nc != NULL)
        natsConnection_Close(t->nc);
    int64_t deadline = now_ms() + 2000;
    pthread_mutex_lock(&t->lock);
    while (t->n_complete < t->n_watched && now_ms() < deadline) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += 50 * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&t->cond, &t->lock, &ts);
    }
    pthread_mutex_unlock(&t->lock);
    for (size_t i = 0; i < t->n_subs; i++)
        natsSubscription_Destroy(t->subs[i]);
    free(t->subs);
    natsConnection_Destroy(t->nc);
    if (t->lib_open)
        nats_CloseAndWait(5000); /* libnats's threads are gone */
    pthread_cond_destroy(&t->cond);
    pthread_mutex_destroy(&t->lock);
    free(t->ev_buf);
    free(t);
}

const cli_transport_ops cli_nats_ops = {
    .name = "nats",
    .call = nats_call,
    .publish = nats_publish,
    .subscribe = nats_subscribe,
    .next = nats_next,
    .unreachable = nats_unreachable,
    .why = nats_why,
    .free = nats_free,
};
