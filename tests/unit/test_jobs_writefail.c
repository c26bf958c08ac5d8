/* Write failures: a sidecar over RLIMIT_FSIZE (EFBIG, SIGXFSZ ignored) and
 * a jobs.json whose temp file cannot be created. Jobs go on, health says
 * why, nothing on disk is damaged. This binary sets its own RLIMIT_FSIZE,
 * so it holds no other tests. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "tests/unit/jobs_support.h"

#include <signal.h>
#include <sys/resource.h>

static const char *const CONFIG = "{\"allow_argv\": true, \"aux_max\": 50}";

static json_t *health(ts *t)
{
    json_t *h = json_object();
    jobs_health(t->j, h);
    return h;
}

static void test_jobs_json_unwritable(void **state)
{
    ts t;
    ts_init(&t);
    ts_config(&t, CONFIG);
    ts_start(&t);
    char first[33];
    strcpy(first, ts_submit(&t, "{\"argv\": [\"true\"]}"));
    json_decref(ts_wait(&t, first));
    while (t.j->write_in_flight || t.j->dirty_gen > t.j->disk_gen)
        uv_run(&t.loop, UV_RUN_ONCE);
    char path[4200], tmp[4200];
    snprintf(path, sizeof(path), "%s/jobs.json", t.dir);
    snprintf(tmp, sizeof(tmp), "%s/jobs.json.tmp", t.dir);

    /* A job that runs while writes start to fail. */
    char flag[4200], second[33], args[8600];
    snprintf(flag, sizeof(flag), "%s/go", t.dir);
    snprintf(args, sizeof(args),
             "{\"argv\": [\"sh\", \"-c\", \"while [ ! -e %s ]; do sleep 0.01; done; exit 3\"]}",
             flag);
    strcpy(second, ts_submit(&t, args));
    ts_wait_status(&t, second, "running");
    while (t.j->write_in_flight || t.j->dirty_gen > t.j->disk_gen)
        uv_run(&t.loop, UV_RUN_ONCE);
    size_t good_len;
    char *good = ts_read_file(path, &good_len);
    assert_non_null(good);

    /* The temp file's name is taken by a directory: every write fails. */
    assert_int_equal(mkdir(tmp, 0700), 0);
    fclose(fopen(flag, "w"));
    json_t *m = ts_wait(&t, second); /* an end is reported although not durable */
    assert_string_equal(json_string_value(json_object_get(m, "status")), "failed");
    json_decref(m);

    /* A submit that cannot be made durable is refused and leaves nothing:
     * no job, no queued event. */
    size_t events_before = t.n_events;
    ts_reply r = ts_req(&t, "submit", "{\"argv\": [\"true\"]}");
    assert_null(r.result);
    assert_string_equal(r.code, "unavailable");
    assert_non_null(strstr(r.message, "the job could not be recorded"));
    assert_non_null(strstr(r.message, "Is a directory"));
    for (size_t i = events_before; i < t.n_events; i++)
        assert_null(strstr(t.events[i].payload, "\"queued\""));
    r = ts_req(&t, "list", NULL);
    assert_int_equal(json_array_size(json_object_get(r.result, "jobs")), 2);
    json_decref(r.result);
    json_t *h = health(&t);
    const char *err = json_string_value(json_object_get(h, "last_write_error"));
    assert_non_null(err);
    assert_non_null(strstr(err, "jobs.json.tmp"));
    assert_non_null(strstr(err, "Is a directory"));
    assert_true(json_integer_value(json_object_get(h, "write_errors")) >= 1);
    json_decref(h);
    assert_true(t.n_log_errors >= 1);
    size_t len;
    char *now = ts_read_file(path, &len);
    assert_int_equal(len, good_len);
    assert_memory_equal(now, good, len); /* untouched */
    free(now); /* Once writable again, submits are recorded and the retry catches up;
                * the refused job is nowhere. */
    assert_int_equal(rmdir(tmp), 0);
    char third[33];
    strcpy(third, ts_submit(&t, "{\"argv\": [\"true\"]}"));
    json_decref(ts_wait(&t, third));
    while (t.j->write_in_flight || t.j->dirty_gen > t.j->disk_gen)
        uv_run(&t.loop, UV_RUN_ONCE);
    json_t *root = json_load_file(path, 0, NULL);
    assert_int_equal(json_array_size(json_object_get(root, "jobs")), 3);
    json_decref(root);
    free(good);
    ts_fini(&t);
}

static void test_log_over_fsize_limit(void **state)
{
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit rl = {.rlim_cur = 65536, .rlim_max = RLIM_INFINITY};
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &rl), 0);
    ts t;
    ts_init(&t);
    ts_config(&t, CONFIG);
    ts_start(&t);
    char id[33];
    strcpy(id, ts_submit(&t, "{\"argv\": [\"seq\", \"1\", \"30000\"]}"));
    json_t *m = ts_wait(&t, id);
    assert_string_equal(json_string_value(json_object_get(m, "status")), "completed");
    assert_int_equal(json_integer_value(json_object_get(m, "output_lines")), 30000);
    /* The sidecar took 64 KiB, the rest is counted as lost and named. */
    json_int_t out = json_integer_value(json_object_get(m, "output_bytes"));
    assert_int_equal(json_integer_value(json_object_get(m, "log_lost_bytes")), out - 65536);
    const char *why = json_string_value(json_object_get(m, "error"));
    assert_non_null(why);
    char want[200];
    snprintf(want, sizeof(want),
             "its log is incomplete: %lld of %lld output bytes could not be written (File too "
             "large)",
             (long long)(out - 65536), (long long)out);
    assert_string_equal(why, want);
    json_decref(m);
    json_t *h = health(&t);
    const char *err = json_string_value(json_object_get(h, "last_write_error"));
    assert_non_null(err);
    assert_non_null(strstr(err, "File too large"));
    json_decref(h);
    /* The sidecar holds what fit, compacted to its last lines at the end. */
    char path[4200];
    ts_log_path(&t, id, path, sizeof(path));
    size_t len;
    char *log = ts_read_file(path, &len);
    assert_non_null(log);
    assert_true(len <= 65536);
    free(log);
    /* A later job still runs and is recorded. */
    strcpy(id, ts_submit(&t, "{\"argv\": [\"printf\", \"ok\\n\"]}"));
    m = ts_wait(&t, id);
    assert_string_equal(json_string_value(json_object_get(m, "status")), "completed");
    json_decref(m);
    ts_close_jobs(&t);
    snprintf(path, sizeof(path), "%s/jobs.json", t.dir);
    json_t *root = json_load_file(path, 0, NULL);
    assert_int_equal(json_array_size(json_object_get(root, "jobs")), 2);
    json_decref(root);
    rl.rlim_cur = RLIM_INFINITY;
    setrlimit(RLIMIT_FSIZE, &rl);
    ts_fini(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jobs_json_unwritable),
        cmocka_unit_test(test_log_over_fsize_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
