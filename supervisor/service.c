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

/*
 * memory_check runs from the 1 s tick over every running worker's charged
 * bytes (worker_memory_bytes: its heap account, what its kind reports it
 * holds besides, and a process worker's child RSS, which that kind samples
 * every second too):
 * - over memory_high: one warning, published on system.<w>.warning and
 *   logged, per crossing. It is re-armed only once the figure falls below
 *   90% of memory_high (MEMORY_HIGH_REARM_GAP), so a figure hovering at the
 *   line warns once, not every other tick. A new instance starts re-armed
 *   (lifecycle.c clears memory_high_warned).
 * - over memory_max: the worker fails with a reason that starts with
 *   "memory_max:", and is restarted per its policy (sup__worker_fail). A
 *   figure that jumps over both in one tick warns first, then fails.
 * The two timers are not in phase, so a process worker's crossing is seen
 * within two seconds: up to 1 s until its kind samples the RSS, up to 1 s
 * more until this tick reads it.
 */
#define MEMORY_HIGH_REARM_GAP 10 /* re-armed below memory_high - memory_high / 10 */

/* limit_text writes a limit as the config gave it: "100M (104857600)",
 * or the bare number when it was given as one. */
static void limit_text(const sup_worker *sw, const char *key, uint64_t bytes, char *buf,
                       size_t size)
{
    const json_t *v = json_object_get(sw->cfg.json, key);

    if (json_is_string(v))
        snprintf(buf, size, "%.32s (%llu)", json_string_value(v), (unsigned long long)bytes);
    else
        snprintf(buf, size, "%llu", (unsigned long long)bytes);
}

/* The warning's payload names the figure that crossed the line
 * (memory_bytes) and its parts as health has them: heap_bytes (what the
 * worker costs herdd) and, for a worker with a process of its own,
 * child_rss_bytes. */
static void memory_high_warn(sup_worker *sw, uint64_t bytes)
{
    char topic[128], limit[80];
    uint64_t child = worker_child_memory_bytes(sw->inst);
    json_t *ev;

    sw->memory_high_warned = 1;
    limit_text(sw, "memory_high", sw->cfg.memory_high, limit, sizeof(limit));
    sup_log(BASE_LOG_WARN, sw->cfg.name, "memory %llu bytes over memory_high %s",
            (unsigned long long)bytes, limit);
    snprintf(topic, sizeof(topic), "system.%s.warning", sw->cfg.name);
    ev = json_pack("{s:s,s:s,s:s,s:I,s:I,s:I,s:o}", "worker", sw->cfg.name, "kind", sw->cfg.kind,
                   "warning", "memory_high", "memory_bytes", (json_int_t)bytes, "heap_bytes",
                   (json_int_t)worker_heap_bytes(sw->inst), "memory_high",
                   (json_int_t)sw->cfg.memory_high, "ts", sup__iso_now());
    if (ev != NULL && child > 0)
        json_object_set_new(ev, "child_rss_bytes", json_integer((json_int_t)child));
    if (ev != NULL) {
        bus_publish_json(sw->sup->bus, topic, ev);
        json_decref(ev);
    }
    sup__worker_publish_health(sw);
}

static void memory_check(struct sup *s)
{
    for (sup_worker *sw = s->workers; sw != NULL; sw = sw->next) {
        if (sw->inst == NULL || sw->state != SUP_RUNNING || sw->ended)
            continue;
        uint64_t bytes = worker_memory_bytes(sw->inst), high = sw->cfg.memory_high;
        if (high && bytes > high && !sw->memory_high_warned)
            memory_high_warn(sw, bytes);
        else if (high && sw->memory_high_warned && bytes < high - high / MEMORY_HIGH_REARM_GAP)
            sw->memory_high_warned = 0;
        if (sw->cfg.memory_max && bytes > sw->cfg.memory_max) {
            char msg[200], limit[80];
            limit_text(sw, "memory_max", sw->cfg.memory_max, limit, sizeof(limit));
            snprintf(msg, sizeof(msg), "memory_max: %llu bytes over %s", (unsigned long long)bytes,
                     limit);
            sup__worker_fail(sw, msg);
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
 *   counts more than TRIM_FREE_BYTES free in the heap, or more than
 *   TRIM_FREE_MIN_BYTES (256 KiB) that is also over a quarter of what is
 *   in use (the holes starting a few hundred workers leaves: 0.5 to 2 MiB
 *   resident for 300 to 500 idle workers, tests/integration/mem_truth.sh);
 * - pages it gave back still count as free in mallinfo2, so that figure
 *   alone would ask for a trim on every tick for as long as the chunks
 *   stay free: after a trim that gave back less than TRIM_MEANINGFUL_BYTES,
 *   the next waits TRIM_QUIET_MS, doubled after every such trim up to
 *   TRIM_QUIET_MAX_MS (an idle herdd walks its free chunks once a minute). A trim that did give
 * back memory may be followed by another on the next tick (a burst still being freed);
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
#define TRIM_FREE_MIN_BYTES (256u << 10)
#define TRIM_MEANINGFUL_BYTES (1u << 20)
#define TRIM_QUIET_MS 5000
#define TRIM_QUIET_MAX_MS 60000

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
    /* One arena for every thread. glibc gives each thread that allocates
     * (the libuv pool loading catalog indexes and jobs metadata, nng's
     * workers) an arena of its own, whose holes malloc_trim can only
     * partly give back: 1,000 idle catalog workers kept 5.5 KiB each in
     * pool-thread arenas (bench/idle). herdd's threads allocate little and
     * briefly; the tcache serves most of it without the arena lock. */
    mallopt(M_ARENA_MAX, 1);
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
        /* Free space worth a walk: a lot of it, or much of the heap (what
         * starting many workers leaves behind once they run). */
        struct mallinfo2 mi = mallinfo2();
        if (mi.fordblks <= TRIM_FREE_BYTES &&
            (mi.fordblks <= TRIM_FREE_MIN_BYTES || mi.fordblks <= mi.uordblks / 4))
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
    if (released < TRIM_MEANINGFUL_BYTES) {
        s->trim_quiet_ms = s->trim_quiet_ms ? s->trim_quiet_ms * 2 : TRIM_QUIET_MS;
        if (s->trim_quiet_ms > TRIM_QUIET_MAX_MS)
            s->trim_quiet_ms = TRIM_QUIET_MAX_MS;
        s->trim_quiet_until_ms = now + s->trim_quiet_ms;
    } else {
        s->trim_quiet_ms = 0;
        s->trim_quiet_until_ms = 0;
    }
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
            sup__worker_take_config(sw, &sw->next_cfg, wc);
            if (sw->state == SUP_STOPPING)
                sw->stop_reason = SUP_STOP_CHANGE;
            else
                sup__worker_begin_stop(sw, SUP_STOP_CHANGE, "config changed");
        } else {
            uv_timer_stop(&sw->timer);
            sup__worker_take_config(sw, &sw->cfg, wc);
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
    json_object_set_new(o, "host", json_string(s->cfg.host)); /* its name in fleet topics */
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

/*
 * mem_report answers the `mem` op: herdd's resident, proportional and
 * unique sets; glibc's heap (mallinfo2, which sums every arena): arena_bytes
 * is what the arenas took from the system, mmap_bytes the large blocks
 * mapped on their own, in_use_bytes every live block (both), free_bytes
 * what is free inside the arenas (what malloc_trim can give back; pages it
 * gave back still count); the accounts: slot 0 (unaccounted_heap_bytes:
 * herdd's own code and other threads) and the sum of every other account
 * (worker_accounts_bytes: what is held for each worker and its instance,
 * and what freed ones left behind, so a leak shows as a figure that grows
 * with every start and stop of the same workers); then one row per worker
 * in config order: heap_bytes (what it costs herdd) and child_rss_bytes (its
 * own process's) as health reports them, their sum memory_bytes (what
 * memory_high and memory_max are checked against), all 0 without an
 * instance. Under a sanitizer the heap figures are glibc's, which the
 * sanitizer's allocator bypasses.
 */
static json_t *mem_report(sup *s)
{
    sup_memory mem;
    size_t arena = 0, mmapped = 0, in_use = 0, free_bytes = 0;
    uint64_t accounted = 0;
    json_t *workers = json_array();

    if (workers == NULL)
        return NULL;
#ifdef HAVE_MALLINFO2
    struct mallinfo2 mi = mallinfo2();
    arena = mi.arena;
    mmapped = mi.hblkhd;
    in_use = mi.uordblks + mi.hblkhd;
    free_bytes = mi.fordblks;
#endif
    accounted = base_mem_accounts_bytes();
    for (sup_worker *sw = s->workers; sw != NULL; sw = sw->next) {
        worker *w = sw->inst;
        json_t *row = json_pack(
            "{s:s,s:s,s:s,s:I,s:I,s:I,s:o,s:o}", "worker", sw->cfg.name, "kind", sw->cfg.kind,
            "state", sup__state_name(sw->state), "heap_bytes",
            w != NULL ? (json_int_t)worker_heap_bytes(w) : 0, "child_rss_bytes",
            w != NULL ? (json_int_t)worker_child_memory_bytes(w) : 0, "memory_bytes",
            w != NULL ? (json_int_t)worker_memory_bytes(w) : 0, "memory_high",
            sw->cfg.memory_high ? json_integer((json_int_t)sw->cfg.memory_high) : json_null(),
            "memory_max",
            sw->cfg.memory_max ? json_integer((json_int_t)sw->cfg.memory_max) : json_null());
        if (row == NULL || json_array_append_new(workers, row) < 0) {
            json_decref(workers);
            return NULL;
        }
    }
    sup_memory_read(0, &mem);
    return json_pack("{s:I,s:{s:I,s:I,s:I,s:I,s:I},s:{s:I,s:I,s:I,s:I,s:I,s:I},s:o}", "pid",
                     (json_int_t)getpid(), "supervisor", "rss_bytes", (json_int_t)mem.rss_bytes,
                     "pss_bytes", (json_int_t)mem.pss_bytes, "uss_bytes", (json_int_t)mem.uss_bytes,
                     "unaccounted_heap_bytes", (json_int_t)base_mem_slot_bytes(0),
                     "worker_accounts_bytes", (json_int_t)accounted, "malloc", "arena_bytes",
                     (json_int_t)arena, "mmap_bytes", (json_int_t)mmapped, "in_use_bytes",
                     (json_int_t)in_use, "free_bytes", (json_int_t)free_bytes, "trims",
                     (json_int_t)s->malloc_trims, "trimmed_bytes",
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
        json_t *r = mem_report(s);
        if (r != NULL)
            bus_reply_ok(req, r);
        else
            bus_reply_error(req, "internal", "out of memory");
    } else if (strcmp(op, "start") == 0 || strcmp(op, "stop") == 0 || strcmp(op, "restart") == 0) {
        worker_op(s, req, op);
    } else if (strcmp(op, "reload") == 0) {
        char err[1024];
        json_t *summary = NULL;
        sup__notify_reloading(); /* systemd: RELOADING=1 now, READY=1 once settled */
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
