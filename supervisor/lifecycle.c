/*
 * One worker's lifecycle: its states, restart policy and control. What is
 * done over all workers (start all, the reload diff, the shutdown order,
 * memory checks) is in service.c.
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
#include <stdarg.h>
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

static void on_timer(uv_timer_t *t);

static uint64_t now_ms(sup_worker *sw)
{
    return uv_now(sw->sup->loop);
}

void sup__worker_publish_health(sup_worker *sw)
{
    char topic[128];
    json_t *h = sup__worker_health(sw);

    snprintf(topic, sizeof(topic), "system.%s.health", sw->cfg.name);
    if (h != NULL) {
        bus_publish_json(sw->sup->bus, topic, h);
        json_decref(h);
    }
}

void sup__worker_set_error(sup_worker *sw, const char *fmt, ...)
{
    char buf[512];
    char *copy = NULL;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (buf[0] != '\0') {
        uint32_t prev = base_mem_switch(sw->mem_slot);
        copy = base_strdup(buf);
        base_mem_switch(prev);
    }
    base_free(sw->last_error);
    sw->last_error = copy; /* out of memory: no text; the state still tells */
}

const char *sup__worker_error(const sup_worker *sw)
{
    return sw->last_error != NULL ? sw->last_error : "";
}

json_t *sup__worker_health(sup_worker *sw)
{
    json_t *o = json_object();
    const char *err = sw->inst != NULL ? worker_last_error(sw->inst) : NULL;
    uint64_t up = 0;

    if (o == NULL)
        return NULL;
    if (err == NULL && sw->last_error != NULL)
        err = sw->last_error;
    if (sw->inst != NULL && sw->state == SUP_RUNNING)
        up = (now_ms(sw) - sw->started_ms) / 1000;
    json_object_set_new(o, "worker", json_string(sw->cfg.name));
    json_object_set_new(o, "kind", json_string(sw->cfg.kind));
    json_object_set_new(o, "state", json_string(sup__state_name(sw->state)));
    json_object_set_new(o, "pid", json_integer(sw->inst != NULL ? worker_pid(sw->inst) : 0));
    json_object_set_new(o, "uptime_s", json_integer((json_int_t)up));
    json_object_set_new(o, "restarts", json_integer(sw->restarts));
    json_object_set_new(
        o, "heap_bytes",
        json_integer(sw->inst != NULL ? (json_int_t)worker_heap_bytes(sw->inst) : 0));
    /* A process worker's own resident set: its memory, not herdd's. */
    if (sw->inst != NULL && worker_child_memory_bytes(sw->inst) > 0)
        json_object_set_new(o, "child_rss_bytes",
                            json_integer((json_int_t)worker_child_memory_bytes(sw->inst)));
    json_object_set_new(o, "memory_max",
                        sw->cfg.memory_max ? json_integer((json_int_t)sw->cfg.memory_max)
                                           : json_null());
    json_object_set_new(o, "last_error", err != NULL ? json_string(err) : json_null());
    json_object_set_new(o, "ts", sup__iso_now());
    if (sw->inst != NULL && sw->state == SUP_RUNNING)
        worker_health_fields(sw->inst, o);
    return o;
}

static void answer_waiters(sup_worker *sw)
{
    while (sw->waiters != NULL) {
        sup_waiter *wt = sw->waiters;
        sw->waiters = wt->next;
        json_t *h = sup__worker_health(sw);
        if (h != NULL)
            bus_reply_ok(wt->req, h);
        else
            bus_reply_error(wt->req, "internal", "out of memory");
        free(wt);
    }
}

void sup__worker_set_state(sup_worker *sw, enum sup_state to, const char *reason)
{
    enum sup_state from = sw->state;
    char topic[128];

    sw->state = to;
    snprintf(topic, sizeof(topic), "system.%s.state", sw->cfg.name);
    json_t *ev = json_pack("{s:s,s:s,s:s,s:s,s:o}", "worker", sw->cfg.name, "from",
                           sup__state_name(from), "to", sup__state_name(to), "reason",
                           reason != NULL ? reason : "", "ts", sup__iso_now());
    if (ev != NULL) {
        bus_publish_json(sw->sup->bus, topic, ev);
        json_decref(ev);
    }
    sup_log(to == SUP_FAILED ? BASE_LOG_ERROR : BASE_LOG_INFO, sw->cfg.name, "%s -> %s%s%s",
            sup__state_name(from), sup__state_name(to), reason != NULL && *reason ? ": " : "",
            reason != NULL ? reason : "");
    sup__worker_publish_health(sw);
    if (to == SUP_RUNNING || to == SUP_STOPPED || to == SUP_FAILED || to == SUP_BACKOFF)
        answer_waiters(sw);
    /* systemd's STATUS= and READY=1 follow the counts (notify.c); a no-op
     * outside systemd. */
    sup__notify_changed(sw->sup);
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
    sup__worker_set_error(sw, "%s", error != NULL ? error : "");
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

static void on_log(worker *w, enum base_log_level level, const char *msg, void *data)
{
    sup_log(level, worker_name(w), "%s", msg);
}

/* A kind gets stop_timeout_s plus this to call worker_stopped (the process
 * kind SIGKILLs its child at stop_timeout_s). */
#define STOP_GRACE_MS 2000

void sup__worker_begin_stop(sup_worker *sw, enum sup_stop_reason why, const char *reason)
{
    sw->stop_reason = why;
    sup__worker_set_state(sw, SUP_STOPPING, reason);
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
        snprintf(reason, sizeof(reason), "%s; restart in %llu ms", sup__worker_error(sw),
                 (unsigned long long)delay);
        sup__worker_set_state(sw, SUP_BACKOFF, reason);
        uv_timer_start(&sw->timer, on_timer, delay, 0);
        break;
    case SUP_DECIDE_STOP:
        sup__worker_set_state(sw, SUP_STOPPED, sup__worker_error(sw));
        break;
    case SUP_DECIDE_GIVE_UP:
        /* The cause first, as in the backoff reason: "memory_max: ...;
         * not restarted (temporary)". */
        if (sw->cfg.policy.restart == SUP_RESTART_TEMPORARY)
            snprintf(reason, sizeof(reason), "%s; not restarted (temporary)",
                     sup__worker_error(sw));
        else
            snprintf(reason, sizeof(reason), "%s; gave up (%d restarts within %d s)",
                     sup__worker_error(sw), sw->cfg.policy.max_restarts, sw->cfg.policy.period_s);
        sup__worker_set_error(sw, "%.500s", reason);
        sup__worker_set_state(sw, SUP_FAILED, reason);
        if (s->cfg.on_give_up_exit && !s->shutting_down) {
            sup_log(BASE_LOG_ERROR, "supervisor", "%s failed and on_give_up is \"exit\"",
                    sw->cfg.name);
            s->exit_code = 1;
            if (s->on_exit != NULL)
                s->on_exit(s->on_exit_data);
        }
        break;
    }
}

/* after_stop: the instance is gone (freed, or abandoned when it never
 * finished stopping); what follows was decided when the stop began. */
static void after_stop(sup_worker *sw, int abandoned)
{
    struct sup *s = sw->sup;
    enum sup_stop_reason why = sw->stop_reason;
    uint64_t uptime = now_ms(sw) - sw->started_ms;

    if (!abandoned) {
        worker_free(sw->inst);
        sup__heap_trim_soon(s);
    }
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
        sup__worker_start(sw, "restart requested");
        break;
    case SUP_STOP_CHANGE:
        json_decref(sw->cfg.json);
        sw->cfg = sw->next_cfg;
        memset(&sw->next_cfg, 0, sizeof(sw->next_cfg));
        sup_history_free(&sw->history);
        if (sw->cfg.enabled)
            sup__worker_start(sw, "config changed");
        else
            sup__worker_set_state(sw, SUP_STOPPED, "config changed: disabled");
        break;
    case SUP_STOP_REMOVE:
        sup__worker_set_state(sw, SUP_STOPPED, "removed from the config");
        sup__worker_destroy(sw);
        if (s->shutting_down)
            sup__shutdown_next(s);
        break;
    case SUP_STOP_SHUTDOWN:
        sup__worker_set_state(sw, SUP_STOPPED, "herdd stopping");
        sup__shutdown_next(s);
        break;
    default:
        sup__worker_set_state(sw, SUP_STOPPED, "stopped by request");
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
    } else if (sw->state == SUP_STOPPING && sw->inst != NULL) {
        /* The stop deadline passed. The instance is left as it is, never
         * freed (its kind may still own handles): a bug in the kind costs
         * memory, not the whole supervisor's shutdown. */
        sup_log(BASE_LOG_ERROR, sw->cfg.name, "did not stop within %d s: abandoned",
                sw->cfg.stop_timeout_s + STOP_GRACE_MS / 1000);
        sup__worker_set_error(sw, "did not stop within %d s",
                              sw->cfg.stop_timeout_s + STOP_GRACE_MS / 1000);
        worker_detach(sw->inst);
        after_stop(sw, 1);
    } else if (sw->ended) {
        sw->ended = 0;
        if (sw->inst != NULL && (sw->state == SUP_RUNNING || sw->state == SUP_STARTING))
            sup__worker_begin_stop(sw, SUP_STOP_ENDED, sup__worker_error(sw));
    } else if (sw->state == SUP_BACKOFF && !sw->sup->shutting_down) {
        sup__worker_start(sw, "backoff over");
    }
}

void sup__worker_start(sup_worker *sw, const char *reason)
{
    struct sup *s = sw->sup;
    static const worker_host host = {on_ended, on_stopped, on_log, NULL};
    worker_host h = host;
    char err[512];
    worker_params p = {
        .kind = sw->cfg.kind_ops,
        .name = sw->cfg.name,
        .config = sw->cfg.json,
        .loop = s->loop,
        .bus = s->bus,
        .state_dir = s->cfg.state_dir,
        .runtime_dir = bus_dir(s->bus),
        .host_name = s->cfg.host,
        .host = &h,
        .mem_slot = sw->mem_slot,
    };
    int rv;

    h.data = sw;
    sw->ended = sw->stopped = 0;
    sup__worker_set_state(sw, SUP_STARTING, reason);
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
        sup__worker_set_error(sw, "start failed: %.480s", err);
        apply_policy(sw, 0, 0);
        return;
    }
    sup__worker_set_error(sw, "%s", "");
    sw->memory_high_warned = 0;
    sup__worker_set_state(sw, SUP_RUNNING, "started");
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
            sup__worker_begin_stop(sw, is_stop ? SUP_STOP_USER : SUP_STOP_RESTART,
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
            sup__worker_set_state(sw, SUP_STOPPED, "stop requested");
        else
            sup__worker_start(sw, is_start ? "start requested" : "restart requested");
        break;
    case SUP_STOPPED:
    case SUP_FAILED:
        if (is_stop) {
            answer_waiters(sw);
        } else {
            sup_history_free(&sw->history);
            sup__worker_start(sw, is_start ? "start requested" : "restart requested");
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

    if (action == NULL ||
        (strcmp(action, "start") && strcmp(action, "stop") && strcmp(action, "restart"))) {
        sw->sup->control_unknown++;
        sup_log(BASE_LOG_WARN, sw->cfg.name,
                "control: ignored %.200s (expected {\"action\": \"start\"|\"stop\"|\"restart\"})",
                ev->payload);
    } else {
        sup_log(BASE_LOG_INFO, sw->cfg.name, "control: %s requested by %s", action,
                by != NULL ? by : "(unnamed)");
        sup__worker_action(sw, action, NULL);
    }
    json_decref(o);
}

static void on_health_timer(uv_timer_t *t)
{
    sup__worker_publish_health(t->data);
}

void sup__worker_set_health_period(sup_worker *sw, uint64_t period_ms)
{
    /* The first beat lands somewhere in the second half of the period, by
     * the worker's name: workers started together would otherwise all beat
     * in the same loop turn, 10,000 events at once every period, more than
     * a remote subscriber's queue (bus.subscriber_buffer) takes. */
    uint64_t spread = period_ms / 2;
    uint64_t first =
        period_ms - (spread ? base_hash(sw->cfg.name, strlen(sw->cfg.name), 0) % spread : 0);
    uv_timer_start(&sw->health, on_health_timer, first, period_ms);
}

void sup__worker_fail(sup_worker *sw, const char *reason)
{
    /* Through the runtime, so the instance is marked ended: a kind that
     * then ends by itself (the child killed meanwhile) cannot replace this
     * reason with its own. */
    if (sw->inst != NULL)
        worker_fail(sw->inst, "%s", reason);
}

/* ---- creation and destruction ----------------------------------------- */

static void handle_closed(uv_handle_t *h)
{
    sup_worker *sw = h->data;
    struct sup *s = sw->sup;

    if (--sw->handles_open > 0)
        return;
    uint32_t slot = sw->mem_slot;
    base_free(sw->last_error);
    json_decref(sw->cfg.json);
    json_decref(sw->next_cfg.json);
    sup_history_free(&sw->history);
    base_free(sw);
    base_mem_slot_release(slot);
    sup__handle_released(s);
}

void sup__worker_destroy(sup_worker *sw)
{
    struct sup *s = sw->sup;

    for (sup_worker **pp = &s->workers; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == sw) {
            *pp = sw->next;
            break;
        }
    }
    sw->removed = 1;
    while (sw->waiters != NULL) {
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
/* A config parsed with the whole file is charged to nobody: the worker
 * keeps a copy in its own account. */
void sup__worker_take_config(sup_worker *sw, sup_worker_config *dst, sup_worker_config *wc)
{
    uint32_t prev = base_mem_switch(sw->mem_slot);
    json_t *copy = wc->json != NULL ? json_deep_copy(wc->json) : NULL;
    base_mem_switch(prev);
    json_decref(dst->json);
    *dst = *wc;
    if (copy != NULL) {
        json_decref(dst->json);
        dst->json = copy;
    } /* else out of memory: keep the shared one */
    memset(wc, 0, sizeof(*wc));
}

sup_worker *sup__worker_create(struct sup *s, sup_worker_config *wc)
{
    /* Everything herdd keeps for a worker is charged to the worker's
     * account, so heap_bytes is what it costs (DESIGN.md section 4). */
    uint32_t slot = base_mem_slot_acquire();
    uint32_t prev = base_mem_switch(slot);
    sup_worker *sw = base_calloc(1, sizeof(*sw));
    char topic[128];

    base_mem_switch(prev);
    if (sw == NULL) {
        base_mem_slot_release(slot);
        return NULL;
    }
    sw->sup = s;
    sw->mem_slot = slot;
    sup__worker_take_config(sw, &sw->cfg, wc);
    prev = base_mem_switch(slot);
    uv_timer_init(s->loop, &sw->timer);
    uv_timer_init(s->loop, &sw->health);
    sw->timer.data = sw->health.data = sw;
    sw->handles_open = 2;
    s->handles_open++;
    if (bus_service_register(s->bus, sw->cfg.name, route_request, sw) < 0)
        sup_log(BASE_LOG_ERROR, sw->cfg.name, "cannot register the bus service");
    snprintf(topic, sizeof(topic), "system.%s.control", sw->cfg.name);
    if (bus_subscribe(s->bus, topic, 64, on_control, sw, &sw->control) < 0)
        sup_log(BASE_LOG_ERROR, sw->cfg.name, "cannot subscribe to %s", topic);
    base_mem_switch(prev);
    sup__worker_set_health_period(sw, (uint64_t)sw->cfg.health_interval_s * 1000);
    /* Append: the list keeps config order. */
    sup_worker **pp = &s->workers;
    while (*pp != NULL)
        pp = &(*pp)->next;
    *pp = sw;
    return sw;
}

sup_worker *sup__worker_find(struct sup *s, const char *name)
{
    for (sup_worker *sw = s->workers; sw != NULL; sw = sw->next)
        if (strcmp(sw->cfg.name, name) == 0)
            return sw;
    return NULL;
}
