/*
 * Worker lifecycle: states, restart policy, control, reload, shutdown.
 *
 * Design notes:
 * - Each configured worker (sup_worker) outlives its instances (worker):
 *   a restart is a new instance. The states are DESIGN.md section 4's;
 *   every transition goes through set_state, which publishes
 *   system.<w>.state and a heartbeat, and answers the requests waiting for
 *   the worker to settle.
 * - An instance reports its end (worker_fail/worker_exit) and the end of its
 *   stop from inside its own callbacks, so both are only flagged there and
 *   handled from the worker's timer on a later loop turn. The same timer
 *   carries the backoff delay: the two never overlap, since a worker in
 *   backoff has no instance.
 * - What follows a stop is decided when the stop starts (stop_reason), so a
 *   stop for a restart, a reload change, a removal or shutdown all share one
 *   path (after_stop).
 * - A failing worker only ever touches its own timer: the others'
 *   heartbeats keep their rhythm.
 */
#include "supervisor/internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const state_names[SUP_N_STATES] = {
    "stopped", "starting", "running", "stopping", "backoff", "failed",
};

const char *sup__state_name(enum sup_state st)
{
    return (unsigned)st < SUP_N_STATES ? state_names[st] : "unknown";
}

static void start_instance(sup_worker *sw, const char *reason);
static void on_timer(uv_timer_t *t);
static void shutdown_next(struct sup *s);

static uint64_t now_ms(sup_worker *sw)
{
    return uv_now(sw->sup->loop);
}

static void publish_health(sup_worker *sw)
{
    char topic[128];
    json_t *h = sup__worker_health(sw);

    snprintf(topic, sizeof(topic), "system.%s.health", sw->cfg.name);
    if (h) {
        bus_publish_json(sw->sup->bus, topic, h);
        json_decref(h);
    }
}

json_t *sup__worker_health(sup_worker *sw)
{
    json_t *o = json_object();
    const char *err = sw->inst ? worker_last_error(sw->inst) : NULL;
    uint64_t up = 0;

    if (o == NULL)
        return NULL;
    if (err == NULL && sw->last_error[0])
        err = sw->last_error;
    if (sw->inst && sw->state == SUP_RUNNING)
        up = (now_ms(sw) - sw->started_ms) / 1000;
    json_object_set_new(o, "worker", json_string(sw->cfg.name));
    json_object_set_new(o, "kind", json_string(sw->cfg.kind));
    json_object_set_new(o, "state", json_string(sup__state_name(sw->state)));
    json_object_set_new(o, "pid", json_integer(sw->inst ? worker_pid(sw->inst) : 0));
    json_object_set_new(o, "uptime_s", json_integer((json_int_t)up));
    json_object_set_new(o, "restarts", json_integer(sw->restarts));
    json_object_set_new(o, "heap_bytes",
                        json_integer(sw->inst ? (json_int_t)worker_heap_bytes(sw->inst) : 0));
    json_object_set_new(o, "memory_max",
                        sw->cfg.memory_max ? json_integer((json_int_t)sw->cfg.memory_max)
                                           : json_null());
    json_object_set_new(o, "last_error", err ? json_string(err) : json_null());
    json_object_set_new(o, "ts", sup__iso_now());
    if (sw->inst && sw->state == SUP_RUNNING)
        worker_health_fields(sw->inst, o);
    return o;
}

static void answer_waiters(sup_worker *sw)
{
    while (sw->waiters) {
        sup_waiter *wt = sw->waiters;
        sw->waiters = wt->next;
        json_t *h = sup__worker_health(sw);
        if (h)
            bus_reply_ok(wt->req, h);
        else
            bus_reply_error(wt->req, "internal", "out of memory");
        free(wt);
    }
}

static void set_state(sup_worker *sw, enum sup_state to, const char *reason)
{
    enum sup_state from = sw->state;
    char topic[128];

    sw->state = to;
    snprintf(topic, sizeof(topic), "system.%s.state", sw->cfg.name);
    json_t *ev = json_pack("{s:s,s:s,s:s,s:s,s:o}", "worker", sw->cfg.name, "from",
                           sup__state_name(from), "to", sup__state_name(to), "reason",
                           reason ? reason : "", "ts", sup__iso_now());
    if (ev) {
        bus_publish_json(sw->sup->bus, topic, ev);
        json_decref(ev);
    }
    sup_log(to == SUP_FAILED ? SUP_LOG_ERROR : SUP_LOG_INFO, sw->cfg.name, "%s -> %s%s%s",
            sup__state_name(from), sup__state_name(to), reason && *reason ? ": " : "",
            reason ? reason : "");
    publish_health(sw);
    if (to == SUP_RUNNING || to == SUP_STOPPED || to == SUP_FAILED || to == SUP_BACKOFF)
        answer_waiters(sw);
}

/* ---- instance callbacks (possibly deep inside kind code: defer) --------- */

static void kick(sup_worker *sw)
{
    uv_timer_start(&sw->timer, on_timer, 0, 0);
}

static void on_ended(worker *w, int exit_code, const char *error, void *data)
{
    sup_worker *sw = data;

    if (w != sw->inst)
        return; /* an abandoned instance */
    sw->ended = 1;
    sw->ended_code = exit_code;
    snprintf(sw->last_error, sizeof(sw->last_error), "%s", error ? error : "");
    kick(sw);
}

static void on_stopped(worker *w, void *data)
{
    sup_worker *sw = data;

    if (w != sw->inst)
        return; /* an abandoned instance finishing late: stays unfreed */
    sw->stopped = 1;
    kick(sw);
}

static void on_log(worker *w, enum worker_log_level level, const char *msg, void *data)
{
    sup_log((enum sup_log_level)level, worker_name(w), "%s", msg);
}

/* A kind gets stop_timeout_s plus this to call worker_stopped (the process
 * kind SIGKILLs its child at stop_timeout_s). */
#define STOP_GRACE_MS 2000

static void begin_stop(sup_worker *sw, enum sup_stop_reason why, const char *reason)
{
    sw->stop_reason = why;
    set_state(sw, SUP_STOPPING, reason);
    uv_timer_start(&sw->timer, on_timer, (uint64_t)sw->cfg.stop_timeout_s * 1000 + STOP_GRACE_MS,
                   0);
    worker_stop(sw->inst);
}

static void apply_policy(sup_worker *sw, int clean, uint64_t uptime_ms)
{
    struct sup *s = sw->sup;
    uint64_t delay;
    char reason[700];
    enum sup_decision d =
        sup_policy_decide(&sw->cfg.policy, &sw->history, now_ms(sw), clean, uptime_ms, &delay);

    switch (d) {
    case SUP_DECIDE_RESTART:
        sw->restarts++;
        snprintf(reason, sizeof(reason), "%s; restart in %llu ms", sw->last_error,
                 (unsigned long long)delay);
        set_state(sw, SUP_BACKOFF, reason);
        uv_timer_start(&sw->timer, on_timer, delay, 0);
        break;
    case SUP_DECIDE_STOP:
        set_state(sw, SUP_STOPPED, sw->last_error);
        break;
    case SUP_DECIDE_GIVE_UP:
        if (clean || sw->cfg.policy.restart == SUP_RESTART_TEMPORARY)
            snprintf(reason, sizeof(reason), "not restarted (temporary): %s", sw->last_error);
        else
            snprintf(reason, sizeof(reason), "gave up (%d restarts within %d s): %s",
                     sw->cfg.policy.max_restarts, sw->cfg.policy.period_s, sw->last_error);
        snprintf(sw->last_error, sizeof(sw->last_error), "%.500s", reason);
        set_state(sw, SUP_FAILED, reason);
        if (s->cfg.on_give_up_exit && !s->shutting_down) {
            sup_log(SUP_LOG_ERROR, "supervisor", "%s failed and on_give_up is \"exit\"",
                    sw->cfg.name);
            s->exit_code = 1;
            if (s->on_exit)
                s->on_exit(s->on_exit_data);
        }
        break;
    }
}

static void worker_destroy(sup_worker *sw);

/* after_stop: the instance is gone (freed, or abandoned when it never
 * finished stopping); what follows was decided when the stop began. */
static void after_stop(sup_worker *sw, int abandoned)
{
    struct sup *s = sw->sup;
    enum sup_stop_reason why = sw->stop_reason;
    uint64_t uptime = now_ms(sw) - sw->started_ms;

    if (!abandoned)
        worker_free(sw->inst);
    sw->inst = NULL;
    sw->stop_reason = SUP_STOP_NONE;
    if (s->shutting_down && why != SUP_STOP_REMOVE)
        why = SUP_STOP_SHUTDOWN;
    switch (why) {
    case SUP_STOP_ENDED:
        apply_policy(sw, sw->ended_code == 0, uptime);
        break;
    case SUP_STOP_RESTART:
        sw->restarts++;
        start_instance(sw, "restart requested");
        break;
    case SUP_STOP_CHANGE:
        json_decref(sw->cfg.json);
        sw->cfg = sw->next_cfg;
        memset(&sw->next_cfg, 0, sizeof(sw->next_cfg));
        sup_history_free(&sw->history);
        if (sw->cfg.enabled)
            start_instance(sw, "config changed");
        else
            set_state(sw, SUP_STOPPED, "config changed: disabled");
        break;
    case SUP_STOP_REMOVE:
        set_state(sw, SUP_STOPPED, "removed from the config");
        worker_destroy(sw);
        if (s->shutting_down)
            shutdown_next(s);
        break;
    case SUP_STOP_SHUTDOWN:
        set_state(sw, SUP_STOPPED, "herdd stopping");
        shutdown_next(s);
        break;
    default:
        set_state(sw, SUP_STOPPED, "stopped by request");
        break;
    }
}

static void on_timer(uv_timer_t *t)
{
    sup_worker *sw = t->data;

    if (sw->stopped) {
        sw->stopped = 0;
        sw->ended = 0;
        after_stop(sw, 0);
    } else if (sw->state == SUP_STOPPING && sw->inst) {
        /* The stop deadline passed. The instance is left as it is, never
         * freed (its kind may still own handles): a bug in the kind costs
         * memory, not the whole supervisor's shutdown. */
        sup_log(SUP_LOG_ERROR, sw->cfg.name, "did not stop within %d s: abandoned",
                sw->cfg.stop_timeout_s + STOP_GRACE_MS / 1000);
        snprintf(sw->last_error, sizeof(sw->last_error), "did not stop within %d s",
                 sw->cfg.stop_timeout_s + STOP_GRACE_MS / 1000);
        worker_detach(sw->inst);
        after_stop(sw, 1);
    } else if (sw->ended) {
        sw->ended = 0;
        if (sw->inst && (sw->state == SUP_RUNNING || sw->state == SUP_STARTING))
            begin_stop(sw, SUP_STOP_ENDED, sw->last_error);
    } else if (sw->state == SUP_BACKOFF && !sw->sup->shutting_down) {
        start_instance(sw, "backoff over");
    }
}

static void start_instance(sup_worker *sw, const char *reason)
{
    struct sup *s = sw->sup;
    static const worker_host host = {on_ended, on_stopped, on_log, NULL};
    worker_host h = host;
    char err[512];
    worker_params p = {
        .kind = sup__kind_find(sw->cfg.kind),
        .name = sw->cfg.name,
        .config = sw->cfg.json,
        .loop = s->loop,
        .bus = s->bus,
        .state_dir = s->cfg.state_dir,
        .runtime_dir = bus_dir(s->bus),
        .host = &h,
    };
    int rv;

    h.data = sw;
    sw->ended = sw->stopped = 0;
    set_state(sw, SUP_STARTING, reason);
    rv = worker_new(&p, &sw->inst);
    if (rv == 0) {
        sw->started_ms = now_ms(sw);
        sw->start_seq = ++s->start_seq;
        rv = worker_start(sw->inst, err, sizeof(err));
        if (rv < 0) {
            worker_free(sw->inst);
            sw->inst = NULL;
        }
    } else {
        snprintf(err, sizeof(err), "cannot create the worker: %s", strerror(-rv));
    }
    if (rv < 0) {
        snprintf(sw->last_error, sizeof(sw->last_error), "start failed: %.480s", err);
        apply_policy(sw, 0, 0);
        return;
    }
    sw->last_error[0] = '\0';
    sw->memory_high_warned = 0;
    set_state(sw, SUP_RUNNING, "started");
}

/* ---- requests and control ------------------------------------------------ */

static void route_request(bus_request *req, void *data)
{
    sup_worker *sw = data;

    if (sw->inst == NULL || sw->state != SUP_RUNNING) {
        bus_reply_error(req, "unavailable", "worker %s is %s", sw->cfg.name,
                        sup__state_name(sw->state));
        return;
    }
    worker_handle_request(sw->inst, req);
}

static int add_waiter(sup_worker *sw, bus_request *req)
{
    sup_waiter *wt;

    if (req == NULL)
        return 0;
    wt = malloc(sizeof(*wt));
    if (wt == NULL)
        return -ENOMEM;
    wt->req = req;
    wt->next = sw->waiters;
    sw->waiters = wt;
    return 0;
}

int sup__worker_action(sup_worker *sw, const char *action, bus_request *req)
{
    int is_start = strcmp(action, "start") == 0, is_stop = strcmp(action, "stop") == 0;
    int is_restart = strcmp(action, "restart") == 0;

    if (!is_start && !is_stop && !is_restart)
        return -EINVAL;
    if (sw->sup->shutting_down || sw->removed)
        return -ESHUTDOWN;
    if (add_waiter(sw, req) < 0)
        return -ENOMEM;
    switch (sw->state) {
    case SUP_RUNNING:
        if (is_start)
            answer_waiters(sw);
        else
            begin_stop(sw, is_stop ? SUP_STOP_USER : SUP_STOP_RESTART,
                       is_stop ? "stop requested" : "restart requested");
        break;
    case SUP_STARTING:
        break; /* settles on its own */
    case SUP_STOPPING:
        /* Ended instances keep their policy unless a person decides. */
        if (is_stop)
            sw->stop_reason = sw->stop_reason == SUP_STOP_ENDED ? SUP_STOP_USER : sw->stop_reason;
        else if (sw->stop_reason == SUP_STOP_USER || sw->stop_reason == SUP_STOP_ENDED)
            sw->stop_reason = SUP_STOP_RESTART;
        break;
    case SUP_BACKOFF:
        uv_timer_stop(&sw->timer);
        if (is_stop)
            set_state(sw, SUP_STOPPED, "stop requested");
        else
            start_instance(sw, is_start ? "start requested" : "restart requested");
        break;
    case SUP_STOPPED:
    case SUP_FAILED:
        if (is_stop) {
            answer_waiters(sw);
        } else {
            sup_history_free(&sw->history);
            start_instance(sw, is_start ? "start requested" : "restart requested");
        }
        break;
    default:
        break;
    }
    return 0;
}

static void on_control(const bus_event *ev, void *data)
{
    sup_worker *sw = data;
    json_t *o = json_loadb(ev->payload, ev->payload_len, 0, NULL);
    const char *action = json_string_value(json_object_get(o, "action"));
    const char *by = json_string_value(json_object_get(o, "requested_by"));

    if (action == NULL || (strcmp(action, "start") && strcmp(action, "stop") &&
                           strcmp(action, "restart"))) {
        sw->sup->control_unknown++;
        sup_log(SUP_LOG_WARN, sw->cfg.name,
                "control: ignored %.200s (expected {\"action\": \"start\"|\"stop\"|\"restart\"})",
                ev->payload);
    } else {
        sup_log(SUP_LOG_INFO, sw->cfg.name, "control: %s requested by %s", action,
                by ? by : "(unnamed)");
        sup__worker_action(sw, action, NULL);
    }
    json_decref(o);
}

static void on_health_timer(uv_timer_t *t)
{
    publish_health(t->data);
}

/* ---- creation and destruction ----------------------------------------- */

static void handle_closed(uv_handle_t *h)
{
    sup_worker *sw = h->data;
    struct sup *s = sw->sup;

    if (--sw->handles_open > 0)
        return;
    json_decref(sw->cfg.json);
    json_decref(sw->next_cfg.json);
    sup_history_free(&sw->history);
    free(sw);
    sup__handle_released(s);
}

static void worker_destroy(sup_worker *sw)
{
    struct sup *s = sw->sup;

    for (sup_worker **pp = &s->workers; *pp; pp = &(*pp)->next) {
        if (*pp == sw) {
            *pp = sw->next;
            break;
        }
    }
    sw->removed = 1;
    while (sw->waiters) {
        sup_waiter *wt = sw->waiters;
        sw->waiters = wt->next;
        bus_reply_error(wt->req, "unavailable", "worker %s was removed", sw->cfg.name);
        free(wt);
    }
    bus_service_unregister(s->bus, sw->cfg.name);
    bus_unsubscribe(sw->control);
    sw->control = NULL;
    uv_close((uv_handle_t *)&sw->timer, handle_closed);
    uv_close((uv_handle_t *)&sw->health, handle_closed);
}

/* worker_create takes over wc (its json reference). */
static sup_worker *worker_create(struct sup *s, sup_worker_config *wc)
{
    sup_worker *sw = calloc(1, sizeof(*sw));
    char topic[128];

    if (sw == NULL)
        return NULL;
    sw->sup = s;
    sw->cfg = *wc;
    memset(wc, 0, sizeof(*wc));
    uv_timer_init(s->loop, &sw->timer);
    uv_timer_init(s->loop, &sw->health);
    sw->timer.data = sw->health.data = sw;
    sw->handles_open = 2;
    s->handles_open++;
    if (bus_service_register(s->bus, sw->cfg.name, route_request, sw) < 0)
        sup_log(SUP_LOG_ERROR, sw->cfg.name, "cannot register the bus service");
    snprintf(topic, sizeof(topic), "system.%s.control", sw->cfg.name);
    if (bus_subscribe(s->bus, topic, 64, on_control, sw, &sw->control) < 0)
        sup_log(SUP_LOG_ERROR, sw->cfg.name, "cannot subscribe to %s", topic);
    uint64_t period = (uint64_t)sw->cfg.health_interval_s * 1000;
    uv_timer_start(&sw->health, on_health_timer, period, period);
    /* Append: the list keeps config order. */
    sup_worker **pp = &s->workers;
    while (*pp)
        pp = &(*pp)->next;
    *pp = sw;
    return sw;
}

sup_worker *sup__worker_find(struct sup *s, const char *name)
{
    for (sup_worker *sw = s->workers; sw; sw = sw->next)
        if (strcmp(sw->cfg.name, name) == 0)
            return sw;
    return NULL;
}

int sup__workers_start(struct sup *s)
{
    for (size_t i = 0; i < s->cfg.n_workers; i++) {
        sup_worker *sw = worker_create(s, &s->cfg.workers[i]);
        if (sw == NULL)
            return -ENOMEM;
    }
    free(s->cfg.workers);
    s->cfg.workers = NULL;
    s->cfg.n_workers = 0;
    for (sup_worker *sw = s->workers; sw; sw = sw->next) {
        if (sw->cfg.enabled)
            start_instance(sw, "herdd started");
        else
            publish_health(sw);
    }
    return 0;
}

/* ---- memory ----------------------------------------------------------- */

void sup__memory_check(struct sup *s)
{
    for (sup_worker *sw = s->workers; sw; sw = sw->next) {
        if (sw->inst == NULL || sw->state != SUP_RUNNING || sw->ended)
            continue;
        uint64_t heap = worker_heap_bytes(sw->inst);
        if (sw->cfg.memory_max && heap > sw->cfg.memory_max) {
            char msg[200];
            snprintf(msg, sizeof(msg), "memory %llu bytes over memory_max %llu",
                     (unsigned long long)heap, (unsigned long long)sw->cfg.memory_max);
            on_ended(sw->inst, -1, msg, sw);
        } else if (sw->cfg.memory_high && heap > sw->cfg.memory_high) {
            if (!sw->memory_high_warned) {
                sw->memory_high_warned = 1;
                sup_log(SUP_LOG_WARN, sw->cfg.name, "memory %llu bytes over memory_high %llu",
                        (unsigned long long)heap, (unsigned long long)sw->cfg.memory_high);
                publish_health(sw);
            }
        } else {
            sw->memory_high_warned = 0;
        }
    }
}

/* ---- reload ------------------------------------------------------------ */

static void add_name(json_t *summary, const char *list, const char *name)
{
    json_array_append_new(json_object_get(summary, list), json_string(name));
}

int sup__apply_config(struct sup *s, sup_config *next, json_t *summary)
{
    sup_worker *sw, *nextsw;

    /* Removed workers. */
    for (sw = s->workers; sw; sw = nextsw) {
        nextsw = sw->next;
        int keep = 0;
        for (size_t i = 0; i < next->n_workers && !keep; i++)
            keep = strcmp(next->workers[i].name, sw->cfg.name) == 0;
        if (keep)
            continue;
        add_name(summary, "removed", sw->cfg.name);
        if (sw->inst && sw->state != SUP_STOPPING) {
            begin_stop(sw, SUP_STOP_REMOVE, "removed from the config");
        } else if (sw->inst) {
            sw->stop_reason = SUP_STOP_REMOVE;
        } else {
            uv_timer_stop(&sw->timer);
            if (sw->state != SUP_STOPPED)
                set_state(sw, SUP_STOPPED, "removed from the config");
            worker_destroy(sw);
        }
    }
    /* Added, changed, unchanged. */
    for (size_t i = 0; i < next->n_workers; i++) {
        sup_worker_config *wc = &next->workers[i];
        sw = sup__worker_find(s, wc->name);
        if (sw == NULL) {
            add_name(summary, "added", wc->name);
            sw = worker_create(s, wc);
            if (sw && sw->cfg.enabled)
                start_instance(sw, "added by reload");
            continue;
        }
        if (json_equal(sw->cfg.json, wc->json)) {
            add_name(summary, "unchanged", wc->name);
            json_decref(wc->json);
            wc->json = NULL;
            continue;
        }
        add_name(summary, "changed", wc->name);
        if (sw->inst) {
            json_decref(sw->next_cfg.json);
            sw->next_cfg = *wc;
            memset(wc, 0, sizeof(*wc));
            if (sw->state == SUP_STOPPING)
                sw->stop_reason = SUP_STOP_CHANGE;
            else
                begin_stop(sw, SUP_STOP_CHANGE, "config changed");
        } else {
            uv_timer_stop(&sw->timer);
            json_decref(sw->cfg.json);
            sw->cfg = *wc;
            memset(wc, 0, sizeof(*wc));
            sup_history_free(&sw->history);
            if (sw->cfg.enabled)
                start_instance(sw, "config changed");
            else if (sw->state != SUP_STOPPED)
                set_state(sw, SUP_STOPPED, "config changed: disabled");
        }
        /* A changed heartbeat period applies at once. */
        uint64_t period = (uint64_t)sw->cfg.health_interval_s * 1000;
        if (sw->next_cfg.json)
            period = (uint64_t)sw->next_cfg.health_interval_s * 1000;
        uv_timer_start(&sw->health, on_health_timer, period, period);
    }
    free(next->workers);
    next->workers = NULL;
    next->n_workers = 0;
    return 0;
}

/* ---- shutdown ---------------------------------------------------------- */

static void shutdown_next(struct sup *s)
{
    sup_worker *last = NULL;

    for (sup_worker *sw = s->workers; sw; sw = sw->next) {
        if (sw->inst && sw->state == SUP_STOPPING)
            return; /* one at a time: wait for it */
        if (sw->inst && (last == NULL || sw->start_seq > last->start_seq))
            last = sw;
    }
    if (last) {
        begin_stop(last, SUP_STOP_SHUTDOWN, "herdd stopping");
        return;
    }
    /* Every instance is gone: release the workers, then the supervisor. */
    while (s->workers)
        worker_destroy(s->workers);
    sup__handle_released(s);
}

void sup__workers_shutdown(struct sup *s)
{
    s->shutting_down = 1;
    for (sup_worker *sw = s->workers; sw; sw = sw->next) {
        uv_timer_stop(&sw->health);
        if (sw->state == SUP_BACKOFF) {
            uv_timer_stop(&sw->timer);
            set_state(sw, SUP_STOPPED, "herdd stopping");
        }
    }
    s->handles_open++; /* released by shutdown_next when all are stopped */
    shutdown_next(s);
}
