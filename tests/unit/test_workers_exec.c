/*
 * The exec kind (workers/exec.c): config refusals from a table, then
 * instances on a real loop and an in-process bus: events through a child
 * (the event JSON on stdin, HERD_TOPIC, exit codes counted), max_concurrent,
 * timeout_s with SIGTERM then SIGKILL, a child that never reads a large
 * stdin, a spawn error, a program that is not there, and a stop while
 * children run. Children go through this binary re-executed as the exec
 * trampoline, as herdd does. Every test ends with the loop closing cleanly.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "workers/worker.h"

/* ---- validation: one case a line ------------------------------------------ */

static const struct {
    const char *cfg;
    const char *want; /* part of the message; NULL: accepted */
} cases[] = {
    {"{\"subscribe\": [\"a.>\"], \"argv\": [\"true\"]}", NULL},
    {"{\"subscribe\": [\"a\"], \"argv\": [\"x\", \"-y\"], \"max_concurrent\": 64, \"timeout_s\": "
     "0, "
     "\"env\": {\"A\": \"1\"}, \"cwd\": \"/\", \"queue_max\": 5, \"stop_timeout_s\": 2}",
     NULL},
    {"{\"argv\": [\"true\"]}", "w.subscribe: required"},
    {"{\"subscribe\": [\"a\"]}", "w.argv: required, an array of 1 to 1024 strings"},
    {"{\"subscribe\": [\"a\"], \"argv\": \"true\"}", "(the program and its arguments, run without "
                                                     "a shell), got \"true\""},
    {"{\"subscribe\": [\"a\"], \"argv\": []}", "w.argv: required"},
    {"{\"subscribe\": [\"a\"], \"argv\": [\"\"]}",
     "w.argv[0]: expected the program to run, got \"\""},
    {"{\"subscribe\": [\"a\"], \"argv\": [\"a\", null]}",
     "w.argv[1]: expected a string without NUL "
     "bytes, got null"},
    {"{\"subscribe\": [\"a\"], \"argv\": [\"a\", \"b\\u0000c\"]}", "w.argv[1]: expected a string"},
    {"{\"subscribe\": [\"a\"], \"argv\": [\"a\"], \"max_concurrent\": 0}",
     "w.max_concurrent: expected an integer from 1 to 64, got 0"},
    {"{\"subscribe\": [\"a\"], \"argv\": [\"a\"], \"max_concurrent\": 2.5}", "got 2.5"},
    {"{\"subscribe\": [\"a\"], \"argv\": [\"a\"], \"timeout_s\": 86401}",
     "w.timeout_s: expected whole seconds from 0 (no timeout) to 86400, got 86401"},
    {"{\"subscribe\": [\"a\"], \"argv\": [\"a\"], \"env\": \"A=1\"}",
     "w.env: expected an object of strings, got \"A=1\""},
    {"{\"subscribe\": [\"a\"], \"argv\": [\"a\"], \"env\": {\"A=B\": \"1\"}}",
     "w.env: \"A=B\" is not a variable name"},
    {"{\"subscribe\": [\"a\"], \"argv\": [\"a\"], \"env\": {\"HERD_WORKER\": \"1\"}}",
     "w.env.HERD_WORKER: set by herd"},
    {"{\"subscribe\": [\"a\"], \"argv\": [\"a\"], \"env\": {\"A\": [1]}}",
     "w.env.A: expected a string without NUL bytes, got [1]"},
    {"{\"subscribe\": [\"a\"], \"argv\": [\"a\"], \"cwd\": 7}", "w.cwd: expected a directory path"},
    {"{\"subscribe\": [\"a\"], \"argv\": [\"a\"], \"cwd\": \"/no/such/dir\"}",
     "w.cwd: \"/no/such/dir\": No such file or directory"},
    {"{\"subscribe\": [\"a\"], \"argv\": [\"a\"], \"cwd\": \"/etc/passwd\"}", "Not a directory"},
    {"{\"subscribe\": [\"a\"], \"argv\": [\"a\"], \"command\": \"a\"}", "w.command: unknown key"},
    {"{\"subscribe\": [\"a\"], \"argv\": [\"a\"], \"queue_max\": 0}", "w.queue_max"},
};

static void test_validate(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_error_t jerr;
        json_t *cfg = json_loads(cases[i].cfg, JSON_ALLOW_NUL, &jerr);
        char err[512] = "";
        if (cfg == NULL)
            fail_msg("case %zu: %s", i, jerr.text);
        int rv = worker_exec_kind.validate(cfg, "w", err, sizeof(err));
        if (cases[i].want == NULL && rv != 0)
            fail_msg("case %zu refused: %s", i, err);
        if (cases[i].want != NULL && (rv != -EINVAL || strstr(err, cases[i].want) == NULL))
            fail_msg("case %zu: rv %d, message \"%s\", expected \"%s\"", i, rv, err, cases[i].want);
        json_decref(cfg);
    }
}

/* ---- a worker on a loop ----------------------------------------------------- */

typedef struct rig {
    uv_loop_t loop;
    uv_timer_t tick;
    bus *b;
    worker *w;
    char dir[256];
    int stopped;
    char log[16384];
    size_t log_len;
} rig;

static void on_ended(worker *w, int code, const char *error, void *data)
{
    (void)w;
    fail_msg("the exec worker ended (%d: %s): only events fail", code, error);
    (void)data;
}

static void on_stopped(worker *w, void *data)
{
    (void)w;
    ((rig *)data)->stopped++;
}

static void on_log(worker *w, enum base_log_level level, const char *msg, void *data)
{
    rig *r = data;
    (void)w;
    (void)level;
    int n = snprintf(r->log + r->log_len, sizeof(r->log) - r->log_len, "%s\n", msg);
    if (n > 0 && r->log_len + (size_t)n < sizeof(r->log))
        r->log_len += (size_t)n;
}

static void on_tick(uv_timer_t *t)
{
    (void)t; /* only wakes the loop up */
}

static void rig_open(rig *r)
{
    const char *tmp = getenv("HERD_TEST_TMP");
    bus_config bc = {.no_sockets = 1};
    char err[256];

    memset(r, 0, sizeof(*r));
    snprintf(r->dir, sizeof(r->dir), "%s/exec.XXXXXX", tmp != NULL ? tmp : "/tmp");
    assert_non_null(mkdtemp(r->dir));
    assert_int_equal(uv_loop_init(&r->loop), 0);
    assert_int_equal(bus_open(&r->loop, &bc, &r->b, err, sizeof(err)), 0);
    uv_timer_init(&r->loop, &r->tick);
    uv_timer_start(&r->tick, on_tick, 5, 5);
}

/* rig_start starts worker "ex" of the config text fmt, ...; returns
 * worker_start's result, err holding its message. */
static int rig_start(rig *r, char *err, size_t err_size, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int rig_start(rig *r, char *err, size_t err_size, const char *fmt, ...)
{
    static const worker_host host_template = {on_ended, on_stopped, on_log, NULL};
    worker_host host = host_template;
    char text[4096], verr[512];
    json_error_t jerr;

    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    json_t *cfg = json_loads(text, 0, &jerr);
    if (cfg == NULL)
        fail_msg("%s: %s", text, jerr.text);
    if (worker_exec_kind.validate(cfg, "w", verr, sizeof(verr)) != 0)
        fail_msg("%s refused: %s", text, verr);
    host.data = r;
    worker_params p = {
        .kind = &worker_exec_kind,
        .name = "ex",
        .config = cfg,
        .loop = &r->loop,
        .bus = r->b,
        .state_dir = r->dir,
        .runtime_dir = r->dir,
        .host = &host,
    };
    assert_int_equal(worker_new(&p, &r->w), 0);
    json_decref(cfg);
    return worker_start(r->w, err, err_size);
}

static void write_script(rig *r, const char *name, const char *body)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", r->dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(body, f);
    fclose(f);
}

static void publish(rig *r, const char *topic, const char *payload)
{
    assert_int_equal(bus_publish(r->b, topic, payload, strlen(payload)), 0);
}

static json_int_t field(rig *r, const char *name)
{
    json_t *h = json_object();
    worker_health_fields(r->w, h);
    json_t *v = json_object_get(h, name);
    json_int_t n = json_is_integer(v) ? json_integer_value(v) : -1;
    json_decref(h);
    return n;
}

static char *exit_codes(rig *r)
{
    json_t *h = json_object();
    worker_health_fields(r->w, h);
    char *s = json_dumps(json_object_get(h, "exit_codes"), JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(h);
    return s;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* run_until runs the loop until `received n, none queued, none running`
 * (the worker settled) or ms passed; max_running gets the most seen. */
static bool run_settled(rig *r, json_int_t n, uint64_t ms, json_int_t *max_running)
{
    uint64_t end = now_ms() + ms;
    while (now_ms() < end) {
        uv_run(&r->loop, UV_RUN_ONCE);
        json_int_t running = field(r, "running");
        if (max_running != NULL && running > *max_running)
            *max_running = running;
        if (field(r, "received") == n && field(r, "queue_depth") == 0 && running == 0)
            return true;
    }
    return false;
}

static void run_for(rig *r, uint64_t ms)
{
    uint64_t end = now_ms() + ms;
    while (now_ms() < end)
        uv_run(&r->loop, UV_RUN_ONCE);
}

/* rig_close stops the worker (if any), waits for its stop, frees it and
 * closes the bus and the loop; returns how long the stop took. */
static uint64_t rig_close(rig *r)
{
    uint64_t t0 = now_ms(), took = 0;
    char cmd[600];

    if (r->w != NULL) {
        worker_stop(r->w);
        while (r->stopped == 0 && now_ms() < t0 + 10000)
            uv_run(&r->loop, UV_RUN_ONCE);
        took = now_ms() - t0;
        assert_int_equal(r->stopped, 1);
        worker_free(r->w);
    }
    uv_close((uv_handle_t *)&r->tick, NULL);
    bus_close(r->b, NULL, NULL);
    uv_run(&r->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&r->loop), 0);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", r->dir);
    assert_int_equal(system(cmd), 0);
    return took;
}

static char *read_text(rig *r, const char *name)
{
    char path[512], *data = NULL;
    size_t len;
    snprintf(path, sizeof(path), "%s/%s", r->dir, name);
    if (base_read_file(AT_FDCWD, path, &data, &len) < 0)
        return NULL;
    return data;
}

static void test_events_and_exit_codes(void **state)
{
    rig r;
    char err[512];
    (void)state;

    rig_open(&r);
    write_script(&r, "c.sh",
                 "cat >\"$D/in.$HERD_TOPIC\"\n"
                 "echo \"$HERD_WORKER $HERD_RUNTIME_DIR $X\"\n"
                 "case $HERD_TOPIC in *.fail) exit 7 ;; esac\n");
    assert_int_equal(rig_start(&r, err, sizeof(err),
                               "{\"subscribe\": [\"t.>\"], \"argv\": [\"/bin/sh\", \"%s/c.sh\"], "
                               "\"env\": {\"D\": \"%s\", \"X\": \"from env\"}}",
                               r.dir, r.dir),
                     0);
    publish(&r, "t.ok1", "{\"a\":1}");
    publish(&r, "t.ok2", "[1, \"\\u00e9\"]");
    publish(&r, "t.fail", "null");
    assert_true(run_settled(&r, 3, 10000, NULL));
    assert_int_equal(field(&r, "done"), 2);
    assert_int_equal(field(&r, "failed"), 1);
    assert_int_equal(field(&r, "timeouts"), 0);
    char *codes = exit_codes(&r);
    assert_string_equal(codes, "{\"0\":2,\"7\":1}");
    free(codes);

    /* The event as {"ts","topic","payload"}, the payload as published. */
    char *in = read_text(&r, "in.t.ok2");
    assert_non_null(in);
    assert_int_equal(strncmp(in, "{\"ts\":\"", 7), 0);
    assert_non_null(strstr(in, "Z\",\"topic\":\"t.ok2\",\"payload\":[1, \"\\u00e9\"]}\n"));
    assert_int_equal(strlen(in), (size_t)(strstr(in, "}\n") + 2 - in));
    base_free(in);
    char want[512];
    snprintf(want, sizeof(want), "stdout: ex %s from env", r.dir);
    assert_non_null(strstr(r.log, want));
    assert_string_equal(worker_last_error(r.w), "/bin/sh (event on t.fail): exited with status 7");
    rig_close(&r);
}

static void test_max_concurrent(void **state)
{
    rig r;
    char err[512];
    json_int_t peak = 0;
    (void)state;

    rig_open(&r);
    write_script(&r, "c.sh", "sleep 0.2\n");
    assert_int_equal(rig_start(&r, err, sizeof(err),
                               "{\"subscribe\": [\"t\"], \"argv\": [\"/bin/sh\", \"%s/c.sh\"], "
                               "\"max_concurrent\": 3}",
                               r.dir),
                     0);
    for (int i = 0; i < 10; i++)
        publish(&r, "t", "{}");
    assert_true(run_settled(&r, 10, 20000, &peak));
    assert_int_equal(peak, 3);
    assert_int_equal(field(&r, "done"), 10);
    rig_close(&r);
}

static void test_timeout_then_sigkill(void **state)
{
    rig r;
    char err[512];
    (void)state;

    rig_open(&r);
    /* Ignores SIGTERM (and so does its sleep): SIGKILL after the grace. */
    write_script(&r, "deaf.sh", "trap '' TERM\nsleep 30\n");
    assert_int_equal(rig_start(&r, err, sizeof(err),
                               "{\"subscribe\": [\"t\"], \"argv\": [\"/bin/sh\", \"%s/deaf.sh\"], "
                               "\"timeout_s\": 1, \"stop_timeout_s\": 1}",
                               r.dir),
                     0);
    uint64_t t0 = now_ms();
    publish(&r, "t", "{}");
    assert_true(run_settled(&r, 1, 10000, NULL));
    uint64_t took = now_ms() - t0;
    assert_true(took >= 1900 && took < 8000);
    assert_int_equal(field(&r, "timeouts"), 1);
    assert_int_equal(field(&r, "failed"), 1);
    char *codes = exit_codes(&r);
    assert_string_equal(codes, "{\"SIGKILL\":1}");
    free(codes);
    assert_non_null(strstr(r.log, "still running after timeout_s 1 s: SIGTERM to its group"));
    assert_non_null(strstr(r.log, "still running 1 s after SIGTERM: SIGKILL"));
    rig_close(&r);
}

static void test_stdin_never_read(void **state)
{
    rig r;
    char err[512];
    size_t n = 800000;
    char *big = malloc(n + 16);
    (void)state;

    rig_open(&r);
    assert_int_equal(rig_start(&r, err, sizeof(err),
                               "{\"subscribe\": [\"t\"], \"argv\": [\"sleep\", \"0.3\"], "
                               "\"timeout_s\": 5}"),
                     0);
    assert_non_null(big);
    big[0] = '"';
    memset(big + 1, 'x', n);
    strcpy(big + 1 + n, "\"");
    publish(&r, "t", big);
    free(big);
    /* The write waits on a child that never reads; the loop runs on, and the
     * child's exit ends the write. */
    assert_true(run_settled(&r, 1, 5000, NULL));
    assert_int_equal(field(&r, "done"), 1);
    assert_int_equal(field(&r, "timeouts"), 0);
    rig_close(&r);
}

static void test_spawn_error(void **state)
{
    rig r;
    char err[512], sub[600];
    (void)state;

    rig_open(&r);
    snprintf(sub, sizeof(sub), "%s/gone", r.dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    assert_int_equal(rig_start(&r, err, sizeof(err),
                               "{\"subscribe\": [\"t\"], \"argv\": [\"true\"], "
                               "\"cwd\": \"%s/gone\"}",
                               r.dir),
                     0);
    assert_int_equal(rmdir(sub), 0);
    publish(&r, "t", "{}");
    assert_true(run_settled(&r, 1, 5000, NULL));
    assert_int_equal(field(&r, "failed"), 1);
    assert_int_equal(field(&r, "spawn_errors"), 1);
    assert_non_null(strstr(worker_last_error(r.w), "cannot run true (event on t): "));
    char *codes = exit_codes(&r);
    assert_string_equal(codes, "{}");
    free(codes);
    rig_close(&r);
}

static void test_program_not_found(void **state)
{
    rig r;
    char err[512];
    (void)state;

    rig_open(&r);
    assert_int_equal(rig_start(&r, err, sizeof(err),
                               "{\"subscribe\": [\"t\"], \"argv\": [\"no-such-program-herd\"], "
                               "\"env\": {\"PATH\": \"%s\"}}",
                               r.dir),
                     -ENOENT);
    assert_non_null(strstr(err, "cannot run argv[0] \"no-such-program-herd\": not found in PATH"));
    worker_free(r.w);
    r.w = NULL;
    rig_close(&r);
}

static void test_stop_while_running(void **state)
{
    rig r;
    char err[512];
    (void)state;

    rig_open(&r);
    write_script(&r, "c.sh", "sleep 30\necho never\n");
    assert_int_equal(rig_start(&r, err, sizeof(err),
                               "{\"subscribe\": [\"t\"], \"argv\": [\"/bin/sh\", \"%s/c.sh\"], "
                               "\"timeout_s\": 0, \"max_concurrent\": 2, \"stop_timeout_s\": 2}",
                               r.dir),
                     0);
    for (int i = 0; i < 5; i++)
        publish(&r, "t", "{}");
    uint64_t end = now_ms() + 5000;
    while (field(&r, "running") < 2 && now_ms() < end)
        uv_run(&r.loop, UV_RUN_ONCE);
    assert_int_equal(field(&r, "running"), 2);
    run_for(&r, 200);
    assert_int_equal(field(&r, "queue_depth"), 3);
    /* SIGTERM reaches the sleeps through the group: no SIGKILL needed. */
    uint64_t took = rig_close(&r);
    assert_true(took < 5000);
    assert_non_null(strstr(r.log, "stopping: SIGTERM to 2 running children"));
    assert_null(strstr(r.log, "SIGKILL"));
    assert_null(strstr(r.log, "never"));
}

int main(int argc, char **argv)
{
    /* The exec trampoline, as in herdd's main: children start through it. */
    if (argc > 1 && strcmp(argv[1], "--worker-exec") == 0)
        return worker_exec_main(argc, argv) < 0 ? 2 : 127;
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_validate),          cmocka_unit_test(test_events_and_exit_codes),
        cmocka_unit_test(test_max_concurrent),    cmocka_unit_test(test_timeout_then_sigkill),
        cmocka_unit_test(test_stdin_never_read),  cmocka_unit_test(test_spawn_error),
        cmocka_unit_test(test_program_not_found), cmocka_unit_test(test_stop_while_running),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
