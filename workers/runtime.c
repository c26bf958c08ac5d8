/*
 * The worker runtime: one instance of a kind, and what the kind may call.
 *
 * Design notes:
 * - Every call into kind code (start, stop, health, request, bus delivery)
 *   switches the memory account to the worker's slot and back.
 * - worker_fail and worker_exit may be called from deep inside the kind's
 *   own callbacks; the host is told at once but must defer any action on
 *   the instance (the supervisor does, on its own timer).
 * - Subscriptions made through worker_subscribe are tracked so that stop
 *   removes them all before the kind's stop runs: no delivery can reach a
 *   stopping kind.
 */
#include "workers/worker.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *const worker_common_keys[] = {
    "name",        "kind",       "enabled",           "restart",        "backoff",   "intensity",
    "memory_high", "memory_max", "health_interval_s", "stop_timeout_s", "queue_max", NULL,
};

typedef struct worker_subscription {
    worker *w;
    bus_event_cb cb;
    void *data;
    bus_sub *sub;
    struct worker_subscription *next;
} worker_subscription;

struct worker {
    const worker_kind *kind;
    char name[65];
    json_t *config;
    uv_loop_t *loop;
    bus *bus;
    char *state_dir; /* exact-size strings: a worker's idle cost matters */
    char *runtime_dir;
    const char *host_name; /* borrowed from the host, which outlives every instance */
    worker_host host;
    void *state;
    uint32_t slot;
    bool own_slot; /* acquired by worker_new (else the host's, released by it) */
    worker_subscription *subs;
    int started, stopping, stopped, ended;
    int pid;
    uint64_t memory_bytes;       /* worker_set_memory: held outside the account */
    uint64_t child_memory_bytes; /* worker_set_child_memory */
    char *last_error;            /* NULL none: allocated only when there is one */
};

#define WORKER_ERROR_MAX 512

/* set_error_text keeps text (NULL or "": none) as the instance's last
 * error, in its own account. */
static void set_error_text(worker *w, const char *text)
{
    char *copy = NULL;
    if (text != NULL && *text) {
        uint32_t prev = base_mem_switch(w->slot);
        copy = base_strdup(text);
        base_mem_switch(prev);
    }
    base_free(w->last_error);
    w->last_error = copy; /* out of memory: no text, the state still says it */
}

static void vset_error(worker *w, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static void vset_error(worker *w, const char *fmt, va_list ap)
{
    char buf[WORKER_ERROR_MAX];
    vsnprintf(buf, sizeof(buf), fmt, ap);
    set_error_text(w, buf);
}

static int is_common_key(const char *key)
{
    for (const char *const *k = worker_common_keys; *k != NULL; k++)
        if (strcmp(*k, key) == 0)
            return 1;
    return 0;
}

int worker_check_keys(const json_t *cfg, const char *path, const char *const *kind_keys, char *err,
                      size_t err_size)
{
    const char *key;
    json_t *v;

    if (!json_is_object(cfg)) {
        snprintf(err, err_size, "%s: expected an object", path);
        return -EINVAL;
    }
    json_object_foreach((json_t *)cfg, key, v)
    {
        int known = is_common_key(key);
        for (const char *const *k = kind_keys; !known && k != NULL && *k != NULL; k++)
            known = strcmp(*k, key) == 0;
        if (!known) {
            char expected[512] = "";
            size_t n = 0;
            for (const char *const *k = kind_keys; k != NULL && *k != NULL && n < sizeof(expected);
                 k++)
                n +=
                    (size_t)snprintf(expected + n, sizeof(expected) - n, "%s%s", n ? ", " : "", *k);
            snprintf(err, err_size, "%s.%.64s: unknown key (expected %s or a common key)", path,
                     key, n ? expected : "only common keys");
            return -EINVAL;
        }
    }
    return 0;
}

/* ---- accounting context ------------------------------------------------- */

worker *worker_enter(worker *w)
{
    static _Thread_local worker *current;
    worker *prev = current;
    current = w;
    base_mem_switch(w != NULL ? w->slot : 0);
    /* The previous worker is returned so calls can nest. */
    return prev;
}

void worker_leave(worker *prev)
{
    worker_enter(prev);
}

/* ---- accessors ---------------------------------------------------------- */

const char *worker_name(const worker *w)
{
    return w->name;
}

const char *worker_kind_name(const worker *w)
{
    return w->kind->name;
}

const json_t *worker_config(const worker *w)
{
    return w->config;
}

uv_loop_t *worker_loop(const worker *w)
{
    return w->loop;
}

bus *worker_bus(const worker *w)
{
    return w->bus;
}

const char *worker_state_dir(const worker *w)
{
    return w->state_dir;
}

const char *worker_runtime_dir(const worker *w)
{
    return w->runtime_dir;
}

const char *worker_host_name(const worker *w)
{
    return w->host_name;
}

int worker_pid(const worker *w)
{
    return w->pid;
}

void worker_set_pid(worker *w, int pid)
{
    w->pid = pid;
}

void worker_set_memory(worker *w, uint64_t bytes)
{
    w->memory_bytes = bytes;
}

void worker_set_child_memory(worker *w, uint64_t bytes)
{
    w->child_memory_bytes = bytes;
}

uint64_t worker_heap_bytes(const worker *w)
{
    /* Slot 0 (the table was full) is everyone's: nothing of it is w's. */
    return (w->slot != 0 ? base_mem_slot_bytes(w->slot) : 0) + w->memory_bytes;
}

uint64_t worker_child_memory_bytes(const worker *w)
{
    return w->child_memory_bytes;
}

uint64_t worker_memory_bytes(const worker *w)
{
    return worker_heap_bytes(w) + w->child_memory_bytes;
}

const char *worker_last_error(const worker *w)
{
    return w->last_error;
}

/* ---- logging and errors ------------------------------------------------- */

static void vlog(worker *w, enum base_log_level level, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

static void vlog(worker *w, enum base_log_level level, const char *fmt, va_list ap)
{
    char msg[1024];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    if (w->host.log != NULL)
        w->host.log(w, level, msg, w->host.data);
}

void worker_log(worker *w, enum base_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(w, level, fmt, ap);
    va_end(ap);
}

void worker_set_error(worker *w, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vset_error(w, fmt, ap);
    va_end(ap);
}

/* end records why the instance ended and tells the host, once. */
static void vend(worker *w, int exit_code, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

static void vend(worker *w, int exit_code, const char *fmt, va_list ap)
{
    if (w->ended || w->stopping || !w->started)
        return;
    vset_error(w, fmt, ap);
    w->ended = 1;
    if (w->host.ended != NULL)
        w->host.ended(w, exit_code, w->last_error != NULL ? w->last_error : "", w->host.data);
}

void worker_fail(worker *w, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vend(w, -1, fmt, ap);
    va_end(ap);
}

void worker_exit(worker *w, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vend(w, code < 0 ? 255 : code, fmt, ap);
    va_end(ap);
}

/* ---- config and children ------------------------------------------------- */

json_int_t worker_config_int(const worker *w, const char *key, json_int_t def)
{
    const json_t *v = json_object_get(w->config, key);
    return json_is_integer(v) ? json_integer_value(v) : def;
}

static char *env_entry(const char *key, const char *value)
{
    size_t len = strlen(key) + strlen(value) + 2;
    char *e = base_malloc(len);
    if (e != NULL)
        snprintf(e, len, "%s=%s", key, value);
    return e;
}

/* Whether the inherited entry `e` (NAME=VALUE) is one the child is given. */
static bool env_given(const char *e, const char *const *set, const json_t *env)
{
    const char *eq = strchr(e, '=');
    size_t len = eq != NULL ? (size_t)(eq - e) : strlen(e);
    for (size_t i = 0; set != NULL && set[i] != NULL; i += 2)
        if (strlen(set[i]) == len && memcmp(set[i], e, len) == 0)
            return true;
    return env != NULL && json_object_getn(env, e, len) != NULL;
}

int worker_child_args_make(const json_t *argv, const char *const *set, const json_t *env,
                           worker_child_args *out)
{
    extern char **environ;
    size_t n = json_array_size(argv), n_env = 0, n_set = 0, i, k = 0;
    const char *key;
    json_t *v;

    memset(out, 0, sizeof(*out));
    snprintf(out->ppid, sizeof(out->ppid), "%d", (int)getpid());
    while (environ[n_env] != NULL)
        n_env++;
    while (set != NULL && set[2 * n_set] != NULL)
        n_set++;
    out->args = base_calloc(n + 5, sizeof(*out->args));
    out->envp = base_calloc(n_env + n_set + (env != NULL ? json_object_size(env) : 0) + 1,
                            sizeof(*out->envp));
    if (out->args == NULL || out->envp == NULL) {
        worker_child_args_free(out);
        return -ENOMEM;
    }
    out->args[k++] = "herd-worker-exec";
    out->args[k++] = "--worker-exec";
    out->args[k++] = out->ppid;
    out->args[k++] = "--";
    json_array_foreach(argv, i, v) out->args[k++] = (char *)json_string_value(v);

    k = 0;
    for (i = 0; i < n_env; i++)
        if (!env_given(environ[i], set, env))
            out->envp[k++] = environ[i];
    out->n_owned_from = k;
    for (i = 0; i < n_set; i++)
        if ((out->envp[k++] = env_entry(set[2 * i], set[2 * i + 1])) == NULL)
            goto nomem;
    json_object_foreach((json_t *)env, key, v)
    {
        if ((out->envp[k++] = env_entry(key, json_string_value(v))) == NULL)
            goto nomem;
    }
    return 0;
nomem:
    worker_child_args_free(out);
    return -ENOMEM;
}

void worker_child_args_free(worker_child_args *c)
{
    if (c->envp != NULL)
        for (size_t i = c->n_owned_from; c->envp[i] != NULL; i++)
            base_free(c->envp[i]);
    base_free(c->envp);
    base_free(c->args);
    c->envp = c->args = NULL;
}

/* ---- bus ---------------------------------------------------------------- */

static void deliver(const bus_event *ev, void *data)
{
    worker_subscription *s = data;
    worker *prev;

    if (s->w->stopping)
        return;
    prev = worker_enter(s->w);
    s->cb(ev, s->data);
    worker_leave(prev);
}

int worker_subscribe(worker *w, const char *pattern, size_t queue_max, bus_event_cb cb, void *data,
                     bus_sub **out)
{
    worker_subscription *s;
    int rv;

    if (w->stopping)
        return -ESHUTDOWN;
    if (queue_max == 0) {
        json_t *q = json_object_get(w->config, "queue_max");
        if (json_is_integer(q) && json_integer_value(q) > 0)
            queue_max = (size_t)json_integer_value(q);
    }
    worker *prev = worker_enter(w);
    s = base_calloc(1, sizeof(*s));
    rv = s != NULL ? bus_subscribe(w->bus, pattern, queue_max, deliver, s, &s->sub) : -ENOMEM;
    if (rv < 0) {
        base_free(s);
        worker_leave(prev);
        return rv;
    }
    worker_leave(prev);
    s->w = w;
    s->cb = cb;
    s->data = data;
    s->next = w->subs;
    w->subs = s;
    if (out != NULL)
        *out = s->sub;
    return 0;
}

int worker_publish(worker *w, const char *topic, const char *payload, size_t len)
{
    return bus_publish(w->bus, topic, payload, len);
}

int worker_publish_json(worker *w, const char *topic, const json_t *payload)
{
    return bus_publish_json(w->bus, topic, payload);
}

/* ---- lifecycle ---------------------------------------------------------- */

int worker_new(const worker_params *p, worker **out)
{
    worker *w;

    if (p->kind == NULL || p->name == NULL || strlen(p->name) >= sizeof(w->name))
        return -EINVAL;
    /* The worker's own record is charged to its account too: it is part
     * of what an instance costs herdd. */
    uint32_t slot = p->mem_slot != 0 ? p->mem_slot : base_mem_slot_acquire();
    uint32_t prev_slot = base_mem_switch(slot);
    size_t len = strlen(p->state_dir) + strlen(p->name) + 2;
    w = base_calloc(1, sizeof(*w));
    if (w != NULL) {
        w->slot = slot;
        w->own_slot = p->mem_slot == 0;
        w->state = p->kind->size ? base_calloc(1, p->kind->size) : NULL;
        w->state_dir = base_malloc(len);
        w->runtime_dir = base_strdup(p->runtime_dir);
    }
    base_mem_switch(prev_slot);
    if (w == NULL || (p->kind->size && w->state == NULL) || w->state_dir == NULL ||
        w->runtime_dir == NULL) {
        if (w != NULL) {
            base_free(w->state_dir);
            base_free(w->runtime_dir);
            base_free(w->state);
            base_free(w);
        }
        if (p->mem_slot == 0)
            base_mem_slot_release(slot);
        return -ENOMEM;
    }
    w->kind = p->kind;
    snprintf(w->name, sizeof(w->name), "%s", p->name);
    snprintf(w->state_dir, len, "%s/%s", p->state_dir, p->name);
    w->config = json_incref((json_t *)p->config);
    w->loop = p->loop;
    w->bus = p->bus;
    w->host_name = p->host_name != NULL && p->host_name[0] ? p->host_name : "localhost";
    if (p->host != NULL)
        w->host = *p->host;
    *out = w;
    return 0;
}

int worker_start(worker *w, char *err, size_t err_size)
{
    worker *prev;
    int rv;

    if (w->started) {
        snprintf(err, err_size, "%s: already started", w->name);
        return -EALREADY;
    } /* The worker's own directory: the user's, no wider than 0750 (an
       * older, wider one is narrowed, and the log says so). */
    bool tightened = false;
    char why[512];
    rv = w->kind->uses_state_dir
             ? base_private_dir(w->state_dir, 0750, true, true, &tightened, why, sizeof(why))
             : 0;
    if (rv < 0) {
        snprintf(err, err_size, "%s: state directory %s", w->name, why);
        set_error_text(w, err);
        return rv;
    }
    if (tightened)
        worker_log(w, BASE_LOG_WARN, "%s was open to other users; now mode 0750", w->state_dir);
    w->started = 1;
    set_error_text(w, NULL);
    prev = worker_enter(w);
    rv = w->kind->start(w, w->state);
    worker_leave(prev);
    if (rv < 0) {
        if (w->last_error == NULL) {
            char msg[128];
            snprintf(msg, sizeof(msg), "start failed: %s", strerror(-rv));
            set_error_text(w, msg);
        }
        snprintf(err, err_size, "%s", w->last_error != NULL ? w->last_error : "start failed");
        /* A failed start owns nothing: the kind must have undone it all. */
        w->stopping = w->stopped = 1;
        return rv;
    }
    return 0;
}

void worker_stop(worker *w)
{
    worker *prev;

    if (w == NULL || w->stopping)
        return;
    w->stopping = 1;
    while (w->subs != NULL) {
        worker_subscription *s = w->subs;
        w->subs = s->next;
        bus_unsubscribe(s->sub);
        base_free(s);
    }
    if (!w->started) {
        worker_stopped(w);
        return;
    }
    prev = worker_enter(w);
    w->kind->stop(w, w->state);
    worker_leave(prev);
}

void worker_stopped(worker *w)
{
    /* Once per instance, and only after stop was asked for: a kind that
     * calls it twice would let the host free the state under it. */
    HERD_ASSERT(w->stopping && !w->stopped);
    if (w->stopped)
        return;
    w->stopped = 1;
    if (w->host.stopped != NULL)
        w->host.stopped(w, w->host.data);
}

void worker_detach(worker *w)
{
    memset(&w->host, 0, sizeof(w->host));
}

void worker_free(worker *w)
{
    if (w == NULL)
        return;
    while (w->subs != NULL) {
        worker_subscription *s = w->subs;
        w->subs = s->next;
        bus_unsubscribe(s->sub);
        base_free(s);
    }
    uint32_t slot = w->slot;
    bool own_slot = w->own_slot;
    base_free(w->last_error);
    base_free(w->state);
    json_decref(w->config);
    base_free(w->state_dir);
    base_free(w->runtime_dir);
    base_free(w);
    if (own_slot)
        base_mem_slot_release(slot);
}

void worker_health_fields(worker *w, json_t *obj)
{
    if (w->kind->health != NULL && w->started && !w->stopped) {
        worker *prev = worker_enter(w);
        w->kind->health(w, w->state, obj);
        worker_leave(prev);
    }
}

void worker_handle_request(worker *w, bus_request *req)
{
    if (w->kind->request == NULL) {
        bus_reply_error(req, "unknown_op", "%s (kind %s) has no op \"%.64s\"", w->name,
                        w->kind->name, bus_request_op(req));
        return;
    }
    worker *prev = worker_enter(w);
    w->kind->request(w, w->state, req);
    worker_leave(prev);
}
