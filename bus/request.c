/*
 * Requests: parse, route by service, answer asynchronously.
 *
 * Design notes: a request lives from its arrival until its one reply; the
 * reply frees it. Every request sits in the bus's pending list so that
 * bus_close can answer what is left. Bodies that are not a JSON object of
 * exactly {service, op, args?} are answered `bad_request` and counted; they
 * never reach a service.
 */
#include "bus/internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void error_body(char *buf, size_t size, const char *code, const char *message);

static void pending_add(bus *b, bus_request *r)
{
    r->next = b->pending;
    r->prev = NULL;
    if (b->pending != NULL)
        b->pending->prev = r;
    b->pending = r;
    b->stats.requests_pending++;
}

static void pending_remove(bus *b, bus_request *r)
{
    if (r->prev != NULL)
        r->prev->next = r->next;
    else
        b->pending = r->next;
    if (r->next != NULL)
        r->next->prev = r->prev;
    b->stats.requests_pending--;
}

static void request_free(bus_request *r)
{
    r->magic = 0;
    json_decref(r->args);
    free(r->service);
    free(r->op);
    free(r->header);
    free(r);
}

/* deliver hands the reply to whoever asked: the local callback (which
 * wants one buffer) or rep0. */
static int deliver(bus_request *r, const bus__part *parts, size_t n)
{
    bus *b = r->bus;

    if (r->local_cb == NULL)
        return bus__send_reply(b, r->header, r->header_len, parts, n);
    if (n == 1) {
        r->local_cb(parts[0].data, parts[0].len, r->local_data);
        return 0;
    }
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += parts[i].len;
    char *flat = malloc(len + 1), *p = flat;
    if (flat == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        memcpy(p, parts[i].data, parts[i].len);
        p += parts[i].len;
    }
    r->local_cb(flat, len, r->local_data);
    free(flat);
    return 0;
}

/* send_parts delivers a reply body to whoever asked, then frees r. A body
 * over max_reply_bytes is never sent: the client could not take it and
 * would wait in vain; it gets too_large instead. A reply that cannot be
 * allocated becomes a short `internal` one; if even that fails it is
 * dropped and counted (send_failed), never a crash. */
static void send_parts(bus_request *r, const bus__part *parts, size_t n)
{
    char refusal[512], msg[256];
    bus__part one;
    size_t len = 0;
    bus *b;
    int rv;

    /* A second answer to one request is a use of freed memory: caught here
     * in debug builds (the magic is cleared when the first one frees it). */
    HERD_ASSERT(r->magic == BUS_REQUEST_MAGIC);
    b = r->bus;
    for (size_t i = 0; i < n; i++)
        len += parts[i].len;
    if (len > b->max_reply_bytes) {
        snprintf(msg, sizeof(msg),
                 "the reply would be %zu bytes, over bus.max_reply_bytes (%zu): ask for less "
                 "(a smaller limit, a page of the list)",
                 len, b->max_reply_bytes);
        error_body(refusal, sizeof(refusal), "too_large", msg);
        one = (bus__part){refusal, strlen(refusal)};
        parts = &one;
        n = 1;
        b->stats.dropped[BUS_DROP_TOO_LARGE]++;
    }
    pending_remove(b, r);
    rv = deliver(r, parts, n);
    if (rv == -ENOMEM && parts != &one) {
        snprintf(msg, sizeof(msg), "out of memory building a %zu-byte reply", len);
        error_body(refusal, sizeof(refusal), "internal", msg);
        one = (bus__part){refusal, strlen(refusal)};
        rv = deliver(r, &one, 1);
    }
    if (rv == 0)
        b->stats.replies++;
    request_free(r);
}

static void send_body(bus_request *r, const char *body, size_t len)
{
    bus__part part = {body, len};
    send_parts(r, &part, 1);
}

static void error_body(char *buf, size_t size, const char *code, const char *message)
{
    json_t *o =
        json_pack("{s:b, s:{s:s, s:s}}", "ok", 0, "error", "code", code, "message", message);
    char *s = o != NULL ? base_json_dumps(o, JSON_COMPACT) : NULL;

    if (s != NULL && strlen(s) < size)
        memcpy(buf, s, strlen(s) + 1);
    else
        snprintf(buf, size,
                 "{\"ok\":false,\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}");
    free(s);
    json_decref(o);
}

void bus_reply_error(bus_request *r, const char *code, const char *fmt, ...)
{
    char message[1024], body[2048];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    error_body(body, sizeof(body), code, message);
    send_body(r, body, strlen(body));
}

void bus_reply_ok(bus_request *r, json_t *result)
{
    json_t *o = json_object();
    char *s = NULL;

    if (o != NULL && json_object_set_new(o, "ok", json_true()) == 0 &&
        json_object_set_new(o, "result", result != NULL ? result : json_null()) == 0)
        s = base_json_dumps(o, JSON_COMPACT);
    else if (o == NULL)
        json_decref(result);
    json_decref(o);
    if (s == NULL) {
        bus_reply_error(r, "internal", "out of memory building the reply");
        return;
    }
    send_body(r, s, strlen(s));
    free(s);
}

void bus_reply_raw(bus_request *r, const char *json, size_t len)
{
    static const char head[] = "{\"ok\":true,\"result\":";
    const bus__part parts[] = {{head, sizeof(head) - 1}, {json, len}, {"}", 1}};

    /* The stored bytes go straight into the outgoing message: one copy. */
    send_parts(r, parts, 3);
}

const char *bus_request_service(const bus_request *r)
{
    return r->service;
}

const char *bus_request_op(const bus_request *r)
{
    return r->op;
}

json_t *bus_request_args(const bus_request *r)
{
    return r->args;
}

static bus_service *service_find(bus *b, const char *name)
{
    for (bus_service *s = b->services; s != NULL; s = s->next)
        if (strcmp(s->name, name) == 0)
            return s;
    return NULL;
}

int bus_service_register(bus *b, const char *name, bus_request_cb cb, void *data)
{
    bus_service *s;

    if (name == NULL || *name == '\0' || cb == NULL)
        return -EINVAL;
    if (service_find(b, name) != NULL)
        return -EEXIST;
    /* base's allocator: charged to whoever registers (a worker's account). */
    s = base_calloc(1, sizeof(*s));
    if (s == NULL || (s->name = base_strdup(name)) == NULL) {
        base_free(s);
        return -ENOMEM;
    }
    s->cb = cb;
    s->data = data;
    s->next = b->services;
    b->services = s;
    return 0;
}

void bus_service_unregister(bus *b, const char *name)
{
    for (bus_service **pp = &b->services; *pp != NULL; pp = &(*pp)->next) {
        if (strcmp((*pp)->name, name) == 0) {
            bus_service *s = *pp;
            *pp = s->next;
            base_free(s->name);
            base_free(s);
            return;
        }
    }
}

void bus__services_free(bus *b)
{
    while (b->services != NULL) {
        bus_service *s = b->services;
        b->services = s->next;
        base_free(s->name);
        base_free(s);
    }
}

void bus__requests_close(bus *b)
{
    while (b->pending != NULL)
        bus_reply_error(b->pending, "unavailable", "herdd is shutting down");
}

int bus__request_parse(const char *body, size_t len, json_t **out, enum bus_drop_reason *why,
                       char *msg, size_t msg_size)
{
    json_error_t jerr;
    json_t *o = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    const char *key;
    json_t *v;

    if (o == NULL) {
        *why = BUS_DROP_BAD_JSON;
        snprintf(msg, msg_size, "request is not valid JSON: %s at byte %d", jerr.text,
                 jerr.position);
        return -EINVAL;
    }
    *why = BUS_DROP_BAD_REQUEST;
    if (!json_is_object(o)) {
        snprintf(msg, msg_size, "request must be a JSON object {\"service\",\"op\",\"args\"}");
        goto bad;
    }
    json_object_foreach(o, key, v)
    {
        if (strcmp(key, "service") && strcmp(key, "op") && strcmp(key, "args")) {
            snprintf(msg, msg_size, "request: unknown key \"%.64s\"", key);
            goto bad;
        }
    }
    v = json_object_get(o, "service");
    if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > 64) {
        snprintf(msg, msg_size, "request.service: expected a service name string");
        goto bad;
    }
    v = json_object_get(o, "op");
    if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > 64) {
        snprintf(msg, msg_size, "request.op: expected an operation name string");
        goto bad;
    }
    v = json_object_get(o, "args");
    if (v != NULL && !json_is_object(v) && !json_is_null(v)) {
        snprintf(msg, msg_size, "request.args: expected an object");
        goto bad;
    }
    *out = o;
    return 0;
bad:
    json_decref(o);
    return -EINVAL;
}

static bus_request *request_new(bus *b, json_t *o)
{
    bus_request *r = calloc(1, sizeof(*r));
    json_t *args = json_object_get(o, "args");

    if (r == NULL)
        return NULL;
    r->magic = BUS_REQUEST_MAGIC;
    r->bus = b;
    r->service = strdup(json_string_value(json_object_get(o, "service")));
    r->op = strdup(json_string_value(json_object_get(o, "op")));
    r->args = json_is_object(args) ? json_incref(args) : json_object();
    if (r->service == NULL || r->op == NULL || r->args == NULL) {
        request_free(r);
        return NULL;
    }
    return r;
}

/* route hands r to its service or answers unknown_service. */
static void route(bus *b, bus_request *r)
{
    bus_service *s = service_find(b, r->service);

    if (s == NULL) {
        bus_reply_error(r, "unknown_service", "no service named \"%.64s\"", r->service);
        return;
    }
    s->cb(r, s->data);
}

void bus__request_received(bus *b, const void *header, size_t header_len, const char *body,
                           size_t len)
{
    char msg[512], reply[1024];
    enum bus_drop_reason why;
    json_t *o = NULL;
    bus_request *r;

    b->stats.requests++;
    /* A client whose replies pile up unread gets no more work done. */
    if (header_len >= 4) {
        const unsigned char *h = header;
        uint32_t pipe = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
        bus__pipes_request(&b->ep[BUS_EP_REQUEST], pipe); /* its reply ends it */
        if (bus__pipes_backlog(b, &b->ep[BUS_EP_REQUEST], pipe, msg, sizeof(msg)) < 0) {
            why = BUS_DROP_BUSY;
            goto refuse;
        }
    }
    if (len > b->max_message_bytes) {
        why = BUS_DROP_TOO_LARGE;
        snprintf(msg, sizeof(msg), "request of %zu bytes is over the limit of %zu", len,
                 b->max_message_bytes);
        goto refuse;
    }
    if (bus__request_parse(body, len, &o, &why, msg, sizeof(msg)) < 0)
        goto refuse;
    r = request_new(b, o);
    json_decref(o);
    if (r == NULL) {
        why = BUS_DROP_SEND_FAILED;
        snprintf(msg, sizeof(msg), "out of memory");
        goto refuse;
    }
    r->header = malloc(header_len ? header_len : 1);
    if (r->header == NULL) {
        request_free(r);
        return;
    }
    memcpy(r->header, header, header_len);
    r->header_len = header_len;
    pending_add(b, r);
    route(b, r);
    return;

refuse:
    b->stats.dropped[why]++;
    error_body(reply, sizeof(reply),
               why == BUS_DROP_TOO_LARGE     ? "too_large"
               : why == BUS_DROP_SEND_FAILED ? "internal"
               : why == BUS_DROP_BUSY        ? "busy"
                                             : "bad_request",
               msg);
    bus__part part = {reply, strlen(reply)};
    if (bus__send_reply(b, header, header_len, &part, 1) == 0)
        b->stats.replies++;
}

int bus_request_local(bus *b, const char *service, const char *op, const json_t *args,
                      bus_reply_cb done, void *data)
{
    bus_request *r;

    if (b->closing)
        return -ESHUTDOWN;
    if (service == NULL || op == NULL || done == NULL || (args != NULL && !json_is_object(args)))
        return -EINVAL;
    r = calloc(1, sizeof(*r));
    if (r == NULL)
        return -ENOMEM;
    r->magic = BUS_REQUEST_MAGIC;
    r->bus = b;
    r->service = strdup(service);
    r->op = strdup(op);
    r->args = args != NULL ? json_deep_copy(args) : json_object();
    r->local_cb = done;
    r->local_data = data;
    if (r->service == NULL || r->op == NULL || r->args == NULL) {
        request_free(r);
        return -ENOMEM;
    }
    b->stats.requests++;
    pending_add(b, r);
    route(b, r);
    return 0;
}
