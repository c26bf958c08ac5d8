/*
 * The supervisor: what is done over every worker (start in config order,
 * memory checks, the reload diff, shutdown in reverse start order), the
 * `supervisor` bus service and herdd's heartbeat. One worker's state
 * machine is lifecycle.c's.
 *
 * Design notes: status figures are computed when asked (one read of
 * smaps_rollup), never cached, so they cost nothing while nobody looks. The
 * supervisor is freed when its last handle (heartbeat, tick, each worker's
 * timers, the shutdown hold) is closed. Reload compares the new config with
 * the running one by name: an unchanged worker keeps its instance. Freed
 * heap goes back to the system from the 1 s tick (heap_trim, below).
 */
#include "supervisor/internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* mallinfo2 came with glibc 2.33; elsewhere the heap figures read 0 and
 * nothing is trimmed. */
#if defined(__GLIBC__) && __GLIBC_PREREQ(2, 33)
#define HAVE_MALLINFO2 1
#include <malloc.h>
#endif

#define MEMORY_CHECK_MS 1000

json_t *sup__iso_now(void)
{
    char ts[BASE_TIME_ISO_MAX];

    base_time_format(base_now_ms(), ts);
    return json_string(ts);
}

/* ---- every worker: start, memory, reload, shutdown ---------------------- */

static int workers_start(struct sup *s)
{
    for (size_t i = 0; i < s->cfg.n_workers; i++) {
        sup_worker *sw = sup__worker_create(s, &s->cfg.workers[i]);
        if (sw == NULL)
            return -ENOMEM;
    }
    free(s->cfg.workers);
    s->cfg.workers = NULL;
    s->cfg.n_workers = 0;
    for (sup_worker *sw = s->workers; sw != NULL; sw = sw->next) {
        if (sw->cfg.enabled)
            sup__worker_start(sw, "herdd started");
        else
            sup__worker_publish_health(sw);
    }
    return 0;
}

/* ---- memory ----------------------------------------------------------- */

static void memory_check(struct sup *s)
{
    for (sup_worker *sw = s->workers; sw != NULL; sw = sw->next) {
        if (sw->inst == NULL || sw->state != SUP_RUNNING || sw->ended)
            continue;
        uint64_t heap = worker_heap_bytes(sw->inst);
        if (sw->cfg.memory_max && heap > sw->cfg.memory_max) {
            char msg[200];
            snprintf(msg, sizeof(msg), "memory %llu bytes over memory_max %llu",
                     (unsigned long long)heap, (unsigned long long)sw->cfg.memory_max);
            sup__worker_fail(sw, msg);
        } else if (sw->cfg.memory_high && heap > sw->cfg.memory_high) {
            if (!sw->memory_high_warned) {
                sw->memory_high_warned = 1;
                sup_log(BASE_LOG_WARN, sw->cfg.name, "memory %llu bytes over memory_high %llu",
                        (unsigned long long)heap, (unsigned long long)sw->cfg.memory_high);
                sup__worker_publish_health(sw);
            }
        } else {
            sw->memory_high_warned = 0;
        }
    }
}

/* ---- giving freed heap back ------------------------------------------- */

/*
 * glibc keeps what is freed in its arenas: after a burst of large messages
 * (a stuck subscriber's queue dropped, or delivered at last) the pages stay
 * resident though nothing uses them, unless they happened to lie at the top
 * of a heap. malloc_trim(0) gives the free pages of every arena back
 * (madvise), at the cost of a walk over every free chunk, so:
 * - it runs from the 1 s tick, at most once a tick, and only when mallinfo2
 *   counts more than TRIM_FREE_BYTES free in the heap;
 * - pages it gave back still count as free in mallinfo2, so that figure
 *   alone would ask for a trim on every tick for as long as the chunks
 *   stay free: after a trim that gave back less than TRIM_MEANINGFUL_BYTES,
 *   the next waits TRIM_QUIET_MS. A trim that did give back memory may be
 *   followed by another on the next tick (a burst still being freed);
 * - after a worker's instance is freed (sup__heap_trim_soon), the next tick
 *   trims regardless of the free figure and of the quiet period: its memory
 *   is known to have just been freed, and stops are rare (a worker
 *   restarting in a loop still costs at most one trim a tick);
 * - glibc's fastbins are off (heap_trim_setup), or malloc_trim itself could
 *   leave memory where it cannot reach it.
 * What a trim gave back is the drop in herdd's resident size across the
 * call: approximate, since other threads may allocate meanwhile, and never
 * counted below zero.
 */
#define TRIM_FREE_BYTES (8u << 20)
#define TRIM_MEANINGFUL_BYTES (1u << 20)
#define TRIM_QUIET_MS 5000

/* heap_trim_setup runs once, at start, and turns glibc's fastbins off
 * (tcache still serves small blocks first). malloc_trim begins by
 * consolidating the fastbins; in a thread arena (nng's threads have their
 * own) that can merge free chunks into the arena's top chunk, which
 * malloc_trim never gives back there: glibc shrinks a thread arena's top only
 * on a later free in that arena. Up to a heap (64 MiB) per arena stayed
 * resident after a burst; with fastbins off, none (bench/trim), at no cost
 * that bench/bus could measure. */
static void heap_trim_setup(void)
{
#ifdef HAVE_MALLINFO2
    mallopt(M_MXFAST, 0);
#endif
}

void sup__heap_trim_soon(struct sup *s)
{
    s->trim_wanted = true;
}

static void heap_trim(struct sup *s)
{
#ifdef HAVE_MALLINFO2
    uint64_t now = uv_now(s->loop), before, after, released;
    bool wanted = s->trim_wanted;

    s->trim_wanted = false;
    if (!wanted) {
        if (now < s->trim_quiet_until_ms)
            return;
        struct mallinfo2 mi = mallinfo2();
        if (mi.fordblks <= TRIM_FREE_BYTES)
            return;
    }
    sup_memory_resident(&before);
    uint64_t t0 = uv_hrtime();
    malloc_trim(0);
    uint64_t took_us = (uv_hrtime() - t0) / 1000;
    sup_memory_resident(&after);
    released = before > after ? before - after : 0;
    s->malloc_trims++;
    s->malloc_trimmed_bytes += released;
    s->trim_quiet_until_ms = released < TRIM_MEANINGFUL_BYTES ? now + TRIM_QUIET_MS : 0;
    sup_log(BASE_LOG_DEBUG, "supervisor", "malloc_trim%s: %llu bytes given back in %llu us",
            wanted ? " (a worker was freed)" : "", (unsigned long long)released,
            (unsigned long long)took_us);
#else
    s->trim_wanted = false;
#endif
}

/* ---- reload ------------------------------------------------------------ */

static void add_name(json_t *summary, const char *list, const char *name)
{
    json_array_append_new(json_object_get(summary, list), json_string(name));
}

static void apply_config(struct sup *s, sup_config *next, json_t *summary)
{
    sup_worker *sw, *nextsw;

    /* Removed workers. */
    for (sw = s->workers; sw != NULL; sw = nextsw) {
        nextsw = sw->next;
        int keep = 0;
        for (size_t i = 0; i < next->n_workers && !keep; i++)
            keep = strcmp(next->workers[i].name, sw->cfg.name) == 0;
        if (keep)
            continue;
        add_name(summary, "removed", sw->cfg.name);
        if (sw->inst != NULL && sw->state != SUP_STOPPING) {
            sup__worker_begin_stop(sw, SUP_STOP_REMOVE, "removed from the config");
        } else if (sw->inst != NULL) {
            sw->stop_reason = SUP_STOP_REMOVE;
        } else {
            uv_timer_stop(&sw->timer);
            if (sw->state != SUP_STOPPED)
                sup__worker_set_state(sw, SUP_STOPPED, "removed from the config");
            sup__worker_destroy(sw);
        }
    }
    /* Added, changed, unchanged. */
    for (size_t i = 0; i < next->n_workers; i++) {
        sup_worker_config *wc = &next->workers[i];
        sw = sup__worker_find(s, wc->name);
        if (sw == NULL) {
            add_name(summary, "added", wc->name);
            sw = sup__worker_create(s, wc);
            if (sw != NULL && sw->cfg.enabled)
                sup__worker_start(sw, "added by reload");
            continue;
        }
        /* Compare with what the worker is headed for, not what runs now:
         * a stop in progress may be for a removal (the worker is added
         * back) or for an earlier change (which this one replaces). */
        bool removing = sw->stop_reason == SUP_STOP_REMOVE;
        const json_t *target = sw->next_cfg.json != NULL ? sw->next_cfg.json : sw->cfg.json;
        if (!removing && json_equal(target, wc->json)) {
            add_name(summary, "unchanged", wc->name);
            json_decref(wc->json);
            wc->json = NULL;
            continue;
        }
        add_name(summary, removing ? "added" : "changed", wc->name);
        if (sw->inst != NULL) {
            json_decref(sw->next_cfg.json);
            sw->next_cfg = *wc;
            memset(wc, 0, sizeof(*wc));
            if (sw->state == SUP_STOPPING)
                sw->stop_reason = SUP_STOP_CHANGE;
            else
                sup__worker_begin_stop(sw, SUP_STOP_CHANGE, "config changed");
        } else {
            uv_timer_stop(&sw->timer);
            json_decref(sw->cfg.json);
            sw->cfg = *wc;
            memset(wc, 0, sizeof(*wc));
            sup_history_free(&sw->history);
            if (sw->cfg.enabled)
                sup__worker_start(sw, "config changed");
            else if (sw->state != SUP_STOPPED)
                sup__worker_set_state(sw, SUP_STOPPED, "config changed: disabled");
        }
        /* A changed heartbeat period applies at once. */
        uint64_t period = (uint64_t)sw->cfg.health_interval_s * 1000;
        if (sw->next_cfg.json != NULL)
            period = (uint64_t)sw->next_cfg.health_interval_s * 1000;
        sup__worker_set_health_period(sw, period);
    }
    free(next->workers);
    next->workers = NULL;
    next->n_workers = 0;
}

/* ---- shutdown ---------------------------------------------------------- */

void sup__shutdown_next(struct sup *s)
{
    sup_worker *last = NULL;

    for (sup_worker *sw = s->workers; sw != NULL; sw = sw->next) {
        if (sw->inst != NULL && sw->state == SUP_STOPPING)
            return; /* one at a time: wait for it */
        if (sw->inst != NULL && (last == NULL || sw->start_seq > last->start_seq))
            last = sw;
    }
    if (last != NULL) {
        sup__worker_begin_stop(last, SUP_STOP_SHUTDOWN, "herdd stopping");
        return;
    }
    /* Every instance is gone: release the workers, then the supervisor. */
    while (s->workers != NULL)
        sup__worker_destroy(s->workers);
    sup__handle_released(s);
}

static void workers_shutdown(struct sup *s)
{
    s->shutting_down = 1;
    for (sup_worker *sw = s->workers; sw != NULL; sw = sw->next) {
        uv_timer_stop(&sw->health);
        if (sw->state == SUP_BACKOFF) {
            uv_timer_stop(&sw->timer);
            sup__worker_set_state(sw, SUP_STOPPED, "herdd stopping");
        }
    }
    s->handles_open++; /* released by shutdown_next when all are stopped */
    sup__shutdown_next(s);
}

/* ---- the supervisor service --------------------------------------------- */

json_t *sup_health(sup *s)
{
    sup_memory mem;
    bus_stats st;
    json_t *o = json_object(), *counts = json_object();

    if (o == NULL || counts == NULL) {
        json_decref(o);
        json_decref(counts);
        return NULL;
    }
    sup_memory_read(0, &mem);
    bus_get_stats(s->bus, &st);
    for (int i = 0; i < SUP_N_STATES; i++) {
        int n = 0;
        for (sup_worker *sw = s->workers; sw != NULL; sw = sw->next)
            n += sw->state == (enum sup_state)i;
        if (n)
            json_object_set_new(counts, sup__state_name(i), json_integer(n));
    }
    json_object_set_new(o, "pid", json_integer(getpid()));
    json_object_set_new(o, "version", json_string(HERD_VERSION));
    json_object_set_new(o, "uptime_s",
                        json_integer((json_int_t)((uv_hrtime() - s->started_ns) / 1000000000u)));
    json_object_set_new(o, "rss_bytes", json_integer((json_int_t)mem.rss_bytes));
    json_object_set_new(o, "pss_bytes", json_integer((json_int_t)mem.pss_bytes));
    json_object_set_new(o, "uss_bytes", json_integer((json_int_t)mem.uss_bytes));
    json_object_set_new(o, "runtime_dir", json_string(bus_dir(s->bus)));
    json_object_set_new(o, "state_dir", json_string(s->cfg.state_dir));
    json_object_set_new(
        o, "config", s->config_file[0] ? json_string(s->config_file) : json_string("(built-in)"));
    json_object_set_new(o, "workers", counts);
    json_object_set_new(o, "control_refused", json_integer((json_int_t)s->control_unknown));
    json_object_set_new(o, "malloc_trims", json_integer((json_int_t)s->malloc_trims));
    json_object_set_new(o, "malloc_trimmed_bytes",
                        json_integer((json_int_t)s->malloc_trimmed_bytes));
    json_object_set_new(o, "bus", bus_stats_json(&st));
    json_object_set_new(o, "ts", sup__iso_now());
    return o;
}

static json_t *status(sup *s)
{
    json_t *r = json_object(), *list = json_array();

    for (sup_worker *sw = s->workers; sw != NULL; sw = sw->next)
        json_array_append_new(list, sup__worker_health(sw));
    json_object_set_new(r, "supervisor", sup_health(s));
    json_object_set_new(r, "workers", list);
    return r;
}

static json_t *mem_report(sup *s)
{
    sup_memory mem;
    size_t arena = 0, in_use = 0, free_bytes = 0;
    json_t *workers = json_object();

#ifdef HAVE_MALLINFO2
    struct mallinfo2 mi = mallinfo2();
    arena = mi.arena;
    in_use = mi.uordblks;
    free_bytes = mi.fordblks;
#endif
    for (sup_worker *sw = s->workers; sw != NULL; sw = sw->next)
        json_object_set_new(
            workers, sw->cfg.name,
            json_integer(sw->inst != NULL ? (json_int_t)worker_heap_bytes(sw->inst) : 0));
    sup_memory_read(0, &mem);
    return json_pack("{s:{s:I,s:I,s:I,s:I},s:{s:I,s:I,s:I,s:I,s:I},s:o}", "supervisor", "rss_bytes",
                     (json_int_t)mem.rss_bytes, "pss_bytes", (json_int_t)mem.pss_bytes, "uss_bytes",
                     (json_int_t)mem.uss_bytes, "unaccounted_heap_bytes",
                     (json_int_t)base_mem_slot_bytes(0), "malloc", "arena_bytes", (json_int_t)arena,
                     "in_use_bytes", (json_int_t)in_use, "free_bytes", (json_int_t)free_bytes,
                     "trims", (json_int_t)s->malloc_trims, "trimmed_bytes",
                     (json_int_t)s->malloc_trimmed_bytes, "workers", workers);
}

static void worker_op(sup *s, bus_request *req, const char *op)
{
    json_t *name = json_object_get(bus_request_args(req), "worker");
    sup_worker *sw;
    int rv;

    if (!json_is_string(name)) {
        bus_reply_error(req, "bad_request", "args.worker: expected a worker name");
        return;
    }
    sw = sup__worker_find(s, json_string_value(name));
    if (sw == NULL) {
        bus_reply_error(req, "not_found", "no worker named \"%.64s\"", json_string_value(name));
        return;
    }
    rv = sup__worker_action(sw, op, req);
    if (rv == -ESHUTDOWN)
        bus_reply_error(req, "unavailable", "herdd is stopping");
    else if (rv < 0)
        bus_reply_error(req, "internal", "%s", strerror(-rv));
}

static void on_request(bus_request *req, void *data)
{
    sup *s = data;
    const char *op = bus_request_op(req);
    const char *key;
    json_t *v;

    /* Every op takes exactly its arguments: a misspelt one is an error,
     * not ignored. */
    bool worker_ops =
        strcmp(op, "start") == 0 || strcmp(op, "stop") == 0 || strcmp(op, "restart") == 0;
    bool known = worker_ops || strcmp(op, "status") == 0 || strcmp(op, "mem") == 0 ||
                 strcmp(op, "reload") == 0;
    json_object_foreach(bus_request_args(req), key, v)
    {
        if (known && (!worker_ops || strcmp(key, "worker") != 0)) {
            bus_reply_error(req, "bad_request", "%.64s: unknown argument of %s (expected %s)", key,
                            op, worker_ops ? "worker" : "none");
            return;
        }
    }
    if (strcmp(op, "status") == 0) {
        bus_reply_ok(req, status(s));
    } else if (strcmp(op, "mem") == 0) {
        bus_reply_ok(req, mem_report(s));
    } else if (strcmp(op, "start") == 0 || strcmp(op, "stop") == 0 || strcmp(op, "restart") == 0) {
        worker_op(s, req, op);
    } else if (strcmp(op, "reload") == 0) {
        char err[1024];
        json_t *summary = NULL;
        if (sup_reload(s, &summary, err, sizeof(err)) < 0)
            bus_reply_error(req, "bad_request", "%s", err);
        else
            bus_reply_ok(req, summary);
    } else {
        bus_reply_error(req, "unknown_op",
                        "supervisor has no op \"%.64s\" (expected status, mem, start, stop, "
                        "restart or reload)",
                        op);
    }
}

static void heartbeat(uv_timer_t *t)
{
    sup *s = t->data;
    json_t *h = sup_health(s);

    if (h != NULL) {
        bus_publish_json(s->bus, "system.supervisor.health", h);
        json_decref(h);
    }
}

static void tick(uv_timer_t *t)
{
    memory_check(t->data);
    heap_trim(t->data);
}

int sup_new(uv_loop_t *loop, sup_config *cfg, const char *config_file, bus *b, sup **out)
{
    sup *s = calloc(1, sizeof(*s));
    int rv;

    if (s == NULL)
        return -ENOMEM;
    s->loop = loop;
    s->cfg = *cfg;
    memset(cfg, 0, sizeof(*cfg));
    if (config_file != NULL)
        snprintf(s->config_file, sizeof(s->config_file), "%s", config_file);
    s->bus = b;
    s->started_ns = uv_hrtime();
    heap_trim_setup();
    if ((rv = bus_service_register(b, "supervisor", on_request, s)) < 0) {
        sup_config_free(&s->cfg);
        free(s);
        return rv;
    }
    uv_timer_init(loop, &s->heartbeat);
    uv_timer_init(loop, &s->tick);
    s->heartbeat.data = s->tick.data = s;
    s->handles_open = 2;
    uint64_t period = (uint64_t)s->cfg.health_interval_s * 1000;
    uv_timer_start(&s->heartbeat, heartbeat, 0, period);
    uv_timer_start(&s->tick, tick, MEMORY_CHECK_MS, MEMORY_CHECK_MS);
    *out = s;
    return workers_start(s);
}

void sup_set_exit_handler(sup *s, void (*on_exit)(void *data), void *data)
{
    s->on_exit = on_exit;
    s->on_exit_data = data;
}

int sup_reload(sup *s, json_t **summary, char *err, size_t err_size)
{
    sup_config next;
    int rv;

    sup_config_defaults(&next);
    if (s->config_file[0])
        rv = sup_config_load(s->config_file, &next, err, err_size);
    else
        rv = sup_config_default(&next, err, err_size);
    if (rv < 0)
        return rv;
    if (strcmp(next.runtime_dir, bus_dir(s->bus)) || strcmp(next.state_dir, s->cfg.state_dir) ||
        next.max_message_bytes != s->cfg.max_message_bytes ||
        strcmp(next.http_listen, s->cfg.http_listen))
        sup_log(BASE_LOG_WARN, "supervisor",
                "reload: bus, http and state_dir settings apply only when herdd restarts");
    *summary = json_pack("{s:[],s:[],s:[],s:[]}", "added", "removed", "changed", "unchanged");
    if (*summary == NULL) {
        sup_config_free(&next);
        snprintf(err, err_size, "out of memory");
        return -ENOMEM;
    }
    s->cfg.on_give_up_exit = next.on_give_up_exit;
    if (next.health_interval_s != s->cfg.health_interval_s) {
        s->cfg.health_interval_s = next.health_interval_s;
        uint64_t period = (uint64_t)next.health_interval_s * 1000;
        uv_timer_start(&s->heartbeat, heartbeat, period, period);
    }
    apply_config(s, &next, *summary);
    sup_config_free(&next);
    char *text = base_json_dumps(*summary, JSON_COMPACT);
    sup_log(BASE_LOG_INFO, "supervisor", "reloaded %s: %s",
            s->config_file[0] ? s->config_file : "(built-in config)", text != NULL ? text : "");
    free(text);
    return 0;
}

void sup__handle_released(sup *s)
{
    if (--s->handles_open > 0)
        return;
    void (*cb)(int, void *) = s->on_closed;
    void *data = s->on_closed_data;
    int code = s->exit_code;
    sup_config_free(&s->cfg);
    free(s);
    if (cb != NULL)
        cb(code, data);
}

static void timer_closed(uv_handle_t *h)
{
    sup__handle_released(h->data);
}

void sup_shutdown(sup *s, void (*on_closed)(int exit_code, void *data), void *data)
{
    if (s == NULL || s->shutting_down)
        return;
    s->on_closed = on_closed;
    s->on_closed_data = data;
    bus_service_unregister(s->bus, "supervisor");
    uv_close((uv_handle_t *)&s->heartbeat, timer_closed);
    uv_close((uv_handle_t *)&s->tick, timer_closed);
    workers_shutdown(s);
}
