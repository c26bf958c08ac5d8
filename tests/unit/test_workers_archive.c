/*
 * The archive kind (workers/archive.c) driven through the worker runtime on
 * a socketless bus: config refusals from a table, lines and health, a torn
 * last line cut at start (short, nothing but a torn line, longer than one
 * read of the tail), a stop that flushes a backlog and one that outlasts
 * stop_timeout_s, rotation with keep 0 and with a rename that fails
 * (nothing lost), a write cut short by RLIMIT_FSIZE (whole lines only,
 * counted, then writing again), an unopenable path failing the worker, and
 * no memory held by an idle worker.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "workers/worker.h"

/* ---- config refusals -------------------------------------------------------- */

static const struct {
    const char *cfg;
    const char *message; /* NULL: accepted */
} configs[] = {
    {"{\"subscribe\":[\"a.>\"],\"path\":\"/x/a.jsonl\"}", NULL},
    {"{\"subscribe\":[\"a\"],\"path\":\"a.jsonl\",\"max_bytes\":\"4K\",\"keep\":0,\"fsync\":"
     "\"always\",\"queue_max\":5}",
     NULL},
    {"{\"subscribe\":[\"a\"],\"path\":\"a\",\"max_bytes\":4096,\"keep\":100,\"fsync\":\"never\"}",
     NULL},
    {"{\"subscribe\":[\"a\"],\"path\":\"a\",\"fsync\":\"rotate\",\"name\":\"n\",\"kind\":"
     "\"archive\"}",
     NULL},
    {"{\"path\":\"/x\"}", "w[3].subscribe: required"},
    {"{\"subscribe\":[]}", "w[3].subscribe: required"},
    {"{\"subscribe\":[\"a\"]}", "w[3].path: required"},
    {"{\"subscribe\":[\"a\"],\"path\":\"\"}", "w[3].path: expected a file path"},
    {"{\"subscribe\":[\"a\"],\"path\":\"/x/\"}", "w[3].path: expected a file path"},
    {"{\"subscribe\":[\"a\"],\"path\":[\"/x\"]}", "w[3].path: expected a file path"},
    {"{\"subscribe\":[\"a\"],\"path\":\"/x\",\"keep\":101}",
     "w[3].keep: expected an integer from 0 to 100"},
    {"{\"subscribe\":[\"a\"],\"path\":\"/x\",\"keep\":1.5}",
     "w[3].keep: expected an integer from 0 to 100"},
    {"{\"subscribe\":[\"a\"],\"path\":\"/x\",\"max_bytes\":\"1K\"}",
     "w[3].max_bytes: expected a size such as \"64M\" (4K to 1T)"},
    {"{\"subscribe\":[\"a\"],\"path\":\"/x\",\"max_bytes\":\"2T\"}", "w[3].max_bytes:"},
    {"{\"subscribe\":[\"a\"],\"path\":\"/x\",\"max_bytes\":-4096}", "w[3].max_bytes:"},
    {"{\"subscribe\":[\"a\"],\"path\":\"/x\",\"fsync\":\"ALWAYS\"}",
     "w[3].fsync: expected \"always\", \"rotate\" or \"never\""},
    {"{\"subscribe\":[\"a\"],\"path\":\"/x\",\"queue_max\":0}", "w[3].queue_max:"},
    {"{\"subscribe\":[\"a\"],\"path\":\"/x\",\"argv\":[\"x\"]}",
     "w[3].argv: unknown key (expected subscribe, path, max_bytes, keep, fsync or a common key)"},
};

static void test_validate(void **state)
{
    for (size_t i = 0; i < sizeof(configs) / sizeof(configs[0]); i++) {
        json_t *cfg = json_loads(configs[i].cfg, 0, NULL);
        char err[512] = "";
        assert_non_null(cfg);
        int rc = worker_archive_kind.validate(cfg, "w[3]", err, sizeof(err));
        if (configs[i].message == NULL) {
            if (rc != 0)
                fail_msg("refused %s: %s", configs[i].cfg, err);
        } else if (rc == 0 || strstr(err, configs[i].message) != err) {
            fail_msg("%s: rc %d, \"%s\", expected \"%s...\"", configs[i].cfg, rc, err,
                     configs[i].message);
        }
        json_decref(cfg);
    }
}

static void test_paths(void **state)
{
    json_t *cfg = json_pack("{s:[s],s:s}", "subscribe", "a", "path", "/var/x.jsonl");
    worker_path p[2];
    assert_int_equal(worker_archive_kind.paths(cfg, p, 2), 1);
    assert_string_equal(p[0].path, "/var/x.jsonl");
    assert_true(p[0].writes);
    json_decref(cfg);
}

/* ---- one archive worker on a socketless bus --------------------------------- */

typedef struct env {
    uv_loop_t loop;
    bus *bus;
    worker *w;
    char dir[256], path[512];
    bool ended, stopped, bus_closed;
    int exit_code;
    char error[512];
    char log[16384];
} env;

static void on_ended(worker *w, int exit_code, const char *error, void *data)
{
    env *e = data;
    e->ended = true;
    e->exit_code = exit_code;
    snprintf(e->error, sizeof(e->error), "%s", error);
}

static void on_stopped(worker *w, void *data)
{
    ((env *)data)->stopped = true;
}

static void on_log(worker *w, enum base_log_level level, const char *msg, void *data)
{
    env *e = data;
    size_t n = strlen(e->log);
    snprintf(e->log + n, sizeof(e->log) - n, "%s: %s\n", base_log_level_name(level), msg);
}

static const worker_host host = {on_ended, on_stopped, on_log, NULL};

static void env_init(env *e)
{
    char err[256];
    const char *tmp = getenv("HERD_TEST_TMP");

    memset(e, 0, sizeof(*e));
    assert_int_equal(uv_loop_init(&e->loop), 0);
    snprintf(e->dir, sizeof(e->dir), "%s/archive-XXXXXX", tmp != NULL ? tmp : "/tmp");
    assert_non_null(mkdtemp(e->dir));
    snprintf(e->path, sizeof(e->path), "%s/out/events.jsonl", e->dir);
    bus_config bc = {.no_sockets = true, .queue_max = 100000};
    assert_int_equal(bus_open(&e->loop, &bc, &e->bus, err, sizeof(err)), 0);
}

/* env_start starts the worker on cfg (stolen), with its path set to
 * e->path unless cfg has one. */
static int env_start(env *e, json_t *cfg)
{
    worker_host h = host;
    char err[512];

    h.data = e;
    if (json_object_get(cfg, "path") == NULL)
        json_object_set_new(cfg, "path", json_string(e->path));
    char verr[512];
    assert_int_equal(worker_archive_kind.validate(cfg, "w", verr, sizeof(verr)), 0);
    worker_params p = {
        .kind = &worker_archive_kind,
        .name = "arc",
        .config = cfg,
        .loop = &e->loop,
        .bus = e->bus,
        .state_dir = e->dir,
        .runtime_dir = e->dir,
        .host = &h,
    };
    assert_int_equal(worker_new(&p, &e->w), 0);
    json_decref(cfg);
    return worker_start(e->w, err, sizeof(err));
}

static int64_t health(env *e, const char *field)
{
    json_t *o = json_object();
    worker_health_fields(e->w, o);
    json_t *v = json_object_get(o, field);
    if (!json_is_integer(v))
        fail_msg("no integer %s in health", field);
    int64_t n = (int64_t)json_integer_value(v);
    json_decref(o);
    return n;
}

/* run_until runs the loop until cond(e) holds (or fails after 10 s). */
static void run_until(env *e, bool (*cond)(env *e), const char *what)
{
    for (int i = 0; i < 10000; i++) {
        uv_run(&e->loop, UV_RUN_NOWAIT);
        if (cond(e))
            return;
        usleep(1000);
    }
    fail_msg("never: %s (log: %s)", what, e->log);
}

static size_t want_done;
static bool all_done(env *e)
{
    return (size_t)(health(e, "done") + health(e, "failed")) >= want_done &&
           health(e, "in_flight") == 0;
}

static bool is_stopped(env *e)
{
    return e->stopped;
}

static bool has_ended(env *e)
{
    return e->ended;
}

/* publish sends n events numbered from first on topic. */
static void publish(env *e, const char *topic, int first, int n, size_t pad)
{
    char *payload = malloc(pad + 64);
    assert_non_null(payload);
    for (int i = first; i < first + n; i++) {
        int len = snprintf(payload, pad + 64, "{\"i\":%d,\"pad\":\"%*s\"}", i, (int)pad, "");
        assert_int_equal(bus_publish(e->bus, topic, payload, (size_t)len), 0);
    }
    free(payload);
}

static void drain(env *e, size_t total)
{
    want_done = total;
    run_until(e, all_done, "every event written");
}

static void on_bus_closed(void *data)
{
    ((env *)data)->bus_closed = true;
}

static void env_stop(env *e)
{
    worker_stop(e->w);
    run_until(e, is_stopped, "stopped");
    worker_free(e->w);
    e->w = NULL;
}

static void env_finish(env *e)
{
    if (e->w != NULL)
        env_stop(e);
    bus_close(e->bus, on_bus_closed, e);
    uv_run(&e->loop, UV_RUN_DEFAULT);
    assert_true(e->bus_closed);
    assert_int_equal(uv_loop_close(&e->loop), 0);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", e->dir);
    assert_int_equal(system(cmd), 0);
}

/* read_all reads a whole file (NULL when missing); *len its size. */
static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *data;
    long n;

    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    data = malloc((size_t)n + 1);
    assert_non_null(data);
    assert_int_equal(fread(data, 1, (size_t)n, f), (size_t)n);
    data[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return data;
}

static void write_file(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

/* check_lines: every line of path is a whole {"ts","topic","payload"} line
 * and the payloads' "i" run from *next on; *next is moved past them.
 * Returns the number of lines. */
static size_t check_lines(const char *path, int *next)
{
    size_t len, n = 0;
    char *data = read_all(path, &len);
    assert_non_null(data);
    if (len > 0 && data[len - 1] != '\n')
        fail_msg("%s ends in a torn line", path);
    for (char *line = data, *nl; line < data + len; line = nl + 1, n++) {
        nl = memchr(line, '\n', (size_t)(data + len - line));
        json_error_t jerr;
        json_t *v = json_loadb(line, (size_t)(nl - line), 0, &jerr);
        if (v == NULL)
            fail_msg("%s line %zu does not parse: %s", path, n + 1, jerr.text);
        assert_int_equal(json_object_size(v), 3);
        assert_true(json_is_string(json_object_get(v, "ts")));
        assert_true(json_is_string(json_object_get(v, "topic")));
        json_t *i = json_object_get(json_object_get(v, "payload"), "i");
        if (next != NULL) {
            if (json_integer_value(i) != *next)
                fail_msg("%s line %zu: event %lld, expected %d", path, n + 1,
                         (long long)json_integer_value(i), *next);
            (*next)++;
        }
        json_decref(v);
    }
    free(data);
    return n;
}

static bool running_prepared(env *e)
{
    return strstr(e->log, "appending to") != NULL;
}

/* ---- the cases ---------------------------------------------------------------- */

static void test_lines_and_health(void **state)
{
    env e;
    env_init(&e);
    assert_int_equal(env_start(&e, json_pack("{s:[s]}", "subscribe", "t.>")), 0);
    run_until(&e, running_prepared, "file opened");
    /* an idle worker holds no buffer: its heap is the same before and after */
    uint64_t idle = worker_heap_bytes(e.w);
    publish(&e, "t.a", 0, 1000, 10);
    publish(&e, "other", 0, 5, 10); /* not subscribed */
    drain(&e, 1000);
    assert_int_equal(health(&e, "received"), 1000);
    assert_int_equal(health(&e, "done"), 1000);
    assert_int_equal(health(&e, "failed"), 0);
    assert_int_equal(health(&e, "dropped"), 0);
    assert_int_equal(health(&e, "queue_depth"), 0);
    assert_int_equal(health(&e, "rotations"), 0);
    assert_int_equal(health(&e, "torn_lines_cut"), 0);
    assert_int_equal(health(&e, "write_errors"), 0);
    struct stat st;
    assert_int_equal(stat(e.path, &st), 0);
    assert_int_equal(health(&e, "bytes"), st.st_size);
    assert_int_equal(worker_heap_bytes(e.w), idle);
    int next = 0;
    assert_int_equal(check_lines(e.path, &next), 1000);
    /* a payload with raw LF and CR is one line, whitespace as spaces */
    const char *pretty = "{\n \"i\": 1000,\r\n \"s\": \"a\\nb\"\n}";
    assert_int_equal(bus_publish(e.bus, "t.b", pretty, strlen(pretty)), 0);
    drain(&e, 1001);
    next = 0;
    assert_int_equal(check_lines(e.path, &next), 1001);
    size_t len;
    char *data = read_all(e.path, &len);
    assert_non_null(strstr(data, "\"topic\":\"t.b\",\"payload\":{  \"i\": 1000,   \"s\": "
                                 "\"a\\nb\" }}\n"));
    free(data);
    env_stop(&e);
    assert_non_null(strstr(e.log, "1001 events received, 1001 written, 0 failed, 0 dropped"));
    env_finish(&e);
}

static void torn_case(const char *before, size_t before_len, size_t want_len, int want_next)
{
    env e;
    env_init(&e);
    char out[600];
    snprintf(out, sizeof(out), "%s/out", e.dir);
    assert_int_equal(mkdir(out, 0750), 0);
    write_file(e.path, before, before_len);
    assert_int_equal(env_start(&e, json_pack("{s:[s]}", "subscribe", "t")), 0);
    run_until(&e, running_prepared, "file opened");
    assert_int_equal(health(&e, "torn_lines_cut"), 1);
    assert_int_equal(health(&e, "bytes"), (int64_t)want_len);
    assert_non_null(strstr(e.log, "warn: cut a torn last line"));
    publish(&e, "t", want_next, 3, 0);
    drain(&e, 3);
    int next = 0;
    check_lines(e.path, &next);
    assert_int_equal(next, want_next + 3);
    env_finish(&e);
}

static void test_torn_line_cut(void **state)
{
    const char *good =
        "{\"ts\":\"2026-01-01T00:00:00.000Z\",\"topic\":\"t\",\"payload\":{\"i\":0}}\n";
    char buf[40000];
    size_t n = strlen(good);

    /* a short torn line */
    snprintf(buf, sizeof(buf), "%s{\"ts\":\"2026-", good);
    torn_case(buf, strlen(buf), n, 1);
    /* nothing but a torn line */
    torn_case("{\"ts\"", 5, 0, 0);
    /* a torn line longer than one read of the tail */
    memcpy(buf, good, n);
    memset(buf + n, 'x', 30000);
    torn_case(buf, n + 30000, n, 1);
}

static void test_whole_file_untouched(void **state)
{
    env e;
    env_init(&e);
    char out[600];
    snprintf(out, sizeof(out), "%s/out", e.dir);
    assert_int_equal(mkdir(out, 0750), 0);
    const char *good =
        "{\"ts\":\"2026-01-01T00:00:00.000Z\",\"topic\":\"t\",\"payload\":{\"i\":0}}\n";
    write_file(e.path, good, strlen(good));
    assert_int_equal(env_start(&e, json_pack("{s:[s]}", "subscribe", "t")), 0);
    run_until(&e, running_prepared, "file opened");
    assert_int_equal(health(&e, "torn_lines_cut"), 0);
    assert_int_equal(health(&e, "bytes"), (int64_t)strlen(good));
    env_finish(&e);
}

/* backlog publishes until events are both queued and in flight. */
static void backlog(env *e)
{
    for (int sent = 0; sent < 200000; sent += 500) {
        publish(e, "t", sent, 500, 20);
        uv_run(&e->loop, UV_RUN_NOWAIT);
        if (health(e, "queue_depth") > 0 && health(e, "in_flight") > 0)
            return;
    }
    fail_msg("no backlog: %lld queued, %lld in flight", (long long)health(e, "queue_depth"),
             (long long)health(e, "in_flight"));
}

/* closed_counts reads the counts the worker logs when it closes its file. */
static void closed_counts(env *e, unsigned long long c[4])
{
    const char *closed = strstr(e->log, "info: closed ");
    assert_non_null(closed);
    closed = strstr(closed + 13, ": ");
    assert_non_null(closed);
    assert_int_equal(sscanf(closed + 2,
                            "%llu events received, %llu written, %llu failed, %llu dropped", &c[0],
                            &c[1], &c[2], &c[3]),
                     4);
}

static void test_stop_flushes_backlog(void **state)
{
    env e;
    unsigned long long c[4];
    env_init(&e);
    assert_int_equal(env_start(&e, json_pack("{s:[s],s:i,s:s}", "subscribe", "t", "queue_max",
                                             200000, "fsync", "always")),
                     0);
    backlog(&e);
    int64_t received = health(&e, "received");
    env_stop(&e);
    closed_counts(&e, c);
    assert_int_equal(c[0], received); /* what the bus still held went with the subscription */
    assert_int_equal(c[1], received);
    assert_int_equal(c[2] + c[3], 0);
    int next = 0;
    assert_int_equal(check_lines(e.path, &next), received);
    env_finish(&e);
}

/* A stop that outlasts stop_timeout_s drops what is still queued. */
static void test_stop_deadline(void **state)
{
    env e;
    unsigned long long c[4];
    env_init(&e);
    assert_int_equal(env_start(&e, json_pack("{s:[s],s:i,s:i}", "subscribe", "t", "queue_max",
                                             200000, "stop_timeout_s", 1)),
                     0);
    backlog(&e);
    worker_stop(e.w);
    usleep(1200 * 1000); /* the job in flight completes after the deadline */
    run_until(&e, is_stopped, "stopped");
    worker_free(e.w);
    e.w = NULL;
    assert_non_null(strstr(e.log, "not written within stop_timeout_s: dropped"));
    closed_counts(&e, c);
    assert_int_equal(c[2], 0);
    assert_true(c[3] > 0);
    assert_int_equal(c[1] + c[3], c[0]);
    int next = 0;
    assert_int_equal(check_lines(e.path, &next), c[1]);
    env_finish(&e);
}

static void test_rotate_keep0(void **state)
{
    env e;
    env_init(&e);
    assert_int_equal(env_start(&e, json_pack("{s:[s],s:s,s:i,s:s}", "subscribe", "t", "max_bytes",
                                             "4K", "keep", 0, "fsync", "never")),
                     0);
    publish(&e, "t", 0, 500, 50);
    drain(&e, 500);
    assert_true(health(&e, "rotations") >= 5);
    char name[600];
    snprintf(name, sizeof(name), "%s.1", e.path);
    assert_int_equal(access(name, F_OK), -1);
    size_t n = check_lines(e.path, NULL);
    assert_true(n > 0 && n < 500);
    struct stat st;
    assert_int_equal(stat(e.path, &st), 0);
    assert_true(st.st_size <= 4096);
    env_finish(&e);
}

static void test_rename_fails_nothing_lost(void **state)
{
    env e;
    env_init(&e);
    char name[600];
    snprintf(name, sizeof(name), "%s/out", e.dir);
    assert_int_equal(mkdir(name, 0750), 0);
    /* path.1 a non-empty directory: path cannot be renamed onto it */
    snprintf(name, sizeof(name), "%s.1", e.path);
    assert_int_equal(mkdir(name, 0750), 0);
    snprintf(name, sizeof(name), "%s.1/x", e.path);
    write_file(name, "x", 1);
    assert_int_equal(
        env_start(&e, json_pack("{s:[s],s:s,s:i}", "subscribe", "t", "max_bytes", "4K", "keep", 1)),
        0);
    publish(&e, "t", 0, 300, 50);
    drain(&e, 300);
    assert_int_equal(health(&e, "done"), 300);
    assert_int_equal(health(&e, "failed"), 0);
    assert_int_equal(health(&e, "rotations"), 0);
    assert_true(health(&e, "write_errors") >= 1);
    const char *err = worker_last_error(e.w);
    assert_non_null(err);
    assert_non_null(strstr(err, "rename "));
    assert_non_null(strstr(e.log, "error: rename "));
    int next = 0;
    assert_int_equal(check_lines(e.path, &next), 300);
    env_finish(&e);
}

static void test_write_cut_short(void **state)
{
    env e;
    struct rlimit old, lim;
    env_init(&e);
    assert_int_equal(env_start(&e, json_pack("{s:[s]}", "subscribe", "t")), 0);
    run_until(&e, running_prepared, "file opened");
    publish(&e, "t", 0, 10, 20);
    drain(&e, 10);
    int64_t size = health(&e, "bytes");

    /* a file size limit in the middle of the next batch: the write is cut
     * short, then fails with EFBIG */
    signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = (rlim_t)size + 250;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    publish(&e, "t", 10, 50, 20);
    drain(&e, 60);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, SIG_DFL);

    int64_t done = health(&e, "done"), failed = health(&e, "failed");
    assert_int_equal(done + failed, 60);
    assert_true(failed > 0);
    assert_true(done > 10); /* the lines that fitted are kept */
    assert_true(health(&e, "write_errors") >= 1);
    assert_non_null(strstr(worker_last_error(e.w), "write "));
    assert_non_null(strstr(worker_last_error(e.w), "File too large"));
    int next = 0;
    assert_int_equal(check_lines(e.path, &next), (size_t)done);
    struct stat st;
    assert_int_equal(stat(e.path, &st), 0);
    assert_int_equal(health(&e, "bytes"), st.st_size);

    /* writing again: every line whole, last_error cleared */
    publish(&e, "t", (int)done, 5, 20);
    drain(&e, 65);
    assert_int_equal(health(&e, "done"), done + 5);
    assert_null(worker_last_error(e.w));
    assert_non_null(strstr(e.log, "writing to"));
    next = 0;
    assert_int_equal(check_lines(e.path, &next), (size_t)done + 5);
    env_finish(&e);
}

static void test_unopenable_fails(void **state)
{
    env e;
    env_init(&e);
    char file[600], path[700];
    snprintf(file, sizeof(file), "%s/a-file", e.dir);
    write_file(file, "x", 1);
    snprintf(path, sizeof(path), "%s/below/events.jsonl", file);
    assert_int_equal(env_start(&e, json_pack("{s:[s],s:s}", "subscribe", "t", "path", path)), 0);
    publish(&e, "t", 0, 3, 0);
    run_until(&e, has_ended, "the worker failed");
    assert_true(e.exit_code < 0);
    assert_non_null(strstr(e.error, "open "));
    assert_non_null(strstr(e.error, path));
    assert_non_null(strstr(e.error, "Not a directory"));
    env_stop(&e);
    assert_non_null(strstr(e.log, "3 events received, 0 written, 3 failed"));
    env_finish(&e);
}

static void test_not_a_regular_file(void **state)
{
    env e;
    env_init(&e);
    assert_int_equal(env_start(&e, json_pack("{s:[s],s:s}", "subscribe", "t", "path", e.dir)), 0);
    run_until(&e, has_ended, "the worker failed");
    assert_non_null(strstr(e.error, "open"));
    assert_non_null(strstr(e.error, "Is a directory"));
    env_finish(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_validate),
        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_lines_and_health),
        cmocka_unit_test(test_torn_line_cut),
        cmocka_unit_test(test_whole_file_untouched),
        cmocka_unit_test(test_stop_flushes_backlog),
        cmocka_unit_test(test_stop_deadline),
        cmocka_unit_test(test_rotate_keep0),
        cmocka_unit_test(test_rename_fails_nothing_lost),
        cmocka_unit_test(test_write_cut_short),
        cmocka_unit_test(test_unopenable_fails),
        cmocka_unit_test(test_not_a_regular_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
