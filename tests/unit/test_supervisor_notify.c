/*
 * herdd's sd_notify (supervisor/notify.c), read from a datagram socket bound
 * in a temp dir as systemd would bind it: nothing at all without
 * NOTIFY_SOCKET; the variables taken out of the environment; READY=1 and
 * STATUS= from a real supervisor (archive workers on a socketless bus, one
 * whose start fails, one disabled), RELOADING=1 with MONOTONIC_USEC= and
 * READY=1 around an applied and a refused reload, STOPPING=1 at shutdown;
 * WATCHDOG=1 at half of WATCHDOG_USEC, and none while a loop callback blocks;
 * WATCHDOG_PID; the abstract namespace; bad values and an unreachable
 * socket, logged once and never fatal.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "supervisor/internal.h"

/* ---- the systemd side: a bound datagram socket ------------------------- */

#define MAX_MSGS 512

typedef struct listener {
    int fd;
    char dir[256];
    char path[108]; /* sun_path's size */
    char msgs[MAX_MSGS][256];
    uint64_t at_us[MAX_MSGS]; /* CLOCK_MONOTONIC when received */
    int n;
} listener;

static uint64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000;
}

static void make_dir(char *dir, size_t size, const char *what)
{
    const char *tmp = getenv("HERD_TEST_TMP");
    snprintf(dir, size, "%s/notify-%s-XXXXXX", tmp != NULL ? tmp : "/tmp", what);
    assert_non_null(mkdtemp(dir));
}

/* listen_at binds a path socket in a new temp dir (abstract: an abstract
 * name instead) and points NOTIFY_SOCKET at it. */
static void listen_at(listener *l, bool abstract)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    socklen_t len;

    memset(l, 0, sizeof(*l));
    make_dir(l->dir, sizeof(l->dir), "sock");
    assert_true(strlen(l->dir) + sizeof("/notify.sock") <= sizeof(l->path));
    l->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(l->fd >= 0);
    if (abstract) {
        snprintf(l->path, sizeof(l->path), "@herd-notify-test-%d", (int)getpid());
        memcpy(a.sun_path, l->path, strlen(l->path));
        a.sun_path[0] = '\0';
        len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(l->path));
    } else {
        snprintf(l->path, sizeof(l->path), "%.90s/notify.sock", l->dir);
        snprintf(a.sun_path, sizeof(a.sun_path), "%s", l->path);
        len = sizeof(a);
    }
    assert_int_equal(bind(l->fd, (struct sockaddr *)&a, len), 0);
    assert_int_equal(setenv("NOTIFY_SOCKET", l->path, 1), 0);
}

/* drain reads every datagram waiting, newlines shown as '|'. */
static void drain(listener *l)
{
    char buf[256];
    ssize_t n;

    while ((n = recv(l->fd, buf, sizeof(buf) - 1, MSG_DONTWAIT)) >= 0) {
        assert_true(l->n < MAX_MSGS);
        buf[n] = '\0';
        for (char *p = buf; *p; p++)
            if (*p == '\n')
                *p = '|';
        snprintf(l->msgs[l->n], sizeof(l->msgs[0]), "%s", buf);
        l->at_us[l->n++] = mono_us();
    }
    assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
}

static int count_of(const listener *l, const char *msg)
{
    int c = 0;
    for (int i = 0; i < l->n; i++)
        c += strcmp(l->msgs[i], msg) == 0;
    return c;
}

static void listener_close(listener *l)
{
    char cmd[600];
    close(l->fd);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", l->dir);
    assert_int_equal(system(cmd), 0);
}

/* expect_msgs asserts that exactly msgs (NULL-terminated) came, in order,
 * from index from on; returns the index after them. */
static int expect_msgs(const listener *l, int from, const char *const *msgs)
{
    int i = from;
    for (; *msgs != NULL; msgs++, i++) {
        if (i >= l->n)
            fail_msg("message %d: expected \"%s\", got nothing more", i, *msgs);
        if (strcmp(l->msgs[i], *msgs) != 0)
            fail_msg("message %d: expected \"%s\", got \"%s\"", i, *msgs, l->msgs[i]);
    }
    if (i != l->n)
        fail_msg("message %d: expected nothing more, got \"%s\"", i, l->msgs[i]);
    return i;
}

static void clear_env(void)
{
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
}

/* ---- loops -------------------------------------------------------------- */

static void keepalive_cb(uv_timer_t *t) {}

/* run_for turns loop for ms (the notify timers do not keep it alive) and
 * drains l after every turn, when l is not NULL. */
static void run_for(uv_loop_t *loop, listener *l, uint64_t ms)
{
    uv_timer_t keep;
    uv_timer_init(loop, &keep);
    uv_timer_start(&keep, keepalive_cb, 5, 5);
    uint64_t end = uv_now(loop) + ms;
    while (uv_now(loop) < end) {
        uv_run(loop, UV_RUN_ONCE);
        if (l != NULL)
            drain(l);
    }
    uv_close((uv_handle_t *)&keep, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
}

/* run_until_msg turns loop until msg has come count times (fails after 5 s). */
static void run_until_msg(uv_loop_t *loop, listener *l, const char *msg, int count)
{
    uv_timer_t keep;
    uv_timer_init(loop, &keep);
    uv_timer_start(&keep, keepalive_cb, 1, 1);
    uint64_t end = uv_now(loop) + 5000;
    while (count_of(l, msg) < count) {
        if (uv_now(loop) > end)
            fail_msg("no \"%s\" (#%d) within 5 s; %d messages", msg, count, l->n);
        uv_run(loop, UV_RUN_ONCE);
        drain(l);
    }
    uv_close((uv_handle_t *)&keep, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
}

static void close_loop(uv_loop_t *loop)
{
    sup__notify_close();
    uv_run(loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(loop), 0);
}

/* ---- no NOTIFY_SOCKET: nothing ------------------------------------------ */

static void test_off(void **state)
{
    uv_loop_t loop;

    clear_env();
    assert_int_equal(setenv("WATCHDOG_USEC", "100000", 1), 0);
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(sup__notify_open(&loop), 0);
    assert_false(sup__notify_enabled());
    assert_int_equal(sup__notify_watchdog_ms(), 0);
    assert_null(getenv("WATCHDOG_USEC"));
    /* No handle: the loop has nothing to run. */
    assert_int_equal(uv_loop_alive(&loop), 0);
    /* Every hook is a no-op: none of them may touch this pointer. */
    sup__notify_attach((struct sup *)&loop);
    sup__notify_changed((struct sup *)&loop);
    sup__notify_reloading();
    sup__notify_stopping();
    assert_int_equal(sup__notify_send("READY=1"), 0);
    assert_int_equal(uv_loop_alive(&loop), 0);
    assert_int_equal(sup__notify_open(&loop), -EBUSY);
    close_loop(&loop);
}

/* ---- the environment ---------------------------------------------------- */

static void test_environment(void **state)
{
    listener l;
    uv_loop_t loop;
    char pid[32];

    clear_env();
    listen_at(&l, false);
    snprintf(pid, sizeof(pid), "%d", (int)getpid());
    assert_int_equal(setenv("WATCHDOG_USEC", "3000000", 1), 0);
    assert_int_equal(setenv("WATCHDOG_PID", pid, 1), 0);
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(sup__notify_open(&loop), 0);
    assert_true(sup__notify_enabled());
    assert_int_equal(sup__notify_watchdog_ms(), 1500);
    /* Children inherit the environment: none of it may reach them. */
    assert_null(getenv("NOTIFY_SOCKET"));
    assert_null(getenv("WATCHDOG_USEC"));
    assert_null(getenv("WATCHDOG_PID"));
    assert_int_equal(sup__notify_open(&loop), -EBUSY);
    /* Nothing is said before there is something to say. */
    run_for(&loop, &l, 30);
    assert_int_equal(l.n, 0);
    sup__notify_close();
    /* Still closing: a new open would reuse handles libuv holds. */
    assert_int_equal(sup__notify_open(&loop), -EBUSY);
    uv_run(&loop, UV_RUN_DEFAULT);
    /* Open again: the variables are gone, so this one is off. */
    assert_int_equal(sup__notify_open(&loop), 0);
    assert_false(sup__notify_enabled());
    close_loop(&loop);
    listener_close(&l);
}

/* ---- a supervisor: READY, STATUS, RELOADING, STOPPING ------------------- */

typedef struct env {
    uv_loop_t loop;
    bus *bus;
    sup *sup;
    char dir[256], state[300], config[300];
    bool sup_closed, bus_closed;
} env;

/* write_config: archive workers a (path a_path), b (an exec worker whose
 * program does not exist: its start fails; temporary, so it goes to
 * failed), c (disabled), and d when with_d. */
static void write_config(env *e, const char *a_path, bool with_d)
{
    FILE *f = fopen(e->config, "w");
    assert_non_null(f);
    fprintf(f,
            "{\"state_dir\": \"%s\", \"http\": {\"listen\": \"\"}, \"workers\": [\n"
            " {\"name\": \"a\", \"kind\": \"archive\", \"subscribe\": [\"x.>\"], \"path\": "
            "\"%s/%s\"},\n"
            " {\"name\": \"b\", \"kind\": \"exec\", \"subscribe\": [\"x.>\"], \"argv\": "
            "[\"%s/no-such-program\"], \"restart\": \"temporary\"},\n"
            " {\"name\": \"c\", \"kind\": \"archive\", \"subscribe\": [\"x.>\"], \"path\": "
            "\"%s/c.jsonl\", \"enabled\": false}%s%s%s%s\n]}\n",
            e->state, e->dir, a_path, e->dir, e->dir, with_d ? ",\n {\"name\": \"d\", " : "",
            with_d ? "\"kind\": \"archive\", \"subscribe\": [\"x.>\"], \"path\": \"" : "",
            with_d ? e->dir : "", with_d ? "/d.jsonl\"}" : "");
    assert_int_equal(fclose(f), 0);
}

static void on_sup_closed(int code, void *data)
{
    /* The supervisor is freed: notify must not look at it again. */
    sup__notify_attach(NULL);
    ((env *)data)->sup_closed = true;
}

static void on_bus_closed(void *data)
{
    ((env *)data)->bus_closed = true;
}

static enum sup_state state_of(env *e, const char *name)
{
    sup_worker *sw = sup__worker_find(e->sup, name);
    assert_non_null(sw);
    return sw->state;
}

static void test_supervisor(void **state)
{
    listener l;
    env e;
    char err[512], cmd[600];
    sup_config cfg;
    struct timespec ts;

    clear_env();
    listen_at(&l, false);
    memset(&e, 0, sizeof(e));
    make_dir(e.dir, sizeof(e.dir), "sup");
    snprintf(e.state, sizeof(e.state), "%s/state", e.dir);
    snprintf(e.config, sizeof(e.config), "%s/herd.json", e.dir);
    assert_int_equal(mkdir(e.state, 0750), 0);
    write_config(&e, "a.jsonl", false);

    assert_int_equal(uv_loop_init(&e.loop), 0);
    assert_int_equal(sup__notify_open(&e.loop), 0);
    assert_true(sup__notify_enabled());
    assert_int_equal(sup__notify_watchdog_ms(), 0);
    bus_config bc = {.no_sockets = true};
    assert_int_equal(bus_open(&e.loop, &bc, &e.bus, err, sizeof(err)), 0);
    sup_config_defaults(&cfg);
    if (sup_config_load(e.config, &cfg, err, sizeof(err)) < 0)
        fail_msg("config: %s", err);
    assert_int_equal(sup_new(&e.loop, &cfg, e.config, e.bus, &e.sup), 0);
    sup__notify_attach(e.sup);
    /* Every start has been attempted, but READY=1 comes from the loop. */
    drain(&l);
    assert_int_equal(l.n, 0);
    assert_int_equal(state_of(&e, "a"), SUP_RUNNING);
    assert_int_equal(state_of(&e, "b"), SUP_FAILED);
    assert_int_equal(state_of(&e, "c"), SUP_STOPPED);

    /* Start-up: one STATUS for every transition of the turn, then READY;
     * b's failed start does not hold READY back, disabled c is not waited
     * for. */
    run_until_msg(&e.loop, &l, "READY=1", 1);
    run_for(&e.loop, &l, 50);
    static const char *const startup[] = {"STATUS=1 workers running, 1 failed", "READY=1", NULL};
    int at = expect_msgs(&l, 0, startup);

    /* Each change of the counts: one STATUS, no READY. */
    assert_int_equal(sup__worker_action(sup__worker_find(e.sup, "a"), "stop", NULL), 0);
    run_for(&e.loop, &l, 100);
    assert_int_equal(state_of(&e, "a"), SUP_STOPPED);
    static const char *const stopped_a[] = {"STATUS=0 workers running, 1 failed", NULL};
    at = expect_msgs(&l, at, stopped_a);
    assert_int_equal(sup__worker_action(sup__worker_find(e.sup, "a"), "start", NULL), 0);
    run_for(&e.loop, &l, 50);
    static const char *const started_a[] = {"STATUS=1 workers running, 1 failed", NULL};
    at = expect_msgs(&l, at, started_a);
    /* A reload that changes a (stop, then start with the new path) and
     * adds d: RELOADING=1 with the time now, READY=1 only once a runs its
     * new config. While a stops, d already runs: the counts are as they
     * were, and no STATUS says otherwise. */
    write_config(&e, "a2.jsonl", true);
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t before = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000;
    sup__notify_reloading();
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t after = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000;
    json_t *summary = NULL;
    if (sup_reload(e.sup, &summary, err, sizeof(err)) < 0)
        fail_msg("reload: %s", err);
    json_decref(summary);
    assert_int_equal(state_of(&e, "a"), SUP_STOPPING);
    drain(&l);
    assert_int_equal(l.n, at + 1);
    unsigned long long mono = 0;
    if (sscanf(l.msgs[at], "RELOADING=1|MONOTONIC_USEC=%llu", &mono) != 1)
        fail_msg("expected RELOADING=1 with MONOTONIC_USEC, got \"%s\"", l.msgs[at]);
    assert_true(mono >= before && mono <= after);
    at++;
    /* Until a runs again, the reload is not over. */
    uv_timer_t keep;
    uv_timer_init(&e.loop, &keep);
    uv_timer_start(&keep, keepalive_cb, 1, 1);
    while (count_of(&l, "READY=1") < 2) {
        uv_run(&e.loop, UV_RUN_ONCE);
        enum sup_state st = state_of(&e, "a");
        drain(&l);
        if (count_of(&l, "READY=1") == 2)
            assert_int_equal(st, SUP_RUNNING);
    }
    uv_close((uv_handle_t *)&keep, NULL);
    run_for(&e.loop, &l, 50);
    static const char *const reloaded[] = {"STATUS=2 workers running, 1 failed", "READY=1", NULL};
    at = expect_msgs(&l, at, reloaded);

    /* A refused reload (a bad file) changes nothing: RELOADING=1, then
     * READY=1 on the next turn. */
    FILE *f = fopen(e.config, "w");
    assert_non_null(f);
    fputs("{\"workers\": [{\"name\": \"a\"}]}\n", f);
    fclose(f);
    sup__notify_reloading();
    summary = NULL;
    assert_true(sup_reload(e.sup, &summary, err, sizeof(err)) < 0);
    assert_null(summary);
    run_until_msg(&e.loop, &l, "READY=1", 3);
    run_for(&e.loop, &l, 50);
    assert_int_equal(l.n, at + 2);
    assert_int_equal(strncmp(l.msgs[at], "RELOADING=1|MONOTONIC_USEC=", 27), 0);
    assert_string_equal(l.msgs[at + 1], "READY=1");
    at += 2;

    /* Shutdown: STOPPING=1 first, the counts as workers stop, never READY=1
     * again, and a reload asked for meanwhile says nothing. */
    sup__notify_stopping();
    sup__notify_stopping();
    sup_shutdown(e.sup, on_sup_closed, &e);
    sup__notify_reloading();
    while (!e.sup_closed) {
        uv_run(&e.loop, UV_RUN_ONCE);
        drain(&l);
    }
    drain(&l);
    static const char *const stopping[] = {"STOPPING=1", "STATUS=1 workers running, 1 failed",
                                           "STATUS=0 workers running, 1 failed", NULL};
    expect_msgs(&l, at, stopping);
    assert_int_equal(count_of(&l, "READY=1"), 3);

    bus_close(e.bus, on_bus_closed, &e);
    close_loop(&e.loop);
    assert_true(e.bus_closed);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", e.dir);
    assert_int_equal(system(cmd), 0);
    listener_close(&l);
}

/* ---- the watchdog -------------------------------------------------------- */

static void test_watchdog(void **state)
{
    listener l;
    uv_loop_t loop;
    char pid[32];

    clear_env();
    listen_at(&l, false);
    assert_int_equal(setenv("WATCHDOG_USEC", "100000", 1), 0);
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(sup__notify_open(&loop), 0);
    assert_int_equal(sup__notify_watchdog_ms(), 50);
    /* 1 s at one ping every 50 ms: 20, give or take a slow machine's
     * turns; fewer than 10 would let systemd's 100 ms pass unpinged. */
    run_for(&loop, &l, 1000);
    assert_int_equal(count_of(&l, "WATCHDOG=1"), l.n);
    if (l.n < 14 || l.n > 21)
        fail_msg("%d WATCHDOG=1 in 1 s at a 50 ms period", l.n);
    for (int i = 1; i < l.n; i++)
        if (l.at_us[i] - l.at_us[i - 1] > 100000)
            fail_msg("%llu us between two pings: systemd's 100 ms passed",
                     (unsigned long long)(l.at_us[i] - l.at_us[i - 1]));
    close_loop(&loop);

    /* WATCHDOG_PID naming another process: that process pings, not herdd. */
    assert_int_equal(setenv("NOTIFY_SOCKET", l.path, 1), 0);
    assert_int_equal(setenv("WATCHDOG_USEC", "100000", 1), 0);
    snprintf(pid, sizeof(pid), "%d", (int)getpid() + 1);
    assert_int_equal(setenv("WATCHDOG_PID", pid, 1), 0);
    l.n = 0;
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(sup__notify_open(&loop), 0);
    assert_true(sup__notify_enabled());
    assert_int_equal(sup__notify_watchdog_ms(), 0);
    run_for(&loop, &l, 200);
    assert_int_equal(l.n, 0);
    close_loop(&loop);

    /* Not a number, zero, negative: no pings, the rest still works. */
    static const char *const bad[] = {"abc", "0", "-100000", "100000x", ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(setenv("NOTIFY_SOCKET", l.path, 1), 0);
        assert_int_equal(setenv("WATCHDOG_USEC", bad[i], 1), 0);
        l.n = 0;
        assert_int_equal(uv_loop_init(&loop), 0);
        assert_int_equal(sup__notify_open(&loop), 0);
        assert_true(sup__notify_enabled());
        assert_int_equal(sup__notify_watchdog_ms(), 0);
        run_for(&loop, &l, 120);
        assert_int_equal(l.n, 0);
        assert_int_equal(sup__notify_send("STATUS=still here"), 0);
        drain(&l);
        assert_int_equal(l.n, 1);
        close_loop(&loop);
    }
    listener_close(&l);
}

/* ---- a blocked loop stops the pings -------------------------------------- */

/* The listener on its own thread, so arrival times are real even while the
 * loop thread sleeps. */
typedef struct rx_thread {
    listener *l;
    pthread_t th;
} rx_thread;

static void *rx_main(void *arg)
{
    listener *l = arg;
    char buf[256];
    for (;;) {
        ssize_t n = recv(l->fd, buf, sizeof(buf) - 1, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return NULL;
        buf[n] = '\0';
        if (strcmp(buf, "QUIT") == 0 || l->n >= MAX_MSGS)
            return NULL;
        snprintf(l->msgs[l->n], sizeof(l->msgs[0]), "%s", buf);
        l->at_us[l->n] = mono_us();
        l->n++; /* read by the test thread only after the join */
    }
}

static uint64_t block_from_us, block_to_us;

#define BLOCK_MS 1000 /* five times WATCHDOG_USEC: systemd would kill herdd */

static void block_cb(uv_timer_t *t)
{
    block_from_us = mono_us();
    usleep(BLOCK_MS * 1000); /* a worker callback that hangs */
    block_to_us = mono_us();
}

static void test_blocked_loop(void **state)
{
    listener l;
    uv_loop_t loop;
    uv_timer_t block;
    rx_thread rx;

    clear_env();
    listen_at(&l, false);
    assert_int_equal(setenv("WATCHDOG_USEC", "200000", 1), 0);
    rx.l = &l;
    assert_int_equal(pthread_create(&rx.th, NULL, rx_main, &l), 0);
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(sup__notify_open(&loop), 0);
    assert_int_equal(sup__notify_watchdog_ms(), 100);
    uv_timer_init(&loop, &block);
    uv_timer_start(&block, block_cb, 500, 0);
    run_for(&loop, NULL, 2000);
    uv_close((uv_handle_t *)&block, NULL);
    close_loop(&loop);

    /* Stop the thread with a message of our own. */
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof(a.sun_path), "%s", l.path);
    assert_int_equal(sendto(fd, "QUIT", 4, 0, (struct sockaddr *)&a, sizeof(a)), 4);
    close(fd);
    assert_int_equal(pthread_join(rx.th, NULL), 0);

    assert_true(block_to_us - block_from_us >= BLOCK_MS * 1000);
    int n_before = 0, n_during = 0, n_after = 0;
    uint64_t gap = 0;
    for (int i = 0; i < l.n; i++) {
        assert_string_equal(l.msgs[i], "WATCHDOG=1");
        /* A ping sent just before the block may be read just after it
         * began: 50 ms of slack for the thread to be scheduled. */
        if (l.at_us[i] <= block_from_us + 50000)
            n_before++;
        else if (l.at_us[i] < block_to_us)
            n_during++;
        else
            n_after++;
        if (i > 0 && l.at_us[i] - l.at_us[i - 1] > gap)
            gap = l.at_us[i] - l.at_us[i - 1];
    }
    if (n_during != 0)
        fail_msg("%d WATCHDOG=1 while the loop was blocked", n_during);
    if (n_before < 3 || n_after < 3)
        fail_msg("pings before the block %d, after it %d: expected some of both", n_before,
                 n_after);
    /* What systemd sees: a silence longer than WATCHDOG_USEC. */
    assert_true(gap >= BLOCK_MS * 1000 - 100000);
    listener_close(&l);
}

/* ---- the abstract namespace ---------------------------------------------- */

static void test_abstract(void **state)
{
    listener l;
    uv_loop_t loop;

    clear_env();
    listen_at(&l, true);
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(sup__notify_open(&loop), 0);
    assert_true(sup__notify_enabled());
    assert_int_equal(sup__notify_send("STATUS=abstract"), 0);
    sup__notify_stopping();
    drain(&l);
    static const char *const want[] = {"STATUS=abstract", "STOPPING=1", NULL};
    expect_msgs(&l, 0, want);
    close_loop(&loop);
    listener_close(&l);
}

/* ---- errors: logged once, never fatal ------------------------------------ */

/* capture runs herdd's log (stderr) into a file from here to uncapture,
 * which returns what was written (static buffer). */
static int saved_stderr = -1;
static char capture_path[300];

static void capture(const char *dir)
{
    snprintf(capture_path, sizeof(capture_path), "%s/stderr.log", dir);
    fflush(stderr);
    saved_stderr = dup(2);
    int fd = open(capture_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(saved_stderr >= 0 && fd >= 0);
    assert_int_equal(dup2(fd, 2), 2);
    close(fd);
}

static const char *uncapture(void)
{
    static char text[16384];
    fflush(stderr);
    assert_int_equal(dup2(saved_stderr, 2), 2);
    close(saved_stderr);
    FILE *f = fopen(capture_path, "r");
    assert_non_null(f);
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    text[n] = '\0';
    fclose(f);
    return text;
}

static int occurrences(const char *text, const char *what)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, what)) != NULL; p += strlen(what))
        n++;
    return n;
}

static void test_errors(void **state)
{
    char dir[256], path[400], cmd[600];
    uv_loop_t loop;
    const char *log;

    clear_env();
    make_dir(dir, sizeof(dir), "err");

    /* Nobody listening: every send fails, the first is logged, herdd runs. */
    snprintf(path, sizeof(path), "%s/nobody.sock", dir);
    assert_int_equal(setenv("NOTIFY_SOCKET", path, 1), 0);
    assert_int_equal(setenv("WATCHDOG_USEC", "20000", 1), 0);
    /* Asserted once the log is back on stderr, where cmocka writes too. */
    assert_int_equal(uv_loop_init(&loop), 0);
    capture(dir);
    int open_rv = sup__notify_open(&loop);
    bool enabled = sup__notify_enabled();
    int first_rv = sup__notify_send("STATUS=x");
    run_for(&loop, NULL, 200); /* some twenty pings, every one failing */
    sup__notify_stopping();
    int last_rv = sup__notify_send("READY=1");
    sup__notify_close();
    log = uncapture();
    close_loop(&loop);
    assert_int_equal(open_rv, 0);
    assert_true(enabled);
    assert_int_equal(first_rv, -ENOENT);
    assert_int_equal(last_rv, -ENOENT);
    if (occurrences(log, "cannot send to NOTIFY_SOCKET") != 1)
        fail_msg("expected the send error logged once, got:\n%s", log);
    assert_non_null(strstr(log, path));
    assert_non_null(strstr(log, "No such file or directory"));
    assert_non_null(strstr(log, "messages to systemd were not delivered"));

    /* What sd_notify would not take either: not enabled, said why. */
    char long_path[200];
    memset(long_path, 'x', sizeof(long_path) - 1);
    long_path[0] = '/';
    long_path[sizeof(long_path) - 1] = '\0';
    const struct {
        const char *value, *message;
    } bad[] = {
        {"relative/notify.sock", "expected an absolute path or @abstract name"},
        {"@", "empty name"},
        {long_path, "longer than a socket address holds"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(setenv("NOTIFY_SOCKET", bad[i].value, 1), 0);
        assert_int_equal(uv_loop_init(&loop), 0);
        capture(dir);
        open_rv = sup__notify_open(&loop);
        enabled = sup__notify_enabled();
        log = uncapture();
        assert_int_equal(open_rv, 0);
        assert_false(enabled);
        assert_null(getenv("NOTIFY_SOCKET"));
        assert_int_equal(uv_loop_alive(&loop), 0);
        close_loop(&loop);
        if (strstr(log, bad[i].message) == NULL)
            fail_msg("NOTIFY_SOCKET=%s: expected \"%s\" in the log, got:\n%s", bad[i].value,
                     bad[i].message, log);
    }
    clear_env();
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_off),          cmocka_unit_test(test_environment),
        cmocka_unit_test(test_supervisor),   cmocka_unit_test(test_watchdog),
        cmocka_unit_test(test_blocked_loop), cmocka_unit_test(test_abstract),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
