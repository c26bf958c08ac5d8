/*
 * One worker's state machine (supervisor/lifecycle.c) and the order of
 * shutdown, driven through a fake worker_kind instead of child processes:
 * start, stop, restart, failures under each restart policy, a start that
 * fails, a kind that never finishes stopping, and reverse-order shutdown.
 * Every transition is read from the worker's system.<w>.state events.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "supervisor/internal.h"

/* ---- the fake kind ------------------------------------------------------ */

enum fake_mode {
    FAKE_RUN,         /* runs until stopped; stops at once */
    FAKE_START_FAILS, /* start returns -EIO */
    FAKE_FAILS_SOON,  /* reports a fatal error 5 ms after start */
    FAKE_EXITS_CLEAN, /* reports a clean exit (code 0) 5 ms after start */
    FAKE_EXITS_DIRTY, /* reports exit code 3 5 ms after start */
    FAKE_NEVER_STOPS, /* never calls worker_stopped */
};

/* What every instance of a worker shares, found by the worker's name. */
typedef struct fake_world {
    const char *name;
    enum fake_mode mode;
    int starts, stops;
    struct fake *last; /* the newest instance's state */
} fake_world;

static fake_world worlds[4];
static char stop_order[64]; /* names of the workers, in the order stopped */

typedef struct fake {
    worker *w;
    fake_world *world;
    uv_timer_t timer;
    bool timer_open, stopping;
} fake;

static fake_world *world_of(const char *name)
{
    for (size_t i = 0; i < sizeof(worlds) / sizeof(worlds[0]); i++)
        if (worlds[i].name != NULL && strcmp(worlds[i].name, name) == 0)
            return &worlds[i];
    fail_msg("no fake world for %s", name);
    return NULL;
}

static void fake_timer_closed(uv_handle_t *h)
{
    fake *f = h->data;
    f->timer_open = false;
    if (f->stopping && f->world->mode != FAKE_NEVER_STOPS)
        worker_stopped(f->w);
}

static void fake_fire(uv_timer_t *t)
{
    fake *f = t->data;
    worker *prev = worker_enter(f->w);
    if (f->world->mode == FAKE_FAILS_SOON)
        worker_fail(f->w, "fake failure");
    else if (f->world->mode == FAKE_EXITS_CLEAN)
        worker_exit(f->w, 0, "fake exited cleanly");
    else if (f->world->mode == FAKE_EXITS_DIRTY)
        worker_exit(f->w, 3, "fake exited with 3");
    worker_leave(prev);
}

static int fake_start(worker *w, void *state)
{
    fake *f = state;
    f->w = w;
    f->world = world_of(worker_name(w));
    f->world->starts++;
    f->world->last = f;
    if (f->world->mode == FAKE_START_FAILS) {
        worker_set_error(w, "fake start failure");
        return -EIO;
    }
    uv_timer_init(worker_loop(w), &f->timer);
    f->timer.data = f;
    f->timer_open = true;
    if (f->world->mode != FAKE_RUN && f->world->mode != FAKE_NEVER_STOPS)
        uv_timer_start(&f->timer, fake_fire, 5, 0);
    return 0;
}

static void fake_stop(worker *w, void *state)
{
    fake *f = state;
    f->stopping = true;
    f->world->stops++;
    strncat(stop_order, worker_name(w), sizeof(stop_order) - strlen(stop_order) - 1);
    if (f->world->mode == FAKE_NEVER_STOPS)
        return; /* keeps its timer: abandoned by the supervisor */
    uv_close((uv_handle_t *)&f->timer, fake_timer_closed);
}

static const worker_kind fake_kind = {
    .name = "fake",
    .size = sizeof(fake),
    .start = fake_start,
    .stop = fake_stop,
};

/* ---- a supervisor on a socketless bus ----------------------------------- */

typedef struct env {
    uv_loop_t loop;
    bus *bus;
    sup *sup;
    char dir[256];
    char states[4096]; /* "w:from>to " for every transition */
    bool bus_closed, sup_closed;
    int exit_code;
} env;

static void on_state(const bus_event *ev, void *data)
{
    env *e = data;
    json_t *o = json_loadb(ev->payload, ev->payload_len, 0, NULL);
    char line[128];
    snprintf(line, sizeof(line), "%s:%s>%s ", json_string_value(json_object_get(o, "worker")),
             json_string_value(json_object_get(o, "from")),
             json_string_value(json_object_get(o, "to")));
    strncat(e->states, line, sizeof(e->states) - strlen(e->states) - 1);
    json_decref(o);
}

static void worker_cfg(sup_worker_config *wc, const char *name, enum sup_restart restart)
{
    memset(wc, 0, sizeof(*wc));
    snprintf(wc->name, sizeof(wc->name), "%s", name);
    snprintf(wc->kind, sizeof(wc->kind), "fake");
    wc->kind_ops = &fake_kind;
    wc->json = json_pack("{s:s,s:s}", "name", name, "kind", "fake");
    wc->enabled = 1;
    wc->policy = (sup_policy){restart, 10, 40, 3, 60};
    wc->health_interval_s = 3600;
    wc->stop_timeout_s = 1;
}

/* env_start runs a supervisor over n workers named a, b, c, ... with the
 * given modes. */
static void env_start(env *e, size_t n, const enum fake_mode *modes, enum sup_restart restart)
{
    static const char *const names[] = {"a", "b", "c", "d"};
    char err[256];
    sup_config cfg;

    memset(e, 0, sizeof(*e));
    memset(worlds, 0, sizeof(worlds));
    stop_order[0] = '\0';
    assert_int_equal(uv_loop_init(&e->loop), 0);
    const char *tmp = getenv("HERD_TEST_TMP");
    snprintf(e->dir, sizeof(e->dir), "%s/lifecycle-XXXXXX", tmp != NULL ? tmp : "/tmp");
    assert_non_null(mkdtemp(e->dir));
    bus_config bc = {.no_sockets = true};
    assert_int_equal(bus_open(&e->loop, &bc, &e->bus, err, sizeof(err)), 0);
    assert_int_equal(bus_subscribe(e->bus, "system.*.state", 4096, on_state, e, NULL), 0);
    sup_config_defaults(&cfg);
    snprintf(cfg.state_dir, sizeof(cfg.state_dir), "%s", e->dir);
    cfg.workers = calloc(n, sizeof(*cfg.workers));
    assert_non_null(cfg.workers);
    for (size_t i = 0; i < n; i++) {
        worlds[i].name = names[i];
        worlds[i].mode = modes[i];
        worker_cfg(&cfg.workers[i], names[i], restart);
    }
    cfg.n_workers = n;
    assert_int_equal(sup_new(&e->loop, &cfg, NULL, e->bus, &e->sup), 0);
}

static void run_for(env *e, uint64_t ms)
{
    uint64_t end = uv_now(&e->loop) + ms;
    while (uv_now(&e->loop) < end) {
        uv_run(&e->loop, UV_RUN_NOWAIT);
        usleep(1000);
        uv_update_time(&e->loop);
    }
}

/* run_until runs the loop until the state of worker name is st (or fails
 * after timeout_ms). */
static void run_until(env *e, const char *name, enum sup_state st, uint64_t timeout_ms)
{
    uint64_t end = uv_now(&e->loop) + timeout_ms;
    for (;;) {
        uv_run(&e->loop, UV_RUN_NOWAIT);
        sup_worker *sw = sup__worker_find(e->sup, name);
        if (sw != NULL && sw->state == st) {
            /* Events are dispatched on later loop turns. */
            for (int i = 0; i < 3; i++)
                uv_run(&e->loop, UV_RUN_NOWAIT);
            return;
        }
        uv_update_time(&e->loop);
        if (uv_now(&e->loop) > end)
            fail_msg("%s never reached %s (is %s); transitions: %s", name, sup__state_name(st),
                     sw != NULL ? sup__state_name(sw->state) : "gone", e->states);
        usleep(1000);
    }
}

static void on_sup_closed(int exit_code, void *data)
{
    env *e = data;
    e->sup_closed = true;
    e->exit_code = exit_code;
}

static void on_bus_closed(void *data)
{
    ((env *)data)->bus_closed = true;
}

static void env_finish(env *e)
{
    sup_shutdown(e->sup, on_sup_closed, e);
    for (int i = 0; i < 10000 && !e->sup_closed; i++) {
        uv_run(&e->loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
    assert_true(e->sup_closed);
    bus_close(e->bus, on_bus_closed, e);
    uv_run(&e->loop, UV_RUN_DEFAULT);
    assert_true(e->bus_closed);
    assert_int_equal(uv_loop_close(&e->loop), 0);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", e->dir);
    assert_int_equal(system(cmd), 0);
}

static bool has(const env *e, const char *s)
{
    return strstr(e->states, s) != NULL;
}

/* ---- the cases ------------------------------------------------------------ */

static void test_start_stop_restart(void **state)
{
    env e;
    const enum fake_mode modes[] = {FAKE_RUN};
    env_start(&e, 1, modes, SUP_RESTART_PERMANENT);
    run_until(&e, "a", SUP_RUNNING, 2000);
    assert_true(has(&e, "a:stopped>starting a:starting>running "));
    sup_worker *sw = sup__worker_find(e.sup, "a");
    assert_int_equal(sup__worker_action(sw, "stop", NULL), 0);
    run_until(&e, "a", SUP_STOPPED, 2000);
    assert_true(has(&e, "a:running>stopping a:stopping>stopped "));
    assert_int_equal(worlds[0].stops, 1);
    /* stopping what is stopped changes nothing */
    assert_int_equal(sup__worker_action(sw, "stop", NULL), 0);
    run_for(&e, 20);
    assert_int_equal(worlds[0].stops, 1);
    assert_int_equal(sup__worker_action(sw, "start", NULL), 0);
    run_until(&e, "a", SUP_RUNNING, 2000);
    assert_int_equal(worlds[0].starts, 2);
    assert_int_equal(sup__worker_action(sw, "restart", NULL), 0);
    run_for(&e, 50);
    run_until(&e, "a", SUP_RUNNING, 2000);
    assert_int_equal(worlds[0].starts, 3);
    assert_int_equal(sw->restarts, 1);
    assert_int_equal(sup__worker_action(sw, "bounce", NULL), -EINVAL);
    env_finish(&e);
}

static void test_permanent_gives_up(void **state)
{
    env e;
    const enum fake_mode modes[] = {FAKE_FAILS_SOON};
    env_start(&e, 1, modes, SUP_RESTART_PERMANENT);
    run_until(&e, "a", SUP_FAILED, 5000);
    /* max_restarts 3: three restarts after backoff, then the fourth
     * failure gives up */
    assert_int_equal(worlds[0].starts, 4);
    assert_int_equal(sup__worker_find(e.sup, "a")->restarts, 3);
    assert_true(has(&e, "a:running>stopping a:stopping>backoff a:backoff>starting "));
    assert_true(has(&e, "a:stopping>failed "));
    assert_non_null(strstr(sup__worker_find(e.sup, "a")->last_error, "gave up"));
    env_finish(&e);
}

static void test_start_failure(void **state)
{
    env e;
    const enum fake_mode modes[] = {FAKE_START_FAILS};
    env_start(&e, 1, modes, SUP_RESTART_PERMANENT);
    run_until(&e, "a", SUP_FAILED, 5000);
    assert_int_equal(worlds[0].starts, 4);
    assert_int_equal(worlds[0].stops, 0); /* a failed start owns nothing to stop */
    assert_true(has(&e, "a:starting>backoff "));
    assert_non_null(strstr(sup__worker_find(e.sup, "a")->last_error, "fake start failure"));
    env_finish(&e);
}

static void test_transient(void **state)
{
    env e;
    const enum fake_mode modes[] = {FAKE_EXITS_CLEAN, FAKE_EXITS_DIRTY};
    env_start(&e, 2, modes, SUP_RESTART_TRANSIENT);
    run_until(&e, "a", SUP_STOPPED, 2000);
    run_until(&e, "b", SUP_FAILED, 5000);
    assert_int_equal(worlds[0].starts, 1); /* a clean exit is not restarted */
    assert_int_equal(worlds[1].starts, 4); /* a failure is, up to the intensity */
    assert_true(has(&e, "a:stopping>stopped "));
    env_finish(&e);
}

static void test_temporary(void **state)
{
    env e;
    const enum fake_mode modes[] = {FAKE_EXITS_CLEAN, FAKE_FAILS_SOON};
    env_start(&e, 2, modes, SUP_RESTART_TEMPORARY);
    run_until(&e, "a", SUP_STOPPED, 2000);
    run_until(&e, "b", SUP_FAILED, 2000);
    assert_int_equal(worlds[0].starts, 1);
    assert_int_equal(worlds[1].starts, 1);
    env_finish(&e);
}

static void test_abandoned(void **state)
{
    env e;
    const enum fake_mode modes[] = {FAKE_NEVER_STOPS};
    env_start(&e, 1, modes, SUP_RESTART_PERMANENT);
    run_until(&e, "a", SUP_RUNNING, 2000);
    sup_worker *sw = sup__worker_find(e.sup, "a");
    assert_int_equal(sup__worker_action(sw, "stop", NULL), 0);
    run_until(&e, "a", SUP_STOPPING, 100);
    /* stop_timeout_s (1 s) + the 2 s grace, then it is left behind */
    run_until(&e, "a", SUP_STOPPED, 5000);
    assert_null(sw->inst);
    assert_non_null(strstr(sw->last_error, "did not stop within 3 s"));
    /* The supervisor never frees an abandoned instance (its kind may still
     * own handles): this test plays the kind that finally lets go. */
    fake *f = worlds[0].last;
    worker *w = f->w;
    f->world->mode = FAKE_RUN;
    uv_close((uv_handle_t *)&f->timer, fake_timer_closed);
    run_for(&e, 20);
    worker_free(w);
    env_finish(&e);
}

static void test_shutdown_order(void **state)
{
    env e;
    const enum fake_mode modes[] = {FAKE_RUN, FAKE_RUN, FAKE_RUN};
    env_start(&e, 3, modes, SUP_RESTART_PERMANENT);
    run_until(&e, "c", SUP_RUNNING, 2000);
    /* b restarted last: it stops first */
    assert_int_equal(sup__worker_action(sup__worker_find(e.sup, "b"), "restart", NULL), 0);
    run_for(&e, 20);
    run_until(&e, "b", SUP_RUNNING, 2000);
    stop_order[0] = '\0';
    env_finish(&e);
    assert_string_equal(stop_order, "bca");
    assert_int_equal(e.exit_code, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_start_stop_restart), cmocka_unit_test(test_permanent_gives_up),
        cmocka_unit_test(test_start_failure),      cmocka_unit_test(test_transient),
        cmocka_unit_test(test_temporary),          cmocka_unit_test(test_abandoned),
        cmocka_unit_test(test_shutdown_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
