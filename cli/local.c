/* herdctl's local transport: the bus client on the runtime directory's
 * sockets (events.ipc, publish.ipc, request.ipc). */
#include "cli/cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct local {
    const char *dir; /* NULL: the default */
    bus_client *client;
} local;

int cli_local_new(const char *dir, void **out)
{
    local *l = calloc(1, sizeof(*l));

    *out = NULL;
    if (l == NULL)
        return -ENOMEM;
    l->dir = dir;
    if (bus_client_new(dir, &l->client) < 0) {
        free(l);
        return -ENOMEM;
    }
    *out = l;
    return 0;
}

static int local_call(void *t, const char *service, const char *op, const json_t *args,
                      int timeout_ms, bool resend, char **reply, size_t *reply_len)
{
    return bus_client_call_raw(((local *)t)->client, service, op, args, timeout_ms, resend, reply,
                               reply_len);
}

static int local_publish(void *t, const char *topic, const char *payload, size_t len)
{
    return bus_client_publish(((local *)t)->client, topic, payload, len);
}

static int local_subscribe(void *t, const char *pattern)
{
    return bus_client_subscribe(((local *)t)->client, pattern);
}

static int local_next(void *t, int timeout_ms, bus_event *ev)
{
    return bus_client_next(((local *)t)->client, timeout_ms, ev);
}

static void local_unreachable(const void *t, int rv, char *buf, size_t size)
{
    const local *l = t;

    snprintf(buf, size, "herdd not reachable in %s: %s",
             l->dir != NULL ? l->dir : "the default runtime directory",
             rv == -ETIMEDOUT ? "no reply within the timeout" : "no herdd listening");
}

static const char *local_why(const void *t)
{
    return bus_client_why(((const local *)t)->client);
}

static void local_free(void *t)
{
    local *l = t;

    if (l == NULL)
        return;
    bus_client_free(l->client);
    free(l);
}

const cli_transport_ops cli_local_ops = {
    .name = "local",
    .call = local_call,
    .publish = local_publish,
    .subscribe = local_subscribe,
    .next = local_next,
    .unreachable = local_unreachable,
    .why = local_why,
    .free = local_free,
};
